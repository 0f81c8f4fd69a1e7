"""kind's node image, made offline with kind's own `kind build node-image`.

Nothing is pulled: every image a kind node runs is made here from binaries the cache
already holds (the control plane, kubelet, and the kind group's Go builds) and from a
Debian rootfs (`debootstrap`, Debian's packages):

- the base image: kind v0.33's `images/base` layout (its files ship in kind's module) on
  a Debian bookworm rootfs, with containerd built from the proxy and three changes this
  machine type needs: `restrict_oom_score_adj` (a negative oom_score_adj is refused),
  `--fail-cgroupv1=false` for the kubelet (the host is cgroup v1) and ip_forward on;
- kube-apiserver, -controller-manager, -scheduler, kube-proxy, etcd, coredns, pause,
  local-path-provisioner and its helper, a CNI daemon, and busybox for the suite's
  stand-in containers, each FROM scratch (kube-proxy on the rootfs, for iptables);
- `kind build node-image --type file` then reads a `kubernetes-server-linux-amd64.tar.gz`
  assembled here. It pulls any image not in its four kube tarballs, so kube-proxy.tar
  carries every other image too, named as kind and kubeadm spell them.

Substitutions (each also in docs/real-kind.md): kindnetd is refused by the Go module proxy, so
`CNI_DAEMON` stands in (routes plus a ptp/host-local CNI config, polled); coredns v1.14.3
and etcd `versions.ETCD` carry the names kubeadm asks for; local-path-provisioner
`versions.LOCAL_PATH`; busybox is Debian's busybox-static under Docker Hub's tags.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from mlgen import versions
from mlgen.cluster import engine
from mlgen.errors import ClusterError

Progress = Callable[[str], None]
GroupDir = Callable[[str], Path]

ARCHIVE = "kind-node.tar"  # the node image, `docker save`d into the kind group's cache
MIRROR = os.environ.get("MLGEN_DEBIAN_MIRROR", "http://deb.debian.org/debian")
ROOTFS_PACKAGES = [
    "conntrack",
    "iptables",
    "nftables",
    "iproute2",
    "ethtool",
    "util-linux",
    "mount",
    "kmod",
    "libseccomp2",
    "pigz",
    "fuse-overlayfs",
    "e2fsprogs",
    "bash",
    "ca-certificates",
    "curl",
    "jq",
    "procps",
    "runc",
    "containernetworking-plugins",
]
BASE = "mlgen.local/kind-base:" + versions.DEBIAN_SUITE
# The suite's stand-in image on kind (Docker Hub's name; Debian's busybox-static here).
BUSYBOX_TAGS = (versions.STANDIN_IMAGE, "busybox:1.36", "busybox:latest")
# kind v0.33's add-on images, as its node-image build names them (pkg/build/nodeimage).
KINDNETD = "docker.io/kindest/kindnetd:v20260820-69b56db7"
LOCAL_PATH = "docker.io/kindest/local-path-provisioner:v20260820-69b56db7"
LOCAL_PATH_HELPER = "docker.io/kindest/local-path-helper:v20260131-7181c60a"

# What kindnetd does for a kind cluster without egress: this node's ptp/host-local CNI
# config for its podCIDR, and a route to every other node's podCIDR via that node.
CNI_DAEMON = Path(__file__).with_name("cni-daemon.sh")

# kube-proxy's iptables: the backend the node already uses (the one with more rules), the
# way Kubernetes' own iptables-wrapper picks it, decided once per container.
IPTABLES_WRAPPER = """#!/bin/sh
legacy=$( (iptables-legacy-save; ip6tables-legacy-save) 2>/dev/null | grep -c '^-')
nft=$( (timeout 5 sh -c 'iptables-nft-save; ip6tables-nft-save') 2>/dev/null | grep -c '^-')
if [ "${legacy:-0}" -ge "${nft:-0}" ]; then mode=legacy; else mode=nft; fi
for x in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -sf "/usr/sbin/${x%%-*}-$mode${x#${x%%-*}}" "/usr/sbin/$x"
done
exec "$0" "$@"
"""
_IPTABLES = (
    "iptables",
    "iptables-save",
    "iptables-restore",
    "ip6tables",
    "ip6tables-save",
    "ip6tables-restore",
)


def recipe(group_dir: GroupDir, *, progress: Progress = print) -> Callable[[str, Path, Path], None]:
    """The kind group's last step: `(go, work, out)` writing `out/ARCHIVE`."""

    def build(go: str, work: Path, out: Path) -> None:
        del go
        make(
            work,
            out,
            control_plane=group_dir("control-plane"),
            node=group_dir("node"),
            progress=progress,
        )

    return build


