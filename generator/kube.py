"""A thin, typed layer over the kubernetes client: connect, apply, read, with errors that
name the object and the fix instead of an HTTP dump."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError
from kubernetes.dynamic.exceptions import NotFoundError as DynamicNotFound

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

    def wait_jobs(
        self,
        namespace: str,
        names: Collection[str],
        *,
        until: tuple[str, ...],
        timeout: float,
        seen: Callable[[Any], None] | None = None,
    ) -> dict[str, Any]:
        """Watch until each named Job has one of the `until` conditions True.

        Returns {name: the Job as last seen} for those that got there; on timeout the
        others are missing. One list, then a watch from its resourceVersion: no polling,
        so a condition is seen the moment the API server records it. `seen` is called
        with every version of a named Job that arrives (for progress)."""
        pending = set(names)
        done: dict[str, Any] = {}
        deadline = time.monotonic() + timeout

        def settle(job: Any) -> None:
            name = job.metadata.name
            if seen is not None and name in pending:
                seen(job)
            if name in pending and any(
                c.status == "True" and c.type in until
                for c in (job.status and job.status.conditions) or []
            ):
                pending.discard(name)
                done[name] = job

        while pending:
            listing = self.retrying(
                f"reading the Jobs in namespace {namespace}",
                lambda: self.batch.list_namespaced_job(namespace),
            )
            for job in listing.items:
                settle(job)
            remaining = deadline - time.monotonic()
            if not pending or remaining <= 0:
                break
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.batch.list_namespaced_job,
                    namespace,
                    resource_version=listing.metadata.resource_version,
                    timeout_seconds=max(1, int(min(remaining, 300))),
                    _request_timeout=min(remaining, 300) + 10,
                ):
                    if event["type"] in ("ADDED", "MODIFIED"):
                        settle(event["object"])
                    if not pending or time.monotonic() > deadline:
                        break
            except ApiException as e:
                if e.status != 410:  # 410 Gone: the resourceVersion expired; list again
                    raise ClusterError(
                        f"watching the Jobs in namespace {namespace}: the API "
                        f"server said {e.status} {e.reason}"
                    ) from e
            except (urllib3.exceptions.HTTPError, OSError):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)  # the watch broke (API server restart?): list again
            finally:
                stream.stop()
        return done

    def wait_pod_ended(self, namespace: str, selector: str, *, timeout: float) -> str | None:
        """Watch the pods matching `selector` until one has Succeeded or Failed; return that
        phase, or None on timeout. A step's work is done when its pod has succeeded, up to
        a second before the Job controller, which batches pod events, says Complete."""
        deadline = time.monotonic() + timeout

        def ended(pod: Any) -> str | None:
            phase = pod.status.phase if pod.status else None
            return phase if phase in ("Succeeded", "Failed") else None

        while time.monotonic() < deadline:
            listing = self.retrying(
                f"reading the pods {selector} in namespace {namespace}",
                lambda: self.core.list_namespaced_pod(namespace, label_selector=selector),
            )
            for pod in listing.items:
                if found := ended(pod):
                    return found
            remaining = deadline - time.monotonic()
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.core.list_namespaced_pod,
                    namespace,
                    label_selector=selector,
                    resource_version=listing.metadata.resource_version,
                    timeout_seconds=max(1, int(min(remaining, 300))),
                    _request_timeout=min(remaining, 300) + 10,
                ):
                    if event["type"] in ("ADDED", "MODIFIED") and (found := ended(event["object"])):
                        return found
            except ApiException as e:
                if e.status != 410:
                    raise ClusterError(
                        f"watching the pods {selector} in namespace "
                        f"{namespace}: the API server said {e.status} "
                        f"{e.reason}"
                    ) from e
            except (urllib3.exceptions.HTTPError, OSError):
                time.sleep(0.5)  # the watch broke (API server restart?): list again
            finally:
                stream.stop()
        return None

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


def kubectl_binary() -> str:
    """The kubectl `mlgen cluster build` built, else the one on PATH (users' kind CI)."""
    from mlgen.cluster import build

    built = build.bin_dir() / "kubectl"
    found = str(built) if built.is_file() else shutil.which("kubectl")
    if found is None:
        raise ClusterError("no kubectl: run `mlgen cluster build`, or install kubectl")
    return found


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
