"""Measured figures: progress lines for `-s` runs, and the session's summary section."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

_FIGURES = pytest.StashKey[list[str]]()


def reporter(config: pytest.Config, *, keep: bool = False) -> Callable[[str], None]:
    """Progress for `-s` runs; with `keep`, the line also goes into the final summary."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")

    def say(line: str) -> None:
        if terminal is not None and config.getoption("capture") == "no":
            terminal.write_line(f"mlgen: {line}")
        if keep or "makespan" in line:
            config.stash.setdefault(_FIGURES, []).append(line)

    return say


def summary(terminalreporter: Any, config: pytest.Config) -> None:
    figures = config.stash.get(_FIGURES, [])
    if figures:
        terminalreporter.section("mlgen conformance figures")
        for line in figures:
            terminalreporter.write_line(line)
