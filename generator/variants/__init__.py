"""The ways of running a batch: one module a variant, behind one protocol (`base.Variant`).

The registry is plain data, so that the batch format (`spec`) can name the variants
without importing their renderers. `render`, `apply`, `timeline`, `estimate` and the
conformance suite loop over it. Adding a variant is one module that defines `VARIANT`,
one line here, and its tests (see docs/design.md, "Adding a variant").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlgen import spec
    from mlgen.variants.base import Variant


@dataclass(frozen=True)
class Entry:
    name: str  # the unit; also the value of the `mlgen.io/strategy` annotation
    directory: str  # its output directory, and the name `spec.variants` lists
    module: str
    # Which batches render its directory when spec.variants is unset: batches without
    # spec.stages ("plain") or with them ("staged").
    default_for: str = "plain"


REGISTRY: tuple[Entry, ...] = (
    Entry("waves", "sequential", "mlgen.variants.waves"),
    Entry("indexed", "sequential", "mlgen.variants.indexed"),
    Entry("parallel", "parallel", "mlgen.variants.parallel"),
    Entry("stages", "stages", "mlgen.variants.stages", default_for="staged"),
)


def defaults(*, staged: bool) -> tuple[str, ...]:
    """The directories a batch renders when its spec.variants is unset."""
    wanted = "staged" if staged else "plain"
    return tuple(dict.fromkeys(e.directory for e in REGISTRY if e.default_for == wanted))


def directories() -> tuple[str, ...]:
    """The values `spec.variants` may list, in render order."""
    return tuple(dict.fromkeys(e.directory for e in REGISTRY))


def strategies(directory: str) -> tuple[str, ...]:
    """The units that render into one directory (`spec.sequential.strategy` chooses)."""
    return tuple(e.name for e in REGISTRY if e.directory == directory)


def default(directory: str) -> str:
    """The strategy a batch gets for `directory` when it names none: the first registered."""
    return strategies(directory)[0]


def companions(directory: str) -> tuple[str, ...]:
    """The directories besides `directory` that its strategies may write (a Flux chain)."""
    return tuple(dict.fromkeys(c for n in strategies(directory) for c in get(n).companions))


def get(name: str) -> Variant:
    for entry in REGISTRY:
        if entry.name == name:
            unit: Variant = importlib.import_module(entry.module).VARIANT
            return unit
    raise KeyError(name)


def select(batch: spec.Batch, directory: str) -> Variant:
    """The unit that renders `directory` for this batch."""
    names = strategies(directory)
    return get(names[0] if len(names) == 1 else batch.strategy)


def for_batch(batch: spec.Batch) -> list[Variant]:
    """The units a batch renders, in `spec.variants` order."""
    return [select(batch, d) for d in batch.variants]
