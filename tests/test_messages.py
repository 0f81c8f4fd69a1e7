"""Validation errors read as plain English, suggest the key meant, and come in file and
line order; the CLI lists choices and documents completion."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mlgen import source
from mlgen.cli.app import app

from .conftest import batch_doc

PYDANTIC_WORDING = ("Input should be", "got True", "got 1", "type=", "pydantic", "Value error")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["spec"]["defaults"].update(expectedDuraton="3s"),
            "spec.defaults.expectedDuraton: unknown key; did you mean expectedDuration?",
        ),
        (lambda d: d["spec"].update(paralelism=2), "unknown key; did you mean parallelism?"),
        (
            lambda d: (
                d["spec"]["sequential"].update(onfailure="stop")
                if "sequential" in d["spec"]
                else d["spec"].update(sequential={"onfailure": "stop"})
            ),
            "unknown key; did you mean onFailure?",
        ),
        (
            lambda d: d["spec"].update(sequential={"onFailure": "halt"}),
            "spec.sequential.onFailure: is 'halt'; use one of 'stop', 'continue'",
        ),
        (
            lambda d: d["spec"].update(simulated="yes"),
            "spec.simulated: 'yes' is a string; write true or false, without quotes",
        ),
        (
            lambda d: d["spec"]["jobs"][0].update(args=[True]),
            "spec.jobs[0].args[0]: true is a boolean (YAML reads unquoted true, false, yes, no, "
            "on, off so), not a string; put the value in quotes",
        ),
        (lambda d: d["spec"].update(parallelism=0), "spec.parallelism: is 0; use at least 1"),
        (lambda d: d["spec"].update(jobs=[]), "spec.jobs: needs at least 1 item(s)"),
        (
            lambda d: d["spec"].update(podSecurity="none"),
            "spec.podSecurity: is 'none'; use one of 'restricted', 'baseline', 'privileged'",
        ),
        (
            lambda d: d["spec"]["jobs"][0].update(volumes=[{"name": "v", "emptydir": {}}]),
            "spec.jobs[0].volumes[0].emptydir: unknown key; did you mean emptyDir?",
        ),
    ],
)
def test_errors_are_plain_english_with_suggestions(
    mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    doc = batch_doc()
    mutate(doc)
    _, problems = source.load_text(yaml.safe_dump(doc, sort_keys=False), source="b.yaml")
    assert any(expected in p for p in problems), problems
    assert not any(w in p for p in problems for w in PYDANTIC_WORDING), problems


def test_errors_are_sorted_by_file_and_line(tmp_path: Path) -> None:
    doc = batch_doc()
    doc["spec"]["jobs"][2]["retires"] = 1
    doc["spec"]["defaults"]["imag"] = "x"
    doc["metadata"]["nmae"] = "x"
    first, second = tmp_path / "b.yaml", tmp_path / "a.yaml"
    first.write_text(yaml.safe_dump(doc, sort_keys=False))
    second.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = CliRunner().invoke(app, ["validate", str(first), str(second)])
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 6
    files = [line.split()[1].split(":")[0] for line in lines]
    numbers = [int(line.split()[1].split(":")[1]) for line in lines]
    assert files == ["b.yaml"] * 3 + ["a.yaml"] * 3
    assert numbers[:3] == sorted(numbers[:3]) and numbers[3:] == sorted(numbers[3:])


def test_help_lists_choices_and_completion() -> None:
    runner = CliRunner()
    render = runner.invoke(app, ["render", "--help"], terminal_width=200).output
    assert "sequential|parallel" in render
    assert "--install-completion" in runner.invoke(app, ["--help"]).output


def test_validate_warns_when_an_image_may_lack_a_shell(tmp_path: Path) -> None:
    doc = batch_doc()
    doc["spec"]["defaults"]["image"] = "gcr.io/distroless/python3-debian12:nonroot"
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert "may have no shell" in result.output and result.exit_code == 0


def test_variant_choices_match_the_registry() -> None:
    from mlgen import variants
    from mlgen.cli import choices

    assert tuple(v.value for v in choices.Variant) == tuple(variants.directories())
