"""The core install (no Kubernetes client, no matplotlib) renders, validates, estimates
and scaffolds; the commands that need an extra say which one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("kubernetes", "matplotlib", "urllib3"):
            raise ImportError("not installed: " + name)
sys.meta_path.insert(0, Block())
from mlgen.cli.app import main
sys.argv = ["mlgen", *sys.argv[1:]]
main()
"""


def _mlgen(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK, *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_core_commands_need_no_cluster_or_chart_library(tmp_path: Path) -> None:
    example = Path("examples/sweep.yaml").resolve()
    for args in (
        ["render", str(example), "-o", "out"],
        ["validate", str(example)],
        ["estimate", str(example)],
        ["init", "repo"],
        ["--help"],
    ):
        result = _mlgen(*args, cwd=tmp_path)
        assert result.returncode == 0, (args, result.stderr)
    assert (tmp_path / "out" / "resnet-sweep" / "parallel" / "job.yaml").exists()
    assert (tmp_path / "repo" / "manifests" / "example-sweep").is_dir()
    for command in (["apply", "x"], ["report", "x"], ["cluster", "up"]):
        missing = _mlgen(*command, cwd=tmp_path)
        assert missing.returncode == 2, missing.stderr
        assert "pip install 'mlgen-gitops[cluster]'" in missing.stderr
