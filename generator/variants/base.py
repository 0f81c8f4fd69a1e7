"""The protocol every variant implements, and what they share.

A variant is one way of running a batch: it renders files into its output directory,
says which conditions end the objects `mlgen apply` waits for, predicts its makespan,
and checks a run's timeline against its promises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from mlgen import spec
    from mlgen.checks import Epsilon
    from mlgen.timeline import Timeline

# The Job conditions that end a wait: success first, then failure.
JOB_ENDS = ("Complete", "Failed")
# Who starts each step: `mlgen apply` or a GitOps tool after the previous one ended (the
# client), or the Job controller inside one Indexed Job. A cluster's per-step overhead ε
# is calibrated per driver.
Driver = Literal["client", "controller"]


@dataclass(frozen=True)
class Rendered:
    """What a variant writes: files (relative to `<batch>/`) of objects, and which of them
    its directory's kustomization.yaml lists, in order."""

    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    resources: list[str] = field(default_factory=list)


class Variant(Protocol):
    name: str  # waves | indexed | parallel | stages: the `mlgen.io/strategy` annotation
    directory: str  # sequential | parallel | stages: the output directory and `spec.variants` name
    ends: tuple[str, ...]  # Job conditions that end `mlgen apply`'s wait, success first
    # Whether `mlgen apply` may move on once the Job's one pod has succeeded (the Job's
    # final condition is still awaited and checked before apply returns).
    done_when_pod_succeeds: bool
    # Its model: who starts each step; whether p pods start together (on real kubelets a
    # round of p containers costs up to a pod's start-up slack more than one); and the
    # per-step overhead measured on the local control plane, the estimate's default.
    driver: Driver
    rounds: bool
    overhead: float
    # What else its output holds: other directories it writes beside its own (a Flux
    # chain), and whether its pods start through mlgen's /bin/sh entrypoint (an Indexed
    # Job reads each index's args from a ConfigMap), which an image without a shell breaks.
    companions: tuple[str, ...]
    entrypoint: bool

    def fits(self, batch: spec.Batch) -> str:
        """Why this variant cannot run the batch, with the fix ("" when it can)."""

    def render(self, batch: spec.Batch) -> Rendered:
        """Every object of this variant, validated later by `render`."""

    def predict(
        self,
        batch: spec.Batch,
        *,
        parallelism: int,
        overheads: Mapping[str, float],
        ideal: bool = False,
    ) -> float:
        """Predicted makespan in seconds; `overheads` holds the per-step overhead of every
        strategy by name (its own, and any it runs parts of the batch like); `ideal`: the
        schedule alone, without the Job controller's completion lag and start rate."""

    def check(self, timeline: Timeline, batch: spec.Batch, *, epsilon: Epsilon) -> None:
        """Raise AssertionError when a successful run broke one of the variant's promises;
        `epsilon` is the cluster's per-step overhead per driver (`Epsilon.of(unit)` for a
        strategy with one driver) and its slack, how much longer than planned a pod may run
        (process start on real nodes)."""


def durations(jobs: tuple[spec.Job, ...] | list[spec.Job]) -> list[float]:
    """Each job's expectedDuration in seconds (0 when unset), in order."""
    return [float(j.expected_seconds or 0) for j in jobs]
