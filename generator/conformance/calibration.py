"""ε, the per-step overhead of this cluster, measured by a calibration run that must itself
keep every promise, and bounded by a ceiling so that a regression cannot hide in it.

Each driver of a step (the client; the Job controller) runs five 2 s steps of a strategy
it drives, recorded by a watch (milliseconds). The run is checked
like any other (complete, in order, one pod at a time, Σd ≤ makespan, every pod ran its
2 s). A step ends when its pod does; its overhead is `end_k - end_{k-1} - d` (the first
from the first Job's start; the last Job's completion lag is bounded apart, once per run,
by `checks.COMPLETION_ALLOWANCE`); ε is the largest of the
five (the 100th percentile: bounds are sums of n steps, each of which may be the worst),
and must not exceed the ceiling; ε never goes below a floor per driver, since a quiet
calibration can measure less than a loaded run later needs. The ceilings are the local control
plane's measured overheads with room for a loaded 2-core machine (docs/design.md): a
5 s slowdown per step, or pods that run longer than planned, fail calibration instead of
widening every bound. `--mlgen-max-epsilon` raises the ceiling for slower clusters.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlgen import checks, variants
from mlgen.checks import Epsilon
from mlgen.conformance.runner import Runner, sleeper_batch

if TYPE_CHECKING:
    from mlgen.variants.base import Variant

STEPS, SECONDS = 5, 2
# A floor, because a quiet calibration can measure less than a loaded test run later
# needs: client-driven steps 0.05-0.08 s measured, controller-driven 1.07-1.10 s with
# single steps of 2.1 s.
FLOOR = {"client": 0.5, "controller": 1.5}
# On kind a step that mounts a claim or starts beside other containers costs up to ~1 s
# more than the calibration's bare steps (measured 2.06-2.2 s client, 3.03-3.04 s
# controller). Controller-driven steps come in two modes a second apart (the same 12-step
# Indexed Job: 3.0-3.1 s and 4.0-4.17 s, most in the upper one, after a calibration whose
# five steps all fell in the lower, 3.03-3.05 s): its floor is above the upper mode.
KIND_FLOOR = {"client": 3.0, "controller": 4.5}


@dataclass(frozen=True)
class Limits:
    """What a kind of cluster may measure: the ceilings on the worst step's overhead per
    driver, and on how long a pod may run beyond its duration. They exist to catch
    slowdowns: a planted 5 s per step must land above them."""

    client: float
    controller: float
    slack: float
    why: str
    real: bool = True  # real kubelets: a round of p pods costs up to the slack more
    floors: tuple[tuple[str, float], ...] = tuple(FLOOR.items())

    def floor(self, driver: str) -> float:
        return dict(self.floors)[driver]

    def ceiling(self, driver: str) -> float:
        return self.client if driver == "client" else self.controller

    @property
    def pending(self) -> float:
        """How long a run's pods may all stand still while one is Pending (stalls.py):
        fifteen worst steps, far beyond any start-up this kind of cluster measured."""
        return 15 * max(self.client, self.controller)

    def raised(self, ceiling: float) -> Limits:
        """`--mlgen-max-epsilon`: both step ceilings set to `ceiling`."""
        return dataclasses.replace(self, client=ceiling, controller=ceiling)


LIMITS = {
    # KWOK sets a pod's times exactly; the watch and the Job controller's 1 s batching are
    # all there is: indexed median 1.06 s, worst 2.10 s; waves well under a second.
    "local": Limits(
        client=3.0,
        controller=3.5,
        slack=0.75,
        why="the local control plane: KWOK times pods exactly (worst step 2.1 s measured)",
        real=False,
    ),
    # A real container adds sandbox, CNI, runc and the kubelet's status reporting (PLEG
    # relist 1 s): measured on the local real node, worst 2.5 s (client) and 3.0 s (controller)
    # per step, pods seen running up to 1.9 s beyond their sleep.
    "real-node": Limits(
        client=6.0,
        controller=6.0,
        slack=2.5,
        why="a real kubelet: container start and status reporting (worst step 3.0 s measured)",
    ),
    # Real kind, two node containers on the same 2-core machine as the suite: measured here
    # (docs/real-kind.md, "Checks that fit a real kubelet").
    "kind": Limits(
        client=6.0,
        controller=6.5,
        slack=3.0,
        why="real kind: two node containers share the CI machine's 2 cores",
        floors=tuple(KIND_FLOOR.items()),
    ),
}


def limits_for(cluster: str) -> Limits:
    """The limits of a kind of cluster; a kubeconfig cluster is held to kind's."""
    return LIMITS.get(cluster, LIMITS["kind"])


