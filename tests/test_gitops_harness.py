"""The GitOps harness' pieces that need no cluster: the loopback Git server, helper
processes, ε from a calibration timeline, Argo CD's cluster credentials, the tools'
registry and what each adds to a batch."""

from __future__ import annotations

import base64
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mlgen.cluster import argocd, crds, fluxcd, gitops, gitserver, overhead, processes
from mlgen.errors import ClusterError
from mlgen.timeline import JobRecord, Timeline


def test_the_git_server_takes_pushes_and_serves_clones(tmp_path: Path) -> None:
    server = gitserver.start(tmp_path / "repos")
    try:
        url = server.create("demo")
        assert url.startswith("http://127.0.0.1:") and url.endswith("/demo.git")
        work = gitserver.clone_empty(url, tmp_path / "work")
        (work / "a.yaml").write_text("one\n")
        first = gitserver.commit_and_push(work, message="one")
        (work / "a.yaml").write_text("two\n")
        second = gitserver.commit_and_push(work, message="two")
        assert first != second
        gitserver.git(["clone", "--quiet", url, str(tmp_path / "clone")], cwd=tmp_path)
        assert (tmp_path / "clone" / "a.yaml").read_text() == "two\n"
    finally:
        server.stop()


def test_a_git_failure_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match=r"`git rev-parse HEAD` failed in"):
        gitserver.git(["rev-parse", "HEAD"], cwd=tmp_path)


def test_a_process_that_dies_while_starting_is_reported_with_its_log(tmp_path: Path) -> None:
    process = processes.spawn(
        "broken",
        [sys.executable, "-c", "print('bad flag --x'); raise SystemExit(2)"],
        logs=tmp_path,
    )
    with pytest.raises(
        ClusterError,
        match=r"broken exited with code 2 while starting; its "
        r"log .*broken.log ends: bad flag --x",
    ):
        processes.wait_ready(process, port=processes.free_port(), timeout=10)


def test_a_process_is_stopped_even_if_it_ignores_sigterm(tmp_path: Path) -> None:
    process = processes.spawn(
        "stubborn",
        [
            sys.executable,
            "-c",
            "import signal, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('up', flush=True)\ntime.sleep(60)",
        ],
        logs=tmp_path,
    )
    deadline = time.monotonic() + 10
    while "up" not in process.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)  # SIGTERM is ignored only once the handler is set
    process.stop(grace=0.5)
    assert not process.alive()
    process.stop()  # idempotent


def _timeline(ends: list[float]) -> Timeline:
    jobs = [
        JobRecord(
            name=f"j{i}",
            step=f"step-{i}",
            wave=i,
            status="Complete",
            start=(ends[i - 1] + 1 if i else 0.0),
            end=end,
        )
        for i, end in enumerate(ends)
    ]
    return Timeline(batch="b", variant="sequential", namespace="ns", origin="", jobs=jobs)


def test_epsilon_is_the_worst_step_plus_resolution_and_the_stated_margin() -> None:
    found = _timeline([3.0, 10.0, 14.0])  # d = 2: overheads 1, 5, 2
    calibration = overhead.calibrate("flux", found, [2, 2, 2], margin=5.0)
    assert calibration.overheads == (1.0, 5.0, 2.0)
    assert calibration.epsilon == 5.0 + overhead.RESOLUTION + 5.0
    assert "margin 5.0s" in calibration.describe() and "steps 1, 5, 2" in calibration.describe()
    assert "resolution 1s" in calibration.describe()


def test_an_unfinished_calibration_run_is_an_assertion() -> None:
    with pytest.raises(AssertionError, match="2 Jobs for 3 steps"):
        overhead.step_overheads(_timeline([3.0, 6.0]), [2, 2, 2])


def _kubeconfig(tmp_path: Path, *, inline: bool) -> Path:
    (tmp_path / "pki").mkdir()
    for name in ("ca.crt", "admin.crt", "admin.key"):
        (tmp_path / "pki" / name).write_text(f"PEM {name}\n")
    user = (
        {
            "client-certificate-data": base64.b64encode(b"PEM admin.crt\n").decode(),
            "client-key-data": base64.b64encode(b"PEM admin.key\n").decode(),
        }
        if inline
        else {"client-certificate": "pki/admin.crt", "client-key": "pki/admin.key"}
    )
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [
            {
                "name": "k",
                "cluster": {
                    "server": "https://127.0.0.1:6443",
                    "certificate-authority": "pki/ca.crt",
                },
            }
        ],
        "users": [{"name": "u", "user": user}],
    }
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("inline", [True, False])
def test_argocd_gets_the_api_server_and_client_certificate(tmp_path: Path, inline: bool) -> None:
    server, tls = argocd._credentials(_kubeconfig(tmp_path, inline=inline))
    assert server == "https://127.0.0.1:6443"
    assert base64.b64decode(tls["caData"]) == b"PEM ca.crt\n"
    assert base64.b64decode(tls["certData"]) == b"PEM admin.crt\n"
    assert base64.b64decode(tls["keyData"]) == b"PEM admin.key\n"


