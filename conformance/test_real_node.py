"""Conformance that executes: rendered Jobs run for real, and the pods say what they got.

Where: on the local cluster, its real node (containerd + kubelet, started here when the
session's cluster has none; `mlgen cluster up --real-node` for users); on kind, any
node — every kind node is real. Not on a `kubeconfig` cluster: its nodes are not ours
to label.

How: a test asks for `real_run` instead of `mlgen_run`: every Job runs stand-in
containers (`mlgen.conformance.standin`, whose `CHANGES` lists each change to the
rendered objects), on the local cluster pinned to the real node. Each stand-in records
its argv, env, uid, privilege flags and /dev/shm, sleeps its job's expectedDuration and
exits with its simulated code; the runner holds every record to what the batch file
promised. Real chains are held to the same bounds as on KWOK, with ε calibrated on the
real node; a simulated exit code reaches Job and timeline.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlgen import kube, render, source, spec, variants
from mlgen.checks import Epsilon
from mlgen.cluster import build, image, node, probe
from mlgen.conformance import calibration, fitting, namespaces, options, runner, standin
from mlgen.conformance.plugin import RESTRICTED, Cluster
from mlgen.conformance.runner import Runner, RunResult, sleeper_batch
from mlgen.conformance.suite import check_result


@dataclass(frozen=True)
class RealNodes:
    """The stand-ins' placement, and how long the local real node took to be Ready."""

    placement: standin.Placement
    ready_seconds: float | None = None


def _say(config: pytest.Config) -> Callable[[str], None]:
    terminal = config.pluginmanager.get_plugin("terminalreporter")

    def say(line: str) -> None:
        if terminal is not None and config.getoption("capture") == "no":
            terminal.write_line(f"mlgen: {line}")

    return say


@pytest.fixture(scope="session")
def real_nodes(
    mlgen_cluster: Cluster,
    mlgen_placement: standin.Placement | None,
    request: pytest.FixtureRequest,
) -> Iterator[RealNodes]:
    """The real node of the local cluster (started now, stopped at the end), or kind's."""
    say = _say(request.config)
    if mlgen_cluster.kind == "local":
        home = mlgen_cluster.kubeconfig.parent  # kwokctl keeps the kubeconfig in its home
        kubelet = build.ensure_group("node", progress=say) / "kubelet"
        started = time.monotonic()
        # Packages missing here is an error, never a skip: CI must run these tests.
        name = node.start(
            home,
            cluster=home.name,
            kubeconfig=mlgen_cluster.kubeconfig,
            kubelet=kubelet,
            progress=say,
        )
        ready = time.monotonic() - started
        try:
            yield RealNodes(
                standin.Placement(
                    image=image.PROBE,
                    pull_never=True,
                    node_name=name,
                    toleration={**node.TAINT, "operator": "Equal"},
                    nodes=(name,),
                ),
                ready_seconds=ready,
            )
        finally:
            node.stop(home, progress=say)
    elif mlgen_cluster.kind == "kind" and mlgen_placement is not None:
        yield RealNodes(mlgen_placement)
    else:
        pytest.skip(
            "executing tests run on the local cluster's real node or on kind; a "
            "kubeconfig cluster's nodes are not the suite's to label"
        )


@pytest.fixture
def real_run(mlgen_run: Runner, real_nodes: RealNodes) -> Runner:
    """`mlgen_run` with stand-ins on real nodes (see the module docstring), unscaled; no
    estimate: real containers are not what the estimate models."""
    client = mlgen_run.client
    if isinstance(client, standin.StandinKube):
        client = client.inner
    return dataclasses.replace(
        mlgen_run,
        client=standin.StandinKube(client, real_nodes.placement),
        estimated=None,
        standin=True,
        time_scale=1.0,
    )


