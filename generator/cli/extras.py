"""Commands that need an optional extra: the real ones when it is installed, else
stand-ins that keep the name in `--help` and say what to install."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import typer

from mlgen.cli.common import reported
from mlgen.errors import UsageError

CLUSTER_HINT = "pip install 'mlgen-gitops[cluster]'"


def installed(module: str) -> bool:
    """Whether `module` imports (an extra's package, installed and working)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def register_cluster_commands(app: typer.Typer) -> None:
    """`mlgen apply`, `mlgen report` and `mlgen cluster …`: they talk to Kubernetes or read
    what it recorded (the timeline module)."""
    if installed("kubernetes"):
        from mlgen.cli import cluster_cmd
        from mlgen.cli.apply_cmd import apply_command
        from mlgen.cli.report_cmd import report_command

        app.command("apply")(apply_command)
        app.command("report")(report_command)
        app.add_typer(cluster_cmd.app, name="cluster")
        return
    loose = {"ignore_unknown_options": True, "allow_extra_args": True}
    for name, what in (
        ("apply", "Server-side apply a rendered variant"),
        ("report", "Draw a run's timeline as a Gantt chart"),
        ("cluster", "The local control plane"),
    ):
        app.command(
            name,
            context_settings=loose,
            add_help_option=False,
            help=f"{what} (needs the Kubernetes client: {CLUSTER_HINT}).",
        )(_missing(name))


def _missing(name: str) -> Callable[[typer.Context], None]:
    def command(ctx: typer.Context) -> None:
        with reported():
            raise UsageError(
                f"`mlgen {name}` needs the Kubernetes client, which this install "
                f"of mlgen leaves out; run {CLUSTER_HINT}"
            )

    return command
