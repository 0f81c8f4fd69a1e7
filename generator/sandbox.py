"""The language of matrix templates: expressions over the axes, bounded in time and size.

A matrix template (`name`, `args`, `env`) substitutes axis values: `{{ lr }}`,
`{{ eta | replace('.', '') }}`, `{{ 'big' if depth > 8 else 'small' }}`. Anything more
is refused before it runs, so no batch file can make a render slow, huge, random or
escape the sandbox:

- only expressions: no `{% %}` statements (loops, macros, recursion, include, import,
  set), no calls of functions or methods;
- every name is an axis (a misspelt axis is an error wherever it stands, even inside
  `[ ]`), and no attribute access (`x.__class__`);
- a fixed list of pure filters, none random or generated (`random`, `lipsum`, `shuffle`
  are not there), each refusing a result larger than MAX_TEXT;
- arithmetic on small numbers only: no `**`, and `*` never builds a string or a number
  larger than the bounds.

Jinja2's own sandbox stays underneath as a second wall.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jinja2
from jinja2 import nodes, sandbox
from jinja2.exceptions import SecurityError

MAX_TEXT = 4096  # characters of one rendered value or any text a filter builds
MAX_NUMBER = 10**15  # magnitude of any number a template computes
# Names a Jinja2 template resolves itself, whatever the context holds: not axis names.
RESERVED_NAMES = frozenset({"self", "loop", "caller", "varargs", "kwargs"})

_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Const,
    nodes.Filter,
    nodes.Concat,
    nodes.CondExpr,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.Add,
    nodes.Sub,
    nodes.Mul,
    nodes.Div,
    nodes.FloorDiv,
    nodes.Mod,
    nodes.Getitem,
    nodes.Slice,
    nodes.Tuple,
    nodes.List,
    nodes.Keyword,
)


def _text(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise SecurityError(f"a value longer than {MAX_TEXT:,} characters")
    return value


def _bounded(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        for arg in [*args, *kwargs.values()]:
            _text(arg)
            _number(arg)
        return _number(_text(fn(*args, **kwargs)))

    return run


def _number(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise SecurityError("a number that is not finite")
        if abs(value) > MAX_NUMBER:
            raise SecurityError(f"a number larger than {MAX_NUMBER:.0e}")
    return value


def _replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    text = str(value)
    if old == "":
        raise SecurityError("replace('') inserts between every character; name what to replace")
    grows = text.count(old) * max(0, len(str(new)) - len(old))
    if len(text) + grows > MAX_TEXT:
        raise SecurityError(f"a value longer than {MAX_TEXT:,} characters")
    return text.replace(old, str(new), -1 if count is None else count)


class Environment(sandbox.SandboxedEnvironment):
    """Jinja2's sandbox with only the expression language described above."""

    intercepted_binops = frozenset({"*", "**", "+", "//", "%", "/"})

    def __init__(self) -> None:
        super().__init__(
            undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True
        )
        self.globals.clear()
        pure = (
            *("lower", "upper", "title", "capitalize", "trim", "string", "int", "float"),
            *("round", "abs", "length", "first", "last", "default", "d", "truncate"),
        )
        kept = {name: _bounded(self.filters[name]) for name in pure}
        kept["replace"] = _bounded(_replace)
        self.filters = kept
        self.tests = {name: self.tests[name] for name in ("defined", "number", "string")}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise SecurityError("'**' is not allowed in a matrix template")
        if operator == "*" and any(isinstance(v, str | list | tuple) for v in (left, right)):
            raise SecurityError("'*' repeats text; write the text out")
        if operator == "%" and isinstance(left, str):
            raise SecurityError("'%' formats text; use ~ to join values")
        result = super().call_binop(context, operator, left, right)
        return _number(_text(result))

    def check(self, source: str, axes: set[str]) -> str | None:
        """Why `source` is outside the language, or None."""
        try:
            tree = self.parse(source)
        except jinja2.TemplateSyntaxError as e:
            return f"is not a valid template ({e.message})"
        # A name that only some combinations have (an include's key) may stand where
        # `default` supplies it for the others: {{ opt | default('sgd') }}.
        defaulted = {
            id(f.node)
            for f in tree.find_all(nodes.Filter)
            if f.name in ("default", "d") and isinstance(f.node, nodes.Name)
        }
        for node in tree.find_all(nodes.Node):
            if not isinstance(node, _NODES):
                kind = type(node).__name__
                what = {
                    "Pow": "'**' (a power)",
                    "Getattr": "an attribute (x.y)",
                    "Call": "a call",
                    "For": "a loop",
                    "Macro": "a macro",
                    "Include": "an include",
                    "Assign": "a set",
                }.get(kind, f"a {kind} statement or expression")
                return (
                    f"uses {what}; a matrix template holds only expressions over the axes, "
                    "like {{ lr }} or {{ eta | replace('.', '') }}"
                )
            if isinstance(node, nodes.Name) and node.name not in axes and id(node) not in defaulted:
                return f"{node.name!r} is undefined"
            if isinstance(node, nodes.Filter) and node.name not in self.filters:
                return (
                    f"uses the filter {node.name!r}; the filters are "
                    f"{', '.join(sorted(self.filters))}"
                )
        return None
