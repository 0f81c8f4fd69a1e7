"""The pinned versions of the local control plane: the one place they live.

Changing any of them changes the cache key, so the next `mlgen cluster build`
rebuilds from the Go module proxy instead of reusing stale binaries.
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


def cache_key() -> str:
    """A directory name that changes whenever any pinned version does."""
    return f"k8s-{KUBERNETES}_etcd-{ETCD}_kwok-{KWOK}"
