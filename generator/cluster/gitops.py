"""GitOps tools behind one protocol (`Tool`), and the registry that builds and starts them.

A tool runs as local processes against one cluster and is pointed at a batch the way a
user would: at a directory `mlgen render` wrote into a Git repository. What differs
between tools (the objects that point them, how to ask for a sync now, how they show a
stopped chain) is a method of `Tool`, so the conformance suite drives Flux and Argo CD
alike. Adding a tool is one module with a `start()` returning its `Tool`, and one
`REGISTRY` line.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self

from mlgen import kube
from mlgen.cluster import build
from mlgen.errors import ClusterError

MANIFESTS = "manifests"  # where in a repository `mlgen render` writes, as in the README


class Repository(Protocol):
    """A Git repository a tool syncs from, and the work tree its commits were made in
    (rendered into `MANIFESTS/` at its root)."""

    @property
    def name(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def worktree(self) -> Path: ...


class Tool(Protocol):
    """A running GitOps tool; `stop()` (or leaving a `with` block) ends its processes."""

    @property
    def name(self) -> str:
        """Its registry name, also the tool named in calibrations and artifacts."""

    @property
    def client(self) -> kube.Kube: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def batch_spec(self, repo: Repository) -> dict[str, Any]:
        """What a batch this tool syncs as a chain adds to its `spec` (none: {})."""

    def watch(self, repo: Repository, *, batch: str, variant: str, namespace: str) -> None:
        """Point the tool at the batch's rendered `variant` in `repo`, for `namespace`."""

    def refresh(self, repo: Repository, *, batch: str, variant: str) -> None:
        """Ask it to sync now (after a push) instead of at its interval."""

    def stopped_at(self, repo: Repository, *, batch: str, variant: str, step: int) -> str | None:
        """How the tool shows that the chain of `variant` stopped at failed `step` (None:
        it does not show it yet)."""

    def diagnose(self, repo: Repository, *, batch: str, variant: str) -> str:
        """One line of the tool's own view, for a wait that timed out."""

    def forget(self, repo: Repository, *, batch: str, variant: str) -> None:
        """Remove what `watch` created, so a later push cannot sync the batch again."""

    def rss_mib(self) -> dict[str, float]:
        """Resident memory of each of its live processes now."""

    def stop(self) -> None:
        """End its processes (idempotent)."""


class Launcher(Protocol):
    """A tool module's `start()`: install what the tool needs, start it, return it."""

    def __call__(
        self, client: kube.Kube, *, kubeconfig: Path, workdir: Path, binaries: Path | None = None
    ) -> Tool: ...


@dataclass(frozen=True)
class Entry:
    name: str  # the Tool's `name`
    module: str  # defines `start`, a `Launcher`
    group: str  # the build group holding its binaries and CRDs


REGISTRY: tuple[Entry, ...] = (
    Entry("flux", "mlgen.cluster.fluxcd", "gitops"),
    Entry("argocd", "mlgen.cluster.argocd", "gitops"),
)


def names() -> tuple[str, ...]:
    return tuple(e.name for e in REGISTRY)


def entry(name: str) -> Entry:
    for each in REGISTRY:
        if each.name == name:
            return each
    raise ClusterError(f"no GitOps tool {name!r}; the tools are {', '.join(names())}")


def ensure_built(name: str, *, progress: build.Progress = print) -> Path:
    """The directory of the tool's build group, built first unless cached."""
    return build.ensure_group(entry(name).group, progress=progress)


def start(
    name: str,
    client: kube.Kube,
    *,
    kubeconfig: Path,
    workdir: Path,
    binaries: Path | None = None,
) -> Tool:
    """Start the tool (built beforehand); use it in a `with` block, which stops it."""
    # Imported by name, as the variants are: a tool's module loads only when it runs.
    launcher: Launcher = importlib.import_module(entry(name).module).start
    return launcher(client, kubeconfig=kubeconfig, workdir=workdir, binaries=binaries)


def object_name(batch: str, variant: str) -> str:
    """The name of the object that points a tool at one batch's variant."""
    return f"{batch}-{variant}"
