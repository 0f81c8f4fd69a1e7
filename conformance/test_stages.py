"""Stages on the cluster, through `mlgen apply` (the GitOps tools' runs are in
test_gitops.py): prep → sweep (p at a time) → eval keeps its stage order, p within a stage
and its bounds; twelve stages run in number order; a failed sweep member stops the later
stages or not, as the stage says, while its siblings complete and it is retried."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mlgen import checks
from mlgen import timeline as timelines
from mlgen.checks import Epsilon
from mlgen.conformance.runner import Runner, staged_batch
from mlgen.conformance.suite import check_result


def test_a_pipeline_keeps_stage_order_p_and_its_bounds(
    mlgen_run: Runner, mlgen_epsilon: Epsilon, mlgen_record: Callable[[str], None]
) -> None:
    doc = staged_batch(
        "pipeline", {"prep": [2], "sweep": [2, 2, 3, 2, 2], "eval": [1]}, parallelism={"sweep": 2}
    )
    result = mlgen_run.run(mlgen_run.from_dict(doc), "stages")
    assert result.failure is None, str(result.failure)
    assert len(result.timeline.jobs) == 3  # prep's Job, the sweep's Indexed Job, eval's Job
    check_result(result, mlgen_epsilon)
    peak = timelines.peak([p for p in result.timeline.pods if p.step.startswith("sweep-")])
    mlgen_record(
        f"stages: prep → sweep (5 at p = 2) → eval in {result.timeline.makespan:.0f}s, "
        f"sweep peak {peak} pods"
    )


def test_twelve_stages_run_in_number_order(mlgen_run: Runner, mlgen_epsilon: Epsilon) -> None:
    """Past ten, where waves sorted as text would run stage 10 before stage 2."""
    doc = staged_batch("twelve", {f"s{i}": [1] for i in range(12)})
    result = mlgen_run.run(mlgen_run.from_dict(doc), "stages")
    assert result.failure is None, str(result.failure)
    check_result(result, mlgen_epsilon)
    checks.steps_in_order(result.timeline, [f"s{i}-0" for i in range(12)])


def _fail_member(doc: dict[str, object], name: str, *, attempts: int | None = None) -> None:
    job = next(j for j in doc["spec"]["jobs"] if j["name"] == name)  # type: ignore[index]
    job["args"] = ["exit 3"]  # what a real cluster runs
    job["simulate"] = {"exitCode": 3, **({"failAttempts": attempts} if attempts else {})}


@pytest.mark.parametrize("mode", ["stop", "continue"])
def test_a_failed_sweep_member_stops_the_later_stages_or_not(mlgen_run: Runner, mode: str) -> None:
    doc = staged_batch(
        f"fail-{mode}",
        {"prep": [1], "sweep": [1, 1, 1], "eval": [1]},
        parallelism={"sweep": 2},
        on_failure={"sweep": mode},
    )
    doc["spec"]["defaults"]["retries"] = 1  # type: ignore[index]
    _fail_member(doc, "sweep-1")
    result = mlgen_run.run(mlgen_run.from_dict(doc), "stages")
    assert result.failure is not None, "the batch should be reported Failed"
    timeline = result.timeline
    succeeded = sorted(p.step for p in timeline.pods if p.phase == "Succeeded")
    # The failed member's siblings complete whatever the stage says.
    assert {"prep-0", "sweep-0", "sweep-2"} <= set(succeeded), succeeded
    # Retried 1 + retries times, one index of an Indexed Job.
    failed = [p for p in timeline.pods if p.step == "sweep-1" and p.phase == "Failed"]
    assert len(failed) == 2, [(p.name, p.phase) for p in timeline.pods if p.step == "sweep-1"]
    if mode == "stop":
        assert "eval-0" not in succeeded and not [p for p in timeline.pods if p.step == "eval-0"]
        assert "1 later step(s) not started" in str(result.failure)
    else:
        assert "eval-0" in succeeded, "eval must run after the sweep failed under continue"
        sweep_end = max(p.end or 0.0 for p in timeline.pods if p.step.startswith("sweep-"))
        eval_start = min(p.start or 0.0 for p in timeline.pods if p.step == "eval-0")
        assert eval_start >= sweep_end, "eval started before the sweep ended"
    ended = {j.wave: j.status for j in timeline.jobs}  # a Job a stage here: by its wave
    assert ended == {0: "Complete", 1: "Failed", 2: "NotStarted" if mode == "stop" else "Complete"}
