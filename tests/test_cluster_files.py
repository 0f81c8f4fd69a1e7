"""The local cluster's pieces that need no cluster: pinned versions, build errors, stage
file consistency, node pools."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlgen import versions
from mlgen.cluster import build, local, pools
from mlgen.errors import ClusterError, UsageError

ROOT = Path(__file__).resolve().parents[1]


def test_versions_live_in_one_place_and_key_the_cache() -> None:
    assert versions.cache_key() == (
        f"k8s-{versions.KUBERNETES}_etcd-{versions.ETCD}_kwok-{versions.KWOK}"
    )
    assert versions.KUBERNETES.startswith("v1.36.") and versions.ETCD.startswith("v3.6.")
    assert versions.KWOK == "v0.8.0" and "v0." + versions.KUBERNETES[3:] == versions.STAGING
    pinned = [versions.KUBERNETES, versions.ETCD, versions.KWOK]
    documents = [ROOT / "README.md", *ROOT.glob("docs/*.md")]
    for path in [*ROOT.glob(".ci/*"), *ROOT.glob("generator/**/*.py"), *documents]:
        if path == ROOT / "generator" / "versions.py" or not path.is_file():
            continue
        text = path.read_text()
        if path.name == "real-kind.md":  # its pins table, kept true by test_ci_files
            text = "\n".join(
                line
                for line in text.splitlines()
                if not line.startswith(("| node image |", "| Kubernetes |"))
            )
        assert not any(v in text for v in pinned), f"{path} repeats a pinned version"


def test_cache_location_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MLGEN_CACHE_DIR", str(tmp_path))
    assert build.bin_dir() == tmp_path / "bin" / versions.cache_key()
    assert not build.is_built(build.bin_dir())
    monkeypatch.delenv("MLGEN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert build.cache_root() == tmp_path / "xdg" / "mlgen"


def test_missing_go_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ClusterError, match=r"no Go toolchain on PATH: install Go >= 1.26"):
        build.ensure_binaries(root=tmp_path, progress=lambda _: None)
    assert not list((tmp_path / "bin").glob("*")) if (tmp_path / "bin").exists() else True


def test_old_go_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "go"
    fake.write_text("#!/bin/sh\necho go1.21.0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ClusterError, match=r"Go go1.21.0 is too old"):
        build.ensure_binaries(root=tmp_path, progress=lambda _: None)


def test_unreachable_module_proxy_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import shutil

    go = shutil.which("go")
    if go is None:
        pytest.skip("no Go toolchain here; the test needs one to reach the proxy step")
    monkeypatch.setenv("GOPROXY", "http://127.0.0.1:9")  # nothing listens on discard
    monkeypatch.setenv("GOFLAGS", "")
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "modcache"))
    with pytest.raises(ClusterError, match=r"module proxy reachable"):
        build.ensure_binaries(root=tmp_path / "cache", progress=lambda _: None)
    assert not build.is_built(build.bin_dir(tmp_path / "cache"))
    assert not [p for p in (tmp_path / "cache" / "bin").iterdir()], "no half-built cache"


def _stages() -> dict[str, dict[str, object]]:
    docs = yaml.safe_load_all(local.stages_file().read_text())
    return {d["metadata"]["name"]: d for d in docs}


def test_stage_file_covers_the_whole_lifecycle_without_jitter() -> None:
    stages = _stages()
    assert set(stages) == {
        "mlgen-node-initialize",
        "mlgen-node-heartbeat",
        "mlgen-pod-start",
        "mlgen-pod-succeed",
        "mlgen-pod-fail",
        "mlgen-pod-stop",
        "mlgen-pod-delete",
    }
    text = local.stages_file().read_text()
    assert "jitter" not in text.replace("No stage has a jitter", "").replace(
        "a jitter not larger", ""
    )


def test_succeed_and_fail_stages_are_exact_complements() -> None:
    stages = _stages()
    succeed = stages["mlgen-pod-succeed"]["spec"]
    fail = stages["mlgen-pod-fail"]["spec"]
    assert succeed["delay"] == fail["delay"]  # type: ignore[index]
    s_exprs = succeed["selector"]["matchExpressions"]  # type: ignore[index]
    f_exprs = fail["selector"]["matchExpressions"]  # type: ignore[index]
    assert [e["key"] for e in s_exprs] == [e["key"] for e in f_exprs]
    assert s_exprs[-1]["values"] == ["no"] and f_exprs[-1]["values"] == ["yes"]


def test_node_pools_become_kwok_nodes_with_capacity() -> None:
    described = pools.load()
    manifests = pools.manifests(described)
    assert len(manifests) == sum(p.count for p in described)
    gpu = [n for n in manifests if "nvidia.com/gpu" in n["status"]["capacity"]]
    assert gpu and all(
        n["metadata"]["annotations"] == {"kwok.x-k8s.io/node": "fake"} for n in manifests
    )
    assert gpu[0]["spec"]["taints"][0]["key"] == "nvidia.com/gpu"


def test_bad_node_file_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "nodes.yaml"
    bad.write_text("- pool: x\n")
    with pytest.raises(UsageError, match="each entry needs pool, count and capacity"):
        pools.load(bad)
