"""Conformance that executes: rendered Jobs run for real, and the pods say what they got.

Where: on the local cluster, its real node (containerd + kubelet, started here when the
session's cluster has none; `mlgen cluster up --real-node` for users); on kind, any
node — every kind node is real. Not on a `kubeconfig` cluster: its nodes are not ours
to label.

How: a test asks for `real_run` instead of `mlgen_run`. Its client applies every Job
through `mlgen.cluster.probe.place`, which changes a rendered pod spec in exactly these
ways: the image (the local busybox image with `imagePullPolicy: Never`, or busybox
pulled on kind), cpu and memory requests capped (a 2-core machine cannot hold an 8-CPU
batch), and on the local cluster a `kubernetes.io/hostname` node selector plus a
toleration of the real node's taint. The nodes get the labels the pods' node selectors
ask for, and `nvidia.com/gpu` capacity. Everything else — args, env, secrets, the
ConfigMap and its entrypoint, security context, /dev/shm, retries — is as rendered.

What: the batch's command is swapped for `probe.COMMAND`, which prints its argv, env,
uid, privilege flags and /dev/shm size; the log of every pod is compared with what the
batch file promised. Real `sleep` chains are held to the same bounds as on KWOK, with ε
calibrated on the real node; a failing command's exit code reaches Job and timeline.
"""

from __future__ import annotations

import dataclasses
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlgen import apply, contract, kube, spec
from mlgen.cluster import build, image, node, probe
from mlgen.conformance import calibration, checks, runner
from mlgen.conformance.checks import Epsilon
from mlgen.conformance.plugin import RESTRICTED, Cluster
from mlgen.conformance.runner import Runner, RunResult, sleeper_batch
from mlgen.conformance.suite import check_result

HOSTNAME = "kubernetes.io/hostname"
JOB_NAME = "batch.kubernetes.io/job-name"
INDEX = "batch.kubernetes.io/job-completion-index"
SECRET_VALUE = "placeholder"  # what Runner.provide puts in every Secret it makes
# The local control plane's ε ceilings (calibration.CEILING, 3-3.5 s) plus what a real
# container adds to each step — sandbox, CNI, runc, the kubelet's status reporting —
# measured here at 2.5 s (waves) and 3.0 s (indexed) worst per step.
REAL_CEILING = 6.0
REAL_SLACK_CEILING = 2.5  # measured: real pods "run" up to 1.9 s beyond their sleep


@dataclass(frozen=True)
class Placement:
    """Where and with what image the executing tests run their pods."""

    image: str
    node_name: str | None  # the real node to pin to; None: anywhere (kind)
    pull_never: bool
    nodes: tuple[str, ...]  # the nodes pods may land on (labelled for node selectors)
    ready_seconds: float | None = None  # how long the local real node took to be Ready


