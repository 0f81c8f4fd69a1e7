"""The Gantt chart and failure lines name the batch's jobs, not bare indexes; SVG needs no
plotting library."""

from __future__ import annotations

import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from mlgen import gantt, timeline
from mlgen.errors import UsageError


def _parallel_run() -> timeline.Timeline:
    pod = timeline.PodRecord
    return timeline.Timeline(
        batch="sweep",
        variant="parallel",
        namespace="ns",
        origin="2026-01-01T00:00:00+00:00",
        jobs=[
            timeline.JobRecord(
                name="sweep-par-1234",
                step="sweep-par-1234",
                wave=0,
                status="Failed",
                start=0.0,
                end=None,
                failed_indexes="1",
            )
        ],
        pods=[
            pod("p0", "sweep-par-1234", 0, 1, "n", "Succeeded", 0.0, 3.0, 0, step="lr-1e-2"),
            pod("p1", "sweep-par-1234", 1, 1, "n", "Failed", 0.0, 2.0, 3, step="lr-1e-3"),
            pod("p2", "sweep-par-1234", 1, 2, "n", "Failed", 4.0, 6.0, 3, step="lr-1e-3"),
        ],
    )


def test_svg_rows_and_failures_name_jobs(tmp_path: Path) -> None:
    found = _parallel_run()
    chart = gantt.save(found, tmp_path / "run.json")
    assert chart.suffix == ".svg" and (tmp_path / "run.json").exists()
    root = ElementTree.fromstring(chart.read_text())
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "lr-1e-2 (index 0)" in texts and "lr-1e-3 (index 1)" in texts
    assert not any(t and t.startswith("index ") for t in texts)
    assert found.failures() == [
        "job 'lr-1e-3' (index 1 of sweep-par-1234) failed 2 time(s), last exit code 3"
    ]


def test_svg_needs_no_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert gantt.draw(_parallel_run(), tmp_path / "c.svg").read_text().startswith("<svg")
    with pytest.raises(UsageError, match=r"mlgen\[png\]"):
        gantt.draw(_parallel_run(), tmp_path / "c.png")
