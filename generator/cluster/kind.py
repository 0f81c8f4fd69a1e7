"""Real kind on this machine: mlgen's own Docker engine with the locally built node image
loaded, and any command run beside it (`mlgen cluster docker -- COMMAND`).

The engine's images live in a data directory keyed by the kind group's versions, so the
node image is loaded once; containers never outlive the command. The command sees
`DOCKER_HOST`, the cached `kind` and `kubectl` first on PATH, and `MLGEN_KIND_NODE_IMAGE`
(the tag to give `--mlgen-kind-image`), and runs in the engine's network namespace,
where kind publishes its API servers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType

from mlgen import versions
from mlgen.cluster import build, engine, nodeimage
from mlgen.errors import ClusterError

Progress = Callable[[str], None]
NODE_IMAGE_ENV = "MLGEN_KIND_NODE_IMAGE"


def default_engine() -> engine.Engine:
    return engine.Engine(
        name="mlgen-kind",
        data_root=build.cache_root() / "docker" / versions.group_key("kind"),
        # Fixed, so that a run killed outright (SIGKILL) leaves a pid file the next finds.
        run_dir=Path("/run/mlgen-kind"),
    )


@contextlib.contextmanager
def ready(*, progress: Progress = print) -> Iterator[engine.Engine]:
    """The engine, started, with the node image loaded; stopped on the way out."""
    kind_dir = build.require_group("kind")
    docker = default_engine()
    with engine.running(docker, progress=progress) as running:
        try:
            running.run(
                ["docker", "image", "inspect", versions.KIND_NODE_IMAGE],
                what="looking for the node image",
                timeout=60,
            )
        except ClusterError:
            progress(f"loading {versions.KIND_NODE_IMAGE} into the engine (once per re-pin)")
            running.run(
                ["docker", "load", "-i", str(kind_dir / nodeimage.ARCHIVE)],
                what="loading the kind node image",
                timeout=1200,
            )
        yield running


def environment(docker: engine.Engine) -> dict[str, str]:
    """What a command beside the engine sees: DOCKER_HOST, kind and kubectl on PATH."""
    env = docker.environment()
    tools = [str(build.group_dir("kind")), str(build.group_dir("control-plane"))]
    env["PATH"] = os.pathsep.join([*tools, env.get("PATH", "")])
    env[NODE_IMAGE_ENV] = versions.KIND_NODE_IMAGE
    return env


def run_beside(argv: Sequence[str], *, progress: Progress = print) -> int:
    """Run `argv` in the engine's namespace; its exit code. The engine stops afterwards,
    also when the command fails or the user presses Ctrl-C (or CI sends SIGTERM)."""

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        with ready(progress=progress) as docker:
            # A process group of its own, so that an interrupt reaches the whole command
            # (pytest under `sh -c`, and the kind it runs), not only its first process.
            child = subprocess.Popen(
                docker.command(argv), env=environment(docker), start_new_session=True
            )
            try:
                return child.wait()
            except KeyboardInterrupt:
                _signal_group(child.pid, signal.SIGINT)
                try:
                    child.wait(timeout=120)  # pytest tears its kind cluster down
                except subprocess.TimeoutExpired:
                    _signal_group(child.pid, signal.SIGKILL)
                    child.wait()
                return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
