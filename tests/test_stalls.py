"""Nothing waits silently: a run whose pods stand still while one is Pending fails with
the scheduler's or the kubelet's reason; progress elsewhere (a queue on capacity) does not."""

from __future__ import annotations

import time
from types import SimpleNamespace as NS
from typing import Any

import pytest

from mlgen.conformance import stalls


def pending_pod(name: str, *, unschedulable: str | None = None, waiting: str | None = None) -> Any:
    conditions = (
        [NS(type="PodScheduled", status="False", reason="Unschedulable", message=unschedulable)]
        if unschedulable
        else []
    )
    statuses = (
        [NS(state=NS(waiting=NS(reason=waiting, message="pull access denied"), running=None))]
        if waiting
        else []
    )
    return NS(
        metadata=NS(name=name, namespace="t", creation_timestamp=0),
        status=NS(
            phase="Pending",
            conditions=conditions,
            container_statuses=statuses,
            init_container_statuses=[],
        ),
    )


class Core:
    def __init__(self, pods: list[Any], events: list[Any] | None = None) -> None:
        self.pods, self.events = pods, events or []

    def list_namespaced_pod(self, namespace: str) -> Any:
        return NS(items=self.pods)

    def list_namespaced_event(self, namespace: str, field_selector: str) -> Any:
        return NS(items=self.events)


def client(pods: list[Any], events: list[Any] | None = None) -> Any:
    return NS(core=Core(pods, events))


def test_the_reason_is_the_clusters_own_words() -> None:
    gpu = pending_pod("a", unschedulable="0/2 nodes are available: 2 Insufficient nvidia.com/gpu.")
    assert stalls.reason(client([]), gpu).endswith("Insufficient nvidia.com/gpu.")
    image = pending_pod("b", waiting="ErrImagePull")
    assert stalls.reason(client([]), image) == "ErrImagePull: pull access denied"
    mount = pending_pod("c")
    event = NS(
        type="Warning",
        reason="FailedMount",
        message='persistentvolumeclaim "imagenet" not found',
        last_timestamp=1,
        event_time=None,
        metadata=NS(creation_timestamp=1),
    )
    said = stalls.reason(client([], [event]), mount)
    assert said == 'FailedMount: persistentvolumeclaim "imagenet" not found'


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
    running = NS(
        metadata=NS(name="r0", namespace="t", creation_timestamp=0),
        status=NS(phase="Running", container_statuses=[], conditions=[]),
    )
    fake = client([*pods, running])

    def work() -> str:
        for i in range(8):  # a pod of the run ends and another starts every 0.1 s
            running.metadata.name = f"r{i}"
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

    def away(namespace: str) -> Any:
        raise ClusterError("cannot connect to the API server")

    fake.core.list_namespaced_pod = away

    def work() -> str:
        time.sleep(0.6)
        return "done"

    assert stalls.guarded(fake, "t", work, bound=0.2) == "done"


def test_a_long_running_pod_beside_a_queued_one_is_not_a_stall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stalls, "POLL", 0.05)
    queued = pending_pod("queued", unschedulable="Insufficient nvidia.com/gpu")
    training = NS(
        metadata=NS(name="training", namespace="t", creation_timestamp=0),
        status=NS(phase="Running", container_statuses=[], conditions=[]),
    )

    def work() -> str:
        time.sleep(0.8)  # one 30 min job, unchanged for far longer than the bound
        return "done"

    assert stalls.guarded(client([queued, training]), "t", work, bound=0.2) == "done"
