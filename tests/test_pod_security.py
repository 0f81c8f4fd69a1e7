"""Every Pod Security rule mlgen claims, through every path that can set it.

A rule is a (JSON pointer, value) into the pod template; each path writes it its own way:
a strategic-merge podPatch (a container by its name), an RFC 6902 podPatch (an `add`, or
a `remove` for a `None` value), and a batch field where one exists. Each must fail the
render at the levels the rule belongs to, naming the rule, and pass below them: the
committed output never claims a level it breaks (Kubernetes' Pod Security Standards).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlgen.errors import RenderError

from .conftest import batch_doc, render_doc

LEVELS = ("restricted", "baseline", "privileged")


@dataclass(frozen=True)
class Rule:
    name: str
    pointer: str  # into the pod template {metadata, spec}; /spec/containers/0 is "main"
    value: Any  # None: the key is removed
    message: str  # a fragment of the error
    lowest: str  # the lowest level that refuses it: "baseline", "restricted" or "any"
    also: tuple[dict[str, Any], ...] = ()  # {pointer, value} the API needs beside it

    def settings(self) -> list[tuple[str, Any]]:
        return [(self.pointer, self.value), *((a["pointer"], a["value"]) for a in self.also)]


RULES_FILE = Path(__file__).parent / "data" / "pod-security-rules.yaml"
RULES = [
    Rule(**{**entry, "also": tuple(entry.get("also", ()))})
    for entry in yaml.safe_load(RULES_FILE.read_text())
]


def _strategic(settings: list[tuple[str, Any]]) -> dict[str, Any]:
    """The settings as one strategic-merge patch: a container by its merge key (name)."""
    patch: dict[str, Any] = {}
    for pointer, raw in settings:
        *parents, leaf = pointer.strip("/").split("/")
        value = raw
        if leaf == "-":  # append to a list with a merge key (volumes: by name)
            *parents, leaf = parents
            value = [raw]
        node = patch
        steps = iter(parents)
        for step in steps:
            if step == "containers":
                next(steps)  # the index: containers merge by name
                items = node.setdefault(step, [{"name": "main"}])
                node = items[0]
            else:
                node = node.setdefault(step, {})
        node[leaf] = value
    return patch


def _json(settings: list[tuple[str, Any]], *, volumes: bool) -> list[dict[str, Any]]:
    """RFC 6902 operations; `volumes`: whether the template already has a volumes list
    (a parallel pod mounts its params; a waves pod has none)."""
    ops: list[dict[str, Any]] = []
    for pointer, value in settings:
        if value is None:
            ops.append({"op": "remove", "path": pointer})
        elif pointer == "/spec/volumes/-" and not volumes:
            ops.append({"op": "add", "path": "/spec/volumes", "value": [value]})
        else:
            ops.append({"op": "add", "path": pointer, "value": value})
    return ops


def _field(rule: Rule) -> dict[str, Any] | None:
    """The batch's own field for the rule, where one exists."""
    if rule.also:
        return None
    if rule.pointer == "/metadata/annotations":
        return {"podAnnotations": rule.value}
    if rule.pointer.endswith("/runAsUser"):
        return {"runAsUser": rule.value}
    return None


PATHS = ("strategic", "json", "field")


def _doc(rule: Rule, path: str, level: str, variant: str) -> dict[str, Any] | None:
    doc = batch_doc(podSecurity=level)
    defaults = doc["spec"]["defaults"]
    if path == "strategic":
        defaults["podPatch"] = {"strategic": _strategic(rule.settings())}
    elif path == "json":
        defaults["podPatch"] = {"json": _json(rule.settings(), volumes=variant == "parallel")}
    else:
        field = _field(rule)
        if field is None:
            return None
        defaults.update(field)
    return doc


def _refuses(rule: Rule, level: str) -> bool:
    if rule.lowest == "any":
        return True
    return LEVELS.index(level) <= LEVELS.index(rule.lowest)


CASES = [
    pytest.param(rule, path, level, id=f"{rule.name}-{path}-{level}")
    for rule in RULES
    for path in PATHS
    if path != "field" or _field(rule) is not None
    for level in LEVELS
]


def test_the_table_holds_every_rule() -> None:
    assert len({r.name for r in RULES}) == len(RULES) >= 22
    assert {r.lowest for r in RULES} == {"baseline", "restricted", "any"}


@pytest.mark.parametrize(("rule", "path", "level"), CASES)
@pytest.mark.parametrize("variant", ["sequential", "parallel"])
def test_each_rule_through_each_path_holds_at_its_levels(
    rule: Rule, path: str, level: str, variant: str
) -> None:
    doc = _doc(rule, path, level, variant)
    assert doc is not None
    if _refuses(rule, level):
        refusal = (
            re.escape(rule.message) if rule.lowest == "any" else f"breaks Pod Security {level!r}"
        )
        with pytest.raises(RenderError, match=refusal) as caught:
            render_doc(doc, variants=(variant,))
        assert rule.message in str(caught.value), str(caught.value)
        # Said where the cause is written (the defaults here), with file:line.
        assert re.search(
            r"^batch\.yaml:\d+: spec\.defaults\.(podPatch|runAsUser|podAnnotations) \(job 'a'\)",
            str(caught.value),
        ), str(caught.value)
    else:
        render_doc(doc, variants=(variant,))


def test_an_unmasked_proc_mount_in_a_user_namespace_is_baseline() -> None:
    """Pod Security baseline allows procMount Unmasked with hostUsers: false (the API
    server's validation requires it), so mlgen renders it there and only there."""
    doc = batch_doc(podSecurity="baseline")
    doc["spec"]["defaults"]["podPatch"] = {
        "json": [
            {"op": "add", "path": "/spec/hostUsers", "value": False},
            {
                "op": "add",
                "path": "/spec/containers/0/securityContext/procMount",
                "value": "Unmasked",
            },
        ]
    }
    render_doc(doc)
