"""The session's cluster: a local simulated control plane started here, a kind cluster
created through pytest-kubernetes, or an existing cluster named by a kubeconfig."""

from __future__ import annotations

import atexit
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mlgen import kube
from mlgen.conformance import figures, options
from mlgen.errors import ClusterError


@dataclass(frozen=True)
class Cluster:
    kind: str  # local | kind | kubeconfig
    kubeconfig: Path
    context: str | None
    client: kube.Kube
    # Pods on KWOK's nodes run for their annotated duration; elsewhere kubelets are real.
    # A kubeconfig cluster is simulated when its nodes are KWOK's (`mlgen cluster up`).
    simulated: bool = False

    @property
    def throwaway(self) -> bool:
        """Whether the suite may change the cluster itself (label nodes, advertise GPUs,
        create PriorityClasses): clusters it created, never a user's kubeconfig."""
        return self.kind in ("local", "kind")


def workers(config: pytest.Config) -> int | None:
    """How many pytest-xdist workers `-n auto` means: none on kind or a kubeconfig cluster
    (one cluster, one session); on the local cluster, where each worker starts a cluster
    of its own, the ini key `mlgen_workers`, unless PYTEST_XDIST_AUTO_NUM_WORKERS is set;
    None leaves it to xdist (one worker per CPU)."""
    if options.cluster_kind(config) != "local":
        return 0
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return options.workers(config)


def refuse_workers(config: pytest.Config) -> None:
    """Several xdist workers on one kind or kubeconfig cluster would each create (or share)
    the one cluster: a usage error before anything starts."""
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):
        return
    kind = options.cluster_kind(config)
    if kind != "local":
        raise pytest.UsageError(
            f"--mlgen-cluster {kind} runs one session on one cluster; pytest-xdist's "
            "-n would start one per worker: drop -n (or use -n 0)"
        )


# Real kind on a loaded 2-core machine: two node containers boot systemd, kubeadm and the
# add-ons; measured 26-31 s here, minutes on a cold, busy one.
KIND_CREATE_TIMEOUT = 600


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
        return Cluster(
            "kubeconfig",
            kubeconfig or Path(default).expanduser(),
            context,
            client,
            simulated=_kwok_nodes(client),
        )

    def __exit__(self, *exc: object) -> None:
        self._teardown()

    def _local(self) -> Cluster:
        from mlgen.cluster import local, pools

        described = pools.load(Path(p) if (p := self.config.getoption("--mlgen-nodes")) else None)
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
            pools.create(client, described)
        except BaseException:
            stop()
            raise
        return Cluster("local", cluster.kubeconfig, None, client, simulated=True)

    def _kind(self) -> Cluster:
        try:
            from pytest_kubernetes.options import ClusterOptions
            from pytest_kubernetes.providers import select_provider_manager
        except ImportError as e:
            raise pytest.UsageError(
                "--mlgen-cluster kind needs pytest-kubernetes: pip install 'mlgen-gitops[kind]'"
            ) from e
        kind_config = Path(options.value(self.config, "kind_config"))
        image = options.value(self.config, "kind_image")
        scratch: list[Path] = []
        if image:
            kind_config = with_node_image(kind_config, str(image))
            scratch.append(kind_config)
            figures.reporter(self.config, keep=True)(
                f"kind: every node runs {image} instead of the config's image (--mlgen-kind-image)"
            )
        # A kubeconfig of our own, so that no teardown path can touch the user's.
        handle, name = tempfile.mkstemp(prefix="mlgen-kind-", suffix=".yaml")
        os.close(handle)
        manager = select_provider_manager("kind")(provider_config=str(kind_config))

        def delete() -> None:
            try:
                manager.delete()
            finally:
                for path in scratch:
                    path.unlink(missing_ok=True)

        started = time.monotonic()
        try:
            manager.create(
                ClusterOptions(provider_config=kind_config, kubeconfig_path=Path(name)),
                timeout=KIND_CREATE_TIMEOUT,
            )
        except BaseException:
            delete()
            raise
        self._teardown = delete
        figures.reporter(self.config, keep=True)(
            f"kind: cluster created in {time.monotonic() - started:.0f}s"
        )
        client = kube.connect(kubeconfig=Path(name))
        return Cluster("kind", Path(name), None, client)


def _kwok_nodes(client: kube.Kube) -> bool:
    """Whether the cluster's pods land on KWOK's fake nodes (mlgen's local cluster)."""
    from mlgen.cluster import pools

    try:
        with kube.errors("listing the nodes"):
            found = client.core.list_node().items
    except ClusterError:
        return False  # no right to list nodes: a shared cluster, not mlgen's local one
    return any((n.metadata.annotations or {}).get(pools.KWOK_ANNOTATION) == "fake" for n in found)


def with_node_image(config: Path, image: str) -> Path:
    """A copy of a kind config whose every node runs `image`: the one change the suite
    makes to it, for node images built offline."""
    try:
        doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise pytest.UsageError(f"{config}: cannot read the kind config ({e})") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list):
        raise pytest.UsageError(f"{config}: a kind config needs a `nodes` list to swap images in")
    for node in doc["nodes"]:
        node["image"] = image
    handle, name = tempfile.mkstemp(prefix="mlgen-kind-config-", suffix=".yaml")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        yaml.safe_dump(doc, out, sort_keys=False)
    return Path(name)
