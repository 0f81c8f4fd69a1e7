"""`mlgen schema`: print or write the batch format's JSON Schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlgen import schema
from mlgen.cli.common import reported


def schema_command(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of standard output."),
    ] = None,
) -> None:
    """Print the JSON Schema of batch files (point your editor's YAML plugin at it)."""
    with reported():
        if output is None:
            typer.echo(schema.text(), nl=False)
        else:
            output.write_text(schema.text(), encoding="utf-8")
