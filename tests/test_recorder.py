"""The recorder notes transitions from the watch's plain JSON: a torn line across chunks is
joined, an expired resourceVersion (410) means list again, and nothing is kept per event."""

from __future__ import annotations

import json
from typing import Any

from mlgen import recorder


class Response:
    def __init__(self, status: int = 200, body: Any = None, chunks: list[bytes] = ()) -> None:  # type: ignore[assignment]
        self.status, self.reason = status, "Gone" if status == 410 else "OK"
        self.data = json.dumps(body).encode() if body is not None else b""
        self.chunks = list(chunks)
        self.released = False

    def stream(self, amt: Any = None, decode_content: bool = False) -> Any:
        yield from self.chunks
        self.after()

    def after(self) -> None:
        """What happens once the last chunk was read (a test's stop)."""

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

    watched = recorder.Recorder(client=None, namespace="ns", selector="a=b")  # type: ignore[arg-type]
    watched._follow(lister, watched._pod)
    seen = watched.pods["sweep-0"]
    assert seen.running is not None and seen.ended is not None and seen.outcome == "Succeeded"
    assert seen.running <= seen.ended and watched.events == 2
    assert [c.get("watch", False) for c in calls] == [False, True, False, True]
    assert calls[3]["resource_version"] == "6"
    assert all(c["_preload_content"] is False for c in calls)
    assert all(r.released for r in served)
