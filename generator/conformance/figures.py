"""Measured figures: progress lines for `-s` runs, and the session's summary section with
the table of every run's estimated against measured makespan. Under pytest-xdist each
worker hands its figures to the controller, which prints them under the worker's name;
`-s` progress lines need `-n 0` (xdist drops a worker's output)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

WORKER_OUTPUT = "mlgen_figures"  # the key in an xdist worker's `workeroutput`

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


def hand_over(config: pytest.Config) -> None:
    """On a pytest-xdist worker, put its figures where the controller reads them."""
    output = getattr(config, "workeroutput", None)
    if output is not None:
        lines: list[str] = config.stash.get(_FIGURES, [])
        rows: list[tuple[str, float, float]] = config.stash.get(_ESTIMATES, [])
        output[WORKER_OUTPUT] = {"figures": list(lines), "estimates": [list(r) for r in rows]}


def take_over(
    config: pytest.Config, worker: str, output: dict[str, Any] | None, *, error: object = None
) -> None:
    """On the controller, a finished worker's figures, each line under its name (taken
    once: xdist reports a worker down twice on Ctrl-C); a worker that crashed says so."""
    lines = config.stash.setdefault(_FIGURES, [])
    found = (output or {}).pop(WORKER_OUTPUT, None)
    if found is None:
        if error is not None:
            lines.append(f"{worker}: no figures, the worker went down ({error})")
        return
    lines.extend(f"{worker}: {line}" for line in found.get("figures", []))
    rows = config.stash.setdefault(_ESTIMATES, [])
    rows.extend((str(run), float(p), float(m)) for run, p, m in found.get("estimates", []))
