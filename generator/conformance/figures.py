"""Measured figures: progress lines for `-s` runs, and the session's summary section with
the table of every run's estimated against measured makespan."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

_FIGURES = pytest.StashKey[list[str]]()
_ESTIMATES = pytest.StashKey[list[tuple[str, float, float]]]()


def reporter(config: pytest.Config, *, keep: bool = False) -> Callable[[str], None]:
    """Progress for `-s` runs; with `keep`, the line also goes into the final summary."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")

    def say(line: str) -> None:
        if terminal is not None and config.getoption("capture") == "no":
            terminal.write_line(f"mlgen: {line}")
        if keep or "makespan" in line:
            config.stash.setdefault(_FIGURES, []).append(line)

    return say


def estimates(config: pytest.Config) -> Callable[[str, float, float], None]:
    """Where a run's `mlgen estimate` and measured makespan go, for the summary table."""

    def note(run: str, predicted: float, measured: float) -> None:
        config.stash.setdefault(_ESTIMATES, []).append((run, predicted, measured))

    return note


def table(rows: list[tuple[str, float, float]]) -> list[str]:
    """`run | measured | estimate | error` lines, errors against the measured makespan."""
    width = max([len("run"), *(len(run) for run, _, _ in rows)])
    lines = [f"{'run':<{width}}  measured  estimate   error"]
    for run, predicted, measured in rows:
        error = f"{100 * (predicted - measured) / measured:+6.1f} %" if measured else "     —"
        lines.append(f"{run:<{width}}  {measured:7.2f}s  {predicted:7.2f}s  {error}")
    return lines


def summary(terminalreporter: Any, config: pytest.Config) -> None:
    figures = config.stash.get(_FIGURES, [])
    if figures:
        terminalreporter.section("mlgen conformance figures")
        for line in figures:
            terminalreporter.write_line(line)
    rows = config.stash.get(_ESTIMATES, [])
    if rows:
        terminalreporter.section("mlgen estimate against measured makespan")
        for line in table(rows):
            terminalreporter.write_line(line)
