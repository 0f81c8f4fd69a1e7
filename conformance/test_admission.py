"""What users commit, through the paths their tools take: every variant directory of the
examples applied with `kubectl apply --server-side --dry-run=server -k` (kubectl's
decoder, the API server's validation and defaults) and read back equal to mlgen's own
objects; every pod template admitted under Pod Security "restricted"."""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from mlgen import kube, podsecurity, render, rules, source
from mlgen.cluster import build
from mlgen.conformance.plugin import Cluster
from mlgen.conformance.runner import Runner
from mlgen.errors import RenderError


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
    kubectl = build.kubectl()
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
                "annotations": template["metadata"].get("annotations", {}),
            },
            "spec": template["spec"],
        }
        mlgen_cluster.client.core.create_namespaced_pod(mlgen_run.namespace, pod, dry_run="All")


# The table the fast tests set through every path (tests/test_pod_security.py).
PSA_RULES = yaml.safe_load(
    (Path(__file__).parent.parent / "tests" / "data" / "pod-security-rules.yaml").read_text()
)
BELOW = {"restricted": "baseline", "baseline": "privileged"}


@pytest.fixture(scope="module")
def enforcing(mlgen_cluster: Cluster) -> Iterator[dict[str, str]]:
    """A namespace per Pod Security level, enforcing it: level -> namespace."""
    core = mlgen_cluster.client.core
    suffix = uuid.uuid4().hex[:6]
    made = {level: f"psa-{level}-{suffix}" for level in ("restricted", "baseline", "privileged")}
    for level, name in made.items():
        labels = {"pod-security.kubernetes.io/enforce": level}
        core.create_namespace({"metadata": {"name": name, "labels": labels}})
    deadline = time.monotonic() + 30  # admission looks up each namespace's default account
    while time.monotonic() < deadline and not all(
        core.list_namespaced_service_account(n, field_selector="metadata.name=default").items
        for n in made.values()
    ):
        time.sleep(0.2)
    yield made
    for name in made.values():
        core.delete_namespace(name)


def _template(rule: dict[str, Any], level: str) -> dict[str, Any]:
    """The pod template mlgen renders with the rule set through a JSON podPatch, at
    `level`; RenderError when mlgen refuses it there."""
    ops: list[dict[str, Any]] = [
        {"op": "remove", "path": s["pointer"]}
        if s["value"] is None
        else {"op": "add", "path": s["pointer"], "value": s["value"]}
        for s in [rule, *rule.get("also", [])]
    ]
    doc = {
        "apiVersion": "mlgen.io/v1alpha1",
        "kind": "Batch",
        "metadata": {"name": "psa", "namespace": "default"},
        "spec": {
            "podSecurity": level,
            "defaults": {
                "image": "busybox:1.36.1",
                "command": ["sh", "-c"],
                "resources": {"requests": {"cpu": "100m"}},
                "expectedDuration": "2s",
                "podPatch": {"json": ops},
            },
            "jobs": [{"name": "a", "args": ["echo a"]}, {"name": "b", "args": ["echo b"]}],
        },
    }
    batches, problems = source.load_text(yaml.safe_dump(doc), source="psa.yaml")
    assert not problems, problems
    files = render.render_batch(batches[0], only=("parallel",))
    (job,) = [
        d for d in yaml.safe_load_all(files["psa/parallel/job.yaml"]) if d and d["kind"] == "Job"
    ]
    return job["spec"]["template"]  # type: ignore[no-any-return]


def _admission(client: kube.Kube, namespace: str, template: dict[str, Any]) -> str | None:
    """The API server's refusal of the template as a pod in `namespace`, or None."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "psa-check", **template["metadata"]},
        "spec": template["spec"],
    }
    try:
        client.core.create_namespaced_pod(namespace, pod, dry_run="All")
    except ApiException as e:
        return f"{e.status}: {json.loads(e.body).get('message', e.body) if e.body else e}"
    return None


@pytest.mark.parametrize(
    "rule", [r for r in PSA_RULES if r["lowest"] != "any"], ids=lambda r: r["name"]
)
def test_each_pod_security_rule_mlgen_checks_is_refused_by_admission_at_the_same_level(
    rule: dict[str, Any], mlgen_cluster: Cluster, enforcing: dict[str, str]
) -> None:
    """mlgen's Pod Security table against the API server's own admission: a pod breaking
    the rule is refused in a namespace enforcing the rule's level, and admitted one level
    below; mlgen refuses it at the level and renders it below. Neither side is stricter."""
    level, below = rule["lowest"], BELOW[rule["lowest"]]
    with pytest.raises(RenderError, match=f"breaks Pod Security '{level}'"):
        _template(rule, level)
    template = _template(rule, below)
    client = mlgen_cluster.client
    refusal = _admission(client, enforcing[level], template)
    assert refusal is not None, f"the API admits {rule['name']} under {level}: mlgen is stricter"
    assert "violates PodSecurity" in refusal, refusal
    assert _admission(client, enforcing[below], template) is None, (
        f"the API refuses {rule['name']} under {below} too: mlgen is more lenient"
    )


@pytest.mark.parametrize(
    "rule", [r for r in PSA_RULES if r["lowest"] == "any"], ids=lambda r: r["name"]
)
def test_what_mlgen_refuses_at_every_level_the_api_server_refuses_too(
    rule: dict[str, Any], mlgen_cluster: Cluster, enforcing: dict[str, str]
) -> None:
    """A seccomp annotation, or procMount Unmasked outside a user namespace: mlgen
    refuses it even for a privileged namespace, and so does the API server."""
    with pytest.raises(RenderError, match=re.escape(rule["message"])):
        _template(rule, "privileged")
    with rules.relaxed(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(podsecurity, "check", lambda *_, **__: None)
        template = _template(rule, "privileged")
    refusal = _admission(mlgen_cluster.client, enforcing["privileged"], template)
    assert refusal is not None, f"the API admits {rule['name']}: mlgen is stricter"
