"""Long-running helper processes of the GitOps harness (controllers, redis): started on
free loopback ports with their output in a log file, and always stopped.

A process that dies while we wait for it to come up is reported with the tail of its
log, which is where the reason is.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from mlgen.errors import ClusterError

_G = TypeVar("_G", bound="Group")


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 8) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:])

    def rss_mib(self) -> float:
        """Resident memory now, from /proc (Linux; 0 if unknown)."""
        try:
            for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def stop(self, *, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; the whole process group."""
        if not self.alive():
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=grace)
        except ProcessLookupError:
            pass


class Group:
    """What a set of helper processes (the Flux controllers, Argo CD's parts) shares:
    stop them all, newest first (also on leaving a `with` block), and read their memory."""

    processes: list[Process]

    def __enter__(self: _G) -> _G:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def rss_mib(self) -> dict[str, float]:
        """Resident memory of each live process now, from /proc (Linux)."""
        return {p.name: p.rss_mib() for p in self.processes if p.alive()}


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(
    name: str, argv: Sequence[str], *, logs: Path, env: Mapping[str, str] | None = None
) -> Process:
    """Start `argv` in its own process group, stdout and stderr into `logs/<name>.log`."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        try:
            popen = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env or os.environ),
                cwd=logs,
                start_new_session=True,
            )
        except OSError as e:
            raise ClusterError(
                f"cannot start {name} ({argv[0]}): {e}; run `mlgen cluster "
                "build` (or install it) first"
            ) from e
    process = Process(name=name, popen=popen, log=log)
    # Callers stop their processes in a finally; this covers an exit that skips it.
    atexit.register(process.stop)
    return process


def wait_ready(
    process: Process, *, url: str | None = None, port: int | None = None, timeout: float = 60.0
) -> None:
    """Wait until `url` answers 200 (or `port` accepts connections) while the process lives."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise ClusterError(
                f"{process.name} exited with code {process.popen.returncode} "
                f"while starting; its log {process.log} ends: {process.tail()}"
            )
        if _answers(url=url, port=port):
            return
        time.sleep(0.2)
    raise ClusterError(
        f"{process.name} was not ready after {timeout:.0f}s; see its log "
        f"{process.log}: {process.tail()}"
    )


def _answers(*, url: str | None, port: int | None) -> bool:
    if url is not None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port or 0)) == 0
