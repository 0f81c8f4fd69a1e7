"""ε, the per-step overhead of this cluster, measured by a calibration run that must itself
keep every promise, and bounded by a ceiling so that a regression cannot hide in it.

Each strategy runs five 2 s steps, recorded by a watch (milliseconds). The run is checked
like any other (complete, in order, one pod at a time, Σd ≤ makespan, every pod ran its
2 s). A step ends when its pod does; its overhead is `end_k - end_{k-1} - d` (the first
from the first Job's start; the last Job's completion lag is bounded apart, once per run,
by `checks.COMPLETION_LAG`); ε is the largest of the
five (the 100th percentile: bounds are sums of n steps, each of which may be the worst),
and must not exceed the ceiling; ε never goes below a floor per strategy, since a quiet
calibration can measure less than a loaded run later needs. The ceilings are the local control
plane's measured overheads with room for a loaded 2-core machine (docs/design.md): a
5 s slowdown per step, or pods that run longer than planned, fail calibration instead of
widening every bound. `--mlgen-max-epsilon` raises the ceiling for slower clusters.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlgen.conformance import checks
from mlgen.conformance.checks import Epsilon
from mlgen.conformance.runner import Runner, sleeper_batch

STEPS, SECONDS = 5, 2
# Measured on the local control plane (2 cores, see docs/design.md): indexed (the Job
# controller's 1 s batching) median 1.06 s, worst 2.10 s; waves (apply moves on when the
# pod succeeds) well under a second. A 5 s slowdown per step lands far above either.
CEILING = {"waves": 3.0, "indexed": 3.5}
# ...and a floor, because a quiet calibration can measure less than a loaded test run
# later needs: waves 0.05-0.08 s measured, indexed 1.07-1.10 s with single steps of 2.1 s.
FLOOR = {"waves": 0.5, "indexed": 1.5}
SLACK_CEILING = 0.75  # pods may overrun their duration by at most this (watch, process start)


@dataclass(frozen=True)
class Measured:
    strategy: str
    overheads: tuple[float, ...]
    excess: float  # the longest a pod ran beyond its duration
    lag: float  # from the last pod's end to the last Job's Complete

    @property
    def worst(self) -> float:
        return max(self.overheads)

    @property
    def epsilon(self) -> float:
        """The worst step, never below the strategy's floor."""
        return max(self.worst, FLOOR[self.strategy])

    def describe(self) -> str:
        median = statistics.median(self.overheads)
        return (
            f"{self.strategy}: worst step {self.worst:.3f}s (median {median:.3f}s of "
            f"{len(self.overheads)} steps), pods ran up to {self.excess:.3f}s over, "
            f"completion lag {self.lag:.3f}s"
        )


def calibrate(
    run: Runner, *, ceiling: float | None = None, slack_ceiling: float = SLACK_CEILING
) -> tuple[Epsilon, list[Measured]]:
    """ε per strategy; raises AssertionError when the calibration run breaks a promise or
    its overhead is above the ceiling."""
    found: list[Measured] = []
    for strategy in ("waves", "indexed"):
        batch = run.from_dict(
            sleeper_batch(f"calib-{strategy}", durations=[SECONDS] * STEPS, strategy=strategy)
        )
        result = run.run(batch, "sequential")
        timeline = result.timeline
        names = [j.name for j in result.batch.jobs]
        checks.all_complete(timeline)
        checks.steps_in_order(timeline, names)
        checks.sequential_bounds(timeline, [SECONDS] * STEPS, epsilon=float("inf"))
        if timeline.max_concurrency() != 1:
            raise AssertionError(
                f"calibration ({strategy}): {timeline.max_concurrency()} pods "
                "ran at once; a sequential run must peak at 1"
            )
        runs = [p for p in timeline.pods if p.phase == "Succeeded"]
        spans = [(p.start, p.end) for p in runs if p.start is not None and p.end is not None]
        if len(spans) != len(runs):
            raise AssertionError(
                f"calibration ({strategy}): a pod has no recorded start or end; see its timeline"
            )
        excess = max((end - start - SECONDS for start, end in spans), default=0.0)
        # A step ends when its pod does; the run when its last Job says Complete, which the
        # Job controller's batching delays by up to a second (checks.COMPLETION_LAG).
        pods = sorted(runs, key=lambda p: p.start or 0.0)
        start, ends = timeline.jobs[0].start, [p.end for p in pods]
        lag = (timeline.jobs[-1].end or 0.0) - (pods[-1].end or 0.0)
        found.append(Measured(strategy, tuple(_overheads(start, ends, SECONDS)), excess, lag))
    for measured in found:
        limit = ceiling if ceiling is not None else CEILING[measured.strategy]
        if measured.worst > limit:
            raise AssertionError(
                f"calibration: per-step overhead too high: {measured.describe()}, above the "
                f"ceiling {limit:.2f}s for this cluster; a slowdown in mlgen apply or the "
                "cluster? (for a slower cluster such as kind, raise --mlgen-max-epsilon)"
            )
        if measured.lag > checks.COMPLETION_LAG:
            raise AssertionError(
                f"calibration: the last Job said Complete {measured.lag:.3f}s after its pod "
                f"ended, more than the {checks.COMPLETION_LAG:.1f}s the Job controller needs"
            )
        if measured.excess > slack_ceiling:
            raise AssertionError(
                f"calibration: pods ran longer than their duration: {measured.describe()}, "
                f"more than {slack_ceiling:.2f}s; jobs must run for their expected time"
            )
    slack = max(0.5, min(slack_ceiling, max(m.excess for m in found) + 0.25))
    epsilon = Epsilon(waves=found[0].epsilon, indexed=found[1].epsilon, slack=slack)
    return epsilon, found


def save(measured: list[Measured], path: Path) -> None:
    """The median per-step overhead of each strategy, for `mlgen estimate --overhead-from`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {m.strategy: round(statistics.median(m.overheads), 3) for m in measured}, indent=2
        )
        + "\n",
        encoding="utf-8",
    )


def _overheads(start: float | None, ends: Sequence[float | None], seconds: float) -> list[float]:
    """end_k - end_{k-1} - d for each step, the first measured from `start`."""
    if start is None or None in ends:
        raise AssertionError("calibration run did not complete; see its timeline")
    out, previous = [], start
    for end in ends:
        assert end is not None
        out.append(end - previous - seconds)
        previous = end
    return out
