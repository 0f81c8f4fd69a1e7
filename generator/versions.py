"""The pinned versions of everything the local cluster builds: the one place they live.

The binaries are built in groups (the control plane, a real node, the GitOps tools),
each cached in a directory named after its own versions: changing a pin here rebuilds
that group from the Go module proxy on the next `mlgen cluster build`, and no other.
"""

from __future__ import annotations

KUBERNETES = "v1.36.3"
ETCD = "v3.6.16"
KWOK = "v0.8.0"

# Kubernetes' staging modules are published as k8s.io/<m> at v0.<minor>.<patch>.
STAGING = "v0." + KUBERNETES.removeprefix("v1.")

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
KWOK_BINARIES = ("kwok", "kwokctl")
ALL_BINARIES = (*KUBE_BINARIES, *KWOK_BINARIES, "etcd")

NODE_BINARIES = ("kubelet",)

# The GitOps tools the conformance suite syncs with. Flux v1.10+ and kustomize v5.8.2+
# need Go 1.27; Argo CD v3 cannot be built from the proxy (a pseudo-version of its
# gitops-engine submodule is refused), so v2 is a harness for sync-wave semantics only.
FLUX = "v1.9.6"  # source-controller and kustomize-controller are released together
ARGOCD = "v2.14.21"
# The Argo CD components the harness runs (ARGOCD_BINARY_NAME), and the only ones built:
# its main of our own leaves out the API server, the CLI, dex and notifications. Part of
# the cache key, so a build of other components is never reused.
ARGOCD_COMPONENTS = (
    "argocd-application-controller",
    "argocd-repo-server",
    "argocd-git-ask-pass",  # the repo server's Git credential helper
)
KUSTOMIZE = "v5.8.1"

# Replace lines the Flux controllers' own go.mod files need but a dependency's go.mod
# cannot carry; they belong to FLUX above and change with it.
FLUX_REPLACES = {
    "both": {
        "github.com/opencontainers/go-digest": "v1.0.1-0.20220411205349-bde1400a84be",
    },
    "source-controller": {
        # v0.18.3, which source-controller v1.9.6 requires, is refused by the proxy (403).
        "github.com/fluxcd/pkg/artifact": "v0.18.0",
    },
    "kustomize-controller": {
        "sigs.k8s.io/kustomize/api": "v0.21.1",
        "sigs.k8s.io/kustomize/kyaml": "v0.21.1",
        "gopkg.in/yaml.v3": "v3.0.1",
    },
}

FLUX_BINARIES = ("source-controller", "kustomize-controller")
GITOPS_BINARIES = (*FLUX_BINARIES, "argocd", "kustomize")

# Kueue, the queue ML platforms admit batch Jobs through. The proxy's version list stops at
# v0.17.0, but v0.19.2 resolves when named exactly: pin it, never @latest.
KUEUE = "v0.19.2"
KUEUE_BINARIES = ("kueue",)

# Real kind, built offline: kind itself, the node image `kind build node-image` makes from
# the Kubernetes binaries above plus kubeadm and kube-proxy, and every image a node needs.
# Where the proxy does not serve kind's own pin, the closest served version stands in
# (docs/real-kind.md lists each substitution and why).
KIND = "v0.33.0"
KIND_BINARIES = ("kind", "kubeadm", "kube-proxy")
CONTAINERD = "v2.3.4"  # kind v0.33's; Debian's 1.6 `ctr` lacks `images import --label`
CONTAINERD_BINARIES = ("containerd", "ctr", "containerd-shim-runc-v2")
COREDNS = "v1.14.3"  # kubeadm 1.36 names v1.14.2, which the proxy does not serve
COREDNS_TAG = "v1.14.2"  # ... so v1.14.3 is tagged with the name kubeadm asks for
LOCAL_PATH = "v0.0.30"  # kind uses v0.0.34; v0.0.30 is the newest the proxy serves
CRICTL = "v1.37.0"
PAUSE_TAG = "3.10.2"  # kubeadm 1.36's sandbox image, built from pause.c in k8s.io/kubernetes
ETCD_TAG = "3.6.8-0"  # kubeadm 1.36's etcd image name; it carries ETCD above
DEBIAN_SUITE = "bookworm"  # systemd 252: kind's trixie base (systemd 256+) refuses cgroup v1
KIND_NODE_IMAGE = f"mlgen.local/kind-node:{KUBERNETES}"
# The conformance suite's stand-in image: Docker Hub's busybox in users' CI; baked into the
# node image here (Debian's busybox-static under this name: nothing can be pulled).
STANDIN_IMAGE = "busybox:1.36.1"
# What users' CI pulls: the image kind's release notes list for KIND, by digest. The Go
# module proxy serves Kubernetes v1.36.3, not v1.36.4, so the local image is one patch behind.
KIND_RELEASED_NODE = (
    "kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed"
)


def cache_key() -> str:
    """The control plane's directory name: changes whenever one of its versions does."""
    return f"k8s-{KUBERNETES}_etcd-{ETCD}_kwok-{KWOK}"


def group_key(group: str) -> str:
    """The cache directory name of a build group, from that group's versions only."""
    keys = {
        "control-plane": cache_key(),
        "node": f"node-k8s-{KUBERNETES}",
        "gitops": f"gitops-flux-{FLUX}_argocd-{ARGOCD}-{_argocd_parts()}_kustomize-{KUSTOMIZE}",
        "kueue": f"kueue-{KUEUE}",
        "kind": (
            f"kind-{KIND}_k8s-{KUBERNETES}_etcd-{ETCD}_containerd-{CONTAINERD}_"
            f"coredns-{COREDNS}_lpp-{LOCAL_PATH}_{DEBIAN_SUITE}"
        ),
    }
    return keys[group]


def _argocd_parts() -> str:
    """`controller+repo-server+git-ask-pass`: which Argo CD components the build holds."""
    return "+".join(
        c.removeprefix("argocd-").removeprefix("application-") for c in ARGOCD_COMPONENTS
    )
