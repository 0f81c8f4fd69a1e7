"""Pod fields (volumes, envFrom, pull secrets, pod labels/annotations, affinity, priority
class), the podPatch escape hatch and spec.podSecurity."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlgen import contract, render, source, validation, variants
from mlgen.errors import RenderError

from .conftest import batch_doc, load, objects, render_doc, staged_doc

POD_FIELDS = Path(__file__).parent / "data" / "pod-fields.yaml"
PLAIN = variants.defaults(staged=False)  # what a batch without stages renders


def _docs() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(POD_FIELDS.read_text()))


def _pod(doc: dict[str, Any], variant: str = "sequential") -> dict[str, Any]:
    jobs = [o for o in objects(render_doc(doc, variants=(variant,))) if o["kind"] == "Job"]
    return jobs[0]["spec"]["template"]  # type: ignore[no-any-return]


def _problems(doc: dict[str, Any]) -> list[str]:
    _, problems = source.load_text(yaml.safe_dump(doc, sort_keys=False), source="batch.yaml")
    assert problems, "the batch should have been rejected"
    return problems


def test_every_pod_field_reaches_the_pod_template_of_every_variant() -> None:
    doc = _docs()[0]
    for variant in ("sequential", "parallel"):
        template = _pod(doc, variant)
        pod, main = template["spec"], template["spec"]["containers"][0]
        assert {v["name"] for v in pod["volumes"]} >= {"data", "config", "creds", "scratch"}
        assert [m["mountPath"] for m in main["volumeMounts"]][-4:] == [
            "/data",
            "/etc/train",
            "/var/run/creds",
            "/scratch",
        ]
        assert main["envFrom"][1] == {
            "secretRef": {"name": "train-secrets", "optional": True},
            "prefix": "S_",
        }
        assert pod["imagePullSecrets"] == [{"name": "registry-creds"}]
        assert template["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
        assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        assert pod["affinity"]["nodeAffinity"]
        assert pod["priorityClassName"] == "batch-low"
        # the strategic patch: a scalar set, a container merged by name
        assert pod["terminationGracePeriodSeconds"] == 60
        assert main["workingDir"] == "/scratch" and main["name"] == "main"


def test_the_whole_file_passes_strict_validation_and_json_patch_applies() -> None:
    batches = source.load_files([POD_FIELDS])
    files = render.render_all(batches).files  # validates every object strictly
    assert files
    patched = _pod(_docs()[1])["spec"]
    assert patched["enableServiceLinks"] is False
    assert patched["containers"][0]["workingDir"] == "/tmp"


def test_pod_fields_are_in_the_content_hash_and_pod_labels_stay_off_the_job() -> None:
    doc = _docs()[0]
    before = [o for o in objects(render_doc(doc)) if o["kind"] == "Job"]
    changed = copy.deepcopy(doc)
    changed["spec"]["defaults"]["volumes"][0]["persistentVolumeClaim"]["claimName"] = "other"
    after = [o for o in objects(render_doc(changed)) if o["kind"] == "Job"]
    assert {j["metadata"]["name"] for j in before}.isdisjoint(j["metadata"]["name"] for j in after)
    assert all("sidecar.istio.io/inject" not in j["metadata"]["labels"] for j in before)


def test_root_needs_an_explicit_opt_out_and_validate_warns_about_it() -> None:
    root = _docs()[2]
    batch = load(root)
    assert batch.pod_security == "baseline"
    assert _pod(root)["spec"]["securityContext"]["runAsUser"] == 0
    assert any("spec.podSecurity: 'baseline' opts out" in w for w in validation.warnings(batch))
    restricted = copy.deepcopy(root)
    del restricted["spec"]["podSecurity"]
    with pytest.raises(
        RenderError,
        match=r":\d+: spec.defaults.podPatch \(job 'a'\): breaks Pod Security "
        r"'restricted': the pod runs as root .*set spec.podSecurity: baseline",
    ):
        render_doc(restricted)


def test_a_patch_that_breaks_the_level_or_the_schema_names_the_job() -> None:
    doc = batch_doc()
    doc["spec"]["defaults"]["podPatch"] = {"strategic": {"spec": {"hostNetwork": True}}}
    with pytest.raises(RenderError, match="breaks Pod Security 'restricted': hostNetwork"):
        render_doc(doc)
    doc["spec"]["podSecurity"] = "privileged"
    render_doc(doc)
    doc["spec"]["defaults"]["podPatch"] = {"strategic": {"spec": {"hostNetwerk": True}}}
    with pytest.raises(
        RenderError,
        match=r"podPatch \(job 'a'\): the patched pod template is "
        "not valid for Kubernetes",
    ):
        render_doc(doc)
    doc["spec"]["defaults"]["podPatch"] = {
        "json": [{"op": "replace", "path": "/spec/nope", "value": 1}]
    }
    with pytest.raises(RenderError, match=r"json\[0\] \(replace /spec/nope\).*does not exist"):
        render_doc(doc)


def test_strategic_delete_directive_removes_a_list_item() -> None:
    doc = _docs()[0]
    doc["spec"]["defaults"]["podPatch"] = {
        "strategic": {
            "spec": {
                "volumes": [{"name": "scratch", "$patch": "delete"}],
                "containers": [
                    {
                        "name": "main",
                        "volumeMounts": [{"mountPath": "/scratch", "$patch": "delete"}],
                    }
                ],
            }
        }
    }
    pod = _pod(doc)["spec"]
    assert "scratch" not in {v["name"] for v in pod["volumes"]}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"volumeMounts": [{"name": "nope", "mountPath": "/x"}]},
            "spec.jobs[0].volumeMounts[0].name: no volume named 'nope'",
        ),
        (
            {"volumes": [{"name": "v", "emptyDir": {}, "secret": {"secretName": "s"}}]},
            "needs exactly one of persistentVolumeClaim, configMap, secret or emptyDir",
        ),
        (
            {
                "volumes": [{"name": "v", "emptyDir": {}}],
                "volumeMounts": [{"name": "v", "mountPath": "/dev/shm"}],
            },
            "is where mlgen mounts its own volume",
        ),
        ({"volumes": [{"name": "dshm", "emptyDir": {}}]}, "is a volume mlgen adds itself"),
        (
            {"envFrom": [{"configMapRef": {"name": "a"}, "secretRef": {"name": "b"}}]},
            "exactly one of configMapRef or secretRef",
        ),
        (
            {"affinity": {"nodeAffinity": {"required": {}}}},
            "spec.jobs[0].affinity: is not a Kubernetes 1.36 affinity",
        ),
        ({"podAnnotations": {"mlgen.io/x": "y"}}, "is an annotation mlgen sets itself"),
        ({"podPatch": {"strategic": {}, "json": []}}, "podPatch needs exactly one of"),
        ({"priorityClassName": "Low"}, "'Low' is not a Kubernetes object name"),
    ],
)
def test_pod_field_mistakes_are_plain_errors(change: dict[str, Any], expected: str) -> None:
    doc = batch_doc(kubernetesVersion="1.36")
    doc["spec"]["jobs"][0].update(change)
    problems = _problems(doc)
    assert any(expected in p for p in problems), problems


def test_jobs_of_one_indexed_job_must_share_pod_fields() -> None:
    doc = batch_doc()
    doc["spec"]["jobs"][1]["priorityClassName"] = "high"
    with pytest.raises(RenderError, match=r"spec.jobs\[1\].priorityClassName: job 'b' differs"):
        render_doc(doc, variants=("parallel",))


def test_fs_group_reaches_the_pod_of_every_job_of_every_variant_and_strategy() -> None:
    doc = batch_doc()
    doc["spec"]["defaults"]["fsGroup"] = 2000
    assert all("fsGroup" not in _pod(batch_doc(), v)["spec"]["securityContext"] for v in PLAIN)
    for strategy in variants.strategies("sequential"):
        doc["spec"]["sequential"] = {"strategy": strategy}
        jobs = [o for o in objects(render_doc(doc)) if o["kind"] == "Job"]
        assert {j["metadata"]["labels"][contract.VARIANT] for j in jobs} == set(PLAIN)
        for job in jobs:
            assert job["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == 2000
    staged = staged_doc({"prep": ["a"], "sweep": ["b", "c"]})
    staged["spec"]["defaults"]["fsGroup"] = 2000
    jobs = [o for o in objects(render_doc(staged)) if o["kind"] == "Job"]
    assert len(jobs) == 2  # prep's Job, sweep's Indexed Job
    for job in jobs:
        assert job["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == 2000


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (-1, "-1 is not a group id the API accepts; use 0 to 2147483647"),
        (2**31, "2147483648 is not a group id the API accepts; use 0 to 2147483647"),
        ("2000", "'2000' is a string; write a whole number, without quotes"),
        (1.5, "write a whole number"),
        (True, "write a whole number"),
    ],
)
def test_a_bad_fs_group_is_refused_naming_the_field(value: object, why: str) -> None:
    doc = batch_doc()
    doc["spec"]["defaults"]["fsGroup"] = value
    (problem,) = _problems(doc)
    assert problem.startswith("batch.yaml:") and ": spec.defaults.fsGroup: " in problem
    assert why in problem and "\n" not in problem
    doc["spec"]["defaults"]["fsGroup"] = 0  # root's group is the API's to accept
    assert load(doc).jobs[0].fs_group == 0
