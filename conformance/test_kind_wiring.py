"""The kind and kubeconfig cluster options, on the session's real API server.

kind runs without Docker here through a stand-in `kind` executable that "creates" a
cluster by handing out the session's local cluster kubeconfig, so the real
pytest-kubernetes code (create, readiness via kubectl, delete) runs end to end. What it
proves: mlgen passes the repo's kind config, keeps the cluster's kubeconfig in a file of
its own, deletes the cluster afterwards, and never touches the user's kubeconfig.
Real kind runs in `.ci/run`'s own kind session (`mlgen cluster docker`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mlgen.cluster import build
from mlgen.conformance.plugin import Cluster

FAKE_KIND = """#!/bin/sh
echo "$@" >> "$FAKE_KIND_LOG"
if [ "$1 $2" = "create cluster" ]; then
  while [ $# -gt 0 ]; do
    if [ "$1" = "--kubeconfig" ]; then cp "$FAKE_KIND_KUBECONFIG" "$2"; fi
    shift
  done
fi
"""

INNER_TEST = """
def test_on_kind(mlgen_cluster):
    assert mlgen_cluster.kind == "kind"
    assert mlgen_cluster.client.core.list_namespace().items
    print("KUBECONFIG_USED", mlgen_cluster.kubeconfig)
"""


@pytest.mark.skipif(
    "config.getoption('--mlgen-cluster') not in (None, 'local')",
    reason="hands the local cluster to a stand-in kind",
)
def test_kind_cluster_option_creates_uses_and_deletes_through_pytest_kubernetes(
    mlgen_cluster: Cluster, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    (fake_bin / "kind").write_text(FAKE_KIND)
    (fake_bin / "kind").chmod(0o755)
    log = tmp_path / "kind.log"
    user_kubeconfig = tmp_path / "user-kubeconfig"
    user_kubeconfig.write_text("# the user's own kubeconfig\n")
    kind_config = Path(str(pytester.path)) / "kind-config.yaml"
    shutil.copy(Path(__file__).resolve().parents[1] / "kind-config.yaml", kind_config)
    pytester.makepyfile(test_inner=INNER_TEST)
    env = {
        "PATH": f"{fake_bin}{os.pathsep}{build.bin_dir()}{os.pathsep}{os.environ['PATH']}",
        "FAKE_KIND_LOG": str(log),
        "FAKE_KIND_KUBECONFIG": str(mlgen_cluster.kubeconfig),
        "KUBECONFIG": str(user_kubeconfig),
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        result = pytester.runpytest_subprocess(
            "-s",
            "-p",
            "no:cacheprovider",
            "--mlgen-cluster",
            "kind",
            "--mlgen-kind-config",
            str(kind_config),
        )
    result.assert_outcomes(passed=1)
    calls = log.read_text().splitlines()
    assert calls[0].startswith(f"create cluster --config {kind_config} --kubeconfig ")
    used = next(line.split()[-1] for line in result.outlines if "KUBECONFIG_USED" in line)
    assert used in calls[0] and used != str(user_kubeconfig)
    assert calls[-1] == "delete cluster --name mlgen-conformance"
    assert not Path(used).exists(), "the cluster's own kubeconfig is removed with it"
    assert user_kubeconfig.read_text() == "# the user's own kubeconfig\n"


def test_kubeconfig_cluster_option_uses_an_existing_cluster_read_only(
    mlgen_cluster: Cluster, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "existing.yaml"
    shutil.copy(mlgen_cluster.kubeconfig, kubeconfig)
    before = kubeconfig.read_bytes()
    pytester.makepyfile(test_inner=INNER_TEST.replace('"kind"', '"kubeconfig"'))
    result = pytester.runpytest_subprocess(
        "-s",
        "-p",
        "no:cacheprovider",
        "--mlgen-cluster",
        "kubeconfig",
        "--mlgen-kubeconfig",
        str(kubeconfig),
    )
    result.assert_outcomes(passed=1)
    assert kubeconfig.read_bytes() == before
    assert mlgen_cluster.client.core.list_namespace().items  # still there, untouched
