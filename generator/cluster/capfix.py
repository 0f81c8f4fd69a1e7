"""An OCI runtime in front of runc: drop the capabilities this process may not hold.

Run as a file (`python -I capfix.py ARGS...`, see engine.capfix_wrapper), never imported
by the rest of mlgen: dockerd calls it for every container. Docker asks for every
capability the kernel knows for a privileged container (each kind node is one), but
this sandbox's bounding set lacks some (CAP_MAC_OVERRIDE), and runc then fails with
"unable to apply caps". Each capability list in the bundle's config.json (or a
`--process` file) keeps only what the bounding set has; then the real runc runs.
"""

from __future__ import annotations

import json
import os
import sys

# Capability numbers from linux/capability.h, in order.
NAMES = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
]
_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


def bounding_set(status: str) -> set[str]:
    """The `CAP_*` names in a /proc/<pid>/status text's CapBnd mask."""
    mask = next(
        int(line.split()[1], 16) for line in status.splitlines() if line.startswith("CapBnd:")
    )
    return {f"CAP_{name}" for bit, name in enumerate(NAMES) if mask >> bit & 1}


def trim(process: dict[str, object], allowed: set[str]) -> bool:
    """Drop the capabilities not in `allowed` from an OCI process object; whether any were."""
    caps = process.get("capabilities")
    if not isinstance(caps, dict):
        return False
    changed = False
    for key in _SETS:
        listed = caps.get(key)
        if isinstance(listed, list):
            kept = [c for c in listed if c in allowed]
            changed |= len(kept) != len(listed)
            caps[key] = kept
    return changed


def _fix(path: str, *, whole_spec: bool, allowed: set[str]) -> None:
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except (OSError, ValueError):
        return  # not ours to judge: runc reports a missing or broken file itself
    process = spec.get("process", {}) if whole_spec else spec
    if trim(process, allowed):
        with open(path, "w", encoding="utf-8") as f:
            json.dump(spec, f)


def main(args: list[str]) -> None:
    with open("/proc/self/status", encoding="utf-8") as f:
        allowed = bounding_set(f.read())
    for i, arg in enumerate(args):
        value = args[i + 1] if i + 1 < len(args) else ""
        if arg in ("--bundle", "-b"):
            _fix(os.path.join(value, "config.json"), whole_spec=True, allowed=allowed)
        elif arg.startswith("--bundle="):
            _fix(
                os.path.join(arg.split("=", 1)[1], "config.json"), whole_spec=True, allowed=allowed
            )
        elif arg in ("--process", "-p"):
            _fix(value, whole_spec=False, allowed=allowed)
        elif arg.startswith("--process="):
            _fix(arg.split("=", 1)[1], whole_spec=False, allowed=allowed)
    runc = os.environ.get("CAPFIX_RUNC", "/usr/sbin/runc")
    os.execv(runc, [runc, *args])


if __name__ == "__main__":
    main(sys.argv[1:])
