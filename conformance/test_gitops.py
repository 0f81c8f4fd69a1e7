"""The real Flux and the real Argo CD sync what `mlgen render` wrote, from a Git
repository on loopback: steps complete in order within Σd + n·ε_tool (ε_tool from a
short calibration run of that tool), a failed step stops the chain, an edit re-runs
exactly the edited step and those after it, and the parallel variant keeps to p.

One class per tool; its controllers run for the class only, so the two tools never
compete for the machine. Durations are 2-3 s: the suite budget is minutes.

On the local cluster the pods are KWOK's; on kind (`--mlgen-cluster kind`) they are real:
busybox sleeps each step on a real kubelet, a failing step exits 3, and the parallel
variant's pods mount their params ConfigMap, so an object applied after the Job that
reads it would hang the sync there and nowhere else.
"""

from __future__ import annotations

import functools
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import gitops_fixtures
import pytest
import yaml
from gitops_fixtures import Repo, batch_doc, finished, job_uids, wait_for

from mlgen import checks, kube, source, timeline
from mlgen.cluster import fluxcd, gitops, gitserver, overhead
from mlgen.conformance.runner import staged_batch

git_server = gitops_fixtures.git_server  # the module-scoped Git server fixture

pytestmark = pytest.mark.skipif(
    "config.getoption('--mlgen-cluster') not in (None, 'local', 'kind')",
    reason="runs Flux and Argo CD as local processes, with their CRDs, against a cluster the "
    "suite owns (local or kind), never against a kubeconfig cluster",
)

# The calibration namespaces are this module's own (the plugin's are per test), with the
# same Pod Security level as every conformance namespace.
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
CALIBRATION = [2, 2, 2]
# What one short calibration run cannot be trusted to have seen, per tool: Flux checks a
# `wait` Kustomization's health every 5 s, so a run may catch every poll early; Argo CD
# moves to the next wave on the Job's watch event (steps of 1-2 s over d measured here),
# so what is left is a busy machine delaying that reconcile: 3 s, above the worst seen.
MARGIN = {"flux": fluxcd.HEALTH_POLL_SECONDS, "argocd": 3.0}


class Cluster(Protocol):
    """What these tests use of the plugin's `mlgen_cluster`."""

    kubeconfig: Path
    client: kube.Kube

    @property
    def simulated(self) -> bool: ...


@dataclass
class Harness:
    tool: gitops.Tool
    server: gitserver.GitServer
    scratch: Path
    simulated: bool
    calibration: overhead.Calibration
    rss: dict[str, float]
    artifacts: Path
    watched: list[tuple[Repo, str, str]] = field(default_factory=list)

    def repo(self, name: str) -> Repo:
        return Repo.create(self.server, name, self.scratch)

    def watch(self, repo: Repo, *, batch: str, variant: str, namespace: str) -> None:
        self.tool.watch(repo, batch=batch, variant=variant, namespace=namespace)
        self.watched.append((repo, batch, variant))

    def keep(self, found: timeline.Timeline, name: str) -> None:
        """The run's timeline as an artifact, next to the rest of the suite's."""
        found.save(self.artifacts / f"gitops-{self.tool.name}-{name}.json")

    def forget_all(self) -> None:
        """After a test: nothing of it may be synced again while later tests run."""
        while self.watched:
            repo, batch, variant = self.watched.pop()
            self.tool.forget(repo, batch=batch, variant=variant)

    def run(
        self,
        repo: Repo,
        doc: dict[str, Any],
        *,
        variant: str,
        namespace: str,
        count: int,
        timeout: float,
    ) -> timeline.Timeline:
        batch = str(doc["metadata"]["name"])
        repo.render(doc)
        repo.push(f"render {batch}")
        self.watch(repo, batch=batch, variant=variant, namespace=namespace)
        return wait_for(
            f"{self.tool.name}: {count} Job(s) of {batch}/{variant} Complete",
            lambda: finished(
                self.tool.client, batch=batch, variant=variant, namespace=namespace, count=count
            ),
            timeout=timeout,
            diagnose=lambda: self.tool.diagnose(repo, batch=batch, variant=variant),
        )


