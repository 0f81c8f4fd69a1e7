"""`mlgen report`: draw a timeline JSON as a PNG Gantt chart."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlgen import gantt, timeline
from mlgen.cli.common import err, reported


def report_command(
    timeline_json: Annotated[Path, typer.Argument(
        metavar="TIMELINE", help="A timeline JSON from `mlgen apply --timeline` or the "
        "conformance suite's artifacts.", show_default=False)],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="PNG to write (default: beside the JSON).")] = None,
) -> None:
    """Draw a Gantt chart: a row per job or index, a bar per attempt, coloured by outcome."""
    with reported():
        found = timeline.Timeline.load(timeline_json)
        target = gantt.draw(found, output or timeline_json.with_suffix(".png"))
        err.print(f"{target}: makespan {found.makespan:.0f}s, peak "
                  f"{found.max_concurrency()} pods, {len(found.pods)} attempts")