@pytest.fixture(scope="session")
def real_epsilon(
    mlgen_cluster: Cluster,
    real_nodes: RealNodes,
    mlgen_artifacts: Path,
    request: pytest.FixtureRequest,
) -> Epsilon:
    """ε measured on the real node: container start-up is part of every real step. On
    kind every pod is real already, so the session's ε is the one."""
    if mlgen_cluster.kind != "local":
        epsilon: Epsilon = request.getfixturevalue("mlgen_epsilon")
        return epsilon
    client = mlgen_cluster.client
    namespace = f"mlgen-real-calibration-{secrets.token_hex(2)}"
    with kube.errors(f"creating namespace {namespace}"):
        client.core.create_namespace({"metadata": {"name": namespace, "labels": RESTRICTED}})
    try:
        deadline = time.monotonic() + 30
        while not any(
            sa.metadata.name == "default"
            for sa in client.core.list_namespaced_service_account(namespace).items
        ):
            assert time.monotonic() < deadline, f"{namespace}: no default ServiceAccount"
            time.sleep(0.1)
        run = Runner(
            client=standin.StandinKube(client, real_nodes.placement),
            namespace=namespace,
            artifacts=mlgen_artifacts / "real-calibration",
            time_scale=1.0,
            say=_say(request.config),
            standin=True,
        )
        epsilon, measured = calibration.calibrate(run, limits=calibration.limits_for("real-node"))
    finally:
        with kube.errors(f"deleting namespace {namespace}"):
            client.core.delete_namespace(namespace, propagation_policy="Background")
    for each in measured:
        _say(request.config)(f"real node calibration, {each.describe()}")
    _say(request.config)(
        f"real node ε: client {epsilon.client:.2f}s, controller "
        f"{epsilon.controller:.2f}s, slack {epsilon.slack:.2f}s"
    )
    return epsilon


# Example runs on the real node at once, at most this many: they are not timed (what each
# pod received is checked), and the node runs their stand-ins side by side.
AT_ONCE = 4


def _waves(cases: list[runner.Case]) -> list[list[runner.Case]]:
    """The cases in groups of at most AT_ONCE whose Jobs never ask the one real node for
    two values of a label (the stand-ins label it as each Job's selectors ask)."""
    labels = {}
    for case in cases:
        batch = next(b for b in source.load_files([case.path]) if b.name == case.batch)
        rendered = render.render_batch(batch, only=(case.variant,))
        objects = [
            d
            for path, text in rendered.items()
            if not path.endswith("kustomization.yaml")
            for d in yaml.safe_load_all(text)
            if d
        ]
        labels[case.id] = fitting.needs(objects).node_labels
    waves: list[list[runner.Case]] = []
    for case in cases:
        mine = labels[case.id]
        for wave in waves:
            if len(wave) < AT_ONCE and all(
                labels[c.id].get(k, v) == v for c in wave for k, v in mine.items()
            ):
                wave.append(case)
                break
        else:
            waves.append([case])
    return waves


@pytest.fixture(scope="session")
def example_runs(
    mlgen_cluster: Cluster,
    real_nodes: RealNodes,
    mlgen_artifacts: Path,
    request: pytest.FixtureRequest,
) -> dict[str, RunResult | Exception]:
    """Every example run on the real node, a few at once, each in a fresh namespace: its
    result (or what it raised) by case id, for the tests below to hold."""
    client = mlgen_cluster.client
    if isinstance(client, standin.StandinKube):
        client = client.inner
    say = _say(request.config)

    def one(case: runner.Case) -> RunResult | Exception:
        slug = re.sub(r"[^a-z0-9]+", "-", case.id.lower()).strip("-")[:40].strip("-")
        try:
            with namespaces.fresh(client, f"real-{slug}-{secrets.token_hex(2)}") as name:
                run = Runner(
                    client=standin.StandinKube(client, real_nodes.placement),
                    namespace=name,
                    artifacts=mlgen_artifacts / f"real-example-{slug}",
                    # What each pod received is checked, not timing (test_examples.py
                    # holds the bounds): a stand-in sleeps 1 s, enough to show it ran.
                    time_scale=1e9,
                    min_seconds=1,
                    say=say,
                    standin=True,
                    throwaway=mlgen_cluster.throwaway,
                )
                return run.run(run.load(case.path, case.batch), case.variant, timeout=240)
        except Exception as e:  # each test re-raises its own
            return e

    found: dict[str, RunResult | Exception] = {}
    for wave in _waves(runner.cases(options.batch_files(request.config))):
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(wave)) as pool:
            for case, result in zip(wave, pool.map(one, wave), strict=True):
                found[case.id] = result
    return found


def test_examples_execute_with_exactly_their_args_env_user_and_shm(
    mlgen_batch_case: runner.Case,
    mlgen_cluster: Cluster,
    request: pytest.FixtureRequest,
) -> None:
    if mlgen_cluster.kind != "local":
        pytest.skip(
            "every run on this cluster is a stand-in run whose records are checked: "
            "test_examples.py covers the examples here"
        )
    # The runs happen together, the first time a test asks; each test holds its own.
    runs: dict[str, RunResult | Exception] = request.getfixturevalue("example_runs")
    result = runs[mlgen_batch_case.id]
    if isinstance(result, Exception):
        raise result
    assert result.failure is None, str(result.failure)


