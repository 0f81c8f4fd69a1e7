"""`mlgen init`: scaffold a GitOps repository for mlgen batches (or add to one)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlgen import scaffold
from mlgen.cli.common import err, reported


def init_command(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="The repository to create or add to.")
    ] = Path("."),
    repo_url: Annotated[
        str,
        typer.Option(
            metavar="URL",
            help="This repository's Git URL, for the Argo CD Application and the "
            "Flux GitRepository.",
        ),
    ] = scaffold.Options.repo_url,
    namespace: Annotated[
        str, typer.Option(metavar="NAMESPACE", help="Namespace of the example batch.")
    ] = scaffold.Options.namespace,
) -> None:
    """Create batches/ (an example sweep), manifests/ (rendered), a conformance suite, CI
    workflows (kind conformance, render --check), an Argo CD Application, a Flux
    Kustomization and a pre-commit configuration. Never overwrites a file: if any exists,
    nothing is written.
    """
    with reported():
        directory.mkdir(parents=True, exist_ok=True)
        written = scaffold.create(
            directory, scaffold.Options(repo_url=repo_url, namespace=namespace)
        )
        for path in written:
            err.print(f"  created {path}", markup=False, highlight=False)
        err.print(
            f"{directory}: {len(written)} files. Next: edit batches/example.yaml, run "
            "`mlgen render batches/ -o manifests/`, commit, and `pre-commit install`",
            markup=False,
        )
