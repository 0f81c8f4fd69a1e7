"""The real Kueue on the local control plane: its manager as a local process (built by
`mlgen cluster build`), its admission webhooks served on loopback with a CA of our own,
and one ClusterQueue whose quota the tests choose.

What a cluster operator installs with Kueue's manifests is done here by hand:
- the CRDs, served as they ship (no conversion webhook: everything here speaks v1beta2,
  the storage version);
- the webhook configurations, as URL webhooks on 127.0.0.1, the Job ones scoped to
  namespaces labelled `LABEL` so a Kueue that is stopped cannot block other tests'
  Jobs (upstream scopes them to every namespace but its own);
- a serving certificate and the metrics certificate Kueue v0.19 reads from a fixed path
  (`/etc/kueue/metrics/certs`) when it does not manage certificates itself; written only
  where absent, never replaced.

Kueue creates every Job of a labelled namespace suspended (a queue label, or a LocalQueue
named `default`), creates a Workload for it, and unsuspends the Job once the Workload fits
its ClusterQueue's quota.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s

from mlgen import contract, kube, versions
from mlgen.cluster import build, crds, processes
from mlgen.errors import ClusterError

API = "kueue.x-k8s.io/v1beta2"
NAMESPACE = "kueue-system"
LABEL = "mlgen.io/kueue"  # namespaces whose Jobs Kueue manages here
FLAVOR = "mlgen-default"
CLUSTER_QUEUE = "mlgen"
METRICS_CERTS = Path("/etc/kueue/metrics/certs")  # fixed in Kueue's main.go
# Every resource a conformance pod may ask for: Kueue refuses a Workload asking for a
# resource its ClusterQueue does not cover.
COVERED = ("cpu", "memory", "nvidia.com/gpu")

# The webhooks Kueue registers for its Job integration and its own kinds (from its
# kubebuilder markers): (group, version, resource), each mutating on CREATE and
# validating on CREATE and UPDATE, at `/<mutate|validate>-<group>-<version>-<kind>`.
_HOOKED = (
    ("batch", "v1", "jobs"),
    ("kueue.x-k8s.io", "v1beta2", "workloads"),
    ("kueue.x-k8s.io", "v1beta2", "clusterqueues"),
    ("kueue.x-k8s.io", "v1beta2", "resourceflavors"),
)


@dataclass
class Kueue(processes.Group):
    """The running manager; `stop()` ends it and removes its webhooks (idempotent)."""

    client: kube.Kube
    processes: list[processes.Process] = field(default_factory=list)

    def stop(self) -> None:
        super().stop()
        _remove_webhooks(self.client)

    def quota(self, resources: Mapping[str, str]) -> None:
        """Set the ClusterQueue's nominal quota (every COVERED resource; 0 where unset)."""
        crds.create(self.client, cluster_queue(resources))

    def enroll(self, namespace: str, queue: str) -> None:
        enroll(self.client, namespace, queue)

    def not_admitted(self, namespace: str, jobs: list[str]) -> list[str]:
        return not_admitted(self.client, namespace, jobs)


def start(
    client: kube.Kube,
    *,
    kubeconfig: Path,
    workdir: Path,
    quota: Mapping[str, str],
    binaries: Path | None = None,
) -> Kueue:
    """Install CRDs, certificates and webhooks, start the manager, create the flavor and
    the ClusterQueue. Use it in a `with` block, which always stops it."""
    tools = build.require_group("kueue", binaries)
    crds.install(client, sorted((tools / "crds" / "kueue").glob("*.yaml")))
    if not client.namespace_exists(NAMESPACE):
        client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    certs = workdir / "webhook-certs"
    ca = _certificates(certs)
    _metrics_certificates()
    webhook, health = processes.free_port(), processes.free_port()
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump(_configuration(webhook, health, certs)), encoding="utf-8")
    kueue = Kueue(client=client)
    try:
        _install_webhooks(client, port=webhook, ca=ca)
        process = processes.spawn(
            "kueue",
            [
                str(tools / "kueue"),
                f"--config={config}",
                "--zap-log-level=info",
                # Its visibility API server wants certificates at /visibility; unused here.
                "--feature-gates=VisibilityOnDemand=false",
            ],
            logs=workdir / "logs",
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        )
        kueue.processes.append(process)
        processes.wait_ready(process, url=f"http://127.0.0.1:{health}/readyz", timeout=120)
        crds.create(client, resource_flavor())
        crds.create(client, cluster_queue(quota))
    except BaseException:
        kueue.stop()
        raise
    return kueue


