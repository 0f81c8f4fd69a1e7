"""Proof that the local control plane is a real Kubernetes control plane with KWOK pods:
order and timing, Pod Security admission, scheduling capacity, per-index retries, and a
clean shutdown. These run on whatever cluster the session has; the lifecycle test starts
a second local cluster of its own (two clusters side by side)."""

from __future__ import annotations

import datetime
import itertools
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from mlgen import kube, timeline
from mlgen.checks import Epsilon
from mlgen.conformance.plugin import Cluster
from mlgen.conformance.runner import PROBE_IMAGE

RESTRICTED_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_CONTEXT = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def indexed_job(
    name: str,
    *,
    completions: int,
    seconds: int,
    annotations: dict[str, str] | None = None,
    retries: int = 0,
    gpus: int = 0,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": PROBE_IMAGE,
        "command": ["sh", "-c", f"sleep {seconds}"],
        "securityContext": CONTAINER_CONTEXT,
    }
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": RESTRICTED_CONTEXT,
        "containers": [container],
    }
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
        pod["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "completionMode": "Indexed",
            "completions": completions,
            "parallelism": 1,
            "backoffLimitPerIndex": retries,
            "template": {
                "metadata": {
                    "annotations": {
                        "mlgen.io/expected-duration": f"{seconds}s",
                        **(annotations or {}),
                    }
                },
                "spec": pod,
            },
        },
    }


def wait_job(client: kube.Kube, namespace: str, name: str, timeout: float) -> Any:
    """The one wait (kube.Kube.wait_ended), as a test assertion: the Job's status."""
    found = client.wait_ended(namespace, [name], until=("Complete", "Failed"), timeout=timeout)
    assert name in found, f"job {name} did not finish in {timeout}s"
    return found[name].get("status") or {}


def pods_of(client: kube.Kube, namespace: str, job: str) -> list[Any]:
    return client.core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items


def test_indexed_job_runs_in_index_order_within_bound(
    mlgen_cluster: Cluster, mlgen_namespace: str, mlgen_epsilon: Epsilon
) -> None:
    client = mlgen_cluster.client
    client.batch.create_namespaced_job(
        mlgen_namespace, indexed_job("order", completions=3, seconds=2)
    )
    status = wait_job(client, mlgen_namespace, "order", 60)
    assert status.get("succeeded") == 3 and status.get("completedIndexes") == "0-2"
    pods = sorted(
        pods_of(client, mlgen_namespace, "order"),
        key=lambda p: p.status.container_statuses[0].state.terminated.started_at,
    )
    indexes = [p.metadata.labels["batch.kubernetes.io/job-completion-index"] for p in pods]
    assert indexes == ["0", "1", "2"]
    for before, after in itertools.pairwise(pods):
        assert (
            after.status.container_statuses[0].state.terminated.started_at
            >= before.status.container_statuses[0].state.terminated.finished_at
        )
    for pod in pods:
        state = pod.status.container_statuses[0].state.terminated
        run = (state.finished_at - state.started_at).total_seconds()
        assert 2 - timeline.API_RESOLUTION <= run <= 2 + timeline.API_RESOLUTION, run
    started, ended = (
        datetime.datetime.fromisoformat(status[k].replace("Z", "+00:00"))
        for k in ("startTime", "completionTime")
    )
    makespan = (ended - started).total_seconds()
    bound = 2 * 3 + 3 * mlgen_epsilon.controller + timeline.API_RESOLUTION
    assert makespan <= bound, f"makespan {makespan}s > 2s·3 + 3·ε = {bound:.1f}s"


def test_pod_violating_restricted_pod_security_is_rejected(
    mlgen_cluster: Cluster, mlgen_namespace: str
) -> None:
    client = mlgen_cluster.client
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root-pod"},
        "spec": {
            "containers": [
                {"name": "main", "image": PROBE_IMAGE, "securityContext": {"privileged": True}}
            ]
        },
    }
    with pytest.raises(Exception) as caught:
        client.core.create_namespaced_pod(mlgen_namespace, bad)
    assert getattr(caught.value, "status", None) == 403
    message = json.loads(getattr(caught.value, "body", "{}"))["message"]
    assert 'violates PodSecurity "restricted:latest"' in message, message
    good = {
        **bad,
        "spec": {
            "securityContext": RESTRICTED_CONTEXT,
            "containers": [
                {"name": "main", "image": PROBE_IMAGE, "securityContext": CONTAINER_CONTEXT}
            ],
        },
    }
    client.core.create_namespaced_pod(mlgen_namespace, good, dry_run="All")


