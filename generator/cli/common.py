"""What every command shares: turning an MlgenError into one red line and an exit code,
and the help layout."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import typer
import typer.core
from rich.console import Console
from rich.markup import escape

from mlgen import limits, spec, terminal
from mlgen.errors import MlgenError


class SafeConsole(Console):
    """A rich Console that prints text through `terminal.safe`: no control sequence from
    a batch, file name or timeline reaches the terminal."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(
            *(terminal.safe(o) if isinstance(o, str) else o for o in objects),
            **kwargs,
        )


# emoji off: a job named :smile: is printed as written.
err = SafeConsole(stderr=True, highlight=False, soft_wrap=True, emoji=False)
out = SafeConsole(highlight=False, soft_wrap=True, emoji=False)


def echo(text: str, *, nl: bool = True, exact_when_piped: bool = False) -> None:
    """typer.echo through `terminal.safe`; `exact_when_piped`: text that is data (a
    diff to apply as a patch) goes out byte for byte when stdout is not a terminal."""
    piped = not sys.stdout.isatty()
    typer.echo(text if exact_when_piped and piped else terminal.safe(text), nl=nl)


def note_skipped(skipped: Sequence[str]) -> None:
    """One stderr line naming the files of the directories given that hold no batch, so a
    batch whose kind was mistyped is not dropped unseen."""
    if skipped:
        err.print(
            f"skipped {', '.join(skipped)}: no document with kind: Batch "
            f"(apiVersion {spec.API_VERSION})",
            markup=False,
        )


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Run a command body; print an MlgenError as `error: …` lines and exit with its code."""
    try:
        yield
    except MlgenError as e:
        for line in str(e).splitlines():
            err.print(f"[bold red]error:[/] {escape(limits.clip(line))}", emoji=False)
        raise typer.Exit(e.exit_code) from None
    except OSError as e:
        # An output path that is a file, a directory without write permission, a full
        # disk: the user's to fix, so one line and exit 2, never a traceback.
        where = e.filename if e.filename is not None else "output"
        line = f"{where}: {e.strerror or e}; check that the path names a writable directory"
        err.print(f"[bold red]error:[/] {escape(limits.clip(line))}", emoji=False)
        raise typer.Exit(2) from None


class Command(typer.core.TyperCommand):
    """A command whose help lists an argument with a metavar by that name alone
    (`BATCH...`): Typer would add the Python type (`BATCH <list[Path]>`), which says
    nothing to someone writing a command line."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments: list[tuple[str, str]] = []
        options: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name != "argument":
                options.append(record)
            elif param.metavar:
                many = "..." if param.nargs != 1 else ""
                arguments.append((f"{param.metavar}{many}", record[1]))
            else:
                arguments.append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
