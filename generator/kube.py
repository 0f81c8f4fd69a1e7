"""A thin, typed layer over the kubernetes client: connect, apply, read, with errors that
name the object and the fix instead of an HTTP dump."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError
from kubernetes.dynamic.exceptions import NotFoundError as DynamicNotFound
from kubernetes.watch.watch import iter_resp_lines

from mlgen.errors import ClusterError

FIELD_MANAGER = "mlgen"


class Kube:
    """One connection to one cluster: typed APIs plus a dynamic client for apply."""

    def __init__(self, api: client.ApiClient, *, where: str) -> None:
        self.api = api
        self.where = where
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self._dynamic: DynamicClient | None = None
        self._reached = False  # whether the API server has answered once

    @property
    def dynamic(self) -> DynamicClient:
        if self._dynamic is None:
            with errors(f"cannot reach the cluster of {self.where}"):
                self._dynamic = DynamicClient(self.api)
        return self._dynamic

    def apply(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply with field manager `mlgen`; returns the object as stored."""
        meta = obj["metadata"]
        what = f"{obj['kind']} {meta.get('namespace', '')}/{meta['name']}".replace(" /", " ")

        def send() -> Any:
            resource = self.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            kwargs: dict[str, Any] = {
                "body": apply_body(obj),
                "name": meta["name"],
                "field_manager": FIELD_MANAGER,
                "force_conflicts": True,
            }
            if meta.get("namespace"):
                kwargs["namespace"] = meta["namespace"]
            if dry_run:
                kwargs["dry_run"] = "All"
            return resource.server_side_apply(**kwargs)

        # Applying is idempotent: a request lost to an API server restart is sent again.
        result = self.retrying(f"applying {what}", send)
        stored: dict[str, Any] = result.to_dict()
        return stored

    def retrying(self, doing: str, call: Callable[[], Any]) -> Any:
        """`call()`, retried through an API server restart once this cluster has answered
        (a wrong kubeconfig still fails at once)."""
        result = retrying(doing, call, patience=RECONNECT_PATIENCE if self._reached else 0.0)
        self._reached = True
        return result

    def follow(
        self,
        lister: Callable[..., Any],
        namespace: str,
        note: Callable[[dict[str, Any]], bool],
        *,
        what: str,
        selector: str | None = None,
        deadline: float | None = None,
        stop: threading.Event | None = None,
        deleted: bool = False,
    ) -> bool:
        """mlgen's one list-then-watch loop: list what `lister` lists (a client's
        `list_namespaced_*`, or `lister_for`), hand each object to `note`, then watch from
        the list's resourceVersion and hand over every object that changes (a deleted one
        too with `deleted`), until `note` returns True (-> True), the monotonic `deadline`
        passes or `stop` is set (-> False). It lists at least once, however late.

        Objects are plain JSON, not the client's models: a model costs about a millisecond
        per event, which at 10,000 pods is a minute of CPU taken from the control plane on
        the same machine. 410 Gone (the resourceVersion expired) lists again. With `stop`
        (a recorder) every error is waited out; without (a wait), a broken watch lists
        again with the client's reconnect patience, and any other refusal is a
        ClusterError. What `note` raises is never taken for a cluster's error."""
        version, window = "", (2 if stop is not None else 300)
        while not (stop is not None and stop.is_set()):
            if not version:
                listing = self._list_once(lister, namespace, selector, what, patient=stop)
                if listing is None:  # a recorder waits out an unreachable API server
                    time.sleep(0.2)
                    continue
                items, version = listing
                if any(note(item) for item in items):
                    return True
            remaining = window if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return False
            seconds = max(1, int(min(remaining, window)))
            try:
                response = _raw(
                    lister,
                    namespace,
                    selector,
                    watch=True,
                    resource_version=version,
                    timeout_seconds=seconds,
                    _request_timeout=seconds + 10,
                )
            except ApiException as e:
                if e.status != 410 and stop is None:
                    raise ClusterError(
                        f"watching {what}: the API server said {e.status} {e.reason}"
                    ) from e
                version = "" if e.status == 410 else version
                time.sleep(0.2)
                continue
            except (urllib3.exceptions.HTTPError, OSError):
                # An API server restart: a wait lists again through `retrying`, which gives
                # up after the reconnect patience; a recorder watches again.
                version = "" if stop is None else version
                time.sleep(0.2)
                continue
            try:
                done, version = self._stream(
                    response, note, what=what, version=version, deleted=deleted, waiting=stop
                )
            finally:
                # Close before releasing: a watch stopped half-read must not go back to the
                # pool, where the next request would read the rest of its stream.
                response.close()
                response.release_conn()
            if done:
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
        return False

    def _stream(
        self,
        response: Any,
        note: Callable[[dict[str, Any]], bool],
        *,
        what: str,
        version: str,
        deleted: bool,
        waiting: threading.Event | None,
    ) -> tuple[bool, str]:
        """Hand a watch's objects to `note`: (whether it said done, the version to go on
        from; "" to list again)."""
        lines = iter_resp_lines(response)
        while True:
            try:
                line = next(lines, None)
            except (urllib3.exceptions.HTTPError, OSError):
                return False, "" if waiting is None else version  # the stream broke
            if line is None:
                return False, version  # the watch's own timeout: watch on from here
            if not line:
                continue
            try:
                event = json.loads(line)
                kind, item = event["type"], event["object"]
            except (ValueError, KeyError, TypeError):
                return False, ""  # a torn or odd line: list again
            if kind == "ERROR":
                code = item.get("code") if isinstance(item, dict) else None
                if code == 410 or waiting is not None:  # expired; a recorder lists again
                    return False, ""
                message = item.get("message") if isinstance(item, dict) else item
                raise ClusterError(f"watching {what}: the API server said {code}: {message}")
            version = (item.get("metadata") or {}).get("resourceVersion") or version
            if kind == "BOOKMARK" or (kind == "DELETED" and not deleted):
                continue
            if note(item):
                return True, version
            if waiting is not None and waiting.is_set():
                return False, version

    def _list_once(
        self,
        lister: Callable[..., Any],
        namespace: str,
        selector: str | None,
        what: str,
        *,
        patient: threading.Event | None,
    ) -> tuple[list[dict[str, Any]], str] | None:
        """The objects and the resourceVersion of one list; a wait reads it through
        `retrying`, a recorder (`patient`) gets None for an error it will wait out."""

        def read() -> tuple[list[dict[str, Any]], str]:
            response = _raw(lister, namespace, selector, _request_timeout=30)
            try:
                found = json.loads(response.data)
                return list(found.get("items") or []), str(found["metadata"]["resourceVersion"])
            except (ValueError, KeyError, TypeError) as e:
                raise ClusterError(f"reading {what}: the answer is not a list ({e})") from e
            finally:
                response.release_conn()

        if patient is None:
            found: tuple[list[dict[str, Any]], str] = self.retrying(f"reading {what}", read)
            return found
        try:
            return read()
        except (ApiException, ClusterError, urllib3.exceptions.HTTPError, OSError):
            return None

    def lister_for(self, api_version: str, kind: str) -> Callable[..., Any]:
        """A `list_namespaced_*` for any kind the cluster serves (a JobSet, say), answering
        raw responses like the client's own with `_preload_content=False`."""
        with errors(f"finding the API of {kind} ({api_version})"):
            resource = self.dynamic.resources.get(api_version=api_version, kind=kind)

        def list_namespaced(namespace: str, **options: Any) -> Any:
            names = {
                "label_selector": "labelSelector",
                "watch": "watch",
                "resource_version": "resourceVersion",
                "timeout_seconds": "timeoutSeconds",
            }
            query = [
                (names[k], str(v).lower() if isinstance(v, bool) else v)
                for k, v in options.items()
                if k in names and v not in (None, "")
            ]
            request = self.api.param_serialize(
                method="GET",
                resource_path=resource.path(namespace=namespace),
                query_params=query,
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            answer = self.api.call_api(*request, _request_timeout=options.get("_request_timeout"))
            if not 200 <= answer.status <= 299:
                answer.read()
                raise ApiException.from_response(http_resp=answer, body=None, data=None)
            return answer.response

        return list_namespaced

    def wait_ended(
        self,
        namespace: str,
        names: Collection[str],
        *,
        until: tuple[str, ...],
        timeout: float,
        kind: tuple[str, str] = ("batch/v1", "Job"),
        seen: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Watch until each named object of `kind` (apiVersion, kind) has one of the
        `until` conditions True.

        Returns {name: the object as last seen, plain JSON} for those that got there; on
        timeout the others are missing. No polling: a condition is seen the moment the
        API server records it. `seen` is called with every version of a named object that
        arrives (for progress)."""
        pending = set(names)
        done: dict[str, dict[str, Any]] = {}

        def note(obj: dict[str, Any]) -> bool:
            name = obj["metadata"]["name"]
            if name in pending:
                if seen is not None:
                    seen(obj)
                conditions = (obj.get("status") or {}).get("conditions") or []
                if any(c.get("status") == "True" and c.get("type") in until for c in conditions):
                    pending.discard(name)
                    done[name] = obj
            return not pending

        if pending:
            lister = (
                self.batch.list_namespaced_job
                if kind == ("batch/v1", "Job")
                else self.lister_for(*kind)
            )
            self.follow(
                lister,
                namespace,
                note,
                what=f"the {kind[1]}s in namespace {namespace}",
                deadline=time.monotonic() + timeout,
            )
        return done

    def wait_pod_ended(self, namespace: str, selector: str, *, timeout: float) -> str | None:
        """Watch the pods matching `selector` until one has Succeeded or Failed; return that
        phase, or None on timeout. A step's work is done when its pod has succeeded, up to
        a second before the Job controller, which batches pod events, says Complete."""
        ended: list[str] = []

        def note(pod: dict[str, Any]) -> bool:
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                ended.append(phase)
            return bool(ended)

        self.follow(
            self.core.list_namespaced_pod,
            namespace,
            note,
            what=f"the pods {selector} in namespace {namespace}",
            selector=selector,
            deadline=time.monotonic() + timeout,
        )
        return ended[0] if ended else None

    def pods(
        self, namespace: str, *, selector: str | None = None, fields: str | None = None
    ) -> list[dict[str, Any]]:
        """The pods matching the label `selector` and the field selector `fields`, plain
        JSON; one request, not retried: callers that only look may skip a look."""
        return self._items(self.core.list_namespaced_pod, namespace, selector, fields)

    def jobs(self, namespace: str, *, selector: str | None = None) -> list[dict[str, Any]]:
        """The Jobs matching the label `selector`, plain JSON; one request, not retried."""
        return self._items(self.batch.list_namespaced_job, namespace, selector, None)

    def objects(
        self, api_version: str, kind: str, namespace: str, *, selector: str | None = None
    ) -> list[dict[str, Any]]:
        """The objects of any kind the cluster serves (a Kueue Workload, say), plain JSON;
        ClusterError when it serves no such kind."""
        return self._items(self.lister_for(api_version, kind), namespace, selector, None)

    def events(self, namespace: str, *, about: str) -> list[dict[str, Any]]:
        """The events about the object named `about`, plain JSON."""
        lister = self.core.list_namespaced_event
        return self._items(lister, namespace, None, f"involvedObject.name={about}")

    def _items(
        self, lister: Callable[..., Any], namespace: str, selector: str | None, fields: str | None
    ) -> list[dict[str, Any]]:
        options = {"field_selector": fields} if fields else {}
        with errors(f"listing in namespace {namespace}"):
            response = _raw(lister, namespace, selector, _request_timeout=30, **options)
            try:
                return list(json.loads(response.data).get("items") or [])
            except (ValueError, AttributeError) as e:
                raise ClusterError(f"listing in namespace {namespace}: not a list ({e})") from e
            finally:
                response.release_conn()

    def exists(self, kind: str, namespace: str | None, name: str) -> bool:
        """Whether an object of a core kind (or a PriorityClass) is there; `namespace` None
        for cluster-scoped kinds."""
        api_version = "scheduling.k8s.io/v1" if kind == "PriorityClass" else "v1"
        where = f"{namespace}/{name}" if namespace else name
        with errors(f"reading {kind} {where}"):
            resource = self.dynamic.resources.get(api_version=api_version, kind=kind)
            try:
                resource.get(name=name, namespace=namespace)
            except DynamicNotFound:
                return False
            except ApiException as e:
                if e.status == 404:
                    return False
                raise
        return True

    def namespace_exists(self, name: str) -> bool:
        with errors(f"reading namespace {name}"):
            try:
                self.core.read_namespace(name)
            except ApiException as e:
                if e.status == 404:
                    return False
                raise
        return True


def _raw(lister: Callable[..., Any], namespace: str, selector: str | None, **options: Any) -> Any:
    """The list (or watch) response itself, not the client's models of it; an answer
    other than 2xx raises ApiException, as the client does when it builds models."""
    if selector:
        options["label_selector"] = selector
    response = lister(namespace, _preload_content=False, **options)
    status = int(getattr(response, "status", 200))
    if not 200 <= status <= 299:
        response.release_conn()
        raise ApiException(status=status, reason=getattr(response, "reason", ""))
    return response


# A \u escape of a high surrogate then a low one, not itself escaped (even backslashes).
_SURROGATE_PAIR = re.compile(r"(?<!\\)((?:\\\\)*)\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def apply_body(obj: dict[str, Any]) -> bytes:
    """The object as an apply-patch body the API server's YAML decoder reads back exactly.

    The body is JSON read as YAML 1.1: raw NEL or U+2028 would fold like line breaks, so
    everything stays ASCII-escaped; but the surrogate pairs json.dumps writes for 🚀 are
    refused (400), so those become YAML's 8-digit escape, \\U0001f680."""

    def astral(match: re.Match[str]) -> str:
        high, low = int(match[2], 16), int(match[3], 16)
        return f"{match[1]}\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08x}"

    return _SURROGATE_PAIR.sub(astral, json.dumps(obj)).encode("ascii")


def connect(*, kubeconfig: Path | None = None, context: str | None = None) -> Kube:
    """A client for the kubeconfig (default: $KUBECONFIG or ~/.kube/config); read-only use
    of the file, which is never written."""
    where = f"kubeconfig {kubeconfig}" if kubeconfig else "the default kubeconfig"
    try:
        api = config.new_client_from_config(
            config_file=str(kubeconfig) if kubeconfig else None,
            context=context,
            persist_config=False,
        )
    except (config.ConfigException, FileNotFoundError, OSError) as e:
        raise ClusterError(
            f"cannot load {where}{f' (context {context})' if context else ''}: "
            f"{e}; pass --kubeconfig/--context or set KUBECONFIG"
        ) from e
    return Kube(api, where=where)


RECONNECT_PATIENCE = 90.0  # seconds without an API server before a wait gives up


def retrying(doing: str, call: Callable[[], Any], *, patience: float) -> Any:
    """`call()`, again every half second while the API server cannot be reached or answers
    503 (a restart); a ClusterError when that lasts longer than `patience`."""
    deadline = time.monotonic() + patience
    while True:
        try:
            with errors(doing):
                return call()
        except ClusterError as e:
            cause = e.__cause__
            transient = isinstance(cause, urllib3.exceptions.HTTPError | OSError) or (
                isinstance(cause, ApiException)
                and cause.status in (500, 502, 503, 504)
                # ...but a 500 for a body the API server cannot convert (a quantity it does
                # not parse) is the request's fault: the same request fails again.
                and "unable to convert" not in _message(cause.body)
            )
            if not transient or time.monotonic() > deadline:
                if transient:
                    raise ClusterError(
                        f"{e} (for {patience:.0f}s; the API server did not come back)"
                    ) from cause
                raise
            time.sleep(0.5)


@contextmanager
def errors(doing: str) -> Iterator[None]:
    """Turn client exceptions into ClusterError sentences."""
    try:
        yield
    except ApiException as e:
        raise ClusterError(
            f"{doing}: the API server said {e.status} {e.reason}: {_message(e.body)}"
        ) from e
    except DynamicApiError as e:
        raise ClusterError(f"{doing}: the API server said {e.status}: {_message(e.body)}") from e
    except ResourceNotFoundError as e:
        raise ClusterError(
            f"{doing}: the cluster does not serve this kind ({e}); is the CRD "
            "installed, or the Kubernetes version too old?"
        ) from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise ClusterError(
            f"{doing}: cannot connect to the API server ({e}); is the cluster "
            "running and the kubeconfig right?"
        ) from e


def _message(body: object) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            return str(json.loads(body).get("message", body))
        except (ValueError, AttributeError):
            return body
    return str(body)
