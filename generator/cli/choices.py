"""Option choices as enums, so that `--help` lists them and Typer rejects the rest."""

from __future__ import annotations

import enum


class Variant(enum.StrEnum):
    """The variant directories (`mlgen.variants.directories()`, checked by a test)."""

    sequential = "sequential"
    parallel = "parallel"
