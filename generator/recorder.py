"""Millisecond timelines: watch a batch's Jobs and pods and note each transition on the
client's monotonic clock.

The API server keeps times to the second, which hides sub-second overlaps and adds a
second of doubt to every bound. A watch sees each status change within milliseconds of
the API server recording it, so the moments a pod was first seen running and first seen
finished, read from one clock, measure run times and gaps to the watch's latency. The
API's own timestamps are kept beside them as a cross-check (`timeline.Timeline`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

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
    events: int = 0  # watch events seen (each is noted and dropped, never kept)
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
        """List, then watch from the list's resourceVersion, noting every object as plain
        JSON: the client's models cost about a millisecond per event to build, which at
        10,000 pods is a minute of CPU taken from the control plane on the same machine."""
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    listing = _json(self._raw(lister))
                    moment = self.now()
                    for item in listing.get("items") or []:
                        note(item, moment)
                    version = listing["metadata"]["resourceVersion"]
                response = self._raw(
                    lister, watch=True, resource_version=version, timeout_seconds=2
                )
                try:
                    for line in iter_resp_lines(response):
                        if not line:
                            continue
                        moment = self.now()
                        event = json.loads(line)
                        if event.get("type") == "ERROR":  # 410 Gone: expired, list again
                            version = ""
                            break
                        item = event["object"]
                        version = item["metadata"].get("resourceVersion") or version
                        note(item, moment)
                        self.events += 1
                        if self._stop.is_set():
                            break
                finally:
                    response.release_conn()
            except ApiException as e:
                version = "" if e.status == 410 else version  # expired: list again
                time.sleep(0.2)
            except (urllib3.exceptions.HTTPError, OSError, ValueError, KeyError):
                time.sleep(0.2)  # the API server went away (a restart), or a torn line

    def _raw(self, lister: Callable[..., Any], **extra: Any) -> Any:
        """The list (or watch) response itself, not the client's models of it; an answer
        other than 2xx raises ApiException, as the client does when it builds models."""
        response = lister(
            self.namespace,
            label_selector=self.selector,
            _preload_content=False,
            _request_timeout=10,
            **extra,
        )
        status = int(getattr(response, "status", 200))
        if not 200 <= status <= 299:
            response.release_conn()
            raise ApiException(status=status, reason=getattr(response, "reason", ""))
        return response

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


def _json(response: Any) -> dict[str, Any]:
    try:
        found: dict[str, Any] = json.loads(response.data)
        return found
    finally:
        response.release_conn()