def test_argocd_needs_a_readable_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(
        ClusterError,
        match=r"cannot read the API server .* pass the "
        r"kubeconfig kwokctl wrote",
    ):
        argocd._credentials(tmp_path / "missing.yaml")


def test_an_application_syncs_automatically_and_prunes() -> None:
    app = argocd.application(
        "b-sequential",
        repo_url="http://127.0.0.1:1/r.git",
        path="manifests/b/sequential",
        server="https://127.0.0.1:2",
        namespace="ns",
    )
    assert app["metadata"]["namespace"] == argocd.NAMESPACE
    assert app["spec"]["syncPolicy"] == {"automated": {"prune": True}}
    assert app["spec"]["destination"] == {"server": "https://127.0.0.1:2", "namespace": "ns"}


def test_flux_objects_point_at_the_repository_and_path() -> None:
    source = fluxcd.git_repository("gitops", url="http://127.0.0.1:1/gitops.git")
    assert source["metadata"] == {"name": "gitops", "namespace": fluxcd.NAMESPACE}
    assert source["spec"]["ref"] == {"branch": "main"}
    root = fluxcd.kustomization(
        "b-sequential", source="gitops", path="./manifests/b/flux", wait=False
    )
    assert root["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "gitops"}
    assert root["spec"]["path"] == "./manifests/b/flux" and root["spec"]["prune"] is True
    assert fluxcd.REQUEUE_DEPENDENCY == "1s"


def test_a_condition_is_read_by_type() -> None:
    obj = {
        "status": {
            "conditions": [
                {"type": "Reconciling", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "HealthCheckFailed"},
            ]
        }
    }
    assert crds.condition(obj, "Ready")["reason"] == "HealthCheckFailed"
    assert crds.condition(None, "Ready") == {} and crds.condition({}, "Ready") == {}


@pytest.mark.parametrize("name", gitops.names())
def test_a_registered_tool_starts_through_the_registry(name: str, tmp_path: Path) -> None:
    assert gitops.entry(name).group == "gitops"
    with pytest.raises(ClusterError, match="gitops binaries are missing"):
        gitops.start(name, None, kubeconfig=tmp_path, workdir=tmp_path, binaries=tmp_path)  # type: ignore[arg-type]


def test_an_unknown_tool_names_the_known_ones() -> None:
    with pytest.raises(ClusterError, match="no GitOps tool 'jenkins'; the tools are flux, argocd"):
        gitops.entry("jenkins")


@dataclass
class _Repo:
    name: str
    url: str
    worktree: Path


def test_each_tool_says_what_a_batch_needs_and_where_it_points(tmp_path: Path) -> None:
    repo = _Repo(name="gitops", url="http://127.0.0.1:1/gitops.git", worktree=tmp_path)
    flux = fluxcd.Flux(client=None)  # type: ignore[arg-type]
    argo = argocd.ArgoCD(client=None, server="https://127.0.0.1:2")  # type: ignore[arg-type]
    assert [flux.name, argo.name] == list(gitops.names())
    assert flux.batch_spec(repo) == {
        "flux": {"source": "gitops", "path": "./manifests", "namespace": fluxcd.NAMESPACE}
    }
    assert argo.batch_spec(repo) == {}
    assert gitops.object_name("b", "sequential") == "b-sequential"
    flux.stop()  # nothing of its own to stop


def test_the_flux_chain_is_read_in_rendered_order(tmp_path: Path) -> None:
    target = tmp_path / gitops.MANIFESTS / "b" / "flux" / "kustomizations.yaml"
    target.parent.mkdir(parents=True)
    names = ["b-step-1-x", "b-step-0-y", "b-step-2-z"]
    target.write_text(
        yaml.safe_dump_all([{"kind": "Kustomization", "metadata": {"name": n}} for n in names])
    )
    assert fluxcd.chain(tmp_path, "b") == names
