"""Pod Security levels: what a batch's pods may do, checked before anything is written.

`spec.podSecurity` says which Kubernetes Pod Security Standard the batch's namespace
enforces: `restricted` (the default, what mlgen renders), `baseline` (e.g. running as
root) or `privileged` (anything). Pod templates are checked here against the level's
main rules, so a podPatch that breaks the level fails at render time with the batch file
named, not at admission with a pod that never starts. The conformance suite creates its
namespaces enforcing the batch's level.
"""

from __future__ import annotations

from typing import Any

from mlgen.errors import RenderError

_RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
_BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}


def check(pod: dict[str, Any], *, level: str, where: str) -> None:
    """Raise RenderError listing what breaks `level` in a pod spec."""
    problems = violations(pod, level=level)
    if problems:
        lower = "privileged" if level == "baseline" else "baseline"
        raise RenderError(
            f"{where}: breaks Pod Security {level!r}: {'; '.join(problems)}. "
            f"Change the job, or set spec.podSecurity: {lower} if its namespace "
            "allows that"
        )


def violations(pod: dict[str, Any], *, level: str) -> list[str]:
    if level == "privileged":
        return []
    out = _baseline(pod)
    if level == "restricted":
        out += _restricted(pod)
    return out


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        c
        for kind in ("initContainers", "containers", "ephemeralContainers")
        for c in pod.get(kind) or []
    ]


def _baseline(pod: dict[str, Any]) -> list[str]:
    out = [f"{k}: true" for k in ("hostNetwork", "hostPID", "hostIPC") if pod.get(k)]
    out += [
        f"volume {v.get('name')!r} is a hostPath"
        for v in pod.get("volumes") or []
        if "hostPath" in v
    ]
    contexts = [pod.get("securityContext") or {}]
    for container in _containers(pod):
        name = container.get("name")
        context = container.get("securityContext") or {}
        contexts.append(context)
        if context.get("privileged"):
            out.append(f"container {name!r} is privileged")
        added = set((context.get("capabilities") or {}).get("add") or []) - _BASELINE_CAPABILITIES
        if added:
            out.append(f"container {name!r} adds capabilities {', '.join(sorted(added))}")
        if any(p.get("hostPort") for p in container.get("ports") or []):
            out.append(f"container {name!r} uses a hostPort")
    if any((c.get("seccompProfile") or {}).get("type") == "Unconfined" for c in contexts):
        out.append("a seccompProfile is Unconfined")
    return out


def _restricted(pod: dict[str, Any]) -> list[str]:
    out = [
        f"volume {v.get('name')!r} is of a type other than configMap, csi, downwardAPI, "
        "emptyDir, ephemeral, persistentVolumeClaim, projected or secret"
        for v in pod.get("volumes") or []
        if "hostPath" not in v and not set(v) - {"name"} <= _RESTRICTED_VOLUMES
    ]
    context = pod.get("securityContext") or {}
    pod_seccomp = (context.get("seccompProfile") or {}).get("type")
    if context.get("runAsUser") == 0:
        out.append("the pod runs as root (runAsUser: 0)")
    for container in _containers(pod):
        name = container.get("name")
        own = container.get("securityContext") or {}
        if own.get("allowPrivilegeEscalation") is not False:
            out.append(f"container {name!r} does not set allowPrivilegeEscalation: false")
        if not own.get("runAsNonRoot", context.get("runAsNonRoot")):
            out.append(f"container {name!r} does not set runAsNonRoot: true")
        if own.get("runAsUser") == 0:
            out.append(f"container {name!r} runs as root (runAsUser: 0)")
        seccomp = (own.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"container {name!r} has no RuntimeDefault or Localhost seccompProfile")
        capabilities = own.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            out.append(f"container {name!r} does not drop ALL capabilities")
        if set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"container {name!r} adds capabilities other than NET_BIND_SERVICE")
    return out
