"""`mlgen report`: draw a timeline JSON as a Gantt chart (SVG, or PNG with mlgen-gitops[png])."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlgen import gantt, timeline
from mlgen.cli import extras
from mlgen.cli.common import err, reported


@extras.needs_cluster("report")
def report_command(
    timeline_json: Annotated[
        Path,
        typer.Argument(
            metavar="TIMELINE",
            help="A timeline JSON from `mlgen apply --timeline` or the "
            "conformance suite's artifacts.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="CHART",
            help="Chart to write: .svg, or .png with the "
            "mlgen-gitops[png] extra (default: an .svg beside the JSON).",
        ),
    ] = None,
) -> None:
    """Draw a Gantt chart: a row per job (named, with its index in an Indexed Job), a bar per
    attempt, coloured by outcome; list the jobs that failed."""
    with reported():
        found = timeline.Timeline.load(timeline_json)
        target = gantt.draw(found, output or timeline_json.with_suffix(".svg"))
        for line in found.failures():
            err.print(f"failed: {line}", markup=False)
        err.print(
            f"{target}: makespan {found.makespan:.0f}s, peak "
            f"{found.max_concurrency()} pods, {len(found.pods)} attempts"
        )
