"""Throwaway namespaces that enforce Pod Security "restricted", always deleted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from mlgen import contract, kube
from mlgen.errors import ClusterError

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


@contextmanager
def fresh(client: kube.Kube, name: str, *, labels: dict[str, str] | None = None) -> Iterator[str]:
    """Create `name` (restricted unless `labels` say otherwise), wait until pods can be
    admitted in it, and delete it afterwards whatever happens."""
    with kube.errors(f"creating namespace {name}"):
        client.core.create_namespace(
            {
                "metadata": {
                    "name": name,
                    "labels": {
                        **RESTRICTED,
                        contract.MANAGED_BY: "mlgen-conformance",
                        **(labels or {}),
                    },
                }
            }
        )
    try:
        _wait_for_default_service_account(client, name)
        yield name
    finally:
        with kube.errors(f"deleting namespace {name}"):
            client.core.delete_namespace(name, propagation_policy="Background")


def _wait_for_default_service_account(client: kube.Kube, namespace: str) -> None:
    # Pod admission rejects pods until the controller-manager creates "default".
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        items = client.core.list_namespaced_service_account(namespace).items
        if any(sa.metadata.name == "default" for sa in items):
            return
        time.sleep(0.1)
    raise ClusterError(
        f"namespace {namespace}: no default ServiceAccount after 30s; is "
        "kube-controller-manager running?"
    )
