"""Predicted makespans from `expectedDuration`, the way the Job controller schedules,
plus the overhead that each way of running a batch adds between one job and the next.

Sequential: Σd plus an overhead between steps. Parallel: the Job controller starts the
lowest pending index whenever one of the p slots frees up, so the schedule is list
scheduling in index order, each slot pausing `overhead` between its jobs (the Job
controller replaces a finished pod at its next sync), and pods are created no faster
than START_RATE per second; its makespan lies between max(Σd/p, max d) and that bound
plus the longest job. Both end with the Job controller's completion lag (it syncs a
Job at most once a second after pod events).

Default overheads per variant and the start rate are the local control plane's measured
figures (docs/design.md, bench/); `mlgen estimate --overhead` overrides the overheads,
and `--overhead-from` reads the ε a conformance run calibrated on your cluster.
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlgen import spec
from mlgen.errors import UsageError

# Seconds between one job's end and the next one's start, measured on the local control
# plane (waves: `mlgen apply` moves on when a step's pod succeeds; indexed and parallel:
# the Job controller's 1 s batching before it creates the next pod).
OVERHEAD = {"waves": 0.1, "indexed": 1.1, "parallel": 1.1}
COMPLETION_LAG = 1.0
# Pods per second the Job controller, scheduler and KWOK start on the local control plane
# when thousands are due at once (bench/scale-results.md: 47 at n = 10,000).
START_RATE = 40.0


@dataclass(frozen=True)
class Estimate:
    batch: str
    jobs: int
    parallelism: int
    sequential_seconds: float
    parallel_seconds: float
    lower_bound_seconds: float
    waves: int  # how many rounds of p the parallel schedule needs
    starts: tuple[float, ...]  # parallel start offset of each index
    variants: tuple[str, ...] = ("sequential", "parallel")
    overhead: tuple[tuple[str, float], ...] = ()  # per strategy, as used

    @property
    def speedup(self) -> float:
        return self.sequential_seconds / self.parallel_seconds if self.parallel_seconds else 1.0

    def as_dict(self) -> dict[str, object]:
        return {
            "batch": self.batch,
            "jobs": self.jobs,
            "parallelism": self.parallelism,
            "sequentialSeconds": self.sequential_seconds,
            "variants": list(self.variants),
            "parallelSeconds": self.parallel_seconds,
            "lowerBoundSeconds": self.lower_bound_seconds,
            "waves": self.waves,
            "speedup": round(self.speedup, 3),
            "overheadSeconds": dict(self.overhead),
        }


def schedule(
    durations: Sequence[float],
    parallelism: int,
    *,
    gap: float = 0.0,
    rate: float | None = None,
) -> tuple[float, list[float]]:
    """Makespan and start times when index i starts on the first free of p slots, `gap`
    after the slot's previous job and no earlier than i / `rate` (pods per second)."""
    slots = [(0.0, False)] * max(1, min(parallelism, len(durations)))  # (free at, used)
    heapq.heapify(slots)
    starts: list[float] = []
    end = 0.0
    for index, duration in enumerate(durations):
        free, used = heapq.heappop(slots)
        start = max(free + (gap if used else 0.0), index / rate if rate else 0.0)
        starts.append(start)
        finish = start + duration
        end = max(end, finish)
        heapq.heappush(slots, (finish, True))
    return end, starts


def sequential(durations: Sequence[float], *, overhead: float = 0.0, lag: float = 0.0) -> float:
    """One step after another: Σd, the overhead between steps, and the final lag."""
    return sum(durations) + overhead * max(len(durations) - 1, 0) + (lag if durations else 0.0)


def parallel(
    durations: Sequence[float],
    *,
    parallelism: int,
    overhead: float = 0.0,
    lag: float = 0.0,
    rate: float | None = None,
) -> float:
    """Lowest pending index first onto p slots, `overhead` between a slot's jobs."""
    makespan, _ = schedule(durations, parallelism, gap=overhead, rate=rate)
    return makespan + (lag if durations else 0.0)


MAX_OVERHEAD = 3600.0  # seconds per step: anything more is not a measurement


def overheads(*, seconds: float | None = None, calibration: Path | None = None) -> dict[str, float]:
    """The overhead per strategy: the defaults, one value for all, or a calibration file
    (`{"waves": s, "indexed": s}`, as the conformance suite writes it)."""
    if seconds is not None:
        if not math.isfinite(seconds) or seconds < 0:
            raise UsageError(f"--overhead is {seconds}; give a finite number of seconds, 0 or more")
        return dict.fromkeys(OVERHEAD, seconds)
    if calibration is None:
        return dict(OVERHEAD)
    try:
        data = json.loads(calibration.read_text(encoding="utf-8"))
        waves, indexed = float(data["waves"]), float(data["indexed"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(
            f"{calibration}: not a calibration file ({e}); pass the "
            "epsilon.json a conformance run wrote"
        ) from e
    for key, value in (("waves", waves), ("indexed", indexed)):
        if not math.isfinite(value) or not 0 <= value <= MAX_OVERHEAD:
            raise UsageError(
                f"{calibration}: {key} is {value}, not an overhead; a conformance run writes "
                f"a finite number of seconds from 0 to {MAX_OVERHEAD:g}"
            )
    return {"waves": waves, "indexed": indexed, "parallel": indexed}


def of(
    batch: spec.Batch, *, parallelism: int | None = None, overhead: dict[str, float] | None = None
) -> Estimate:
    """The predicted makespans of a batch's variants."""
    from mlgen import variants

    durations = [float(j.expected_seconds or 0) for j in batch.jobs]
    p = min(parallelism or batch.parallelism, len(durations))
    per = overhead if overhead is not None else dict(OVERHEAD)
    measured = overhead is None or any(per.values())  # --overhead 0: the ideal schedule
    lag, rate = (COMPLETION_LAG, START_RATE) if measured else (0.0, None)
    serial = variants.select(batch, "sequential")
    makespan = parallel(durations, parallelism=p, overhead=per["parallel"], lag=lag, rate=rate)
    _, starts = schedule(durations, p, gap=per["parallel"], rate=rate)
    total = sum(durations)
    return Estimate(
        batch=batch.name,
        jobs=len(durations),
        parallelism=p,
        sequential_seconds=sequential(durations, overhead=per[serial.name], lag=lag),
        parallel_seconds=makespan,
        lower_bound_seconds=max(total / p, max(durations, default=0.0)),
        waves=-(-len(durations) // p),
        starts=tuple(starts),
        variants=batch.variants,
        overhead=tuple(sorted(per.items())),
    )
