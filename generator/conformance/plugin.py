"""The mlgen pytest plugin (entry point `pytest11`): a cluster, a namespace per test, a
calibrated ε, and a runner that renders, applies and records a batch.

Options (also as ini keys without the leading dashes and with `_`):
  --mlgen-cluster local|kind|kubeconfig   which cluster (default: local)
  --mlgen-kubeconfig PATH, --mlgen-context NAME   for `kubeconfig` (read, never written)
  --mlgen-kind-config PATH    kind cluster config (default: kind-config.yaml)
  --mlgen-nodes PATH          node pools of the local cluster
  --mlgen-artifacts DIR       where timelines (JSON + PNG) go (default: artifacts/conformance)
  --mlgen-batch GLOB          batch files for the generic `test_batch_conforms` (repeatable;
                              ini `mlgen_batches`, one glob a line)
  --mlgen-time-scale X        test_batch_conforms runs expectedDuration / X (at least 3 s)
                              on simulated clusters (default 1; dedicated tests unscaled)
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlgen import contract, kube
from mlgen.conformance import runner
from mlgen.conformance.checks import Epsilon
from mlgen.errors import ClusterError

CLUSTERS = ("local", "kind", "kubeconfig")
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted",
              "pod-security.kubernetes.io/enforce-version": "latest"}


@dataclass(frozen=True)
class Cluster:
    kind: str  # local | kind | kubeconfig
    kubeconfig: Path
    context: str | None
    client: kube.Kube

    @property
    def simulated(self) -> bool:
        """Pods on a KWOK cluster run for their annotated duration; elsewhere, for real."""
        return self.kind == "local"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlgen", "mlgen conformance")
    group.addoption("--mlgen-cluster", choices=CLUSTERS, default=None,
                    help="Cluster to run on: local (simulated control plane, default), kind "
                         "(pytest-kubernetes and kind-config.yaml) or kubeconfig.")
    group.addoption("--mlgen-kubeconfig", default=None, help="Kubeconfig for --mlgen-cluster "
                    "kubeconfig (default: $KUBECONFIG); never modified.")
    group.addoption("--mlgen-context", default=None, help="Kubeconfig context.")
    group.addoption("--mlgen-kind-config", default=None, help="kind config file.")
    group.addoption("--mlgen-nodes", default=None, help="Node pools YAML (local cluster).")
    group.addoption("--mlgen-artifacts", default=None, help="Timeline output directory.")
    group.addoption("--mlgen-batch", action="append", default=[],
                    help="Batch file glob for test_batch_conforms; repeatable.")
    group.addoption("--mlgen-time-scale", type=float, default=None,
                    help="Divide expectedDuration by this on simulated clusters.")
    parser.addini("mlgen_cluster", "default for --mlgen-cluster", default="local")
    parser.addini("mlgen_kind_config", "default for --mlgen-kind-config",
                  default="kind-config.yaml")
    parser.addini("mlgen_artifacts", "default for --mlgen-artifacts",
                  default="artifacts/conformance")
    parser.addini("mlgen_batches", "batch file globs for test_batch_conforms", type="linelist",
                  default=[])
    parser.addini("mlgen_time_scale", "default for --mlgen-time-scale", default="1")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "k8s(**kwargs): pytest-kubernetes cluster options")
    config.addinivalue_line("markers", "mlgen: needs a Kubernetes cluster (mlgen plugin)")


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(f"--mlgen-{name.replace('_', '-')}")
    return value if value not in (None, []) else config.getini(f"mlgen_{name}")


def batch_files(config: pytest.Config) -> list[Path]:
    patterns = list(config.getoption("--mlgen-batch")) + list(config.getini("mlgen_batches"))
    root = Path(config.rootpath)
    found: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(str(root / pattern)) or glob.glob(pattern))
        if not matches:
            raise pytest.UsageError(f"mlgen: no batch file matches {pattern!r}")
        found.extend(Path(m) for m in matches)
    return found


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "mlgen_batch_case" in metafunc.fixturenames:
        cases = runner.cases(batch_files(metafunc.config))
        metafunc.parametrize("mlgen_batch_case", cases, ids=[c.id for c in cases])


@pytest.fixture(scope="session")
def mlgen_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The cluster every conformance test of this session runs on."""
    config = request.config
    choice = _option(config, "cluster")
    if choice not in CLUSTERS:
        raise pytest.UsageError(f"mlgen_cluster must be one of {', '.join(CLUSTERS)}")
    with _ClusterSession(config, choice) as cluster:
        yield cluster


