"""The Gantt chart and failure lines name the batch's jobs, not bare indexes; SVG needs no
plotting library."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from mlgen import gantt, timeline
from mlgen.errors import UsageError

SVG = "{http://www.w3.org/2000/svg}"


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
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == 62  # each with its tip; the background and legend have none


def test_up_to_max_rows_every_attempt_keeps_its_own_bar() -> None:
    found = gantt.layout(_sweep(60, failed=3))
    assert len(found.rows) == 60 and len(found.bars) == 61
    assert [b.attempt for b in found.bars if b.row == 3] == [1, 2]


def _pending_run() -> timeline.Timeline:
    """Three steps; the second's pod waits 4 s Pending (created at 3, started at 7), the
    third's is still Pending when the run is read (at 10 s)."""
    pod = timeline.PodRecord
    return timeline.Timeline(
        batch="b",
        variant="sequential",
        namespace="ns",
        origin="",
        jobs=[
            timeline.JobRecord("b-0", "prep", 0, "Complete", 0.0, 3.0),
            timeline.JobRecord("b-1", "train", 1, "Complete", 3.0, 10.0),
            timeline.JobRecord("b-2", "eval", 2, "Running", 8.0, None),
        ],
        pods=[
            pod("p0", "b-0", None, 1, "n", "Succeeded", 0.5, 3.0, 0, step="prep", created=0.0),
            pod("p1", "b-1", None, 1, "n", "Succeeded", 7.0, 10.0, 0, step="train", created=3.0),
            pod("p2", "b-2", None, 1, "", "Pending", None, None, None, step="eval", created=8.0),
        ],
    )


def test_pending_time_is_drawn_before_each_run_and_named_in_the_legend() -> None:
    found = gantt.layout(_pending_run())
    pending = [(b.row, b.start, b.end) for b in found.bars if b.phase == "Pending"]
    assert pending == [(0, 0.0, 0.5), (1, 3.0, 7.0), (2, 8.0, 10.0)]
    assert [(b.row, b.start) for b in found.bars if b.phase == "Succeeded"] == [(0, 0.5), (1, 7.0)]
    assert gantt.legend(found) == ["Pending", "Succeeded"]
    root = ElementTree.fromstring(gantt.svg(_pending_run()))
    tips = {r.findtext(f"{SVG}title"): r.attrib["fill"] for r in root.iter(f"{SVG}rect")}
    assert tips["train attempt 1: Pending 4.0s"] == "url(#pending)"
    assert "Pending" in [t.text for t in root.iter(f"{SVG}text")]


def test_pending_stretches_merge_per_row_when_rows_stand_for_many_jobs() -> None:
    run = _sweep(200, failed=7)  # 10 jobs a row; indexes 100-199 start at 1 s
    run.pods[:] = [dataclasses.replace(p, created=(p.start or 0.0) - 0.5) for p in run.pods]
    found = gantt.layout(run, max_rows=20)
    row = [(b.phase, b.start, b.end) for b in found.bars if b.row == 10]
    assert row == [("Pending", 0.5, 1.0), ("Succeeded", 1.0, 2.0)]  # Pending drawn under
    # created before the first start (a watch's sighting): Pending counts from 0; only
    # index 7's retry (created 0.1, started 0.6) waited in row 0
    assert [(b.start, b.end) for b in found.bars if b.row == 0 and b.phase == "Pending"] == [
        (pytest.approx(0.1), 0.6)
    ]


def test_png_legend_sits_outside_the_bars_and_shows_pending(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    for run in (_pending_run(), _parallel_run(), _sweep(60, failed=59)):
        fig = gantt.figure(run)
        try:
            fig.canvas.draw()
            renderer = fig.canvas.get_renderer()
            (axes,) = fig.axes
            # wherever it is placed: on the figure or on the axes
            (legend,) = [*fig.legends, *[a.get_legend() for a in fig.axes if a.get_legend()]]
            box, plot = legend.get_window_extent(renderer), axes.get_window_extent(renderer)
            assert not box.overlaps(plot), (box, plot)
            assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1)
        finally:
            plt.close(fig)
    fig = gantt.figure(_pending_run())
    labels = [t.get_text() for t in fig.legends[0].get_texts()] if fig.legends else []
    hatched = [p for p in fig.axes[0].patches if p.get_hatch()]
    plt.close(fig)
    assert labels == ["Pending", "Succeeded"] and len(hatched) == 3
    assert gantt.draw(_pending_run(), tmp_path / "c.png").stat().st_size > 0
