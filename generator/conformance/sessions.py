"""The session's cluster: a local simulated control plane started here, a kind cluster
created through pytest-kubernetes, or an existing cluster named by a kubeconfig."""

from __future__ import annotations

import atexit
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlgen import kube
from mlgen.conformance import figures, options


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


class ClusterSession:
    """Context manager that starts (or borrows) a cluster and always cleans up."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.choice = options.cluster_kind(config)
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
        say = figures.reporter(self.config)
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
            raise pytest.UsageError(
                "--mlgen-cluster kind needs pytest-kubernetes: pip install 'mlgen[kind]'"
            ) from e
        kind_config = Path(options.value(self.config, "kind_config"))
        # A kubeconfig of our own, so that no teardown path can touch the user's.
        handle, name = tempfile.mkstemp(prefix="mlgen-kind-", suffix=".yaml")
        os.close(handle)
        manager = select_provider_manager("kind")(provider_config=str(kind_config))
        try:
            manager.create(
                ClusterOptions(provider_config=kind_config, kubeconfig_path=Path(name)), timeout=240
            )
        except BaseException:
            manager.delete()
            raise
        self._teardown = manager.delete
        client = kube.connect(kubeconfig=Path(name))
        return Cluster("kind", Path(name), None, client)
