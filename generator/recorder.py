"""Millisecond timelines: watch a batch's Jobs and pods and note each transition on the
client's monotonic clock.

The API server keeps times to the second, which hides sub-second overlaps and adds a
second of doubt to every bound. A watch sees each status change within milliseconds of
the API server recording it, so the moments a pod was first seen running and first seen
finished, read from one clock, measure run times and gaps to the watch's latency. The
API's own timestamps are kept beside them as a cross-check (`timeline.Timeline`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlgen import kube

RESOLUTION = 0.25  # seconds: the watch saw events up to 0.08 s late on a loaded 2-core machine


@dataclass
class Seen:
    """First sightings of one object's transitions, seconds on the recorder's clock."""

    created: float
    running: float | None = None
    ended: float | None = None
    outcome: str = ""  # Complete | Failed (Jobs); Succeeded | Failed (pods)


@dataclass
class Recorder:
    """Context manager: two watch threads (Jobs, pods) for one label selector."""

    client: kube.Kube
    namespace: str
    selector: str
    origin: float = field(default_factory=time.monotonic)
    wall_origin: float = field(default_factory=time.time)
    jobs: dict[str, Seen] = field(default_factory=dict)
    pods: dict[str, Seen] = field(default_factory=dict)
    events: int = 0  # objects the list and the watch delivered (each noted, then dropped)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.monotonic() - self.origin

    def __enter__(self) -> Recorder:
        self.origin, self.wall_origin = time.monotonic(), time.time()
        for lister, note in (
            (self.client.batch.list_namespaced_job, self._job),
            (self.client.core.list_namespaced_pod, self._pod),
        ):
            thread = threading.Thread(target=self._follow, args=(lister, note), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def settle(self, seconds: float = 0.3) -> None:
        """Give the watches time to deliver the last events before the record is read."""
        time.sleep(seconds)

    def _follow(self, lister: Callable[..., Any], note: Callable[[Any, float], None]) -> None:
        """Note every object the list and the watch deliver, on this recorder's clock,
        until stopped; `kube.Kube.follow` waits out every error (an API server restart)."""

        def noted(item: dict[str, Any]) -> bool:
            note(item, self.now())
            self.events += 1
            return False

        self.client.follow(
            lister,
            self.namespace,
            noted,
            what=f"the objects {self.selector} in namespace {self.namespace}",
            selector=self.selector,
            stop=self._stop,
            deleted=True,  # a pod deleted as it ended still says how it ended
        )

    def _job(self, job: dict[str, Any], moment: float) -> None:
        with self._lock:
            seen = self.jobs.setdefault(job["metadata"]["name"], Seen(created=moment))
            status = job.get("status") or {}
            if status.get("startTime") and seen.running is None:
                seen.running = moment
            for condition in status.get("conditions") or []:
                if (
                    condition.get("status") == "True"
                    and condition.get("type") in ("Complete", "Failed")
                    and seen.ended is None
                ):
                    seen.ended, seen.outcome = moment, condition["type"]

    def _pod(self, pod: dict[str, Any], moment: float) -> None:
        with self._lock:
            seen = self.pods.setdefault(pod["metadata"]["name"], Seen(created=moment))
            status = pod.get("status") or {}
            phase = status.get("phase")
            states = [c.get("state") or {} for c in status.get("containerStatuses") or []]
            running = any(s.get("running") or s.get("terminated") for s in states)
            if (running or phase in ("Running", "Succeeded", "Failed")) and seen.running is None:
                seen.running = moment
            if phase in ("Succeeded", "Failed") and seen.ended is None:
                seen.ended, seen.outcome = moment, phase
