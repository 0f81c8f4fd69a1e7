"""The local control plane the cluster benchmarks run on: started, given room for 1,000
pods at once (the default pools hold 440), always stopped."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mlgen import kube
from mlgen.cluster import local, pools


@contextmanager
def running() -> Iterator[tuple[local.LocalCluster, kube.Kube]]:
    cluster = local.up(progress=print)
    try:
        client = kube.connect(kubeconfig=cluster.kubeconfig)
        pools.create(
            client,
            [
                *pools.load(None),
                pools.Pool(
                    pool="bench",
                    count=4,
                    capacity={"cpu": "64", "memory": "256Gi", "pods": "300"},
                    labels={"mlgen.io/pool": "bench"},
                ),
            ],
        )
        yield cluster, client
    finally:
        local.down(cluster, progress=print)
