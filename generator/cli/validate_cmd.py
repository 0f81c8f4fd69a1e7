"""`mlgen validate`: errors and warnings of batch files, writing nothing."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from mlgen import render, source, validation
from mlgen.cli.common import err, note_skipped, out, reported
from mlgen.cli.render_cmd import Batches
from mlgen.errors import SpecError


def validate_command(
    batches: Batches,
    strict: Annotated[
        bool, typer.Option("--strict", help="Treat warnings as errors (exit 1).")
    ] = False,
    expand: Annotated[
        bool,
        typer.Option(
            "--expand",
            help="Print every job after matrix expansion and defaults (name, args, "
            "env), one line each, on standard output.",
        ),
    ] = False,
) -> None:
    """Check batch files: schema, names, both variants' manifests; print warnings.

    Renders in memory (nothing is written) so that everything `render` would reject is
    reported here too. Warnings: no resource requests, an image with neither tag nor
    digest, no expectedDuration, onFailure: continue under Argo CD waves.
    """
    with reported():
        read = source.load(batches)
        note_skipped(read.skipped)
        loaded = read.batches
        render.render_all(loaded)
        if expand:
            for batch in loaded:
                for job in batch.jobs:
                    out.print(
                        json.dumps(
                            {
                                "batch": batch.name,
                                "job": job.name,
                                "args": list(job.args),
                                "env": job.env,
                            },
                            ensure_ascii=False,
                        ),
                        markup=False,
                        highlight=False,
                    )
        found = [w for batch in loaded for w in validation.warnings(batch)]
        for warning in found:
            err.print(f"[yellow]warning:[/] {escape(warning)}")
        if strict and found:
            raise SpecError(f"{len(found)} warning(s) and --strict; fix them or drop --strict")
        jobs = sum(len(b.jobs) for b in loaded)
        err.print(f"ok: {len(loaded)} batch(es), {jobs} job(s), {len(found)} warning(s)")
