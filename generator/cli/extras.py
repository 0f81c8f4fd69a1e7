"""Commands that need an optional extra: the real ones when it is installed, else
stand-ins that keep the name in `--help` and say what to install."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import typer

from mlgen.cli.common import reported
from mlgen.errors import UsageError

CLUSTER_HINT = "pip install 'mlgen[cluster]'"


def register_cluster_commands(app: typer.Typer) -> None:
    """`mlgen apply` and `mlgen cluster …`: they talk to Kubernetes."""
    if importlib.util.find_spec("kubernetes") is not None:
        from mlgen.cli import cluster_cmd
        from mlgen.cli.apply_cmd import apply_command

        app.command("apply")(apply_command)
        app.add_typer(cluster_cmd.app, name="cluster")
        return
    loose = {"ignore_unknown_options": True, "allow_extra_args": True}
    for name, what in (("apply", "Server-side apply a rendered variant"),
                       ("cluster", "The local control plane")):
        app.command(name, context_settings=loose, add_help_option=False,
                    help=f"{what} (needs the Kubernetes client: {CLUSTER_HINT}).")(
            _missing(name))


def _missing(name: str) -> Callable[[typer.Context], None]:
    def command(ctx: typer.Context) -> None:
        with reported():
            raise UsageError(f"`mlgen {name}` needs the Kubernetes client, which this install "
                             f"of mlgen leaves out; run {CLUSTER_HINT}")
    return command
