"""The conformance scenarios of docs/design.md on dedicated test batches: order and bounds of
both variants, speed-up, linear growth, heterogeneous chains, capacity, failures and
admission. Durations are short; ε comes from the session's calibration run. The failure
scenarios run on real kubelets too: a stand-in exits with its job's simulated exit code
(and counts an Indexed Job's attempts through the downward API), as KWOK does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mlgen import checks, variants
from mlgen.checks import Epsilon
from mlgen.conformance.plugin import Cluster
from mlgen.conformance.runner import Runner, sleeper_batch
from mlgen.conformance.suite import check_result

simulated_only = pytest.mark.simulated_only


@pytest.mark.parametrize("strategy", ["waves", "indexed"])
def test_sequential_steps_complete_in_order_within_bounds(
    mlgen_run: Runner, mlgen_epsilon: Epsilon, strategy: str, mlgen_record: Callable[[str], None]
) -> None:
    """Twelve steps: past ten, where waves or indexes sorted as text would run step-10
    before step-2."""
    durations = [2, 1, 1] * 4
    doc = sleeper_batch(f"seq-{strategy}", durations=durations, strategy=strategy)
    result = mlgen_run.run(mlgen_run.from_dict(doc), "sequential")
    assert result.failure is None
    assert len(result.timeline.jobs if strategy == "waves" else result.timeline.pods) == 12
    check_result(result, mlgen_epsilon)
    mlgen_record(
        f"{strategy}: makespan {result.timeline.makespan:.0f}s for 12 steps, Σd = {sum(durations)}s"
    )


def test_parallel_runs_p_at_a_time_and_beats_sequential_by_about_p(
    mlgen_run: Runner, mlgen_epsilon: Epsilon, mlgen_record: Callable[[str], None]
) -> None:
    """p < n, so both p - 1 and p + 1 would show; the ratio's bounds follow from each run's
    own bounds: Σd / T_par,max ≤ T_seq / T_par ≤ T_seq,max / T_par,min."""
    p, n, d = 3, 6, 4.0
    doc = sleeper_batch("speedup", durations=[int(d)] * n, parallelism=p)
    batch = mlgen_run.from_dict(doc)
    par = mlgen_run.run(batch, "parallel")
    seq = mlgen_run.run(batch, "sequential")
    for result in (par, seq):
        assert result.failure is None
        check_result(result, mlgen_epsilon)
    assert par.timeline.max_concurrency() == p
    rounds, res = -(-n // p), par.timeline.resolution
    par_min, par_max = (
        rounds * d,
        rounds * d + rounds * mlgen_epsilon.of(variants.get("parallel")) + res,
    )
    seq_max = n * d + n * mlgen_epsilon.client + checks.COMPLETION_ALLOWANCE + res
    ratio = seq.timeline.makespan / par.timeline.makespan
    low, high = n * d / par_max, seq_max / par_min
    mlgen_record(
        f"speed-up: T_seq {seq.timeline.makespan:.2f}s / T_par "
        f"{par.timeline.makespan:.2f}s = {ratio:.2f} (p = {p}, n = {n}; bounds "
        f"[{low:.2f}, {high:.2f}])"
    )
    assert low <= ratio <= high, f"T_seq/T_par = {ratio:.2f} outside [{low:.2f}, {high:.2f}]"


def test_parallel_with_fewer_slots_than_jobs_follows_the_schedule(
    mlgen_run: Runner, mlgen_epsilon: Epsilon
) -> None:
    doc = sleeper_batch("waves-of-two", durations=[2, 3, 2, 3, 2], parallelism=2)
    result = mlgen_run.run(mlgen_run.from_dict(doc), "parallel")
    assert result.failure is None
    check_result(result, mlgen_epsilon)


def test_sequential_makespan_grows_linearly(
    mlgen_run: Runner, mlgen_epsilon: Epsilon, mlgen_record: Callable[[str], None]
) -> None:
    spans = []
    for n in (6, 12):
        doc = sleeper_batch(f"linear-{n}", durations=[3] * n, strategy="indexed")
        result = mlgen_run.run(mlgen_run.from_dict(doc), "sequential")
        assert result.failure is None
        check_result(result, mlgen_epsilon)
        spans.append(result.timeline.makespan)
    ratio = spans[1] / spans[0]
    mlgen_record(f"linear growth: T(12) {spans[1]:.2f}s / T(6) {spans[0]:.2f}s = {ratio:.3f}")
    # (2Σd + 2n·o + lag) / (Σd + n·o + lag) stays within [1.8, 2.2] for any per-step
    # overhead o and a lag below (Σd + n·o)/4 ≥ 4.5 s; millisecond times leave no tick to
    # round away.
    assert 1.8 <= ratio <= 2.2, f"T(2n)/T(n) = {ratio:.3f} outside [1.8, 2.2]"


def test_heterogeneous_chain_runs_in_order(mlgen_run: Runner, mlgen_epsilon: Epsilon) -> None:
    doc = sleeper_batch("hetero", durations=[2, 3, 2])
    doc["spec"]["variants"] = ["sequential"]
    doc["spec"]["jobs"][0].update(
        image="busybox:1.36.1-musl", resources={"requests": {"cpu": "500m", "memory": "64Mi"}}
    )
    doc["spec"]["jobs"][1].update(
        image="busybox:1.36.1-glibc",
        resources={"requests": {"cpu": "1", "memory": "128Mi"}},
        shmSize="64Mi",
    )
    result = mlgen_run.run(mlgen_run.from_dict(doc), "sequential")
    assert result.failure is None
    check_result(result, mlgen_epsilon)
    images = [
        o["spec"]["template"]["spec"]["containers"][0]["image"]
        for o in result.objects
        if o["kind"] == "Job"
    ]
    assert len(set(images)) == 3


@simulated_only
def test_gpu_capacity_bounds_concurrency_and_makespan(
    mlgen_cluster: Cluster,
    mlgen_run: Runner,
    mlgen_epsilon: Epsilon,
    mlgen_record: Callable[[str], None],
) -> None:
    from mlgen.cluster import pools

    pool = f"cap-{mlgen_run.namespace[-4:]}"
    created = pools.create(
        mlgen_cluster.client,
        [
            pools.Pool(
                pool=pool,
                count=1,
                capacity={"cpu": "16", "memory": "64Gi", "pods": "110", "nvidia.com/gpu": "2"},
                labels={"mlgen.io/pool": pool},
                taints=({"key": "mlgen.io/pool", "value": pool, "effect": "NoSchedule"},),
            )
        ],
    )
    try:
        doc = sleeper_batch(
            "gpu-cap",
            durations=[2] * 8,
            parallelism=8,
            extra_defaults={
                "resources": {"requests": {"cpu": "1"}, "limits": {"nvidia.com/gpu": 1}},
                "nodeSelector": {"mlgen.io/pool": pool},
                "tolerations": [
                    {
                        "key": "mlgen.io/pool",
                        "operator": "Equal",
                        "value": pool,
                        "effect": "NoSchedule",
                    }
                ],
            },
        )
        room = {"cpu": "16", "memory": "64Gi", "nvidia.com/gpu": "2"}
        result = mlgen_run.run(mlgen_run.from_dict(doc), "parallel", capacity=room)
        assert result.failure is None
        checks.all_complete(result.timeline)
        checks.max_running(result.timeline, 2)
        # `mlgen estimate --capacity nvidia.com/gpu=2` models the two GPUs: within 10 %.
        assert result.estimate is not None
        error = abs(result.estimate - result.timeline.makespan) / result.timeline.makespan
        assert error <= 0.10, (result.estimate, result.timeline.makespan)
        # With room for 2 the batch behaves as p = 2: four rounds of two.
        checks.parallel_bounds(
            result.timeline,
            result.durations,
            parallelism=2,
            epsilon=mlgen_epsilon.of(variants.get("parallel")),
        )
        mlgen_record(
            f"capacity: peak {result.timeline.max_concurrency()} pods, makespan "
            f"{result.timeline.makespan:.1f}s, estimate {result.estimate:.1f}s"
        )
    finally:
        for name in created:
            mlgen_cluster.client.core.delete_node(name)


def _failing_step(doc: dict[str, Any], position: int, *, attempts: int | None = None) -> None:
    job = doc["spec"]["jobs"][position]
    job["args"] = ["exit 3"]  # what a real cluster runs
    job["simulate"] = {"exitCode": 3, **({"failAttempts": attempts} if attempts else {})}


def test_waves_retry_a_failing_step_then_stop(mlgen_run: Runner) -> None:
    """A waves step is a plain Job, whose pods carry no attempt count for KWOK: its step
    fails every attempt, and must be tried 1 + retries times, one at a time."""
    doc = sleeper_batch("waves-retry", durations=[2, 2, 2], extra_defaults={"retries": 1})
    _failing_step(doc, 1)
    result = mlgen_run.run(mlgen_run.from_dict(doc), "sequential")
    assert result.failure is not None
    timeline = result.timeline
    checks.statuses(timeline, {"step-0": "Complete", "step-1": "Failed", "step-2": "NotStarted"})
    attempts = [
        p.phase for p in sorted(timeline.pods, key=lambda p: p.start or 0.0) if p.step == "step-1"
    ]
    assert attempts == ["Failed", "Failed"], (
        f"step-1 should be tried 1 + retries = 2 times; its attempts: {attempts}"
    )
    assert timeline.max_concurrency() == 1


@pytest.mark.parametrize("strategy", ["waves", "indexed"])
def test_on_failure_continue_runs_the_later_steps(mlgen_run: Runner, strategy: str) -> None:
    doc = sleeper_batch(
        f"go-on-{strategy}", durations=[2, 2, 2], strategy=strategy, on_failure="continue"
    )
    _failing_step(doc, 1)
    result = mlgen_run.run(mlgen_run.from_dict(doc), "sequential")
    assert result.failure is not None, "the batch should still be reported Failed"
    timeline = result.timeline
    if strategy == "waves":
        checks.statuses(timeline, {"step-0": "Complete", "step-1": "Failed", "step-2": "Complete"})
    else:
        (job,) = timeline.jobs
        assert job.status == "Failed" and job.failed_indexes == "1"
    succeeded = [p.step for p in timeline.pods if p.phase == "Succeeded"]
    assert sorted(succeeded) == ["step-0", "step-2"], "step-2 must run after step-1 failed"
    assert timeline.max_concurrency() == 1


@pytest.mark.parametrize("strategy", ["waves", "indexed"])
def test_failing_step_stops_a_stop_chain(mlgen_run: Runner, strategy: str) -> None:
    doc = sleeper_batch(f"stop-{strategy}", durations=[1, 1, 1], strategy=strategy)
    _failing_step(doc, 1)
    result = mlgen_run.run(mlgen_run.from_dict(doc), "sequential")
    assert result.failure is not None, "the batch should be reported Failed"
    timeline = result.timeline
    if strategy == "waves":
        assert {j.step: j.status for j in timeline.jobs} == {
            "step-0": "Complete",
            "step-1": "Failed",
            "step-2": "NotStarted",
        }
        assert "1 later step(s) not started" in str(result.failure)
    else:
        (job,) = timeline.jobs
        assert job.status == "Failed" and job.failed_indexes == "1"
        assert not [p for p in timeline.pods if p.index == 2], "index 2 must never start"
        assert "failed indexes 1" in str(result.failure)
    assert not [p for p in timeline.pods if p.step == "step-2"], "step-2 must never start"


def test_failing_index_is_retried_while_the_others_complete(mlgen_run: Runner) -> None:
    doc = sleeper_batch(
        "retry", durations=[1, 1, 1, 1], parallelism=2, extra_defaults={"retries": 2}
    )
    _failing_step(doc, 2)
    result = mlgen_run.run(mlgen_run.from_dict(doc), "parallel")
    assert result.failure is not None
    (job,) = result.timeline.jobs
    assert job.status == "Failed" and job.failed_indexes == "2"
    checks.retried(result.timeline, index=2, failures=1 + 2, parallelism=2)
    codes = {p.exit_code for p in result.timeline.pods if p.index == 2}
    assert codes == {3}
