"""Flux output: one Kustomization per step, chained by `dependsOn` with `wait: true`.

A single Flux Kustomization would apply every step at once; a chain makes Flux wait
for step k's Job to be Ready (Complete) before it applies step k+1.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlgen import sequential, spec


@dataclass(frozen=True)
class FluxOptions:
    source: str  # the GitRepository that holds the rendered manifests
    path: str  # where `manifests/` sits inside that repository, e.g. ./manifests
    namespace: str = "flux-system"


_MIN_TIMEOUT = 600


def whole(batch: spec.Batch, *, options: FluxOptions) -> dict[str, object]:
    """One Kustomization for the `indexed` strategy, waiting for the whole Indexed Job."""
    total = sum(j.timeout_seconds or 2 * (j.expected_seconds or 0) for j in batch.jobs)
    return _kustomization(f"{batch.name}-sequential", f"{batch.name}/sequential", total,
                          batch=batch, options=options)


def _kustomization(name: str, path: str, seconds: int, *, batch: spec.Batch,
                   options: FluxOptions) -> dict[str, object]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": options.namespace,
                     "labels": {"app.kubernetes.io/managed-by": "mlgen",
                                "app.kubernetes.io/part-of": batch.name}},
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


def kustomizations(batch: spec.Batch, steps: list[sequential.Step], *, options: FluxOptions,
                   step_dirs: list[str]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    previous: str | None = None
    for step, directory in zip(steps, step_dirs, strict=True):
        name = f"{batch.name}-{step.number:0{len(str(len(steps) - 1))}d}-{step.job.name}"[:253]
        # `wait` holds the chain until the Job completes, so the timeout must cover the
        # run: the job's own timeout, else twice its expected duration, at least 10m.
        seconds = step.job.timeout_seconds or 2 * (step.job.expected_seconds or 0)
        kustomization = _kustomization(name, f"{batch.name}/sequential/{directory}", seconds,
                                       batch=batch, options=options)
        if previous is not None:
            body = kustomization["spec"]
            assert isinstance(body, dict)
            body["dependsOn"] = [{"name": previous}]
        out.append(kustomization)
        previous = name
    return out
