"""A GitOps tool's per-step overhead ε, from a calibration run of that tool.

A step's overhead is what its slot in the chain costs beyond its duration: from the end
of the previous step (the first: the chain's first start) to its own end, minus d. The
calibration keeps the worst step, adds the timestamp resolution (the API server keeps
whole seconds) and a margin for what one short run cannot be trusted to have seen:
a poll whose phase against a Job's completion is random (Flux's 5 s health check) or a
noisy machine. The margin is stated, not tuned: it is reported next to ε.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mlgen.timeline import Timeline

RESOLUTION = 1.0  # the API server's timestamps are whole seconds; a watched run is finer


@dataclass(frozen=True)
class Calibration:
    tool: str
    overheads: tuple[float, ...]  # per step, seconds
    margin: float  # added to the worst step, seconds
    resolution: float = RESOLUTION  # how far each recorded time may be off, seconds

    @property
    def worst(self) -> float:
        return max(self.overheads, default=0.0)

    @property
    def epsilon(self) -> float:
        return self.worst + self.resolution + self.margin

    def describe(self) -> str:
        steps = ", ".join(f"{o:.0f}" for o in self.overheads)
        return (
            f"{self.tool}: per-step overhead ε {self.epsilon:.1f}s = worst step "
            f"{self.worst:.0f}s (steps {steps}) + resolution {self.resolution:g}s + "
            f"margin {self.margin:.1f}s"
        )


def step_overheads(timeline: Timeline, durations: Sequence[float]) -> tuple[float, ...]:
    """end_k - end_(k-1) - d_k for each step in wave order, the first from its start."""
    jobs = timeline.jobs
    if len(jobs) != len(durations):
        raise AssertionError(
            f"{timeline.batch}/{timeline.variant}: {len(jobs)} Jobs for "
            f"{len(durations)} steps; the calibration run did not finish"
        )
    if jobs[0].start is None or any(j.end is None for j in jobs):
        raise AssertionError(
            f"{timeline.batch}/{timeline.variant}: a step has no recorded "
            "time; the calibration run did not complete"
        )
    previous, out = jobs[0].start, []
    for job, seconds in zip(jobs, durations, strict=True):
        assert job.end is not None
        out.append(job.end - previous - seconds)
        previous = job.end
    return tuple(out)


def calibrate(
    tool: str, timeline: Timeline, durations: Sequence[float], *, margin: float
) -> Calibration:
    # Timelines recorded by a watch carry a finer resolution than the API's whole seconds.
    resolution = float(getattr(timeline, "resolution", RESOLUTION))
    return Calibration(
        tool=tool,
        overheads=step_overheads(timeline, durations),
        margin=margin,
        resolution=resolution,
    )