def make(work: Path, out: Path, *, control_plane: Path, node: Path, progress: Progress) -> None:
    """Build the node image in a throwaway engine and save it to `out/ARCHIVE`."""
    if shutil.which("debootstrap") is None:
        raise ClusterError("no debootstrap: apt-get install debootstrap (kind's base rootfs)")
    rootfs = work / "rootfs"
    t0 = time.monotonic()
    debootstrap(rootfs)
    progress(f"kind: Debian {versions.DEBIAN_SUITE} rootfs in {time.monotonic() - t0:.0f}s")
    build_engine = engine.Engine(
        name="mlgen-kind-build", data_root=work / "docker", run_dir=Path("/run/mlgen-kind-build")
    )
    with engine.running(build_engine, progress=progress) as docker:
        base_image(docker, rootfs, work / "base", kind_group=out)
        progress("kind: base image done")
        server = server_tarball(
            docker, work, rootfs=rootfs, kind_group=out, control_plane=control_plane, node=node
        )
        progress("kind: component images done; running `kind build node-image`")
        docker.run(
            [
                str(out / "kind"),
                "build",
                "node-image",
                "--type",
                "file",
                str(server),
                "--base-image",
                BASE,
                "--image",
                versions.KIND_NODE_IMAGE,
            ],
            what="kind build node-image",
            timeout=1800,
        )
        docker.run(
            ["docker", "save", "-o", str(out / ARCHIVE), versions.KIND_NODE_IMAGE],
            what="saving the node image",
            timeout=900,
        )
    shutil.rmtree(build_engine.run_dir, ignore_errors=True)


def debootstrap(rootfs: Path) -> None:
    """A minimal bookworm with systemd and the packages kind's base image installs."""
    _run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=systemd,systemd-sysv",
            versions.DEBIAN_SUITE,
            str(rootfs),
            MIRROR,
        ],
        what="debootstrap",
        timeout=1800,
    )
    shutil.copyfile("/etc/resolv.conf", rootfs / "etc" / "resolv.conf")
    policy = rootfs / "usr" / "sbin" / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")  # no service starts inside the chroot
    policy.chmod(0o755)
    with _proc_mounted(rootfs):
        _run(
            [
                "chroot",
                str(rootfs),
                "sh",
                "-c",
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                f"--no-install-recommends {' '.join(ROOTFS_PACKAGES)} && apt-get clean && "
                "rm -rf /var/lib/apt/lists/*",
            ],
            what="installing the base image's packages",
            timeout=1800,
        )
    policy.unlink()


