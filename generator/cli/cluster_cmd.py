"""`mlgen cluster`: build, start and stop the local simulated control plane.

The modules that need the Kubernetes client (`kube`, `cluster.local`) are imported
inside the commands, so that `mlgen cluster … --help` works without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mlgen.cli import extras
from mlgen.cli.common import echo, err, out, reported
from mlgen.cluster import build
from mlgen.errors import UsageError

app = typer.Typer(
    help="The local control plane: real etcd, kube-apiserver, kube-controller-manager and "
    "kube-scheduler built from source, with KWOK simulating nodes and pod run times. "
    "Needs Go >= 1.26 and no Docker.",
    no_args_is_help=True,
)

Workdir = Annotated[
    Path | None,
    typer.Option(
        help="Where clusters live (default: $MLGEN_CLUSTER_WORKDIR, else ~/.cache/mlgen/kwok).",
        show_default=False,
    ),
]


def _say(line: str) -> None:
    err.print(line, markup=False)


@app.command("build")
@extras.needs_cluster("cluster build")
def build_command(
    kind: Annotated[
        bool,
        typer.Option(
            "--kind",
            help="Also build real kind offline: kind, its node image (debootstrap, Debian's "
            "docker.io, `kind build node-image`) and every image a node runs. Needs root.",
        ),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(help="Also write each group's state (cold or cached) and seconds as JSON."),
    ] = None,
) -> None:
    """Build every group of pinned binaries into the cache: the control plane, a real node
    (kubelet) and the GitOps tools (minutes the first time, then instant)."""
    with reported():
        extra = ("kind",) if kind else ()
        timings: dict[str, dict[str, object]] = {}
        for directory in build.ensure_all(progress=_say, extra=extra, timings=timings).values():
            out.print(str(directory))
        for name, row in timings.items():
            _say(f"{name}: {row['state']}, {row['seconds']:.0f}s")
        if report is not None:
            report.write_text(json.dumps(timings, indent=2) + "\n", encoding="utf-8")


@app.command(
    "docker",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
@extras.needs_cluster("cluster docker")
def docker_command(
    ctx: typer.Context,
) -> None:
    """Run a command beside a Docker engine of mlgen's own, for real kind: Debian's dockerd
    in a network namespace of its own (the host's network and iptables never change),
    with the locally built kind node image loaded, `kind` and `kubectl` on PATH. The
    command runs inside that namespace; afterwards every container is removed and the
    engine stopped, also after a failure or Ctrl-C. Needs root and `mlgen cluster build
    --kind`. Example: mlgen cluster docker -- sh -c 'pytest conformance/ --mlgen-cluster kind
    --mlgen-kind-image "$MLGEN_KIND_NODE_IMAGE"'"""
    from mlgen.cluster import kind as kind_engine

    with reported():
        argv = list(ctx.args)
        if not argv:
            raise UsageError("name the command to run: mlgen cluster docker -- COMMAND [ARGS...]")
        code = kind_engine.run_beside(argv, progress=_say)
    raise typer.Exit(code)


@app.command("up")
@extras.needs_cluster("cluster up")
def up_command(
    name: Annotated[str | None, typer.Option(help="Cluster name (default: random).")] = None,
    node_file: Annotated[
        Path | None,
        typer.Option(
            "--nodes",
            help="Node pools YAML (default: the packaged file `mlgen cluster nodes` prints).",
        ),
    ] = None,
    workdir: Workdir = None,
    real_node: Annotated[
        bool,
        typer.Option(
            "--real-node",
            help="Also start a real node (containerd + kubelet) that runs pods for "
            "real; needs containerd, runc, containernetworking-plugins and busybox-static "
            "installed and `mlgen cluster build` done. Tainted mlgen.io/real-node.",
        ),
    ] = False,
) -> None:
    """Start a cluster with fake nodes; prints the `export KUBECONFIG=...` line to use it."""
    from mlgen import kube
    from mlgen.cluster import local, pools

    with reported():
        described = pools.load(node_file)
        cluster = local.up(name=name, workdir=workdir, progress=_say, real_node=real_node)
        try:
            created = pools.create(kube.connect(kubeconfig=cluster.kubeconfig), described)
        except BaseException:
            local.down(cluster, progress=_say)
            raise
        real = " and a real node" if real_node else ""
        _say(
            f"cluster {cluster.name}: {len(created)} fake nodes{real} Ready; stop it with "
            f"`mlgen cluster down --name {cluster.name}`"
        )
        # stdout is for `eval "$(mlgen cluster up)"`: the kubeconfig, and kubectl on PATH.
        out.print(f"export KUBECONFIG={cluster.kubeconfig}", markup=False)
        out.print(f'export PATH="{build.bin_dir()}:$PATH"', markup=False)


@app.command("nodes")
def nodes_command() -> None:
    """Print the default node pools file (what `up` and the conformance suite use unless
    given --nodes / --mlgen-nodes), to start your own from. Example:
    mlgen cluster nodes > nodes.yaml && mlgen cluster up --nodes nodes.yaml"""
    from mlgen.cluster import pools  # reads a packaged file: no client needed

    with reported():
        echo(pools.default_text(), nl=False, exact_when_piped=True)


@app.command("down")
@extras.needs_cluster("cluster down")
def down_command(
    name: Annotated[str | None, typer.Option(help="The cluster to stop.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Stop every mlgen cluster.")] = False,
    workdir: Workdir = None,
) -> None:
    """Stop every process of a cluster (its real node's too) and delete its files."""
    from mlgen.cluster import local

    with reported():
        root = workdir or local.default_workdir()
        names = _names(root) if all_ else [name] if name else []
        if all_ and not names:
            _say(f"no clusters in {root}: nothing to stop")
            return
        if not names:
            raise UsageError("name the cluster with --name NAME, or pass --all")
        for each in names:
            cluster = local.LocalCluster(name=each, workdir=root)
            if not cluster.home.exists():
                raise UsageError(f"no cluster named {each!r} in {root}; see `mlgen cluster list`")
            local.down(cluster, progress=_say)


@app.command("list")
@extras.needs_cluster("cluster list")
def list_command(workdir: Workdir = None) -> None:
    """List the clusters and their kubeconfig files."""
    from mlgen.cluster import local

    root = workdir or local.default_workdir()
    for each in _names(root):
        cluster = local.LocalCluster(name=each, workdir=root)
        running = sum(local.alive(pid) for pid in cluster.pids().values())
        echo(f"{each}\t{running} processes running\t{cluster.kubeconfig}")


def _names(root: Path) -> list[str]:
    base = root / "clusters"
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