class PlacingKube(kube.Kube):
    """A client that applies every Job through `probe.place`, labelling the nodes for
    the node selectors it carries; everything else goes through unchanged."""

    def __init__(self, inner: kube.Kube, placement: Placement) -> None:
        super().__init__(inner.api, where=inner.where)
        self.placement = placement

    def apply(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        placed = probe.place(
            obj,
            image=self.placement.image,
            node_name=self.placement.node_name,
            pull_never=self.placement.pull_never,
        )
        if placed.get("kind") == "Job" and not dry_run:
            wanted = placed["spec"]["template"]["spec"].get("nodeSelector") or {}
            labels = {k: v for k, v in wanted.items() if k != HOSTNAME}
            for name in self.placement.nodes if labels else ():
                with kube.errors(f"labelling node {name}"):
                    self.core.patch_node(name, {"metadata": {"labels": labels}})
        return super().apply(placed, dry_run=dry_run)


def _say(config: pytest.Config) -> Callable[[str], None]:
    terminal = config.pluginmanager.get_plugin("terminalreporter")

    def say(line: str) -> None:
        if terminal is not None and config.getoption("capture") == "no":
            terminal.write_line(f"mlgen: {line}")

    return say


@pytest.fixture(scope="session")
def real_placement(mlgen_cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[Placement]:
    """The real node of the local cluster (started now, stopped at the end), or kind's."""
    say = _say(request.config)
    client = mlgen_cluster.client
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
            yield Placement(
                image=image.PROBE,
                node_name=name,
                pull_never=True,
                nodes=(name,),
                ready_seconds=ready,
            )
        finally:
            node.stop(home, progress=say)
    elif mlgen_cluster.kind == "kind":
        with kube.errors("listing kind's nodes"):
            names = tuple(n.metadata.name for n in client.core.list_node().items)
        for name in names:
            node.advertise(client, name, node.EXTENDED)
        yield Placement(image=runner.PROBE_IMAGE, node_name=None, pull_never=False, nodes=names)
    else:
        pytest.skip(
            "executing tests run on the local cluster's real node or on kind; a "
            "kubeconfig cluster's nodes are not the suite's to label"
        )


@pytest.fixture
def real_run(mlgen_run: Runner, real_placement: Placement) -> Runner:
    """`mlgen_run`, with every Job placed on a real node (see the module docstring); no
    estimate: real containers take as long as they take, not their expectedDuration."""
    return dataclasses.replace(
        mlgen_run, client=PlacingKube(mlgen_run.client, real_placement), estimated=None
    )


@pytest.fixture(scope="session")
def real_epsilon(
    mlgen_cluster: Cluster,
    real_placement: Placement,
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
            client=PlacingKube(client, real_placement),
            namespace=namespace,
            artifacts=mlgen_artifacts / "real-calibration",
            time_scale=1.0,
            say=_say(request.config),
        )
        # The calibration's default slack ceiling fits KWOK, where a pod's times are set
        # exactly. A real kubelet reports a pod running and ended through its PLEG relist
        # (1 s) and a status sync, so a watch sees real pods run up to ~2 s beyond `sleep`.
        epsilon, measured = calibration.calibrate(
            run, ceiling=REAL_CEILING, slack_ceiling=REAL_SLACK_CEILING
        )
    finally:
        with kube.errors(f"deleting namespace {namespace}"):
            client.core.delete_namespace(namespace, propagation_policy="Background")
    for each in measured:
        _say(request.config)(f"real node calibration, {each.describe()}")
    _say(request.config)(
        f"real node ε: waves {epsilon.waves:.2f}s, indexed "
        f"{epsilon.indexed:.2f}s, slack {epsilon.slack:.2f}s"
    )
    return epsilon


def with_probe(batch: spec.Batch) -> spec.Batch:
    """The batch with every job's command swapped for the probe; nothing else changes."""
    return dataclasses.replace(
        batch, jobs=tuple(dataclasses.replace(j, command=probe.COMMAND) for j in batch.jobs)
    )


def verify(result: RunResult, client: kube.Kube) -> None:
    """Every job's pod got exactly its args and env, as its user, unprivileged, with its
    /dev/shm; one line per difference, naming batch, variant, job and what differs."""
    batch, namespace = result.batch, result.batch.namespace
    checks.all_complete(result.timeline)
    names = {n for j in batch.jobs for n in (*j.env, *j.secret_env)}
    jobs = sorted((o for o in result.objects if o["kind"] == "Job"), key=apply.wave_of)
    problems: list[str] = []
    seen = 0
    for position, job_object in enumerate(jobs):
        name = job_object["metadata"]["name"]
        with kube.errors(f"listing the pods of Job {namespace}/{name}"):
            pods = [
                p
                for p in client.core.list_namespaced_pod(
                    namespace, label_selector=f"{JOB_NAME}={name}"
                ).items
                if p.status.phase == "Succeeded"
            ]
        for pod in pods:
            index = pod.metadata.labels.get(INDEX)
            job = batch.jobs[int(index) if index is not None else position]
            seen += 1
            with kube.errors(f"reading the log of pod {namespace}/{pod.metadata.name}"):
                log = client.core.read_namespaced_pod_log(pod.metadata.name, namespace)
            want_env: dict[str, str | None] = dict.fromkeys(names)
            want_env.update(job.env)
            want_env.update(dict.fromkeys(job.secret_env, SECRET_VALUE))
            want_env[contract.JOB_NAME_ENV] = job.name  # every variant tells the process
            found = probe.mismatches(
                probe.read(log),
                args=job.args,
                env=want_env,
                uid=job.run_as_user,
                shm_bytes=_shm(client, pod, job),
            )
            problems += [
                f"{batch.name}/{result.variant}: job {job.name!r} (pod {pod.metadata.name}): {f}"
                for f in found
            ]
    assert not problems, "\n".join(problems)
    assert seen == len(batch.jobs), f"{seen} probe pods succeeded for {len(batch.jobs)} jobs"


def _shm(client: kube.Kube, pod: Any, job: spec.Job) -> int | None:
    if job.shm_size is None:
        return None
    with kube.errors(f"reading node {pod.spec.node_name}"):
        allocatable = client.core.read_node(pod.spec.node_name).status.allocatable
    limits = pod.spec.containers[0].resources.limits or {}
    return probe.shm_size(
        job.shm_size, pod_memory_limit=limits.get("memory"), node_memory=allocatable["memory"]
    )


def test_examples_execute_with_exactly_their_args_env_user_and_shm(
    mlgen_batch_case: runner.Case, real_run: Runner, mlgen_cluster: Cluster
) -> None:
    batch = with_probe(real_run.load(mlgen_batch_case.path, mlgen_batch_case.batch))
    result = real_run.run(batch, mlgen_batch_case.variant, timeout=180)
    assert result.failure is None, str(result.failure)
    verify(result, mlgen_cluster.client)


def _delivery_values(root: Path) -> tuple[list[str], dict[str, str]]:
    """The hostile strings of the fast delivery tests (one list for both suites)."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))  # `tests` is a package of the repository root
    from tests.test_delivery import ENV, HOSTILE

    return HOSTILE, ENV


@pytest.mark.parametrize("strategy", ["waves", "indexed", "parallel"])
def test_hostile_values_arrive_byte_for_byte(
    real_run: Runner, mlgen_cluster: Cluster, strategy: str, request: pytest.FixtureRequest
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
    assert result.failure is None, str(result.failure)
    verify(result, mlgen_cluster.client)


# One strategy keeps the module within its time budget: the calibration has just run both
# strategies' real chains (checked complete, in order, Σd ≤ makespan) to measure ε.
@pytest.mark.parametrize("strategy", ["waves"])
def test_real_sleep_chain_within_the_kwok_bounds(
    real_run: Runner, real_epsilon: Epsilon, strategy: str, mlgen_record: Callable[[str], None]
) -> None:
    doc = sleeper_batch(f"real-{strategy}", durations=[2, 3, 2], strategy=strategy)
    result = real_run.run(real_run.from_dict(doc), "sequential", timeout=120)
    assert result.failure is None, str(result.failure)
    check_result(result, real_epsilon)
    assert isinstance(real_run.client, PlacingKube)
    placement = real_run.client.placement
    assert {p.node for p in result.timeline.pods} <= set(placement.nodes)
    ready = f"; node Ready in {placement.ready_seconds:.1f}s" if placement.ready_seconds else ""
    mlgen_record(
        f"real node, {strategy}: makespan {result.timeline.makespan:.0f}s for "
        f"Σd = 7s (ε {real_epsilon.for_strategy(strategy):.2f}s){ready}"
    )


@pytest.mark.parametrize("strategy", ["waves", "indexed"])
def test_failing_command_exit_code_reaches_job_and_timeline(
    real_run: Runner, strategy: str
) -> None:
    doc = sleeper_batch(f"real-fail-{strategy}", durations=[1, 1, 1], strategy=strategy)
    doc["spec"]["jobs"][1]["args"] = ["exit 3"]
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