def base_image(docker: engine.Engine, rootfs: Path, base: Path, *, kind_group: Path) -> None:
    """kind's base image on the rootfs, imported as `BASE` (STOPSIGNAL set by a build)."""
    files = kind_group / "kind-base-files"
    _copy_tree(rootfs, base)
    shutil.copytree(
        files / "usr" / "local" / "bin", base / "usr" / "local" / "bin", dirs_exist_ok=True
    )
    for script in (files / "usr" / "local" / "bin").iterdir():  # kind's Dockerfile: 0755
        (base / "usr" / "local" / "bin" / script.name).chmod(0o755)
    shutil.copytree(files / "kind", base / "kind", dirs_exist_ok=True)
    for path in (base / "kind").rglob("*"):
        path.chmod(0o755 if path.is_dir() or path.parent.name == "bin" else 0o644)
    shutil.copytree(files / "etc", base / "etc", dirs_exist_ok=True)
    etc = base / "etc"
    config = etc / "containerd" / "config.toml"
    config.write_text(
        config.read_text()
        # A negative oom_score_adj is refused on this machine type, even for root.
        .replace("restrict_oom_score_adj = false", "restrict_oom_score_adj = true")
        # kubeadm 1.36 wants the newer pause; kind's config names 3.10.
        .replace('registry.k8s.io/pause:3.10"', f'registry.k8s.io/pause:{versions.PAUSE_TAG}"')
    )
    kubelet = etc / "default" / "kubelet"
    # kubelet >= 1.35 refuses a cgroup v1 host unless told: the image says so, so that
    # kind-config.yaml stays as users have it.
    kubelet.write_text(
        kubelet.read_text().replace(
            "KUBELET_EXTRA_ARGS=", "KUBELET_EXTRA_ARGS=--fail-cgroupv1=false ", 1
        )
    )
    # A new netns inherits ip_forward from the init namespace, which is 0 here.
    (etc / "sysctl.d" / "99-mlgen-ip-forward.conf").write_text("net.ipv4.ip_forward=1\n")
    local_bin = base / "usr" / "local" / "bin"
    for name in (*versions.CONTAINERD_BINARIES, "crictl"):
        shutil.copyfile(kind_group / name, local_bin / name)
        (local_bin / name).chmod(0o755)
    cni = base / "opt" / "cni" / "bin"
    cni.mkdir(parents=True, exist_ok=True)
    for plugin in ("host-local", "loopback", "ptp", "portmap", "bridge"):
        shutil.copyfile(rootfs / "usr" / "lib" / "cni" / plugin, cni / plugin)
        (cni / plugin).chmod(0o755)
    spec = json.loads(_run([str(kind_group / "ctr"), "oci", "spec"], what="ctr oci spec"))
    spec.setdefault("hooks", {}).setdefault("createContainer", []).append(
        {"path": "/kind/bin/mount-product-files.sh"}
    )
    spec.get("process", {}).pop("rlimits", None)
    (etc / "containerd" / "cri-base.json").write_text(json.dumps(spec, indent=2))
    # kind's base Dockerfile, the systemd part: only what a node runs is enabled.
    with _proc_mounted(base):
        _run(
            [
                "chroot",
                str(base),
                "sh",
                "-ec",
                "find /lib/systemd/system/sysinit.target.wants/ "
                "-name systemd-tmpfiles-setup.service -delete; "
                "rm -f /lib/systemd/system/multi-user.target.wants/* "
                "/etc/systemd/system/*.wants/* /lib/systemd/system/local-fs.target.wants/* "
                "/lib/systemd/system/sockets.target.wants/*udev* "
                "/lib/systemd/system/sockets.target.wants/*initctl* "
                "/lib/systemd/system/basic.target.wants/*; "
                "echo ReadKMsg=no >> /etc/systemd/journald.conf; "
                "ln -sf /usr/lib/systemd/systemd /sbin/init; "
                "systemctl enable kubelet.service containerd.service undo-mount-hacks.service; "
                "systemctl mask systemd-binfmt.service; mkdir -p /etc/kubernetes/manifests",
            ],
            what="enabling the node's services",
        )
    for name in ("resolv.conf", "hostname"):
        (etc / name).unlink(missing_ok=True)
    imported = f"{BASE}-imported"
    _import(
        docker,
        imported,
        _tar_of(base),
        changes=[
            "ENV container=docker",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
        ],
    )
    # `docker import --change` cannot set STOPSIGNAL; the classic builder can, offline.
    dockerfile = f"FROM {imported}\nSTOPSIGNAL SIGRTMIN+3\n"
    docker.run(
        ["docker", "build", "-q", "-t", BASE, "-"],
        what="setting the base image's STOPSIGNAL",
        stdin=dockerfile.encode(),
    )
    docker.run(["docker", "rmi", imported], what="removing the imported base layer")
    shutil.rmtree(base, ignore_errors=True)


