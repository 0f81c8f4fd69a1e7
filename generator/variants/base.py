"""The protocol every variant implements, and what they share.

A variant is one way of running a batch: it renders files into its output directory,
says which conditions end the objects `mlgen apply` waits for, predicts its makespan,
and checks a run's timeline against its promises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mlgen import spec
    from mlgen.timeline import Timeline

# The Job conditions that end a wait: success first, then failure.
JOB_ENDS = ("Complete", "Failed")


@dataclass(frozen=True)
class Rendered:
    """What a variant writes: files (relative to `<batch>/`) of objects, and which of them
    its directory's kustomization.yaml lists, in order."""

    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    resources: list[str] = field(default_factory=list)


class Variant(Protocol):
    name: str  # waves | indexed | parallel: the `mlgen.io/strategy` annotation
    directory: str  # sequential | parallel: the output directory and `spec.variants` name
    ends: tuple[str, ...]  # Job conditions that end `mlgen apply`'s wait, success first
    # Whether `mlgen apply` may move on once the Job's one pod has succeeded (the Job's
    # final condition is still awaited and checked before apply returns).
    done_when_pod_succeeds: bool

    def render(self, batch: spec.Batch) -> Rendered:
        """Every object of this variant, validated later by `render`."""

    def predict(self, durations: list[float], *, parallelism: int, overhead: float) -> float:
        """Predicted makespan in seconds, with `overhead` seconds per step."""

    def check(self, timeline: Timeline, batch: spec.Batch, *, epsilon: float, slack: float) -> None:
        """Raise AssertionError when a successful run broke one of the variant's promises;
        `slack` is how much longer than planned a pod may run (process start on real
        nodes)."""


def planned(batch: spec.Batch) -> dict[str, float]:
    """Each job's expected run time by name (jobs without one are not checked)."""
    return {j.name: float(j.expected_seconds) for j in batch.jobs if j.expected_seconds is not None}


def check_sequential(
    timeline: Timeline, batch: spec.Batch, *, epsilon: float, slack: float
) -> None:
    """The promises of every sequential variant: all complete, each pod its duration, in
    the batch's order, Σd ≤ makespan ≤ Σd + n·ε + lag."""
    from mlgen import checks

    checks.all_complete(timeline)
    checks.ran_for(timeline, planned(batch), slack=slack)
    checks.steps_in_order(timeline, [j.name for j in batch.jobs])
    checks.sequential_bounds(timeline, planned_all(batch), epsilon=epsilon)


def planned_all(batch: spec.Batch) -> list[float]:
    """Every job's expected run time in batch order (0 when unset)."""
    return [float(j.expected_seconds or 0) for j in batch.jobs]
