"""The real Flux on the local control plane: source-controller and kustomize-controller
as local processes (built by `mlgen cluster build`), syncing from a loopback Git server.

Both run against a kubeconfig with leader election off and every listener on a free
loopback port. kustomize-controller re-checks a Kustomization waiting on `dependsOn`
every `--requeue-dependency` (default 30 s, not event-driven), so the harness sets 1 s:
the chain then moves as fast as Flux can, and ε measures Flux, not a timer we chose.

`Flux` is the running controllers behind `gitops.Tool`: a sequential batch is synced
through the chain mlgen renders (`spec.flux`) under a root Kustomization of ours.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlgen import kube, variants
from mlgen.cluster import build, crds, gitops, processes

NAMESPACE = "flux-system"
SOURCE_API = "source.toolkit.fluxcd.io/v1"
KUSTOMIZE_API = "kustomize.toolkit.fluxcd.io/v1"
RECONCILE = "reconcile.fluxcd.io/requestedAt"
REQUEUE_DEPENDENCY = "1s"
# kustomize-controller polls the health of `wait: true` resources on this fixed period
# (not configurable in v1.9): a step may wait up to this long after its Job completes.
HEALTH_POLL_SECONDS = 5.0


@dataclass
class Flux(processes.Group):
    """Running controllers; `stop()` ends them (idempotent). Made from a client alone, it
    drives controllers someone else started (and stops nothing)."""

    client: kube.Kube
    processes: list[processes.Process] = field(default_factory=list)
    name: str = field(default="flux", init=False)

    def batch_spec(self, repo: gitops.Repository) -> dict[str, Any]:
        # The rendered chain's Kustomizations name the GitRepository `watch` creates.
        source = {"source": repo.name, "path": f"./{gitops.MANIFESTS}", "namespace": NAMESPACE}
        return {"flux": source}

    def watch(self, repo: gitops.Repository, *, batch: str, variant: str, namespace: str) -> None:
        if crds.get(self.client, SOURCE_API, "GitRepository", repo.name, NAMESPACE) is None:
            crds.create(self.client, git_repository(repo.name, url=repo.url))
        # sequential, stages: a root that applies the committed chain (its companion
        # directory); parallel: mlgen renders no Flux object for it, so one Kustomization
        # waits for the Indexed Job.
        companion = next(iter(variants.companions(variant)), None)
        path, wait = (
            (f"./{gitops.MANIFESTS}/{batch}/{companion}", False)
            if companion
            else (f"./{gitops.MANIFESTS}/{batch}/{variant}", True)
        )
        root = kustomization(
            gitops.object_name(batch, variant), source=repo.name, path=path, wait=wait
        )
        crds.create(self.client, root)
        request_reconcile(self.client, repo.name)

    def refresh(self, repo: gitops.Repository, *, batch: str, variant: str) -> None:
        request_reconcile(self.client, repo.name)

    def stopped_at(
        self, repo: gitops.Repository, *, batch: str, variant: str, step: int
    ) -> str | None:
        names = chain(repo.worktree, batch, companion=variants.companions(variant)[0])
        failed = ready(self.client, "Kustomization", names[step])
        following = ready(self.client, "Kustomization", names[step + 1])
        # Before its own Job ran, the failed step was DependencyNotReady too: not a verdict.
        if (
            failed.get("status") == "False"
            and failed.get("reason") not in ("DependencyNotReady", "Progressing", None)
            and following.get("reason") == "DependencyNotReady"
        ):
            return (
                f"{names[step]} Ready=False {failed.get('reason')}; {names[step + 1]} "
                f"{following.get('reason')}"
            )
        return None

    def diagnose(self, repo: gitops.Repository, *, batch: str, variant: str) -> str:
        names = [gitops.object_name(batch, variant)]
        for companion in variants.companions(variant):
            if (repo.worktree / gitops.MANIFESTS / batch / companion).exists():
                names += chain(repo.worktree, batch, companion=companion)
        found = [(n, ready(self.client, "Kustomization", n)) for n in names]
        states = [f"{n}: {c.get('reason', '-')} {c.get('message', '')}" for n, c in found]
        source = ready(self.client, "GitRepository", repo.name)
        return f"GitRepository {repo.name}: {source.get('message', '-')}; " + "; ".join(states)

    def forget(self, repo: gitops.Repository, *, batch: str, variant: str) -> None:
        name = gitops.object_name(batch, variant)
        crds.delete(self.client, KUSTOMIZE_API, "Kustomization", name, NAMESPACE)


def start(
    client: kube.Kube, *, kubeconfig: Path, workdir: Path, binaries: Path | None = None
) -> Flux:
    """Install the CRDs and namespace, start both controllers. Use it in a `with` block,
    which always stops them."""
    tools = build.require_group("gitops", binaries)
    crds.install(client, sorted((tools / "crds" / "flux").glob("*.yaml")))
    if not client.namespace_exists(NAMESPACE):
        client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "RUNTIME_NAMESPACE": NAMESPACE}
    flux, storage_port = Flux(client=client), processes.free_port()
    logs = workdir / "logs"
    (workdir / "storage").mkdir(parents=True, exist_ok=True)  # it will not create it
    try:
        for name, extra in (
            (
                "source-controller",
                [
                    f"--storage-path={workdir / 'storage'}",
                    f"--storage-addr=127.0.0.1:{storage_port}",
                    # kustomize-controller downloads artifacts from this advertised address.
                    f"--storage-adv-addr=127.0.0.1:{storage_port}",
                ],
            ),
            ("kustomize-controller", [f"--requeue-dependency={REQUEUE_DEPENDENCY}"]),
        ):
            health = processes.free_port()
            process = processes.spawn(
                name,
                [
                    str(tools / name),
                    "--enable-leader-election=false",
                    "--log-level=info",
                    f"--metrics-addr=127.0.0.1:{processes.free_port()}",
                    f"--health-addr=127.0.0.1:{health}",
                    *extra,
                ],
                logs=logs,
                env=env,
            )
            flux.processes.append(process)
            processes.wait_ready(process, url=f"http://127.0.0.1:{health}/readyz")
    except BaseException:
        flux.stop()
        raise
    return flux


def git_repository(
    name: str, *, url: str, branch: str = "main", interval: str = "1m"
) -> dict[str, Any]:
    """A GitRepository in flux-system; after a push, `request_reconcile` fetches at once."""
    return {
        "apiVersion": SOURCE_API,
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"url": url, "ref": {"branch": branch}, "interval": interval, "timeout": "30s"},
    }


def kustomization(
    name: str, *, source: str, path: str, wait: bool, timeout: str = "10m"
) -> dict[str, Any]:
    """A Kustomization of our own: the root that applies the rendered Flux chain, or one
    for a directory mlgen renders no Flux object for (the parallel variant)."""
    return {
        "apiVersion": KUSTOMIZE_API,
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "interval": "10m",
            "retryInterval": "30s",
            "timeout": timeout,
            "path": path,
            "prune": True,
            "wait": wait,
            "sourceRef": {"kind": "GitRepository", "name": source},
        },
    }


def request_reconcile(client: kube.Kube, repository: str) -> None:
    """Ask source-controller to fetch the repository now instead of at its interval."""
    crds.annotate_now(client, SOURCE_API, "GitRepository", repository, NAMESPACE, key=RECONCILE)


def ready(client: kube.Kube, kind: str, name: str) -> dict[str, Any]:
    """The Ready condition of a Flux object in flux-system (empty until it has one)."""
    api = SOURCE_API if kind == "GitRepository" else KUSTOMIZE_API
    return crds.condition(crds.get(client, api, kind, name, NAMESPACE), "Ready")


def revision(client: kube.Kube, kind: str, name: str) -> str:
    """The revision the object last fetched (GitRepository) or applied (Kustomization)."""
    api = SOURCE_API if kind == "GitRepository" else KUSTOMIZE_API
    status = (crds.get(client, api, kind, name, NAMESPACE) or {}).get("status") or {}
    if kind == "GitRepository":
        return str((status.get("artifact") or {}).get("revision", ""))
    return str(status.get("lastAppliedRevision", ""))


def chain(worktree: Path, batch: str, *, companion: str = "flux") -> list[str]:
    """The rendered Flux Kustomizations of a batch, in chain order (`companion`: the
    directory of the chain, `flux` for the sequential variant's)."""
    text = (worktree / gitops.MANIFESTS / batch / companion / "kustomizations.yaml").read_text()
    return [d["metadata"]["name"] for d in yaml.safe_load_all(text) if d]


if TYPE_CHECKING:
    # The registry imports tools by name; this is where mypy holds Flux to gitops.Tool.
    _launcher: gitops.Launcher = start
