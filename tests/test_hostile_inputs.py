"""Hostile inputs to `validate`, `report` and `init`: each one line naming the file or
option and the fix, a non-zero exit, no traceback and nothing half-written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from mlgen.cli.app import app
from mlgen.errors import MlgenError

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


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_batch_file_that_is_not_a_regular_file_is_refused_unread(
    tmp_path: Path, kind: str
) -> None:
    """Git stores symlinks, and the pre-commit hook reads what they point to: /dev/zero
    would never end."""
    path = tmp_path / "batch.yaml"
    if kind == "device":
        path.symlink_to("/dev/zero")
    else:
        os.mkfifo(path)  # no writer: reading it would block for ever
    line = _one_clean_error(CliRunner().invoke(app, ["validate", str(path)]), code=1)
    assert "batch.yaml: is not a regular file" in line


def test_a_json_patch_that_copies_a_list_into_itself_stops_at_the_object_limit() -> None:
    from mlgen import render, source

    doc = batch_doc()
    doc["spec"]["defaults"]["podPatch"] = {
        "json": [
            {"op": "add", "path": "/metadata/annotations", "value": {"a": "x" * 1000}},
            *[
                {"op": "copy", "from": "/spec/containers", "path": "/spec/containers/-"}
                for _ in range(40)
            ],
        ]
    }
    batches, problems = source.load_text(yaml.safe_dump(doc), source="batch.yaml")
    assert not problems
    with pytest.raises(
        MlgenError, match=r"json\[\d+\] \(copy /spec/containers/-\): the template grows"
    ):
        render.render_batch(batches[0])


def test_a_matrix_that_copies_a_long_args_list_into_every_job_is_refused_before_copying() -> None:
    from mlgen import source

    doc = batch_doc()
    doc["spec"]["jobs"] = [
        {
            "name": "j-{{ a }}-{{ b }}",
            "matrix": {"a": [str(i) for i in range(300)], "b": [str(i) for i in range(300)]},
            "args": ["--flag-" + "x" * 60] * 1000,
        }
    ]
    _, problems = source.load_text(yaml.safe_dump(doc), source="batch.yaml")
    assert problems and "spec.jobs[0].matrix: copies this entry" in problems[0], problems[:1]
    assert "more than a batch may expand to" in problems[0]


@pytest.mark.parametrize(
    ("merge", "refused"),
    [
        (
            {"spec": {"volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "-1Gi"}}]}},
            "spec.volumes[0].emptyDir.sizeLimit",
        ),
        (
            {
                "spec": {
                    "volumes": [
                        {
                            "name": "cfg",
                            "configMap": {"name": "c", "items": [{"key": "k", "path": ""}]},
                        }
                    ]
                }
            },
            "items[0].path: '' must be a relative path",
        ),
        (
            {
                "spec": {
                    "volumes": [
                        {
                            "name": "cfg",
                            "secret": {"secretName": "s", "items": [{"key": "k", "path": "../x"}]},
                        }
                    ]
                }
            },
            "items[0].path: '../x' must be a relative path",
        ),
        (
            {
                "spec": {
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {"matchExpressions": [{"key": "pool", "operator": "In"}]}
                                ]
                            }
                        }
                    }
                }
            },
            "matchExpressions[0]: operator In needs at least one value",
        ),
        (
            {"metadata": {"labels": {"team/a/b": "x"}}},
            "metadata.labels.team/a/b",
        ),
        (
            {"metadata": {"labels": {"team": "-bad-"}}},
            "metadata.labels.team",
        ),
    ],
    ids=[
        "negative-emptydir",
        "empty-items-path",
        "escaping-items-path",
        "in-without-values",
        "label-key",
        "label-value",
    ],
)
def test_a_patch_the_api_server_would_refuse_is_refused_at_render_naming_the_field(
    merge: dict[str, object], refused: str
) -> None:
    """The schema lets these through and the API server refuses them; the patched template
    goes through the API's own rules (`podrules`) so render refuses them first."""
    from mlgen import render, source

    doc = batch_doc()
    doc["spec"]["defaults"]["podPatch"] = {"strategic": merge}
    batches, problems = source.load_text(yaml.safe_dump(doc), source="batch.yaml")
    assert not problems, problems
    with pytest.raises(MlgenError) as caught:
        render.render_batch(batches[0])
    message = str(caught.value)
    assert "the patched pod template breaks an API rule" in message, message
    assert refused in message, message
    assert "\n" not in message


def test_a_null_left_in_a_patched_template_is_refused_with_its_pointer() -> None:
    """The schema allows null almost everywhere; the API server would read a volume
    without a name, and mlgen's own checks could not walk it (found by the patch
    properties)."""
    from mlgen import render, source

    doc = batch_doc()
    doc["spec"]["defaults"]["podPatch"] = {"strategic": {"spec": {"volumes": [None]}}}
    batches, problems = source.load_text(yaml.safe_dump(doc), source="batch.yaml")
    assert not problems
    with pytest.raises(MlgenError, match=r"holds null at /spec/volumes/\d+; remove the key"):
        render.render_batch(batches[0])