def _delivery_values(root: Path) -> tuple[list[str], dict[str, str]]:
    """The hostile strings of the fast delivery tests (one list for both suites)."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))  # `tests` is a package of the repository root
    from tests.test_delivery import ENV, HOSTILE

    return HOSTILE, ENV


@pytest.mark.parametrize("strategy", ["waves", "indexed", "parallel"])
def test_hostile_values_arrive_byte_for_byte(
    real_run: Runner, strategy: str, request: pytest.FixtureRequest
) -> None:
    hostile, env = _delivery_values(Path(request.config.rootpath))
    chunks = [hostile[i::3] for i in range(3)]
    doc: dict[str, Any] = {
        "apiVersion": spec.API_VERSION,
        "kind": "Batch",
        "metadata": {"name": "hostile"},
        "spec": {
            "sequential": {"strategy": "indexed" if strategy == "indexed" else "waves"},
            "defaults": {
                "image": "busybox",
                "command": list(probe.COMMAND),
                "env": {"SHARED": "$(SPACE) shared"},
                "secretEnv": {"COMMON": "common/key"},
                "runAsUser": 4242,
                "shmSize": "96Mi",
            },
            "jobs": [
                {
                    "name": "a",
                    "args": chunks[0],
                    "env": dict(env),
                    "secretEnv": {"TOKEN": "tok-a/key"},
                },
                {
                    "name": "b",
                    "args": chunks[1],
                    "env": {"SPACE": "other one"},
                    "secretEnv": {"TOKEN": "tok-b/key"},
                },
                {"name": "c", "args": chunks[2], "env": {}},
            ],
        },
    }
    if strategy != "waves":  # an Indexed Job refuses per-job secrets (one pod template)
        for job in doc["spec"]["jobs"]:
            job.pop("secretEnv", None)
    variant = "parallel" if strategy == "parallel" else "sequential"
    result = real_run.run(real_run.from_dict(doc), variant, timeout=120)
    assert result.failure is None, str(result.failure)  # the runner checked every record


# One strategy keeps the module within its time budget: the calibration has just run both
# strategies' real chains (checked complete, in order, Σd ≤ makespan) to measure ε.
@pytest.mark.parametrize("strategy", ["waves"])
def test_real_sleep_chain_within_the_kwok_bounds(
    real_run: Runner,
    real_nodes: RealNodes,
    real_epsilon: Epsilon,
    strategy: str,
    mlgen_record: Callable[[str], None],
) -> None:
    doc = sleeper_batch(f"real-{strategy}", durations=[2, 3, 2], strategy=strategy)
    result = real_run.run(real_run.from_dict(doc), "sequential", timeout=120)
    assert result.failure is None, str(result.failure)
    check_result(result, real_epsilon)
    assert {p.node for p in result.timeline.pods} <= set(real_nodes.placement.nodes)
    seconds = real_nodes.ready_seconds
    ready = f"; node Ready in {seconds:.1f}s" if seconds else ""
    mlgen_record(
        f"real node, {strategy}: makespan {result.timeline.makespan:.0f}s for "
        f"Σd = 7s (ε {real_epsilon.of(variants.get(strategy)):.2f}s){ready}"
    )


@pytest.mark.parametrize("strategy", ["waves", "indexed"])
def test_failing_command_exit_code_reaches_job_and_timeline(
    real_run: Runner, strategy: str
) -> None:
    doc = sleeper_batch(f"real-fail-{strategy}", durations=[1, 1, 1], strategy=strategy)
    doc["spec"]["jobs"][1]["simulate"] = {"exitCode": 3}  # the stand-in exits with it
    result = real_run.run(real_run.from_dict(doc), "sequential", timeout=120)
    assert result.failure is not None, "the batch should be reported Failed"
    timeline = result.timeline
    codes = {p.exit_code for p in timeline.pods if p.phase == "Failed"}
    assert codes == {3}, f"failed pods exited with {codes}, expected {{3}}"
    if strategy == "waves":
        assert [j.status for j in timeline.jobs] == ["Complete", "Failed", "NotStarted"]
    else:
        (job,) = timeline.jobs
        assert job.status == "Failed" and job.failed_indexes == "1"
        assert not [p for p in timeline.pods if p.index == 2], "index 2 must never start"
