"""`mlgen estimate`: predicted makespan of each variant."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from mlgen import estimate, source, units
from mlgen.cli.common import out, reported
from mlgen.cli.render_cmd import Batches


def estimate_command(
    batches: Batches,
    parallelism: Annotated[int | None, typer.Option(
        "--parallelism", "-p", min=1, help="Override spec.parallelism.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for tools.")] = False,
) -> None:
    """Predict each variant's makespan from the jobs' expectedDuration.

    Sequential: the sum of durations. Parallel: the schedule the Job controller
    produces (lowest pending index first onto p slots), with the lower bound
    max(sum/p, longest job).
    """
    with reported():
        results = [estimate.estimate(b, parallelism=parallelism)
                   for b in source.load_files(batches)]
        if as_json:
            out.print_json(json.dumps([r.as_dict() for r in results]))
            return
        table = Table(title="Estimated makespan")
        for column in ("batch", "jobs", "p", "sequential", "parallel", "lower bound",
                       "speed-up"):
            table.add_column(column, justify="left" if column == "batch" else "right")
        for r in results:
            # A batch that renders no parallel variant still gets its figure, marked so.
            mark = "" if "parallel" in r.variants else " (not rendered)"
            table.add_row(r.batch, str(r.jobs), str(r.parallelism),
                          units.human_duration(r.sequential_seconds),
                          units.human_duration(r.parallel_seconds) + mark,
                          units.human_duration(r.lower_bound_seconds), f"{r.speedup:.2f}x")
        out.print(table)
