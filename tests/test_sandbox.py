"""Matrix templates are expressions over the axes: every hostile template is one clear
problem naming the field, never a traceback, a hang, a huge value or a random one."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
import yaml

from mlgen import source

from .conftest import batch_doc

HOSTILE = [
    ("loop", "{% for i in range(10**9) %}x{% endfor %}", "uses a loop"),
    ("nested loops", "{% for a in lr %}{% for b in lr %}{{ a }}{% endfor %}{% endfor %}", "loop"),
    ("repetition", "{{ 'a' * 1000000000 }}", "'*' repeats text"),
    ("list repetition", "{{ [lr] * 100000000 }}", "'*' repeats text"),
    ("power", "{{ 10 ** 10 ** 10 }}", "uses '**'"),
    ("big product", "{{ 99999999999 * 99999999999 }}", "a number larger than"),
    ("recursion", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "uses a macro"),
    ("include", "{% include 'x' %}", "uses an include"),
    ("import", "{% import 'x' as y %}", "statement"),
    ("set", "{% set x = 1 %}{{ x }}", "uses a set"),
    ("lipsum", "{{ lipsum() }}", "uses a call"),
    ("random filter", "{{ [1, 2] | random }}", "uses the filter 'random'"),
    ("shuffle-free", "{{ lr | center(100000000) }}", "uses the filter 'center'"),
    ("attribute", "{{ lr.__class__ }}", "uses an attribute"),
    ("method", "{{ lr.upper() }}", "uses a call"),
    ("undefined in a list", "{{ [lrr] }}", "'lrr' is undefined"),
    ("self", "{{ self }}", "'self' is undefined"),
    ("growing replace", "{{ lr" + " | replace('1', '1111111111')" * 8 + " }}", "longer than"),
    ("empty replace", "{{ lr | replace('', 'x') }}", "replace('')"),
    ("division by zero", "{{ 1 // 0 }}", "cannot be rendered"),
    ("format", "{{ '%s' % lr }}", "'%' formats text"),
    ("huge int", "{{ ('9' ~ lr ~ '9') | int * 10000000 * 10000000 }}", "a number larger than"),
    ("syntax", "{{ lr", "not a valid template"),
]


def _expand(arg: str, axes: dict[str, list[Any]] | None = None) -> list[str]:
    doc = batch_doc(
        jobs=[
            {
                "name": "j-{{ lr }}",
                "matrix": axes or {"lr": ["1", "2"]},
                "args": [arg],
            }
        ]
    )
    _, problems = source.load_text(yaml.safe_dump(doc, sort_keys=False), source="batch.yaml")
    return problems


@pytest.mark.parametrize(
    ("text", "expected"), [(t, e) for _, t, e in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_a_hostile_template_is_one_clear_problem(text: str, expected: str) -> None:
    started = time.monotonic()
    problems = _expand(text)
    assert time.monotonic() - started < 2
    assert problems and "spec.jobs[0].args[0]: template" in problems[0], problems
    assert expected in problems[0], problems
    assert len(problems[0]) < 600


def test_what_teams_write_still_renders() -> None:
    ok = [
        "--lr={{ lr }}",
        "{{ lr | replace('.', '') }}",
        "{{ 'big' if lr == '2' else 'small' }}",
        "{{ (lr | int) * 1000 }}",
        "{{ lr ~ '-' ~ lr | upper }}",
        "{{ opt | default('sgd') }}",
        "{{ lr[:1] }}",
    ]
    for text in ok:
        assert _expand(text) == [], text


@pytest.mark.parametrize("where", ["axis", "include"])
def test_an_axis_named_self_is_refused_in_one_line(where: str) -> None:
    matrix: dict[str, Any] = {"lr": ["1"]}
    if where == "axis":
        matrix["self"] = ["a"]
    else:
        matrix["include"] = [{"lr": "1", "self": "a"}]
    doc = batch_doc(jobs=[{"name": "j-{{ lr }}", "matrix": matrix, "args": ["x"]}])
    _, problems = source.load_text(yaml.safe_dump(doc, sort_keys=False), source="batch.yaml")
    assert problems and "'self' is a name Jinja2 keeps for itself" in problems[0], problems
    assert ".self: " in problems[0]


def test_a_large_exclude_is_not_quadratic() -> None:
    """300 x 300 combinations minus 20,000 excludes: set lookups, well under a second
    (a comparison per combination and entry would be 1.8 billion)."""
    matrix: dict[str, Any] = {
        "a": [str(i) for i in range(300)],
        "b": [str(i) for i in range(300)],
        "exclude": [{"a": str(i % 300), "b": str(i // 300)} for i in range(20_000)],
    }
    doc = batch_doc(jobs=[{"name": "j-{{ a }}-{{ b }}", "matrix": matrix, "args": ["x"]}])
    text = yaml.safe_dump(doc, sort_keys=False)
    started = time.monotonic()
    batches, problems = source.load_text(text, source="batch.yaml")
    assert not problems, problems[:3]
    assert len(batches[0].jobs) == 90_000 - 20_000
    assert time.monotonic() - started < 30


def test_renders_are_the_same_every_time() -> None:
    """No template can read a clock or a random source: two loads give the same jobs."""
    doc = batch_doc(
        jobs=[{"name": "j-{{ lr }}", "matrix": {"lr": ["1", "2"]}, "args": ["{{ lr | first }}"]}]
    )
    text = yaml.safe_dump(doc, sort_keys=False)
    first, _ = source.load_text(text, source="batch.yaml")
    second, _ = source.load_text(text, source="batch.yaml")
    assert [j.args for j in first[0].jobs] == [j.args for j in second[0].jobs]


TOKENS = [
    "{{",
    "}}",
    "{%",
    "%}",
    "lr",
    "seed",
    "x",
    "self",
    "(",
    ")",
    "[",
    "]",
    "*",
    "**",
    "+",
    "~",
    "/",
    "//",
    "%",
    "|",
    "int",
    "replace('1','22')",
    "upper",
    "random",
    "range(9)",
    "'a'",
    "9999999",
    "0",
    ".",
    "__class__",
    "if",
    "else",
    "for",
    "in",
    "endfor",
    ",",
    " ",
]


def test_random_templates_never_escape_as_a_traceback_or_a_hang() -> None:
    """A fuzz of 400 templates from the language's tokens: each one renders or is a
    problem, fast; none raises out of the loader."""
    rng = random.Random(20261207)
    started = time.monotonic()
    for _ in range(400):
        text = "".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 14)))
        problems = _expand(text, {"lr": ["1", "2"], "seed": [1]})
        assert all("\n" not in p for p in problems), problems
    assert time.monotonic() - started < 60
