"""From validated batches to the files of the output tree, all in memory.

Layout, relative to the output directory:

    <batch>/sequential/kustomization.yaml
    <batch>/sequential/<NN>-<job>/job.yaml      (waves: a directory a step, for Flux)
    <batch>/sequential/params.yaml, job.yaml    (indexed)
    <batch>/parallel/kustomization.yaml, params.yaml, job.yaml
    <batch>/flux/kustomizations.yaml            (with Flux options)

Every object is schema-validated before a single file is returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlgen import flux, indexed, manifest, sequential, spec, validation
from mlgen.errors import UsageError

VARIANTS = ("sequential", "parallel")


@dataclass(frozen=True)
class Options:
    variants: tuple[str, ...] | None = None  # None: each batch's own spec.variants
    flux: flux.FluxOptions | None = None
    validate: bool = True


def render_all(batches: Sequence[spec.Batch], *, options: Options) -> dict[str, str]:
    files: dict[str, str] = {}
    for batch in batches:
        files.update(render_batch(batch, options=options))
    return files


def render_batch(batch: spec.Batch, *, options: Options) -> dict[str, str]:
    """`{relative posix path: file text}` for one batch."""
    variants = options.variants or batch.variants
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise UsageError(f"unknown variant {unknown[0]!r}; choose sequential or parallel")
    head = manifest.header(source=batch.source, digest=batch.source_sha256)
    files: dict[str, str] = {}
    objects: list[dict[str, Any]] = []

    def emit(path: str, items: list[dict[str, Any]]) -> None:
        files[f"{batch.name}/{path}"] = manifest.document(items, head=head)
        objects.extend(items)

    def kustomization(variant: str, resources: list[str]) -> None:
        body = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                "resources": resources}
        files[f"{batch.name}/{variant}/kustomization.yaml"] = manifest.document([body],
                                                                              head=head)

    if "sequential" in variants:
        if batch.strategy == "waves":
            steps = sequential.waves(batch)
            width = len(str(len(steps) - 1))
            dirs = [f"{s.number:0{width}d}-{s.job.name}" for s in steps]
            for step, directory in zip(steps, dirs, strict=True):
                emit(f"sequential/{directory}/job.yaml", [step.manifest])
            kustomization("sequential", [f"{d}/job.yaml" for d in dirs])
            if options.flux is not None:
                files[f"{batch.name}/flux/kustomizations.yaml"] = manifest.document(
                    flux.kustomizations(batch, steps, options=options.flux, step_dirs=dirs),
                    head=head)
        else:
            rendered = sequential.indexed_job(batch)
            emit("sequential/params.yaml", [rendered.config])
            emit("sequential/job.yaml", [rendered.job])
            kustomization("sequential", ["params.yaml", "job.yaml"])
            if options.flux is not None:  # the Job controller keeps the order: one suffices
                files[f"{batch.name}/flux/kustomizations.yaml"] = manifest.document(
                    [flux.whole(batch, options=options.flux)], head=head)
    if "parallel" in variants:
        indexed.check_shared(batch, fix="set spec.variants: [sequential] (or render with "
                                        "--variant sequential)")
        rendered = indexed.render(batch, variant="parallel", parallelism=batch.parallelism,
                                  max_failed_indexes=None)
        emit("parallel/params.yaml", [rendered.config])
        emit("parallel/job.yaml", [rendered.job])
        kustomization("parallel", ["params.yaml", "job.yaml"])
    if options.validate:
        validation.check_objects(objects, version=batch.kubernetes_version,
                                 source=batch.source)
    return files
