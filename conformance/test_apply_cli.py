"""`mlgen apply` and `mlgen report` as a user runs them, against the session's cluster."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mlgen.cli.app import app
from mlgen.conformance.plugin import Cluster
from mlgen.conformance.runner import sleeper_batch


def render_into(tmp_path: Path, doc: dict[str, Any], namespace: str) -> Path:
    doc["metadata"]["namespace"] = namespace
    batch = tmp_path / "batch.yaml"
    batch.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = tmp_path / "manifests"
    result = CliRunner().invoke(app, ["render", str(batch), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out / doc["metadata"]["name"]


def mlgen(cluster: Cluster, *args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--kubeconfig", str(cluster.kubeconfig)])


def test_apply_completes_reruns_as_a_no_op_and_reports(
    mlgen_cluster: Cluster, mlgen_namespace: str, tmp_path: Path
) -> None:
    tree = render_into(
        tmp_path, sleeper_batch("cli-ok", durations=[1, 1], parallelism=2), mlgen_namespace
    )
    timeline = tmp_path / "run.json"
    first = mlgen(mlgen_cluster, "apply", str(tree / "sequential"), "--timeline", str(timeline))
    assert first.exit_code == 0, first.output
    assert "[1/2] step 'step-0'" in first.output and "done: 2 job(s) complete" in first.output
    assert timeline.exists() and timeline.with_suffix(".svg").read_text().startswith("<svg")
    jobs = mlgen_cluster.client.batch.list_namespaced_job(mlgen_namespace).items
    versions = {j.metadata.name: j.metadata.resource_version for j in jobs}
    again = mlgen(mlgen_cluster, "apply", str(tree / "sequential"))
    assert again.exit_code == 0, again.output
    jobs = mlgen_cluster.client.batch.list_namespaced_job(mlgen_namespace).items
    assert {j.metadata.name: j.metadata.resource_version for j in jobs} == versions
    assert all(j.metadata.managed_fields[0].manager == "mlgen" for j in jobs)
    chart = tmp_path / "chart.png"
    report = CliRunner().invoke(app, ["report", str(timeline), "-o", str(chart)])
    assert report.exit_code == 0 and chart.exists(), report.output
    assert "peak 1 pods" in report.output


@pytest.mark.skipif(
    "config.getoption('--mlgen-cluster') not in (None, 'local')",
    reason="failures are simulated by KWOK annotations",
)
def test_apply_exits_1_naming_the_failed_job_and_indexes(
    mlgen_cluster: Cluster, mlgen_namespace: str, tmp_path: Path
) -> None:
    doc = sleeper_batch("cli-fail", durations=[1, 1, 1], strategy="indexed")
    doc["spec"]["jobs"][1]["simulate"] = {"exitCode": 4}
    tree = render_into(tmp_path, doc, mlgen_namespace)
    result = mlgen(mlgen_cluster, "apply", str(tree / "sequential"), "--timeout", "2m")
    assert result.exit_code == 1, result.output
    assert "error: job/cli-fail-seq-" in result.output and "failed indexes 1" in result.output


def test_apply_exits_2_when_the_cluster_cannot_be_reached(
    tmp_path: Path, mlgen_cluster: Cluster
) -> None:
    tree = render_into(tmp_path, sleeper_batch("cli-conn", durations=[1]), "default")
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "nowhere",
                "clusters": [{"name": "nowhere", "cluster": {"server": "https://127.0.0.1:9"}}],
                "contexts": [{"name": "nowhere", "context": {"cluster": "nowhere", "user": "u"}}],
                "users": [{"name": "u", "user": {"token": "x"}}],
            }
        )
    )
    before = kubeconfig.read_bytes()
    result = CliRunner().invoke(
        app, ["apply", str(tree / "sequential"), "--kubeconfig", str(kubeconfig)]
    )
    assert result.exit_code == 2, result.output
    assert "cannot connect to the API server" in result.output
    assert kubeconfig.read_bytes() == before, "the kubeconfig is never modified"


def test_apply_refuses_a_missing_namespace(mlgen_cluster: Cluster, tmp_path: Path) -> None:
    tree = render_into(tmp_path, sleeper_batch("cli-ns", durations=[1]), "no-such-namespace")
    result = mlgen(mlgen_cluster, "apply", str(tree / "sequential"))
    assert result.exit_code == 2
    assert "namespace 'no-such-namespace' does not exist" in result.output


def test_apply_says_why_a_pod_waits_and_fails_past_the_pending_bound(
    mlgen_cluster: Cluster, mlgen_namespace: str, tmp_path: Path
) -> None:
    """No node of any kind of cluster has the made-up resource: the scheduler leaves the
    pod Pending, apply says so in the scheduler's words while it waits (once), then fails
    at --pending-timeout, long before --timeout, naming the pod and the reason."""
    fpga = {"example.com/fpga": "1"}
    resources = {"requests": {"cpu": "100m", "memory": "32Mi", **fpga}, "limits": fpga}
    doc = sleeper_batch("cli-pending", durations=[1], extra_defaults={"resources": resources})
    tree = render_into(tmp_path, doc, mlgen_namespace)
    started = time.monotonic()
    result = mlgen(
        mlgen_cluster,
        "apply",
        str(tree / "sequential"),
        "--pending-timeout",
        "20",
        "--timeout",
        "10m",
    )
    assert result.exit_code == 1, result.output
    assert time.monotonic() - started < 120, "the Pending bound, not --timeout, ended it"
    waiting = [line for line in result.output.splitlines() if " Pending: " in line]
    assert waiting and "Insufficient example.com/fpga" in waiting[-1], result.output
    assert len(set(waiting)) == len(waiting), "a reason is said once, not on every look"
    (error,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    # The scheduler's whole message may pass the error line's length bound: its start.
    assert "has been Pending for at least" in error and "Unschedulable: 0/" in error, error
