"""What every command shares: turning an MlgenError into one red line and an exit code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.markup import escape

from mlgen.errors import MlgenError

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Run a command body; print an MlgenError as `error: …` lines and exit with its code."""
    try:
        yield
    except MlgenError as e:
        for line in str(e).splitlines():
            err.print(f"[bold red]error:[/] {escape(line)}", emoji=False)
        raise typer.Exit(e.exit_code) from None
