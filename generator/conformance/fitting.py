"""The test cluster made to fit a batch: what a team's cluster has and a throwaway test
namespace (or cluster) lacks, found in the rendered objects and created as placeholders.

- in the test namespace: every ServiceAccount, Secret (required keys, each "placeholder";
  image pull secrets as empty docker configs), ConfigMap (the keys it is read by) and
  PersistentVolumeClaim the pods name and the batch does not render itself;
- on clusters the suite created (never a user's kubeconfig cluster): a PriorityClass per
  name, a hostPath PersistentVolume bound to each placeholder claim (so it binds with or
  without a storage provisioner), and node labels a node selector or required node
  affinity asks for when no node has them yet.

GPUs and other extended resources are advertised on the nodes by the plugin
(`mlgen_placement`); requests are capped by the stand-ins (standin.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mlgen import contract, kube, references

SECRET_VALUE = "placeholder"
CLAIM_SIZE = "1Gi"


@dataclass
class Needs:
    """Everything a batch's pods reference, by kind."""

    service_accounts: set[str] = field(default_factory=set)
    secrets: dict[str, set[str]] = field(default_factory=dict)
    pull_secrets: set[str] = field(default_factory=set)
    config_maps: dict[str, set[str]] = field(default_factory=dict)
    claims: set[str] = field(default_factory=set)
    priority_classes: set[str] = field(default_factory=set)
    node_labels: dict[str, str] = field(default_factory=dict)


def needs(objects: Iterable[dict[str, Any]]) -> Needs:
    """What the Jobs among `objects` reference that `objects` do not hold themselves."""
    objects = list(objects)
    found = Needs()
    for job in (o for o in objects if o.get("kind") == "Job"):
        pod = job["spec"]["template"]["spec"]
        for ref in references.of(job):
            if ref.kind == "ServiceAccount":
                found.service_accounts.add(ref.name)
            elif ref.kind == "PriorityClass":
                found.priority_classes.add(ref.name)
            elif ref.kind == "PersistentVolumeClaim":
                found.claims.add(ref.name)
            elif ref.pulls:
                found.pull_secrets.add(ref.name)
            else:
                keyed = found.secrets if ref.kind == "Secret" else found.config_maps
                keyed.setdefault(ref.name, set()).update([ref.key] if ref.key else [])
        found.node_labels.update(pod.get("nodeSelector") or {})
        found.node_labels.update(_required_affinity(pod.get("affinity") or {}))
    rendered = {(o.get("kind"), o["metadata"]["name"]) for o in objects}
    found.config_maps = {
        n: k for n, k in found.config_maps.items() if ("ConfigMap", n) not in rendered
    }
    found.secrets = {n: k for n, k in found.secrets.items() if ("Secret", n) not in rendered}
    found.node_labels.pop("kubernetes.io/hostname", None)
    return found


def _required_affinity(affinity: dict[str, Any]) -> dict[str, str]:
    """Labels that satisfy the first term of a required node affinity (`In`: its first
    value; `Exists`: any value)."""
    required = (affinity.get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    labels: dict[str, str] = {}
    for expression in (terms[0].get("matchExpressions") or []) if terms else []:
        if expression.get("operator") == "In" and expression.get("values"):
            labels[expression["key"]] = expression["values"][0]
        elif expression.get("operator") == "Exists":
            labels[expression["key"]] = "true"
    return labels


def placeholders(found: Needs, *, namespace: str) -> list[dict[str, Any]]:
    """The namespaced objects for `found`, in the test namespace."""

    def meta(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": namespace,
            "labels": {contract.MANAGED_BY: "mlgen-conformance"},
        }

    out: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(name)}
        for name in sorted(found.service_accounts)
    ]
    # Every key the pods read holds the placeholder value, in Secrets and ConfigMaps alike.
    for kind, data_field, table in (
        ("Secret", "stringData", found.secrets),
        ("ConfigMap", "data", found.config_maps),
    ):
        out += [
            {
                "apiVersion": "v1",
                "kind": kind,
                "metadata": meta(name),
                data_field: dict.fromkeys(sorted(keys), SECRET_VALUE),
            }
            for name, keys in sorted(table.items())
        ]
    for name in sorted(found.pull_secrets - set(found.secrets)):
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/dockerconfigjson",
                "metadata": meta(name),
                "stringData": {".dockerconfigjson": '{"auths": {}}'},
            }
        )
    for name in sorted(found.claims):
        out.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": meta(name),
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": CLAIM_SIZE}},
                },
            }
        )
    return out


