"""Faults on the local control plane: a batch survives a crashed component.

kube-controller-manager (the Job controller) or kube-apiserver is SIGKILLed while a
sequential batch runs and started again from its own command line; the batch must
still finish every step once, in order (a finished step never runs again). Today
`mlgen apply` survives a controller-manager crash but not an API server restart (xfail,
strict: it turns red once apply retries, so the mark is removed then).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from mlgen.cluster import faults
from mlgen.conformance.runner import Runner, sleeper_batch
from mlgen.errors import ClusterError


def crash_during(home: Any, component: str, *, after: float, down_for: float,
                 errors: list[BaseException]) -> threading.Thread:
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


@pytest.mark.parametrize("component", [
    "kube-controller-manager",
    pytest.param("kube-apiserver", marks=pytest.mark.xfail(
        strict=True, raises=ClusterError,
        reason="mlgen apply gives up on the first refused connection while the API server "
               "restarts (generator/kube.py, apply.py: no retry of list/watch/read calls on "
               "connection errors); remove this mark when they retry")),
])
def test_a_crashed_component_restarted_mid_batch_runs_every_step_once_in_order(
        mlgen_cluster: Any, mlgen_run: Runner, component: str) -> None:
    if mlgen_cluster.kind != "local":
        pytest.skip("stops components of mlgen's local control plane")
    home = faults.home_of(mlgen_cluster.kubeconfig)
    durations = [3, 3, 3, 3]
    batch = mlgen_run.from_dict(sleeper_batch(f"crash-{component.split('-')[-1]}",
                                              durations=durations))
    errors: list[BaseException] = []
    thread = crash_during(home, component, after=4.0, down_for=3.0, errors=errors)
    try:
        result = mlgen_run.run(batch, "sequential", timeout=240)
    finally:  # the component is running again before anything else uses the cluster
        thread.join(timeout=30)
    assert not errors, errors
    assert result.failure is None, str(result.failure)
    pods = sorted(result.timeline.pods, key=lambda p: p.start or 0.0)
    assert [p.step for p in pods] == [f"step-{i}" for i in range(len(durations))], \
        "each step exactly once, in the batch's order"
    assert all(p.phase == "Succeeded" for p in pods)
