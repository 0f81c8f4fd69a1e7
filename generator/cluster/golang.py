"""The Go toolchain as the cluster build uses it: version check, environment, one
command at a time, and throwaway wrapper modules.

Every build runs with `GOTOOLCHAIN=local` (never download a toolchain) and
`CGO_ENABLED=0` (static binaries, no C compiler), so the Go module proxy is the only
thing a build reaches.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from mlgen.errors import ClusterError

MIN_GO = (1, 26)


def binary() -> str:
    """The `go` on PATH, checked to be new enough for every pinned module."""
    go = shutil.which("go")
    if go is None:
        raise ClusterError(
            "no Go toolchain on PATH: install Go >= 1.26 (the local cluster is built from source)"
        )
    out = subprocess.run(
        [go, "env", "GOVERSION"], capture_output=True, text=True, env=environment(), check=False
    ).stdout.strip()
    match = re.match(r"go(\d+)\.(\d+)", out)
    if not match or (int(match[1]), int(match[2])) < MIN_GO:
        raise ClusterError(
            f"Go {out or '(unknown version)'} is too old: the pinned modules "
            f"need Go >= {MIN_GO[0]}.{MIN_GO[1]}"
        )
    return go


def environment(modcache: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(GOTOOLCHAIN="local", CGO_ENABLED="0", GOFLAGS="-mod=mod")
    if modcache is not None:
        # A module cache of its own: a stale .mod another build left in the shared cache
        # shows up as "checksum mismatch ... SECURITY ERROR"; -modcacherw keeps it deletable.
        env.update(GOMODCACHE=str(modcache), GOFLAGS="-mod=mod -modcacherw")
    return env


NETWORK = (
    r"dial tcp|proxy|no such host|connection refused|connection reset|timeout|"
    r"TLS handshake|unexpected EOF|502|503|504"
)
RETRIES = 3  # attempts of a command that failed on the network (the proxy drops some)


def run(go: str, args: list[str], *, cwd: Path, modcache: Path | None = None) -> str:
    """Run one go command; a failure becomes a ClusterError quoting stderr's tail. A
    failure that looks like the network's is tried again (a download is idempotent)."""
    for attempt in range(1, RETRIES + 1):
        proc = subprocess.run(
            [go, *args],
            cwd=cwd,
            env=environment(modcache),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0:
            return proc.stdout
        refused = re.search(r"\b(403|404|410)\b|not available|not found", proc.stderr)
        if not re.search(NETWORK, proc.stderr) or refused or attempt == RETRIES:
            break
        time.sleep(10 * attempt)
    tail = " | ".join(proc.stderr.strip().splitlines()[-6:])
    hint = ""
    if re.search(NETWORK, proc.stderr):
        hint = (
            f" after {RETRIES} attempts (is the Go module proxy reachable? check GOPROXY "
            "and the network)"
        )
    elif "SECURITY ERROR" in proc.stderr:
        hint = " (a stale module cache: delete it, or build with GOMODCACHE of its own)"
    raise ClusterError(f"`go {' '.join(args[:3])} ...` failed in {cwd}{hint}: {tail}")


def write_module(work: Path, name: str, body: str = "") -> None:
    """A go.mod for a wrapper module that only requires (and replaces) what it builds."""
    (work / "go.mod").write_text(f"module mlgen.local/{name}\n\ngo 1.26\n{body}")


def module_file(go: str, module: str, *, cwd: Path, modcache: Path | None = None) -> Path:
    """The go.mod of `module@version`, downloaded from the proxy."""
    info = json.loads(run(go, ["mod", "download", "-json", module], cwd=cwd, modcache=modcache))
    return Path(info["GoMod"])


def module_dir(go: str, module: str, *, cwd: Path, modcache: Path | None = None) -> Path:
    """Where the source of `module@version` was unpacked (read-only files)."""
    info = json.loads(run(go, ["mod", "download", "-json", module], cwd=cwd, modcache=modcache))
    return Path(info["Dir"])


def replacements(gomod: str) -> dict[str, str]:
    """`module => module version` lines of a go.mod (block or single), local paths left
    out: a wrapper module re-states them because a dependency's replaces are ignored."""
    found: dict[str, str] = {}
    pattern = r"^\s*(?:replace\s+)?(\S+)(?:\s+\S+)?\s+=>\s+(\S+)\s+(v\S+)\s*$"
    in_block = False
    for line in gomod.splitlines():
        stripped = line.split("//")[0].rstrip()
        if re.match(r"^replace\s*\($", stripped):
            in_block = True
            continue
        if in_block and stripped.strip() == ")":
            in_block = False
            continue
        if not (in_block or stripped.startswith("replace ")):
            continue
        match = re.match(pattern, stripped)
        if match and not match[2].startswith("."):
            found[match[1]] = f"{match[2]} {match[3]}"
    return found


def replace_lines(replaces: dict[str, str]) -> str:
    return "".join(f"replace {m} => {target}\n" for m, target in sorted(replaces.items()))
