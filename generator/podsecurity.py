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
# Baseline's allowed SELinux types, and its safe sysctls (Kubernetes 1.29's list).
_SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
_SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ping_group_range",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_syncookies",
}
_APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
_SECCOMP_ANNOTATIONS = (
    "seccomp.security.alpha.kubernetes.io/pod",
    "container.seccomp.security.alpha.kubernetes.io/",
)


def check(template: dict[str, Any], *, level: str, where: str) -> None:
    """Raise RenderError listing what breaks `level` in a pod template ({metadata, spec}):
    annotations count, as they do for admission. Two things are refused at every level,
    as the API server refuses them: seccomp annotations (the field is the one way to say
    it), and a procMount other than Default outside a user namespace (`hostUsers: false`,
    with which Pod Security baseline allows it)."""
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    invalid = [
        f"annotation {key!r} sets seccomp the deprecated way, which current Kubernetes "
        "ignores; set securityContext.seccompProfile in podPatch instead"
        for key in sorted(annotations)
        if key == _SECCOMP_ANNOTATIONS[0] or key.startswith(_SECCOMP_ANNOTATIONS[1])
    ]
    pod = template.get("spec") or {}
    invalid += [
        f"container {c.get('name')!r} sets procMount {context['procMount']!r}, which the API "
        "server accepts only with hostUsers: false (a user namespace); add it or drop procMount"
        for c in _containers(pod)
        if (context := c.get("securityContext") or {}).get("procMount") not in (None, "Default")
        and pod.get("hostUsers") is not False
    ]
    if invalid:
        raise RenderError(f"{where}: {invalid[0]}")
    problems = violations(template, level=level)
    if problems:
        lower = "privileged" if level == "baseline" else "baseline"
        raise RenderError(
            f"{where}: breaks Pod Security {level!r}: {'; '.join(problems)}. "
            f"Change the job, or set spec.podSecurity: {lower} if its namespace "
            "allows that"
        )


def violations(template: dict[str, Any], *, level: str) -> list[str]:
    """What breaks `level` in a pod template."""
    if level == "privileged":
        return []
    pod = template.get("spec") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    out = _baseline(pod, annotations)
    if level == "restricted":
        out += _restricted(pod)
    return out


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        c
        for kind in ("initContainers", "containers", "ephemeralContainers")
        for c in pod.get(kind) or []
    ]


def _baseline(pod: dict[str, Any], annotations: dict[str, Any]) -> list[str]:
    out = [f"{k}: true" for k in ("hostNetwork", "hostPID", "hostIPC") if pod.get(k)]
    out += [
        f"annotation {key!r} is {value!r}, not runtime/default or localhost/<profile>"
        for key, value in sorted(annotations.items())
        if key.startswith(_APPARMOR_ANNOTATION)
        and not (value == "runtime/default" or str(value).startswith("localhost/"))
    ]
    out += [
        f"sysctl {s.get('name')!r} is not one of the safe sysctls"
        for s in (pod.get("securityContext") or {}).get("sysctls") or []
        if s.get("name") not in _SAFE_SYSCTLS
    ]
    out += [
        f"volume {v.get('name')!r} is a hostPath"
        for v in pod.get("volumes") or []
        if "hostPath" in v
    ]
    contexts = [pod.get("securityContext") or {}]
    out += _context_rules(contexts[0], "the pod")
    for container in _containers(pod):
        name = container.get("name")
        context = container.get("securityContext") or {}
        contexts.append(context)
        out += _context_rules(context, f"container {name!r}")
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


def _context_rules(context: dict[str, Any], who: str) -> list[str]:
    """Baseline's rules for a pod's or a container's securityContext: AppArmor, SELinux
    and Windows HostProcess."""
    out = []
    apparmor = (context.get("appArmorProfile") or {}).get("type")
    if apparmor not in (None, "RuntimeDefault", "Localhost"):
        out.append(f"{who} has AppArmor profile {apparmor!r}, not RuntimeDefault or Localhost")
    selinux = context.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in _SELINUX_TYPES:
        out.append(f"{who} has SELinux type {selinux['type']!r}, not a container_* type")
    out += [f"{who} sets SELinux {key}" for key in ("user", "role") if selinux.get(key)]
    if (context.get("windowsOptions") or {}).get("hostProcess"):
        out.append(f"{who} is a Windows HostProcess")
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
