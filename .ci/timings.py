"""Print where `.ci/run` spent its time: phases, build groups (cold or cached) and each
test module of each pytest session, in seconds. Usage: timings.py REPORT_DIR"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from xml.etree import ElementTree


def modules(junit: Path) -> dict[str, tuple[float, int, int, int]]:
    """Seconds, passed, failed (errors included) and skipped per test module."""
    found: dict[str, list[float]] = defaultdict(lambda: [0.0, 0, 0, 0])
    for case in ElementTree.parse(junit).iter("testcase"):
        name = case.get("classname", "?").split(".")
        module = "/".join(name[:2]) if len(name) > 1 else name[0]
        row = found[module]
        row[0] += float(case.get("time", 0))
        if case.find("skipped") is not None:
            row[3] += 1
        elif case.find("failure") is not None or case.find("error") is not None:
            row[2] += 1
        else:
            row[1] += 1
    return {m: (r[0], int(r[1]), int(r[2]), int(r[3])) for m, r in found.items()}


def main(report: Path) -> None:
    print("\n== where the time went (seconds)")
    phases = report / "phases.tsv"
    if phases.exists():
        for line in phases.read_text().splitlines():
            name, seconds = line.split("\t")
            print(f"  {name:<46} {int(seconds):>6}")
    builds = report / "builds.json"
    if builds.exists():
        print("  build groups:")
        for group, row in json.loads(builds.read_text()).items():
            print(f"    {group:<30} {row['state']:<8} {row['seconds']:>6.0f}")
    for junit in sorted(report.glob("junit-*.xml")):
        session = junit.stem.removeprefix("junit-")
        # Under pytest-xdist a module's seconds are its tests' own; modules overlap.
        print(f"  {session} session, by module: its tests' seconds (passed/failed/skipped):")
        rows = sorted(modules(junit).items(), key=lambda kv: -kv[1][0])
        for module, (seconds, passed, failed, skipped) in rows:
            print(f"    {module:<44} {seconds:>6.0f}   {passed}/{failed}/{skipped}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
