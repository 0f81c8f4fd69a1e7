"""The GitOps harness of test_gitops.py: a repository on the loopback Git server that
batches are rendered into with the `mlgen render` CLI, committed and pushed (what users
do), and one driver per tool that points the tool at a batch and reads its verdict.

Not a conftest: the conformance package's conftest belongs to the generic suite.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml

from mlgen import kube, timeline
from mlgen.cluster import argocd, crds, fluxcd, gitserver
from mlgen.conformance.runner import sleeper_batch

MLGEN = Path(sys.executable).parent / "mlgen"
T = TypeVar("T")


@dataclass
class Repo:
    """One bare repository on the server and the work tree that pushes to it."""

    name: str
    url: str
    worktree: Path

    @classmethod
    def create(cls, server: gitserver.GitServer, name: str, scratch: Path) -> Repo:
        url = server.create(name)
        return cls(name=name, url=url, worktree=gitserver.clone_empty(url, scratch / name))

    def render(self, doc: dict[str, Any]) -> None:
        """Write the batch file into the work tree and render it into manifests/."""
        name = doc["metadata"]["name"]
        path = self.worktree / "batches" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        args = [str(MLGEN), "render", str(path), "-o", str(self.worktree / "manifests")]
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"mlgen render failed: {proc.stderr or proc.stdout}"

    def push(self, message: str) -> str:
        return gitserver.commit_and_push(self.worktree, message=message)

    def flux_chain(self, batch: str) -> list[str]:
        """The rendered Flux Kustomizations of a batch, in chain order."""
        text = (self.worktree / "manifests" / batch / "flux" / "kustomizations.yaml").read_text()
        return [d["metadata"]["name"] for d in yaml.safe_load_all(text) if d]


def batch_doc(
    name: str,
    namespace: str,
    *,
    durations: list[int],
    simulated: bool,
    flux_source: str | None = None,
    fail_step: int | None = None,
    on_failure: str = "stop",
    parallelism: int | None = None,
) -> dict[str, Any]:
    """A sleeper batch as a user would commit it: in the test namespace, with the Flux
    source named in the batch (`spec.flux`) when Flux is to sync its chain."""
    doc = sleeper_batch(name, durations=durations, on_failure=on_failure, parallelism=parallelism)
    doc["metadata"]["namespace"] = namespace
    if simulated:
        doc["spec"]["simulated"] = True  # KWOK hints: run time and exit code
    if flux_source:
        doc["spec"]["flux"] = {
            "source": flux_source,
            "path": "./manifests",
            "namespace": fluxcd.NAMESPACE,
        }
    if fail_step is not None:
        doc["spec"]["jobs"][fail_step]["simulate"] = {"exitCode": 3}
        doc["spec"]["jobs"][fail_step]["retries"] = 0
    return doc


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    *,
    timeout: float,
    diagnose: Callable[[], str] = lambda: "",
) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found is not None and found is not False:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what}: not after {timeout:.0f}s. {diagnose()}")


def finished(
    client: kube.Kube, *, batch: str, variant: str, namespace: str, count: int
) -> timeline.Timeline | None:
    """The timeline once `count` Jobs of the batch are Complete (None before; raises on a
    Failed Job, which the test did not plan)."""
    found = timeline.collect(client, batch=batch, variant=variant, namespace=namespace)
    failed = [j.name for j in found.jobs if j.status == "Failed"]
    assert not failed, f"{batch}/{variant}: Job(s) {', '.join(failed)} failed"
    done = [j for j in found.jobs if j.status == "Complete"]
    return found if len(done) == count and len(found.jobs) == count else None


def job_uids(client: kube.Kube, namespace: str, names: list[str]) -> dict[str, str]:
    return {n: client.batch.read_namespaced_job(n, namespace).metadata.uid for n in names}


class Driver(Protocol):
    """What a test needs of a GitOps tool."""

    client: kube.Kube
    tool: str

    def watch(self, repo: Repo, *, batch: str, variant: str, namespace: str) -> None: ...
    def refresh(self, repo: Repo, *, batch: str, variant: str) -> None: ...
    def diagnose(self, repo: Repo, *, batch: str, variant: str) -> str: ...


@dataclass
class FluxDriver:
    client: kube.Kube
    tool: str = "flux"

    def watch(self, repo: Repo, *, batch: str, variant: str, namespace: str) -> None:
        if (
            crds.get(self.client, fluxcd.SOURCE_API, "GitRepository", repo.name, fluxcd.NAMESPACE)
            is None
        ):
            crds.create(self.client, fluxcd.git_repository(repo.name, url=repo.url))
        # sequential: a root that applies the committed chain; parallel: mlgen renders
        # no Flux object for it, so one Kustomization waits for the Indexed Job.
        path, wait = (
            (f"./manifests/{batch}/flux", False)
            if variant == "sequential"
            else (f"./manifests/{batch}/{variant}", True)
        )
        crds.create(
            self.client,
            fluxcd.kustomization(f"{batch}-{variant}", source=repo.name, path=path, wait=wait),
        )
        fluxcd.request_reconcile(self.client, repo.name)

    def refresh(self, repo: Repo, *, batch: str, variant: str) -> None:
        fluxcd.request_reconcile(self.client, repo.name)

    def ready(self, name: str) -> dict[str, Any]:
        return fluxcd.ready(self.client, "Kustomization", name)

    def diagnose(self, repo: Repo, *, batch: str, variant: str) -> str:
        names = [f"{batch}-{variant}"]
        if variant == "sequential" and (repo.worktree / "manifests" / batch / "flux").exists():
            names += repo.flux_chain(batch)
        states = [
            f"{n}: {self.ready(n).get('reason', '-')} {self.ready(n).get('message', '')}"
            for n in names
        ]
        source = fluxcd.ready(self.client, "GitRepository", repo.name)
        return f"GitRepository {repo.name}: {source.get('message', '-')}; " + "; ".join(states)


@dataclass
class ArgoDriver:
    client: kube.Kube
    server: str
    tool: str = "argocd"

    def watch(self, repo: Repo, *, batch: str, variant: str, namespace: str) -> None:
        crds.create(
            self.client,
            argocd.application(
                f"{batch}-{variant}",
                repo_url=repo.url,
                path=f"manifests/{batch}/{variant}",
                server=self.server,
                namespace=namespace,
            ),
        )

    def refresh(self, repo: Repo, *, batch: str, variant: str) -> None:
        argocd.refresh(self.client, f"{batch}-{variant}")

    def status(self, batch: str, variant: str) -> dict[str, str]:
        return argocd.status(self.client, f"{batch}-{variant}")

    def diagnose(self, repo: Repo, *, batch: str, variant: str) -> str:
        return f"Application {batch}-{variant}: {self.status(batch, variant)}"


def stopped_at(driver: Driver, repo: Repo, *, batch: str, step: int) -> str | None:
    """How the tool shows that the chain stopped at failed `step` (None: not yet)."""
    if isinstance(driver, FluxDriver):
        chain = repo.flux_chain(batch)
        failed, following = driver.ready(chain[step]), driver.ready(chain[step + 1])
        # Before its own Job ran, the failed step was DependencyNotReady too: not a verdict.
        if (
            failed.get("status") == "False"
            and failed.get("reason") not in ("DependencyNotReady", "Progressing", None)
            and following.get("reason") == "DependencyNotReady"
        ):
            return (
                f"{chain[step]} Ready=False {failed.get('reason')}; {chain[step + 1]} "
                f"{following.get('reason')}"
            )
        return None
    assert isinstance(driver, ArgoDriver)
    state = driver.status(batch, "sequential")
    if state["health"] == "Degraded":
        return (
            f"Application health {state['health']}, sync {state['sync']}, operation "
            f"{state['operation'] or '-'}"
        )
    return None


def forget(driver: Driver, repo: Repo, *, batch: str, variant: str) -> None:
    """Remove what told the tool to sync the batch, so a later push cannot re-run it."""
    client = driver.client
    if isinstance(driver, FluxDriver):
        crds.delete(
            client, fluxcd.KUSTOMIZE_API, "Kustomization", f"{batch}-{variant}", fluxcd.NAMESPACE
        )
    else:
        crds.delete(client, argocd.API, "Application", f"{batch}-{variant}", argocd.NAMESPACE)
