"""The GitOps harness of test_gitops.py: a repository on the loopback Git server that
batches are rendered into with the `mlgen render` CLI, committed and pushed (what users
do), and the waits. The tools themselves are `mlgen.cluster.gitops.Tool`s.

Not a conftest: the conformance package's conftest belongs to the generic suite.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from mlgen import kube, timeline
from mlgen.cluster import gitops, gitserver
from mlgen.conformance.runner import sleeper_batch

MLGEN = Path(sys.executable).parent / "mlgen"
T = TypeVar("T")


@dataclass
class Repo:
    """One bare repository on the server and the work tree that pushes to it."""

    name: str
    url: str
    worktree: Path

    @classmethod
    def create(cls, server: gitserver.GitServer, name: str, scratch: Path) -> Repo:
        url = server.create(name)
        return cls(name=name, url=url, worktree=gitserver.clone_empty(url, scratch / name))

    def render(self, doc: dict[str, Any]) -> None:
        """Write the batch file into the work tree and render it into manifests/."""
        name = doc["metadata"]["name"]
        path = self.worktree / "batches" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        args = [str(MLGEN), "render", str(path), "-o", str(self.worktree / gitops.MANIFESTS)]
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"mlgen render failed: {proc.stderr or proc.stdout}"

    def push(self, message: str) -> str:
        return gitserver.commit_and_push(self.worktree, message=message)


def batch_doc(
    name: str,
    namespace: str,
    *,
    durations: list[int],
    simulated: bool,
    tool_spec: dict[str, Any] | None = None,
    fail_step: int | None = None,
    on_failure: str = "stop",
    parallelism: int | None = None,
) -> dict[str, Any]:
    """A sleeper batch as a user would commit it: in the test namespace, with what the
    tool needs in the batch to sync its chain (`Tool.batch_spec`, e.g. `spec.flux`)."""
    doc = sleeper_batch(name, durations=durations, on_failure=on_failure, parallelism=parallelism)
    doc["metadata"]["namespace"] = namespace
    if simulated:
        doc["spec"]["simulated"] = True  # KWOK hints: run time and exit code
    if tool_spec:
        doc["spec"].update(tool_spec)
    if fail_step is not None:
        failing = doc["spec"]["jobs"][fail_step]
        failing["simulate"] = {"exitCode": 3}  # KWOK's
        failing["args"] = [f"{failing['args'][0]}; exit 3"]  # a real kubelet's
        failing["retries"] = 0
    return doc


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    *,
    timeout: float,
    diagnose: Callable[[], str] = lambda: "",
) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found is not None and found is not False:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what}: not after {timeout:.0f}s. {diagnose()}")


def finished(
    client: kube.Kube, *, batch: str, variant: str, namespace: str, count: int
) -> timeline.Timeline | None:
    """The timeline once `count` Jobs of the batch are Complete (None before; raises on a
    Failed Job, which the test did not plan)."""
    found = timeline.collect(client, batch=batch, variant=variant, namespace=namespace)
    failed = [j.name for j in found.jobs if j.status == "Failed"]
    assert not failed, f"{batch}/{variant}: Job(s) {', '.join(failed)} failed"
    done = [j for j in found.jobs if j.status == "Complete"]
    return found if len(done) == count and len(found.jobs) == count else None


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[gitserver.GitServer]:
    """A loopback Git server for one test module (import it into the module)."""
    server = gitserver.start(tmp_path_factory.mktemp("git") / "repositories")
    try:
        yield server
    finally:
        server.stop()


def job_uids(client: kube.Kube, namespace: str, names: list[str]) -> dict[str, str]:
    return {n: client.batch.read_namespaced_job(n, namespace).metadata.uid for n in names}
