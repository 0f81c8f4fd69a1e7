"""What a process received, recorded by a POSIX `sh` probe on a real kubelet.

`SCRIPT` prints, hex-encoded so that no byte is lost in a log line, its argv, its
environment, its uid, its privilege flags and the size of /dev/shm; the conformance
suite's stand-in containers (`mlgen.conformance.standin`) run it in front of every
program. `read` parses the log and `mismatches` compares it with what the batch file
promised, in sentences that name the argument or variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from kubernetes.utils import parse_quantity

MARK = "mlgen-probe"
SCRIPT = f"""hex() {{ od -An -v -tx1 | tr -d ' \\n'; }}
echo "{MARK} uid $(id -u)"
echo "{MARK} status $(grep -E '^(NoNewPrivs|CapEff):' /proc/$$/status | tr -d ' \\t' | \
tr '\\n' ';')"
echo "{MARK} shm $(grep ' /dev/shm ' /proc/$$/mountinfo | hex)"
for a in "$@"; do echo "{MARK} arg $(printf %s "$a" | hex)"; done
echo "{MARK} env $(hex < /proc/$$/environ)"
echo "{MARK} end $#"
"""
# `sh -c SCRIPT NAME ARGS...`: the job's args become "$@", untouched by any shell.
COMMAND = ("/bin/sh", "-c", SCRIPT, MARK)


@dataclass(frozen=True)
class Report:
    """What one probe saw."""

    uid: int
    no_new_privs: bool
    cap_eff: str
    shm_bytes: int | None
    args: list[str]
    env: dict[str, str]


def _text(hex_digits: str) -> str:
    return bytes.fromhex(hex_digits).decode("utf-8", errors="surrogateescape")


def read(log: str) -> Report:
    """Parse a probe's log; raises ValueError when it is not one (or was cut short)."""
    fields: dict[str, list[str]] = {}
    for line in log.splitlines():
        mark, _, rest = line.partition(" ")
        if mark == MARK:
            key, _, value = rest.partition(" ")
            fields.setdefault(key, []).append(value)
    if "end" not in fields or int(fields["end"][0]) != len(fields.get("arg", [])):
        raise ValueError(f"not a complete {MARK} log: {log[:300]!r}")
    status = dict(part.split(":", 1) for part in fields["status"][0].split(";") if ":" in part)
    environ = _text(fields["env"][0]).split("\0")
    size = re.search(r"[ ,]size=(\d+)k", _text(fields["shm"][0]))
    return Report(
        uid=int(fields["uid"][0]),
        no_new_privs=status.get("NoNewPrivs") == "1",
        cap_eff=status.get("CapEff", ""),
        shm_bytes=int(size[1]) * 1024 if size else None,
        args=[_text(a) for a in fields.get("arg", [])],
        env=dict(e.split("=", 1) for e in environ if "=" in e),
    )


def mismatches(
    report: Report,
    *,
    args: Sequence[str],
    env: Mapping[str, str | None],
    uid: int,
    shm_bytes: int | None,
) -> list[str]:
    """Sentences, one per difference between what the probe saw and what was promised.
    `env` maps a name to its value, or to None where the variable must be absent; any
    other `MLGEN_*` variable is a leak of the entrypoint's internals."""
    found = []
    if report.args != list(args):
        found.append(_args_difference(report.args, list(args)))
    for name, want in env.items():
        got = report.env.get(name)
        if got != want:
            found.append(
                f"env {name} is {got!r}, expected {want!r}"
                if want is not None
                else f"env {name} is set to {got!r}, expected it absent"
            )
    leaked = sorted(k for k in report.env if k.startswith("MLGEN_") and k not in env)
    if leaked:
        found.append(f"mlgen's internal variables leaked into the process: {leaked}")
    if report.uid != uid:
        found.append(f"ran as uid {report.uid}, expected {uid}")
    if not report.no_new_privs:
        found.append("privilege escalation is possible (NoNewPrivs is not 1)")
    if report.cap_eff.strip("0"):
        found.append(f"has capabilities {report.cap_eff}, expected none")
    if shm_bytes is not None and report.shm_bytes != shm_bytes:
        found.append(f"/dev/shm is {report.shm_bytes} bytes, expected {shm_bytes}")
    return found


def _args_difference(got: list[str], want: list[str]) -> str:
    for position, expected in enumerate(want):
        if position >= len(got):
            return f"argument {position} {expected!r} is missing (got {len(got)} of {len(want)})"
        if got[position] != expected:
            where = "dropped" if got[position:] == want[position + 1 :] else "changed"
            return (
                f"argument {position} {expected!r} was {where}: got {got[position]!r} "
                f"(all args: {got!r})"
            )
    return f"unexpected extra arguments {got[len(want) :]!r}"


def shm_size(size_limit: str, *, pod_memory_limit: str | None, node_memory: str) -> int:
    """The tmpfs size the kubelet gives a memory-backed emptyDir: its sizeLimit, capped by
    the pod's memory limit, else by the node's allocatable memory."""
    cap = Decimal(parse_quantity(pod_memory_limit or node_memory))
    return int(min(Decimal(parse_quantity(size_limit)), cap))
