"""Plain-English wording for the strict models' errors, and their order.

pydantic's own messages (`Input should be 'mlgen.io/v1alpha1'`, `got True`) describe
Python types; a batch author thinks in YAML. This module turns each error into what is
wrong and how to fix it, suggests the closest key for a misspelt one ("did you mean
expectedDuration?"), and sorts problems by file and line so that they read top to bottom.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

_LINE = re.compile(r"^(?P<file>.*?)(?: \(document \d+\))?(?::(?P<line>\d+))?: ")


def plain(error: dict[str, Any], *, root: type[BaseModel]) -> str:
    """One error as a sentence (without its path)."""
    kind = str(error["type"])
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "extra_forbidden":
        return unknown_key(error["loc"], root=root)
    if kind == "literal_error":
        choices = _choices(str(ctx.get("expected", "")))
        shown = _yaml(value)
        if len(choices) == 1:
            return f"is {shown}; write {choices[0]}"
        return f"is {shown}; use one of {', '.join(choices)}"
    if kind == "string_type":
        return f"{_yaml(value)} is {_what(value)}, not a string; put the value in quotes"
    if kind in ("int_type", "int_parsing"):
        return f"{_yaml(value)} is {_what(value)}; write a whole number, without quotes"
    if kind in ("bool_type", "bool_parsing"):
        return f"{_yaml(value)} is {_what(value)}; write true or false, without quotes"
    if kind in ("float_type", "float_parsing"):
        return f"{_yaml(value)} is {_what(value)}; write a number, without quotes"
    if kind in ("list_type", "tuple_type"):
        return f"is {_what(value)}; write a list, like [a, b]"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"is {_what(value)}; write a mapping of key: value"
    if kind == "missing":
        return "is required; add it"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return f"is {_yaml(value)}; use {'at least' if 'ge' in ctx else 'more than'} {bound}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return f"is {_yaml(value)}; use {'at most' if 'le' in ctx else 'less than'} {bound}"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s); add some"
    if kind == "too_long":
        return f"has more than {ctx.get('max_length')} item(s); split it"
    if kind == "string_pattern_mismatch":
        return f"{_yaml(value)} does not have the expected form ({ctx.get('pattern')})"
    if kind == "none_required":
        return "must be empty (null)"
    text = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    return text


def unknown_key(loc: Sequence[Any], *, root: type[BaseModel]) -> str:
    """`unknown key` with the closest allowed key of that mapping, when one is close."""
    allowed = _allowed_keys(root, list(loc[:-1]))
    key = str(loc[-1])
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6) or [
        k for k in allowed if k.lower() == key.lower()
    ]
    if close:
        return f"unknown key; did you mean {close[0]}?"
    if allowed:
        return f"unknown key; this mapping takes {', '.join(allowed)}"
    return "unknown key; check its spelling against the batch reference (README)"


def by_file_and_line(problems: list[str], *, files: Sequence[str]) -> list[str]:
    """Problems ordered by file (in the order given) and line; unknown lines first."""
    order = {name: n for n, name in enumerate(files)}

    def key(problem: str) -> tuple[int, int]:
        found = _LINE.match(problem)
        if not found:
            return (len(order), 0)
        return (order.get(found["file"], len(order)), int(found["line"] or 0))

    return sorted(problems, key=key)


def _allowed_keys(model: Any, path: list[Any]) -> list[str]:
    current: Any = model
    for part in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            if isinstance(part, str) and part in current.model_fields:
                current = current.model_fields[part].annotation
                continue
            return []
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if origin in (list, tuple) and isinstance(part, int) and args:
            current = args[0]
        elif origin is dict and args:
            current = args[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip Optional, Annotated and unions down to the one model or container inside."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _choices(expected: str) -> list[str]:
    return [c.strip() for c in re.split(r",| or ", expected) if c.strip()]


def _yaml(value: object) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    return str(value)


def _what(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean (YAML reads unquoted true, false, yes, no, on, off so)"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty (null)"
    return type(value).__name__
