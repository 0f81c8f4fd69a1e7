"""Matrix expansion: a job entry with `matrix:` becomes one job per combination."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mlgen import source
from mlgen.cli.app import app

from .conftest import batch_doc, load, render_doc


def _matrix(
    matrix: dict[str, Any], *, name: str = "lr-{{ lr }}-s{{ seed }}", **fields: Any
) -> dict[str, Any]:
    return batch_doc(jobs=[{"name": name, "matrix": matrix, **fields}])


def _problems(doc: dict[str, Any]) -> list[str]:
    _, problems = source.load_text(yaml.safe_dump(doc, sort_keys=False), source="batch.yaml")
    assert problems, "the batch should have been rejected"
    return problems


def test_cartesian_product_with_exclude_and_include_like_github_actions() -> None:
    batch = load(
        _matrix(
            {
                "lr": ["1e-2", "1e-3"],
                "seed": [1, 2, 3],
                "exclude": [{"lr": "1e-2", "seed": 3}],
                # adds `opt` to the lr=1e-3 runs; a value that fits no run is a run of its own
                "include": [{"lr": "1e-3", "opt": "adam"}, {"lr": "1e-4", "seed": 9}],
            },
            args=["--lr", "{{ lr }}", "--opt={{ opt | default('sgd') }}"],
            env={"SEED": "{{ seed }}", "FIXED": "x"},
        )
    )
    assert [j.name for j in batch.jobs] == [
        "lr-1e-2-s1",
        "lr-1e-2-s2",
        "lr-1e-3-s1",
        "lr-1e-3-s2",
        "lr-1e-3-s3",
        "lr-1e-4-s9",
    ]
    assert batch.jobs[2].args == ("--lr", "1e-3", "--opt=adam")
    assert batch.jobs[0].args == ("--lr", "1e-2", "--opt=sgd")
    assert batch.jobs[5].env["SEED"] == "9" and batch.jobs[5].env["FIXED"] == "x"
    assert [j.index for j in batch.jobs] == list(range(6))


def test_a_thousand_run_sweep_is_a_few_lines_and_renders() -> None:
    values = [str(v) for v in range(10)]
    doc = _matrix(
        {"a": values, "b": values, "c": values},
        name="r-{{ a }}-{{ b }}-{{ c }}",
        args=["--a={{ a }}", "--b={{ b }}", "--c={{ c }}"],
    )
    assert len(yaml.safe_dump(doc["spec"]["jobs"]).splitlines()) < 30
    files = render_doc(doc, variants=("parallel",))
    params = next(text for path, text in files.items() if path.endswith("params.yaml"))
    assert "'999.arg.2': '--c=9'" in params


def test_mixes_with_plain_jobs_and_keeps_their_order() -> None:
    doc = batch_doc()
    doc["spec"]["jobs"].insert(1, {"name": "m-{{ x }}", "matrix": {"x": ["p", "q"]}})
    assert [j.name for j in load(doc).jobs] == ["a", "m-p", "m-q", "b", "c"]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            _matrix({"lr": ["1e-2"], "seed": [1, 2]}, name="lr-{{ lr }}"),
            "spec.jobs[0].name: renders 'lr-1e-2' for lr=1e-2, seed=2, the same name as "
            "spec.jobs[0] (lr=1e-2, seed=1); put every axis that varies into the name template",
        ),
        (_matrix({"lr": ["x" * 70], "seed": [1]}), "characters, more than 63"),
        (
            _matrix({"lr": ["1E-2"], "seed": [1]}),
            "renders 'lr-1E-2-s1' for lr=1E-2, seed=1: not a DNS-1123 label",
        ),
        (
            _matrix({"lr": ["1e-2"], "seed": [1], "exclude": [{"lr": "1e-2"}]}),
            "spec.jobs[0].matrix: expands to no jobs",
        ),
        (_matrix({"lr": []}), "spec.jobs[0].matrix.lr: must be a non-empty list"),
        (_matrix({"lr": [0.001], "seed": [1]}), "spec.jobs[0].matrix.lr[0]: is a decimal number"),
        (_matrix({"lr": [True], "seed": [1]}), "spec.jobs[0].matrix.lr[0]: is true/false"),
        (
            _matrix({"lr": ["1"], "seed": [1]}, args=["{{ lrr }}"]),
            "spec.jobs[0].args[0]: template '{{ lrr }}': 'lrr' is undefined; the variables are "
            "the matrix axes (lr, seed)",
        ),
        (
            _matrix({"lr": ["1"], "seed": [1]}, args=["{{ lr.__class__.__mro__ }}"]),
            "spec.jobs[0].args[0]: template",
        ),
        (
            _matrix({"lr": ["1"], "seed": [1], "exclude": [{"rate": "1"}]}),
            "spec.jobs[0].matrix.exclude[0].rate: 'rate' is not an axis of this matrix",
        ),
        (_matrix({"lr": ["1"] * 400, "seed": list(range(400))}), "160,000 combinations"),
    ],
)
def test_matrix_mistakes_are_clear_errors(doc: dict[str, Any], expected: str) -> None:
    problems = _problems(doc)
    assert any(expected in p for p in problems), problems


def test_an_error_in_a_shared_field_is_reported_once_at_the_entry() -> None:
    doc = _matrix({"lr": [str(i) for i in range(50)], "seed": [1]}, retries="3")
    doc["spec"]["jobs"].insert(0, {"name": "plain"})
    problems = _problems(doc)
    text = yaml.safe_dump(doc, sort_keys=False).splitlines()
    line = next(n for n, t in enumerate(text, start=1) if "retries" in t)
    assert problems == [
        f"batch.yaml:{line}: spec.jobs[1].retries: '3' is a string; write a "
        "whole number, without quotes"
    ]


def test_validate_expand_lists_every_job(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(
        yaml.safe_dump(_matrix({"lr": ["1e-2", "1e-3"], "seed": [7]}, args=["--lr", "{{ lr }}"]))
    )
    result = CliRunner().invoke(app, ["validate", "--expand", str(path)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["job"], r["args"]) for r in rows] == [
        ("lr-1e-2-s7", ["--lr", "1e-2"]),
        ("lr-1e-3-s7", ["--lr", "1e-3"]),
    ]


def test_the_example_sweep_uses_a_matrix() -> None:
    raw = yaml.safe_load(Path("examples/sweep.yaml").read_text())
    assert any("matrix" in entry for entry in raw["spec"]["jobs"])
