"""Where a problem sits in a batch file: the line of every path, and which entry wrote a job.

A resolved job is `spec.defaults` merged with its entry (for a matrix, with one
combination of it), so `spec.jobs[49].image` may be a path the file does not have. A
problem with a job's field belongs where that field was written: the entry's own line,
or the line in `spec.defaults` the job inherited it from. Fifty jobs that inherit one
untagged image then give one problem at one line, and `collapse` says it once, with how
many jobs it applies to.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import yaml

# The fields `spec.resolve` merges key by key (a job's env adds to the defaults' env);
# every other field a job sets replaces the defaults' value whole.
MERGED = frozenset({"env", "secretEnv", "labels", "podLabels", "podAnnotations"})

_JOB = re.compile(r"^spec\.jobs\[(\d+)\]")
_TOP = re.compile(r"^[^.\[]+")


@dataclass(frozen=True)
class Places:
    """The line of every path of one batch document, and for each resolved job (in
    `spec.jobs` order after matrix expansion) the position of the entry that wrote it."""

    lines: Mapping[str, int] = field(default_factory=dict)
    entries: tuple[int, ...] = ()  # empty: no matrix, job k is entry k

    def line(self, path: str) -> int | None:
        """The line of `path`, or of its nearest enclosing path the file has."""
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return None

    def at(self, source: str, path: str) -> str:
        """`file:line: path`, the prefix of every problem (without a line when the file
        has none for it)."""
        line = self.line(path)
        return f"{source}{f':{line}' if line else ''}: {path}"

    def entry(self, index: int) -> int:
        """The `spec.jobs` entry that wrote resolved job `index`."""
        return self.entries[index] if index < len(self.entries) else index

    def job(self, index: int, name: str) -> str:
        """The path that gave resolved job `index` its field `name` (`image`,
        `env.SEED`, `volumes[0].name`; "" for the entry itself): the entry's own when the
        entry sets it, else `spec.defaults`' when the defaults do, else the entry's (where
        to add it)."""
        own = f"spec.jobs[{self.entry(index)}]"
        if not name:
            return own
        top = _TOP.match(name)
        deciding = name if top is None or top[0] in MERGED else top[0]
        if f"{own}.{deciding}" not in self.lines and f"spec.defaults.{deciding}" in self.lines:
            return f"spec.defaults.{name}"
        return f"{own}.{name}"

    def origin(self, path: str) -> str:
        """A path of the resolved batch (`spec.jobs[k]…`, k after expansion) as the path
        of the file that wrote it; any other path as it is."""
        found = _JOB.match(path)
        if found is None:
            return path
        rest = path[found.end() :].removeprefix(".")
        if not rest:
            return f"spec.jobs[{self.entry(int(found[1]))}]"
        return self.job(int(found[1]), rest)


def index_lines(node: yaml.Node) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """The line of every path of a document, and the keys that repeat within a mapping."""
    lines: dict[str, int] = {}
    duplicates: list[tuple[str, int]] = []
    _walk(node, "", lines, duplicates)
    return lines, duplicates


def _walk(
    node: yaml.Node, path: str, lines: dict[str, int], duplicates: list[tuple[str, int]]
) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        keys: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            if key in keys and key != "<<":
                duplicates.append((child, key_node.start_mark.line + 1))
            keys.add(key)
            _walk(value_node, child, lines, duplicates)
            lines[child] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            _walk(item, f"{path}[{position}]", lines, duplicates)


def collapse(found: Iterable[tuple[str, str]]) -> list[str]:
    """`where: problem` once for each distinct pair, in the order first found; a pair
    found for several jobs says how many (`(applies to 50 jobs)`)."""
    counts = Counter(found)
    return [
        f"{where}: {problem}{f' (applies to {n} jobs)' if n > 1 else ''}"
        for (where, problem), n in counts.items()
    ]
