"""The real node on its host: processes started with a pid file and stopped by pid (never
by name, from any process), and what a killed container runtime leaves behind —
mounts, the bridge interface and the cgroup tree."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from mlgen.errors import ClusterError

_CGROUP_FS = ("cgroup", "cgroup2")


def which(*names: str) -> dict[str, str | None]:
    # Debian puts runc in /usr/sbin, which a non-login PATH may lack.
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return {name: shutil.which(name, path=path) for name in names}


def spawn(home: Path, name: str, argv: list[str]) -> int:
    """Start `argv` in its own session, logging to `<home>/<name>.log`; record its pid."""
    with (home / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    (home / "pids" / f"{name}.pid").write_text(str(proc.pid))
    return proc.pid


def wait_for(path: Path, *, what: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            tail = (
                " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
                if log.exists()
                else "no log"
            )
            raise ClusterError(
                f"{what} ({path}) did not appear in {timeout:.0f}s: {tail}; full log: {log}"
            )
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def kill(pid: int, *, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        if not alive(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


def stop(home: Path, name: str) -> None:
    pid_file = home / "pids" / f"{name}.pid"
    text = pid_file.read_text().strip() if pid_file.exists() else ""
    if text.isdigit():
        kill(int(text))
    pid_file.unlink(missing_ok=True)


def _parents() -> dict[int, int]:
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
            except OSError:
                continue
            found[int(entry.name)] = int(fields[1])
    return found


def kill_shims(address: Path) -> None:
    """SIGKILL every runc shim serving the containerd at `address`, and its containers."""
    shims = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and str(address).encode() in argv:
            shims.append(int(entry.name))
    if not shims:
        return
    parents = _parents()
    doomed, frontier = set(shims), list(shims)
    while frontier:
        pid = frontier.pop()
        children = [c for c, p in parents.items() if p == pid and c not in doomed]
        doomed.update(children)
        frontier.extend(children)
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(alive(p) for p in doomed) and time.monotonic() < deadline:
        time.sleep(0.05)


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first (from /proc/self/mountinfo)."""
    prefix = str(root.resolve())
    found = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as info:
        for line in info:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=lambda p: p.count("/"), reverse=True)


def unmount_under(root: Path) -> None:
    for point in mounts_under(root):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def remove_link(name: str) -> None:
    if Path(f"/sys/class/net/{name}").exists():
        subprocess.run(["ip", "link", "delete", name], capture_output=True, check=False)


def cgroup_mounts() -> list[Path]:
    found = []
    with contextlib.suppress(OSError), open("/proc/self/mounts") as mounts:
        for line in mounts:
            _, point, fs, *_ = line.split()
            if fs in _CGROUP_FS:
                found.append(Path(point))
    return found


def make_cgroup(root: str) -> None:
    """The kubelet wants its cgroup root to exist in every hierarchy before it starts."""
    for mount in cgroup_mounts():
        with contextlib.suppress(OSError):
            (mount / root.lstrip("/")).mkdir(exist_ok=True)


def remove_cgroup(root: str) -> None:
    """rmdir the tree bottom-up (cgroup directories are removed empty, files and all)."""
    for mount in cgroup_mounts():
        top = mount / root.lstrip("/")
        if not top.is_dir():
            continue
        dirs = sorted(
            (p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        )
        for path in [*dirs, top]:
            with contextlib.suppress(OSError):
                path.rmdir()
