"""Properties of podPatch over generated patches: whatever a patch says, render either
refuses it in one line naming the patch, or writes Jobs whose pod templates keep what
mlgen owns and pass the API's rules and the batch's Pod Security level. Never a
traceback, never a template past the object limit."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlgen import limits, podrules, podsecurity, render, source
from mlgen.errors import MlgenError

from .conftest import batch_doc, objects, render_doc

# Pointers into the pod template mlgen renders, and a few that lead nowhere.
POINTERS = [
    "/metadata/labels/team",
    "/metadata/labels/mlgen.io~1batch",
    "/metadata/labels/a~1b~1c",
    "/metadata/annotations/note",
    "/spec/restartPolicy",
    "/spec/containers/0/args",
    "/spec/containers/0/args/-",
    "/spec/containers/0/args/0",
    "/spec/containers/0/command",
    "/spec/containers/0/env",
    "/spec/containers/0/env/-",
    "/spec/containers/0/env/0",
    "/spec/containers/0/securityContext/privileged",
    "/spec/containers/0/resources/limits/cpu",
    "/spec/containers/-",
    "/spec/containers",
    "/spec/volumes",
    "/spec/volumes/-",
    "/spec/hostNetwork",
    "/spec/nodeSelector/pool",
    "/spec/tolerations/-",
    "/spec",
    "/nowhere/at/all",
    "",
]

scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from(
        ["x", "-bad-", "1Gi", "-1Gi", "In", "Always", "/dev/shm", "JOB_COMPLETION_INDEX"]
    ),
)
value = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(["name", "value", "path", "emptyDir", "sizeLimit", "key", "x"]),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=8,
)
# Well-formed operations, so that many generated patches render and the properties of
# what is written are tested, not only the refusals.
plausible = st.sampled_from(
    [
        {"op": "add", "path": "/metadata/labels/team", "value": "nlp"},
        {"op": "add", "path": "/metadata/annotations", "value": {"note": "x"}},
        {"op": "add", "path": "/spec/nodeSelector", "value": {"pool": "a100"}},
        {"op": "add", "path": "/spec/priorityClassName", "value": "high"},
        {"op": "add", "path": "/spec/tolerations", "value": [{"key": "gpu", "operator": "Exists"}]},
        {"op": "add", "path": "/spec/containers/0/workingDir", "value": "/work"},
        {"op": "add", "path": "/spec/containers/0/securityContext/privileged", "value": True},
        {"op": "add", "path": "/spec/hostNetwork", "value": True},
        {"op": "add", "path": "/spec/terminationGracePeriodSeconds", "value": 5},
        {"op": "remove", "path": "/spec/containers/0/resources/limits"},
        # well-formed for the schema, refused by the API server
        {"op": "add", "path": "/metadata/labels/team", "value": "-bad-"},
        {"op": "add", "path": "/metadata/labels/a~1b~1c", "value": "x"},
        {
            "op": "add",
            "path": "/spec/affinity",
            "value": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "p", "operator": "In"}]}
                        ]
                    }
                }
            },
        },
    ]
)
operation = st.one_of(
    *[plausible] * 8,
    st.builds(
        lambda op, path, v: {"op": op, "path": path, "value": v},
        st.sampled_from(["add", "replace", "test"]),
        st.sampled_from(POINTERS),
        value,
    ),
    st.builds(lambda path: {"op": "remove", "path": path}, st.sampled_from(POINTERS)),
    st.builds(
        lambda op, source, path: {"op": op, "from": source, "path": path},
        st.sampled_from(["copy", "move"]),
        st.sampled_from(POINTERS),
        st.sampled_from(POINTERS),
    ),
)
strategic = st.fixed_dictionaries(
    {},
    optional={
        "metadata": st.dictionaries(st.sampled_from(["labels", "annotations"]), value, max_size=2),
        "spec": st.dictionaries(
            st.sampled_from(["containers", "volumes", "restartPolicy", "hostPID", "affinity"]),
            value,
            max_size=2,
        ),
    },
)


def _templates(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {
        o["metadata"]["name"].rsplit("-", 1)[0]: o["spec"]["template"]
        for o in objects(files)
        if o["kind"] == "Job"
    }


def _owned(template: dict[str, Any]) -> dict[str, Any]:
    main = template["spec"]["containers"][0]
    return {
        "labels": {k: v for k, v in template["metadata"]["labels"].items() if "mlgen" in k},
        "command": main.get("command"),
        "args": main.get("args"),
        "env": [e for e in main.get("env") or [] if e["name"].startswith("MLGEN_")],
        "restartPolicy": template["spec"].get("restartPolicy"),
    }


LEVELS = st.sampled_from(["restricted", "baseline", "privileged"])
BASELINE = _templates(render_doc(batch_doc()))


def _check(patch: dict[str, Any], level: str) -> None:
    doc = batch_doc(podSecurity=level)
    doc["spec"]["defaults"]["podPatch"] = patch
    batches, problems = source.load_text(yaml.safe_dump(doc), source="batch.yaml")
    try:
        if problems:
            raise MlgenError(*problems)
        files = render.render_batch(batches[0])
    except MlgenError as e:
        message = str(e)
        assert "\n" not in message and len(message) < 2000, message
        assert re.match(r"batch\.yaml:\d+: spec\.", message), message  # file:line, field
        return
    for name, template in _templates(files).items():
        assert _owned(template) == _owned(BASELINE[name]), (patch, name)
        assert len(json.dumps(template)) <= limits.MAX_OBJECT_BYTES
        assert podrules.problems(template) == [], (patch, name)
        podsecurity.check(template, level=batches[0].pod_security, where=name)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=4), LEVELS)
def test_a_json_patch_keeps_what_mlgen_owns_or_is_one_line(
    operations: list[dict[str, Any]], level: str
) -> None:
    _check({"json": operations}, level)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategic, LEVELS)
def test_a_strategic_patch_keeps_what_mlgen_owns_or_is_one_line(
    patch: dict[str, Any], level: str
) -> None:
    _check({"strategic": patch}, level)
