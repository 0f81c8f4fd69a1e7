"""Fast tests: no cluster, no network. Shared helpers for writing and rendering batches."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mlgen import render, source, spec

BASE: dict[str, Any] = {
    "apiVersion": "mlgen.io/v1alpha1",
    "kind": "Batch",
    "metadata": {"name": "demo", "namespace": "ml"},
    "spec": {
        "parallelism": 2,
        "defaults": {
            "image": "busybox:1.36",
            "command": ["sh", "-c"],
            "resources": {"requests": {"cpu": "100m"}},
            "expectedDuration": "2s",
        },
        "jobs": [
            {"name": "a", "args": ["echo a"]},
            {"name": "b", "args": ["echo b"]},
            {"name": "c", "args": ["echo c"]},
        ],
    },
}


def batch_doc(**spec_overrides: Any) -> dict[str, Any]:
    """A fresh copy of the base batch with `spec` keys replaced."""
    doc = copy.deepcopy(BASE)
    doc["spec"].update(spec_overrides)
    return doc


def staged_doc(plan: dict[str, list[str]] | None = None, **stage_fields: Any) -> dict[str, Any]:
    """The base batch in stages (default: a, then b and c at once): `plan` maps each stage
    to its jobs (`echo <name>` each), in order; `stage_fields` add to a stage by name
    (`sweep={"parallelism": 2}`)."""
    plan = plan or {"prep": ["a"], "sweep": ["b", "c"]}
    doc = batch_doc()
    doc["spec"].pop("parallelism")
    doc["spec"]["stages"] = [{"name": name, **stage_fields.get(name, {})} for name in plan]
    doc["spec"]["jobs"] = [
        {"name": job, "stage": stage, "args": [f"echo {job}"]}
        for stage, jobs in plan.items()
        for job in jobs
    ]
    return doc


@pytest.fixture
def write_batch(tmp_path: Path) -> Callable[..., Path]:
    def write(doc: Any = None, *, name: str = "batch.yaml", text: str | None = None) -> Path:
        path = tmp_path / name
        path.write_text(text if text is not None else yaml.safe_dump(doc or BASE, sort_keys=False))
        return path

    return write


def load(doc: dict[str, Any], *, source_name: str = "batch.yaml") -> spec.Batch:
    batches, problems = source.load_text(yaml.safe_dump(doc, sort_keys=False), source=source_name)
    assert not problems, problems
    return batches[0]


def render_doc(
    doc: dict[str, Any], *, variants: tuple[str, ...] = (), validate: bool = True
) -> dict[str, str]:
    return render.render_batch(load(doc), only=variants, validate=validate)


def jobs_and_configs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in objects(render_doc(doc)) if o["kind"] in ("Job", "ConfigMap")]


def objects(files: dict[str, str], suffix: str = "") -> list[dict[str, Any]]:
    """Every Kubernetes object in the rendered files (kustomizations excluded)."""
    out = []
    for path, text in sorted(files.items()):
        if path.endswith(suffix) and not path.endswith("kustomization.yaml"):
            out.extend(d for d in yaml.safe_load_all(text) if d)
    return out


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