class _ClusterSession:
    """Context manager that starts (or borrows) a cluster and always cleans up."""

    def __init__(self, config: pytest.Config, choice: str) -> None:
        self.config, self.choice = config, choice
        self._teardown: Callable[[], None] = lambda: None

    def __enter__(self) -> Cluster:
        if self.choice == "local":
            return self._local()
        if self.choice == "kind":
            return self._kind()
        path = self.config.getoption("--mlgen-kubeconfig")
        kubeconfig = Path(path) if path else None
        context = self.config.getoption("--mlgen-context")
        client = kube.connect(kubeconfig=kubeconfig, context=context)
        default = os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0]
        return Cluster("kubeconfig", kubeconfig or Path(default).expanduser(), context, client)

    def __exit__(self, *exc: object) -> None:
        self._teardown()

    def _local(self) -> Cluster:
        from mlgen.cluster import local, nodes

        pools = nodes.load(Path(p) if (p := self.config.getoption("--mlgen-nodes")) else None)
        say = _reporter(self.config)
        cluster = local.up(progress=say)
        stopped = False

        def stop() -> None:
            nonlocal stopped
            if not stopped:
                stopped = True
                local.down(cluster, progress=say)

        # Ctrl-C or a crash between here and teardown must not leave processes behind.
        atexit.register(stop)
        self._teardown = stop
        try:
            client = kube.connect(kubeconfig=cluster.kubeconfig)
            nodes.create(client, pools)
        except BaseException:
            stop()
            raise
        return Cluster("local", cluster.kubeconfig, None, client)

    def _kind(self) -> Cluster:
        try:
            from pytest_kubernetes.options import ClusterOptions
            from pytest_kubernetes.providers import select_provider_manager
        except ImportError as e:
            raise pytest.UsageError("--mlgen-cluster kind needs pytest-kubernetes: "
                                    "pip install 'mlgen[kind]'") from e
        kind_config = Path(_option(self.config, "kind_config"))
        # A kubeconfig of our own, so that no teardown path can touch the user's.
        handle, name = tempfile.mkstemp(prefix="mlgen-kind-", suffix=".yaml")
        os.close(handle)
        manager = select_provider_manager("kind")(provider_config=str(kind_config))
        try:
            manager.create(ClusterOptions(provider_config=kind_config,
                                          kubeconfig_path=Path(name)), timeout=240)
        except BaseException:
            manager.delete()
            raise
        self._teardown = manager.delete
        client = kube.connect(kubeconfig=Path(name))
        return Cluster("kind", Path(name), None, client)


_FIGURES = pytest.StashKey[list[str]]()


def _reporter(config: pytest.Config, *, keep: bool = False) -> Callable[[str], None]:
    """Progress for `-s` runs; with `keep`, the line also goes into the final summary."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")

    def say(line: str) -> None:
        if terminal is not None and config.getoption("capture") == "no":
            terminal.write_line(f"mlgen: {line}")
        if keep or "makespan" in line:
            config.stash.setdefault(_FIGURES, []).append(line)
    return say


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    figures = config.stash.get(_FIGURES, [])
    if figures:
        terminalreporter.section("mlgen conformance figures")
        for line in figures:
            terminalreporter.write_line(line)


@pytest.fixture
def mlgen_record(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record a measured figure for the session's summary."""
    return _reporter(request.config, keep=True)


@pytest.fixture
def mlgen_namespace(mlgen_cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace enforcing Pod Security "restricted", deleted after the test."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{slug}-{secrets.token_hex(2)}"
    client = mlgen_cluster.client
    with kube.errors(f"creating namespace {name}"):
        client.core.create_namespace({"metadata": {"name": name, "labels": {
            **RESTRICTED, contract.MANAGED_BY: "mlgen-conformance"}}})
    try:
        _wait_for_default_service_account(client, name)
        yield name
    finally:
        with kube.errors(f"deleting namespace {name}"):
            client.core.delete_namespace(name, propagation_policy="Background")


def _wait_for_default_service_account(client: kube.Kube, namespace: str) -> None:
    # Pod admission rejects pods until the controller-manager creates "default".
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        items = client.core.list_namespaced_service_account(namespace).items
        if any(sa.metadata.name == "default" for sa in items):
            return
        time.sleep(0.1)
    raise ClusterError(f"namespace {namespace}: no default ServiceAccount after 30s; is "
                       "kube-controller-manager running?")


@pytest.fixture(scope="session")
def mlgen_artifacts(request: pytest.FixtureRequest) -> Path:
    path = Path(_option(request.config, "artifacts"))
    if not path.is_absolute():
        path = Path(request.config.rootpath) / path
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def mlgen_time_scale(request: pytest.FixtureRequest, mlgen_cluster: Cluster) -> float:
    """How much faster user batches run: only on a simulated cluster, where a pod's run
    time is its annotation; real containers take as long as they take."""
    return float(_option(request.config, "time_scale")) if mlgen_cluster.simulated else 1.0


@pytest.fixture
def mlgen_run(mlgen_cluster: Cluster, mlgen_namespace: str, mlgen_artifacts: Path,
              request: pytest.FixtureRequest) -> runner.Runner:
    """Render a batch into this test's namespace, apply a variant, return its timeline."""
    return runner.Runner(client=mlgen_cluster.client, namespace=mlgen_namespace,
                         artifacts=mlgen_artifacts / request.node.name.replace("/", "_"),
                         time_scale=1.0, say=_reporter(request.config))


@pytest.fixture(scope="session")
def mlgen_epsilon(mlgen_cluster: Cluster, mlgen_artifacts: Path,
                  request: pytest.FixtureRequest) -> Epsilon:
    """Per-step overhead of this cluster, measured once by a calibration run."""
    namespace = f"mlgen-calibration-{secrets.token_hex(2)}"
    client = mlgen_cluster.client
    with kube.errors(f"creating namespace {namespace}"):
        client.core.create_namespace({"metadata": {"name": namespace, "labels": RESTRICTED}})
    try:
        _wait_for_default_service_account(client, namespace)
        run = runner.Runner(client=client, namespace=namespace,
                            artifacts=mlgen_artifacts / "calibration", time_scale=1.0,
                            say=_reporter(request.config))
        epsilon = runner.calibrate(run)
    finally:
        with kube.errors(f"deleting namespace {namespace}"):
            client.core.delete_namespace(namespace, propagation_policy="Background")
    _reporter(request.config, keep=True)(
        f"calibrated per-step overhead ε: waves {epsilon.waves:.2f}s, indexed "
        f"{epsilon.indexed:.2f}s")
    return epsilon
