"""Parallel: one Indexed Job running p jobs at a time, per-index args and env as data.

`backoffLimitPerIndex` keeps one bad index from failing the sweep, and the failure
policy does not count disruptions. Jobs that differ in anything but args, env,
secretEnv, expectedDuration and simulation hints cannot share the pod template.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlgen import checks, indexed_job, schedule, spec
from mlgen.variants.base import JOB_ENDS, Driver, Rendered, durations

if TYPE_CHECKING:
    from mlgen.timeline import Timeline


class Parallel:
    name = "parallel"
    directory = "parallel"
    ends = JOB_ENDS
    done_when_pod_succeeds = False
    driver: Driver = "controller"
    rounds = True
    overhead = 1.1  # seconds per step, measured on the local control plane
    companions: tuple[str, ...] = ()
    entrypoint = True

    def fits(self, batch: spec.Batch) -> str:
        if batch.stages:
            return (
                "the parallel variant starts every job at once, which would break "
                "spec.stages' order; list stages (and sequential, one job at a time) in "
                "spec.variants instead"
            )
        return ""

    def render(self, batch: spec.Batch) -> Rendered:
        indexed_job.check_shared(batch, fix="set spec.variants: [sequential]")
        out = indexed_job.render(
            batch,
            variant=self.directory,
            strategy=self.name,
            infix="par",
            parallelism=batch.parallelism,
            max_failed_indexes=None,
        )
        return Rendered(
            files={"parallel/params.yaml": [out.config], "parallel/job.yaml": [out.job]},
            resources=["params.yaml", "job.yaml"],
        )

    def predict(
        self,
        batch: spec.Batch,
        *,
        parallelism: int,
        overheads: Mapping[str, float],
        ideal: bool = False,
    ) -> float:
        return schedule.parallel(
            durations(batch.jobs),
            parallelism=parallelism,
            overhead=overheads[self.name],
            lag=0.0 if ideal else schedule.COMPLETION_LAG,
            rate=None if ideal else schedule.START_RATE,
        )

    def check(self, timeline: Timeline, batch: spec.Batch, *, epsilon: checks.Epsilon) -> None:
        checks.all_complete(timeline)
        checks.ran_for(timeline, checks.planned(batch), slack=epsilon.slack)
        checks.parallel_bounds(
            timeline,
            checks.planned_all(batch),
            parallelism=batch.parallelism,
            epsilon=epsilon.of(self),
        )


VARIANT = Parallel()
