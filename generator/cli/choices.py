"""Option choices as enums, so that `--help` lists them and Typer rejects the rest."""

from __future__ import annotations

import enum

from mlgen import variants

# The variant directories, from the registry: a new variant is a new choice.
Variant = enum.StrEnum("Variant", {d: d for d in variants.directories()})  # type: ignore[misc]
# `--variant [sequential|parallel]` in help, not Typer's `<list[sequential|parallel]>`.
VARIANT_METAVAR = "[" + "|".join(variants.directories()) + "]"
