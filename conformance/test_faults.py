"""Faults on the local control plane: a batch survives a crashed component.

kube-controller-manager (the Job controller) or kube-apiserver is SIGKILLed while a
sequential batch runs and started again from its own command line; the batch must
still finish every step once, in order (a finished step never runs again). Today
`mlgen apply` retries through an API server restart (kube.Kube.retrying) and names a
missing ServiceAccount, Secret, ConfigMap, PVC or PriorityClass before it applies
anything.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlgen import apply, render, source
from mlgen.cluster import faults
from mlgen.conformance.runner import Runner, sleeper_batch
from mlgen.errors import MlgenError


def crash_during(
    home: Any, component: str, *, after: float, down_for: float, errors: list[BaseException]
) -> threading.Thread:
    def fault() -> None:
        try:
            time.sleep(after)
            launch = faults.stop(home, component)
            time.sleep(down_for)
            faults.start(home, launch)
        except BaseException as e:  # reported by the test, not lost in the thread
            errors.append(e)

    thread = threading.Thread(target=fault, daemon=True)
    thread.start()
    return thread


@pytest.mark.simulated_only
@pytest.mark.parametrize("component", ["kube-controller-manager", "kube-apiserver"])
def test_a_crashed_component_restarted_mid_batch_runs_every_step_once_in_order(
    mlgen_cluster: Any, mlgen_run: Runner, component: str
) -> None:
    mlgen_run.estimated = None  # a planted fault: no estimate models it
    home = faults.home_of(mlgen_cluster.kubeconfig)
    durations = [3, 3, 3, 3]
    batch = mlgen_run.from_dict(
        sleeper_batch(f"crash-{component.split('-')[-1]}", durations=durations)
    )
    errors: list[BaseException] = []
    thread = crash_during(home, component, after=4.0, down_for=3.0, errors=errors)
    try:
        result = mlgen_run.run(batch, "sequential", timeout=240)
    finally:  # the component is running again before anything else uses the cluster
        thread.join(timeout=30)
    assert not errors, errors
    assert result.failure is None, str(result.failure)
    pods = sorted(result.timeline.pods, key=lambda p: p.start or 0.0)
    assert [p.step for p in pods] == [f"step-{i}" for i in range(len(durations))], (
        "each step exactly once, in the batch's order"
    )
    assert all(p.phase == "Succeeded" for p in pods)


MISSING = {
    "serviceAccountName": {"serviceAccountName": "no-such-account"},
    "secretEnv": {"secretEnv": {"TOKEN": "no-such-secret/key"}},
    "configMap": {"envFrom": [{"configMapRef": {"name": "no-such-config"}}]},
    "claim": {
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "no-such-claim"}}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    },
    "priorityClassName": {"priorityClassName": "no-such-priority"},
}


@pytest.mark.parametrize("missing", sorted(MISSING))
def test_a_missing_object_a_job_needs_is_a_clear_error_not_a_wait(
    mlgen_cluster: Any, mlgen_namespace: str, missing: str
) -> None:
    """Every kind the pods need to start (ServiceAccount, Secret, ConfigMap, PVC, and the
    cluster-scoped PriorityClass) is looked up on the real API server before anything is
    applied, and named with the command that creates it."""
    extra = MISSING[missing]
    doc = sleeper_batch(f"missing-{missing.lower()}", durations=[2], extra_defaults=extra)
    doc["metadata"]["namespace"] = mlgen_namespace
    batches, problems = source.load_text(yaml.safe_dump(doc), source="missing.yaml")
    assert not problems, problems
    files = render.render_batch(batches[0], only=("sequential",))
    objects = [
        d
        for path, text in sorted(files.items())
        if not path.endswith("kustomization.yaml")
        for d in yaml.safe_load_all(text)
        if d
    ]
    start = time.monotonic()
    with pytest.raises(MlgenError) as caught:
        apply.run(mlgen_cluster.client, objects, timeout=20, progress=lambda _: None)
    assert time.monotonic() - start < 15, "found at once, not after the wait's timeout"
    message = str(caught.value)
    assert "no-such-" in message and "create it first (kubectl " in message, message
    assert not mlgen_cluster.client.batch.list_namespaced_job(mlgen_namespace).items, (
        "nothing may be applied"
    )


def test_apply_sigkilled_and_run_again_runs_no_finished_step_twice(
    mlgen_cluster: Any, mlgen_namespace: str, tmp_path: Path
) -> None:
    doc = sleeper_batch("killed-apply", durations=[3, 3, 3])
    doc["metadata"]["namespace"] = mlgen_namespace
    doc["spec"]["simulated"] = True  # KWOK runs each pod for its expectedDuration
    batch_file = tmp_path / "batch.yaml"
    batch_file.write_text(yaml.safe_dump(doc))
    mlgen = str(Path(sys.executable).parent / "mlgen")
    subprocess.run(
        [mlgen, "render", str(batch_file), "-o", str(tmp_path / "out")],
        check=True,
        capture_output=True,
    )
    target = tmp_path / "out" / "killed-apply" / "sequential"
    command = [
        mlgen,
        "apply",
        str(target),
        "--kubeconfig",
        str(mlgen_cluster.kubeconfig),
        "--timeout",
        "2m",
    ]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = mlgen_cluster.client
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _succeeded_pods(client, mlgen_namespace):
        time.sleep(0.5)
    first.send_signal(signal.SIGKILL)  # mid-batch: step 0 done, step 1 applied or not
    first.wait(timeout=10)
    assert len(_succeeded_pods(client, mlgen_namespace)) < 3, "killed too late to prove it"
    again = subprocess.run(command, capture_output=True, text=True, timeout=150, check=False)
    assert again.returncode == 0, again.stderr
    pods = client.core.list_namespaced_pod(mlgen_namespace).items
    by_job: dict[str, list[str]] = {}
    for pod in pods:
        by_job.setdefault(pod.metadata.labels["job-name"], []).append(pod.status.phase)
    assert len(by_job) == 3 and all(v == ["Succeeded"] for v in by_job.values()), by_job


def _succeeded_pods(client: Any, namespace: str) -> list[Any]:
    return [
        p for p in client.core.list_namespaced_pod(namespace).items if p.status.phase == "Succeeded"
    ]


@pytest.mark.simulated_only
def test_a_dead_node_under_a_running_pod_is_a_disruption_not_a_retry(
    mlgen_cluster: Any, mlgen_run: Runner
) -> None:
    """A node dies under a running pod and the operator marks it out of service (the
    non-graceful node shutdown taint), then deletes it. The taint eviction controller
    deletes the pod with a DisruptionTarget condition, the pod stops as a kubelet would
    stop it (Failed, exit 143), and the podFailurePolicy ignores it: the index runs again
    on the pool's other node without spending its retries (retries: 0 would otherwise fail
    the batch). The eviction is immediate, so nothing here waits on the pod garbage
    collector's 40-80 s orphan check."""
    mlgen_run.estimated = None  # a planted fault: no estimate models it
    from mlgen.cluster import pools

    client = mlgen_cluster.client
    pool = f"dead-{mlgen_run.namespace[-4:]}"
    created = pools.create(
        client,
        [
            pools.Pool(
                pool=pool,
                count=2,
                capacity={"cpu": "8", "memory": "32Gi", "pods": "110"},
                labels={"mlgen.io/pool": pool},
                taints=({"key": "mlgen.io/pool", "value": pool, "effect": "NoSchedule"},),
            )
        ],
    )
    doc = sleeper_batch(
        "node-dead",
        durations=[20],
        parallelism=1,
        extra_defaults={
            "retries": 0,
            "nodeSelector": {"mlgen.io/pool": pool},
            "tolerations": [
                {"key": "mlgen.io/pool", "operator": "Equal", "value": pool, "effect": "NoSchedule"}
            ],
        },
    )
    dead: list[str] = []
    errors: list[BaseException] = []
    out_of_service = {
        "key": "node.kubernetes.io/out-of-service",
        "value": "nodeshutdown",
        "effect": "NoExecute",
    }

    def kill_the_node_under_the_pod() -> None:
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                for pod in client.core.list_namespaced_pod(mlgen_run.namespace).items:
                    if pod.status.phase == "Running" and pod.spec.node_name in created:
                        time.sleep(3)
                        name = pod.spec.node_name
                        node = client.core.read_node(name)
                        taints = [
                            {"key": t.key, "value": t.value, "effect": t.effect}
                            for t in node.spec.taints or []
                        ]
                        client.core.patch_node(
                            name, {"spec": {"taints": [*taints, out_of_service]}}
                        )
                        dead.append(name)
                        time.sleep(2)
                        client.core.delete_node(name)
                        return
                time.sleep(0.5)
        except BaseException as e:  # reported by the test, not lost in the thread
            errors.append(e)

    thread = threading.Thread(target=kill_the_node_under_the_pod, daemon=True)
    thread.start()
    try:
        result = mlgen_run.run(mlgen_run.from_dict(doc), "parallel", timeout=240)
    finally:
        thread.join(timeout=70)
        for name in set(created) - set(dead):
            client.core.delete_node(name)
    assert not errors, errors
    assert dead, "the pod never ran on the test pool"
    assert result.failure is None, f"a disruption spent the retry budget: {result.failure}"
    # The first pod is gone with its node; what is left is its replacement, on the pool's
    # other node, still at attempt 1 of 1, and it ran its whole duration after the eviction.
    (replacement,) = [p for p in result.timeline.pods if p.phase == "Succeeded"]
    assert replacement.node != dead[0] and replacement.node in created
    assert replacement.attempt == 1, "the replacement must not count as a retry"
    assert replacement.end - replacement.start >= 20 - 0.5
