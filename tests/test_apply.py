"""`mlgen apply` without a cluster: its plan, the order of applies and waits against a
fake client, and the directories it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mlgen import apply, contract, lookout
from mlgen.cli.app import app
from mlgen.errors import JobFailedError, StuckError, UsageError

from .conftest import batch_doc, objects, render_doc


def job(
    name: str,
    wave: int,
    *,
    strategy: str = "waves",
    on_failure: str = "stop",
    namespace: str = "ns",
) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {
                contract.SYNC_WAVE: str(wave),
                contract.STRATEGY: strategy,
                contract.ON_FAILURE: on_failure,
                contract.STEP_NAME: name,
            },
        },
    }


def test_plan_puts_configuration_first_and_groups_jobs_by_wave() -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}}
    config_objects, waves = apply.plan([job("b", 1), job("a", 0), config, job("c", 1)])
    assert [o["metadata"]["name"] for o in config_objects] == ["c"]
    assert [[j["metadata"]["name"] for j in w] for w in waves] == [["a"], ["b", "c"]]
    bad = job("x", 0)
    bad["metadata"]["annotations"][contract.SYNC_WAVE] = "first"
    with pytest.raises(UsageError, match="sync-wave is 'first', not a whole number"):
        apply.plan([bad])


class FakeCluster:
    """Records what apply does; every Job's pod succeeds (or fails) the moment it is awaited."""

    def __init__(
        self,
        failing: set[str] = frozenset(),  # type: ignore[assignment]
        *,
        failed_late: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> None:
        self.calls: list[str] = []
        self.failing = failing
        # The run's pods, read as the API server filters them (by phase only: every pod
        # here belongs to the run).
        self.listed: list[dict[str, Any]] = []
        # Jobs whose pod succeeds but whose Job then fails: the fake disagrees with itself
        # as a cluster does when a Job's deadline passes before it is marked Complete.
        self.failed_late = failed_late

    def namespace_exists(self, name: str) -> bool:
        return True

    def pods(
        self, namespace: str, *, selector: str | None = None, fields: str | None = None
    ) -> list[dict[str, Any]]:
        self.calls.append(f"pods {fields}")
        found = self.listed
        for term in (fields or "").split(","):
            _, _, phase = term.partition("!=")
            if phase:
                found = [p for p in found if p["status"]["phase"] != phase]
            elif term:
                found = [p for p in found if p["status"]["phase"] == term.split("=")[1]]
        return found

    def events(self, namespace: str, *, about: str) -> list[dict[str, Any]]:
        return []

    def jobs(self, namespace: str, *, selector: str | None = None) -> list[dict[str, Any]]:
        return []  # none suspended: no Kueue here

    def apply(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        self.calls.append(f"apply {obj['metadata']['name']}")
        return obj

    def wait_pod_ended(self, namespace: str, selector: str, *, timeout: float) -> str | None:
        name = selector.removeprefix("job-name=")
        self.calls.append(f"pod {name}")
        return "Failed" if name in self.failing else "Succeeded"

    def wait_ended(
        self,
        namespace: str,
        names: list[str],
        *,
        until: tuple[str, ...],
        timeout: float,
        kind: tuple[str, str] = ("batch/v1", "Job"),
        seen: Any = None,
    ) -> dict[str, Any]:
        self.calls.append(f"job {','.join(names)}")
        return {
            n: {
                "status": {
                    "conditions": [
                        {
                            "type": "Failed"
                            if n in self.failing | self.failed_late
                            else "Complete",
                            "status": "True",
                            "reason": "DeadlineExceeded" if n in self.failed_late else None,
                        }
                    ],
                }
            }
            for n in names
        }


def test_each_wave_is_applied_only_after_the_previous_one_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"apply slept {seconds}s; it must wait on watches, not timers")

    monkeypatch.setattr("time.sleep", no_sleep)
    cluster = FakeCluster()
    outcome = apply.run(
        cluster,
        [job("a", 0), job("b", 1), job("c", 2)],  # type: ignore[arg-type]
        timeout=60,
        progress=lambda _: None,
    )
    assert cluster.calls == [
        "apply a",
        "pod a",
        "apply b",
        "pod b",
        "apply c",
        "pod c",
        "job a,b,c",
    ]
    assert [j.status for j in outcome.jobs] == ["Complete"] * 3


def test_a_failed_step_stops_a_stop_chain_and_not_a_continue_chain() -> None:
    cluster = FakeCluster(failing={"b"})
    with pytest.raises(JobFailedError, match=r"job/b failed; 1 later step\(s\) not started"):
        apply.run(
            cluster,
            [job("a", 0), job("b", 1), job("c", 2)],  # type: ignore[arg-type]
            timeout=60,
            progress=lambda _: None,
        )
    assert "apply c" not in cluster.calls
    cluster = FakeCluster(failing={"b"})
    with pytest.raises(JobFailedError, match=r"job/b failed; 0 later step"):
        apply.run(
            cluster,
            [
                job("a", 0),
                job("b", 1, on_failure="continue"),  # type: ignore[arg-type]
                job("c", 2),
            ],
            timeout=60,
            progress=lambda _: None,
        )
    assert "apply c" in cluster.calls


def test_a_job_that_fails_after_its_pod_succeeded_fails_the_run() -> None:
    """Its pod said Succeeded, so the chain moved on; the Job then said Failed (its
    activeDeadlineSeconds passed before it was marked Complete). The run must fail, name
    the Job and its reason, and say that the later steps had already been applied."""
    cluster = FakeCluster(failed_late={"b"})
    with pytest.raises(JobFailedError) as caught:
        apply.run(
            cluster,
            [job("a", 0), job("b", 1), job("c", 2)],  # type: ignore[arg-type]
            timeout=60,
            progress=lambda _: None,
        )
    message = str(caught.value)
    assert message.startswith("job/b (its pod succeeded, then the Job failed: DeadlineExceeded")
    assert "later steps had already been applied" in message
    assert cluster.calls[-1] == "job a,b,c"


def test_indexed_jobs_are_awaited_by_their_condition() -> None:
    cluster = FakeCluster()
    apply.run(
        cluster,
        [job("one", 0, strategy="parallel")],  # type: ignore[arg-type]
        timeout=60,
        progress=lambda _: None,
    )
    assert cluster.calls == ["apply one", "job one"]


def write_tree(tmp_path: Path) -> Path:
    runner = CliRunner()
    batch = tmp_path / "batch.yaml"
    batch.write_text(yaml.safe_dump(batch_doc()))
    result = runner.invoke(app, ["render", str(batch), "-o", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    return tmp_path / "m"


def test_apply_refuses_both_variants_of_one_batch_and_foreign_files(tmp_path: Path) -> None:
    root = write_tree(tmp_path)
    assert apply.load_dir(root / "demo" / "parallel")
    with pytest.raises(
        UsageError,
        match=r"holds parallel and sequential variants of batch "
        r"'demo'.*pass one variant directory",
    ):
        apply.load_dir(root)
    (root / "demo" / "parallel" / "extra.yaml").write_text("kind: ConfigMap\n")
    kustomization = root / "demo" / "parallel" / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("- job.yaml", "- job.yaml\n- extra.yaml")
    )
    with pytest.raises(UsageError, match=r"extra\.yaml: was not rendered by mlgen"):
        apply.load_dir(root / "demo" / "parallel")


def test_rendered_jobs_name_their_variant_unit() -> None:
    for obj in objects(render_doc(batch_doc())):
        if obj["kind"] == "Job":
            assert apply.variant_of(obj).directory == obj["metadata"]["labels"][contract.VARIANT]


def test_failures_of_an_indexed_job_name_the_batch_jobs() -> None:
    class Failing(FakeCluster):
        def wait_ended(
            self,
            namespace: str,
            names: list[str],
            *,
            until: tuple[str, ...],
            timeout: float,
            kind: tuple[str, str] = ("batch/v1", "Job"),
            seen: Any = None,
        ) -> dict[str, Any]:
            return {
                n: {
                    "status": {
                        "conditions": [{"type": "Failed", "status": "True"}],
                        "failedIndexes": "1,3-4",
                    }
                }
                for n in names
            }

    sweep = job("sweep", 0, strategy="parallel")
    sweep["metadata"]["annotations"][contract.JOB_NAMES] = "lr-1,lr-2,lr-3,lr-4,lr-5"
    lines: list[str] = []
    with pytest.raises(JobFailedError, match=r"failed indexes 1,3-4 \(lr-2, lr-4, lr-5\)"):
        apply.run(Failing(), [sweep], timeout=60, progress=lines.append)  # type: ignore[arg-type]
    assert any("lr-2, lr-4, lr-5" in line for line in lines)


def test_a_missing_service_account_or_secret_is_named_before_anything_is_applied() -> None:
    doc = batch_doc()
    doc["spec"]["defaults"].update(serviceAccountName="trainer", secretEnv={"TOKEN": "wandb/key"})
    jobs = [o for o in objects(render_doc(doc, variants=("sequential",))) if o["kind"] == "Job"]
    assert apply.references(jobs[0]) == {("ServiceAccount", "trainer"), ("Secret", "wandb")}

    class Missing(FakeCluster):
        def exists(self, kind: str, namespace: str, name: str) -> bool:
            return kind == "Secret"

    cluster = Missing()
    with pytest.raises(
        UsageError,
        match=r"ServiceAccount 'trainer' is not in namespace ml, so the pods of "
        r"job/\S+ and 2 more cannot start; create it first "
        r"\(kubectl -n ml create serviceaccount trainer\)$",
    ):
        apply.run(cluster, jobs, timeout=60, progress=lambda _: None)  # type: ignore[arg-type]
    assert cluster.calls == [], "nothing applied"


def test_a_job_of_many_completions_reports_progress_only_when_counts_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr("time.monotonic", lambda: clock[0])
    said: list[str] = []
    sweep = {"kind": "Job", "metadata": {"name": "sweep-par"}, "spec": {"completions": 10_000}}
    seen = apply._counts(sweep, said.append)
    assert seen is not None and apply._counts(job("a", 0), said.append) is None

    def status(succeeded: int, active: int) -> Any:
        return {"status": {"succeeded": succeeded, "active": active, "failed": 0}}

    seen(status(10, 100))  # too soon after the apply
    clock[0] += apply.PROGRESS_EVERY
    seen(status(1200, 100))
    clock[0] += 1
    seen(status(1300, 100))  # too soon after the last line
    clock[0] += apply.PROGRESS_EVERY
    seen(status(1300, 100))
    clock[0] += apply.PROGRESS_EVERY
    seen(status(1300, 100))  # unchanged
    assert said == [
        "  job/sweep-par: 1,200/10,000 succeeded, 100 running, 0 failed",
        "  job/sweep-par: 1,300/10,000 succeeded, 100 running, 0 failed",
    ]


def test_a_step_a_previous_apply_finished_says_so_instead_of_0_seconds() -> None:
    class Finished(FakeCluster):
        def apply(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
            super().apply(obj)
            done = {"conditions": [{"type": "Complete", "status": "True"}]}
            return {**obj, "status": done} if obj["metadata"]["name"] == "a" else obj

    lines: list[str] = []
    apply.run(Finished(), [job("a", 0), job("b", 1)], timeout=60, progress=lines.append)  # type: ignore[arg-type]
    assert any(
        "'a'" in line and "Complete already (before this apply)" in line for line in lines
    ), lines
    assert not any("'a'" in line and "waiting" in line for line in lines), lines
    assert any("'b'" in line and "Succeeded after" in line for line in lines), lines


GPU = "0/6 nodes are available: 6 Insufficient nvidia.com/gpu."


def pod(name: str, phase: str, *, job_name: str = "a", **status: Any) -> dict[str, Any]:
    labels = {contract.JOB_NAME_LABEL: job_name}
    return {
        "metadata": {"name": name, "namespace": "ns", "labels": labels},
        "status": {"phase": phase, **status},
    }


def unschedulable(message: str) -> dict[str, Any]:
    condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
    return {"conditions": [{**condition, "message": message}]}


class Waiting(FakeCluster):
    """A step whose pod waits: each wait runs out its whole slice on a fake clock, `for_`
    slices long (then the pod succeeds); `turns` changes the pods before a given slice."""

    def __init__(self, clock: list[float], *, for_: int, turns: Any = None) -> None:
        super().__init__()
        self.clock, self.left, self.turns, self.slices = clock, for_, turns or {}, 0

    def wait_pod_ended(self, namespace: str, selector: str, *, timeout: float) -> str | None:
        self.calls.append(f"pod {selector.removeprefix('job-name=')}")
        self.slices += 1
        self.listed = self.turns.get(self.slices, self.listed)
        if self.left == 0:
            return "Succeeded"
        self.left -= 1
        self.clock[0] += timeout
        return None


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr("time.monotonic", lambda: now[0])

    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"apply slept {seconds}s; it must wait on watches, not timers")

    monkeypatch.setattr("time.sleep", no_sleep)
    return now


def test_a_waiting_step_says_the_schedulers_reason_once_and_again_when_it_changes(
    clock: list[float],
) -> None:
    cluster = Waiting(clock, for_=8)
    cluster.listed = [pod("a-x1", "Pending", **unschedulable(GPU))]
    cluster.turns = {6: [pod("a-x1", "Pending", **unschedulable(GPU.replace("6", "7")))]}
    lines: list[str] = []
    apply.run(cluster, [job("a", 0)], timeout=3600, progress=lines.append)  # type: ignore[arg-type]
    said = [line for line in lines if "Insufficient" in line]
    assert said == [
        f"  step 'a' (job/a): pod a-x1 Pending: Unschedulable: {GPU}",
        f"  step 'a' (job/a): pod a-x1 Pending: Unschedulable: {GPU.replace('6', '7')}",
    ], lines
    assert cluster.calls.count(f"pods {lookout.UNFINISHED}") == 8, "a look between slices"
    assert lines[-1].startswith("[1/1] step 'a' (job/a): Succeeded after 40.0s")


def test_a_container_that_cannot_start_is_said_with_its_waiting_reason(clock: list[float]) -> None:
    cluster = Waiting(clock, for_=3)
    waiting = {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "trainer:v9"'}
    container = {"name": "main", "state": {"waiting": waiting}}
    cluster.listed = [pod("a-x1", "Pending", containerStatuses=[container])]
    lines: list[str] = []
    apply.run(cluster, [job("a", 0)], timeout=3600, progress=lines.append)  # type: ignore[arg-type]
    said = 'ImagePullBackOff: Back-off pulling image "trainer:v9"'
    assert [line for line in lines if "Back-off" in line] == [
        f"  step 'a' (job/a): pod a-x1 Pending: {said}"
    ]


def test_a_pod_pending_past_the_bound_fails_the_run_with_the_reason(clock: list[float]) -> None:
    cluster = Waiting(clock, for_=10_000)
    cluster.listed = [pod("a-x1", "Pending", **unschedulable(GPU))]
    started = clock[0]
    with pytest.raises(StuckError) as caught:
        apply.run(
            cluster,
            [job("a", 0)],  # type: ignore[list-item]
            timeout=3600,
            progress=lambda _: None,
            pending_timeout=20,
        )
    message = str(caught.value)
    # Looked at every 5 s: first seen at 5 s, still alone and Pending at 30 s.
    assert message.startswith("step 'a' (job/a): pod ns/a-x1 has been Pending for at least 25s")
    assert f"at least 25s: Unschedulable: {GPU} No pod of the run ran" in message, message
    assert "ended for 20s (--pending-timeout)" in message and "\n" not in message
    assert clock[0] - started == 30, "failed at the bound, not at the --timeout"


def _run_bounded(cluster: Any) -> list[str]:
    """One step applied with a Pending bound of 20 s and an hour's timeout; its lines."""
    lines: list[str] = []
    apply.run(cluster, [job("a", 0)], timeout=3600, progress=lines.append, pending_timeout=20)
    return lines


def test_a_pod_queued_while_others_run_is_not_stuck(clock: list[float]) -> None:
    cluster = Waiting(clock, for_=40)  # 200 s, ten times the bound
    running = pod("a-r0", "Running")
    cluster.listed = [pod("a-x9", "Pending", **unschedulable(GPU)), running]
    lines = _run_bounded(cluster)
    assert sum("Insufficient" in line for line in lines) == 1, lines
    assert "Succeeded after 200.0s" in lines[-1]


def test_a_pod_pulling_its_image_past_the_bound_is_not_stuck(clock: list[float]) -> None:
    cluster = Waiting(clock, for_=40)  # 200 s, ten times the bound
    creating = {"name": "main", "state": {"waiting": {"reason": "ContainerCreating"}}}
    cluster.listed = [pod("a-x1", "Pending", containerStatuses=[creating])]
    lines = _run_bounded(cluster)
    assert not any("Pending" in line for line in lines), "no reason given, none said"
    assert "Succeeded after 200.0s" in lines[-1]


def test_a_failed_jobs_line_carries_its_pods_exit_code() -> None:
    cluster = FakeCluster(failing={"b"})
    end = {"exitCode": 3, "reason": "Error", "finishedAt": "2025-01-01T00:00:09Z"}
    earlier = {**end, "exitCode": 1, "finishedAt": "2025-01-01T00:00:02Z"}
    cluster.listed = [
        pod(f"b-{n}", "Failed", job_name="b", containerStatuses=[{"state": {"terminated": t}}])
        for n, t in (("first", earlier), ("retry", end))
    ]
    lines: list[str] = []
    with pytest.raises(JobFailedError, match=r"job/b \(exit code 3\) failed; 1 later step"):
        apply.run(
            cluster,
            [job("a", 0), job("b", 1), job("c", 2)],  # type: ignore[arg-type]
            timeout=60,
            progress=lines.append,
        )
    assert any(
        line.startswith("[2/3] step 'b' (job/b): Failed after") and line.endswith(": exit code 3")
        for line in lines
    ), lines


def test_pending_timeout_takes_seconds_or_a_duration_and_refuses_the_rest(tmp_path: Path) -> None:
    root = write_tree(tmp_path)
    runner = CliRunner()
    bad = runner.invoke(app, ["apply", str(root / "demo" / "parallel"), "--pending-timeout", "-5"])
    assert bad.exit_code == 2, bad.output
    assert "--pending-timeout: '-5' is not a duration" in bad.output
    assert "--pending-timeout" in runner.invoke(app, ["apply", "--help"]).output
