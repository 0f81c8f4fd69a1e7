"""Matrix expansion: one job entry with `matrix:` becomes one job per combination.

The semantics are GitHub Actions': the cartesian product of the axes, minus every
combination that matches an `exclude` entry, plus `include` entries (an entry that
overwrites no original axis value is added to every combination it matches, else it is
a combination of its own). `name`, `args` and `env` values are Jinja2 templates over the
axes, rendered in a sandbox with strict undefined, so `{{ lr }}` reaches the job as text
and a misspelt axis is an error, never an empty string.

Expansion runs on the parsed YAML before the strict models see it, so an expanded job is
validated exactly like a job written by hand; `Expansion.fold()` maps the models' errors
back to the entry that produced them (one error for 1,000 runs, not 1,000).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jinja2
from pydantic import BaseModel, ConfigDict, Field

from mlgen import limits, sandbox, spec

MAX_RUNS = 100_000  # spec.jobs' own limit
_AXIS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_RESERVED = ("include", "exclude")
_TEMPLATED = ("name", "args", "env")

AxisValue = str | int


class Matrix(BaseModel):
    """The `matrix` block (for the JSON Schema; expansion checks it by hand for plainer
    errors). Any other key is an axis: a list of strings or whole numbers."""

    model_config = ConfigDict(extra="allow", strict=True, use_attribute_docstrings=True)
    __pydantic_extra__: dict[str, list[AxisValue]] = Field(init=False)
    include: list[dict[str, AxisValue]] = Field(default_factory=list)
    """Combinations to add, axis to value; default none."""
    exclude: list[dict[str, AxisValue]] = Field(default_factory=list)
    """Combinations to leave out: each matches the combinations with all its values; default
    none."""


class MatrixEntry(spec.JobFields):
    """A job entry with a matrix: its name, args and env values are templates (the JSON
    Schema's view; expansion turns it into plain `JobEntry`s)."""

    name: str
    """A template of each expanded job's name over the axes, like lr-{{ lr }}."""
    matrix: Matrix
    """The axes, each a list of values, and include and exclude: one job per combination."""
    stage: spec.DnsLabel | None = None
    """The stage every expanded job runs in, one of spec.stages' names (with spec.stages)."""


@dataclass
class Expansion:
    """The document with every matrix expanded, and where each job came from."""

    document: object
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, problem)
    origins: list[tuple[int, dict[str, AxisValue]]] = field(default_factory=list)
    expanded: bool = False

    def fold(self, errors: Iterable[Any]) -> list[Any]:
        """Pydantic errors with job positions mapped back to entries, repeats dropped."""
        if not self.expanded:
            return list(errors)
        seen: set[tuple[object, ...]] = set()
        out = []
        for error in errors:
            loc = tuple(error["loc"])
            if (
                len(loc) > 2
                and loc[:2] == ("spec", "jobs")
                and isinstance(loc[2], int)
                and loc[2] < len(self.origins)
            ):
                loc = (*loc[:2], self.origins[loc[2]][0], *loc[3:])
            key = (loc, error["type"], str(error.get("msg")))
            if key not in seen:
                seen.add(key)
                out.append({**error, "loc": loc})
        return out


def expand(document: object) -> Expansion:
    """Expand every `matrix` of `spec.jobs`; untouched documents come back as they are."""
    jobs = document.get("spec", {}).get("jobs") if isinstance(document, dict) else None
    if not isinstance(jobs, list) or not any(isinstance(j, dict) and "matrix" in j for j in jobs):
        return Expansion(document=document)
    result = Expansion(document=document, expanded=True)
    out: list[object] = []
    expanded = 0
    for position, entry in enumerate(jobs):
        if not (isinstance(entry, dict) and "matrix" in entry):
            out.append(entry)
            result.origins.append((position, {}))
            continue
        combos = _combinations(entry["matrix"], f"spec.jobs[{position}].matrix", result.problems)
        if combos is None:
            continue
        # Each combination copies the entry: the copies together stay within what a batch
        # file may expand to (limits.py), checked before anything is copied.
        copied = len(json.dumps({k: v for k, v in entry.items() if k != "matrix"}, default=str))
        expanded += copied * len(combos)
        if expanded > limits.MAX_EXPANDED_BYTES:
            result.problems.append(
                (
                    f"spec.jobs[{position}].matrix",
                    f"copies this entry ({copied:,} bytes) into {len(combos):,} jobs, "
                    f"{expanded / 2**20:,.0f} MiB with the entries before it, more than a "
                    f"batch may expand to ({limits.MAX_EXPANDED_BYTES // 2**20} MiB); move "
                    "long shared args into a file the job reads, or split the sweep",
                )
            )
            return result
        for combo in combos:
            job = _render(entry, combo, position, result.problems)
            if job is None:
                break
            out.append(job)
            result.origins.append((position, combo))
        if len(out) > MAX_RUNS:
            result.problems.append(
                (
                    f"spec.jobs[{position}].matrix",
                    f"expands the batch to more than {MAX_RUNS:,} jobs; split "
                    "the sweep into several batches",
                )
            )
            return result
    if not result.problems:
        _check_names(out, result)
    assert isinstance(document, dict)
    result.document = {**document, "spec": {**document["spec"], "jobs": out}}
    return result


