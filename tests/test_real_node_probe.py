"""The real node's pure parts: the probe script and its parser, and the node's
generated configs (the stand-ins that run the probe: test_standin.py)."""

from __future__ import annotations

import shutil
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

from mlgen.cluster import image, node, probe

from .test_delivery import ENV, HOSTILE

busybox = pytest.mark.skipif(
    shutil.which("busybox") is None and not image.BUSYBOX.is_file(),
    reason="needs busybox (apt-get install busybox-static)",
)


def run_probe(args: list[str], env: dict[str, str]) -> probe.Report:
    sh = str(image.BUSYBOX) if image.BUSYBOX.is_file() else str(shutil.which("busybox"))
    out = subprocess.run(
        [sh, "sh", "-c", probe.SCRIPT, probe.MARK, *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        check=True,
    )
    return probe.read(out.stdout.decode())


@busybox
def test_probe_reports_hostile_args_and_env_byte_for_byte() -> None:
    report = run_probe(HOSTILE, ENV)
    assert report.args == HOSTILE
    # uid and privileges are those of whoever runs the fast tests: not checked here.
    found = probe.mismatches(
        report, args=HOSTILE, env={**ENV, "ABSENT": None}, uid=report.uid, shm_bytes=None
    )
    assert [f for f in found if not f.startswith(("privilege", "has capabilities"))] == []


def test_mismatch_names_a_dropped_argument() -> None:
    report = probe.Report(
        uid=1000,
        no_new_privs=True,
        cap_eff="0000000000000000",
        shm_bytes=2048,
        args=["--lr", "1e-3"],
        env={"SEED": "1"},
    )
    found = probe.mismatches(
        report,
        args=["--lr", "two words", "1e-3"],
        env={"SEED": "1", "OTHER": None},
        uid=1000,
        shm_bytes=2048,
    )
    assert found == ["argument 1 'two words' was dropped: got '1e-3' (all args: ['--lr', '1e-3'])"]
    found = probe.mismatches(
        report, args=["--lr", "1e-3"], env={"SEED": "2"}, uid=0, shm_bytes=4096
    )
    assert found == [
        "env SEED is '1', expected '2'",
        "ran as uid 1000, expected 0",
        "/dev/shm is 2048 bytes, expected 4096",
    ]


def test_read_rejects_a_truncated_log() -> None:
    with pytest.raises(ValueError, match="not a complete"):
        probe.read(f"{probe.MARK} uid 1000\n{probe.MARK} arg 61\n")


def test_shm_size_follows_the_kubelet_rule() -> None:
    assert probe.shm_size("2Gi", pod_memory_limit=None, node_memory="16Gi") == 2 * 2**30
    assert probe.shm_size("16Gi", pod_memory_limit=None, node_memory="8Gi") == 8 * 2**30
    assert probe.shm_size("16Gi", pod_memory_limit="1Gi", node_memory="8Gi") == 2**30


def test_node_configs_keep_everything_under_the_node_home(tmp_path: Path) -> None:
    layout = node.Layout(home=tmp_path / "node", cluster="mlgen-abc123")
    config = tomllib.loads(node.containerd_config(layout))
    assert config["grpc"]["address"] == str(layout.socket)
    assert config["root"].startswith(str(layout.home))
    assert config["state"].startswith(str(layout.home))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == image.PAUSE and cri["restrict_oom_score_adj"] is True
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert len(layout.bridge) <= 15
    cni = node.cni_config(layout)
    assert cni["plugins"][0]["bridge"] == layout.bridge
    kubelet = node.kubelet_config(layout, address="192.0.2.2", port=12345)
    assert kubelet["cgroupDriver"] == "cgroupfs" and kubelet["failCgroupV1"] is False
    assert kubelet["registerWithTaints"] == [node.TAINT]
    assert kubelet["containerRuntimeEndpoint"] == f"unix://{layout.socket}"
    assert (
        node.Layout(home=tmp_path, cluster="other").subnet != layout.subnet
        or node.Layout(home=tmp_path, cluster="other").bridge != layout.bridge
    )


def test_missing_packages_are_named_with_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlgen.cluster import host
    from mlgen.errors import ClusterError

    monkeypatch.setattr(host, "which", lambda *names: dict.fromkeys(names))
    with pytest.raises(ClusterError) as raised:
        node.require_tools()
    message = str(raised.value)
    assert "containerd" in message and "runc" in message
    assert (
        "apt-get install -y --no-install-recommends containerd runc "
        "containernetworking-plugins busybox-static"
    ) in message


def test_up_with_a_real_node_checks_the_packages_before_building(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mlgen.cluster import build, host, local
    from mlgen.errors import ClusterError

    monkeypatch.setattr(host, "which", lambda *names: dict.fromkeys(names))
    monkeypatch.setattr(build, "ensure_binaries", lambda **_: pytest.fail("built first"))
    with pytest.raises(ClusterError, match="apt-get install"):
        local.up(workdir=tmp_path, real_node=True, progress=lambda _: None)
    assert not (tmp_path / "clusters").exists()


def test_kwok_manages_only_the_fake_nodes_and_the_apiserver_dials_kubelets_by_ip(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mlgen.cluster import build, local, pools

    calls: list[list[str]] = []
    monkeypatch.setattr(build, "ensure_binaries", lambda **_: tmp_path)
    monkeypatch.setattr(build, "is_built", lambda *_: True)
    monkeypatch.setattr(local, "_kwokctl", lambda _b, _w, args, **_: calls.append(args))
    local.up(workdir=tmp_path, progress=lambda _: None)
    extra = [calls[0][i + 1] for i, a in enumerate(calls[0]) if a == "--extra-args"]
    assert "kwok-controller=manage-all-nodes=false" in extra
    assert "kube-apiserver=kubelet-preferred-address-types=InternalIP,Hostname" in extra
    key, value = local.KWOK_NODES.split("=")
    assert f"kwok-controller=manage-nodes-with-annotation-selector={key}={value}" in extra
    (fake,) = pools.manifests([pools.Pool(pool="cpu", count=1, capacity={"cpu": "1"})])
    assert fake["metadata"]["annotations"][key] == value


def test_a_kubelet_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    from mlgen.cluster import host
    from mlgen.errors import ClusterError

    (tmp_path / "pids").mkdir()
    pid = host.spawn(tmp_path, "kubelet", ["sh", "-c", "echo 'bad flag --x' >&2; exit 1"])
    deadline = time.monotonic() + 10
    while host.alive(pid) and time.monotonic() < deadline:  # no client: it must be gone
        time.sleep(0.05)
    with pytest.raises(ClusterError, match=r"kubelet of real node n exited.*bad flag --x"):
        node.wait_ready(
            None,
            "n",
            timeout=10,
            kubelet_pid=pid,  # type: ignore[arg-type]
            log=tmp_path / "kubelet.log",
        )
    host.stop(tmp_path, "kubelet")
    assert not (tmp_path / "pids" / "kubelet.pid").exists()
