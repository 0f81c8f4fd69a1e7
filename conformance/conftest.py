"""This repo's conformance suite. The mlgen pytest plugin (registered by mlgen's entry
point) supplies the cluster, namespaces, ε and the runner; this file only says which
batches the generic test checks, and how much faster the simulated cluster runs them."""

from __future__ import annotations

import dataclasses

import pytest

from mlgen.conformance import runner

pytest_plugins = ["pytester"]  # test_kind_wiring runs an inner pytest session


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("mlgen_batches", "examples/*.yaml")
    if config.getoption("--mlgen-time-scale") is None:
        # The examples plan 20m to 3h jobs; a 2h job then runs for 4 s, on KWOK or as a
        # stand-in (and nothing for less than 3 s).
        config.option.mlgen_time_scale = "1800"


@pytest.fixture
def mlgen_run(mlgen_run: runner.Runner) -> runner.Runner:
    """This repository's own tests plan their sleepers in seconds, so they run unscaled;
    the examples (`test_batch_conforms`, which applies `mlgen_time_scale`) are scaled."""
    return dataclasses.replace(mlgen_run, time_scale=1.0)
