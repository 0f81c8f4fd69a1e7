"""podPatch reaches everything mlgen does not model, and nothing mlgen owns: its pod
labels and annotations, the main container's command and args, JOB_COMPLETION_INDEX and
MLGEN_* variables, its volumes and mount paths (however written), restartPolicy; and no
pod template may carry what the API refuses there (Job-controller labels, ephemeral
containers). Each is refused in one line naming the job and what to set instead."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mlgen.errors import RenderError

from .conftest import batch_doc, render_doc

MAIN = "/spec/containers/0"

REFUSED = [
    (
        "index env",
        {
            "json": [
                {
                    "op": "add",
                    "path": f"{MAIN}/env",
                    "value": [{"name": "JOB_COMPLETION_INDEX", "value": "0"}],
                }
            ]
        },
        "environment variable 'JOB_COMPLETION_INDEX'",
    ),
    (
        "mlgen env",
        {
            "strategic": {
                "spec": {
                    "containers": [
                        {"name": "main", "env": [{"name": "MLGEN_JOB_NAME", "value": "x"}]}
                    ]
                }
            }
        },
        "environment variable 'MLGEN_JOB_NAME'",
    ),
    (
        "sidecar index env",
        {
            "strategic": {
                "spec": {
                    "containers": [
                        {
                            "name": "side",
                            "image": "busybox:1.36",
                            "env": [{"name": "JOB_COMPLETION_INDEX", "value": "3"}],
                        }
                    ]
                }
            }
        },
        "environment variable 'JOB_COMPLETION_INDEX'",
    ),
    (
        "mlgen label",
        {"strategic": {"metadata": {"labels": {"app.kubernetes.io/managed-by": "me"}}}},
        "pod label 'app.kubernetes.io/managed-by'",
    ),
    (
        "label removed",
        {"json": [{"op": "remove", "path": "/metadata/labels/mlgen.io~1variant"}]},
        "pod label 'mlgen.io/variant'",
    ),
    (
        "job-name label",
        {"strategic": {"metadata": {"labels": {"batch.kubernetes.io/job-name": "x"}}}},
        "label 'batch.kubernetes.io/job-name', which the Job controller sets",
    ),
    (
        "command",
        {
            "strategic": {
                "spec": {"containers": [{"name": "main", "command": ["python", "train.py"]}]}
            }
        },
        "changes container 'main''s command or args",
    ),
    (
        "args",
        {"json": [{"op": "replace", "path": f"{MAIN}/args", "value": ["echo hi"]}]},
        "changes container 'main''s command or args",
    ),
    (
        "shm twice slashed",
        {
            "strategic": {
                "spec": {
                    "containers": [
                        {"name": "main", "volumeMounts": [{"name": "x", "mountPath": "//dev/shm"}]}
                    ],
                    "volumes": [{"name": "x", "emptyDir": {}}],
                }
            }
        },
        "mounts at or over a path mlgen mounts itself",
    ),
    (
        "params dotted",
        {
            "strategic": {
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "volumeMounts": [{"name": "x", "mountPath": "/etc/mlgen/params/."}],
                        }
                    ],
                    "volumes": [{"name": "x", "emptyDir": {}}],
                }
            }
        },
        "mounts at or over a path mlgen mounts itself",
    ),
    (
        "restartPolicy",
        {"strategic": {"spec": {"restartPolicy": "OnFailure"}}},
        "changes restartPolicy",
    ),
    (
        # Found by the property test: a name in mlgen's own domain it does not set yet.
        "new mlgen label",
        {
            "json": [
                {
                    "op": "copy",
                    "from": "/spec/restartPolicy",
                    "path": "/metadata/labels/mlgen.io~1batch",
                }
            ]
        },
        "sets the pod label 'mlgen.io/batch', a name mlgen keeps",
    ),
    (
        "ephemeral",
        {
            "strategic": {
                "spec": {"ephemeralContainers": [{"name": "debug", "image": "busybox:1.36"}]}
            }
        },
        "adds ephemeralContainers",
    ),
]


@pytest.mark.parametrize("variant", ["sequential", "parallel"])
@pytest.mark.parametrize(
    ("patch", "message"), [(p, m) for _, p, m in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_a_patch_may_not_take_what_mlgen_owns(
    patch: dict[str, Any], message: str, variant: str
) -> None:
    doc = batch_doc()
    doc["spec"]["defaults"]["shmSize"] = "1Gi"
    doc["spec"]["defaults"]["podPatch"] = patch
    with pytest.raises(RenderError) as caught:
        render_doc(doc, variants=(variant,))
    text = str(caught.value)
    assert message in text, text
    # The patch is written in the defaults: the error says so, with its line.
    assert re.match(r"batch\.yaml:\d+: spec\.defaults\.podPatch \(job 'a'\)", text), text
    assert "\n" not in text


def test_a_patch_adds_what_mlgen_does_not_own() -> None:
    """A sidecar with its own env and mounts, a label of the team's, another volume."""
    doc = batch_doc()
    doc["spec"]["defaults"]["podPatch"] = {
        "strategic": {
            "metadata": {"labels": {"team": "vision"}},
            "spec": {
                "containers": [
                    {"name": "main", "env": [{"name": "HF_HOME", "value": "/cache"}]},
                    {
                        "name": "side",
                        "image": "busybox:1.36",
                        "command": ["sleep", "1"],
                        "env": [{"name": "INDEX", "value": "0"}],
                        "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                            "runAsNonRoot": True,
                        },
                    },
                ],
                "volumes": [{"name": "cache", "emptyDir": {}}],
            },
        }
    }
    for variant in ("sequential", "parallel"):
        render_doc(doc, variants=(variant,))


@pytest.mark.parametrize(
    "path", ["//dev/shm", "/dev/shm/.", "/etc/mlgen/params/x", "/data/./x", "/data//x"]
)
def test_mount_paths_of_the_batch_are_plain_and_not_mlgen_s(path: str) -> None:
    import yaml

    from mlgen import source

    doc = batch_doc()
    doc["spec"]["defaults"]["volumes"] = [{"name": "d", "emptyDir": {}}]
    doc["spec"]["defaults"]["volumeMounts"] = [{"name": "d", "mountPath": path}]
    _, problems = source.load_text(yaml.safe_dump(doc), source="batch.yaml")
    assert problems and "volumeMounts" in problems[0], problems
    assert ("mlgen mounts its own volume" in problems[0]) == ("mlgen" in path or "shm" in path), (
        problems
    )
