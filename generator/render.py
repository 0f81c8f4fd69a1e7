"""From validated batches to the files of the output tree, all in memory.

Layout, relative to the output directory (each variant unit says what it writes):

    <batch>/sequential/kustomization.yaml
    <batch>/sequential/<NN>-<job>/job.yaml      (waves: a directory a step, for Flux)
    <batch>/sequential/params.yaml, job.yaml    (indexed)
    <batch>/parallel/kustomization.yaml, params.yaml, job.yaml
    <batch>/stages/kustomization.yaml
    <batch>/stages/<k>-<stage>/job.yaml         (a wave a stage; params.yaml beside an Indexed Job)
    <batch>/flux/kustomizations.yaml            (with spec.flux: the sequential chain)
    <batch>/flux-stages/kustomizations.yaml     (with spec.flux: the stages chain)
    <batch>/flux*/access.yaml                   (with spec.flux and spec.queue: what the
                                                 chain impersonates, health.access)

Every object is schema-validated before a single file is returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlgen import features, limits, manifest, references, spec, validation, variants
from mlgen.errors import RenderError, UsageError


@dataclass
class Output:
    """Rendered files, and the path prefixes this render owns: a generated file under a
    scope that is not rendered now is stale; nothing outside the scopes is touched."""

    files: dict[str, str] = field(default_factory=dict)
    scopes: list[str] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)


def render_all(
    batches: Sequence[spec.Batch], *, only: Sequence[str] = (), validate: bool = True
) -> Output:
    """Render every batch; `only` limits the variant directories (never deleting others)."""
    unknown = [v for v in only if v not in variants.directories()]
    if unknown:
        raise UsageError(
            f"unknown variant {unknown[0]!r}; choose one of {', '.join(variants.directories())}"
        )
    out = Output()
    owners: dict[tuple[str, str, str, str], str] = {}
    for batch in batches:
        files = render_batch(batch, only=only, validate=validate, owners=owners)
        out.files.update(files)
        out.batches.append(batch.name)
        if only:
            chosen = [d for d in batch.variants if d in only]
            out.scopes.extend(f"{batch.name}/{d}/" for d in chosen)
            companions = {c for d in chosen for c in variants.companions(d)}
            out.scopes.extend(f"{batch.name}/{c}/" for c in sorted(companions))
        else:
            out.scopes.append(f"{batch.name}/")
    return out


def render_batch(
    batch: spec.Batch,
    *,
    only: Sequence[str] = (),
    validate: bool = True,
    owners: dict[tuple[str, str, str, str], str] | None = None,
) -> dict[str, str]:
    """`{relative posix path: file text}` for one batch. `owners` maps every object
    identity rendered so far in this run to its batch file: two batches may not render
    one object (a Flux Kustomization of each in flux-system, say), since each sync would
    overwrite the other's and prune would delete the other's Jobs."""
    features.require(batch.kubernetes_version, source=batch.source)
    head = manifest.header(batch=batch.name, source=batch.source_name)
    files: dict[str, str] = {}
    objects: list[dict[str, Any]] = []
    placed: list[tuple[str, dict[str, Any]]] = []
    listed: dict[str, list[str]] = {}
    for unit in variants.for_batch(batch):
        if only and unit.directory not in only:
            continue
        refused = unit.fits(batch)
        if refused:  # a variant the batch lists but that cannot run it (parallel stages)
            raise RenderError(f"{batch.at('spec.variants')}: {refused}")
        rendered = unit.render(batch)
        for path, items in rendered.files.items():
            for item in items:
                limits.check_object(item, source=batch.source, path=f"{batch.name}/{path}")
            files[f"{batch.name}/{path}"] = manifest.document(items, head=head)
            objects.extend(i for i in items if validation.has_schema(i))
            placed.extend((f"{batch.name}/{path}", i) for i in items)
        listed[f"{batch.name}/{unit.directory}"] = rendered.resources
        body = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": rendered.resources,
        }
        files[f"{batch.name}/{unit.directory}/kustomization.yaml"] = manifest.document(
            [body], head=head
        )
    references.check_order(placed, listed, flux_root=batch.flux.path if batch.flux else None)
    if owners is not None:
        _claim(owners, placed, batch)
    if validate:
        validation.check_objects(objects, version=batch.kubernetes_version, source=batch.source)
    return dict(sorted(files.items()))


def _claim(
    owners: dict[tuple[str, str, str, str], str],
    placed: list[tuple[str, dict[str, Any]]],
    batch: spec.Batch,
) -> None:
    mine: dict[tuple[str, str, str, str], str] = {}
    for path, obj in placed:
        meta = obj.get("metadata") or {}
        if "name" not in meta:
            continue  # a kustomization.yaml body
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        key = (group, str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta["name"]))
        other = owners.get(key)
        label = f"batch {batch.name!r} of {batch.source}"
        if other is not None and other != label:
            where = f" in namespace {key[2]}" if key[2] else ""
            raise UsageError(
                f"{batch.at('metadata.name')}: renders {key[1]} {key[3]!r}{where} ({path}), "
                f"which {other} renders too; each sync would overwrite the other and prune "
                "its Jobs. Rename one batch or one of its jobs"
            )
        mine[key] = label
    owners.update(mine)