def _reserved_problem(name: str) -> str:
    return (
        f"{name!r} is a name Jinja2 keeps for itself in templates "
        f"({', '.join(sorted(sandbox.RESERVED_NAMES))}); rename it"
    )


def describe(combo: dict[str, AxisValue]) -> str:
    return ", ".join(f"{k}={v}" for k, v in combo.items()) or "no axes"


def _combinations(
    raw: object, path: str, problems: list[tuple[str, str]]
) -> list[dict[str, AxisValue]] | None:
    if not isinstance(raw, dict):
        problems.append(
            (path, "must be a mapping of axis: [values], with optional include and exclude lists")
        )
        return None
    axes: dict[str, list[AxisValue]] = {}
    ok = True
    for name, values in raw.items():
        if name in _RESERVED:
            continue
        if not isinstance(name, str) or not _AXIS.match(name):
            problems.append(
                (
                    f"{path}.{name}",
                    f"{name!r} is not an axis name; use letters, "
                    "digits and '_', not starting with a digit (it is a template "
                    "variable)",
                )
            )
            ok = False
        elif name in sandbox.RESERVED_NAMES:
            problems.append((f"{path}.{name}", _reserved_problem(name)))
            ok = False
        elif not isinstance(values, list) or not values:
            problems.append((f"{path}.{name}", "must be a non-empty list of values, like [a, b]"))
            ok = False
        elif bad := [i for i, v in enumerate(values) if not _is_value(v)]:
            problems.append((f"{path}.{name}[{bad[0]}]", _value_problem(values[bad[0]])))
            ok = False
        else:
            axes[name] = list(values)
    lists: dict[str, list[dict[str, AxisValue]]] = {}
    for key in _RESERVED:
        entries = raw.get(key, [])
        if not isinstance(entries, list) or not all(
            isinstance(e, dict)
            and e
            and all(isinstance(k, str) and _is_value(v) for k, v in e.items())
            for e in entries
        ):
            problems.append(
                (
                    f"{path}.{key}",
                    "must be a list of mappings of axis: value "
                    "(strings or whole numbers), like [{lr: '1e-3', seed: 1}]",
                )
            )
            ok = False
        else:
            lists[key] = entries
            for number, entry in enumerate(entries):
                for name in (k for k in entry if k in sandbox.RESERVED_NAMES):
                    problems.append((f"{path}.{key}[{number}].{name}", _reserved_problem(name)))
                    ok = False
    if not ok:
        return None
    for number, entry in enumerate(lists["exclude"]):
        unknown = [k for k in entry if k not in axes]
        if unknown:
            problems.append(
                (
                    f"{path}.exclude[{number}].{unknown[0]}",
                    f"{unknown[0]!r} is not an axis of this matrix; exclude names "
                    f"only axes ({', '.join(axes) or 'none'})",
                )
            )
            return None
    total = 1
    for values in axes.values():
        total *= len(values)
    if total > MAX_RUNS:
        problems.append(
            (
                path,
                f"{' x '.join(str(len(v)) for v in axes.values())} = {total:,} "
                f"combinations, more than {MAX_RUNS:,}; split the sweep",
            )
        )
        return None
    combos = (
        [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
        if axes
        else []
    )
    # Excludes by the axes they name, as sets of values: one lookup per combination and
    # distinct set of axes, not one comparison per combination and entry.
    excluded: dict[tuple[str, ...], set[tuple[AxisValue, ...]]] = {}
    for entry in lists["exclude"]:
        keys = tuple(sorted(entry))
        excluded.setdefault(keys, set()).add(tuple(entry[k] for k in keys))
    combos = [
        c
        for c in combos
        if not any(tuple(c.get(k) for k in keys) in values for keys, values in excluded.items())
    ]
    originals = [dict(c) for c in combos]  # include never overwrites these, only additions
    for entry in lists["include"]:
        matched = False
        for combo, original in zip(combos[: len(originals)], originals, strict=True):
            if all(original.get(k, v) == v for k, v in entry.items() if k in axes):
                combo.update(entry)
                matched = True
        if not matched:
            combos.append(dict(entry))
    if not combos:
        problems.append(
            (
                path,
                "expands to no jobs (every combination is excluded, or there "
                "are no axes); add values or remove an exclude entry",
            )
        )
        return None
    return combos


def _is_value(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _value_problem(value: object) -> str:
    if isinstance(value, bool):
        return (
            "is true/false, which YAML read from an unquoted word (yes, no, on, off…); "
            "put it in quotes"
        )
    if isinstance(value, float):
        return (
            "is a decimal number, which YAML may not keep as written (1.0 -> 1.0, "
            "1e-3 -> 0.001); put it in quotes"
        )
    return "must be a string or a whole number"


@dataclass
class _Templates:
    environment: sandbox.Environment = field(default_factory=sandbox.Environment)
    cache: dict[str, jinja2.Template] = field(default_factory=dict)
    refused: dict[tuple[str, frozenset[str]], str | None] = field(default_factory=dict)


_TEMPLATES = _Templates()


def _fill(
    text: str, combo: dict[str, AxisValue], path: str, problems: list[tuple[str, str]]
) -> str | None:
    if "{" not in text:
        return text
    axes = frozenset(combo)
    key = (text, axes)
    if key not in _TEMPLATES.refused:
        _TEMPLATES.refused[key] = _TEMPLATES.environment.check(text, set(axes))
    why = _TEMPLATES.refused[key]
    if why is not None:
        problems.append(
            (
                path,
                f"template {text!r}: {why}; the variables are the matrix axes "
                f"({', '.join(combo) or 'none'})",
            )
        )
        return None
    try:
        template = _TEMPLATES.cache.get(text)
        if template is None:
            template = _TEMPLATES.cache[text] = _TEMPLATES.environment.from_string(text)
        return template.render(combo)  # a dict: an axis may be named self
    except jinja2.UndefinedError as e:
        problems.append(
            (
                path,
                f"template {text!r}: {e.message}; the variables are the "
                f"matrix axes ({', '.join(combo) or 'none'})",
            )
        )
    except (jinja2.TemplateError, ArithmeticError, ValueError, TypeError, LookupError) as e:
        # sandbox refusals, and what a filter or operator raises on these values
        problems.append(
            (
                path,
                f"template {text!r} cannot be rendered for "
                f"{describe(combo)}: {e}; write {{{{ axis }}}} with an axis name",
            )
        )
    return None


def _render(
    entry: dict[str, Any],
    combo: dict[str, AxisValue],
    position: int,
    problems: list[tuple[str, str]],
) -> dict[str, Any] | None:
    at = f"spec.jobs[{position}]"
    job = {k: v for k, v in entry.items() if k != "matrix"}
    before = len(problems)
    if isinstance(job.get("name"), str):
        job["name"] = _fill(job["name"], combo, f"{at}.name", problems)
    if isinstance(job.get("args"), list):
        job["args"] = [
            _fill(a, combo, f"{at}.args[{i}]", problems) if isinstance(a, str) else a
            for i, a in enumerate(job["args"])
        ]
    if isinstance(job.get("env"), dict):
        job["env"] = {
            k: _fill(v, combo, f"{at}.env.{k}", problems) if isinstance(v, str) else v
            for k, v in job["env"].items()
        }
    return job if len(problems) == before else None


def _check_names(jobs: list[object], result: Expansion) -> None:
    seen: dict[str, int] = {}
    for number, job in enumerate(jobs):
        name = job.get("name") if isinstance(job, dict) else None
        if not isinstance(name, str):
            continue
        position, combo = result.origins[number]
        at = f"spec.jobs[{position}].name"
        if combo and (len(name) > 63 or not _DNS_LABEL.fullmatch(name)):
            why = (
                f"{len(name)} characters, more than 63"
                if len(name) > 63
                else "not a DNS-1123 label (lowercase letters, digits and '-', starting "
                "and ending with a letter or digit)"
            )
            result.problems.append(
                (
                    at,
                    f"renders {name!r} for {describe(combo)}: {why}; "
                    "shorten the template or map values, e.g. "
                    "{{ lr | replace('.', '-') | lower }}",
                )
            )
            return
        if name in seen:
            other_position, other = result.origins[seen[name]]
            result.problems.append(
                (
                    at,
                    f"renders {name!r} for {describe(combo)}, the same "
                    f"name as spec.jobs[{other_position}] "
                    f"({describe(other)}); put every axis that varies "
                    "into the name template",
                )
            )
            return
        seen[name] = number
