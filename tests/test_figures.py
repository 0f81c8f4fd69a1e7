"""The conformance suite's estimate table: every run's predicted against measured
makespan, with the error in % of the measurement."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlgen.conformance import figures


def test_the_table_lines_up_runs_with_their_error() -> None:
    lines = figures.table([("sweep/parallel", 12.5, 10.0), ("chain/sequential", 9.0, 10.0)])
    assert lines == [
        "run               measured  estimate   error",
        "sweep/parallel      10.00s    12.50s   +25.0 %",
        "chain/sequential    10.00s     9.00s   -10.0 %",
    ]


def test_a_run_without_a_measured_makespan_has_no_error() -> None:
    assert figures.table([("x/parallel", 3.0, 0.0)])[1].endswith("—")


def test_the_session_summary_prints_every_noted_run() -> None:
    config = SimpleNamespace(stash=pytest.Stash())
    note = figures.estimates(config)  # type: ignore[arg-type]
    note("sweep/parallel", 12.5, 10.0)
    note("chain/sequential", 9.0, 10.0)
    printed: list[str] = []
    terminal = SimpleNamespace(section=lambda title: printed.append(f"== {title}"))
    terminal.write_line = printed.append
    figures.summary(terminal, config)  # type: ignore[arg-type]
    assert printed[0] == "== mlgen estimate against measured makespan"
    assert printed[1:] == figures.table(
        [("sweep/parallel", 12.5, 10.0), ("chain/sequential", 9.0, 10.0)]
    )
