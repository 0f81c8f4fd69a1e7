"""The real node's image archive, built from a stand-in busybox: layout, digests, links."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

from mlgen.cluster import image

APPLETS = ["bin/busybox", "bin/sh", "usr/bin/od", "sbin/ip", "usr/sbin/chroot", "linuxrc"]


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def read(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        extracted = tar.extractfile(name)
        assert extracted is not None
        return extracted.read()


def test_layer_holds_busybox_and_a_symlink_per_applet() -> None:
    layer = image.layer(b"\x7fELF fake", APPLETS)
    found = members(layer)
    assert read(layer, "bin/busybox") == b"\x7fELF fake"
    assert found["bin/busybox"].mode == 0o755
    for path in ("bin/sh", "usr/bin/od", "sbin/ip", "usr/sbin/chroot"):
        assert found[path].issym() and found[path].linkname == "/bin/busybox"
    assert "linuxrc" not in found  # only applets under bin, sbin and usr
    assert found["tmp"].mode == 0o1777
    assert all(m.mtime == 0 and m.uid == 0 for m in found.values())


def test_archive_is_a_docker_archive_with_both_images_on_one_layer() -> None:
    layer = image.layer(b"bb", APPLETS)
    data = image.archive(layer, image.ENTRYPOINTS)
    manifest = json.loads(read(data, "manifest.json"))
    assert sorted(tag for m in manifest for tag in m["RepoTags"]) == sorted(
        [image.PROBE, image.PAUSE]
    )
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    for entry in manifest:
        (layer_path,) = entry["Layers"]
        assert read(data, layer_path) == layer
        config_bytes = read(data, entry["Config"])
        assert entry["Config"] == hashlib.sha256(config_bytes).hexdigest() + ".json"
        config = json.loads(config_bytes)
        assert config["rootfs"] == {"type": "layers", "diff_ids": [diff_id]}
        assert config["config"]["Entrypoint"] == image.ENTRYPOINTS[entry["RepoTags"][0]]


def test_archive_is_byte_stable() -> None:
    layer = image.layer(b"bb", APPLETS)
    assert image.archive(layer, image.ENTRYPOINTS) == image.archive(
        image.layer(b"bb", list(reversed(APPLETS))), image.ENTRYPOINTS
    )
