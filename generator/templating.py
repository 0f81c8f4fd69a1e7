"""The Jinja2 templates shipped in `mlgen.templates`, rendered with StrictUndefined."""

from __future__ import annotations

import functools
from importlib import resources

import jinja2


@functools.cache
def _environment() -> jinja2.Environment:
    root = resources.files("mlgen.templates")
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,  # a missing value is a bug, never an empty string
        autoescape=False,  # shell and YAML comments, not HTML; values never reach YAML here
        keep_trailing_newline=True,
    )


def render(name: str, **values: object) -> str:
    return _environment().get_template(name).render(**values)
