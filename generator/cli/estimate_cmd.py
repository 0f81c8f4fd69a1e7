"""`mlgen estimate`: predicted makespan of each variant."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mlgen import estimate, source, units, variants
from mlgen.cli.common import note_skipped, out, reported
from mlgen.cli.render_cmd import Batches
from mlgen.errors import UsageError


def estimate_command(
    batches: Batches,
    parallelism: Annotated[
        int | None,
        typer.Option(
            "--parallelism",
            "-p",
            min=1,
            help="Override spec.parallelism (a staged batch's stages keep their own).",
        ),
    ] = None,
    overhead: Annotated[
        float | None,
        typer.Option(
            "--overhead",
            metavar="SECONDS",
            min=0,
            help="Per-step overhead for every strategy (default: each strategy's figure "
            "measured on the local control plane; --json shows them).",
        ),
    ] = None,
    overhead_from: Annotated[
        Path | None,
        typer.Option(
            "--overhead-from",
            metavar="FILE",
            help="Per-step overheads a conformance run "
            "calibrated on your cluster (artifacts/conformance/calibration/epsilon.json; "
            "calibration-gw0/epsilon.json under pytest-xdist).",
        ),
    ] = None,
    capacity: Annotated[
        list[str] | None,
        typer.Option(
            "--capacity",
            metavar="RESOURCE=QUANTITY",
            help="What runs at once on the cluster or in your Kueue queue, like "
            "nvidia.com/gpu=4 (repeat for more resources): no more pods run together than "
            "fit. Default: no bound but the parallelism.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for tools.")] = False,
) -> None:
    """Predict each variant's makespan from the jobs' expectedDuration.

    Sequential: the sum of durations plus a per-step overhead. Parallel: the schedule
    the Job controller produces (lowest pending index first onto p slots), with the
    lower bound max(sum/p, longest job). Stages: each stage's own schedule, one after
    another (a table per staged batch shows them). All add the Job controller's final
    ~1s.
    """
    with reported():
        per = estimate.overheads(seconds=overhead, calibration=overhead_from)
        read = source.load(batches)
        note_skipped(read.skipped)
        room = _capacity(capacity or [])
        results = [
            estimate.of(b, parallelism=parallelism, overhead=per, capacity=room)
            for b in read.batches
        ]
        if as_json:
            out.print_json(json.dumps([r.as_dict() for r in results]))
            return
        table = Table(title="Estimated makespan")
        # Every variant any of the batches can run, in the registry's order; "-" where a
        # batch cannot run it at all (the parallel variant of a staged batch).
        directories = [
            d for d in variants.directories() if any(d in dict(r.makespans) for r in results)
        ]
        for column in ("batch", "jobs", "p", *directories, "lower bound", "speed-up"):
            table.add_column(column, justify="left" if column == "batch" else "right")
        for r in results:
            # A variant the batch does not render still gets its figure, marked so.
            table.add_row(
                r.batch,
                str(r.jobs),
                str(r.parallelism),
                *(
                    "-"
                    if d not in dict(r.makespans)
                    else units.human_duration(r.seconds(d))
                    + ("" if d in r.rendered else " (not rendered)")
                    for d in directories
                ),
                units.human_duration(r.lower_bound_seconds),
                "-" if r.speedup is None else f"{r.speedup:.2f}x",
            )
        out.print(table)
        for r in (r for r in results if r.stages):
            stages = Table(title=f"Stages of {r.batch}")
            for column in ("stage", "jobs", "p", "estimate", "lower bound"):
                stages.add_column(column, justify="left" if column == "stage" else "right")
            for s in r.stages:
                stages.add_row(
                    s.name,
                    str(s.jobs),
                    str(s.parallelism),
                    units.human_duration(s.seconds),
                    units.human_duration(s.lower_bound_seconds),
                )
            out.print(stages)


def _capacity(pairs: list[str]) -> dict[str, str]:
    room: dict[str, str] = {}
    for pair in pairs:
        resource, equals, amount = pair.partition("=")
        try:
            if not equals or not resource:
                raise ValueError("write it as RESOURCE=QUANTITY, like nvidia.com/gpu=4")
            room[resource] = units.check_quantity(amount)
        except ValueError as e:
            raise UsageError(f"--capacity {pair!r}: {e}") from e
    return room
