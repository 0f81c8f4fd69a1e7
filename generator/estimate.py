"""Predicted makespans from `expectedDuration`, the way the Job controller schedules.

Sequential: the sum of durations. Parallel: the Job controller starts the lowest
pending index whenever one of the p slots frees up, so the schedule is list
scheduling in index order; its makespan lies between max(sum/p, max d) and that
bound plus the longest job.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from mlgen import spec


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

    @property
    def speedup(self) -> float:
        return self.sequential_seconds / self.parallel_seconds if self.parallel_seconds else 1.0

    def as_dict(self) -> dict[str, object]:
        return {"batch": self.batch, "jobs": self.jobs, "parallelism": self.parallelism,
                "sequentialSeconds": self.sequential_seconds,
                "variants": list(self.variants),
                "parallelSeconds": self.parallel_seconds,
                "lowerBoundSeconds": self.lower_bound_seconds,
                "waves": self.waves, "speedup": round(self.speedup, 3)}


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


def sequential(durations: Sequence[float], *, overhead: float = 0.0) -> float:
    """One step after another: Σd plus the per-step overhead."""
    return sum(durations) + overhead * len(durations)


def parallel(durations: Sequence[float], *, parallelism: int, overhead: float = 0.0) -> float:
    """Lowest pending index first onto p slots, each job `overhead` longer."""
    makespan, _ = schedule([d + overhead for d in durations], parallelism)
    return makespan


def estimate(batch: spec.Batch, *, parallelism: int | None = None) -> Estimate:
    durations = [float(j.expected_seconds or 0) for j in batch.jobs]
    p = min(parallelism or batch.parallelism, len(durations))
    makespan, starts = schedule(durations, p)
    total = sum(durations)
    return Estimate(
        batch=batch.name, jobs=len(durations), parallelism=p,
        sequential_seconds=total, parallel_seconds=makespan,
        lower_bound_seconds=max(total / p, max(durations, default=0.0)),
        waves=-(-len(durations) // p), starts=tuple(starts), variants=batch.variants)
