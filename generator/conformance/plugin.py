"""The mlgen pytest plugin (entry point `pytest11`): hooks and fixtures only.

Each concern has its own module: `options` (command-line options and ini keys),
`sessions` (the session's cluster), `namespaces` (throwaway restricted namespaces),
`calibration` (ε), `figures` (measured figures in the summary), `runner` (render,
apply, record). Tests that need KWOK's fake capacity or simulated failures carry the
`simulated_only` marker, which skips them (with the reason) on any other cluster,
whether chosen by option or by ini key.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlgen.conformance import calibration, figures, namespaces, options, runner, sessions
from mlgen.conformance.checks import Epsilon
from mlgen.conformance.namespaces import RESTRICTED
from mlgen.conformance.sessions import Cluster

__all__ = ["RESTRICTED", "Cluster"]  # where test modules have imported them from

SIMULATED_ONLY = "simulated_only"


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "k8s(**kwargs): pytest-kubernetes cluster options")
    config.addinivalue_line("markers", "mlgen: needs a Kubernetes cluster (mlgen plugin)")
    config.addinivalue_line(
        "markers",
        f"{SIMULATED_ONLY}: needs the simulated cluster's fake "
        "capacity or simulated failures (skipped elsewhere)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any(item.get_closest_marker(SIMULATED_ONLY) for item in items) and not options.simulated(
        config
    ):
        skip = pytest.mark.skip(
            reason="needs KWOK's fake capacity or simulated failures, "
            "which only the local simulated cluster has"
        )
        for item in items:
            if item.get_closest_marker(SIMULATED_ONLY):
                item.add_marker(skip)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "mlgen_batch_case" in metafunc.fixturenames:
        cases = runner.cases(options.batch_files(metafunc.config))
        metafunc.parametrize("mlgen_batch_case", cases, ids=[c.id for c in cases])


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    figures.summary(terminalreporter, config)


@pytest.fixture(scope="session")
def mlgen_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The cluster every conformance test of this session runs on."""
    with sessions.ClusterSession(request.config) as cluster:
        yield cluster


@pytest.fixture
def mlgen_record(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a measured figure for the session's summary."""
    return figures.reporter(request.config, keep=True)


@pytest.fixture
def mlgen_namespace(mlgen_cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace enforcing Pod Security "restricted", deleted after the test."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    with namespaces.fresh(mlgen_cluster.client, f"t-{slug}-{secrets.token_hex(2)}") as name:
        yield name


@pytest.fixture(scope="session")
def mlgen_artifacts(request: pytest.FixtureRequest) -> Path:
    path = Path(options.value(request.config, "artifacts"))
    if not path.is_absolute():
        path = Path(request.config.rootpath) / path
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def mlgen_time_scale(request: pytest.FixtureRequest, mlgen_cluster: Cluster) -> float:
    """How much faster user batches run: only on a simulated cluster, where a pod's run
    time is its annotation; real containers take as long as they take."""
    scale = float(options.value(request.config, "time_scale"))
    return scale if mlgen_cluster.simulated else 1.0


@pytest.fixture
def mlgen_run(
    mlgen_cluster: Cluster,
    mlgen_namespace: str,
    mlgen_artifacts: Path,
    request: pytest.FixtureRequest,
) -> runner.Runner:
    """Render a batch into this test's namespace, apply a variant, return its timeline."""
    return runner.Runner(
        client=mlgen_cluster.client,
        namespace=mlgen_namespace,
        artifacts=mlgen_artifacts / request.node.name.replace("/", "_"),
        time_scale=1.0,
        say=figures.reporter(request.config),
        estimated=figures.estimates(request.config),
    )


@pytest.fixture(scope="session")
def mlgen_epsilon(
    mlgen_cluster: Cluster, mlgen_artifacts: Path, request: pytest.FixtureRequest
) -> Epsilon:
    """Per-step overhead of this cluster, measured once by a calibration run that must
    keep its own promises and stay under the ceiling."""
    raw = options.value(request.config, "max_epsilon")
    ceiling = float(raw) if raw not in (None, "") else None
    with namespaces.fresh(
        mlgen_cluster.client, f"mlgen-calibration-{secrets.token_hex(2)}"
    ) as namespace:
        run = runner.Runner(
            client=mlgen_cluster.client,
            namespace=namespace,
            artifacts=mlgen_artifacts / "calibration",
            time_scale=1.0,
            say=figures.reporter(request.config),
        )
        epsilon, measured = calibration.calibrate(run, ceiling=ceiling)
    calibration.save(measured, mlgen_artifacts / "calibration" / "epsilon.json")
    say = figures.reporter(request.config, keep=True)
    for m in measured:
        say(f"calibrated {m.describe()}")
    say(
        f"ε: waves {epsilon.waves:.3f}s, indexed {epsilon.indexed:.3f}s; pod slack "
        f"{epsilon.slack:.2f}s"
    )
    return epsilon