def _namespace(client: kube.Kube, prefix: str) -> str:
    name = f"{prefix}-{secrets.token_hex(2)}"
    client.core.create_namespace({"metadata": {"name": name, "labels": RESTRICTED}})
    wait_for(
        f"namespace {name}: default ServiceAccount",
        lambda: any(
            sa.metadata.name == "default"
            for sa in client.core.list_namespaced_service_account(name).items
        ),
        timeout=30,
    )
    return name


def _calibrate(
    tool: gitops.Tool,
    server: gitserver.GitServer,
    scratch: Path,
    *,
    simulated: bool,
    artifacts: Path,
) -> overhead.Calibration:
    """A 3-step chain of 2 s through the tool; ε from its worst step plus the margin."""
    client = tool.client
    namespace = _namespace(client, f"mlgen-calibration-{tool.name}")
    try:
        repo = Repo.create(server, f"calibration-{tool.name}", scratch)
        batch = f"calib-{tool.name}"
        repo.render(
            batch_doc(
                batch,
                namespace,
                durations=CALIBRATION,
                simulated=simulated,
                tool_spec=tool.batch_spec(repo),
            )
        )
        repo.push("calibration")
        tool.watch(repo, batch=batch, variant="sequential", namespace=namespace)
        found = wait_for(
            f"{tool.name} calibration",
            lambda: finished(
                client,
                batch=batch,
                variant="sequential",
                namespace=namespace,
                count=len(CALIBRATION),
            ),
            timeout=180,
            diagnose=lambda: tool.diagnose(repo, batch=batch, variant="sequential"),
        )
        tool.forget(repo, batch=batch, variant="sequential")
        found.save(artifacts / f"gitops-{tool.name}-calibration.json")
        return overhead.calibrate(tool.name, found, CALIBRATION, margin=MARGIN[tool.name])
    finally:
        client.core.delete_namespace(namespace, propagation_policy="Background")


def _harness(
    name: str,
    cluster: Cluster,
    server: gitserver.GitServer,
    *,
    artifacts: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Harness]:
    """The tool started for one class, calibrated, and stopped after it."""
    work = tmp_path_factory.mktemp(name)
    gitops.ensure_built(name, progress=print)  # cached after `mlgen cluster build`
    with gitops.start(name, cluster.client, kubeconfig=cluster.kubeconfig, workdir=work) as tool:
        calibration = _calibrate(
            tool, server, work, simulated=cluster.simulated, artifacts=artifacts
        )
        yield Harness(
            tool=tool,
            server=server,
            scratch=work,
            simulated=cluster.simulated,
            calibration=calibration,
            artifacts=artifacts,
            rss=tool.rss_mib(),
        )


@pytest.fixture(scope="class")
def flux_harness(
    mlgen_cluster: Cluster,
    git_server: gitserver.GitServer,
    mlgen_artifacts: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Harness]:
    yield from _harness(
        "flux",
        mlgen_cluster,
        git_server,
        artifacts=mlgen_artifacts,
        tmp_path_factory=tmp_path_factory,
    )


@pytest.fixture(scope="class")
def argo_harness(
    mlgen_cluster: Cluster,
    git_server: gitserver.GitServer,
    mlgen_artifacts: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Harness]:
    yield from _harness(
        "argocd",
        mlgen_cluster,
        git_server,
        artifacts=mlgen_artifacts,
        tmp_path_factory=tmp_path_factory,
    )


