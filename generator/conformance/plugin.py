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

from mlgen import kube
from mlgen.checks import Epsilon
from mlgen.conformance import (
    calibration,
    figures,
    namespaces,
    options,
    runner,
    sessions,
    standin,
)
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
    sessions.refuse_workers(config)


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


# tryfirst: xdist answers this hook too (one per CPU), and the first answer wins.
@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """`-n auto` (pytest-xdist): none on kind or a user's cluster; on the local cluster
    `mlgen_workers`, each with a cluster of its own (sessions.workers)."""
    return sessions.workers(config)


@pytest.hookimpl(trylast=True)  # after the session's fixtures were torn down
def pytest_sessionfinish(session: pytest.Session) -> None:
    figures.hand_over(session.config)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    output = getattr(node, "workeroutput", None)
    figures.take_over(node.config, node.gateway.id, output, error=error)


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
    """How much faster batches run than their expectedDuration, on every cluster: on the
    simulated one a pod's run time is its annotation, elsewhere what its stand-in sleeps."""
    return options.time_scale(request.config, simulated=mlgen_cluster.simulated)


@pytest.fixture(scope="session")
def mlgen_placement(
    mlgen_cluster: Cluster, request: pytest.FixtureRequest
) -> standin.Placement | None:
    """Where kubelets are real, every Job runs stand-in containers (standin.py); None on
    the simulated cluster, where KWOK runs each pod by its hints. On a cluster the suite
    created, the nodes advertise GPUs and take the labels the batches select."""
    if mlgen_cluster.simulated:
        return None
    from mlgen.cluster import node

    image = options.value(request.config, "standin_image") or options.STANDIN_IMAGE
    names: tuple[str, ...] = ()
    if mlgen_cluster.throwaway:
        with kube.errors("listing the nodes"):
            names = tuple(n.metadata.name for n in mlgen_cluster.client.core.list_node().items)
        for name in names:
            node.advertise(mlgen_cluster.client, name, node.EXTENDED)
    say = figures.reporter(request.config, keep=True)
    for line in standin.describe():
        say(line)
    if names:
        with namespaces.fresh(
            mlgen_cluster.client, f"mlgen-warm-up-{secrets.token_hex(2)}"
        ) as namespace:
            seconds = standin.warm_up(mlgen_cluster.client, namespace, names, image=str(image))
        say(f"warm-up: a first pod ran on each of {len(names)} nodes in {seconds:.1f}s")
    return standin.Placement(image=str(image), nodes=names)


@pytest.fixture
def mlgen_run(
    mlgen_cluster: Cluster,
    mlgen_namespace: str,
    mlgen_artifacts: Path,
    mlgen_time_scale: float,
    mlgen_placement: standin.Placement | None,
    request: pytest.FixtureRequest,
) -> runner.Runner:
    """Render a batch into this test's namespace, apply a variant, return its timeline;
    durations divided by the session's time scale, stand-ins where kubelets are real."""
    return runner.Runner(
        client=runner.client_for(mlgen_cluster.client, mlgen_placement),
        namespace=mlgen_namespace,
        artifacts=mlgen_artifacts / request.node.name.replace("/", "_"),
        time_scale=mlgen_time_scale,
        say=figures.reporter(request.config),
        # The estimate models the simulated cluster; real containers are left out.
        estimated=figures.estimates(request.config) if mlgen_placement is None else None,
        standin=mlgen_placement is not None,
        throwaway=mlgen_cluster.throwaway,
        stall_bound=calibration.limits_for(
            "local" if mlgen_cluster.simulated else mlgen_cluster.kind
        ).pending,
        kueue=options.value(request.config, "kueue") or None,
    )


def _calibration_dir(config: pytest.Config) -> str:
    """`calibration`, or on a pytest-xdist worker (a cluster each) `calibration-gw0`."""
    worker = getattr(config, "workerinput", {}).get("workerid")
    return f"calibration-{worker}" if worker else "calibration"


@pytest.fixture(scope="session")
def mlgen_epsilon(
    mlgen_cluster: Cluster,
    mlgen_artifacts: Path,
    mlgen_placement: standin.Placement | None,
    request: pytest.FixtureRequest,
) -> Epsilon:
    """Per-step overhead of this cluster, measured once by a calibration run that must
    keep its own promises and stay under the ceilings of its kind of cluster."""
    raw = options.value(request.config, "max_epsilon")
    limits = calibration.limits_for("local" if mlgen_cluster.simulated else mlgen_cluster.kind)
    if raw not in (None, ""):
        limits = limits.raised(float(raw))
    with namespaces.fresh(
        mlgen_cluster.client, f"mlgen-calibration-{secrets.token_hex(2)}"
    ) as namespace:
        run = runner.Runner(
            client=runner.client_for(mlgen_cluster.client, mlgen_placement),
            namespace=namespace,
            artifacts=mlgen_artifacts / _calibration_dir(request.config),
            time_scale=1.0,
            say=figures.reporter(request.config),
            standin=mlgen_placement is not None,
        )
        epsilon, measured = calibration.calibrate(run, limits=limits)
    calibration.save(measured, mlgen_artifacts / _calibration_dir(request.config) / "epsilon.json")
    say = figures.reporter(request.config, keep=True)
    for m in measured:
        say(f"calibrated {m.describe()}")
    say(
        f"ε: client-driven step {epsilon.client:.3f}s, controller-driven "
        f"{epsilon.controller:.3f}s, a round of p pods "
        f"{epsilon.controller if epsilon.round is None else epsilon.round:.3f}s; pod slack "
        f"{epsilon.slack:.2f}s"
    )
    return epsilon
