"""Input and output limits: what mlgen refuses before it expands, renders or prints too much.

YAML aliases let a few hundred bytes stand for gigabytes ("billion laughs") or for a
structure that contains itself; both are caught here on the composed node graph, where
an alias is one shared node, before anything walks the document expanded. Rendered
objects are held to the API server's own limits, so an object it would refuse with
"Request entity too large" is refused at render time, naming the batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import yaml

from mlgen.errors import RenderError, SpecError

MAX_FILE_BYTES = 32 * 1024 * 1024
# A 100,000-job batch (the Indexed Job's limit) is about a million nodes written out.
MAX_EXPANDED_NODES = 2_000_000
MAX_EXPANDED_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 64  # the deepest batch field is ~6 levels down
MAX_OBJECT_BYTES = 1536 * 1024  # etcd's request limit, which the API server enforces
MAX_ANNOTATION_BYTES = 256 * 1024  # all annotations of one object (ValidateAnnotationsSize)
MAX_ERROR_LINE = 400


def check_file_size(size: int, *, source: str) -> None:
    if size > MAX_FILE_BYTES:
        raise SpecError(
            f"{source}: {size:,} bytes, more than a batch file may hold "
            f"({MAX_FILE_BYTES // 2**20} MiB); split it into several files"
        )


MAX_INT_TEXT = 100  # characters of a YAML integer (Python refuses over 4,300 digits)


def check_document(node: yaml.Node, *, source: str) -> None:
    """Refuse a document whose aliases refer to themselves, nest too deep, or expand past
    the limits; computed on the node graph (each shared node sized once)."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, bytes) expanded
    on_path: set[int] = set()
    # Iterative post-order walk: Python's stack must not be what limits the input.
    stack: list[tuple[yaml.Node, int, bool]] = [(node, 0, False)]
    while stack:
        current, depth, done = stack.pop()
        key = id(current)
        if done:
            on_path.discard(key)
            nodes, size = 1, 0
            if isinstance(current, yaml.ScalarNode):
                size = len(str(current.value).encode("utf-8", "surrogatepass")) + 1
                if current.tag.endswith(":int") and len(str(current.value)) > MAX_INT_TEXT:
                    raise SpecError(
                        f"{source}:{current.start_mark.line + 1}: a whole number "
                        f"{len(str(current.value)):,} characters long; no batch field takes "
                        f"one over {MAX_INT_TEXT} (quote it if it is text)"
                    )
            for child in _children(current):
                child_nodes, child_bytes = sizes[id(child)]
                nodes += child_nodes
                size += child_bytes
            sizes[key] = (nodes, size)
            if nodes > MAX_EXPANDED_NODES or size > MAX_EXPANDED_BYTES:
                raise SpecError(
                    f"{source}:{current.start_mark.line + 1}: expands to {_amount(nodes, size)} "
                    f"through YAML aliases (*name), more than a batch may ({MAX_EXPANDED_NODES:,}"
                    f" values, {MAX_EXPANDED_BYTES // 2**20} MiB); write the values out or "
                    "split the batch"
                )
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise SpecError(
                f"{source}:{current.start_mark.line + 1}: a YAML alias refers to "
                "a node that contains it, so the value would be infinite; "
                "remove the alias"
            )
        if depth > MAX_DEPTH:
            raise SpecError(
                f"{source}:{current.start_mark.line + 1}: nested more than "
                f"{MAX_DEPTH} levels deep; no batch field is, so fix the structure"
            )
        on_path.add(key)
        stack.append((current, depth, True))
        stack.extend((child, depth + 1, False) for child in _children(current))


def _children(node: yaml.Node) -> Iterable[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


def _amount(nodes: int, size: int) -> str:
    return f"{nodes:,} values and {size:,} bytes"


def check_object(obj: dict[str, Any], *, source: str, path: str) -> None:
    """Refuse an object the API server would refuse for its size."""
    metadata = obj.get("metadata") or {}
    what = f"{source}: {path}: {obj.get('kind')} {metadata.get('name')!r}"
    size = len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_OBJECT_BYTES:
        raise RenderError(
            f"{what} would be {size:,} bytes, more than the API server accepts "
            f"in one object ({MAX_OBJECT_BYTES // 1024} KiB); shorten its args "
            "and env or split the batch"
        )
    places = [("metadata.annotations", metadata.get("annotations"))]
    template = (obj.get("spec") or {}).get("template")
    if isinstance(template, dict):
        places.append(
            (
                "spec.template.metadata.annotations",
                (template.get("metadata") or {}).get("annotations"),
            )
        )
    for where, found in places:
        total = sum(len(k.encode()) + len(v.encode()) for k, v in (found or {}).items())
        if total > MAX_ANNOTATION_BYTES:
            raise RenderError(
                f"{what}: {where} would take {total:,} bytes, more than the "
                f"API server allows ({MAX_ANNOTATION_BYTES // 1024} KiB; they "
                "list every job of the batch); split the batch"
            )


def clip(line: str) -> str:
    """One error line at most MAX_ERROR_LINE characters: the start names file and field."""
    if len(line) <= MAX_ERROR_LINE:
        return line
    return f"{line[: MAX_ERROR_LINE - 40]}… ({len(line) - MAX_ERROR_LINE + 40:,} more characters)"
