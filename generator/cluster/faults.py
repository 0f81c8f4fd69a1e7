"""Faults for the local control plane: stop one component and start it again as it was.

A component is relaunched from what the kernel knows of the running process
(`/proc/<pid>/cmdline`, `environ`, `cwd`), so nothing here repeats kwokctl's flags; the
new pid replaces the old one in `<home>/pids/<component>.pid`, so `mlgen cluster down`
stops the new process like the first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from mlgen.errors import ClusterError


@dataclass(frozen=True)
class Launch:
    """How a component was started: enough to start it again."""

    component: str
    argv: list[str]
    env: dict[str, str]
    cwd: str


def home_of(kubeconfig: Path) -> Path:
    """The cluster directory of a local cluster (its kubeconfig lives at the top)."""
    return kubeconfig.resolve().parent


def stop(home: Path, component: str, *, sig: int = signal.SIGKILL) -> Launch:
    """Kill one component (SIGKILL by default: a crash, not a shutdown); return its launch."""
    pid_file = home / "pids" / f"{component}.pid"
    try:
        pid = int(pid_file.read_text().strip())
        argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except (OSError, ValueError) as e:
        raise ClusterError(f"{pid_file}: no running {component} to stop ({e})") from e
    env = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
    os.kill(pid, sig)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return Launch(component=component, argv=argv, env=env, cwd=cwd)


def start(home: Path, launch: Launch) -> int:
    """Start a stopped component again, logging where it logged; return its pid."""
    log = home / "logs" / f"{launch.component}.log"
    with open(log if log.parent.is_dir() else os.devnull, "ab") as out:
        process = subprocess.Popen(
            launch.argv,
            env=launch.env,
            cwd=launch.cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    (home / "pids" / f"{launch.component}.pid").write_text(f"{process.pid}\n")
    return process.pid


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][:1] not in ("Z", "X")
    except OSError:
        return False
