"""How each pinned component is built from the Go module proxy: one function per
component, `(go, work, out)`, writing its files into `out`.

Upstream modules that carry `replace` lines of their own cannot be `go install`ed; each
is built from a throwaway wrapper module in `work` that requires it and re-states the
replaces (a dependency's replaces are ignored by Go).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from mlgen import versions
from mlgen.cluster import golang
from mlgen.errors import ClusterError

Recipe = Callable[[str, Path, Path], None]

_BUILD_DATE = "2026-01-01T00:00:00Z"  # fixed: identical inputs give identical binaries
_FLAGS = "-s -w"


def _build(
    go: str,
    work: Path,
    *,
    out: Path,
    package: str,
    ldflags: str = _FLAGS,
    modcache: Path | None = None,
) -> None:
    golang.run(
        go,
        ["build", "-trimpath", f"-ldflags={ldflags}", "-o", str(out), package],
        cwd=work,
        modcache=modcache,
    )


def etcd(go: str, work: Path, out: Path) -> None:
    # server/v3 carries replace lines of its own, so `go install` cannot build it:
    # a two-line main in a module of our own can.
    golang.write_module(work, "etcd")
    (work / "main.go").write_text(
        'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\n'
        "func main() { etcdmain.Main(os.Args) }\n"
    )
    golang.run(go, ["get", f"go.etcd.io/etcd/server/v3@{versions.ETCD}"], cwd=work)
    _build(go, work, out=out / "etcd", package=".")


def kwok(go: str, work: Path, out: Path) -> None:
    golang.write_module(work, "kwok")
    golang.run(go, ["get", f"sigs.k8s.io/kwok@{versions.KWOK}"], cwd=work)
    consts = "sigs.k8s.io/kwok/pkg/consts"
    ldflags = " ".join(
        [
            _FLAGS,
            f"-X {consts}.Version={versions.KWOK.removeprefix('v')}",
            f"-X {consts}.KubeVersion={versions.KUBERNETES.removeprefix('v')}",
        ]
    )
    for name in versions.KWOK_BINARIES:
        _build(go, work, out=out / name, package=f"sigs.k8s.io/kwok/cmd/{name}", ldflags=ldflags)


def kubernetes(names: Sequence[str]) -> Recipe:
    """The recipe for these `k8s.io/kubernetes/cmd/<name>` binaries (control plane, kubelet)."""

    def recipe(go: str, work: Path, out: Path) -> None:
        # k8s.io/kubernetes replaces its staging modules with local paths, which a
        # dependency's go.mod cannot do; point each at its published version instead.
        golang.write_module(work, "kubernetes")
        gomod = golang.module_file(go, f"k8s.io/kubernetes@{versions.KUBERNETES}", cwd=work)
        staging = sorted(
            set(
                re.findall(
                    r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", gomod.read_text(), flags=re.M
                )
            )
        )
        if not staging:
            raise ClusterError(
                f"no staging replacements found in k8s.io/kubernetes@"
                f"{versions.KUBERNETES}'s go.mod; the build recipe needs "
                "updating"
            )
        replaces = golang.replace_lines({m: f"{m} {versions.STAGING}" for m in staging})
        golang.write_module(
            work, "kubernetes", f"\nrequire k8s.io/kubernetes {versions.KUBERNETES}\n\n{replaces}"
        )
        major, minor = versions.KUBERNETES.removeprefix("v").split(".")[:2]
        stamps = {
            "gitVersion": versions.KUBERNETES,
            "gitMajor": major,
            "gitMinor": minor,
            "gitTreeState": "clean",
            "buildDate": _BUILD_DATE,
        }
        ldflags = [_FLAGS] + [
            f"-X {pkg}.{k}={v}"
            for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
            for k, v in stamps.items()
        ]
        golang.run(go, ["mod", "download", "k8s.io/kubernetes"], cwd=work)
        for name in names:
            _build(
                go,
                work,
                out=out / name,
                package=f"k8s.io/kubernetes/cmd/{name}",
                ldflags=" ".join(ldflags),
            )

    return recipe


@contextmanager
def _own_modcache(out: Path, component: str) -> Iterator[Path]:
    """A module cache for this component alone, deleted after its build: the GitOps
    modules hold GBs of sources that only a re-pin (a fresh download anyway) would need."""
    cache = out / f".gomod-{component}"
    try:
        yield cache
    finally:
        shutil.rmtree(cache, ignore_errors=True)  # -modcacherw: the files are writable


def flux_controller(name: str) -> Recipe:
    """source-controller or kustomize-controller, and its CRDs into `out/crds/flux`."""

    def recipe(go: str, work: Path, out: Path) -> None:
        module = f"github.com/fluxcd/{name}"
        pins = {**versions.FLUX_REPLACES["both"], **versions.FLUX_REPLACES[name]}
        replaces = golang.replace_lines({m: f"{m} {v}" for m, v in pins.items()})
        golang.write_module(work, name, f"\nrequire {module} {versions.FLUX}\n\n{replaces}")
        with _own_modcache(out, name) as cache:
            _build(go, work, out=out / name, package=module, modcache=cache)
            source = golang.module_dir(go, f"{module}@{versions.FLUX}", cwd=work, modcache=cache)
            _copy_yaml(source / "config" / "crd" / "bases", out / "crds" / "flux")

    return recipe


# Argo CD's own main (`cmd/main.go`) links every component into one binary, the API
# server, CLI and dex among them. This main links only `versions.ARGOCD_COMPONENTS`,
# chosen the same way (ARGOCD_BINARY_NAME, else the file name); `{cases}` is filled in.
_ARGOCD_MAIN = """package main

