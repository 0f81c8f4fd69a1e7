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
    with pytest.raises(UsageError, match=r"mlgen-gitops\[png\]"):
        gantt.draw(_parallel_run(), tmp_path / "c.png")


def _sweep(n: int, *, failed: int) -> timeline.Timeline:
    """n indexes at p = 100, index `failed` failing once before it succeeds."""
    pods = [
        timeline.PodRecord(
            f"p{i}",
            "sweep-par",
            i,
            1,
            "n",
            "Succeeded",
            float(i // 100),
            i // 100 + 1.0,
            0,
            step=f"lr-{i}",
        )
        for i in range(n)
    ]
    pods[failed] = timeline.PodRecord(
        f"p{failed}", "sweep-par", failed, 1, "n", "Failed", 0.0, 0.5, 1, step=f"lr-{failed}"
    )
    pods.append(
        timeline.PodRecord(
            "retry", "sweep-par", failed, 2, "n", "Succeeded", 0.6, 1.6, 0, step=f"lr-{failed}"
        )
    )
    job = timeline.JobRecord("sweep-par", "sweep-par", 0, "Complete", 0.0, n / 100)
    return timeline.Timeline("sweep", "parallel", "ns", "", jobs=[job], pods=pods)


def test_ten_thousand_indexes_aggregate_into_a_readable_chart() -> None:
    found = gantt.layout(_sweep(10_000, failed=4321))
    assert len(found.rows) == 60 and "(10,000 jobs, 167 per row)" in found.title
    assert found.rows[0] == "lr-0 … lr-166 (indexes 0-166)"
    assert found.rows[-1] == "lr-9853 … lr-9999 (indexes 9853-9999)"
    # consecutive rounds touch, so a row's successes merge into one stretch; the retry
    # (0.6-1.6 s) is apart from the rest of its row (41-44 s)
    succeeded = [b for b in found.bars if b.phase == "Succeeded"]
    assert len(succeeded) == 61
    assert [(b.start, b.end) for b in succeeded if b.row == 25] == [(0.6, 1.6), (41.0, 44.0)]
    failed = [b for b in found.bars if b.phase == "Failed"]
    assert len(failed) == 1 and failed[0].row == 4321 // 167
    assert "167 attempts" not in failed[0].tip and "1 Failed" in failed[0].tip
    assert "1 retries" in failed[0].tip
    root = ElementTree.fromstring(gantt.svg(_sweep(10_000, failed=4321)))
    assert int(root.attrib["height"]) < 1600
    assert len(list(root.iter("{http://www.w3.org/2000/svg}rect"))) == 1 + 62


def test_up_to_max_rows_every_attempt_keeps_its_own_bar() -> None:
    found = gantt.layout(_sweep(60, failed=3))
    assert len(found.rows) == 60 and len(found.bars) == 61
    assert [b.attempt for b in found.bars if b.row == 3] == [1, 2]
