"""Makespan formulas: how long a batch takes when its jobs run one after another, or p
at a time the way the Job controller schedules an Indexed Job.

Sequential: Σd plus an overhead between steps. Parallel: the Job controller starts the
lowest pending index whenever one of the p slots frees up, so the schedule is list
scheduling in index order, each slot pausing `overhead` between its jobs (the Job
controller replaces a finished pod at its next sync), and pods are created no faster
than START_RATE per second; its makespan lies between max(Σd/p, max d) and that bound
plus the longest job. Both end with the Job controller's completion lag (it syncs a Job
at most once a second after pod events).

The strategies (`mlgen.variants`) predict with these; `estimate` and the promises
(`checks`) read them. The figures are the local control plane's, measured (bench/).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

# The Job controller syncs a Job at most once a second after pod events
# (SyncJobBatchPeriod): a run's last Job says Complete about a second after its last pod
# ended (measured 1.03-1.04 s).
COMPLETION_LAG = 1.0
# Pods per second the Job controller, scheduler and KWOK start on the local control plane
# when thousands are due at once (bench/scale-results.md: 47 at n = 10,000).
START_RATE = 40.0
# When the nodes' room, not the Job's parallelism, bounds what runs at once, the next
# pods exist already, Pending: the scheduler binds one the moment another ends, with no
# Job controller sync between (measured on the local control plane: 0.06 s a round, 8
# one-GPU pods on 2 GPUs; a Job's own parallelism costs about 1 s a round).
SCHEDULED_ROUND = 0.1


def slots(
    durations: Sequence[float],
    parallelism: int,
    *,
    gap: float = 0.0,
    rate: float | None = None,
) -> tuple[float, list[float]]:
    """Makespan and start times when index i starts on the first free of p slots, `gap`
    after the slot's previous job and no earlier than i / `rate` (pods per second)."""
    free_at = [(0.0, False)] * max(1, min(parallelism, len(durations)))  # (free at, used)
    heapq.heapify(free_at)
    starts: list[float] = []
    end = 0.0
    for index, duration in enumerate(durations):
        free, used = heapq.heappop(free_at)
        start = max(free + (gap if used else 0.0), index / rate if rate else 0.0)
        starts.append(start)
        finish = start + duration
        end = max(end, finish)
        heapq.heappush(free_at, (finish, True))
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
    makespan, _ = slots(durations, parallelism, gap=overhead, rate=rate)
    return makespan + (lag if durations else 0.0)


def lower_bound(durations: Sequence[float], parallelism: int) -> float:
    """No schedule on p slots beats max(Σd/p, the longest job)."""
    return max(sum(durations) / max(parallelism, 1), max(durations, default=0.0))
