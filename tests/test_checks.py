"""Every conformance check shown able to fail, without a cluster: for each, a crafted
timeline that keeps its promise and ones that break it (overlap, out of order, too slow,
too fast, too many pods, min(p, n) never reached, wrong retry count)."""

from __future__ import annotations

import pytest

from mlgen import checks
from mlgen.timeline import JobRecord, PodRecord, Timeline

RES = 0.25  # a watch-recorded timeline


def chain(
    *spans: tuple[float, float], names: list[str] | None = None, statuses: list[str] | None = None
) -> Timeline:
    """A waves run: one Job and one pod per step, (start, end) each."""
    names = names or [f"s{i}" for i in range(len(spans))]
    statuses = statuses or ["Complete"] * len(spans)
    jobs = [
        JobRecord(name=f"j-{n}", step=n, wave=i, status=st, start=a, end=b)
        for i, ((a, b), n, st) in enumerate(zip(spans, names, statuses, strict=True))
    ]
    pods = [
        PodRecord(
            name=f"p-{n}",
            job=f"j-{n}",
            index=None,
            attempt=1,
            node="n",
            phase="Succeeded" if st == "Complete" else "Failed",
            start=a,
            end=b,
            exit_code=0,
            step=n,
        )
        for (a, b), n, st in zip(spans, names, statuses, strict=True)
    ]
    return Timeline(
        batch="b",
        variant="sequential",
        namespace="ns",
        origin="",
        jobs=jobs,
        pods=pods,
        resolution=RES,
    )


def indexed(*pods: tuple[int, float, float, str], span: tuple[float, float]) -> Timeline:
    """One Indexed Job: (index, start, end, phase) per pod attempt."""
    job = JobRecord(name="j", step="j", wave=0, status="Complete", start=span[0], end=span[1])
    records = [
        PodRecord(
            name=f"p{k}",
            job="j",
            index=i,
            attempt=1,
            node="n",
            phase=phase,
            start=a,
            end=b,
            exit_code=0 if phase == "Succeeded" else 3,
            step=f"s{i}",
        )
        for k, (i, a, b, phase) in enumerate(pods)
    ]
    return Timeline(
        batch="b",
        variant="parallel",
        namespace="ns",
        origin="",
        jobs=[job],
        pods=records,
        resolution=RES,
    )


GOOD = chain((0.0, 2.1), (2.2, 4.3), (4.4, 6.5))
ORDER = ["s0", "s1", "s2"]


def test_all_complete() -> None:
    checks.all_complete(GOOD)
    with pytest.raises(AssertionError, match=r"not every step completed: s1 \(Failed\)"):
        checks.all_complete(
            chain((0, 2), (2, 4), names=["s0", "s1"], statuses=["Complete", "Failed"])
        )


def test_steps_in_order_catches_reversal_overlap_and_concurrency() -> None:
    checks.steps_in_order(GOOD, ORDER)
    reversed_run = chain((0.0, 2.0), (2.1, 4.0), (4.1, 6.0), names=["s2", "s1", "s0"])
    with pytest.raises(AssertionError, match=r"out of order: s2, s1, s0; the batch lists s0"):
        checks.steps_in_order(reversed_run, ORDER)
    overlap = chain((0.0, 2.0), (1.3, 3.3), (3.4, 5.4))  # a 0.7 s overlap
    with pytest.raises(AssertionError, match=r"overlapped: s1 started at 1.300s, before s0"):
        checks.steps_in_order(overlap, ORDER)
    one_wave = chain((0.0, 2.0), (0.0, 2.0), (0.0, 2.0))
    with pytest.raises(AssertionError):
        checks.steps_in_order(one_wave, ORDER)


def test_steps_in_order_of_one_indexed_job_by_job_name() -> None:
    good = indexed((0, 0.0, 2.0, "Succeeded"), (1, 3.0, 5.0, "Succeeded"), span=(0.0, 6.0))
    checks.steps_in_order(good, ["s0", "s1"])
    two_at_once = indexed((0, 0.0, 2.0, "Succeeded"), (1, 0.5, 2.5, "Succeeded"), span=(0.0, 3.0))
    with pytest.raises(AssertionError, match="overlapped"):
        checks.steps_in_order(two_at_once, ["s0", "s1"])


