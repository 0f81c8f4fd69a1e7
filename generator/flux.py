"""Flux output: one Kustomization per step (or stage), chained by `dependsOn` with
`wait: true`.

A single Flux Kustomization would apply every step at once; a chain makes Flux wait
for step k's Job to be Ready (Complete) before it applies step k+1. Where Flux finds
the tree (`spec.flux`) lives in the batch file, so every render gives the same files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlgen import contract, health, spec
from mlgen.errors import SpecError

if TYPE_CHECKING:
    from mlgen.variants.waves import Step

_MIN_TIMEOUT = 600


def files(batch: spec.Batch, directory: str, chain: list[dict[str, Any]]) -> dict[str, Any]:
    """The files of a chain's directory: its Kustomizations, and for a queued batch the
    ServiceAccount they impersonate with its Role (`health.access`)."""
    out: dict[str, Any] = {f"{directory}/kustomizations.yaml": chain}
    if batch.queue:
        for kustomization in chain:
            # Kueue holds Jobs suspended, which Flux's own Job reader calls Current; the
            # expressions hold the chain until Complete, read first only under
            # impersonation.
            kustomization["spec"]["serviceAccountName"] = health.flux_account(batch, directory)
            kustomization["spec"]["healthCheckExprs"] = [dict(health.FLUX_JOB)]
        out[f"{directory}/access.yaml"] = health.access(batch, directory)
    return out


def whole(batch: spec.Batch) -> dict[str, Any]:
    """One Kustomization for the `indexed` strategy, waiting for the whole Indexed Job."""
    total = sum(j.timeout_seconds or 2 * (j.expected_seconds or 0) for j in batch.jobs)
    return _kustomization(
        f"{batch.name}-sequential", f"{batch.name}/sequential", total, batch=batch
    )


def chain(batch: spec.Batch, steps: Sequence[Step]) -> list[dict[str, Any]]:
    # `wait` holds the chain until the Job completes, so the timeout must cover the run:
    # the job's own timeout, else twice its expected duration, at least 10m.
    return links(
        batch,
        [
            Link(
                name=f"{batch.name}-{step.directory}",
                path=f"sequential/{step.directory}",
                seconds=step.job.timeout_seconds or 2 * (step.job.expected_seconds or 0),
                where=batch.at_job(step.job.index, "name"),
            )
            for step in steps
        ],
    )


@dataclass(frozen=True)
class Link:
    """One Kustomization of a chain: its name, the directory it applies (relative to the
    batch's), and how long its Jobs may take."""

    name: str
    path: str
    seconds: int
    where: str = "metadata.name"  # `file:line: path` of the field that names it


# Flux labels every object a Kustomization applies with the Kustomization's name
# (kustomize.toolkit.fluxcd.io/name), and a label value holds 63 characters.
NAME_BUDGET = 63


def links(batch: spec.Batch, chain: Sequence[Link]) -> list[dict[str, Any]]:
    """One Kustomization per link, each `dependsOn` the one before."""
    out: list[dict[str, Any]] = []
    previous: str | None = None
    for link in chain:
        name = link.name
        if len(name) > NAME_BUDGET:
            raise SpecError(
                f"{link.where}: the Flux Kustomization {name!r} is {len(name) - NAME_BUDGET} "
                f"character(s) over {NAME_BUDGET}: Flux puts its name in a label on every "
                "object it applies; shorten the batch name or this name"
            )
        kustomization = _kustomization(name, f"{batch.name}/{link.path}", link.seconds, batch=batch)
        if previous is not None:
            kustomization["spec"]["dependsOn"] = [{"name": previous}]
        out.append(kustomization)
        previous = name
    return out


def _kustomization(name: str, path: str, seconds: int, *, batch: spec.Batch) -> dict[str, Any]:
    assert batch.flux is not None
    options = batch.flux
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {
            "name": name,
            "namespace": options.namespace,
            "labels": {contract.MANAGED_BY: contract.MANAGER, contract.PART_OF: batch.name},
        },
        "spec": {
            "interval": "10m",
            "retryInterval": "30s",
            "timeout": f"{max(seconds, _MIN_TIMEOUT)}s",
            "path": f"{options.path.rstrip('/')}/{path}",
            "prune": True,
            "wait": True,
            "sourceRef": {"kind": "GitRepository", "name": options.source},
        },
    }
