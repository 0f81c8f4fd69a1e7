"""The `mlgen` command: registers the commands; each lives in its own module."""

from __future__ import annotations

from importlib import metadata
from typing import Annotated

import typer

from mlgen import DISTRIBUTION
from mlgen.cli import extras
from mlgen.cli.estimate_cmd import estimate_command
from mlgen.cli.init_cmd import init_command
from mlgen.cli.render_cmd import render_command
from mlgen.cli.schema_cmd import schema_command
from mlgen.cli.validate_cmd import validate_command

app = typer.Typer(
    name="mlgen",
    help="Render batches of ML jobs into GitOps-ready Kubernetes manifests "
    "(a sequential-ordered and a parallel variant), and prove them on a cluster.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlgen {metadata.version(DISTRIBUTION)}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """mlgen: batches of ML jobs -> committed Kubernetes manifests, proven on a cluster."""


app.command("render")(render_command)
app.command("validate")(validate_command)
app.command("estimate")(estimate_command)
app.command("schema")(schema_command)
app.command("init")(init_command)
# apply, report and cluster need the Kubernetes client (the `cluster` extra); without it
# they are listed all the same and say what to install.
extras.register_cluster_commands(app)


def main() -> None:
    app()
