"""A queued chain through the real Kueue: its order under the real Argo CD and Flux, and
what `mlgen apply` says while a step waits for admission.

Kueue creates each Job of an enrolled namespace suspended and unsuspends it once its
ClusterQueue has the quota. Each tool is shown twice, on the same batch: first as it
behaves without mlgen's fix (the check that passes afterwards fails: the next step
starts while the previous one still runs), then with it (Argo CD: the health check
`mlgen argocd-health` prints, patched into argocd-cm with kubectl, as users would;
Flux: the chain as rendered, impersonating its ServiceAccount so its `healthCheckExprs`
are read). The first half keeps the fix honest: if a tool's own behaviour changed, it
fails and says so.

The local cluster only: Kueue and the GitOps tools run as local processes whose
webhooks the API server must reach on loopback (kind's API server runs in a container).
"""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import gitops_fixtures
import pytest
import yaml
from gitops_fixtures import MLGEN, Repo, batch_doc, finished, wait_for
from test_apply_cli import render_into
from typer.testing import CliRunner

from mlgen import checks, contract, health, kube, timeline, variants
from mlgen.checks import Epsilon
from mlgen.cli.app import app
from mlgen.cluster import argocd, build, gitops, gitserver, kueue
from mlgen.conformance.plugin import Cluster
from mlgen.conformance.runner import Runner, sleeper_batch
from mlgen.conformance.suite import check_result

git_server = gitops_fixtures.git_server  # the module-scoped Git server fixture

pytestmark = pytest.mark.skipif(
    "config.getoption('--mlgen-cluster') not in (None, 'local')",
    reason="Kueue's webhooks and the GitOps tools run as local processes on loopback, "
    "which only the local cluster's API server reaches",
)

QUEUE = "team"
# Room for a few steps' pods (100m each) at once: without the fix, steps overlap.
QUOTA = {"cpu": "1", "memory": "4Gi", "nvidia.com/gpu": "2"}
STEPS = [10, 2]
EXAMPLES = (
    Path(__file__).resolve().parents[1] / "examples"
)  # long enough that a step started too soon is seen running beside it


