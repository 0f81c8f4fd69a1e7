"""Custom resources of the GitOps tools: install their CRDs, then read and touch their
objects without the dynamic client's cached discovery (which predates the CRDs)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from mlgen import kube
from mlgen.errors import ClusterError


def install(client: kube.Kube, files: Iterable[Path], *, timeout: float = 60.0) -> list[str]:
    """Apply every CRD in `files` and wait until the API server serves each one."""
    names: list[str] = []
    for path in files:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                client.apply(doc)
                names.append(doc["metadata"]["name"])
    api = k8s.ApiextensionsV1Api(client.api)
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            with kube.errors(f"reading CustomResourceDefinition {name}"):
                crd = api.read_custom_resource_definition(name)
            if any(
                c.type == "Established" and c.status == "True" for c in crd.status.conditions or []
            ):
                break
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"CustomResourceDefinition {name} not Established after "
                    f"{timeout:.0f}s; is kube-apiserver healthy?"
                )
            time.sleep(0.2)
    return names


def create(client: kube.Kube, obj: dict[str, Any]) -> None:
    """Create or replace a custom object (namespaced, or cluster-scoped when its metadata
    has no namespace), by its apiVersion and kind."""
    group, version = obj["apiVersion"].split("/")
    meta = obj["metadata"]
    api = k8s.CustomObjectsApi(client.api)
    common: dict[str, Any] = {
        "field_manager": kube.FIELD_MANAGER,
        "force": True,
        "_content_type": "application/apply-patch+yaml",
    }
    where = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
    with kube.errors(f"applying {obj['kind']} {where}"):
        if meta.get("namespace"):
            api.patch_namespaced_custom_object(
                group, version, meta["namespace"], _plural(obj["kind"]), meta["name"], obj,
                **common,
            )  # fmt: skip
        else:
            api.patch_cluster_custom_object(
                group, version, _plural(obj["kind"]), meta["name"], obj, **common
            )


def list_objects(
    client: kube.Kube, api_version: str, kind: str, namespace: str, *, selector: str = ""
) -> list[dict[str, Any]]:
    """The namespaced custom objects of a kind, by label selector."""
    group, version = api_version.split("/")
    api = k8s.CustomObjectsApi(client.api)
    with kube.errors(f"listing {kind} in {namespace}"):
        found = api.list_namespaced_custom_object(
            group, version, namespace, _plural(kind), label_selector=selector
        )
    return list(found.get("items") or [])


def get(
    client: kube.Kube, api_version: str, kind: str, name: str, namespace: str
) -> dict[str, Any] | None:
    group, version = api_version.split("/")
    api = k8s.CustomObjectsApi(client.api)
    try:
        found: dict[str, Any] = api.get_namespaced_custom_object(
            group, version, namespace, _plural(kind), name
        )
    except ApiException as e:
        if e.status == 404:
            return None
        raise ClusterError(
            f"reading {kind} {namespace}/{name} failed ({e.status} {e.reason});"
            " is the API server up and the tool's CRDs installed (its start() "
            "installs them)?"
        ) from e
    return found


def annotate_now(
    client: kube.Kube,
    api_version: str,
    kind: str,
    name: str,
    namespace: str,
    *,
    key: str,
    value: str | None = None,
) -> None:
    """Set annotation `key` (by default to the current time): how both tools are asked to
    act now."""
    group, version = api_version.split("/")
    api = k8s.CustomObjectsApi(client.api)
    body = {"metadata": {"annotations": {key: value or datetime.now(UTC).isoformat()}}}
    with kube.errors(f"annotating {kind} {namespace}/{name}"):
        api.patch_namespaced_custom_object(
            group,
            version,
            namespace,
            _plural(kind),
            name,
            body,
            _content_type="application/merge-patch+json",
        )


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    """The status condition of type `kind` (empty if absent)."""
    for each in ((obj or {}).get("status") or {}).get("conditions") or []:
        if each.get("type") == kind:
            return dict(each)
    return {}


def _plural(kind: str) -> str:
    plurals = {
        "GitRepository": "gitrepositories",
        "Kustomization": "kustomizations",
        "Application": "applications",
        "AppProject": "appprojects",
        "ResourceFlavor": "resourceflavors",
        "ClusterQueue": "clusterqueues",
        "LocalQueue": "localqueues",
        "Workload": "workloads",
    }
    return plurals[kind]


def delete(client: kube.Kube, api_version: str, kind: str, name: str, namespace: str) -> None:
    """Delete a custom object if it exists (its finalizers run in the background)."""
    group, version = api_version.split("/")
    api = k8s.CustomObjectsApi(client.api)
    try:
        api.delete_namespaced_custom_object(group, version, namespace, _plural(kind), name)
    except ApiException as e:
        if e.status != 404:
            raise ClusterError(
                f"deleting {kind} {namespace}/{name} failed ({e.status} "
                f"{e.reason}); is the API server up?"
            ) from e