def test_sequential_bounds_too_fast_too_slow() -> None:
    checks.sequential_bounds(GOOD, [2, 2, 2], epsilon=0.5)
    with pytest.raises(AssertionError, match="shorter than the sum of durations"):
        checks.sequential_bounds(chain((0, 1), (1, 2), (2, 3)), [2, 2, 2], epsilon=0.5)
    # Σd + n·ε + lag + res = 6 + 1.5 + 2 + 0.25 = 9.75
    with pytest.raises(AssertionError, match=r"too slow: makespan 10.000s exceeds"):
        checks.sequential_bounds(chain((0, 2), (2, 4), (4, 10)), [2, 2, 2], epsilon=0.5)
    # the audit's crafted 23 s for Σd = 10 s, n = 4, under indexed's ε floor
    with pytest.raises(AssertionError, match="too slow"):
        checks.sequential_bounds(
            chain((0, 5), (5, 10), (10, 15), (15, 23)), [3, 2, 3, 2], epsilon=1.5
        )


def test_parallel_bounds_p_reached_never_exceeded_and_the_schedule() -> None:
    durations = [2.0, 2.0, 2.0, 2.0]
    good = indexed(
        (0, 0.0, 2.0, "Succeeded"),
        (1, 0.0, 2.0, "Succeeded"),
        (2, 2.5, 4.5, "Succeeded"),
        (3, 2.5, 4.5, "Succeeded"),
        span=(0.0, 5.5),
    )
    checks.parallel_bounds(good, durations, parallelism=2, epsilon=1.5)
    with pytest.raises(AssertionError, match="more than parallelism 1"):
        checks.parallel_bounds(good, durations, parallelism=1, epsilon=1.5)
    with pytest.raises(AssertionError, match=r"min\(p, n\) = 3 was never reached"):
        checks.parallel_bounds(good, durations, parallelism=3, epsilon=1.5)
    slow = indexed(
        (0, 0.0, 2.0, "Succeeded"),
        (1, 0.0, 2.0, "Succeeded"),
        (2, 4.0, 6.0, "Succeeded"),
        (3, 4.0, 6.0, "Succeeded"),
        span=(0.0, 9.0),
    )
    with pytest.raises(AssertionError, match="too slow"):  # > 4 + 2·1.5 + 0.25
        checks.parallel_bounds(slow, durations, parallelism=2, epsilon=1.5)
    fast = indexed(
        (0, 0.0, 1.0, "Succeeded"),
        (1, 0.0, 1.0, "Succeeded"),
        (2, 1.0, 2.0, "Succeeded"),
        (3, 1.0, 2.0, "Succeeded"),
        span=(0.0, 2.0),
    )
    with pytest.raises(AssertionError, match="is below"):
        checks.parallel_bounds(fast, durations, parallelism=2, epsilon=1.5)


def test_ran_for_catches_pods_that_ran_too_long_or_too_short() -> None:
    checks.ran_for(GOOD, {"s0": 2.0, "s1": 2.0, "s2": 2.0}, slack=0.3)
    with pytest.raises(AssertionError, match=r"ran 3.000s, expected 2.000s"):
        checks.ran_for(chain((0, 2), (2, 5)), {"s0": 2.0, "s1": 2.0}, slack=0.3)  # 1.5 times
    with pytest.raises(AssertionError, match=r"ran 1.000s, expected 2.000s"):
        checks.ran_for(chain((0, 2), (2, 3)), {"s0": 2.0, "s1": 2.0}, slack=0.3)


def test_max_running() -> None:
    two = indexed((0, 0.0, 2.0, "Succeeded"), (1, 0.0, 2.0, "Succeeded"), span=(0.0, 3.0))
    checks.max_running(two, 2)
    with pytest.raises(AssertionError, match="2 pods ran at once; capacity allows 1"):
        checks.max_running(two, 1)