@pytest.fixture(scope="module")
def queue(
    mlgen_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[kueue.Kueue]:
    build.ensure_group("kueue", progress=print)  # cached after `mlgen cluster build`
    with kueue.start(
        mlgen_cluster.client,
        kubeconfig=mlgen_cluster.kubeconfig,
        workdir=tmp_path_factory.mktemp("kueue"),
        quota=QUOTA,
    ) as running:
        yield running


@pytest.fixture
def enrolled(queue: kueue.Kueue, mlgen_namespace: str) -> str:
    queue.enroll(mlgen_namespace, QUEUE)
    return mlgen_namespace


def queued_doc(name: str, namespace: str, tool: gitops.Tool, repo: Repo) -> dict[str, Any]:
    doc = batch_doc(
        name, namespace, durations=STEPS, simulated=True, tool_spec=tool.batch_spec(repo)
    )
    doc["spec"]["queue"] = QUEUE
    return doc


def sync(
    tool: gitops.Tool,
    queue: kueue.Kueue,
    repo: Repo,
    doc: dict[str, Any],
    namespace: str,
    *,
    edit: Callable[[], None],
) -> timeline.Timeline:
    """Render, let `edit` change the work tree, push, sync the sequential variant, wait
    until every step completed, and check that Kueue admitted every Job: before the tool
    forgets the batch, whose pruning deletes the Jobs."""
    batch = str(doc["metadata"]["name"])
    repo.render(doc)
    edit()
    repo.push(f"render {batch}")
    tool.watch(repo, batch=batch, variant="sequential", namespace=namespace)
    try:
        found = wait_for(
            f"{tool.name}: {len(STEPS)} Job(s) of {batch} Complete",
            lambda: finished(
                tool.client, batch=batch, variant="sequential", namespace=namespace, count=2
            ),
            timeout=180,
            diagnose=lambda: tool.diagnose(repo, batch=batch, variant="sequential"),
        )
        admitted_every_job(queue, tool.client, namespace)
        return found
    finally:
        tool.forget(repo, batch=batch, variant="sequential")


def admitted_every_job(queue: kueue.Kueue, client: kube.Kube, namespace: str) -> None:
    """Each Job went through Kueue: it has a Workload that was admitted."""
    jobs = [j.metadata.name for j in client.batch.list_namespaced_job(namespace).items]
    assert jobs, f"no Job in {namespace}"
    problems = queue.not_admitted(namespace, jobs)
    assert not problems, "; ".join(problems)


def at(found: timeline.Timeline, offset: float) -> float:
    """An offset of a timeline as a POSIX time, to compare two batches' timelines."""
    return datetime.fromisoformat(found.origin).timestamp() + offset


def out_of_order(found: timeline.Timeline) -> str:
    """The check's own words on a run that broke the order ('' if it kept it)."""
    try:
        checks.steps_in_order(found, [f"step-{i}" for i in range(len(STEPS))])
    except AssertionError as e:
        return str(e)
    return ""


@contextlib.contextmanager
def quota_held(
    cluster: Cluster,
    namespace: str,
    scratch: Path,
    *,
    seconds: int,
    release_when: Callable[[], bool] | None = None,
) -> Iterator[None]:
    """A Job holding the queue's whole CPU quota (batch `blocker`), applied by `mlgen
    apply` in the background and admitted before the body runs: what the body queues
    waits behind it. It holds the quota for `seconds`; with `release_when`, only until
    that holds (looked at every 0.5 s in the background), when the blocker is deleted.
    On exit, a blocker that ran to its end must have ended well."""
    blocker = sleeper_batch("blocker", durations=[seconds])
    blocker["spec"]["defaults"]["resources"]["requests"]["cpu"] = QUOTA["cpu"]
    blocker["spec"]["queue"] = QUEUE
    (scratch / "blocker").mkdir()
    tree = render_into(scratch / "blocker", blocker, namespace)
    client = cluster.client
    started = subprocess.Popen(
        [
            str(MLGEN),
            "apply",
            str(tree / "sequential"),
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--timeout",
            f"{seconds + 120}s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def jobs() -> list[Any]:
        listed = client.batch.list_namespaced_job(
            namespace, label_selector=f"{contract.PART_OF}=blocker"
        )
        return list(listed.items)

    def admitted() -> bool:
        if started.poll() is not None:
            assert started.stdout is not None
            raise AssertionError(f"the blocker's apply ended first: {started.stdout.read()}")
        return any(j.spec.suspend is False for j in jobs())

    released, done = threading.Event(), threading.Event()

    def release() -> None:
        while not done.wait(0.5):
            with contextlib.suppress(Exception):  # a failed look is looked at again
                if release_when is not None and release_when():
                    for job in jobs():
                        client.batch.delete_namespaced_job(
                            job.metadata.name, namespace, propagation_policy="Background"
                        )
                    released.set()
                    return

    watcher = threading.Thread(target=release, daemon=True)
    try:
        wait_for("the blocker admitted", admitted, timeout=60)
        if release_when is not None:
            watcher.start()
        yield
    except BaseException:
        started.kill()
        started.communicate()
        raise
    finally:
        done.set()
        if watcher.is_alive():
            watcher.join()
    if released.is_set():  # its apply waits for a Job that is gone
        started.kill()
        started.communicate()
        return
    out, _ = started.communicate(timeout=seconds + 150)
    assert started.returncode == 0, out


def test_apply_says_a_step_is_queued_and_waits_for_its_end(
    queue: kueue.Kueue, mlgen_cluster: Cluster, enrolled: str, tmp_path: Path
) -> None:
    """A Job holding the queue's whole CPU quota runs first: the batch's first step is
    queued behind it, `mlgen apply` says so in Kueue's words, and the chain still runs in
    order, each step awaited to Complete (not to its admission)."""
    client = mlgen_cluster.client
    doc = sleeper_batch("queued", durations=[2, 2])
    doc["spec"]["queue"] = QUEUE
    tree = render_into(tmp_path, doc, enrolled)
    kubeconfig = str(mlgen_cluster.kubeconfig)
    # Long enough that apply looks (every 5 s) while its first step still waits.
    with quota_held(mlgen_cluster, enrolled, tmp_path, seconds=14):
        result = CliRunner().invoke(
            app, ["apply", str(tree / "sequential"), "--kubeconfig", kubeconfig]
        )
    assert result.exit_code == 0, result.output
    assert "queued, waiting for admission by Kueue: couldn't assign flavors" in result.output, (
        result.output
    )
    assert "insufficient unused quota for cpu" in result.output, result.output
    found = timeline.collect(client, batch="queued", variant="sequential", namespace=enrolled)
    checks.all_complete(found)
    checks.steps_in_order(found, ["step-0", "step-1"])
    blocked = timeline.collect(client, batch="blocker", variant="sequential", namespace=enrolled)
    (blocker_pod,) = blocked.pods
    first = min(at(found, p.start) for p in found.pods if p.start is not None)
    assert blocker_pod.end is not None
    # Admitted only once the blocker's quota came back (times to the API's second).
    assert first >= at(blocked, blocker_pod.end) - found.resolution, (first, blocked)
    admitted_every_job(queue, client, enrolled)


def test_parallel_under_quota_runs_what_the_quota_admits(
    queue: kueue.Kueue,
    mlgen_cluster: Cluster,
    mlgen_run: Runner,
    mlgen_epsilon: Epsilon,
    tmp_path: Path,
    mlgen_record: Callable[[str], None],
) -> None:
    """Six 1-GPU jobs at p = 4 in a queue with 2 GPUs. Kueue admits an Indexed Job whole
    or not at all, so without spec.queueQuota it never admits it (apply says why, in
    Kueue's words); with it, render runs 2 at a time, and estimate predicts the run."""
    queue.enroll(mlgen_run.namespace, QUEUE)
    doc = sleeper_batch(
        "quota",
        durations=[2] * 6,
        parallelism=4,
        extra_defaults={
            "resources": {
                "requests": {"cpu": "100m", "memory": "32Mi"},
                "limits": {"nvidia.com/gpu": 1},
            },
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
        },
    )
    doc["spec"]["queue"] = QUEUE
    tree = render_into(tmp_path, doc, mlgen_run.namespace)
    never = CliRunner().invoke(
        app,
        [
            "apply",
            str(tree / "parallel"),
            "--kubeconfig",
            str(mlgen_cluster.kubeconfig),
            "--timeout",
            "12s",
        ],
    )
    assert never.exit_code != 0, never.output
    assert "queued, waiting for admission by Kueue" in never.output, never.output
    assert "nvidia.com/gpu" in never.output, never.output
    mlgen_cluster.client.batch.delete_collection_namespaced_job(
        mlgen_run.namespace, propagation_policy="Background"
    )
    doc["metadata"]["name"] = "quota-fit"
    doc["spec"]["queueQuota"] = {"nvidia.com/gpu": QUOTA["nvidia.com/gpu"]}
    batch = mlgen_run.from_dict(doc)
    assert batch.parallelism == 2, "rendered at what the quota admits"
    result = mlgen_run.run(batch, "parallel")
    assert result.failure is None
    checks.all_complete(result.timeline)
    checks.max_running(result.timeline, 2)
    checks.parallel_bounds(
        result.timeline,
        result.durations,
        parallelism=2,
        epsilon=mlgen_epsilon.of(variants.get("parallel")),
    )
    admitted_every_job(queue, mlgen_cluster.client, mlgen_run.namespace)
    assert result.estimate is not None
    error = abs(result.estimate - result.timeline.makespan) / result.timeline.makespan
    assert error <= 0.10, (result.estimate, result.timeline.makespan)
    mlgen_record(
        f"kueue quota: 6 x 1 GPU at p = 4 in 2 GPUs: never admitted without queueQuota; "
        f"with it peak {result.timeline.max_concurrency()}, makespan "
        f"{result.timeline.makespan:.1f}s, estimate {result.estimate:.1f}s"
    )


@pytest.mark.parametrize("variant", ["sequential", "parallel"])
def test_a_teams_queued_batch_conforms_through_kueue(
    queue: kueue.Kueue,
    mlgen_run: Runner,
    mlgen_epsilon: Epsilon,
    mlgen_time_scale: float,
    variant: str,
) -> None:
    """examples/gpu.yaml unchanged (queue gpu-team-a, 1 GPU, 8 CPUs and 48Gi a job, four
    at a time) through the generic suite as `--mlgen-kueue mlgen` runs it on a cluster
    with Kueue: its LocalQueue made in the test namespace, every Job admitted, and the
    variant's own checks (order, p, bounds) on what ran."""
    queue.quota({"cpu": "64", "memory": "512Gi", "nvidia.com/gpu": "8"})
    try:
        run = dataclasses.replace(mlgen_run, time_scale=mlgen_time_scale, kueue=kueue.CLUSTER_QUEUE)
        batch = run.load(EXAMPLES / "gpu.yaml")
        assert batch.queue == "gpu-team-a"
        result = run.run(batch, variant)
        assert result.failure is None, str(result.failure)
        check_result(result, mlgen_epsilon)
        # The runner checked admission; look once more, from here.
        admitted_every_job(queue, run.client, run.namespace)
    finally:
        queue.quota(QUOTA)


def _started(
    name: str, mlgen_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[gitops.Tool]:
    gitops.ensure_built(name, progress=print)  # cached after `mlgen cluster build`
    with gitops.start(
        name,
        mlgen_cluster.client,
        kubeconfig=mlgen_cluster.kubeconfig,
        workdir=tmp_path_factory.mktemp(name),
    ) as running:
        yield running


@pytest.fixture(scope="class")
def argocd_tool(
    queue: kueue.Kueue, mlgen_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[gitops.Tool]:
    yield from _started("argocd", mlgen_cluster, tmp_path_factory)


@pytest.fixture(scope="class")
def flux_tool(
    queue: kueue.Kueue, mlgen_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[gitops.Tool]:
    yield from _started("flux", mlgen_cluster, tmp_path_factory)


class TestArgoCD:
    """Without, then with, the health check: the tests run in this order."""

    @pytest.fixture
    def tool(self, argocd_tool: gitops.Tool) -> gitops.Tool:
        return argocd_tool

    def test_without_mlgens_health_check_an_admitted_step_reads_healthy_too_soon(
        self,
        tool: gitops.Tool,
        queue: kueue.Kueue,
        enrolled: str,
        git_server: gitserver.GitServer,
        tmp_path: Path,
    ) -> None:
        repo = Repo.create(git_server, "kueue-argocd-bare", tmp_path)
        found = sync(
            tool,
            queue,
            repo,
            queued_doc("kq-argo-bare", enrolled, tool, repo),
            enrolled,
            edit=lambda: None,
        )
        broken = out_of_order(found)
        assert broken, (
            "Argo CD kept a queued chain in order without mlgen's health check: its built-in "
            "Job health no longer reads an admitted Job as finished; revisit health.py"
        )

    def test_with_mlgens_health_check_the_chain_keeps_its_order(
        self,
        tool: gitops.Tool,
        queue: kueue.Kueue,
        mlgen_cluster: Cluster,
        enrolled: str,
        git_server: gitserver.GitServer,
        tmp_path: Path,
        mlgen_record: Callable[[str], None],
    ) -> None:
        patch = tmp_path / "job-health.yaml"
        printed = CliRunner().invoke(app, ["argocd-health"])
        assert printed.exit_code == 0, printed.output
        patch.write_text(printed.output)
        kubectl = build.kubectl()
        subprocess.run(
            [
                str(kubectl),
                "--kubeconfig",
                str(mlgen_cluster.kubeconfig),
                "-n",
                argocd.NAMESPACE,
                "patch",
                "configmap",
                "argocd-cm",
                "--patch-file",
                str(patch),
            ],
            check=True,
            capture_output=True,
        )
        repo = Repo.create(git_server, "kueue-argocd-fixed", tmp_path)
        found = sync(
            tool,
            queue,
            repo,
            queued_doc("kq-argo-fixed", enrolled, tool, repo),
            enrolled,
            edit=lambda: None,
        )
        checks.all_complete(found)
        assert not out_of_order(found), out_of_order(found)
        mlgen_record(f"kueue argocd: queued chain {STEPS} in order in {found.makespan:.0f}s")


class TestFlux:
    """Without, then with, the chain's health expressions."""

    @pytest.fixture
    def tool(self, flux_tool: gitops.Tool) -> gitops.Tool:
        return flux_tool

    def test_without_mlgens_health_exprs_a_queued_step_is_ready_too_soon(
        self,
        tool: gitops.Tool,
        queue: kueue.Kueue,
        mlgen_cluster: Cluster,
        enrolled: str,
        git_server: gitserver.GitServer,
        tmp_path: Path,
    ) -> None:
        """The first step waits in the queue behind a blocker until Flux has applied the
        next one, so Flux reads it while it is suspended (with a free quota Kueue may admit
        it before Flux's first look, and the break would depend on that race)."""
        repo = Repo.create(git_server, "kueue-flux-bare", tmp_path)
        doc = queued_doc("kq-flux-bare", enrolled, tool, repo)
        chain = repo.worktree / gitops.MANIFESTS / "kq-flux-bare" / "flux"

        def unfixed() -> None:
            """The chain as mlgen rendered it before: no ServiceAccount, no expressions."""
            (chain / "access.yaml").unlink(missing_ok=True)
            docs = list(yaml.safe_load_all((chain / "kustomizations.yaml").read_text()))
            for each in docs:
                each["spec"].pop("serviceAccountName", None)
                each["spec"].pop("healthCheckExprs", None)
            (chain / "kustomizations.yaml").write_text(yaml.safe_dump_all(docs))

        def next_step_applied() -> bool:
            """Flux went past the first step while Kueue still held it."""
            jobs = tool.client.batch.list_namespaced_job(enrolled).items
            return any(j.metadata.name.startswith("kq-flux-bare-step-1") for j in jobs)

        # Flux re-checks dependsOn every 1 s: the next step follows a queued one within
        # seconds. If it never does, the blocker ends after 60 s and the chain runs in
        # order, which fails below.
        with quota_held(
            mlgen_cluster, enrolled, tmp_path, seconds=60, release_when=next_step_applied
        ):
            found = sync(tool, queue, repo, doc, enrolled, edit=unfixed)
        assert out_of_order(found), (
            "Flux kept a queued chain in order without mlgen's health expressions: its Job "
            "reader no longer calls a suspended Job Current; revisit health.py"
        )

    def test_with_mlgens_chain_the_queue_keeps_its_order(
        self,
        tool: gitops.Tool,
        queue: kueue.Kueue,
        enrolled: str,
        git_server: gitserver.GitServer,
        tmp_path: Path,
        mlgen_record: Callable[[str], None],
    ) -> None:
        repo = Repo.create(git_server, "kueue-flux-fixed", tmp_path)
        doc = queued_doc("kq-flux-fixed", enrolled, tool, repo)
        found = sync(tool, queue, repo, doc, enrolled, edit=lambda: None)
        checks.all_complete(found)
        assert not out_of_order(found), out_of_order(found)
        chain = yaml.safe_load_all(
            (
                repo.worktree / gitops.MANIFESTS / "kq-flux-fixed" / "flux" / "kustomizations.yaml"
            ).read_text()
        )
        assert all(d["spec"]["healthCheckExprs"] == [health.FLUX_JOB] for d in chain)
        mlgen_record(f"kueue flux: queued chain {STEPS} in order in {found.makespan:.0f}s")
