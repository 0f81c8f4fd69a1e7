"""The `mlgen` command: registers the commands; each lives in its own module."""

from __future__ import annotations

from importlib import metadata
from typing import Annotated

import typer

from mlgen import DISTRIBUTION
from mlgen.cli import cluster_cmd, extras
from mlgen.cli.apply_cmd import apply_command
from mlgen.cli.common import Command
from mlgen.cli.estimate_cmd import estimate_command
from mlgen.cli.health_cmd import argocd_health_command
from mlgen.cli.init_cmd import init_command
from mlgen.cli.render_cmd import render_command
from mlgen.cli.report_cmd import report_command
from mlgen.cli.schema_cmd import schema_command
from mlgen.cli.validate_cmd import validate_command

app = typer.Typer(
    name="mlgen",
    help="Render batches of ML jobs into GitOps-ready Kubernetes manifests "
    "(sequential, parallel, or in stages such as prep -> sweep -> eval), and prove them on a "
    "cluster.",
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


app.command("render", cls=Command)(render_command)
app.command("validate", cls=Command)(validate_command)
app.command("estimate", cls=Command)(estimate_command)
app.command("schema", cls=Command)(schema_command)
app.command("argocd-health", cls=Command)(argocd_health_command)
app.command("init", cls=Command)(init_command)
# apply, report and cluster need the Kubernetes client (the `cluster` extra); without it
# their help works all the same and running them says what to install.
app.command("apply", cls=Command, epilog=extras.CLUSTER_EPILOG)(apply_command)
app.command("report", cls=Command, epilog=extras.CLUSTER_EPILOG)(report_command)
app.add_typer(cluster_cmd.app, name="cluster", epilog=extras.CLUSTER_EPILOG)


def main() -> None:
    app()
