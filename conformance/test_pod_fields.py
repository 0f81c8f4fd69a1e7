"""Every pod field and both podPatch kinds pass strict validation and a server-side dry
run on the real API server (admission included), in every variant."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from mlgen import render, source
from mlgen.conformance.plugin import Cluster

POD_FIELDS = Path(__file__).resolve().parents[1] / "tests" / "data" / "pod-fields.yaml"


def test_every_pod_field_and_the_patch_pass_a_server_side_dry_run(
    mlgen_cluster: Cluster, mlgen_namespace: str
) -> None:
    batches = [
        dataclasses.replace(b, namespace=mlgen_namespace) for b in source.load_files([POD_FIELDS])
    ]
    files = render.render_all(batches).files  # strict offline validation first
    applied = []
    for path, text in sorted(files.items()):
        if path.endswith("kustomization.yaml"):
            continue
        for obj in yaml.safe_load_all(text):
            if obj:
                stored = mlgen_cluster.client.apply(obj, dry_run=True)
                applied.append((obj["kind"], stored["metadata"]["name"]))
    assert sum(kind == "Job" for kind, _ in applied) >= 5, applied
    template = next(
        o
        for path, text in files.items()
        if path.startswith("pod-fields/parallel/job")
        for o in yaml.safe_load_all(text)
        if o
    )["spec"]["template"]["spec"]
    assert template["priorityClassName"] == "batch-low"
    assert template["terminationGracePeriodSeconds"] == 60
