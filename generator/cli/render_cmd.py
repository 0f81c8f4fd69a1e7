"""`mlgen render`: batch files -> the committed manifest tree (or a staleness check)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlgen import health, render, source, tree
from mlgen.cli import choices
from mlgen.cli.common import echo, err, note_skipped, reported
from mlgen.errors import StaleError

Batches = Annotated[
    list[Path],
    typer.Argument(
        help="Batch files (YAML, several documents allowed), or directories of them "
        "(their files without a kind: Batch document are skipped and named).",
        show_default=False,
        metavar="BATCH",  # listed as BATCH... (cli.common.Command)
    ),
]
Output = Annotated[
    Path, typer.Option("--output", "-o", help="Root of the manifest tree.", metavar="DIR")
]


def render_command(
    batches: Batches,
    output: Output = Path("manifests"),
    variant: Annotated[
        list[choices.Variant] | None,
        typer.Option(
            "--variant",
            metavar=choices.VARIANT_METAVAR,
            help="Render only this variant of each batch "
            "(repeatable); the others' files stay as they are. "
            "Default: each batch's spec.variants.",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 with a diff when the tree is stale."),
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Also remove the generated directories of batches that are in none "
            "of the given files (their own files stay).",
        ),
    ] = False,
) -> None:
    """Render batch files into GitOps-ready manifests under OUTPUT/<batch>/.

    Writes the variants each batch lists (spec.variants) and, with spec.flux, its Flux
    chain; validates every object against the Kubernetes schema first, and replaces only
    files it generated itself, batch by batch. Example:
    mlgen render examples/sweep.yaml -o manifests/
    """
    with reported():
        read = source.load(batches)
        note_skipped(read.skipped)
        loaded = read.batches
        rendered = render.render_all(loaded, only=tuple(v.value for v in variant or ()))
        result = tree.plan(
            output, rendered.files, scopes=rendered.scopes, batches=rendered.batches, prune=prune
        )
        if result.orphans:
            err.print(
                f"{output}: left alone: {', '.join(result.orphans)} (generated for "
                "batches not in these files; --prune removes them)",
                markup=False,
            )
        if check:
            if result.dirty:
                # Verbatim: rich would strip carriage returns and expand tabs.
                echo(tree.diff(result), nl=False, exact_when_piped=True)
                command = " ".join(
                    [
                        "mlgen render",
                        *map(str, batches),
                        "-o",
                        str(output),
                        *(["--prune"] if prune else []),
                    ]
                )
                raise StaleError(
                    f"{output}: {len(result.added)} missing, {len(result.changed)} "
                    f"changed and {len(result.removed)} stale file(s); "
                    f"run `{command}` and commit the result"
                )
            err.print(f"{output}: up to date ({len(rendered.files)} files)", markup=False)
            return
        tree.apply(result)
        for batch in loaded:
            if note := health.argocd_note(batch):
                err.print(f"note: {note}", markup=False, soft_wrap=True)
        err.print(
            f"{output}: {len(result.added)} added, {len(result.changed)} changed, "
            f"{len(result.removed)} removed, {len(result.unchanged)} unchanged "
            f"({', '.join(b.name for b in loaded)})",
            markup=False,
        )
