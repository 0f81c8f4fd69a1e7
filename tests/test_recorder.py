"""mlgen's one list-then-watch loop (`kube.Kube.follow`), as the recorder and the waits use
it: plain JSON, a torn line across chunks is joined, an expired resourceVersion (410)
means list again, and nothing is kept per event."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from mlgen import kube, recorder


class Response:
    def __init__(self, status: int = 200, body: Any = None, chunks: list[bytes] = ()) -> None:  # type: ignore[assignment]
        self.status, self.reason = status, "Gone" if status == 410 else "OK"
        self.data = json.dumps(body).encode() if body is not None else b""
        self.chunks = list(chunks)
        self.released = self.closed = False

    def stream(self, amt: Any = None, decode_content: bool = False) -> Any:
        yield from self.chunks
        self.after()

    def after(self) -> None:
        """What happens once the last chunk was read (a test's stop)."""

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        self.released = True


def _pod(phase: str, rv: str, *, running: bool = False) -> dict[str, Any]:
    state = {"running": {"startedAt": "x"}} if running else {}
    return {
        "metadata": {"name": "sweep-0", "resourceVersion": rv},
        "status": {"phase": phase, "containerStatuses": [{"state": state}]},
    }


def test_watch_events_are_noted_from_json_and_an_expired_version_lists_again() -> None:
    calls: list[dict[str, Any]] = []
    lines = [
        json.dumps({"type": "MODIFIED", "object": _pod("Running", "7", running=True)}),
        json.dumps({"type": "MODIFIED", "object": _pod("Succeeded", "8")}),
    ]
    stream = ("\n".join(lines) + "\n").encode()
    responses = [
        Response(body={"metadata": {"resourceVersion": "5"}, "items": [_pod("Pending", "5")]}),
        Response(status=410),  # the version expired before the watch began
        Response(body={"metadata": {"resourceVersion": "6"}, "items": [_pod("Pending", "6")]}),
        Response(chunks=[stream[:50], stream[50:]]),  # a line torn across two chunks
    ]
    responses[-1].after = lambda: watched._stop.set()  # type: ignore[method-assign]
    served: list[Response] = []

    def lister(namespace: str, **kwargs: Any) -> Response:
        calls.append(kwargs)
        served.append(responses.pop(0))
        return served[-1]

    cluster = kube.Kube(client.ApiClient(), where="a test")
    watched = recorder.Recorder(client=cluster, namespace="ns", selector="a=b")
    watched._follow(lister, watched._pod)
    seen = watched.pods["sweep-0"]
    assert seen.running is not None and seen.ended is not None and seen.outcome == "Succeeded"
    assert seen.running <= seen.ended and watched.events == 4  # two listed, two watched
    assert [c.get("watch", False) for c in calls] == [False, True, False, True]
    assert calls[3]["resource_version"] == "6"
    assert all(c["_preload_content"] is False for c in calls)
    assert all(r.released for r in served)
    # A watch left half-read is closed before its connection goes back to the pool.
    assert served[-1].closed


def test_a_wait_ends_on_its_condition_from_json_and_lists_again_after_a_410() -> None:
    job = {"metadata": {"name": "a-1", "resourceVersion": "9"}, "status": {}}
    done = {**job, "status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    other = {"metadata": {"name": "b-1", "resourceVersion": "10"}, "status": done["status"]}
    lines = [json.dumps({"type": "MODIFIED", "object": o}) for o in (other, done)]
    responses = [
        Response(body={"metadata": {"resourceVersion": "5"}, "items": [job]}),
        Response(status=410),
        Response(body={"metadata": {"resourceVersion": "6"}, "items": [job]}),
        Response(chunks=[("\n".join(lines) + "\n").encode()]),
    ]
    calls: list[dict[str, Any]] = []

    def lister(namespace: str, **kwargs: Any) -> Response:
        calls.append(kwargs)
        return responses.pop(0)

    cluster = kube.Kube(client.ApiClient(), where="a test")
    cluster.batch.list_namespaced_job = lister  # type: ignore[method-assign]
    seen: list[str] = []
    found = cluster.wait_ended(
        "ns", ["a-1"], until=("Complete", "Failed"), timeout=30, seen=lambda o: seen.append("x")
    )
    assert found == {"a-1": done} and not responses  # b-1 was not awaited
    assert [c.get("watch", False) for c in calls] == [False, True, False, True]
    assert seen == ["x", "x", "x"]  # a-1 as listed twice, then as watched


def test_a_wait_lists_once_however_late_skips_deleted_objects_and_raises_on_a_watch_error() -> None:
    from mlgen.errors import ClusterError

    done = {"metadata": {"name": "a-1", "resourceVersion": "3"}}
    done["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    cluster = kube.Kube(client.ApiClient(), where="a test")
    listed = [Response(body={"metadata": {"resourceVersion": "3"}, "items": [done]})]
    cluster.batch.list_namespaced_job = lambda namespace, **kw: listed.pop(0)  # type: ignore[method-assign]
    # Already Complete: found by the one list, though no time was left to wait.
    found = cluster.wait_ended("ns", ["a-1"], until=("Complete", "Failed"), timeout=0)
    assert found == {"a-1": done}

    ended = {"metadata": {"name": "p", "resourceVersion": "8"}, "status": {"phase": "Succeeded"}}
    error = {"type": "ERROR", "object": {"code": 500, "message": "etcd is down"}}
    lines = [json.dumps({"type": "DELETED", "object": ended}), json.dumps(error)]
    responses = [
        Response(body={"metadata": {"resourceVersion": "7"}, "items": []}),
        Response(chunks=[("\n".join(lines) + "\n").encode()]),
    ]
    cluster.core.list_namespaced_pod = lambda namespace, **kw: responses.pop(0)  # type: ignore[method-assign]
    # The deleted pod of an earlier, same-named Job is not this step's end; an error in
    # the stream other than 410 is the cluster's, said as such.
    with pytest.raises(ClusterError, match="500: etcd is down"):
        cluster.wait_pod_ended("ns", "job-name=p", timeout=30)
