"""Build the local cluster's binaries from the Go module proxy, into a cache.

Nothing is downloaded but Go modules. The binaries come in groups — the control plane
(etcd, the Kubernetes control-plane components, kwok), a real node (kubelet) and the
GitOps tools (Flux's controllers, Argo CD, kustomize, with their CRDs) — each in its
own `<cache>/bin/<versions key>/`, keyed by that group's pinned versions only, so
adding or re-pinning one group never rebuilds another. A complete directory is reused
as is; a build writes into a scratch directory and renames it into place only when
every file is there, so an interrupted build leaves no half-filled cache behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlgen import versions
from mlgen.cluster import golang, nodeimage, recipes
from mlgen.errors import ClusterError

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Group:
    """Binaries built together and cached under one key."""

    name: str
    files: tuple[str, ...]  # relative paths that must all exist in a complete directory
    steps: tuple[tuple[str, recipes.Recipe], ...]  # (label, recipe), in build order
    requires: tuple[str, ...] = ()  # groups whose files this group's recipes read
    default: bool = True  # built by a plain `mlgen cluster build`


GROUPS: dict[str, Group] = {
    g.name: g
    for g in (
        Group(
            "control-plane",
            versions.ALL_BINARIES,
            (
                (f"etcd {versions.ETCD}", recipes.etcd),
                (f"kwok, kwokctl {versions.KWOK}", recipes.kwok),
                (
                    f"Kubernetes {versions.KUBERNETES} (apiserver, controller-manager, scheduler, "
                    "kubectl; the long one)",
                    recipes.kubernetes(versions.KUBE_BINARIES),
                ),
            ),
        ),
        Group(
            "node",
            versions.NODE_BINARIES,
            ((f"kubelet {versions.KUBERNETES}", recipes.kubernetes(versions.NODE_BINARIES)),),
        ),
        Group(
            "gitops",
            (
                *versions.GITOPS_BINARIES,
                "crds/flux/source.toolkit.fluxcd.io_gitrepositories.yaml",
                "crds/flux/kustomize.toolkit.fluxcd.io_kustomizations.yaml",
                "crds/argocd/application-crd.yaml",
                "crds/argocd/appproject-crd.yaml",
            ),
            (
                (
                    f"source-controller {versions.FLUX}",
                    recipes.flux_controller("source-controller"),
                ),
                (
                    f"kustomize-controller {versions.FLUX}",
                    recipes.flux_controller("kustomize-controller"),
                ),
                (f"argocd {versions.ARGOCD}", recipes.argocd),
                (f"kustomize {versions.KUSTOMIZE}", recipes.kustomize),
            ),
        ),
        Group(
            "kueue",
            (
                *versions.KUEUE_BINARIES,
                "crds/kueue/kueue.x-k8s.io_clusterqueues.yaml",
                "crds/kueue/kueue.x-k8s.io_localqueues.yaml",
                "crds/kueue/kueue.x-k8s.io_workloads.yaml",
            ),
            ((f"kueue {versions.KUEUE}", recipes.kueue),),
        ),
        Group(
            "kind",
            (
                *versions.KIND_BINARIES,
                *versions.CONTAINERD_BINARIES,
                "coredns",
                "local-path-provisioner",
                "crictl",
                "pause",
                nodeimage.ARCHIVE,
            ),
            (
                (f"kind {versions.KIND}", recipes.kind),
                (
                    f"kubeadm, kube-proxy {versions.KUBERNETES}",
                    recipes.kubernetes(("kubeadm", "kube-proxy")),
                ),
                (f"containerd {versions.CONTAINERD}", recipes.containerd),
                (f"coredns {versions.COREDNS}", recipes.coredns),
                (f"local-path-provisioner {versions.LOCAL_PATH}", recipes.local_path),
                (f"crictl {versions.CRICTL}", recipes.crictl),
                (f"pause {versions.PAUSE_TAG}", recipes.pause),
                (
                    f"node image {versions.KIND_NODE_IMAGE} (debootstrap, docker, "
                    "kind build node-image)",
                    nodeimage.recipe(lambda name: group_dir(name)),
                ),
            ),
            requires=("control-plane", "node"),
            default=False,
        ),
    )
}


def cache_root() -> Path:
    """`$MLGEN_CACHE_DIR`, else `$XDG_CACHE_HOME/mlgen`, else `~/.cache/mlgen`."""
    explicit = os.environ.get("MLGEN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "mlgen"


def group_dir(name: str, root: Path | None = None) -> Path:
    """Where a group's files live (whether built yet or not)."""
    _group(name)
    return (root or cache_root()) / "bin" / versions.group_key(name)


