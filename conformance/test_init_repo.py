"""`mlgen init` in an empty directory gives a repository whose checks pass: `mlgen render
--check`, its conformance suite on this session's cluster, and the pre-commit hook this
repository ships (`.pre-commit-hooks.yaml`).

In the real kind session the scaffold's suite runs against that kind cluster, handed over
by kubeconfig: a second cluster from the scaffold's kind-config.yaml would take the same
name (and two more node containers on a 2-core machine)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgen.cli.app import app
from mlgen.conformance.plugin import Cluster

REPO = Path(__file__).resolve().parents[1]


def _init(directory: Path) -> None:
    result = CliRunner().invoke(app, ["init", str(directory)])
    assert result.exit_code == 0, result.output
    check = CliRunner().invoke(
        app, ["render", "--check", str(directory / "batches"), "-o", str(directory / "manifests")]
    )
    assert check.exit_code == 0, check.output


def test_init_repo_conformance_suite_passes_on_this_sessions_cluster(
    mlgen_cluster: Cluster, pytester: pytest.Pytester
) -> None:
    root = Path(str(pytester.path))
    _init(root)
    again = CliRunner().invoke(app, ["init", str(root)])
    assert again.exit_code == 2 and "never overwrites" in again.output
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "conformance/",
        "--mlgen-cluster",
        "kubeconfig",
        "--mlgen-kubeconfig",
        str(mlgen_cluster.kubeconfig),
        "--mlgen-time-scale",
        "3",
        timeout=900,
    )
    assert result.ret == 0, "\n".join(result.outlines[-40:])
    result.assert_outcomes(passed=2)  # the example batch, sequential and parallel


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")
@pytest.mark.skipif(
    "config.getoption('--mlgen-cluster') not in (None, 'local')",
    reason="uses no cluster but installs mlgen from PyPI: it runs in the local session (the "
    "real kind session runs in a network namespace without internet)",
)
def test_init_repo_pre_commit_hook_passes_and_catches_a_stale_tree(tmp_path: Path) -> None:
    root = tmp_path / "gitops"
    _init(root)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", str(root)], check=True)
    subprocess.run([*git, "-C", str(root), "add", "."], check=True)
    hook = [
        sys.executable,
        "-m",
        "pre_commit",
        "try-repo",
        str(REPO),
        "mlgen-render-check",
        "--all-files",
    ]
    env = {
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    ok = subprocess.run(hook, cwd=root, capture_output=True, text=True, env=env, timeout=900)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    example = root / "batches" / "example.yaml"
    example.write_text(example.read_text().replace("seed: [1, 2]", "seed: [1, 2, 3]"))
    subprocess.run([*git, "-C", str(root), "add", "."], check=True)
    stale = subprocess.run(hook, cwd=root, capture_output=True, text=True, env=env, timeout=900)
    assert stale.returncode == 1 and "mlgen render" in stale.stdout, stale.stdout