@pytest.mark.skipif(
    "config.getoption('--mlgen-cluster') not in (None, 'local')",
    reason="fake GPU capacity exists only on the simulated cluster",
)
def test_job_asking_for_more_gpus_than_any_node_stays_pending(
    mlgen_cluster: Cluster, mlgen_namespace: str
) -> None:
    client = mlgen_cluster.client
    nodes = client.core.list_node().items
    most = max(int((n.status.allocatable or {}).get("nvidia.com/gpu", "0")) for n in nodes)
    client.batch.create_namespaced_job(
        mlgen_namespace, indexed_job("greedy", completions=1, seconds=1, gpus=most + 1)
    )
    fits = indexed_job("fits", completions=1, seconds=1, gpus=most)
    client.batch.create_namespaced_job(mlgen_namespace, fits)
    wait_job(client, mlgen_namespace, "fits", 60)  # the same scheduler placed a fitting job
    (pod,) = pods_of(client, mlgen_namespace, "greedy")
    assert pod.status.phase == "Pending" and not pod.spec.node_name
    scheduled = next(c for c in pod.status.conditions if c.type == "PodScheduled")
    assert scheduled.status == "False" and scheduled.reason == "Unschedulable"
    assert "Insufficient nvidia.com/gpu" in scheduled.message


@pytest.mark.skipif(
    "config.getoption('--mlgen-cluster') not in (None, 'local')",
    reason="failures are simulated by KWOK annotations",
)
def test_pod_marked_to_fail_twice_then_succeeds(
    mlgen_cluster: Cluster, mlgen_namespace: str
) -> None:
    client = mlgen_cluster.client
    job = indexed_job(
        "flaky",
        completions=1,
        seconds=1,
        retries=3,
        annotations={"mlgen.io/simulate-failure": "7/2"},
    )
    client.batch.create_namespaced_job(mlgen_namespace, job)
    status = wait_job(client, mlgen_namespace, "flaky", 90)
    assert (status.get("failed"), status.get("succeeded")) == (2, 1)
    assert any(
        c.get("type") == "Complete" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    codes = sorted(
        p.status.container_statuses[0].state.terminated.exit_code
        for p in pods_of(client, mlgen_namespace, "flaky")
    )
    assert codes == [0, 7, 7]


def test_nodes_stay_ready(mlgen_cluster: Cluster) -> None:
    for node in mlgen_cluster.client.core.list_node().items:
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        assert ready.status == "True", node.metadata.name


@pytest.mark.skipif(
    "config.getoption('--mlgen-cluster') not in (None, 'local')",
    reason="starts a local cluster of its own",
)
def test_second_cluster_starts_beside_the_first_and_down_leaves_no_process(
    mlgen_cluster: Cluster, tmp_path: Any, mlgen_record: Callable[[str], None]
) -> None:
    from mlgen.cluster import local

    said: list[str] = []
    second = local.up(workdir=tmp_path, progress=said.append)
    # From when it may start: other workers' clusters start one at a time with it.
    (startup,) = [float(m[1]) for line in said if (m := re.search(r"ready in ([\d.]+)s", line))]
    try:
        pids = second.pids()
        assert set(pids) == {
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok-controller",
        }
        assert all(local.alive(pid) for pid in pids.values())
        client = kube.connect(kubeconfig=second.kubeconfig)
        assert client.core.list_namespace().items  # it answers, beside the session's cluster
        assert second.kubeconfig != mlgen_cluster.kubeconfig
        assert startup < 60, f"startup took {startup:.1f}s"
        mlgen_record(f"local cluster startup (binaries cached): {startup:.1f}s")
    finally:
        local.down(second, progress=lambda _: None)
    assert not [c for c, pid in pids.items() if local.alive(pid)]
    assert not second.home.exists()
    mlgen_cluster.client.core.list_namespace()  # the first cluster is unaffected


@pytest.mark.skipif(
    "config.getoption('--mlgen-cluster') not in (None, 'local')",
    reason="starts a local cluster of its own",
)
def test_cluster_commands_up_list_down(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from mlgen.cli.app import app
    from mlgen.cluster import local

    runner = CliRunner()
    workdir = ["--workdir", str(tmp_path)]
    up = runner.invoke(app, ["cluster", "up", "--name", "cli-check", *workdir])
    cluster = local.LocalCluster(name="cli-check", workdir=tmp_path)
    try:
        assert up.exit_code == 0, up.output
        assert f"export KUBECONFIG={cluster.kubeconfig}" in up.output
        assert "6 fake nodes Ready" in up.output
        nodes = kube.connect(kubeconfig=cluster.kubeconfig).core.list_node().items
        gpus = sorted(int((n.status.allocatable or {}).get("nvidia.com/gpu", "0")) for n in nodes)
        assert gpus == [0, 0, 0, 0, 8, 8]
        listed = runner.invoke(app, ["cluster", "list", *workdir])
        assert "cli-check\t5 processes running" in listed.output
        pids = cluster.pids()
    finally:
        down = runner.invoke(app, ["cluster", "down", "--name", "cli-check", *workdir])
    assert down.exit_code == 0, down.output
    assert not any(local.alive(pid) for pid in pids.values())
    again = runner.invoke(app, ["cluster", "down", "--name", "cli-check", *workdir])
    assert again.exit_code == 2 and "no cluster named 'cli-check'" in again.output
