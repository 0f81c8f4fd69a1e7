"""Anything the API server would reject, `mlgen render` rejects first, naming the field.

Each bad value of the corpus is checked twice: `mlgen render` must refuse it with a
line naming the batch field; and the same batch rendered with mlgen's copy of the API's
rules switched off (`rules.relaxed()`) is sent to the API server of the local cluster
as a server-side dry run, which must refuse it too (`api=True`), or accepts it where
mlgen is deliberately stricter (`api=False`, the reason given). `api=None`: the value
cannot even be rendered without the rules (e.g. a duration in Arabic digits).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from mlgen import render, rules, source, variants
from mlgen.errors import ClusterError, MlgenError
from mlgen.kube import Kube

Doc = dict[str, Any]

BASE: Doc = {
    "apiVersion": "mlgen.io/v1alpha1",
    "kind": "Batch",
    "metadata": {"name": "bad", "namespace": "default"},
    "spec": {
        "sequential": {"strategy": "waves"},
        "defaults": {
            "image": "busybox:1.36",
            "command": ["sh", "-c"],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            "expectedDuration": "2s",
        },
        "jobs": [{"name": "a", "args": ["echo a"]}, {"name": "b", "args": ["echo b"]}],
    },
}


@dataclass(frozen=True)
class Bad:
    id: str
    mutate: Callable[[Doc], None]
    field: str  # what mlgen's error must name
    api: bool | None  # does the API server reject it too? None: not renderable at all
    why: str = ""  # for api=False: why mlgen is stricter


def defaults(**values: Any) -> Callable[[Doc], None]:
    return lambda d: d["spec"]["defaults"].update(values)


def requests(**values: Any) -> Callable[[Doc], None]:
    return lambda d: d["spec"]["defaults"]["resources"]["requests"].update(values)


def metadata(**values: Any) -> Callable[[Doc], None]:
    return lambda d: d["metadata"].update(values)


def job(**values: Any) -> Callable[[Doc], None]:
    return lambda d: d["spec"]["jobs"][0].update(values)


def patched(strategic: Doc) -> Callable[[Doc], None]:
    """A patch of every job (the parallel variant needs one pod template for all)."""
    return defaults(podPatch={"strategic": strategic})


CORPUS = [
    Bad("name-newline", metadata(name="b\n"), "metadata.name", True),
    Bad("name-upper", metadata(name="Bad"), "metadata.name", True),
    Bad("namespace-newline", metadata(namespace="default\n"), "metadata.namespace", True),
    Bad("job-name-newline", job(name="a\n"), "spec.jobs[0].name", True),
    Bad("label-key-newline", metadata(labels={"team\n": "x"}), "metadata.labels", True),
    Bad("label-value-newline", metadata(labels={"team": "x\n"}), "metadata.labels.team", True),
    Bad("label-value-long", metadata(labels={"team": "x" * 64}), "metadata.labels.team", True),
    Bad("label-prefix-bad", metadata(labels={"Ex.com/a": "x"}), "metadata.labels", True),
    Bad("label-two-slashes", metadata(labels={"a/b/c": "x"}), "metadata.labels", True),
    Bad(
        "reserved-controller-uid",
        defaults(labels={"controller-uid": "x"}),
        "spec.defaults.labels",
        True,
    ),
    Bad(
        "reserved-batch-label",
        defaults(labels={"batch.kubernetes.io/controller-uid": "x"}),
        "spec.defaults.labels",
        True,
    ),
    Bad(
        "node-selector-key-newline",
        defaults(nodeSelector={"disk\n": "ssd"}),
        "spec.defaults.nodeSelector",
        True,
    ),
    Bad(
        "node-selector-value-newline",
        defaults(nodeSelector={"disk": "ssd\n"}),
        "spec.defaults.nodeSelector.disk",
        True,
    ),
    Bad("queue-newline", lambda d: d["spec"].update(queue="q\n"), "spec.queue", True),
    Bad("env-name-newline", defaults(env={"A\n": "x"}), "spec.defaults.env", True),
    Bad("env-name-equals", defaults(env={"A=B": "x"}), "spec.defaults.env", True),
    Bad(
        "env-name-digit",
        defaults(env={"1A": "x"}),
        "spec.defaults.env",
        False,
        "the API takes any printable name; mlgen keeps to names every shell can export",
    ),
    Bad(
        "env-name-reserved",
        defaults(env={"JOB_COMPLETION_INDEX": "3"}),
        "spec.defaults.env",
        False,
        "the Job controller's index; a user value would make every index run one",
    ),
    Bad("env-name-long", job(env={"E" * 250: "x"}), "spec.jobs[0].env", True),
    Bad(
        "secret-name-newline",
        defaults(secretEnv={"T": "tok\n/key"}),
        "spec.defaults.secretEnv.T",
        True,
    ),
    Bad(
        "secret-key-newline",
        defaults(secretEnv={"T": "tok/key\n"}),
        "spec.defaults.secretEnv.T",
        True,
    ),
    Bad(
        "secret-name-upper", defaults(secretEnv={"T": "Tok/key"}), "spec.defaults.secretEnv.T", True
    ),
    Bad(
        "secret-key-dotdot", defaults(secretEnv={"T": "tok/.."}), "spec.defaults.secretEnv.T", True
    ),
    Bad(
        "service-account-newline",
        defaults(serviceAccountName="sa\n"),
        "spec.defaults.serviceAccountName",
        True,
    ),
    Bad(
        "image-whitespace",
        defaults(image=" busybox:1.36"),
        "spec.defaults.image",
        False,
        "a Job's template may hold it; the API server then refuses every pod it creates",
    ),
    Bad("cpu-arabic-digit", requests(cpu="٢"), "spec.defaults.resources.requests.cpu", True),
    Bad("cpu-newline", requests(cpu="2\n"), "spec.defaults.resources.requests.cpu", True),
    Bad("cpu-negative", requests(cpu="-1"), "spec.defaults.resources.requests.cpu", True),
    Bad(
        "memory-negative", requests(memory="-64Mi"), "spec.defaults.resources.requests.memory", True
    ),
    Bad(
        "half-gpu",
        defaults(resources={"limits": {"nvidia.com/gpu": 0.5}}),
        "spec.defaults.resources.limits.nvidia.com/gpu",
        True,
    ),
    Bad(
        "gpu-request-without-limit",
        defaults(resources={"requests": {"nvidia.com/gpu": 1}}),
        "spec.defaults.resources.limits.nvidia.com/gpu",
        True,
    ),
    Bad(
        "gpu-request-not-limit",
        defaults(resources={"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 2}}),
        "spec.defaults.resources.requests.nvidia.com/gpu",
        True,
    ),
    Bad(
        "request-over-limit",
        defaults(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
        "spec.defaults.resources.requests.cpu",
        True,
    ),
    Bad(
        "resource-name-space",
        defaults(resources={"requests": {"my gpu": "1"}}),
        "spec.defaults.resources.requests",
        True,
    ),
    Bad(
        "resource-name-unprefixed",
        defaults(resources={"requests": {"gpu": "1"}}),
        "spec.defaults.resources.requests",
        True,
    ),
    Bad(
        "resource-name-kubernetes-io",
        defaults(resources={"limits": {"kubernetes.io/x": "1"}}),
        "spec.defaults.resources.limits",
        False,
        "kubernetes.io/ names are Kubernetes' own; no node offers one, so the pod never runs",
    ),
    Bad("shm-negative", defaults(shmSize="-1Gi"), "spec.defaults.shmSize", True),
    Bad("shm-arabic", defaults(shmSize="\u0661Gi"), "spec.defaults.shmSize", True),
    Bad(
        "toleration-exists-value",
        defaults(tolerations=[{"key": "k", "operator": "Exists", "value": "v"}]),
        "spec.defaults.tolerations[0]",
        True,
    ),
    Bad(
        "toleration-no-key-equal",
        defaults(tolerations=[{"operator": "Equal", "value": "v"}]),
        "spec.defaults.tolerations[0]",
        True,
    ),
    Bad(
        "toleration-seconds-noschedule",
        defaults(
            tolerations=[
                {"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}
            ]
        ),
        "spec.defaults.tolerations[0]",
        True,
    ),
    Bad(
        "toleration-key-newline",
        defaults(tolerations=[{"key": "k\n", "operator": "Exists"}]),
        "spec.defaults.tolerations[0]",
        True,
    ),
    Bad(
        "toleration-value-newline",
        defaults(tolerations=[{"key": "k", "operator": "Equal", "value": "v\n"}]),
        "spec.defaults.tolerations[0]",
        True,
    ),
    Bad("timeout-beyond-int32", defaults(timeout="3000000000s"), "spec.defaults.timeout", True),
    Bad(
        "timeout-beyond-int64",
        defaults(timeout="99999999999999999999s"),
        "spec.defaults.timeout",
        True,
    ),
    Bad("timeout-newline", defaults(timeout="2h\n"), "spec.defaults.timeout", None),
    Bad("duration-arabic", defaults(expectedDuration="٢s"), "spec.defaults.expectedDuration", None),
    Bad(
        "duration-beyond-int64",
        defaults(expectedDuration="99999999999999999999s"),
        "spec.defaults.expectedDuration",
        False,
        "an annotation to the API; KWOK and estimates read it as a Go duration (int64 ns)",
    ),
    Bad("uid-beyond-int32", defaults(runAsUser=2**31), "spec.defaults.runAsUser", True),
    Bad("uid-beyond-int64", defaults(runAsUser=2**64), "spec.defaults.runAsUser", True),
    # The pod fields of generator/podfields.py.
    Bad(
        "volume-name-newline",
        defaults(volumes=[{"name": "v\n", "emptyDir": {}}]),
        "spec.defaults.volumes[0].name",
        True,
    ),
    Bad(
        "pvc-name-newline",
        defaults(volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "c\n"}}]),
        "spec.defaults.volumes[0].persistentVolumeClaim.claimName",
        False,
        "the API does not check it; the pod would wait for a claim no one can create",
    ),
    Bad(
        "pull-secret-newline",
        defaults(imagePullSecrets=["s\n"]),
        "spec.defaults.imagePullSecrets[0]",
        False,
        "the API does not check it; no Secret can have that name, so the pull fails",
    ),
    Bad(
        "priority-class-newline",
        defaults(priorityClassName="p\n"),
        "spec.defaults.priorityClassName",
        True,
    ),
    Bad(
        "pod-annotation-key-newline",
        defaults(podAnnotations={"a\n": "x"}),
        "spec.defaults.podAnnotations",
        True,
    ),
    Bad(
        "env-from-name-newline",
        defaults(envFrom=[{"configMapRef": {"name": "c\n"}}]),
        "spec.defaults.envFrom[0].configMapRef.name",
        True,
    ),
    Bad(
        "env-from-prefix-newline",
        defaults(envFrom=[{"configMapRef": {"name": "c"}, "prefix": "P\n"}]),
        "spec.defaults.envFrom[0].prefix",
        True,
    ),
    Bad(
        "empty-command",
        defaults(command=[]),
        "spec.defaults.command",
        False,
        "the API takes an empty command; the parallel entrypoint would then run nothing",
    ),
    # A podPatch can set anything: the patched template goes through the API's rules too.
    Bad(
        "patch-negative-emptydir",
        patched({"spec": {"volumes": [{"name": "s", "emptyDir": {"sizeLimit": "-1Gi"}}]}}),
        "spec.defaults.podPatch",  # where the patch is written: every job inherits it
        True,
    ),
    Bad(
        "patch-empty-items-path",
        patched(
            {
                "spec": {
                    "volumes": [
                        {
                            "name": "c",
                            "configMap": {"name": "c", "items": [{"key": "k", "path": ""}]},
                        }
                    ]
                }
            }
        ),
        "spec.defaults.podPatch",  # where the patch is written: every job inherits it
        True,
    ),
    Bad(
        "patch-in-without-values",
        patched(
            {
                "spec": {
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {"matchExpressions": [{"key": "pool", "operator": "In"}]}
                                ]
                            }
                        }
                    }
                }
            }
        ),
        "spec.defaults.podPatch",  # where the patch is written: every job inherits it
        True,
    ),
    Bad(
        "patch-label-key",
        patched({"metadata": {"labels": {"team/a/b": "x"}}}),
        "spec.defaults.podPatch",  # where the patch is written: every job inherits it
        True,
    ),
    Bad(
        "patch-label-value",
        patched({"metadata": {"labels": {"team": "-bad-"}}}),
        "spec.defaults.podPatch",  # where the patch is written: every job inherits it
        True,
    ),
]


def load(doc: Doc) -> tuple[list[Any], list[str]]:
    batches, problems = source.load_text(yaml.safe_dump(doc, allow_unicode=True), source="bad.yaml")
    return batches, problems


def mlgen_problems(doc: Doc) -> list[str]:
    batches, problems = load(doc)
    if problems:
        return problems
    try:
        render.render_batch(batches[0])
    except MlgenError as e:
        return str(e).splitlines()
    return []


def api_rejection(client: Kube, doc: Doc) -> str | None:
    """The first refusal of a server-side dry run of everything rendered, or None."""
    with rules.relaxed():
        batches, problems = load(doc)
        assert not problems, problems
        # The objects, not the files: a name with a newline would break the file header.
        files = {
            path: items
            for unit in variants.for_batch(batches[0])
            for path, items in unit.render(batches[0]).files.items()
        }
    for path, items in sorted(files.items(), key=lambda kv: "params" not in kv[0]):
        for obj in items:
            try:
                client.apply(obj, dry_run=True)
            except ClusterError as e:
                status = getattr(e.__cause__, "status", None) or 0
                # A refusal, not a broken cluster: 4xx, or the 500 of an object the API
                # server cannot even decode (a quantity it does not parse).
                assert 400 <= status < 500 or "unable to convert" in str(e), str(e)
                return f"{path}: {e}"
    return None


def test_the_base_batch_is_accepted_by_mlgen_and_the_api(mlgen_cluster: Any) -> None:
    assert mlgen_problems(copy.deepcopy(BASE)) == []
    assert api_rejection(mlgen_cluster.client, copy.deepcopy(BASE)) is None


@pytest.mark.parametrize("bad", CORPUS, ids=[b.id for b in CORPUS])
def test_what_the_api_rejects_mlgen_rejects_first(bad: Bad, mlgen_cluster: Any) -> None:
    doc = copy.deepcopy(BASE)
    bad.mutate(doc)
    problems = mlgen_problems(doc)
    assert problems, f"mlgen accepted {bad.id}"
    assert any(f": {bad.field}" in p for p in problems), problems
    assert all(len(p) < 600 for p in problems)
    if bad.api is None:
        with rules.relaxed(), pytest.raises((ValueError, MlgenError, AssertionError)):
            api_rejection(mlgen_cluster.client, doc)
        return
    refusal = api_rejection(mlgen_cluster.client, doc)
    if bad.api:
        assert refusal is not None, f"the API server accepts {bad.id}: mlgen is stricter"
    else:
        assert bad.why and refusal is None, f"the API server rejects {bad.id} too: {refusal}"