class _Scenarios:
    """The scenarios, run by each tool's class with its own `gitops` harness."""

    def test_calibration(self, gitops: Harness, mlgen_record: Callable[[str], None]) -> None:
        mlgen_record(f"gitops {gitops.calibration.describe()}")
        mlgen_record(
            f"gitops {gitops.tool.name}: RSS "
            + ", ".join(f"{name} {mib:.0f} MiB" for name, mib in gitops.rss.items())
        )
        assert gitops.calibration.epsilon < 20, gitops.calibration.describe()

    def test_chain_in_order_within_bounds_and_an_edit_reruns_the_tail(
        self, gitops: Harness, mlgen_namespace: str, mlgen_record: Callable[[str], None]
    ) -> None:
        tool, client = gitops.tool.name, gitops.tool.client
        repo = gitops.repo(f"chain-{tool}")
        batch, durations = f"chain-{tool}", [2, 3, 2]

        def doc(steps: list[int]) -> dict[str, Any]:
            return batch_doc(
                batch,
                mlgen_namespace,
                durations=steps,
                tool_spec=gitops.tool.batch_spec(repo),
                simulated=gitops.simulated,
            )

        first = gitops.run(
            repo,
            doc(durations),
            variant="sequential",
            namespace=mlgen_namespace,
            count=3,
            timeout=240,
        )
        gitops.keep(first, batch)
        epsilon = gitops.calibration.epsilon
        checks.all_complete(first)
        checks.steps_in_order(first, ["step-0", "step-1", "step-2"])
        checks.sequential_bounds(first, durations, epsilon=epsilon)
        mlgen_record(
            f"gitops {tool}: chain Σd = {sum(durations)}s in "
            f"{first.makespan:.0f}s (bound {sum(durations) + 3 * epsilon + 1:.1f}s)"
        )
        before = [j.name for j in first.jobs]
        uids = job_uids(client, mlgen_namespace, before)

        # Edit step 1 only: it and step 2 (whose name chains step 1's hash) re-run.
        repo.render(doc([2, 2, 2]))
        pushed = time.time()
        repo.push(f"edit {batch} step-1")
        gitops.tool.refresh(repo, batch=batch, variant="sequential")

        def rerun() -> timeline.Timeline | None:
            found = finished(
                client, batch=batch, variant="sequential", namespace=mlgen_namespace, count=3
            )
            if found is None or {j.name for j in found.jobs} & set(before[1:]):
                return None
            return found

        second = wait_for(
            f"{tool}: the edited chain re-ran",
            rerun,
            timeout=240,
            diagnose=lambda: gitops.tool.diagnose(repo, batch=batch, variant="sequential"),
        )
        gitops.keep(second, f"{batch}-edited")
        after = [j.name for j in second.jobs]
        assert after[0] == before[0], f"step-0 was replaced: {before[0]} -> {after[0]}"
        assert job_uids(client, mlgen_namespace, after[:1]) == {before[0]: uids[before[0]]}, (
            "step-0 was re-created"
        )
        assert [p.job for p in second.pods].count(before[0]) == 1, "step-0 ran again"
        assert after[1] != before[1] and after[2] != before[2], (before, after)
        checks.all_complete(second)
        checks.steps_in_order(second, ["step-0", "step-1", "step-2"])
        mlgen_record(
            f"gitops {tool}: edit of step-1 re-ran step-1 and step-2 only, "
            f"{time.time() - pushed:.0f}s after the push"
        )

    def test_a_failed_step_stops_the_chain(
        self, gitops: Harness, mlgen_namespace: str, mlgen_record: Callable[[str], None]
    ) -> None:
        tool, client = gitops.tool.name, gitops.tool.client
        repo = gitops.repo(f"failure-{tool}")
        batches = {mode: f"fail-{mode}-{tool}" for mode in ("stop", "continue")}
        for mode, batch in batches.items():
            repo.render(
                batch_doc(
                    batch,
                    mlgen_namespace,
                    durations=[2, 2, 2],
                    tool_spec=gitops.tool.batch_spec(repo),
                    fail_step=1,
                    on_failure=mode,
                    simulated=gitops.simulated,
                )
            )
        repo.push("two failing chains: onFailure stop and continue")
        for batch in batches.values():
            gitops.watch(repo, batch=batch, variant="sequential", namespace=mlgen_namespace)
        verdicts = {
            mode: wait_for(
                f"{tool}: {batch} shows the chain stopped at step-1",
                functools.partial(
                    gitops.tool.stopped_at, repo, batch=batch, variant="sequential", step=1
                ),
                timeout=120,
                diagnose=functools.partial(
                    gitops.tool.diagnose, repo, batch=batch, variant="sequential"
                ),
            )
            for mode, batch in batches.items()
        }
        # Give the tool the time it would need to move on, then look again.
        time.sleep(gitops.calibration.epsilon)
        for mode, batch in batches.items():
            found = timeline.collect(
                client, batch=batch, variant="sequential", namespace=mlgen_namespace
            )
            gitops.keep(found, batch)
            states = [(j.step, j.status) for j in found.jobs]
            assert states == [("step-0", "Complete"), ("step-1", "Failed")], (
                f"{tool}, onFailure {mode}: {states}"
            )
            assert gitops.tool.stopped_at(repo, batch=batch, variant="sequential", step=1), (
                verdicts[mode]
            )
            mlgen_record(
                f"gitops {tool}: onFailure {mode}: step-1 Failed, step-2 never "
                f"created; {verdicts[mode]}"
            )

    def test_parallel_variant_keeps_to_p(
        self, gitops: Harness, mlgen_namespace: str, mlgen_record: Callable[[str], None]
    ) -> None:
        tool = gitops.tool.name
        repo = gitops.repo(f"parallel-{tool}")
        batch, durations = f"par-{tool}", [2, 2, 2, 2]
        found = gitops.run(
            repo,
            batch_doc(
                batch,
                mlgen_namespace,
                durations=durations,
                parallelism=2,
                simulated=gitops.simulated,
            ),
            variant="parallel",
            namespace=mlgen_namespace,
            count=1,
            timeout=180,
        )
        gitops.keep(found, batch)
        checks.all_complete(found)
        # The waves inside one Indexed Job are the Job controller's; the tool's ε (a whole
        # step: its reaction, Job start, pod start, completion) bounds each of them.
        checks.parallel_bounds(found, durations, parallelism=2, epsilon=gitops.calibration.epsilon)
        mlgen_record(
            f"gitops {tool}: parallel n=4 p=2 d=2s in {found.makespan:.0f}s, "
            f"peak {found.max_concurrency()} pods"
        )

    def test_a_three_stage_pipeline_syncs_stage_by_stage(
        self, gitops: Harness, mlgen_namespace: str, mlgen_record: Callable[[str], None]
    ) -> None:
        """prep → sweep (4 at p = 2, one Indexed Job) → eval: the tool starts each stage
        only after the previous one completed (Argo CD: a sync wave each; Flux: a
        Kustomization each, `dependsOn` the previous with `wait`)."""
        tool = gitops.tool.name
        repo = gitops.repo(f"stages-{tool}")
        batch = f"stages-{tool}"
        doc = staged_batch(
            batch, {"prep": [2], "sweep": [2, 2, 2, 2], "eval": [2]}, parallelism={"sweep": 2}
        )
        doc["metadata"]["namespace"] = mlgen_namespace
        doc["spec"].update(gitops.tool.batch_spec(repo))
        found = gitops.run(
            repo, doc, variant="stages", namespace=mlgen_namespace, count=3, timeout=300
        )
        gitops.keep(found, batch)
        checks.all_complete(found)
        epsilon = gitops.calibration.epsilon
        (parsed,), problems = source.load_text(yaml.safe_dump(doc), source=f"{batch}.yaml")
        assert not problems, problems
        # The tool's ε starts each stage; the rounds inside the Indexed Job are the Job
        # controller's, which the tool's ε (a whole step) bounds too.
        checks.stages_bounds(found, parsed, between=epsilon, within=epsilon)
        mlgen_record(
            f"gitops {tool}: stages prep → sweep (4 at p = 2) → eval in "
            f"{found.makespan:.0f}s, in stage order"
        )


class TestFlux(_Scenarios):
    @pytest.fixture
    def gitops(self, flux_harness: Harness) -> Iterator[Harness]:
        yield flux_harness
        flux_harness.forget_all()


class TestArgoCD(_Scenarios):
    @pytest.fixture
    def gitops(self, argo_harness: Harness) -> Iterator[Harness]:
        yield argo_harness
        argo_harness.forget_all()
