"""The promises a run keeps, as plain functions over a Timeline (core: the variants hold
them, the conformance plugin applies them): each raises
AssertionError with a sentence that names the batch, the broken promise, the figure and
the bound (derivations in docs/design.md, "Conformance bounds").

A timeline says how far its times may be off (`Timeline.resolution`: 0.25 s when a
watch recorded the run, 1 s for the API server's whole seconds); each bound allows for
it once.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mlgen import schedule
from mlgen import timeline as timelines

if TYPE_CHECKING:
    from mlgen import spec
    from mlgen.timeline import Timeline

# A run's last Job says Complete up to the Job controller's lag after its last pod ended
# (schedule.COMPLETION_LAG, measured 1.03-1.04 s); allowed once per run, twice over for a
# loaded machine.
COMPLETION_ALLOWANCE = 2 * schedule.COMPLETION_LAG


class Driven(Protocol):
    """What ε depends on of a strategy: who starts its steps, whether p start together."""

    @property
    def driver(self) -> str: ...

    @property
    def rounds(self) -> bool: ...


@dataclass(frozen=True)
class Epsilon:
    """Per-step overhead measured on this cluster by a calibration run (seconds), per
    driver of a step (`variants.base.Driver`)."""

    client: float  # a client-driven step: apply, Job start, pod, completion, watch
    controller: float  # a controller-driven step inside one Indexed Job
    slack: float = 0.5  # how much longer than planned a pod may run (watch, process start)
    # A round of p pods started together; where kubelets are real, p containers start
    # slower than one, each up to the slack over its time: controller + slack. None: the
    # controller's figure.
    round: float | None = None

    def of(self, unit: Driven) -> float:
        """The ε a run of this strategy is held to."""
        if unit.driver == "client":
            return self.client
        if unit.rounds and self.round is not None:
            return self.round
        return self.controller


def _fail(timeline: Timeline, message: str) -> None:
    raise AssertionError(f"{timeline.batch}/{timeline.variant}: {message}")


def all_complete(timeline: Timeline) -> None:
    """Promise: every step completes."""
    bad = [f"{j.step} ({j.status})" for j in timeline.jobs if j.status != "Complete"]
    if bad:
        _fail(timeline, f"not every step completed: {', '.join(bad)}")


def steps_in_order(timeline: Timeline, order: Sequence[str]) -> None:
    """Promise: the steps run in the batch's job order (`order`, by name), step k+1 only
    after step k finished, never two pods at once."""
    if len(timeline.jobs) > 1:  # a step runs from its first pod's start to its last's end
        runs = []
        for job in timeline.jobs:
            pods = [p for p in timeline.pods if p.job == job.name]
            starts = [p.start for p in pods if p.start is not None]
            ends = [p.end for p in pods if p.end is not None]
            runs.append(
                (job.step, min(starts) if starts else job.start, max(ends) if ends else job.end)
            )
    else:
        final = [p for p in timeline.pods if p.phase == "Succeeded" and p.index is not None]
        runs = [(p.step or f"index {p.index}", p.start, p.end) for p in final]
    ran = sorted(runs, key=lambda r: (r[1] is None, r[1] if r[1] is not None else 0.0))
    names = [name for name, start, _ in ran if start is not None]
    expected = [name for name in order if name in names]
    if names != expected:
        _fail(
            timeline,
            f"steps ran out of order: {', '.join(names)}; the batch lists {', '.join(expected)}",
        )
    for (name_a, _, end_a), (name_b, start_b, _) in itertools.pairwise(ran):
        if start_b is None:
            continue  # a step that never started (after a stop) cannot overlap
        if end_a is None:
            _fail(timeline, f"{name_b} started at {start_b:.3f}s, but {name_a} never finished")
        elif start_b < end_a:
            _fail(
                timeline,
                f"steps overlapped: {name_b} started at {start_b:.3f}s, before "
                f"{name_a} finished at {end_a:.3f}s",
            )
    if timeline.max_concurrency() > 1:
        _fail(timeline, f"{timeline.max_concurrency()} pods ran at once in a sequential run")


def ran_for(timeline: Timeline, durations: dict[str, float], *, slack: float) -> None:
    """Promise: each successful pod ran its job's expected duration (simulated clusters:
    exactly; `slack` allows for the watch and, on real nodes, process start)."""
    for pod in timeline.pods:
        want = durations.get(pod.step)
        if pod.phase != "Succeeded" or want is None or pod.start is None or pod.end is None:
            continue
        took = pod.end - pod.start
        if want - timeline.resolution <= took <= want + slack + timeline.resolution:
            continue
        own = None
        if pod.api_start is not None and pod.api_end is not None:
            # A real kubelet under load reports p pods that end together late, and a watch
            # sees them late; the container's own start and finish (whole seconds, each
            # truncated) say how long it ran.
            own = pod.api_end - pod.api_start
            if want - timelines.API_RESOLUTION <= own <= want + timelines.API_RESOLUTION:
                continue
        said = f"; its container's own times say {own:.0f}s" if own is not None else ""
        _fail(
            timeline,
            f"pod {pod.name} ({pod.step}) ran {took:.3f}s, expected {want:.3f}s "
            f"(+{slack:.2f}s slack){said}: jobs must run for their expected time",
        )


def sequential_bounds(timeline: Timeline, durations: Sequence[float], *, epsilon: float) -> None:
    """Promise: Σd ≤ makespan ≤ Σd + n·ε + the final completion lag (each bound ± the
    timeline's resolution)."""
    total, n, span, res = sum(durations), len(durations), timeline.makespan, timeline.resolution
    if span < total - res:
        _fail(
            timeline,
            f"makespan {span:.3f}s is shorter than the sum of durations "
            f"{total:.3f}s: the steps did not run for their expected time",
        )
    upper = total + n * epsilon + COMPLETION_ALLOWANCE + res
    if span > upper:
        _fail(
            timeline,
            f"too slow: makespan {span:.3f}s exceeds Σd + n·ε + lag = {total:.1f} + "
            f"{n}·{epsilon:.3f} + {COMPLETION_ALLOWANCE:.1f} (+{res:.2f}) = {upper:.3f}s",
        )


def parallel_bounds(
    timeline: Timeline, durations: Sequence[float], *, parallelism: int, epsilon: float
) -> None:
    """Promise: ≤ p pods at once, min(p, n) reached, ⌈n/p⌉·d_min ≤ makespan ≤ the schedule's
    makespan + ε per round of p (each bound ± the timeline's resolution)."""
    n, res = len(durations), timeline.resolution
    peak, want = timeline.max_concurrency(), min(parallelism, n)
    if peak > parallelism:
        _fail(timeline, f"{peak} pods ran at once, more than parallelism {parallelism}")
    if peak < want:
        _fail(timeline, f"at most {peak} pods ran at once; min(p, n) = {want} was never reached")
    makespan, _ = schedule.slots(list(durations), parallelism)
    rounds = -(-n // parallelism)
    lower = rounds * min(durations)
    if timeline.makespan < lower - res:
        _fail(timeline, f"makespan {timeline.makespan:.3f}s is below ⌈n/p⌉·d = {lower:.1f}s")
    upper = makespan + rounds * epsilon + res
    if timeline.makespan > upper:
        _fail(
            timeline,
            f"too slow: makespan {timeline.makespan:.3f}s exceeds the schedule "
            f"{makespan:.1f}s + ε per round = {rounds}·{epsilon:.3f} (+{res:.2f}) = "
            f"{upper:.3f}s",
        )


def stages_bounds(timeline: Timeline, batch: spec.Batch, *, between: float, within: float) -> None:
    """Promises of a staged run: no pod of stage k+1 starts before stage k's last pod
    ended; within a stage at most its p pods at once, and min(p, n) reached when its jobs
    share an Indexed Job; Σ over stages of max(Σd/p, max d) ≤ makespan ≤ Σ over stages of
    (its schedule + `within` per further round of p + `between` to start it + the
    completion allowance) ± the resolution. `between` is the ε of whoever starts a stage
    (apply, a GitOps tool), `within` the Job controller's inside one."""
    stage_of = {j.name: s for s in batch.stages for j in batch.stage_jobs(s)}
    previous_end: tuple[str, float] | None = None
    lower = upper = 0.0
    for stage in batch.stages:
        jobs = batch.stage_jobs(stage)
        names = {j.name for j in jobs}
        pods = [p for p in timeline.pods if p.step in names]
        starts = [p.start for p in pods if p.start is not None]
        if previous_end is not None and starts and min(starts) < previous_end[1]:
            _fail(
                timeline,
                f"stage {stage.name!r} started a pod at {min(starts):.3f}s, before stage "
                f"{previous_end[0]!r} ended at {previous_end[1]:.3f}s",
            )
        ends = [p.end for p in pods if p.end is not None]
        if ends:
            previous_end = (stage.name, max(ends))
        peak = timelines.peak(pods)
        if peak > stage.parallelism:
            _fail(
                timeline,
                f"stage {stage.name!r}: {peak} pods ran at once, more than its parallelism "
                f"{stage.parallelism}",
            )
        spans = [float(j.expected_seconds or 0) for j in jobs]
        shared = len({p.job for p in pods}) == 1 and len(jobs) > 1  # one Indexed Job
        want = min(stage.parallelism, len(jobs))
        if shared and peak < want:
            _fail(
                timeline,
                f"stage {stage.name!r}: at most {peak} pods ran at once; min(p, n) = {want} "
                "was never reached",
            )
        lower += schedule.lower_bound(spans, stage.parallelism)
        makespan, _ = schedule.slots(spans, stage.parallelism)
        rounds = -(-len(jobs) // stage.parallelism)
        # Each stage ends with its Jobs' Complete condition, which the next one waits for.
        upper += makespan + (rounds - 1) * within + between + COMPLETION_ALLOWANCE
    stray = sorted({p.step for p in timeline.pods if p.step not in stage_of})
    if stray:
        _fail(timeline, f"pods of no stage of the batch ran: {', '.join(stray)}")
    res, span = timeline.resolution, timeline.makespan
    if span < lower - res:
        _fail(
            timeline,
            f"makespan {span:.3f}s is below the sum of the stages' lower bounds {lower:.3f}s",
        )
    upper += res
    if span > upper:
        _fail(
            timeline,
            f"too slow: makespan {span:.3f}s exceeds the sum over stages of the schedule, "
            f"ε {within:.3f}s per further round of p, ε {between:.3f}s to start the stage and "
            f"the completion allowance {COMPLETION_ALLOWANCE:.1f}s = {upper:.3f}s",
        )


def max_running(timeline: Timeline, limit: int) -> None:
    """Promise: never more pods at once than capacity allows."""
    peak = timeline.max_concurrency()
    if peak > limit:
        _fail(timeline, f"{peak} pods ran at once; capacity allows {limit}")


def retried(timeline: Timeline, *, index: int, failures: int, parallelism: int) -> None:
    """Promise: index `index` failed exactly `failures` times (its retries used up); every
    other index succeeded exactly once, never after failing; ≤ p pods at once throughout."""
    failed = [p for p in timeline.pods if p.index == index and p.phase == "Failed"]
    name = next((p.step for p in timeline.pods if p.index == index and p.step), "")
    if len(failed) != failures:
        _fail(
            timeline,
            f"job {name!r} (index {index}) failed {len(failed)} time(s), "
            f"expected {failures} (1 + retries)",
        )
    indexes = sorted({p.index for p in timeline.pods if p.index is not None} - {index})
    for other in indexes:
        pods = [p for p in timeline.pods if p.index == other]
        if [p.phase for p in pods] != ["Succeeded"]:
            _fail(
                timeline,
                f"job {pods[0].step!r} (index {other}) should have succeeded "
                f"exactly once; its attempts: {', '.join(p.phase for p in pods)}",
            )
    peak = timeline.max_concurrency()
    if peak > parallelism:
        _fail(
            timeline, f"{peak} pods ran at once while retrying, more than parallelism {parallelism}"
        )


def statuses(timeline: Timeline, expected: dict[str, str]) -> None:
    """Promise: each step (by name) ended as expected (Complete, Failed, NotStarted)."""
    found = {j.step: j.status for j in timeline.jobs}
    if found != expected:
        wrong = ", ".join(
            f"{step}: {found.get(step, 'missing')} (expected {status})"
            for step, status in expected.items()
            if found.get(step) != status
        )
        _fail(timeline, f"steps ended wrongly: {wrong or found}")


def planned(batch: spec.Batch) -> dict[str, float]:
    """Each job's expected run time by name (jobs without one are not checked)."""
    return {j.name: float(j.expected_seconds) for j in batch.jobs if j.expected_seconds is not None}


def check_sequential(
    timeline: Timeline, batch: spec.Batch, *, epsilon: float, slack: float
) -> None:
    """The promises of every sequential variant: all complete, each pod its duration, in
    the batch's order, Σd ≤ makespan ≤ Σd + n·ε + lag."""
    all_complete(timeline)
    ran_for(timeline, planned(batch), slack=slack)
    steps_in_order(timeline, [j.name for j in batch.jobs])
    sequential_bounds(timeline, planned_all(batch), epsilon=epsilon)


def planned_all(batch: spec.Batch) -> list[float]:
    """Every job's expected run time in batch order (0 when unset)."""
    return [float(j.expected_seconds or 0) for j in batch.jobs]
