"""What a queued batch (spec.queue, Kueue) renders: the labels Kueue reads, a Flux chain
that waits for Complete through a queue (health.py), the Argo CD health check mlgen
prints, and the warning that points at it. conformance/test_kueue.py proves them against
the real Kueue, Argo CD and Flux."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mlgen import contract, estimate, health, rules, schedule, validation
from mlgen.cli.app import app
from mlgen.cluster import crds, kueue
from mlgen.errors import RenderError

from .conftest import batch_doc, load, objects, render_doc, staged_doc


def _queued(doc: dict[str, Any], **spec: Any) -> dict[str, Any]:
    doc["metadata"]["namespace"] = "team-a"
    doc["spec"].update({"queue": "team", "flux": {"source": "repo"}, **spec})
    return doc


def _docs(files: dict[str, str], path: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(files[path]) if d]


@pytest.mark.parametrize(
    ("doc", "chains"),
    [
        (batch_doc(), ["demo/flux"]),
        (batch_doc(sequential={"strategy": "indexed"}), ["demo/flux"]),
        (staged_doc(), ["demo/flux-stages"]),
    ],
    ids=["waves", "indexed", "stages"],
)
def test_a_queued_flux_chain_impersonates_its_account_to_wait_for_complete(
    doc: dict[str, Any], chains: list[str]
) -> None:
    files = render_doc(_queued(doc))
    for chain in chains:
        for kustomization in _docs(files, f"{chain}/kustomizations.yaml"):
            directory = chain.split("/")[1]
            assert kustomization["spec"]["serviceAccountName"] == f"mlgen-demo-{directory}"
            assert kustomization["spec"]["healthCheckExprs"] == [health.FLUX_JOB]
            assert kustomization["spec"]["wait"] is True
        account, role, binding = _docs(files, f"{chain}/access.yaml")
        assert account["kind"] == "ServiceAccount"
        assert account["metadata"] == {
            "name": f"mlgen-demo-{directory}",
            "namespace": "flux-system",
            "labels": {contract.MANAGED_BY: contract.MANAGER, contract.PART_OF: "demo"},
            # Never pruned: the chain's own pruning runs as this account, after it.
            "annotations": {health.PRUNE: "disabled"},
        }
        assert all(
            o["metadata"]["annotations"] == {health.PRUNE: "disabled"} for o in (role, binding)
        )
        # Exactly what the chain applies, in the batch's namespace: nothing cluster-wide.
        assert role["kind"] == "Role" and role["metadata"]["namespace"] == "team-a"
        assert {(r["apiGroups"][0], r["resources"][0]) for r in role["rules"]} == {
            ("batch", "jobs"),
            ("", "configmaps"),
        }
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert binding["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": f"mlgen-demo-{directory}",
                "namespace": "flux-system",
            }
        ]


def test_an_unqueued_batch_renders_as_before() -> None:
    doc = batch_doc(flux={"source": "repo"})
    files = render_doc(doc)
    assert not [p for p in files if p.endswith("access.yaml")]
    for kustomization in _docs(files, "demo/flux/kustomizations.yaml"):
        assert "serviceAccountName" not in kustomization["spec"]
        assert "healthCheckExprs" not in kustomization["spec"]


def test_the_health_expressions_wait_for_complete_and_fail_on_failed() -> None:
    """Kustomize-controller asks inProgress, then failed, then current: a suspended Job
    (queued) is in progress, never current."""
    assert "spec.suspend == true" in health.FLUX_JOB["inProgress"]
    assert "'Failed'" in health.FLUX_JOB["failed"]
    assert "'Complete'" in health.FLUX_JOB["current"]
    assert "suspend" not in health.FLUX_JOB["current"]


def test_every_job_carries_the_queue_and_priority_and_never_suspend() -> None:
    """Kueue's webhook sets spec.suspend on create; rendering it would make the GitOps
    tool own the field and fight Kueue over it."""
    doc = _queued(staged_doc(), workloadPriorityClass="high")
    doc["spec"]["variants"] = ["sequential", "stages"]
    jobs = [o for o in objects(render_doc(doc)) if o["kind"] == "Job"]
    assert len(jobs) >= 4
    for job in jobs:
        assert job["metadata"]["labels"][contract.QUEUE] == "team"
        assert job["metadata"]["labels"][contract.PRIORITY_CLASS] == "high"
        assert "suspend" not in job["spec"]


def test_a_priority_without_a_queue_is_refused(runner: CliRunner, write_batch: Any) -> None:
    doc = batch_doc(workloadPriorityClass="high")
    result = runner.invoke(app, ["validate", str(write_batch(doc))])
    assert result.exit_code != 0
    assert "workloadPriorityClass needs queue" in result.output
    assert "set spec.queue" in result.output


def test_render_points_argo_cd_users_at_the_health_check(
    runner: CliRunner, write_batch: Any, tmp_path: Any
) -> None:
    """A note, not a warning: the fix is the cluster's setting, which no batch can say."""
    queued = _queued(batch_doc())
    result = runner.invoke(app, ["render", str(write_batch(queued)), "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if "argocd-health" in line]
    assert len(notes) == 1 and notes[0].startswith("note: batch.yaml:"), result.output
    assert "spec.queue" in notes[0]
    strict = runner.invoke(app, ["validate", "--strict", str(write_batch(queued))])
    assert strict.exit_code == 0, strict.output
    # One Job (the parallel variant alone) has no next wave to start too soon.
    assert not health.argocd_note(load(_queued(batch_doc(variants=["parallel"]))))
    assert not health.argocd_note(load(batch_doc()))


def test_argocd_health_prints_a_configmap_patch_with_the_lua_check(runner: CliRunner) -> None:
    result = runner.invoke(app, ["argocd-health"])
    assert result.exit_code == 0, result.output
    patch = yaml.safe_load(result.output)
    assert patch["kind"] == "ConfigMap" and patch["metadata"]["name"] == "argocd-cm"
    lua = patch["data"][health.ARGOCD_KEY]
    assert health.ARGOCD_KEY == "resource.customizations.health.batch_Job"
    assert lua == health.argocd_lua()
    for needed in ('"Degraded"', '"Healthy"', '"Progressing"', '"Complete"', '"Failed"'):
        assert needed in lua, needed
    # Healthy only from Complete: the Suspended condition never makes a Job Healthy.
    healthy = lua.index('status = "Healthy"')
    assert lua.rindex("complete ~= nil", 0, healthy) > lua.rindex("Suspended", 0, healthy)


def _gpus(doc: dict[str, Any], each: int = 1) -> dict[str, Any]:
    doc["spec"]["defaults"]["resources"] = {
        "requests": {"cpu": "1"},
        "limits": {"nvidia.com/gpu": str(each)},
    }
    return doc


def test_room_for_counts_the_largest_pod_and_names_the_tightest_resource() -> None:
    pods = [({"cpu": "2"}, {"nvidia.com/gpu": "1"}), ({"cpu": "500m"}, {"nvidia.com/gpu": "2"})]
    assert rules.room_for({"nvidia.com/gpu": "4", "cpu": "16"}, pods) == (
        2,
        "4 nvidia.com/gpu at 2 each",
    )
    assert rules.room_for({"cpu": "3"}, pods) == (1, "3 cpu at 2 each")
    assert rules.room_for({"memory": "8Gi"}, pods) == (None, ""), "nothing asked: no bound"
    assert rules.room_for({}, pods) == (None, "")


def test_a_queue_quota_caps_each_indexed_job_to_what_kueue_admits() -> None:
    """Kueue admits an Indexed Job whole or not at all: p = 4 at 1 GPU in a quota of 2
    would never run, so it renders at 2, and says so once."""
    doc = _gpus(_queued(batch_doc(parallelism=3), queueQuota={"nvidia.com/gpu": "2"}))
    batch = load(doc)
    assert batch.parallelism == 2
    (job,) = [o for o in objects(render_doc(doc, variants=("parallel",))) if o["kind"] == "Job"]
    assert job["spec"]["parallelism"] == 2
    said = [w for w in validation.warnings(batch) if "spec.queueQuota" in w]
    assert len(said) == 1 and "admits 2 pod(s) at once (2 nvidia.com/gpu at 1 each)" in said[0]
    roomy = load(_gpus(_queued(batch_doc(parallelism=3), queueQuota={"nvidia.com/gpu": "8"})))
    assert roomy.parallelism == 3 and roomy.quota_cap is None
    assert not [w for w in validation.warnings(roomy) if "spec.queueQuota" in w]


def test_a_stage_runs_what_the_quota_admits() -> None:
    doc = _gpus(
        _queued(
            staged_doc({"prep": ["a"], "sweep": ["b", "c", "d"]}, sweep={"parallelism": 3}),
            queueQuota={"nvidia.com/gpu": "4"},
        ),
        each=2,
    )
    batch = load(doc)
    assert [s.parallelism for s in batch.stages] == [1, 2]


def test_a_quota_no_pod_fits_in_is_refused_at_its_line(runner: CliRunner, write_batch: Any) -> None:
    doc = _gpus(_queued(batch_doc(), queueQuota={"nvidia.com/gpu": "1"}), each=2)
    result = runner.invoke(app, ["validate", str(write_batch(doc))])
    assert result.exit_code != 0
    assert "spec.queueQuota: admits no pod at once (1 nvidia.com/gpu at 2 each)" in result.output
    assert "Kueue would never admit these Jobs" in result.output
    alone = runner.invoke(app, ["validate", str(write_batch(batch_doc(queueQuota={"cpu": "4"})))])
    assert alone.exit_code != 0 and "queueQuota needs queue" in alone.output


def test_estimate_counts_the_capacity(runner: CliRunner, write_batch: Any) -> None:
    """Eight 1-GPU jobs at p = 4 on 2 GPUs run as p = 2: the estimate says so, not half."""
    doc = _gpus(batch_doc(parallelism=4))
    doc["spec"]["jobs"] = [{"name": f"j{i}", "args": ["x"]} for i in range(8)]
    doc["spec"]["defaults"]["expectedDuration"] = "10m"
    path = str(write_batch(doc))
    plain = json.loads(runner.invoke(app, ["estimate", path, "--json"]).output)[0]
    room = runner.invoke(app, ["estimate", path, "--json", "--capacity", "nvidia.com/gpu=2"])
    assert room.exit_code == 0, room.output
    capped = json.loads(room.output)[0]
    assert (plain["parallelism"], capped["parallelism"]) == (4, 2)
    assert capped["parallelSeconds"] == pytest.approx(2 * plain["parallelSeconds"], rel=0.01)
    for bad, said in (
        ("nvidia.com/gpu", "write it as RESOURCE=QUANTITY"),
        ("nvidia.com/gpu=lots", "not a Kubernetes quantity"),
        ("nvidia.com/gpu=0", "room for no pod"),
    ):
        result = runner.invoke(app, ["estimate", path, "--capacity", bad])
        assert result.exit_code != 0 and said in result.output, (bad, result.output)


def test_a_stage_of_a_job_each_under_a_quota_starts_them_all_and_kueue_admits_what_fits() -> None:
    """Jobs that differ in image render a Job each, which Kueue admits one by one: the
    quota caps what runs at once (estimates, checks), never refuses the stage."""
    doc = _gpus(
        _queued(
            staged_doc({"prep": ["a"], "sweep": ["b", "c", "d"]}),
            queueQuota={"nvidia.com/gpu": "2"},
        )
    )
    for job, image in zip(doc["spec"]["jobs"][1:], ["x:1", "y:1", "z:1"], strict=True):
        job["image"] = image
    batch = load(doc)
    assert batch.stages[1].parallelism == 2 and batch.stages[1].asked == 3
    jobs = [o for o in objects(render_doc(doc)) if o["kind"] == "Job"]
    assert len(jobs) == 4, "a Job each in the sweep, beside prep's"
    # Without the cap a p below the job count is refused, as before.
    doc["spec"].pop("queueQuota")
    doc["spec"]["stages"][1]["parallelism"] = 2
    with pytest.raises(RenderError, match="parallelism 2"):
        render_doc(doc)


def test_the_quota_warning_is_for_the_parallel_variant_only() -> None:
    doc = _gpus(
        _queued(
            batch_doc(parallelism=3, variants=["sequential"]), queueQuota={"nvidia.com/gpu": "2"}
        )
    )
    assert not [w for w in validation.warnings(load(doc)) if "spec.queueQuota" in w]


def test_estimate_keeps_an_override_of_parallelism_within_the_quota(
    runner: CliRunner, write_batch: Any
) -> None:
    doc = _gpus(_queued(batch_doc(parallelism=2), queueQuota={"nvidia.com/gpu": "2"}))
    doc["spec"]["jobs"] = [{"name": f"j{i}", "args": ["x"]} for i in range(8)]
    result = runner.invoke(app, ["estimate", str(write_batch(doc)), "--json", "-p", "4"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["parallelism"] == 2


def test_a_new_priority_is_a_new_job_and_the_queue_keeps_the_names() -> None:
    """Kueue refuses to change an admitted Job's priority, so a new priority renders a
    new Job; the queue label stays out of the name (queued batches keep their names)."""

    def names(doc: dict[str, Any]) -> list[str]:
        return sorted(o["metadata"]["name"] for o in objects(render_doc(doc)) if o["kind"] == "Job")

    plain = names(_queued(batch_doc()))
    assert names(_queued(batch_doc(), queue="other")) == plain
    high = names(_queued(batch_doc(), workloadPriorityClass="high"))
    low = names(_queued(batch_doc(), workloadPriorityClass="low"))
    assert len({*plain, *high, *low}) == 3 * len(plain)


def test_room_not_parallelism_starts_the_next_pod_through_the_scheduler() -> None:
    """Eight 2 s jobs: at p = 8 on 2 GPUs the pods wait Pending and the scheduler binds
    each the moment one ends; at p = 2 (a quota) the Job controller creates each, a sync
    later. The sequential estimate does not change."""
    doc = _gpus(_queued(batch_doc(parallelism=8)))
    doc["spec"]["jobs"] = [{"name": f"j{i}", "args": ["x"]} for i in range(8)]
    doc["spec"]["defaults"]["expectedDuration"] = "2s"
    room = estimate.of(load(doc), capacity={"nvidia.com/gpu": "2"})
    doc["spec"]["queueQuota"] = {"nvidia.com/gpu": "2"}
    quota = estimate.of(load(doc))
    seconds = {e: dict(x.makespans) for e, x in (("room", room), ("quota", quota))}
    assert room.parallelism == quota.parallelism == 2
    assert seconds["room"]["sequential"] == seconds["quota"]["sequential"]
    gap = 3 * (estimate.overheads()["parallel"] - schedule.SCHEDULED_ROUND)
    assert seconds["quota"]["parallel"] - seconds["room"]["parallel"] == pytest.approx(gap)


def _workload(name: str, job: str, *, admitted: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {contract.WORKLOAD_JOB_UID: f"uid-{job}"}},
        "status": {"conditions": [{"type": "Admitted", "status": admitted}]},
    }


def _client(*jobs: str) -> Any:
    """A client listing these Jobs, each with uid `uid-<name>`."""
    items = [SimpleNamespace(metadata=SimpleNamespace(name=j, uid=f"uid-{j}")) for j in jobs]
    return SimpleNamespace(
        batch=SimpleNamespace(list_namespaced_job=lambda namespace: SimpleNamespace(items=items))
    )


def test_each_job_is_matched_to_its_workload_and_what_was_not_admitted_is_said(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listed = [
        _workload("a-evicted", "a", admitted="False"),
        _workload("a-now", "a", admitted="True"),
        _workload("b-waiting", "b", admitted="False"),
    ]
    monkeypatch.setattr(crds, "list_objects", lambda *a, **k: listed)
    assert kueue.workloads(_client(), "ns")["uid-a"]["metadata"]["name"] == "a-now"
    problems = kueue.not_admitted(_client("a", "b", "c"), "ns", ["a", "b", "c", "gone"])
    assert problems == [
        "Job b: Workload b-waiting not admitted: no word",
        "Job c: no Workload; Kueue never saw it (is spec.queue its?). "
        "Workloads in ns: a-now, b-waiting",
        "Job gone: gone from ns before its admission was read",
    ]
