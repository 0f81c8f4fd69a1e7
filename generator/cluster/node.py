"""A real node beside the simulated ones: containerd and a kubelet that run real pods.

Everything lives under `<cluster home>/node/`: containerd's root, state and socket (so
nothing collides with a system containerd), the CNI config, the kubelet's root dir and
pod logs, and a pid file per process, so that `mlgen cluster down` from any process
stops them. The configs answer this VM's traps (see docs/local-cluster.md, "A real node"): cgroup
v1 without systemd, no CAP_SYS_RESOURCE, and an API server that reaches the kubelet by
IP. The node is tainted `mlgen.io/real-node=true:NoSchedule`, so only pods that ask
for it (toleration and node selector) ever land there; KWOK manages only fake nodes.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlgen import kube
from mlgen.cluster import host, image
from mlgen.errors import ClusterError

Progress = Callable[[str], None]

NAME = "mlgen-real-node"
TAINT = {"key": "mlgen.io/real-node", "value": "true", "effect": "NoSchedule"}
LABEL = "mlgen.io/real-node"
CNI_DIR = Path("/usr/lib/cni")
PACKAGES = "containerd runc containernetworking-plugins busybox-static"
# The fake GPU nodes offer 8; so does the real node, so GPU batches schedule on it too.
EXTENDED = {"nvidia.com/gpu": "8"}


@dataclass(frozen=True)
class Layout:
    """The node's files under a cluster's home directory."""

    home: Path  # <cluster home>/node
    cluster: str

    @property
    def socket(self) -> Path:
        return self.home / "containerd.sock"

    @property
    def bridge(self) -> str:
        # Linux interface names stop at 15 characters; the hash keeps clusters apart.
        return "mlgen" + _digest(self.cluster)[:6]

    @property
    def subnet(self) -> str:
        return f"10.88.{1 + int(_digest(self.cluster)[:4], 16) % 250}.0/24"

    @property
    def cgroup_root(self) -> str:
        return f"/mlgen-{self.cluster}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def host_ip() -> str:
    """The address other hosts would reach this one by (the kubelet rejects loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))  # UDP: nothing is sent
            address = str(probe.getsockname()[0])
        except OSError as e:
            raise ClusterError(
                f"the real node needs a non-loopback IPv4 address ({e}); "
                "bring up a network interface with a default route"
            ) from e
    if address.startswith("127."):
        raise ClusterError(
            "the real node needs a non-loopback IPv4 address; bring up a "
            "network interface with a default route"
        )
    return address


def containerd_config(layout: Layout) -> str:
    """containerd 1.6 config (version 2) with everything under the node's home."""
    home = layout.home
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return "\n".join(
        [
            "version = 2",
            f'root = "{home / "containerd" / "root"}"',
            f'state = "{home / "containerd" / "state"}"',
            "[grpc]",
            f'  address = "{layout.socket}"',
            "[ttrpc]",
            f'  address = "{layout.socket}.ttrpc"',
            '[plugins."io.containerd.internal.v1.opt"]',
            f'  path = "{home / "containerd" / "opt"}"',
            f"[{cri}]",
            f'  sandbox_image = "{image.PAUSE}"',
            # No CAP_SYS_RESOURCE here: runc must not try to lower oom_score_adj.
            "  restrict_oom_score_adj = true",
            # Pod network namespaces under the state dir too, where `stop` unmounts them.
            "  netns_mounts_under_state_dir = true",
            f"[{cri}.cni]",
            f'  bin_dir = "{CNI_DIR}"',
            f'  conf_dir = "{home / "cni"}"',
            f"[{cri}.containerd]",
            '  snapshotter = "overlayfs"',
            '  default_runtime_name = "runc"',
            f"[{cri}.containerd.runtimes.runc]",
            '  runtime_type = "io.containerd.runc.v2"',
            f"[{cri}.containerd.runtimes.runc.options]",
            "  SystemdCgroup = false",  # no systemd on this kind of host
            f'  Root = "{home / "runc"}"',
            "",
        ]
    )


def cni_config(layout: Layout) -> dict[str, Any]:
    """A bridge network of the node's own; no masquerading or port maps, so no iptables."""
    return {
        "cniVersion": "0.4.0",
        "name": f"mlgen-{layout.cluster}",
        "plugins": [
            {
                "type": "bridge",
                "bridge": layout.bridge,
                "isGateway": True,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": layout.subnet}]],
                    "dataDir": str(layout.home / "cni-ipam"),
                },
            },
            {"type": "loopback"},
        ],
    }


def kubelet_config(layout: Layout, *, address: str, port: int) -> dict[str, Any]:
    """KubeletConfiguration for a throwaway node on a cgroup v1 host without systemd."""
    endpoint = f"unix://{layout.socket}"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": address,
        "port": port,
        "readOnlyPort": 0,
        "healthzPort": 0,
        # The API server has no kubelet client certificate: a test node trusts it.
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": layout.cgroup_root,
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": endpoint,
        "imageServiceEndpoint": endpoint,
        "podLogsDir": str(layout.home / "pod-logs"),
        "volumePluginDir": str(layout.home / "volume-plugins"),
        "registerWithTaints": [TAINT],
        # The images are imported, not pulled: never garbage-collect them, never evict.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "1Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "resolvConf": "/etc/resolv.conf" if Path("/etc/resolv.conf").exists() else "",
    }