import (
\t"fmt"
\t"os"
\t"path/filepath"

\t"github.com/spf13/cobra"

\tcmdutil "github.com/argoproj/argo-cd/v2/cmd/util"
{imports}
)

func main() {{
\tname := filepath.Base(os.Args[0])
\tif chosen := os.Getenv("ARGOCD_BINARY_NAME"); chosen != "" {{
\t\tname = chosen
\t}}
\tvar command *cobra.Command
\tswitch name {{
{cases}
\tdefault:
\t\tfmt.Fprintf(os.Stderr, "%s: this Argo CD build (mlgen's) has only {names}\\n", name)
\t\tos.Exit(2)
\t}}
\tcmdutil.SetAutoMaxProcs(name == "argocd-git-ask-pass")
\tif err := command.Execute(); err != nil {{
\t\tos.Exit(1)
\t}}
}}
"""


def argocd_main(module: str, components: tuple[str, ...]) -> str:
    """The Go source of the `argocd` binary: one case per component, each calling that
    component's `commands.NewCommand` (Argo CD keeps each in `cmd/<component>/commands`)."""
    imports, cases = [], []
    for i, component in enumerate(components):
        imports.append(f'\tc{i} "{module}/cmd/{component}/commands"')
        cases.append(f'\tcase "{component}":\n\t\tcommand = c{i}.NewCommand()')
    return _ARGOCD_MAIN.format(
        imports="\n".join(imports), cases="\n".join(cases), names=", ".join(components)
    )


def argocd(go: str, work: Path, out: Path) -> None:
    """The `argocd` binary with only the components the harness runs, and the CRDs."""
    module = "github.com/argoproj/argo-cd/v2"
    golang.write_module(work, "argocd")
    stamp = (
        f"-X {module}/common.version={versions.ARGOCD.removeprefix('v')} "
        f"-X {module}/common.buildDate={_BUILD_DATE}"
    )
    target = out / "crds" / "argocd"
    target.mkdir(parents=True, exist_ok=True)
    with _own_modcache(out, "argocd") as cache:
        upstream = golang.module_file(go, f"{module}@{versions.ARGOCD}", cwd=work, modcache=cache)
        replaces = golang.replace_lines(golang.replacements(upstream.read_text()))
        golang.write_module(work, "argocd", f"\nrequire {module} {versions.ARGOCD}\n\n{replaces}")
        (work / "main.go").write_text(argocd_main(module, versions.ARGOCD_COMPONENTS))
        _build(
            go,
            work,
            out=out / "argocd",
            package=".",
            ldflags=f"{_FLAGS} {stamp}",
            modcache=cache,
        )
        source = golang.module_dir(go, f"{module}@{versions.ARGOCD}", cwd=work, modcache=cache)
        for crd in ("application-crd.yaml", "appproject-crd.yaml"):
            shutil.copyfile(source / "manifests" / "crds" / crd, target / crd)


def kustomize(go: str, work: Path, out: Path) -> None:
    module = "sigs.k8s.io/kustomize/kustomize/v5"
    golang.write_module(work, "kustomize", f"\nrequire {module} {versions.KUSTOMIZE}\n")
    stamp = f"-X sigs.k8s.io/kustomize/api/provenance.version={versions.KUSTOMIZE}"
    with _own_modcache(out, "kustomize") as cache:
        _build(
            go,
            work,
            out=out / "kustomize",
            package=module,
            ldflags=f"{_FLAGS} {stamp}",
            modcache=cache,
        )


