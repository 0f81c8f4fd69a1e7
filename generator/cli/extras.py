"""Commands that need an optional extra. They are registered on every install, so that
`mlgen apply --help` works without it: their modules import the extra's packages only
inside the command bodies, and a body run without the extra stops at one line that says
what to install."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from mlgen.cli.common import reported
from mlgen.errors import UsageError

CLUSTER_HINT = "pip install 'mlgen-gitops[cluster]'"
CLUSTER_EPILOG = f"Needs the Kubernetes client: {CLUSTER_HINT}."

P = ParamSpec("P")
R = TypeVar("R")


def installed(module: str) -> bool:
    """Whether `module` imports (an extra's package, installed and working)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def needs_cluster(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate the command `mlgen <name>`: before its body runs, check that the Kubernetes
    client imports. Help is printed before any callback runs, so it never needs it."""

    def decorate(command: Callable[P, R]) -> Callable[P, R]:
        # functools.wraps keeps the signature Typer reads the options from.
        @functools.wraps(command)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            if not installed("kubernetes"):
                with reported():
                    raise UsageError(
                        f"`mlgen {name}` needs the Kubernetes client, which this install "
                        f"of mlgen leaves out; run {CLUSTER_HINT}"
                    )
            return command(*args, **kwargs)

        return checked

    return decorate
