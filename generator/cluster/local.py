"""The local control plane: real etcd, kube-apiserver, kube-controller-manager and
kube-scheduler from the cache, with KWOK simulating nodes and pod run times.

kwokctl's binary runtime starts and stops the processes; mlgen hands it the locally
built binaries (so nothing is downloaded), its own stage file, and a work directory
outside the user's kubeconfig. Every cluster gets a unique name and kwokctl picks free
loopback ports, so several clusters can run side by side; they are created one at a time
(a lock in mlgen's cache directory, whatever their work directories), because two kwokctl
runs at once can pick the same free port, and each then waits on the other's API server
(its certificate "signed by unknown authority") until it times out.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mlgen import versions
from mlgen.cluster import build, node
from mlgen.errors import ClusterError

Progress = Callable[[str], None]

STAGES = "stages/stages.yaml"
KWOK_NODES = "kwok.x-k8s.io/node=fake"  # the annotation pools.py gives every fake node


@dataclass(frozen=True)
class LocalCluster:
    name: str
    workdir: Path  # KWOK_WORKDIR: the cluster lives in <workdir>/clusters/<name>

    @property
    def home(self) -> Path:
        return self.workdir / "clusters" / self.name

    @property
    def kubeconfig(self) -> Path:
        return self.home / "kubeconfig.yaml"

    def pids(self) -> dict[str, int]:
        """The processes kwokctl started for this cluster, by component."""
        found: dict[str, int] = {}
        for pid_file in sorted((self.home / "pids").glob("*.pid")):
            text = pid_file.read_text().strip()
            if text.isdigit():
                found[pid_file.stem] = int(text)
        return found


def default_workdir() -> Path:
    """`$MLGEN_CLUSTER_WORKDIR`, else `<cache>/kwok` (CI points it at a throwaway dir)."""
    explicit = os.environ.get("MLGEN_CLUSTER_WORKDIR")
    return Path(explicit) if explicit else build.cache_root() / "kwok"


def stages_file() -> Path:
    return Path(str(resources.files("mlgen.cluster").joinpath(STAGES)))


def _env(bin_dir: Path, workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "KWOK_WORKDIR": str(workdir),
            "KWOK_RUNTIME": "binary",
            "KWOK_KUBE_VERSION": versions.KUBERNETES,
            "KWOK_KUBE_BINARY_PREFIX": str(bin_dir),
            "KWOK_ETCD_BINARY": str(bin_dir / "etcd"),
            "KWOK_CONTROLLER_BINARY": str(bin_dir / "kwok"),
            "KWOK_KUBECTL_BINARY": str(bin_dir / "kubectl"),
            "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return env


def _kwokctl(bin_dir: Path, workdir: Path, args: list[str], *, log: Path, timeout: float) -> None:
    with log.open("a") as sink:
        sink.write(f"$ kwokctl {' '.join(args)}\n")
        sink.flush()
        try:
            proc = subprocess.run(
                [str(bin_dir / "kwokctl"), *args],
                env=_env(bin_dir, workdir),
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as e:
            raise ClusterError(
                f"kwokctl {args[0]} {args[1]} did not finish in {timeout:.0f}s; see {log}"
            ) from e
    if proc.returncode != 0:
        tail = " | ".join(log.read_text().strip().splitlines()[-5:])
        raise ClusterError(
            f"kwokctl {args[0]} {args[1]} failed (exit {proc.returncode}): {tail}; full log: {log}"
        )


@contextlib.contextmanager
def _one_at_a_time() -> Iterator[None]:
    """Hold the create lock: until every port of the new cluster is bound, no other
    cluster of this user starts picking free ones."""
    path = build.cache_root() / "locks" / "cluster-create.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def up(
    *,
    name: str | None = None,
    workdir: Path | None = None,
    bin_dir: Path | None = None,
    progress: Progress = print,
    timeout: float = 120.0,
    real_node: bool = False,
    node_bin_dir: Path | None = None,
) -> LocalCluster:
    """Start a cluster and return it once the API server answers (and, with `real_node`,
    once the real node is Ready); raises ClusterError and leaves nothing running."""
    if real_node:
        node.require_tools()  # before minutes of work, not after
    binaries = bin_dir or build.ensure_binaries(progress=progress)
    kubelet_dir = (
        (node_bin_dir or build.ensure_group("node", progress=progress)) if real_node else None
    )
    build.require_group("control-plane", binaries)
    cluster = LocalCluster(
        name=name or f"mlgen-{secrets.token_hex(3)}", workdir=workdir or default_workdir()
    )
    if cluster.home.exists():
        raise ClusterError(
            f"a cluster named {cluster.name!r} already exists in "
            f"{cluster.workdir}; pick another name or run `mlgen cluster down "
            f"--name {cluster.name}`"
        )
    cluster.workdir.mkdir(parents=True, exist_ok=True)
    log = cluster.workdir / f"{cluster.name}.log"
    progress(
        f"cluster {cluster.name}: starting etcd, kube-apiserver, kube-controller-manager, "
        "kube-scheduler and kwok ..."
    )
    args = [
        "create",
        "cluster",
        "--name",
        cluster.name,
        "--runtime",
        "binary",
        "--config",
        str(stages_file()),
        "--kubeconfig",
        "",  # never touch ~/.kube/config
        "--kube-apiserver-binary",
        str(binaries / "kube-apiserver"),
        "--kube-controller-manager-binary",
        str(binaries / "kube-controller-manager"),
        "--kube-scheduler-binary",
        str(binaries / "kube-scheduler"),
        "--etcd-binary",
        str(binaries / "etcd"),
        "--kwok-controller-binary",
        str(binaries / "kwok"),
        "--disable-qps-limits",
        # A test cluster's data is thrown away: no fsync makes etcd far faster on CI disks.
        "--extra-args",
        "etcd=unsafe-no-fsync=true",
        # KWOK fakes only the nodes mlgen creates for it, never a real kubelet's node.
        "--extra-args",
        "kwok-controller=manage-all-nodes=false",
        "--extra-args",
        f"kwok-controller=manage-nodes-with-annotation-selector={KWOK_NODES}",
        # `kubectl logs` reaches a real kubelet by its IP; its host name resolves nowhere.
        "--extra-args",
        "kube-apiserver=kubelet-preferred-address-types=InternalIP,Hostname",
        "--wait",
        f"{int(timeout)}s",
    ]
    try:
        with _one_at_a_time():
            started = time.monotonic()  # the wait for another cluster's start is not ours
            _kwokctl(binaries, cluster.workdir, args, log=log, timeout=timeout + 30)
            if kubelet_dir is not None:
                node.start(
                    cluster.home,
                    cluster=cluster.name,
                    kubeconfig=cluster.kubeconfig,
                    kubelet=kubelet_dir / "kubelet",
                    progress=progress,
                )
    except BaseException:
        down(cluster, bin_dir=binaries, progress=lambda _: None)
        raise
    progress(
        f"cluster {cluster.name}: ready in {time.monotonic() - started:.1f}s; "
        f"kubeconfig {cluster.kubeconfig}"
    )
    return cluster


def down(cluster: LocalCluster, *, bin_dir: Path | None = None, progress: Progress = print) -> None:
    """Stop every process of the cluster and remove its files; safe to call twice."""
    binaries = bin_dir or build.bin_dir()
    # The real node first: its kubelet, containers and containerd, then the control plane.
    node.stop(cluster.home, progress=progress)
    pids = cluster.pids() if cluster.home.exists() else {}
    if cluster.home.exists() and (binaries / "kwokctl").exists():
        try:
            _kwokctl(
                binaries,
                cluster.workdir,
                ["delete", "cluster", "--name", cluster.name],
                log=cluster.workdir / f"{cluster.name}.log",
                timeout=60,
            )
        except ClusterError as e:
            progress(
                f"cluster {cluster.name}: kwokctl delete failed ({e}); killing its "
                "processes directly"
            )
    # kwokctl should have stopped them all; make sure, since a leftover etcd or
    # apiserver would hold ports and memory until the machine restarts.
    for pid in pids.values():
        _kill(pid)
    shutil.rmtree(cluster.home, ignore_errors=True)
    progress(f"cluster {cluster.name}: stopped")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it has exited all the same.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _kill(pid: int) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        if not alive(pid):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
