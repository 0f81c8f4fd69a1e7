"""Fake worker nodes for the simulated cluster, described as pools in a YAML file."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlgen.errors import ClusterError, UsageError

if TYPE_CHECKING:  # the client only where nodes are created: `mlgen cluster nodes` needs none
    from mlgen import kube

KWOK_ANNOTATION = "kwok.x-k8s.io/node"


@dataclass(frozen=True)
class Pool:
    pool: str
    count: int
    capacity: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, str], ...] = ()


def default_file() -> Path:
    return Path(str(resources.files("mlgen.cluster").joinpath("nodes.yaml")))


def default_text() -> str:
    """The packaged node pools file, verbatim: what `mlgen cluster nodes` prints for a
    team to start its own from."""
    return default_file().read_text(encoding="utf-8")


def load(path: Path | None = None) -> list[Pool]:
    source = path or default_file()
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
        return [
            Pool(
                pool=str(p["pool"]),
                count=int(p.get("count", 1)),
                capacity={k: str(v) for k, v in p["capacity"].items()},
                labels={k: str(v) for k, v in (p.get("labels") or {}).items()},
                taints=tuple(p.get("taints") or ()),
            )
            for p in raw
        ]
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise UsageError(
            f"{source}: not a node pool list ({e}); each entry needs pool, "
            "count and capacity (`mlgen cluster nodes` prints the default file)"
        ) from e


def manifests(pools: list[Pool], *, prefix: str = "kwok") -> list[dict[str, Any]]:
    nodes = []
    for pool in pools:
        for number in range(pool.count):
            name = f"{prefix}-{pool.pool}-{number}"
            nodes.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "annotations": {KWOK_ANNOTATION: "fake"},
                        "labels": {
                            "kubernetes.io/hostname": name,
                            "type": "kwok",
                            "kubernetes.io/os": "linux",
                            **pool.labels,
                        },
                    },
                    "spec": {"taints": [dict(t) for t in pool.taints]} if pool.taints else {},
                    "status": {"capacity": dict(pool.capacity), "allocatable": dict(pool.capacity)},
                }
            )
    return nodes


def create(
    client: kube.Kube, pools: list[Pool], *, prefix: str = "kwok", timeout: float = 90.0
) -> list[str]:
    """Create the nodes and wait until KWOK reports every one Ready."""
    from mlgen import kube

    names = []
    for node in manifests(pools, prefix=prefix):
        client.apply(node)
        # Server-side apply ignores status on create for nodes: set it explicitly.
        with kube.errors(f"setting the capacity of node {node['metadata']['name']}"):
            client.core.patch_node_status(node["metadata"]["name"], {"status": node["status"]})
        names.append(node["metadata"]["name"])
    deadline = time.monotonic() + timeout
    while True:
        with kube.errors("listing nodes"):
            items = client.core.list_node().items
        ready = {
            n.metadata.name
            for n in items
            if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
        }
        missing = [n for n in names if n not in ready]
        if not missing:
            return names
        if time.monotonic() > deadline:
            raise ClusterError(
                f"nodes {', '.join(missing)} not Ready after {timeout:.0f}s; "
                "is the kwok controller running? See the cluster log"
            )
        time.sleep(0.2)
