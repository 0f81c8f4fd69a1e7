"""The conformance checks, as plain functions over a Timeline: each raises
AssertionError with a sentence that names the batch, the figure and the bound.

Times from the API server are whole seconds (truncated), so a measured interval can
read up to 1 s short or long; `RESOLUTION` is allowed for wherever a bound is tight.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from mlgen import estimate as estimates
from mlgen.timeline import Timeline

RESOLUTION = 1.0


@dataclass(frozen=True)
class Epsilon:
    """Per-step overhead measured on this cluster by a calibration run (seconds)."""

    waves: float  # a client-driven step: apply, Job start, pod, completion, poll
    indexed: float  # a controller-driven step inside one Indexed Job

    def for_strategy(self, strategy: str) -> float:
        """Waves are driven by the client; the Indexed Jobs (sequential and parallel) by the
        Job controller."""
        return self.waves if strategy == "waves" else self.indexed


def _fail(timeline: Timeline, message: str) -> None:
    raise AssertionError(f"{timeline.batch}/{timeline.variant}: {message}")


def all_complete(timeline: Timeline) -> None:
    bad = [f"{j.step} ({j.status})" for j in timeline.jobs if j.status != "Complete"]
    if bad:
        _fail(timeline, f"not every step completed: {', '.join(bad)}")


def steps_in_order(timeline: Timeline, order: Sequence[str]) -> None:
    """The steps ran in the batch's job order (`order`, by name), and step k+1 started
    after step k finished."""
    if len(timeline.jobs) > 1:
        runs = [(j.step, j.start, j.end) for j in timeline.jobs]
    else:
        final = [p for p in timeline.pods if p.phase == "Succeeded" and p.index is not None]
        runs = [(p.step or f"index {p.index}", p.start, p.end) for p in final]
    ran = sorted(runs, key=lambda r: (r[1] is None, r[1] if r[1] is not None else 0.0))
    names = [name for name, start, _ in ran if start is not None]
    expected = [name for name in order if name in names]
    if names != expected:
        _fail(timeline, f"steps ran in the order {', '.join(names)}; the batch lists "
                        f"{', '.join(expected)}")
    runs = ran
    for (name_a, _, end_a), (name_b, start_b, _) in itertools.pairwise(runs):
        if end_a is None or start_b is None:
            _fail(timeline, f"{name_a} or {name_b} has no recorded time")
        elif start_b < end_a:
            _fail(timeline, f"{name_b} started at {start_b:.0f}s, before {name_a} finished at "
                            f"{end_a:.0f}s")
    # Whatever ran, no two attempts overlapped.
    if timeline.max_concurrency() > 1:
        _fail(timeline, f"{timeline.max_concurrency()} pods ran at once in a sequential run")


def sequential_bounds(timeline: Timeline, durations: Sequence[float], *, epsilon: float) -> None:
    """Σd ≤ makespan ≤ Σd + n·ε (minus/plus the timestamp resolution)."""
    total, n, span = sum(durations), len(durations), timeline.makespan
    if span < total - RESOLUTION:
        _fail(timeline, f"makespan {span:.0f}s is shorter than the sum of durations "
                        f"{total:.0f}s: the steps did not run for their expected time")
    upper = total + n * epsilon + RESOLUTION
    if span > upper:
        _fail(timeline, f"makespan {span:.0f}s exceeds Σd + n·ε = {total:.0f} + {n}·"
                        f"{epsilon:.2f} (+{RESOLUTION:.0f}) = {upper:.1f}s")


def parallel_bounds(timeline: Timeline, durations: Sequence[float], *, parallelism: int,
                    epsilon: float) -> None:
    """≤ p at once, min(p, n) reached, ⌈n/p⌉·d_min ≤ makespan ≤ estimate + ε per wave."""
    n = len(durations)
    peak, want = timeline.max_concurrency(), min(parallelism, n)
    if peak > parallelism:
        _fail(timeline, f"{peak} pods ran at once, more than parallelism {parallelism}")
    if peak < want:
        _fail(timeline, f"at most {peak} pods ran at once; min(p, n) = {want} was never reached")
    makespan, _ = estimates.schedule(list(durations), parallelism)
    waves = -(-n // parallelism)
    lower = waves * min(durations)
    if timeline.makespan < lower - RESOLUTION:
        _fail(timeline, f"makespan {timeline.makespan:.0f}s is below ⌈n/p⌉·d = {lower:.0f}s")
    upper = makespan + waves * epsilon + RESOLUTION
    if timeline.makespan > upper:
        _fail(timeline, f"makespan {timeline.makespan:.0f}s exceeds the estimate {makespan:.0f}s "
                        f"+ ε·waves = {waves}·{epsilon:.2f} (+{RESOLUTION:.0f}) = {upper:.1f}s")


def max_running(timeline: Timeline, limit: int) -> None:
    peak = timeline.max_concurrency()
    if peak > limit:
        _fail(timeline, f"{peak} pods ran at once; capacity allows {limit}")


def retried(timeline: Timeline, *, index: int, failures: int) -> None:
    """Index `index` failed exactly `failures` times; every other index succeeded once."""
    failed = [p for p in timeline.pods if p.index == index and p.phase == "Failed"]
    if len(failed) != failures:
        _fail(timeline, f"index {index} failed {len(failed)} time(s), expected {failures}")
    others = {p.index for p in timeline.pods if p.index != index and p.phase == "Succeeded"}
    indexes = {p.index for p in timeline.pods if p.index != index}
    if others != indexes:
        _fail(timeline, f"indexes {sorted(i for i in indexes - others if i is not None)} did "
                        "not succeed")
