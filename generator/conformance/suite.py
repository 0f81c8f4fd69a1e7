"""The generic conformance test for a user's own batches.

Import it into a test module of your conformance directory and say which batch files
to check (`--mlgen-batch GLOB` or the ini key `mlgen_batches`):

    # conformance/test_batches.py
    from mlgen.conformance.suite import test_batch_conforms  # noqa: F401

Every (batch, variant) becomes one test: the variant is applied to a fresh namespace
that enforces Pod Security "restricted", and its timeline is checked against the
bounds of docs/design.md with ε measured on the cluster.
"""

from __future__ import annotations

import dataclasses

from mlgen import variants
from mlgen.checks import Epsilon
from mlgen.conformance import runner


def test_batch_conforms(
    mlgen_batch_case: runner.Case,
    mlgen_run: runner.Runner,
    mlgen_epsilon: Epsilon,
    mlgen_time_scale: float,
) -> None:
    run = dataclasses.replace(mlgen_run, time_scale=mlgen_time_scale)
    batch = run.load(mlgen_batch_case.path, mlgen_batch_case.batch)
    result = run.run(batch, mlgen_batch_case.variant)
    assert result.failure is None, str(result.failure)
    check_result(result, mlgen_epsilon)


def check_result(result: runner.RunResult, epsilon: Epsilon) -> None:
    """The checks for a run that should have succeeded, by variant."""
    unit = variants.select(result.batch, result.variant)
    unit.check(result.timeline, result.batch, epsilon=epsilon)
