"""The cluster commands' small promises: `down --all` with nothing to stop is not an
error, `--help` names the real default work directory, and `nodes` prints the default
node pools file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgen.cli.app import app
from mlgen.cluster import local, pools


def test_down_all_with_no_clusters_succeeds(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["cluster", "down", "--all", "--workdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "nothing to stop" in result.output
    result = runner.invoke(app, ["cluster", "down", "--workdir", str(tmp_path)])
    assert result.exit_code == 2 and "--name NAME, or pass --all" in result.output


def test_workdir_help_names_the_real_default(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLGEN_CLUSTER_WORKDIR", raising=False)
    monkeypatch.delenv("MLGEN_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    default = local.default_workdir()
    assert default == Path.home() / ".cache" / "mlgen" / "kwok"
    for command in ("up", "down", "list"):
        result = runner.invoke(app, ["cluster", command, "--help"], terminal_width=200)
        text = " ".join(result.output.split())
        assert "~/.cache/mlgen/kwok" in text and "MLGEN_CLUSTER_WORKDIR" in text, command


def test_nodes_prints_the_packaged_pools_file_to_start_from(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["cluster", "nodes"])
    assert result.exit_code == 0, result.output
    packaged = (Path(__file__).resolve().parents[1] / "generator/cluster/nodes.yaml").read_text()
    assert result.stdout == packaged
    copy = tmp_path / "nodes.yaml"
    copy.write_text(result.stdout)
    assert pools.load(copy) == pools.load() and [p.pool for p in pools.load(copy)] == [
        "cpu",
        "gpu",
    ]
