"""Build the local control plane's binaries from the Go module proxy, into a cache.

Nothing is downloaded but Go modules: etcd, the Kubernetes components and kwok are
compiled with `GOTOOLCHAIN=local` and `CGO_ENABLED=0`, version-stamped the way the
upstream release scripts stamp them, into `<cache>/<versions key>/`. A complete
directory is reused as is; a build writes into a scratch directory and renames it
into place only when every binary is there, so an interrupted build leaves no
half-filled cache behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mlgen.cluster import versions
from mlgen.errors import ClusterError

Progress = Callable[[str], None]

_MIN_GO = (1, 26)
_BUILD_DATE = "2026-01-01T00:00:00Z"  # fixed: identical inputs give identical binaries


def cache_root() -> Path:
    """`$MLGEN_CACHE_DIR`, else `$XDG_CACHE_HOME/mlgen`, else `~/.cache/mlgen`."""
    explicit = os.environ.get("MLGEN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "mlgen"


def bin_dir(root: Path | None = None) -> Path:
    """Where the binaries of the pinned versions live (whether built yet or not)."""
    return (root or cache_root()) / "bin" / versions.cache_key()


def is_built(directory: Path) -> bool:
    return all((directory / name).is_file() for name in versions.ALL_BINARIES)


def ensure_binaries(*, root: Path | None = None, progress: Progress = print) -> Path:
    """Return the directory holding every pinned binary, building what is missing."""
    target = bin_dir(root)
    if is_built(target):
        progress(f"binaries: cached in {target}")
        return target
    go = _go_binary()
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    started = time.monotonic()
    try:
        steps: list[tuple[str, Callable[[str, Path, Path], None]]] = [
            (f"etcd {versions.ETCD}", _build_etcd),
            (f"kwok, kwokctl {versions.KWOK}", _build_kwok),
            (f"Kubernetes {versions.KUBERNETES} (apiserver, controller-manager, "
             "scheduler, kubectl; the long one)", _build_kubernetes),
        ]
        for number, (label, step) in enumerate(steps, start=1):
            progress(f"binaries: [{number}/{len(steps)}] building {label} ...")
            t0 = time.monotonic()
            work = scratch / f"work-{number}"
            work.mkdir()
            step(go, work, scratch)
            shutil.rmtree(work, ignore_errors=True)
            progress(f"binaries: [{number}/{len(steps)}] done in {time.monotonic() - t0:.0f}s")
        missing = [n for n in versions.ALL_BINARIES if not (scratch / n).is_file()]
        if missing:
            raise ClusterError(f"the build finished without {', '.join(missing)}; "
                               "this is a bug in mlgen's build recipe")
        if target.exists():  # an incomplete leftover from an older mlgen
            shutil.rmtree(target)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    progress(f"binaries: built in {time.monotonic() - started:.0f}s into {target}")
    return target


def _go_binary() -> str:
    go = shutil.which("go")
    if go is None:
        raise ClusterError("no Go toolchain on PATH: install Go >= 1.26 "
                           "(the local cluster is built from source)")
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True,
                         env=_go_env(), check=False).stdout.strip()
    match = re.match(r"go(\d+)\.(\d+)", out)
    if not match or (int(match[1]), int(match[2])) < _MIN_GO:
        raise ClusterError(f"Go {out or '(unknown version)'} is too old: kwok "
                           f"{versions.KWOK} needs Go >= {_MIN_GO[0]}.{_MIN_GO[1]}")
    return go


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # local: never download a toolchain; no cgo: static binaries, no C compiler needed.
    env.update(GOTOOLCHAIN="local", CGO_ENABLED="0", GOFLAGS="-mod=mod")
    return env


def _go(go: str, args: list[str], *, cwd: Path) -> str:
    proc = subprocess.run([go, *args], cwd=cwd, env=_go_env(), capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-6:])
        hint = ""
        if re.search(r"dial tcp|proxy|no such host|connection refused|timeout", proc.stderr):
            hint = " (is the Go module proxy reachable? check GOPROXY and the network)"
        raise ClusterError(f"`go {' '.join(args[:3])} ...` failed in {cwd}{hint}: {tail}")
    return proc.stdout


def _write_module(work: Path, name: str, body: str) -> None:
    (work / "go.mod").write_text(f"module mlgen.local/{name}\n\ngo 1.26\n{body}")


def _build_etcd(go: str, work: Path, out: Path) -> None:
    # server/v3 carries replace lines of its own, so `go install` cannot build it:
    # a two-line main in a module of our own can.
    _write_module(work, "etcd", "")
    (work / "main.go").write_text(
        'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\n'
        "func main() { etcdmain.Main(os.Args) }\n")
    _go(go, ["get", f"go.etcd.io/etcd/server/v3@{versions.ETCD}"], cwd=work)
    _go(go, ["build", "-trimpath", "-ldflags=-s -w", "-o", str(out / "etcd"), "."], cwd=work)


def _build_kwok(go: str, work: Path, out: Path) -> None:
    _write_module(work, "kwok", "")
    _go(go, ["get", f"sigs.k8s.io/kwok@{versions.KWOK}"], cwd=work)
    consts = "sigs.k8s.io/kwok/pkg/consts"
    ldflags = " ".join([
        "-s -w",
        f"-X {consts}.Version={versions.KWOK.removeprefix('v')}",
        f"-X {consts}.KubeVersion={versions.KUBERNETES.removeprefix('v')}",
    ])
    for name in versions.KWOK_BINARIES:
        _go(go, ["build", "-trimpath", f"-ldflags={ldflags}", "-o", str(out / name),
                 f"sigs.k8s.io/kwok/cmd/{name}"], cwd=work)


def _staging_modules(go: str, work: Path) -> list[str]:
    """The k8s.io modules that k8s.io/kubernetes' go.mod points at ./staging."""
    info = json.loads(_go(go, ["mod", "download", "-json",
                               f"k8s.io/kubernetes@{versions.KUBERNETES}"], cwd=work))
    gomod = Path(info["GoMod"]).read_text()
    found = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", gomod, flags=re.M)
    if not found:
        raise ClusterError(f"no staging replacements found in k8s.io/kubernetes@"
                           f"{versions.KUBERNETES}'s go.mod; the build recipe needs updating")
    return sorted(set(found))


def _build_kubernetes(go: str, work: Path, out: Path) -> None:
    # k8s.io/kubernetes replaces its staging modules with local paths, which a
    # dependency's go.mod cannot do; point each at its published version instead.
    _write_module(work, "kubernetes", "")
    staging = _staging_modules(go, work)
    replaces = "".join(f"replace {m} => {m} {versions.STAGING}\n" for m in staging)
    _write_module(work, "kubernetes", f"\nrequire k8s.io/kubernetes {versions.KUBERNETES}\n\n"
                  + replaces)
    major, minor = versions.KUBERNETES.removeprefix("v").split(".")[:2]
    stamps = {"gitVersion": versions.KUBERNETES, "gitMajor": major, "gitMinor": minor,
              "gitTreeState": "clean", "buildDate": _BUILD_DATE}
    ldflags = ["-s -w"] + [f"-X {pkg}.{k}={v}" for pkg in
                           ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
                           for k, v in stamps.items()]
    _go(go, ["mod", "download", "k8s.io/kubernetes"], cwd=work)
    for name in versions.KUBE_BINARIES:
        package = f"k8s.io/kubernetes/cmd/{name}"
        _go(go, ["build", "-trimpath", f"-ldflags={' '.join(ldflags)}",
                 "-o", str(out / name), package], cwd=work)
