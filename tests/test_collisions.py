"""No two batches of one render write the same object: a Flux Kustomization of each in
flux-system would be overwritten by the other's sync, and prune would delete the other's
Jobs. Names are joined with '-', so batch 'x' with job '1-b' and batch 'x-0' with its
second job 'b' both name a Kustomization 'x-0-1-b'."""

from __future__ import annotations

from typing import Any

import pytest

from mlgen import render
from mlgen.errors import UsageError

from .conftest import batch_doc, load


def _batch(name: str, namespace: str, jobs: list[str]) -> dict[str, Any]:
    doc = batch_doc(
        flux={"source": "gitops", "path": "./clusters/ml/manifests"},
        variants=["sequential"],
        jobs=[{"name": j, "args": [f"echo {j}"]} for j in jobs],
    )
    doc["metadata"].update(name=name, namespace=namespace)
    return doc


def test_two_batches_that_name_one_flux_kustomization_are_refused() -> None:
    first = load(_batch("x", "team-a", ["1-b"]), source_name="a.yaml")
    second = load(_batch("x-0", "team-b", ["a", "b"]), source_name="b.yaml")
    with pytest.raises(
        UsageError,
        match=r"b\.yaml:\d+: metadata\.name: renders Kustomization 'x-0-1-b' in "
        r"namespace flux-system \(x-0/flux/kustomizations.yaml\), which "
        r"batch 'x' of a\.yaml renders too",
    ):
        render.render_all([first, second])


def test_batches_with_distinct_objects_render_together() -> None:
    first = load(_batch("x", "team-a", ["a", "b"]), source_name="a.yaml")
    second = load(_batch("y", "team-a", ["a", "b"]), source_name="b.yaml")
    out = render.render_all([first, second])
    assert {"x/flux/kustomizations.yaml", "y/flux/kustomizations.yaml"} <= set(out.files)
