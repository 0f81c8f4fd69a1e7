"""The mutation harness (conformance/mutation.py) can still plant every mutant: each
anchor it edits appears exactly once in today's code."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_mutant_anchor_appears_exactly_once() -> None:
    spec = importlib.util.spec_from_file_location("mutation", ROOT / "conformance/mutation.py")
    assert spec is not None and spec.loader is not None
    mutation = importlib.util.module_from_spec(spec)
    sys.modules["mutation"] = mutation  # dataclasses look their module up while defined
    spec.loader.exec_module(mutation)
    assert len(mutation.MUTANTS) >= 13
    for mutant in mutation.MUTANTS:
        for rel, old, _ in mutant.edits:
            count = (ROOT / rel).read_text().count(old)
            assert count == 1, f"{mutant.name}: {rel} holds its anchor {count} times"