def server_tarball(
    docker: engine.Engine,
    work: Path,
    *,
    rootfs: Path,
    kind_group: Path,
    control_plane: Path,
    node: Path,
) -> Path:
    """Every component image, and the server tarball `kind build node-image` reads."""
    k8s = versions.KUBERNETES
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        _scratch(
            docker,
            f"registry.k8s.io/{name}:{k8s}",
            {f"usr/local/bin/{name}": control_plane / name},
            [f"/usr/local/bin/{name}"],
        )
    _proxy_image(docker, work, rootfs=rootfs, binary=kind_group / "kube-proxy")
    _scratch(
        docker,
        f"registry.k8s.io/etcd:{versions.ETCD_TAG}",
        {"usr/local/bin/etcd": control_plane / "etcd"},
        None,
    )
    _scratch(
        docker,
        f"registry.k8s.io/coredns/coredns:{versions.COREDNS_TAG}",
        {"coredns": kind_group / "coredns"},
        ["/coredns"],
    )
    _scratch(
        docker,
        f"registry.k8s.io/pause:{versions.PAUSE_TAG}",
        {"pause": kind_group / "pause"},
        ["/pause"],
    )
    _scratch(
        docker,
        LOCAL_PATH,
        {"usr/local/bin/local-path-provisioner": kind_group / "local-path-provisioner"},
        ["/usr/local/bin/local-path-provisioner"],
    )
    busybox = Path("/bin/busybox")
    if not busybox.is_file():
        raise ClusterError("no /bin/busybox: apt-get install busybox-static (kind's small images)")
    applets = _busybox_links()
    cni_daemon = CNI_DAEMON
    _scratch(
        docker,
        KINDNETD,
        {
            "bin/busybox": busybox,
            "bin/kindnetd": cni_daemon,
            "usr/local/bin/kubectl": control_plane / "kubectl",
        },
        ["/bin/kindnetd"],
        links=applets,
    )
    _scratch(docker, LOCAL_PATH_HELPER, {"bin/busybox": busybox}, None, links=applets)
    _scratch(docker, BUSYBOX_TAGS[0], {"bin/busybox": busybox}, None, links=applets, cmd=["sh"])
    for tag in BUSYBOX_TAGS[1:]:
        docker.run(["docker", "tag", BUSYBOX_TAGS[0], tag], what=f"tagging {tag}")
    server = work / "server" / "kubernetes"
    bins = server / "server" / "bin"
    bins.mkdir(parents=True)
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        _save(docker, bins / f"{name}.tar", [f"registry.k8s.io/{name}:{k8s}"])
    # kind loads only the four kube tarballs and pulls every image missing from them.
    _save(
        docker,
        bins / "kube-proxy.tar",
        [
            f"registry.k8s.io/kube-proxy:{k8s}",
            f"registry.k8s.io/etcd:{versions.ETCD_TAG}",
            f"registry.k8s.io/coredns/coredns:{versions.COREDNS_TAG}",
            f"registry.k8s.io/pause:{versions.PAUSE_TAG}",
            KINDNETD,
            LOCAL_PATH,
            LOCAL_PATH_HELPER,
            *BUSYBOX_TAGS,
        ],
    )
    for name, source in (
        ("kubelet", node / "kubelet"),
        ("kubectl", control_plane / "kubectl"),
        ("kubeadm", kind_group / "kubeadm"),
    ):
        shutil.copyfile(source, bins / name)
        (bins / name).chmod(0o755)
    (server / "version").write_text(k8s + "\n")
    tarball = work / "kubernetes-server-linux-amd64.tar.gz"
    with tarfile.open(tarball, "w:gz", compresslevel=1) as tar:
        tar.add(server, arcname="kubernetes")
    return tarball


def qualify(reference: str) -> str:
    """The name kind compares with: `docker save` drops `docker.io/` (and `library/`)."""
    first = reference.split("/")[0]
    if "/" not in reference:
        return "docker.io/library/" + reference
    if "." in first or ":" in first or first == "localhost":
        return reference
    return "docker.io/" + reference


def requalify(archive: Path) -> list[str]:
    """Rewrite a `docker save` archive so that `kind build node-image` counts every image
    in it as present: kind reads the first of `repositories` / `manifest.json` it meets
    (and from manifest.json only the first image's tags), so `repositories`, listing every
    image by its fully qualified name, goes first. Returns the names."""
    with tarfile.open(archive) as source:
        members = source.getmembers()
        manifest = json.loads(_member(source, "manifest.json"))
        for entry in manifest:
            entry["RepoTags"] = [qualify(t) for t in entry.get("RepoTags") or []]
        repositories: dict[str, dict[str, str]] = {}
        for entry in manifest:
            for tag in entry["RepoTags"]:
                repo, _, version = tag.rpartition(":")
                repositories.setdefault(repo, {})[version] = ""
        scratch = archive.with_suffix(".requalified")
        with tarfile.open(scratch, "w") as target:
            for name, doc in (("repositories", repositories), ("manifest.json", manifest)):
                data = json.dumps(doc).encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                target.addfile(info, io.BytesIO(data))
            for member in members:
                if member.name in ("repositories", "manifest.json"):
                    continue
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
    scratch.replace(archive)
    return sorted(f"{repo}:{tag}" for repo, tags in repositories.items() for tag in tags)


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    handle = tar.extractfile(name)
    if handle is None:
        raise ClusterError(f"{tar.name!s}: no {name}; not a docker-save archive")
    return handle.read()


def _save(docker: engine.Engine, target: Path, images: Iterable[str]) -> None:
    docker.run(
        ["docker", "save", "-o", str(target), *images], what=f"saving {target.name}", timeout=900
    )
    requalify(target)


def _busybox_links() -> list[str]:
    out = subprocess.run(
        ["/bin/busybox", "--list-full"], capture_output=True, text=True, check=True
    ).stdout
    return sorted({line.strip() for line in out.splitlines() if line.strip()} - {"bin/busybox"})