def kueue(go: str, work: Path, out: Path) -> None:
    """Kueue's manager and its CRDs into `out/crds/kueue`. Its go.mod lists every
    staging module it needs, so the wrapper needs no replace lines."""
    module = "sigs.k8s.io/kueue"
    golang.write_module(work, "kueue", f"\nrequire {module} {versions.KUEUE}\n")
    stamp = (
        f"-X {module}/pkg/version.GitVersion={versions.KUEUE} "
        f"-X {module}/pkg/version.BuildDate={_BUILD_DATE}"
    )
    with _own_modcache(out, "kueue") as cache:
        _build(
            go,
            work,
            out=out / "kueue",
            package=f"{module}/cmd/kueue",
            ldflags=f"{_FLAGS} {stamp}",
            modcache=cache,
        )
        source = golang.module_dir(go, f"{module}@{versions.KUEUE}", cwd=work, modcache=cache)
        _copy_yaml(source / "config" / "components" / "crd" / "bases", out / "crds" / "kueue")


def kind(go: str, work: Path, out: Path) -> None:
    """kind itself, whose module also carries the base image's files (`images/base/files`)."""
    module = "sigs.k8s.io/kind"
    golang.write_module(work, "kind", f"\nrequire {module} {versions.KIND}\n")
    _build(go, work, out=out / "kind", package=module)
    source = golang.module_dir(go, f"{module}@{versions.KIND}", cwd=work)
    shutil.copytree(source / "images" / "base" / "files", out / "kind-base-files")
    for path in (out / "kind-base-files").rglob("*"):  # the module cache is read-only
        path.chmod(0o755 if path.is_dir() or path.stat().st_mode & 0o100 else 0o644)


def containerd(go: str, work: Path, out: Path) -> None:
    """containerd, ctr and the runc shim for the kind node image, static, without the
    snapshotters that need C libraries."""
    module = "github.com/containerd/containerd/v2"
    golang.write_module(work, "containerd", f"\nrequire {module} {versions.CONTAINERD}\n")
    stamp = (
        f"-X {module}/version.Version={versions.CONTAINERD} -X {module}/version.Package={module}"
    )
    for name in versions.CONTAINERD_BINARIES:
        golang.run(
            go,
            [
                "build",
                "-trimpath",
                "-tags=no_btrfs no_devmapper no_zfs no_aufs",
                f"-ldflags={_FLAGS} {stamp}",
                "-o",
                str(out / name),
                f"{module}/cmd/{name}",
            ],
            cwd=work,
        )


def _plain(module: str, version: str, package: str, name: str) -> Recipe:
    """A module without replace lines: require it, build one package."""

    def recipe(go: str, work: Path, out: Path) -> None:
        golang.write_module(work, name, f"\nrequire {module} {version}\n")
        _build(go, work, out=out / name, package=package)

    return recipe


coredns = _plain(
    "github.com/coredns/coredns", versions.COREDNS, "github.com/coredns/coredns", "coredns"
)
local_path = _plain(
    "github.com/rancher/local-path-provisioner",
    versions.LOCAL_PATH,
    "github.com/rancher/local-path-provisioner",
    "local-path-provisioner",
)
crictl = _plain(
    "sigs.k8s.io/cri-tools", versions.CRICTL, "sigs.k8s.io/cri-tools/cmd/crictl", "crictl"
)


def pause(go: str, work: Path, out: Path) -> None:
    """The pod sandbox: Kubernetes' own pause.c, linked statically (gcc, libc6-dev)."""
    golang.write_module(work, "pause")
    source = golang.module_dir(go, f"k8s.io/kubernetes@{versions.KUBERNETES}", cwd=work)
    gcc = shutil.which("gcc")
    if gcc is None:
        raise ClusterError("no gcc on PATH: apt-get install gcc libc6-dev (kind's pause image)")
    proc = subprocess.run(
        [
            gcc,
            "-Os",
            "-static",
            f"-DVERSION=v{versions.PAUSE_TAG}",
            "-o",
            str(out / "pause"),
            str(source / "build" / "pause" / "linux" / "pause.c"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ClusterError(f"gcc could not build pause.c: {proc.stderr.strip()[-400:]}")


def _copy_yaml(source: Path, target: Path) -> None:
    files = sorted(source.glob("*.yaml"))
    if not files:
        raise ClusterError(f"no CRD files in {source}; the build recipe needs updating")
    target.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copyfile(path, target / path.name)  # copyfile: the module cache is read-only
