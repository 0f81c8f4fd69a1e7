"""Indexed: the sequential variant as one Indexed Job with parallelism 1.

The Job controller always starts the lowest pending index, so the order holds whatever
applies the files; `onFailure: stop` is `maxFailedIndexes: 0`. Only for batches whose
jobs share one pod template.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlgen import checks, flux, indexed_job, schedule, spec
from mlgen.variants.base import JOB_ENDS, Driver, Rendered, durations

if TYPE_CHECKING:
    from mlgen.timeline import Timeline


class Indexed:
    name = "indexed"
    directory = "sequential"
    ends = JOB_ENDS
    done_when_pod_succeeds = False
    driver: Driver = "controller"
    rounds = False
    overhead = 1.1  # seconds per step, measured on the local control plane
    companions: tuple[str, ...] = ("flux",)
    entrypoint = True

    def render(self, batch: spec.Batch) -> Rendered:
        indexed_job.check_shared(
            batch,
            fix="set spec.sequential.strategy: waves, which gives every job its own pod template",
        )
        out = indexed_job.render(
            batch,
            variant=self.directory,
            strategy=self.name,
            infix="seq",
            parallelism=1,
            max_failed_indexes=0 if batch.on_failure == "stop" else None,
        )
        files = {"sequential/params.yaml": [out.config], "sequential/job.yaml": [out.job]}
        if batch.flux is not None:  # the Job controller keeps the order: one suffices
            files |= flux.files(batch, "flux", [flux.whole(batch)])
        return Rendered(files=files, resources=["params.yaml", "job.yaml"])

    def fits(self, batch: spec.Batch) -> str:
        return ""  # the Job controller runs the lowest index first: stage order holds

    def predict(
        self,
        batch: spec.Batch,
        *,
        parallelism: int,
        overheads: Mapping[str, float],
        ideal: bool = False,
    ) -> float:
        lag = 0.0 if ideal else schedule.COMPLETION_LAG
        return schedule.sequential(durations(batch.jobs), overhead=overheads[self.name], lag=lag)

    def check(self, timeline: Timeline, batch: spec.Batch, *, epsilon: checks.Epsilon) -> None:
        checks.check_sequential(timeline, batch, epsilon=epsilon.of(self), slack=epsilon.slack)


VARIANT = Indexed()