@dataclass(frozen=True)
class Measured:
    driver: str
    strategy: str  # the strategy it ran
    overheads: tuple[float, ...]
    excess: float  # the longest a pod ran beyond its duration
    lag: float  # from the last pod's end to the last Job's Complete

    @property
    def worst(self) -> float:
        return max(self.overheads)

    def epsilon(self, limits: Limits) -> float:
        """The worst step, never below the strategy's floor on this kind of cluster."""
        return max(self.worst, limits.floor(self.driver))

    def describe(self) -> str:
        median = statistics.median(self.overheads)
        return (
            f"{self.driver} ({self.strategy}): worst step {self.worst:.3f}s (median "
            f"{median:.3f}s of {len(self.overheads)} steps), pods ran up to "
            f"{self.excess:.3f}s over, completion lag {self.lag:.3f}s"
        )


def calibrated() -> dict[str, Variant]:
    """For each driver, the first registered strategy it drives that runs one job at a
    time: what the calibration runs."""
    found: dict[str, Variant] = {}
    for entry in variants.REGISTRY:
        unit = variants.get(entry.name)
        if not unit.rounds:
            found.setdefault(unit.driver, unit)
    return found


def calibrate(run: Runner, *, limits: Limits = LIMITS["local"]) -> tuple[Epsilon, list[Measured]]:
    """ε per driver; raises AssertionError when the calibration run breaks a promise or
    its overhead is above the ceiling."""
    found: list[Measured] = []
    for driver, unit in calibrated().items():
        strategy = unit.name
        batch = run.from_dict(
            sleeper_batch(f"calib-{strategy}", durations=[SECONDS] * STEPS, strategy=strategy)
        )
        result = run.run(batch, unit.directory)
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
        # Job controller's batching delays by up to a second (checks.COMPLETION_ALLOWANCE).
        pods = sorted(runs, key=lambda p: p.start or 0.0)
        start, ends = timeline.jobs[0].start, [p.end for p in pods]
        lag = (timeline.jobs[-1].end or 0.0) - (pods[-1].end or 0.0)
        found.append(
            Measured(driver, strategy, tuple(_overheads(start, ends, SECONDS)), excess, lag)
        )
    for measured in found:
        limit = limits.ceiling(measured.driver)
        if measured.worst > limit:
            raise AssertionError(
                f"calibration: per-step overhead too high: {measured.describe()}, above the "
                f"ceiling {limit:.2f}s for {limits.why}; a slowdown in mlgen apply or the "
                "cluster? (for a slower cluster, raise --mlgen-max-epsilon)"
            )
        if measured.lag > checks.COMPLETION_ALLOWANCE:
            raise AssertionError(
                f"calibration: the last Job said Complete {measured.lag:.3f}s after its pod "
                f"ended, more than the {checks.COMPLETION_ALLOWANCE:.1f}s the Job controller needs"
            )
        if measured.excess > limits.slack:
            raise AssertionError(
                f"calibration: pods ran longer than their duration: {measured.describe()}, "
                f"more than {limits.slack:.2f}s for {limits.why}; jobs must run for their "
                "expected time"
            )
    slack = max(0.5, min(limits.slack, max(m.excess for m in found) + 0.25))
    per = {m.driver: m.epsilon(limits) for m in found}
    epsilon = Epsilon(
        client=per["client"],
        controller=per["controller"],
        slack=slack,
        round=per["controller"] + slack if limits.real else None,
    )
    return epsilon, found


def save(measured: list[Measured], path: Path) -> None:
    """The median per-step overhead of each driver, for `mlgen estimate --overhead-from`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({m.driver: round(statistics.median(m.overheads), 3) for m in measured}, indent=2)
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