def kubectl() -> str:
    """The kubectl `mlgen cluster build` built, else the one on PATH (users' kind CI)."""
    built = bin_dir() / "kubectl"
    found = str(built) if built.is_file() else shutil.which("kubectl")
    if found is None:
        raise ClusterError("no kubectl: run `mlgen cluster build`, or install kubectl")
    return found


def bin_dir(root: Path | None = None) -> Path:
    """Where the control plane's binaries live (whether built yet or not)."""
    return group_dir("control-plane", root)


def is_built(directory: Path, group: str = "control-plane") -> bool:
    return all((directory / name).is_file() for name in _group(group).files)


def require_group(name: str, directory: Path | None = None) -> Path:
    """The directory of a group that is built, or ClusterError saying how to build it."""
    target = directory or group_dir(name)
    if not is_built(target, name):
        flag = "" if _group(name).default else f" --{name}"
        raise ClusterError(
            f"{target}: the {name} binaries are missing; run `mlgen cluster build{flag}` first"
        )
    return target


def ensure_binaries(*, root: Path | None = None, progress: Progress = print) -> Path:
    """Return the directory holding the control plane's binaries, building what is missing."""
    return ensure_group("control-plane", root=root, progress=progress)


def ensure_all(
    *,
    root: Path | None = None,
    progress: Progress = print,
    extra: tuple[str, ...] = (),
    timings: dict[str, dict[str, object]] | None = None,
) -> dict[str, Path]:
    """Every default group and the `extra` ones, built if missing: what `mlgen cluster
    build` (and CI, with `--kind`) runs. `timings` gets each group's state (cold or
    cached) and seconds."""
    names = [n for n, g in GROUPS.items() if g.default or n in extra]
    found = {}
    for name in names:
        started = time.monotonic()
        cached = is_built(group_dir(name, root), name)
        found[name] = ensure_group(name, root=root, progress=progress)
        if timings is not None:
            timings[name] = {
                "state": "cached" if cached else "cold",
                "seconds": round(time.monotonic() - started, 1),
            }
    return found


def ensure_group(name: str, *, root: Path | None = None, progress: Progress = print) -> Path:
    """Return the directory holding a group's files, building it if it is not complete."""
    group = _group(name)
    target = group_dir(name, root)
    if is_built(target, name):
        progress(f"{name}: cached in {target}")
        return target
    for required in group.requires:
        ensure_group(required, root=root, progress=progress)
    go = golang.binary()
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".build-{name}-", dir=target.parent))
    started = time.monotonic()
    total = len(group.steps)
    try:
        for number, (label, step) in enumerate(group.steps, start=1):
            progress(f"{name}: [{number}/{total}] building {label} ...")
            t0 = time.monotonic()
            work = scratch / f".work-{number}"
            work.mkdir()
            step(go, work, scratch)
            shutil.rmtree(work, ignore_errors=True)
            progress(f"{name}: [{number}/{total}] done in {time.monotonic() - t0:.0f}s")
        missing = [f for f in group.files if not (scratch / f).is_file()]
        if missing:
            raise ClusterError(
                f"the {name} build finished without {', '.join(missing)}; "
                "this is a bug in mlgen's build recipe"
            )
        if is_built(target, name):  # another process finished the same build first
            progress(f"{name}: built meanwhile by another process; using {target}")
            return target
        if target.exists():  # an incomplete leftover from an older mlgen
            shutil.rmtree(target)
        try:
            scratch.rename(target)
        except OSError:
            if not is_built(target, name):
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    progress(f"{name}: built in {time.monotonic() - started:.0f}s into {target}")
    return target


def _group(name: str) -> Group:
    if name not in GROUPS:
        raise ClusterError(f"no build group {name!r}; choose one of {', '.join(GROUPS)}")
    return GROUPS[name]
