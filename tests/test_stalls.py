"""Nothing waits silently: a run whose pods stand still while one is Pending fails with
the scheduler's or the kubelet's reason; progress elsewhere (a queue on capacity) does not."""

from __future__ import annotations

import time
from typing import Any

import pytest

from mlgen import lookout
from mlgen.conformance import stalls


def pending_pod(name: str, *, unschedulable: str | None = None) -> dict[str, Any]:
    conditions = (
        [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": unschedulable,
            }
        ]
        if unschedulable
        else []
    )
    return {
        "metadata": {"name": name, "namespace": "t"},
        "status": {"phase": "Pending", "conditions": conditions},
    }


def running_pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "t"}, "status": {"phase": "Running"}}


class Client:
    """The two reads the guard makes: the namespace's unfinished pods, a pod's events."""

    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.listed = pods

    def pods(self, namespace: str, *, selector: str | None = None, fields: str = "") -> Any:
        assert fields == lookout.UNFINISHED
        return self.listed

    def events(self, namespace: str, *, about: str) -> list[dict[str, Any]]:
        return []


def client(pods: list[dict[str, Any]]) -> Any:
    return Client(pods)


def test_a_stalled_run_fails_fast_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stalls, "POLL", 0.05)
    pods = [pending_pod("p", unschedulable="0/2 nodes: persistentvolumeclaim not found")]
    started = time.monotonic()
    with pytest.raises(stalls.StallError, match=r"still Pending .* persistentvolumeclaim"):
        stalls.guarded(client(pods), "t", lambda: time.sleep(30), bound=0.3)
    assert time.monotonic() - started < 5


def test_progress_elsewhere_is_not_a_stall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stalls, "POLL", 0.05)
    pods = [pending_pod("queued", unschedulable="Insufficient nvidia.com/gpu")]
    running = running_pod("r0")
    fake = client([*pods, running])

    def work() -> str:
        for i in range(8):  # a pod of the run ends and another starts every 0.1 s
            running["metadata"]["name"] = f"r{i}"
            time.sleep(0.1)
        return "done"

    assert stalls.guarded(fake, "t", work, bound=0.3) == "done"


def test_the_works_own_error_comes_through() -> None:
    def work() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        stalls.guarded(client([]), "t", work, bound=10)


def test_an_api_server_away_is_not_a_stall(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlgen.errors import ClusterError

    monkeypatch.setattr(stalls, "POLL", 0.05)
    fake = client([pending_pod("p", unschedulable="waiting")])

    def away(namespace: str, **options: Any) -> Any:
        raise ClusterError("cannot connect to the API server")

    fake.pods = away

    def work() -> str:
        time.sleep(0.6)
        return "done"

    assert stalls.guarded(fake, "t", work, bound=0.2) == "done"


def test_a_long_running_pod_beside_a_queued_one_is_not_a_stall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stalls, "POLL", 0.05)
    queued = pending_pod("queued", unschedulable="Insufficient nvidia.com/gpu")
    training = running_pod("training")

    def work() -> str:
        time.sleep(0.8)  # one 30 min job, unchanged for far longer than the bound
        return "done"

    assert stalls.guarded(client([queued, training]), "t", work, bound=0.2) == "done"
