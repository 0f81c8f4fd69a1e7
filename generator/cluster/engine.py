"""A Docker engine of mlgen's own, in a network namespace of its own, for real kind.

Debian's `dockerd` runs inside `/run/netns/<name>` (entered with `nsenter --net`, not
`ip netns exec`, which remounts /sys and hides the cgroup v1 hierarchies), so its bridge,
iptables rules and ip_forward stay in that namespace: the host's never change. kind,
kubectl and pytest run under the same `nsenter --net` (`Engine.command`), because kind
publishes the API server on the namespace's 127.0.0.1.

Two fixes this machine type needs live here (docs/real-kind.md, "Fixes this machine
type needs"): the default OCI runtime is `capfix`, which drops from each container the
capabilities missing from this sandbox's bounding set before it runs runc (Docker asks
for all of them for a privileged kind node, and runc fails "unable to apply caps"); and
the empty `/lib/modules` Docker creates on the host is removed again on stop.

`Engine` is a context manager: whatever happens inside, every container is removed,
dockerd and its containerd are stopped and the namespace is deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlgen.cluster import host
from mlgen.errors import ClusterError

Progress = Callable[[str], None]

PACKAGES = "docker.io"
_MODULES = Path("/lib/modules")


@dataclass(frozen=True)
class Engine:
    """One dockerd: its namespace, socket, state and data directories."""

    name: str  # the network namespace: /run/netns/<name>
    data_root: Path  # images and containers (kept, so built images are reused)
    run_dir: Path  # socket, pid file, exec root, log, the capfix wrapper

    @property
    def netns(self) -> Path:
        return Path("/run/netns") / self.name

    @property
    def socket(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "dockerd.pid"

    @property
    def log(self) -> Path:
        return self.run_dir / "dockerd.log"

    def environment(self) -> dict[str, str]:
        """The environment of a command that talks to this engine."""
        # The classic builder: BuildKit would try to pull its frontend image.
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}", "DOCKER_BUILDKIT": "0"}

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` inside the engine's network namespace."""
        return ["nsenter", f"--net={self.netns}", "--", *argv]

    def run(
        self, argv: Sequence[str], *, what: str, timeout: float = 600, stdin: bytes | None = None
    ) -> str:
        """Run a command inside the namespace against this engine; its stdout, or a
        ClusterError quoting its stderr."""
        try:
            proc = subprocess.run(
                self.command(argv),
                input=stdin,
                capture_output=True,
                env=self.environment(),
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise ClusterError(f"{what}: no answer in {timeout:.0f}s (`{' '.join(argv)}`)") from e
        if proc.returncode != 0:
            tail = " | ".join(proc.stderr.decode(errors="replace").strip().splitlines()[-4:])
            raise ClusterError(f"{what} failed (exit {proc.returncode}): {tail}")
        return proc.stdout.decode(errors="replace")


def require_tools() -> dict[str, str]:
    """dockerd, docker, nsenter and ip, or a ClusterError naming the packages to install."""
    found = host.which("dockerd", "docker", "nsenter", "ip", "runc")
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise ClusterError(
            f"real kind needs {', '.join(missing)}: apt-get install {PACKAGES} iproute2 "
            "util-linux runc"
        )
    if os.geteuid() != 0:
        raise ClusterError("real kind's Docker engine needs root (network namespaces, dockerd)")
    return {name: path for name, path in found.items() if path is not None}


def capfix_wrapper(run_dir: Path) -> Path:
    """An executable that dockerd runs as its OCI runtime: this package's capfix module
    under the current Python, then the real runc."""
    runc = host.which("runc")["runc"]
    if runc is None:
        raise ClusterError(f"no runc on PATH: apt-get install runc ({PACKAGES} needs it)")
    script = run_dir / "runc-capfix"
    module = Path(__file__).with_name("capfix.py")
    script.write_text(
        f'#!/bin/sh\nCAPFIX_RUNC="{runc}" exec "{sys.executable}" -I "{module}" "$@"\n'
    )
    script.chmod(0o755)
    return script


@contextlib.contextmanager
def running(engine: Engine, *, progress: Progress = print, timeout: float = 60) -> Iterator[Engine]:
    """Start the engine, yield it, and always stop it (containers, daemon, namespace)."""
    created_modules = not _MODULES.exists()
    start(engine, progress=progress, timeout=timeout)
    try:
        yield engine
    finally:
        stop(engine, progress=progress)
        if created_modules:
            with contextlib.suppress(OSError):
                _MODULES.rmdir()  # only if still empty: Docker made it, nothing else uses it


def start(engine: Engine, *, progress: Progress = print, timeout: float = 60) -> None:
    tools = require_tools()
    engine.run_dir.mkdir(parents=True, exist_ok=True)
    engine.data_root.mkdir(parents=True, exist_ok=True)
    if _pid(engine.pidfile) is not None:
        # Left by a run that was killed before it could stop it (SIGKILL, a crash).
        progress(f"stopping a leftover docker engine in netns {engine.name}")
        stop(engine, progress=progress)
    if not engine.netns.exists():
        _ip("netns", "add", engine.name)
    _ip("netns", "exec", engine.name, "ip", "link", "set", "lo", "up")
    argv = [
        tools["dockerd"],
        "--data-root",
        str(engine.data_root),
        "--exec-root",
        str(engine.run_dir / "exec"),
        "-H",
        f"unix://{engine.socket}",
        "--pidfile",
        str(engine.pidfile),
        "--storage-driver",
        "overlay2",
        "--add-runtime",
        f"capfix={capfix_wrapper(engine.run_dir)}",
        "--default-runtime",
        "capfix",
    ]
    with engine.log.open("ab") as log:
        subprocess.Popen(
            engine.command(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while True:
        if engine.socket.exists():
            probe = subprocess.run(
                engine.command([tools["docker"], "version", "--format", "{{.Server.Version}}"]),
                capture_output=True,
                text=True,
                env=engine.environment(),
                check=False,
            )
            if probe.returncode == 0:
                progress(f"docker engine {probe.stdout.strip()} up in netns {engine.name}")
                return
        if time.monotonic() > deadline:
            tail = " | ".join(engine.log.read_text(errors="replace").splitlines()[-4:])
            stop(engine, progress=progress)
            raise ClusterError(
                f"dockerd did not answer in {timeout:.0f}s: {tail}; full log: {engine.log}"
            )
        time.sleep(0.2)


def stop(engine: Engine, *, progress: Progress = print) -> None:
    """Remove every container, stop dockerd (and the containerd it started), delete the
    namespace. Safe to call twice, and after a failed start."""
    if engine.socket.exists():
        with contextlib.suppress(ClusterError):
            ids = engine.run(["docker", "ps", "-aq"], what="listing containers", timeout=30)
            if ids.split():
                engine.run(
                    ["docker", "rm", "-f", "-v", *ids.split()],
                    what="removing containers",
                    timeout=120,
                )
    pid = _pid(engine.pidfile)
    if pid is not None:
        host.kill(pid, grace=30.0)
    # dockerd's own containerd and shims are its children; a killed dockerd leaves them,
    # and each shim the container under it (a kind node: systemd, kubelet, etcd...).
    host.kill_shims(engine.run_dir / "exec" / "containerd" / "containerd.sock")
    for leftover in _processes_under(engine.run_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(leftover, signal.SIGKILL)
    host.unmount_under(engine.run_dir)
    host.unmount_under(engine.data_root)
    if engine.netns.exists():
        _ip("netns", "del", engine.name)
    with contextlib.suppress(FileNotFoundError):
        engine.pidfile.unlink()
    with contextlib.suppress(FileNotFoundError):
        engine.socket.unlink()
    progress(f"docker engine in netns {engine.name} stopped")


def _pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if host.alive(pid) else None


def _processes_under(run_dir: Path) -> list[int]:
    """Processes whose command line names the engine's run directory (containerd, shims)."""
    found = []
    marker = str(run_dir).encode() + b"/"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    return found


def _ip(*args: str) -> None:
    ip = shutil.which("ip") or "/sbin/ip"
    proc = subprocess.run([ip, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ClusterError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
