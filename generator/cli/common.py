"""What every command shares: turning an MlgenError into one red line and an exit code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.markup import escape

from mlgen import limits
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
            err.print(f"[bold red]error:[/] {escape(limits.clip(line))}", emoji=False)
        raise typer.Exit(e.exit_code) from None
    except OSError as e:
        # An output path that is a file, a directory without write permission, a full
        # disk: the user's to fix, so one line and exit 2, never a traceback.
        where = e.filename if e.filename is not None else "output"
        line = f"{where}: {e.strerror or e}; check that the path names a writable directory"
        err.print(f"[bold red]error:[/] {escape(limits.clip(line))}", emoji=False)
        raise typer.Exit(2) from None