def _scratch(
    docker: engine.Engine,
    tag: str,
    files: Mapping[str, Path],
    entrypoint: list[str] | None,
    *,
    links: Iterable[str] = (),
    cmd: list[str] | None = None,
) -> None:
    """An image FROM scratch: `files` (destination: source), busybox applet links, /tmp,
    and an /etc/passwd with root and nonroot (65532), as distroless images have."""
    buffer = io.BytesIO()
    dirs = {"tmp", "etc", "bin", "sbin", "usr", "usr/bin", "usr/sbin", "usr/local", "usr/local/bin"}
    for destination in files:
        dirs.update(str(parent) for parent in Path(destination).parents[:-1])
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in sorted(dirs):
            _dir(tar, name, 0o1777 if name == "tmp" else 0o755)
        passwd = (
            b"root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n"
        )
        _file(tar, "etc/passwd", passwd, 0o644)
        for destination, source in sorted(files.items()):
            _file(tar, destination, source.read_bytes(), 0o755)
        for link in sorted(set(links) - set(files)):
            if link.split("/")[0] in ("bin", "sbin", "usr"):
                info = tarfile.TarInfo(link)
                info.type, info.linkname = tarfile.SYMTYPE, "/bin/busybox"
                tar.addfile(info)
    changes = ["ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"]
    if entrypoint:
        changes.append(f"ENTRYPOINT {json.dumps(entrypoint)}")
    if cmd:
        changes.append(f"CMD {json.dumps(cmd)}")
    _import(docker, tag, buffer.getvalue(), changes=changes)


def _proxy_image(docker: engine.Engine, work: Path, *, rootfs: Path, binary: Path) -> None:
    """kube-proxy on the Debian rootfs (iptables, nft, conntrack and their libraries),
    with iptables-wrapper choosing the node's backend."""
    tree = work / "kube-proxy"
    _copy_tree(rootfs, tree)
    for junk in ("usr/share/doc", "usr/share/man", "usr/share/locale", "var/cache", "var/lib/apt"):
        shutil.rmtree(tree / junk, ignore_errors=True)
    (tree / "etc" / "resolv.conf").unlink(missing_ok=True)
    shutil.copyfile(binary, tree / "usr" / "local" / "bin" / "kube-proxy")
    (tree / "usr" / "local" / "bin" / "kube-proxy").chmod(0o755)
    wrapper = tree / "usr" / "sbin" / "iptables-wrapper"
    wrapper.write_text(IPTABLES_WRAPPER)
    wrapper.chmod(0o755)
    for name in _IPTABLES:
        link = tree / "usr" / "sbin" / name
        link.unlink(missing_ok=True)
        link.symlink_to("iptables-wrapper")
    _import(
        docker,
        f"registry.k8s.io/kube-proxy:{versions.KUBERNETES}",
        _tar_of(tree),
        changes=[
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            'ENTRYPOINT ["/usr/local/bin/kube-proxy"]',
        ],
    )
    shutil.rmtree(tree, ignore_errors=True)


def _copy_tree(source: Path, target: Path) -> None:
    """`cp -a`: device nodes stay nodes (shutil would read /dev/zero for ever)."""
    _run(["cp", "-a", str(source), str(target)], what=f"copying {source}")


def _dir(tar: tarfile.TarFile, name: str, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    tar.addfile(info)


def _file(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _tar_of(tree: Path) -> bytes:
    return subprocess.run(
        ["tar", "-C", str(tree), "--numeric-owner", "-c", "."], capture_output=True, check=True
    ).stdout


def _import(docker: engine.Engine, tag: str, tar: bytes, *, changes: list[str]) -> None:
    argv = ["docker", "import"]
    for change in changes:
        argv += ["--change", change]
    docker.run([*argv, "-", tag], what=f"importing {tag}", stdin=tar, timeout=900)


class _proc_mounted:
    """/proc and /dev inside a chroot for the duration of a `with` block."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __enter__(self) -> None:
        (self.root / "proc").mkdir(exist_ok=True)
        _run(["mount", "-t", "proc", "proc", str(self.root / "proc")], what="mounting /proc")
        _run(["mount", "--bind", "/dev", str(self.root / "dev")], what="binding /dev")

    def __exit__(self, *exc: object) -> None:
        for point in ("dev", "proc"):
            subprocess.run(
                ["umount", "-l", str(self.root / point)], capture_output=True, check=False
            )


def _run(argv: list[str], *, what: str, timeout: float = 600) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise ClusterError(f"{what}: did not finish in {timeout:.0f}s") from e
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
        raise ClusterError(f"{what} failed (exit {proc.returncode}): {tail}")
    return proc.stdout