def require_tools() -> dict[str, str]:
    """containerd, its runc shim, ctr, runc and the CNI plugins, found or a named fix."""
    found = host.which("containerd", "containerd-shim-runc-v2", "ctr", "runc")
    missing = [name for name, path in found.items() if not path]
    if not (CNI_DIR / "bridge").is_file():
        missing.append(f"{CNI_DIR}/bridge")
    if not image.BUSYBOX.is_file():
        missing.append(str(image.BUSYBOX))
    if missing:
        raise ClusterError(
            f"the real node needs {', '.join(missing)}: apt-get install -y "
            f"--no-install-recommends {PACKAGES}"
        )
    return {k: v for k, v in found.items() if v}


def start(
    cluster_home: Path,
    *,
    cluster: str,
    kubeconfig: Path,
    kubelet: Path,
    progress: Progress = print,
    timeout: float = 60.0,
) -> str:
    """Start containerd and a kubelet joined to the cluster; return the node name once
    Ready. On failure everything started so far is stopped again."""
    tools = require_tools()
    if not kubelet.is_file():
        raise ClusterError(f"{kubelet} not found: run `mlgen cluster build`")
    layout = Layout(home=cluster_home / "node", cluster=cluster)
    if len(str(layout.socket)) > 100:
        raise ClusterError(
            f"{layout.socket}: too long for a unix socket; use a shorter "
            "--workdir (or MLGEN_CLUSTER_WORKDIR)"
        )
    started = time.monotonic()
    try:
        pid = _start(
            layout,
            tools=tools,
            kubeconfig=kubeconfig,
            kubelet=kubelet,
            progress=progress,
            timeout=timeout,
        )
        client = kube.connect(kubeconfig=kubeconfig)
        wait_ready(client, NAME, timeout=timeout, kubelet_pid=pid, log=layout.home / "kubelet.log")
        advertise(client, NAME, EXTENDED)
    except BaseException:
        stop(cluster_home, progress=lambda _: None)
        raise
    progress(
        f"real node {NAME}: Ready in {time.monotonic() - started:.1f}s (containerd, "
        f"kubelet; logs in {layout.home})"
    )
    return NAME


def _start(
    layout: Layout,
    *,
    tools: dict[str, str],
    kubeconfig: Path,
    kubelet: Path,
    progress: Progress,
    timeout: float,
) -> int:
    home = layout.home
    for sub in ("cni", "containerd", "kubelet", "pod-logs", "pids"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    (home / "containerd.toml").write_text(containerd_config(layout))
    (home / "cni" / "10-mlgen.conflist").write_text(json.dumps(cni_config(layout), indent=2))
    host.make_cgroup(layout.cgroup_root)
    progress(f"real node {NAME}: starting containerd ...")
    host.spawn(home, "containerd", [tools["containerd"], "--config", str(home / "containerd.toml")])
    host.wait_for(
        layout.socket, what="containerd's socket", log=home / "containerd.log", timeout=timeout
    )
    archive = image.build(home / "images.tar")
    image.load(archive, ctr=tools["ctr"], address=layout.socket)
    address = host_ip()
    config = kubelet_config(layout, address=address, port=host.free_port())
    (home / "kubelet.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    progress(f"real node {NAME}: starting the kubelet on {address} ...")
    return host.spawn(
        home,
        "kubelet",
        [
            str(kubelet),
            "--config",
            str(home / "kubelet.yaml"),
            "--kubeconfig",
            str(kubeconfig),
            "--hostname-override",
            NAME,
            "--node-ip",
            address,
            "--root-dir",
            str(home / "kubelet"),
            "--node-labels",
            f"{LABEL}=true",
        ],
    )


def wait_ready(
    client: kube.Kube,
    name: str,
    *,
    timeout: float,
    kubelet_pid: int | None = None,
    log: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if kubelet_pid is not None and not host.alive(kubelet_pid):
            tail = (
                " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
                if log is not None and log.exists()
                else "no log"
            )
            raise ClusterError(
                f"the kubelet of real node {name} exited; the end of its log: {tail}"
            )
        with kube.errors(f"reading node {name}"):
            nodes = client.core.list_node(field_selector=f"metadata.name={name}").items
        conditions = nodes[0].status.conditions or [] if nodes else []
        if any(c.type == "Ready" and c.status == "True" for c in conditions):
            return
        if time.monotonic() > deadline:
            said = "; ".join(f"{c.type}={c.status} ({c.message})" for c in conditions)
            raise ClusterError(
                f"real node {name} not Ready after {timeout:.0f}s "
                f"({said or 'not registered'}); see kubelet.log in the "
                "cluster's node directory"
            )
        time.sleep(0.2)


def advertise(client: kube.Kube, name: str, resources: dict[str, str]) -> None:
    """Extended resources the kubelet has no device plugin for; it keeps what is patched."""
    body = {"status": {"capacity": resources, "allocatable": resources}}
    with kube.errors(f"advertising {', '.join(resources)} on node {name}"):
        client.core.patch_node_status(name, body)


def stop(cluster_home: Path, *, progress: Progress = print) -> None:
    """Stop the kubelet, every container, and containerd; unmount and remove what they
    left. Safe to call when nothing (or only part) was started."""
    layout = Layout(home=cluster_home / "node", cluster=cluster_home.name)
    if not layout.home.exists():
        return
    host.stop(layout.home, "kubelet")
    # Containers outlive containerd (each has its own shim): stop them by their shims.
    host.kill_shims(layout.socket)
    host.stop(layout.home, "containerd")
    host.unmount_under(layout.home)
    host.remove_link(layout.bridge)
    host.remove_cgroup(layout.cgroup_root)
    progress(f"real node {NAME}: stopped")
