"""Predicted makespans from `expectedDuration`, the way the Job controller schedules,
plus the per-step overhead that each way of running a batch adds.

Sequential: Σd plus an overhead per step. Parallel: the Job controller starts the lowest
pending index whenever one of the p slots frees up, so the schedule is list scheduling
in index order (each job `overhead` longer); its makespan lies between max(Σd/p, max d)
and that bound plus the longest job. Both end with the Job controller's completion lag
(it syncs a Job at most once a second after pod events).

Default overheads per variant are the local control plane's measured figures
(docs/design.md); `mlgen estimate --overhead` overrides them, and `--overhead-from`
reads the ε a conformance run calibrated on your cluster.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlgen import spec
from mlgen.errors import UsageError

# Seconds per step, measured on the local control plane (waves: `mlgen apply` moves on
# when a step's pod succeeds; indexed: the Job controller's 1 s batching per step).
OVERHEAD = {"waves": 0.1, "indexed": 1.1, "parallel": 1.1}
COMPLETION_LAG = 1.0


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


def schedule(durations: Sequence[float], parallelism: int) -> tuple[float, list[float]]:
    """Makespan and start times when index i starts on the first free of p slots."""
    slots = [0.0] * max(1, min(parallelism, len(durations)))
    heapq.heapify(slots)
    starts: list[float] = []
    end = 0.0
    for duration in durations:
        start = heapq.heappop(slots)
        starts.append(start)
        finish = start + duration
        end = max(end, finish)
        heapq.heappush(slots, finish)
    return end, starts


def sequential(durations: Sequence[float], *, overhead: float = 0.0, lag: float = 0.0) -> float:
    """One step after another: Σd, plus the per-step overhead, plus the final lag."""
    return sum(durations) + overhead * len(durations) + (lag if durations else 0.0)


def parallel(
    durations: Sequence[float], *, parallelism: int, overhead: float = 0.0, lag: float = 0.0
) -> float:
    """Lowest pending index first onto p slots, each job `overhead` longer."""
    makespan, _ = schedule([d + overhead for d in durations], parallelism)
    return makespan + (lag if durations else 0.0)


def overheads(*, seconds: float | None = None, calibration: Path | None = None) -> dict[str, float]:
    """The overhead per strategy: the defaults, one value for all, or a calibration file
    (`{"waves": s, "indexed": s}`, as the conformance suite writes it)."""
    if seconds is not None:
        if seconds < 0:
            raise UsageError("--overhead must be at least 0 seconds")
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
    return {"waves": waves, "indexed": indexed, "parallel": indexed}


def of(
    batch: spec.Batch, *, parallelism: int | None = None, overhead: dict[str, float] | None = None
) -> Estimate:
    """The predicted makespans of a batch's variants."""
    from mlgen import variants

    durations = [float(j.expected_seconds or 0) for j in batch.jobs]
    p = min(parallelism or batch.parallelism, len(durations))
    per = overhead if overhead is not None else dict(OVERHEAD)
    lag = COMPLETION_LAG if overhead is None or any(per.values()) else 0.0
    serial = variants.select(batch, "sequential")
    makespan = parallel(durations, parallelism=p, overhead=per["parallel"], lag=lag)
    _, starts = schedule([d + per["parallel"] for d in durations], p)
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
