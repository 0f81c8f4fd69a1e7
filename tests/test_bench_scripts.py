"""The benchmarks keep running against the code as it is: a render measurement end to end,
and the cluster benchmarks' tables redrawn from their committed results (no cluster)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _run(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("variant", ["sequential", "parallel"])
def test_render_bench_measures_one_size(variant: str) -> None:
    found = json.loads(_run(str(BENCH / "render_bench.py"), "--one", "100", variant, "validated"))
    assert found["files"] >= 2 and found["seconds"] > 0


@pytest.mark.parametrize(
    ("script", "results", "table"),
    [
        ("loop_bench.py", "loop-results", "| strategy | n | d | p | T (s) |"),
        ("scale_bench.py", "scale-results", "| n | p | d (s) | pods | pods/s |"),
    ],
)
def test_cluster_bench_redraws_its_committed_table(
    script: str, results: str, table: str, tmp_path: Path
) -> None:
    shutil.copy(BENCH / f"{results}.json", tmp_path)
    for reading in BENCH.glob("*-reading.md"):
        shutil.copy(reading, tmp_path)
    _run(str(BENCH / script), "--report-only", "--out", str(tmp_path))
    redrawn = (tmp_path / f"{results}.md").read_text()
    assert table in redrawn and "## Reading it" in redrawn
    # what is committed is what the code draws from the committed JSON
    assert redrawn == (BENCH / f"{results}.md").read_text()
