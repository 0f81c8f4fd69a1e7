"""The real Argo CD on the local control plane: redis, the repo-server and the
application-controller as local processes, run from one `argocd` binary (v2, built with
only these components: `mlgen.versions`) through ARGOCD_BINARY_NAME, syncing from a
loopback Git server.

argocd-server is not run, so what it would create is created here: the `argocd`
namespace, `argocd-cm`, `argocd-secret` and the `default` AppProject. Outside a pod,
`https://kubernetes.default.svc` does not resolve: the destination is a cluster Secret
for the local API server's URL and credentials.

`ArgoCD` is the running components behind `gitops.Tool`: one Application a variant
directory, its sync waves ordering the steps.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlgen import contract, kube
from mlgen.cluster import build, crds, gitops, processes
from mlgen.errors import ClusterError

NAMESPACE = "argocd"
API = "argoproj.io/v1alpha1"
REFRESH = "argocd.argoproj.io/refresh"
RECONCILIATION = "10s"  # how often an Application is compared with Git without a push
_PART_OF = {contract.PART_OF: "argocd"}  # Argo CD reads its config maps by it


@dataclass
class ArgoCD(processes.Group):
    """Running components; `stop()` ends them (idempotent). Made from a client and server
    alone, it drives components someone else started (and stops nothing)."""

    client: kube.Kube
    server: str  # the destination cluster's URL, as registered in the cluster Secret
    processes: list[processes.Process] = field(default_factory=list)
    name: str = field(default="argocd", init=False)

    def batch_spec(self, repo: gitops.Repository) -> dict[str, Any]:
        return {}  # it syncs the sync waves every render writes

    def watch(self, repo: gitops.Repository, *, batch: str, variant: str, namespace: str) -> None:
        app = application(
            gitops.object_name(batch, variant),
            repo_url=repo.url,
            path=f"{gitops.MANIFESTS}/{batch}/{variant}",
            server=self.server,
            namespace=namespace,
        )
        crds.create(self.client, app)

    def refresh(self, repo: gitops.Repository, *, batch: str, variant: str) -> None:
        request_refresh(self.client, gitops.object_name(batch, variant))

    def stopped_at(
        self, repo: gitops.Repository, *, batch: str, variant: str, step: int
    ) -> str | None:
        # Not per step: a failed wave leaves the whole Application Degraded.
        state = status(self.client, gitops.object_name(batch, variant))
        if state["health"] == "Degraded":
            return (
                f"Application health {state['health']}, sync {state['sync']}, operation "
                f"{state['operation'] or '-'}"
            )
        return None

    def diagnose(self, repo: gitops.Repository, *, batch: str, variant: str) -> str:
        name = gitops.object_name(batch, variant)
        return f"Application {name}: {status(self.client, name)}"

    def forget(self, repo: gitops.Repository, *, batch: str, variant: str) -> None:
        name = gitops.object_name(batch, variant)
        crds.delete(self.client, API, "Application", name, NAMESPACE)


def start(
    client: kube.Kube, *, kubeconfig: Path, workdir: Path, binaries: Path | None = None
) -> ArgoCD:
    """Install CRDs and settings, start redis and both components. Use it in a `with`
    block, which always stops them."""
    tools = build.require_group("gitops", binaries)
    redis = _which("redis-server", "apt-get install -y --no-install-recommends redis-server")
    server, tls = _credentials(kubeconfig)
    _install(client, tools, server=server, tls=tls)
    logs = workdir / "logs"
    argo = ArgoCD(client=client, server=server)
    redis_port, repo_port = processes.free_port(), processes.free_port()
    # kustomize and git must be on PATH for the repo-server; GPG would need a keyring.
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "ARGOCD_GPG_ENABLED": "false",
        "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}",
        "ARGOCD_RECONCILIATION_TIMEOUT": RECONCILIATION,
        "TMPDIR": str(workdir),
        # The repo-server's Git credential socket, else a fixed /tmp path every Argo CD
        # on the host would share (several pytest workers start one each).
        "ARGOCD_ASK_PASS_SOCK": str(workdir / "askpass.sock"),
    }
    try:
        process = processes.spawn(
            "redis",
            [
                redis,
                "--bind",
                "127.0.0.1",
                "--port",
                str(redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ],
            logs=logs,
        )
        argo.processes.append(process)
        processes.wait_ready(process, port=redis_port)
        metrics = processes.free_port()
        process = processes.spawn(
            "argocd-repo-server",
            [
                str(tools / "argocd"),
                "--disable-tls",
                "--port",
                str(repo_port),
                "--metrics-port",
                str(metrics),
                "--redis",
                f"127.0.0.1:{redis_port}",
            ],
            logs=logs,
            env={**env, "ARGOCD_BINARY_NAME": "argocd-repo-server"},
        )
        argo.processes.append(process)
        processes.wait_ready(process, port=repo_port)
        metrics = processes.free_port()
        process = processes.spawn(
            "argocd-application-controller",
            [
                str(tools / "argocd"),
                "--repo-server",
                f"127.0.0.1:{repo_port}",
                "--repo-server-plaintext",
                "--redis",
                f"127.0.0.1:{redis_port}",
                "--namespace",
                NAMESPACE,
                "--metrics-port",
                str(metrics),
                "--status-processors",
                "4",
                "--operation-processors",
                "4",
            ],
            logs=logs,
            env={**env, "ARGOCD_BINARY_NAME": "argocd-application-controller"},
        )
        argo.processes.append(process)
        processes.wait_ready(process, url=f"http://127.0.0.1:{metrics}/metrics")
    except BaseException:
        argo.stop()
        raise
    return argo


def application(
    name: str, *, repo_url: str, path: str, server: str, namespace: str, revision: str = "main"
) -> dict[str, Any]:
    """An Application syncing `path` into `namespace` automatically, pruning what Git drops."""
    return {
        "apiVersion": API,
        "kind": "Application",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo_url, "targetRevision": revision, "path": path},
            "destination": {"server": server, "namespace": namespace},
            "syncPolicy": {"automated": {"prune": True}},
        },
    }


def request_refresh(client: kube.Kube, name: str) -> None:
    """Compare with Git now (after a push) rather than at the reconciliation timeout."""
    crds.annotate_now(client, API, "Application", name, NAMESPACE, key=REFRESH, value="normal")


def status(client: kube.Kube, name: str) -> dict[str, str]:
    """Sync status, health, operation phase and synced revision of an Application."""
    found = (crds.get(client, API, "Application", name, NAMESPACE) or {}).get("status") or {}
    return {
        "sync": str((found.get("sync") or {}).get("status", "")),
        "revision": str((found.get("sync") or {}).get("revision", "")),
        "health": str((found.get("health") or {}).get("status", "")),
        "operation": str((found.get("operationState") or {}).get("phase", "")),
    }


def _install(client: kube.Kube, tools: Path, *, server: str, tls: dict[str, str]) -> None:
    crds.install(client, sorted((tools / "crds" / "argocd").glob("*.yaml")))
    meta = {"namespace": NAMESPACE, "labels": _PART_OF}
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    client.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "argocd-cm", **meta},
            "data": {"timeout.reconciliation": RECONCILIATION},
        }
    )
    client.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "argocd-secret", **meta},
            "stringData": {"server.secretkey": secrets.token_urlsafe(32)},
        }
    )
    client.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "cluster-local",
                "namespace": NAMESPACE,
                "labels": {"argocd.argoproj.io/secret-type": "cluster", **_PART_OF},
            },
            "stringData": {
                "name": "local",
                "server": server,
                "config": json.dumps({"tlsClientConfig": tls}),
            },
        }
    )
    crds.create(
        client,
        {
            "apiVersion": API,
            "kind": "AppProject",
            "metadata": {"name": "default", "namespace": NAMESPACE},
            "spec": {
                "sourceRepos": ["*"],
                "destinations": [{"server": "*", "namespace": "*"}],
                "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
            },
        },
    )


def _credentials(kubeconfig: Path) -> tuple[str, dict[str, str]]:
    """The API server URL and client TLS data (base64 PEM, as Argo CD stores it)."""
    try:
        doc = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
        context = next(c["context"] for c in doc["contexts"] if c["name"] == doc["current-context"])
        cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in doc["users"] if u["name"] == context["user"])
    except (OSError, KeyError, StopIteration, TypeError, yaml.YAMLError) as e:
        raise ClusterError(
            f"cannot read the API server and credentials from {kubeconfig} "
            f"({e}); pass the kubeconfig kwokctl wrote"
        ) from e
    tls: dict[str, str] = {}
    for ours, data, path, owner in (
        ("caData", "certificate-authority-data", "certificate-authority", cluster),
        ("certData", "client-certificate-data", "client-certificate", user),
        ("keyData", "client-key-data", "client-key", user),
    ):
        if owner.get(data):
            tls[ours] = owner[data]
        elif owner.get(path):
            tls[ours] = base64.b64encode((kubeconfig.parent / owner[path]).read_bytes()).decode()
    if cluster.get("insecure-skip-tls-verify"):
        tls["insecure"] = "true"
    if "certData" not in tls:
        raise ClusterError(
            f"{kubeconfig} has no client certificate; Argo CD's cluster "
            "Secret here needs certificate authentication"
        )
    return str(cluster["server"]), tls


def _which(program: str, fix: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise ClusterError(f"{program} is not installed; install it ({fix})")
    return found


if TYPE_CHECKING:
    # The registry imports tools by name; this is where mypy holds ArgoCD to gitops.Tool.
    _launcher: gitops.Launcher = start
