"""Nothing waits silently: a run whose pods make no progress fails with the reason.

A pod that stays Pending (unscheduled, or scheduled with a container waiting to start)
while no pod of the run runs, starts or ends for `bound` seconds is a stall: a missing
claim, too few GPUs, an image that cannot be pulled. A pod running elsewhere is progress,
so a parallel run queued on capacity (pods Pending while others run, however long) is
not a stall. The reason is the scheduler's or the kubelet's own words, read as
`mlgen apply` reads them (`mlgen.lookout`): the PodScheduled condition's message, a
container's waiting reason and message, or the pod's latest warning event. The guard
watches the whole test namespace from a thread of its own, so it holds for any wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from mlgen import kube, lookout
from mlgen.errors import ClusterError

T = TypeVar("T")
POLL = 2.0


class StallError(AssertionError):
    """A run's pods stopped making progress; the message says which pod and why."""


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
    watch = lookout.Watch(now=time.monotonic())
    while worker.is_alive():
        worker.join(POLL)
        if not worker.is_alive():
            break
        try:
            pods = client.pods(namespace, fields=lookout.UNFINISHED)
        except ClusterError:
            # The API server is away (a restart): no word on the pods, so no stall either;
            # the run's own waits ride out the restart.
            watch.moved = time.monotonic()
            continue
        now = time.monotonic()
        watch.note(pods, now=now)
        pod = watch.stuck(pods, now=now, bound=bound)
        if pod is not None:
            name = pod["metadata"]["name"]
            raise StallError(
                f"pod {namespace}/{name} is still Pending and no pod of the run "
                f"has run, started or ended for {bound:.0f}s: "
                f"{lookout.reason(client, pod) or lookout.NO_REASON}"
            )
    if failure:
        raise failure[0]
    return result[0]