def _configuration(webhook: int, health: int, certs: Path) -> dict[str, Any]:
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": NAMESPACE,
        "manageJobsWithoutQueueName": False,
        "managedJobsNamespaceSelector": {"matchLabels": {LABEL: "true"}},
        "leaderElection": {"leaderElect": False},
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health}"},
        "metrics": {"bindAddress": f"127.0.0.1:{processes.free_port()}"},
        "webhook": {"host": "127.0.0.1", "port": webhook, "certDir": str(certs)},
        "internalCertManagement": {"enable": False},
        "integrations": {"frameworks": ["batch/job"]},
        "clientConnection": {"qps": 50, "burst": 100},
    }


def resource_flavor() -> dict[str, Any]:
    # No nodeLabels: Kueue would add them to the pods' nodeSelector at admission.
    return {"apiVersion": API, "kind": "ResourceFlavor", "metadata": {"name": FLAVOR}}


def cluster_queue(quota: Mapping[str, str]) -> dict[str, Any]:
    unknown = sorted(set(quota) - set(COVERED))
    if unknown:
        raise ClusterError(f"no quota for {', '.join(unknown)} here; choose from {COVERED}")
    return {
        "apiVersion": API,
        "kind": "ClusterQueue",
        "metadata": {"name": CLUSTER_QUEUE},
        "spec": {
            "namespaceSelector": {},  # every namespace (null would be none)
            "queueingStrategy": "BestEffortFIFO",
            "resourceGroups": [
                {
                    "coveredResources": list(COVERED),
                    "flavors": [
                        {
                            "name": FLAVOR,
                            "resources": [
                                {"name": r, "nominalQuota": str(quota.get(r, "0"))} for r in COVERED
                            ],
                        }
                    ],
                }
            ],
        },
    }


def local_queue(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "LocalQueue",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"clusterQueue": CLUSTER_QUEUE},
    }


def enroll(
    client: kube.Kube, namespace: str, queue: str, *, cluster_queue: str = CLUSTER_QUEUE
) -> None:
    """Let Kueue manage `namespace`'s Jobs (the label scopes this harness's webhooks; a
    cluster's own Kueue ignores it) and give it a LocalQueue `queue` in `cluster_queue`."""
    with kube.errors(f"labelling namespace {namespace} for Kueue"):
        client.core.patch_namespace(namespace, {"metadata": {"labels": {LABEL: "true"}}})
    spec = local_queue(namespace, queue)
    spec["spec"]["clusterQueue"] = cluster_queue
    crds.create(client, spec)


def not_admitted(client: kube.Kube, namespace: str, jobs: list[str]) -> list[str]:
    """Each of these Jobs that Kueue did not admit, said with its Workload's state. Ask
    while the Jobs exist: a GitOps tool's pruning deletes them, and their Workloads with
    them."""
    uids = {
        j.metadata.name: j.metadata.uid for j in client.batch.list_namespaced_job(namespace).items
    }
    owned = workloads(client, namespace)
    problems = []
    for name in jobs:
        if name not in uids:
            problems.append(f"Job {name}: gone from {namespace} before its admission was read")
            continue
        found = owned.get(uids[name])
        if found is None:
            present = ", ".join(sorted({w["metadata"]["name"] for w in owned.values()}))
            problems.append(
                f"Job {name}: no Workload; Kueue never saw it (is spec.queue its?). "
                f"Workloads in {namespace}: {present or 'none'}"
            )
            continue
        admitted = crds.condition(found, "Admitted")
        if admitted.get("status") != "True":
            quota = crds.condition(found, "QuotaReserved")
            problems.append(
                f"Job {name}: Workload {found['metadata']['name']} not admitted: "
                f"{quota.get('message') or admitted.get('message') or 'no word'}"
            )
    return problems


