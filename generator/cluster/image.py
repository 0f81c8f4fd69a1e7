"""The real node's images, made locally: there is no registry to pull from.

Both images share one layer built from Debian's `busybox-static` — `/bin/busybox` and a
symlink per applet — and travel as one docker-archive tar (the `docker save` layout),
which `ctr images import` understands. `PROBE` runs the conformance probe (`sh`, `od`,
`sleep`, ...); `PAUSE` holds a pod's namespaces (containerd's `sandbox_image`).
Everything in the tar is fixed (mtime 0, root-owned), so the same busybox gives the
same image digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlgen.errors import ClusterError

PROBE = "mlgen.local/probe:busybox"
PAUSE = "mlgen.local/pause:busybox"
# What each image runs when a pod names no command.
ENTRYPOINTS: dict[str, list[str]] = {
    PROBE: ["/bin/sh"],
    # Sleeping is all a sandbox does; containerd stops it with SIGKILL.
    PAUSE: ["/bin/sleep", "2147483647"],
}
BUSYBOX = Path("/bin/busybox")
PACKAGES = "busybox-static"
_DIRS = ("bin", "dev", "etc", "proc", "sbin", "sys", "tmp", "usr", "usr/bin", "usr/sbin", "var")
_PATH = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"


def applets(busybox: Path = BUSYBOX) -> list[str]:
    """The applet paths busybox installs (`usr/bin/od`, `bin/sh`, ...)."""
    if not busybox.is_file():
        raise ClusterError(
            f"{busybox} not found: apt-get install {PACKAGES} (the real node's "
            "images are made from it)"
        )
    try:
        out = subprocess.run(
            [str(busybox), "--list-full"], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise ClusterError(f"{busybox} --list-full failed ({e}); is it Debian's {PACKAGES}?") from e
    return sorted({line.strip().lstrip("/") for line in out.splitlines() if line.strip()})


def layer(busybox: bytes, paths: Sequence[str]) -> bytes:
    """An uncompressed layer tar: the directories, bin/busybox, and a symlink per applet."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in _DIRS:
            tar.addfile(_info(name, tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755))
        info = _info("bin/busybox", tarfile.REGTYPE, 0o755)
        info.size = len(busybox)
        tar.addfile(info, io.BytesIO(busybox))
        for path in sorted(set(paths)):
            if path == "bin/busybox" or path.split("/")[0] not in ("bin", "sbin", "usr"):
                continue
            link = _info(path, tarfile.SYMTYPE, 0o777)
            link.linkname = "/bin/busybox"
            tar.addfile(link)
    return buffer.getvalue()


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, 0, 0, 0
    return info


def archive(layer_tar: bytes, entrypoints: Mapping[str, Sequence[str]]) -> bytes:
    """A docker-archive tar holding one image per tag, all on the one layer."""
    diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    layer_path = f"{diff_id.removeprefix('sha256:')}/layer.tar"
    files: dict[str, bytes] = {layer_path: layer_tar}
    manifest = []
    for tag, entrypoint in sorted(entrypoints.items()):
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Entrypoint": list(entrypoint), "Env": [_PATH], "WorkingDir": "/"},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [{"created_by": f"mlgen: {PACKAGES} rootfs"}],
            },
            sort_keys=True,
        ).encode()
        config_path = hashlib.sha256(config).hexdigest() + ".json"
        files[config_path] = config
        manifest.append({"Config": config_path, "RepoTags": [tag], "Layers": [layer_path]})
    files["manifest.json"] = json.dumps(manifest, sort_keys=True).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            if "/" in name:
                tar.addfile(_info(name.split("/")[0], tarfile.DIRTYPE, 0o755))
            info = _info(name, tarfile.REGTYPE, 0o644)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build(target: Path, *, busybox: Path = BUSYBOX) -> Path:
    """Write the probe and pause images as one docker-archive tar at `target`."""
    paths = applets(busybox)
    target.write_bytes(archive(layer(busybox.read_bytes(), paths), ENTRYPOINTS))
    return target


def load(tar: Path, *, ctr: str, address: Path, timeout: float = 120.0) -> None:
    """Import the archive into containerd's `k8s.io` namespace, where the CRI looks."""
    command = [ctr, "--address", str(address), "-n", "k8s.io", "images", "import", str(tar)]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        raise ClusterError(f"importing {tar} into containerd failed ({e})") from e
    if proc.returncode != 0:
        raise ClusterError(
            f"`ctr images import {tar}` failed (exit {proc.returncode}): "
            f"{proc.stderr.strip()}; see the containerd log next to it"
        )
