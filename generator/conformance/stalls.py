"""Nothing waits silently: a run whose pods make no progress fails with the reason.

A pod that stays Pending (unscheduled, or scheduled with a container waiting to start)
while no pod of the run runs, starts or ends for `bound` seconds is a stall: a missing
claim, too few GPUs, an image that cannot be pulled. A pod running elsewhere is progress,
so a parallel run queued on capacity (pods Pending while others run, however long) is
not a stall. The
reason is the scheduler's or the kubelet's own words: the PodScheduled condition's
message, a container's waiting reason and message, or the pod's latest warning event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from mlgen import kube
from mlgen.errors import ClusterError

T = TypeVar("T")
POLL = 2.0


class StallError(AssertionError):
    """A run's pods stopped making progress; the message says which pod and why."""


def reason(client: kube.Kube, pod: Any) -> str:
    """Why a Pending pod does not run, in the cluster's words."""
    for condition in pod.status.conditions or []:
        if condition.type == "PodScheduled" and condition.status == "False":
            return f"{condition.reason}: {condition.message}"
    for status in [
        *(pod.status.init_container_statuses or []),
        *(pod.status.container_statuses or []),
    ]:
        waiting = status.state.waiting if status.state else None
        if waiting is not None and waiting.reason not in (
            None,
            "ContainerCreating",
            "PodInitializing",
        ):
            return f"{waiting.reason}: {waiting.message or ''}".rstrip(": ")
    with kube.errors(f"reading the events of pod {pod.metadata.name}"):
        events = client.core.list_namespaced_event(
            pod.metadata.namespace, field_selector=f"involvedObject.name={pod.metadata.name}"
        ).items
    warnings = [e for e in events if e.type == "Warning"]
    if warnings:
        last = max(
            warnings,
            key=lambda e: e.last_timestamp or e.event_time or e.metadata.creation_timestamp,
        )
        return f"{last.reason}: {last.message}"
    return "no reason given by the scheduler or the kubelet yet"


def guarded(client: kube.Kube, namespace: str, work: Callable[[], T], *, bound: float) -> T:
    """Run `work` (an apply and its waits) in a thread, checking the namespace's pods every
    POLL seconds; raise StallError when they stall for `bound` seconds."""
    result: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(work())
        except BaseException as e:  # re-raised in the caller's thread
            failure.append(e)

    worker = threading.Thread(target=target, name="mlgen-run", daemon=True)
    worker.start()
    last_progress, seen = time.monotonic(), ""
    while worker.is_alive():
        worker.join(POLL)
        if not worker.is_alive():
            break
        try:
            with kube.errors(f"listing the pods of namespace {namespace}"):
                pods = client.core.list_namespaced_pod(namespace).items
        except ClusterError:
            # The API server is away (a restart): no word on the pods, so no stall either;
            # the run's own waits ride out the restart.
            last_progress = time.monotonic()
            continue
        state = ";".join(
            sorted(f"{p.metadata.name}={p.status.phase}/{_running(p)}" for p in pods if p.status)
        )
        running = any(p.status and p.status.phase == "Running" for p in pods)
        if state != seen or running:  # a pod appeared, started, ended or runs: progress
            seen, last_progress = state, time.monotonic()
            continue
        stuck = [p for p in pods if p.status and p.status.phase == "Pending"]
        if stuck and time.monotonic() - last_progress > bound:
            pod = min(stuck, key=lambda p: p.metadata.creation_timestamp)
            raise StallError(
                f"pod {namespace}/{pod.metadata.name} is still Pending and no pod of the run "
                f"has run, started or ended for {bound:.0f}s: {reason(client, pod)}"
            )
    if failure:
        raise failure[0]
    return result[0]


def _running(pod: Any) -> int:
    return sum(
        1 for s in pod.status.container_statuses or [] if s.state and s.state.running is not None
    )
