"""What users commit, through the paths their tools take: every variant directory of the
examples applied with `kubectl apply --server-side --dry-run=server -k` (kubectl's
decoder, the API server's validation and defaults) and read back equal to mlgen's own
objects; every pod template admitted under Pod Security "restricted"."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from mlgen import kube, render, source
from mlgen.conformance.plugin import Cluster
from mlgen.conformance.runner import Runner


def rendered_tree(paths: list[Path], run: Runner, root: Path) -> dict[str, str]:
    """The examples as a user commits them (in this test's namespace), written to `root`."""
    files: dict[str, str] = {}
    for batch in source.load_files(paths):
        batch = run.prepare(batch)
        run.provide(batch)
        files.update(render.render_batch(batch))
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return files


def _subset(ours: object, theirs: object, where: str) -> None:
    """Every value mlgen wrote reads back the same from the API server (which adds defaults)."""
    if isinstance(ours, dict):
        assert isinstance(theirs, dict), f"{where}: the server holds {theirs!r}"
        for key, value in ours.items():
            assert key in theirs, f"{where}.{key}: missing on the server"
            _subset(value, theirs[key], f"{where}.{key}")
    elif isinstance(ours, list):
        assert isinstance(theirs, list) and len(theirs) == len(ours), f"{where}: {theirs!r}"
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            _subset(a, b, f"{where}[{i}]")
    else:
        assert ours == theirs, f"{where}: mlgen wrote {ours!r}, the server read {theirs!r}"


def test_every_variant_directory_passes_kubectl_apply_k_server_dry_run(
    mlgen_cluster: Cluster, mlgen_run: Runner, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """What users commit, applied the way their tools apply it: `kubectl apply
    --server-side --dry-run=server -k <variant dir>`, decoded by kubectl, admitted and
    defaulted by the API server, and read back equal to mlgen's own objects."""
    root = request.config.rootpath
    files = rendered_tree(sorted((root / "examples").glob("*.yaml")), mlgen_run, tmp_path)
    directories = sorted(
        {rel.rsplit("/", 1)[0] for rel in files if rel.endswith("/kustomization.yaml")}
    )
    assert len(directories) >= 5
    kubectl = kube.kubectl_binary()
    for directory in directories:
        proc = subprocess.run(
            [
                kubectl,
                "--kubeconfig",
                str(mlgen_cluster.kubeconfig),
                "apply",
                "--server-side",
                "--dry-run=server",
                "--field-manager=mlgen",
                "-o",
                "json",
                "-k",
                str(tmp_path / directory),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"{directory}: {proc.stderr.strip()}"
        served = json.loads(proc.stdout)
        items = served["items"] if served.get("kind") == "List" else [served]
        wanted = [
            d
            for rel, text in sorted(files.items())
            if rel.startswith(f"{directory}/") and not rel.endswith("kustomization.yaml")
            for d in yaml.safe_load_all(text)
            if d
        ]
        by_name = {(i["kind"], i["metadata"]["name"]): i for i in items}
        assert len(by_name) == len(wanted), f"{directory}: {sorted(by_name)}"
        for obj in wanted:
            key = (obj["kind"], obj["metadata"]["name"])
            _subset(obj, by_name[key], f"{directory}: {key[0]} {key[1]}")


def test_every_rendered_pod_template_passes_pod_security_restricted_admission(
    mlgen_cluster: Cluster, mlgen_run: Runner, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    root = request.config.rootpath
    files = rendered_tree(sorted((root / "examples").glob("*.yaml")), mlgen_run, tmp_path)
    jobs = [
        d
        for rel, text in files.items()
        if not rel.endswith("kustomization.yaml")
        for d in yaml.safe_load_all(text)
        if d and d["kind"] == "Job"
    ]
    assert len(jobs) > 5
    for job in jobs:
        # Pod Security admits or rejects pods, not Jobs: try each pod template as a pod
        # in this namespace, which enforces "restricted".
        template = job["spec"]["template"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "admission-check",
                "labels": template["metadata"].get("labels", {}),
            },
            "spec": template["spec"],
        }
        mlgen_cluster.client.core.create_namespaced_pod(mlgen_run.namespace, pod, dry_run="All")