def workloads(client: kube.Kube, namespace: str) -> dict[str, dict[str, Any]]:
    """The namespace's Workloads by their Job's uid (Kueue's job-uid label); of two for
    one Job, the admitted one."""
    found: dict[str, dict[str, Any]] = {}
    for each in crds.list_objects(client, API, "Workload", namespace):
        uid = (each["metadata"].get("labels") or {}).get(contract.WORKLOAD_JOB_UID)
        if uid is None:
            continue
        if uid not in found or crds.condition(each, "Admitted").get("status") == "True":
            found[uid] = each
    return found


def _certificates(directory: Path) -> bytes:
    """A CA and a serving certificate for 127.0.0.1 (`tls.crt`, `tls.key`, controller-
    runtime's names) in `directory`; returns the CA certificate (PEM)."""
    directory.mkdir(parents=True, exist_ok=True)
    _self_signed(directory, name="mlgen-kueue-ca", days=2, stem="ca")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", "tls.key", "-out", "tls.csr",
        cwd=directory,
    )  # fmt: skip
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n", encoding="utf-8")
    _openssl(
        "x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "san.cnf", "-out", "tls.crt",
        cwd=directory,
    )  # fmt: skip
    return (directory / "ca.crt").read_bytes()


def _metrics_certificates() -> None:
    if (METRICS_CERTS / "tls.crt").is_file() and (METRICS_CERTS / "tls.key").is_file():
        return
    try:
        METRICS_CERTS.mkdir(parents=True, exist_ok=True)
        _self_signed(METRICS_CERTS, name="kueue-metrics", days=3650, stem="tls")
    except OSError as e:
        raise ClusterError(
            f"Kueue {versions.KUEUE} reads its metrics certificate from {METRICS_CERTS} "
            f"when it does not manage its own, and that cannot be written here ({e}); "
            "run as root, or create tls.crt and tls.key there"
        ) from e


def _self_signed(directory: Path, *, name: str, days: int, stem: str) -> None:
    """`<stem>.crt` and `<stem>.key` in `directory`: a self-signed certificate for `name`."""
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days),
        "-subj", f"/CN={name}", "-keyout", f"{stem}.key", "-out", f"{stem}.crt",
        cwd=directory,
    )  # fmt: skip


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise ClusterError("no openssl on PATH: apt-get install openssl (Kueue's webhooks)")
    proc = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ClusterError(f"openssl {args[0]} failed: {proc.stderr.strip()[-300:]}")


def _webhook(
    verb: str, group: str, version: str, resource: str, *, port: int, ca: bytes
) -> dict[str, Any]:
    kind = resource.removesuffix("s")
    operations = ["CREATE"] if verb == "mutate" else ["CREATE", "UPDATE"]
    hook: dict[str, Any] = {
        "name": f"{verb[0]}{kind}.kb.io",
        "clientConfig": {
            "url": f"https://127.0.0.1:{port}/{verb}-{group.replace('.', '-')}-{version}-{kind}",
            "caBundle": base64.b64encode(ca).decode(),
        },
        "rules": [
            {
                "apiGroups": [group],
                "apiVersions": [version],
                "operations": operations,
                "resources": [resource],
            }
        ],
        "failurePolicy": "Fail",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    }
    if group == "batch":
        hook["namespaceSelector"] = {"matchLabels": {LABEL: "true"}}
    return hook


_CONFIGURATIONS = {
    "MutatingWebhookConfiguration": ("mlgen-kueue-mutating", "mutate"),
    "ValidatingWebhookConfiguration": ("mlgen-kueue-validating", "validate"),
}


def _install_webhooks(client: kube.Kube, *, port: int, ca: bytes) -> None:
    for kind, (name, verb) in _CONFIGURATIONS.items():
        client.apply(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": kind,
                "metadata": {"name": name},
                "webhooks": [_webhook(verb, *hooked, port=port, ca=ca) for hooked in _HOOKED],
            }
        )


def _remove_webhooks(client: kube.Kube) -> None:
    """Without its server a `Fail` webhook would refuse every Job of a labelled namespace."""
    api = k8s.AdmissionregistrationV1Api(client.api)
    for kind, (name, _) in _CONFIGURATIONS.items():
        delete = (
            api.delete_mutating_webhook_configuration
            if kind.startswith("Mutating")
            else api.delete_validating_webhook_configuration
        )
        # Gone already, or the API server is: both fine here.
        with contextlib.suppress(Exception):
            delete(name)
