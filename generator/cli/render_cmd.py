"""`mlgen render`: batch files -> the committed manifest tree (or a staleness check)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlgen import flux, render, source, tree
from mlgen.cli.common import err, out, reported
from mlgen.errors import StaleError

Batches = Annotated[list[Path], typer.Argument(
    help="Batch files (YAML, several documents allowed).", show_default=False)]
Output = Annotated[Path, typer.Option("--output", "-o", help="Root of the manifest tree.")]


def render_command(
    batches: Batches,
    output: Output = Path("manifests"),
    variant: Annotated[list[str] | None, typer.Option(
        "--variant", help="Render only this variant (sequential or parallel); repeatable. "
        "Default: each batch's spec.variants.")] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Write nothing; exit 1 with a diff when the tree is stale.")] = False,
    flux_source: Annotated[str | None, typer.Option(
        help="Also write flux/kustomizations.yaml: one Flux Kustomization per step, chained "
        "with dependsOn. Names the GitRepository holding the manifests.")] = None,
    flux_path: Annotated[str, typer.Option(
        help="Path of the output directory inside that Git repository.")] = "./manifests",
    flux_namespace: Annotated[str, typer.Option(
        help="Namespace of the Flux Kustomization objects.")] = "flux-system",
) -> None:
    """Render batch files into GitOps-ready manifests under OUTPUT/<batch>/.

    Writes a sequential-ordered variant and a parallel variant of each batch, validates
    every object against the Kubernetes schema first, and replaces only files it
    generated itself. Example: mlgen render examples/sweep.yaml -o manifests/
    """
    with reported():
        options = render.Options(
            variants=tuple(variant) if variant else None,
            flux=flux.FluxOptions(source=flux_source, path=flux_path,
                                  namespace=flux_namespace) if flux_source else None)
        loaded = source.load_files(batches)
        files = render.render_all(loaded, options=options)
        result = tree.plan(output, files, sources=frozenset(b.source for b in loaded))
        if check:
            if result.dirty:
                out.print(tree.diff(result), markup=False, end="")
                command = " ".join(["mlgen render", *map(str, batches), "-o", str(output)])
                raise StaleError(f"{output}: {len(result.added)} missing, {len(result.changed)} "
                                 f"changed and {len(result.removed)} stale file(s); "
                                 f"run `{command}` and commit the result")
            err.print(f"{output}: up to date ({len(files)} files)")
            return
        tree.apply(result)
        err.print(f"{output}: {len(result.added)} added, {len(result.changed)} changed, "
                  f"{len(result.removed)} removed, {len(result.unchanged)} unchanged "
                  f"({', '.join(b.name for b in loaded)})")