def test_retried_counts_failures_others_once_and_concurrency() -> None:
    good = indexed(
        (0, 0.0, 1.0, "Succeeded"),
        (1, 0.0, 1.0, "Failed"),
        (1, 11.0, 12.0, "Failed"),
        (2, 1.5, 2.5, "Succeeded"),
        span=(0.0, 13.0),
    )
    checks.retried(good, index=1, failures=2, parallelism=2)
    with pytest.raises(
        AssertionError, match=r"job 's1' \(index 1\) failed 2 time\(s\), expected 3"
    ):
        checks.retried(good, index=1, failures=3, parallelism=2)
    twice = indexed(
        (0, 0.0, 1.0, "Succeeded"),
        (0, 1.0, 2.0, "Succeeded"),
        (1, 0.0, 1.0, "Failed"),
        span=(0.0, 3.0),
    )
    with pytest.raises(
        AssertionError, match=r"job 's0' \(index 0\) should have succeeded exactly once"
    ):
        checks.retried(twice, index=1, failures=1, parallelism=2)
    crowded = indexed(
        (0, 0.0, 2.0, "Succeeded"),
        (1, 0.0, 2.0, "Failed"),
        (2, 0.0, 2.0, "Succeeded"),
        span=(0.0, 3.0),
    )
    with pytest.raises(AssertionError, match="3 pods ran at once while retrying"):
        checks.retried(crowded, index=1, failures=1, parallelism=2)


def test_statuses_by_step_name() -> None:
    run = chain((0, 2), (2, 4), names=["a", "b"], statuses=["Complete", "Failed"])
    checks.statuses(run, {"a": "Complete", "b": "Failed"})
    with pytest.raises(AssertionError, match=r"a: Complete \(expected Failed\)"):
        checks.statuses(run, {"a": "Failed", "b": "Failed"})


def test_each_variant_runs_its_checks_on_a_timeline() -> None:
    from mlgen import variants

    from .conftest import batch_doc, load

    batch = load(batch_doc())  # jobs a, b, c of 2 s
    good = chain((0.0, 2.1), (2.2, 4.3), (4.4, 6.5), names=["a", "b", "c"])
    for name in ("waves", "indexed"):
        tight = checks.Epsilon(client=0.5, controller=0.5)
        variants.get(name).check(good, batch, epsilon=tight)
        with pytest.raises(AssertionError, match="out of order"):
            variants.get(name).check(
                chain((0, 2), (2.1, 4.1), (4.2, 6.2), names=["b", "a", "c"]),
                batch,
                epsilon=tight,
            )
    two = indexed(
        (0, 0.0, 2.0, "Succeeded"),
        (1, 0.0, 2.0, "Succeeded"),
        (2, 2.3, 4.3, "Succeeded"),
        span=(0.0, 4.6),
    )
    variants.get("parallel").check(two, batch, epsilon=checks.Epsilon(client=0.5, controller=1.5))


def test_ran_for_takes_the_containers_own_times_when_a_kubelet_reports_late() -> None:
    import dataclasses

    late = chain((0, 2), (2, 6.2))  # the watch saw s1 end 2.2 s late (a loaded real kubelet)
    own = dataclasses.replace(late.pods[1], api_start=3.0, api_end=5.0)  # ...it ran 2 s
    checks.ran_for(
        dataclasses.replace(late, pods=[late.pods[0], own]), {"s0": 2.0, "s1": 2.0}, slack=0.3
    )
    slow = dataclasses.replace(late.pods[1], api_start=2.0, api_end=6.0)  # it ran 4 s
    with pytest.raises(AssertionError, match="its container's own times say 4s"):
        checks.ran_for(
            dataclasses.replace(late, pods=[late.pods[0], slow]), {"s0": 2.0, "s1": 2.0}, slack=0.3
        )
