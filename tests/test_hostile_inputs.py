"""Hostile inputs to `validate`, `report` and `init`: each one line naming the file or
option and the fix, a non-zero exit, no traceback and nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from mlgen.cli.app import app

from .conftest import batch_doc


def _one_clean_error(result: Result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_a_yaml_integer_past_python_s_digit_limit_is_a_line_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "batch.yaml"
    text = yaml.safe_dump(batch_doc()).replace("parallelism: 2", "parallelism: " + "9" * 5000)
    path.write_text(text)
    line = _one_clean_error(CliRunner().invoke(app, ["validate", str(path)]), code=1)
    assert "batch.yaml:" in line and "5,000 characters long" in line


def _deep(depth: int) -> str:
    return '{"batch": ' * depth + "1" + "}" * depth


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "typed",
            json.dumps(
                {"batch": 5, "variant": "s", "namespace": "n", "origin": "", "jobs": [], "pods": []}
            ),
            "batch: Input should be a valid string",
        ),
        (
            "wave",
            json.dumps(
                {
                    "batch": "b",
                    "variant": "sequential",
                    "namespace": "n",
                    "origin": "",
                    "jobs": [
                        {
                            "name": "j",
                            "step": "s",
                            "wave": "x",
                            "status": "Complete",
                            "start": 0,
                            "end": 1,
                        }
                    ],
                    "pods": [],
                }
            ),
            "jobs.0.wave",
        ),
        ("deep", _deep(100_000), "nested too deep"),
        ("list", "[1, 2]", "not a timeline"),
    ],
)
def test_report_on_a_hostile_timeline_is_one_line(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = tmp_path / f"{name}.json"
    path.write_text(text)
    line = _one_clean_error(CliRunner().invoke(app, ["report", str(path)]))
    assert f"{name}.json: not a timeline written by mlgen" in line and expected in line, line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--namespace", "Bad_NS"], "--namespace 'Bad_NS' is not a Kubernetes namespace name"),
        (["--repo-url", 'https://x/y.git"\nevil: 1'], "--repo-url"),
        (["--repo-url", "not a url"], "is not a Git URL"),
    ],
)
def test_init_refuses_options_that_would_break_its_files(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    target = tmp_path / "repo"
    line = _one_clean_error(CliRunner().invoke(app, ["init", str(target), *args]))
    assert expected in line
    assert not target.exists() or not any(target.iterdir()), "nothing written"


def test_init_with_a_file_where_a_directory_goes_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "repo"
    target.mkdir()
    (target / "batches").write_text("a file\n")
    line = _one_clean_error(CliRunner().invoke(app, ["init", str(target)]))
    assert "batches (a file where a directory goes)" in line
    assert sorted(p.name for p in target.iterdir()) == ["batches"]