def cluster_placeholders(found: Needs, *, namespace: str) -> list[dict[str, Any]]:
    """The cluster-scoped objects for `found`: only on clusters the suite created."""
    labels = {contract.MANAGED_BY: "mlgen-conformance"}
    out: list[dict[str, Any]] = [
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name, "labels": labels},
            "value": 1000,
            "description": "placeholder made by the mlgen conformance suite",
        }
        for name in sorted(found.priority_classes)
    ]
    for name in sorted(found.claims):
        out.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"{namespace}-{name}"[:253], "labels": labels},
                "spec": {
                    "capacity": {"storage": CLAIM_SIZE},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Delete",
                    "storageClassName": "",
                    "claimRef": {"namespace": namespace, "name": name},
                    "hostPath": {
                        "path": f"/tmp/mlgen-pv/{namespace}/{name}",
                        "type": "DirectoryOrCreate",
                    },
                },
            }
        )
    return out


BIND_TIMEOUT = 60.0  # the volume controller binds a claim to its named volume in seconds


def _await_bound(client: kube.Kube, namespace: str, claims: list[str]) -> None:
    """Wait for each placeholder claim to be Bound: a run is timed from its first Job, and
    binding (measured on kind: up to 9 s) is the fitting's time, not the batch's."""
    deadline = time.monotonic() + BIND_TIMEOUT
    for name in claims:
        while True:
            with kube.errors(f"reading PersistentVolumeClaim {namespace}/{name}"):
                claim = client.core.read_namespaced_persistent_volume_claim(name, namespace)
            if claim.status and claim.status.phase == "Bound":
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"placeholder claim {namespace}/{name} is not Bound after "
                    f"{BIND_TIMEOUT:.0f}s (phase {claim.status.phase if claim.status else None})"
                )
            time.sleep(0.2)


def fit(
    client: kube.Kube, objects: Iterable[dict[str, Any]], *, namespace: str, throwaway: bool
) -> list[str]:
    """Create what the batch's pods need in the test namespace (and, on a throwaway
    cluster, cluster-wide); return one line per thing made, for the run's report."""
    found = needs(objects)
    made: list[str] = []
    claims = []
    for obj in placeholders(found, namespace=namespace):
        if obj["kind"] == "PersistentVolumeClaim" and throwaway:
            obj["spec"]["storageClassName"] = ""  # bound to our own PersistentVolume
            obj["spec"]["volumeName"] = f"{namespace}-{obj['metadata']['name']}"[:253]
            claims.append(obj["metadata"]["name"])
        if not client.exists(obj["kind"], namespace, obj["metadata"]["name"]):
            client.apply(obj)
            made.append(f"{obj['kind']} {obj['metadata']['name']}")
    if not throwaway:
        return made
    for obj in cluster_placeholders(found, namespace=namespace):
        if not client.exists(obj["kind"], None, obj["metadata"]["name"]):
            client.apply(obj)
            made.append(f"{obj['kind']} {obj['metadata']['name']}")
    _await_bound(client, namespace, claims)
    if found.node_labels:
        with kube.errors("listing the nodes"):
            nodes = client.core.list_node().items
        missing = {
            k: v
            for k, v in found.node_labels.items()
            if not any((n.metadata.labels or {}).get(k) == v for n in nodes)
        }
        for each in nodes if missing else ():
            have = each.metadata.labels or {}
            fitted = set(
                filter(
                    None,
                    (each.metadata.annotations or {}).get(contract.FITTED_LABELS, "").split(","),
                )
            )
            # A node's own labels stay; keys the suite set for an earlier batch may change.
            labels = {k: v for k, v in missing.items() if k not in have or k in fitted}
            if labels:
                patch = {
                    "metadata": {
                        "labels": labels,
                        "annotations": {
                            contract.FITTED_LABELS: ",".join(sorted(fitted | set(labels)))
                        },
                    }
                }
                with kube.errors(f"labelling node {each.metadata.name}"):
                    client.core.patch_node(each.metadata.name, patch)
        if missing:
            made.append(f"node labels {missing}")
    return made
