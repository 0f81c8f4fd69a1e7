"""Each problem once, at the line that causes it: a field jobs inherit from spec.defaults
or a matrix entry is one problem at that field's line, not one per expanded job; warnings
and the errors of rendering an Indexed Job carry file:line like the errors of loading."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgen import places, render, source, validation
from mlgen.cli.app import app
from mlgen.errors import RenderError, SpecError

HEAD = """\
apiVersion: mlgen.io/v1alpha1
kind: Batch
metadata:
  name: sweep
spec:
"""

# Line 7: the untagged image every one of the 50 jobs inherits.
SWEEP = (
    HEAD
    + """\
  defaults:
    image: pytorch
    command: [python, train.py]
    resources: {requests: {cpu: "1"}}
    expectedDuration: 1m
  jobs:
    - name: "lr-{{ i }}"
      matrix:
        i: [AXIS]
""".replace("AXIS", ", ".join(str(i) for i in range(50)))
)

# Line 9: the matrix entry whose 6 jobs have no image.
NO_IMAGE = (
    HEAD
    + """\
  defaults:
    command: [python, train.py]
  jobs:
    - name: "lr-{{ lr }}-{{ seed }}"
      matrix:
        lr: ["1", "2", "3"]
        seed: [1, 2]
"""
)


def _load(text: str) -> tuple[list[str], list[str]]:
    """The warnings of the one batch in `text`, or its load problems."""
    batches, problems = source.load_text(text, source="batch.yaml")
    if problems:
        return [], problems
    return validation.warnings(batches[0]), []


def test_an_untagged_image_in_defaults_over_a_50_job_matrix_is_one_warning_at_its_line() -> None:
    found, problems = _load(SWEEP)
    assert problems == []
    assert found == [
        "batch.yaml:7: spec.defaults.image: 'pytorch' has neither tag nor digest, so it "
        "floats to :latest; pin a tag or a digest (@sha256:...) (applies to 50 jobs)"
    ]


def test_validate_prints_the_defaults_warning_once(
    runner: CliRunner, write_batch: Callable[..., Path]
) -> None:
    result = runner.invoke(app, ["validate", str(write_batch(text=SWEEP))])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line for line in lines if line.startswith("warning:")] == [
        "warning: batch.yaml:7: spec.defaults.image: 'pytorch' has neither tag nor digest, "
        "so it floats to :latest; pin a tag or a digest (@sha256:...) (applies to 50 jobs)"
    ]
    assert lines[-1] == "ok: 1 batch(es), 50 job(s), 1 warning(s)"


def test_a_missing_image_in_a_6_job_matrix_is_one_error_line(
    runner: CliRunner, write_batch: Callable[..., Path]
) -> None:
    result = runner.invoke(app, ["validate", str(write_batch(text=NO_IMAGE))])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: batch.yaml:9: spec.jobs[0].image: no image; set spec.defaults.image or the "
        "job's own image (applies to 6 jobs)"
    ]


def test_a_warning_of_a_jobs_own_field_names_that_jobs_line() -> None:
    text = (
        HEAD
        + """\
  defaults:
    image: busybox:1.36
    command: [sh, -c]
    resources: {requests: {cpu: 100m}}
    expectedDuration: 2s
  jobs:
    - name: a
    - name: b
      image: busybox:latest
"""
    )
    found, _ = _load(text)
    assert found == [
        "batch.yaml:14: spec.jobs[1].image: 'busybox:latest' uses :latest, which changes "
        "under you; pin a tag or a digest"
    ]


def test_a_field_no_job_sets_is_one_warning_at_the_defaults_and_some_lack_it_at_each() -> None:
    text = (
        HEAD
        + """\
  variants: [sequential]
  defaults:
    image: busybox:1.36
    command: [sh, -c]
  jobs:
    - name: a
      expectedDuration: 1m
    - name: b
    - name: c
"""
    )
    found, _ = _load(text)
    assert found == [
        "batch.yaml:7: spec.defaults.resources.requests: no job requests CPU or memory; the "
        "scheduler may pack them onto full nodes. Set spec.defaults.resources.requests "
        "(applies to 3 jobs)",
        "batch.yaml:13: spec.jobs[1].expectedDuration: the job has no expectedDuration; "
        "estimates and conformance bounds count it as 0s. Set one",
        "batch.yaml:14: spec.jobs[2].expectedDuration: the job has no expectedDuration; "
        "estimates and conformance bounds count it as 0s. Set one",
    ]


def test_batch_level_warnings_carry_the_line_of_their_field() -> None:
    text = (
        HEAD
        + """\
  podSecurity: baseline
  variants: [sequential]
  sequential:
    onFailure: continue
  defaults:
    image: busybox:1.36
    command: [sh, -c]
    resources: {requests: {cpu: 100m}}
    expectedDuration: 2s
  jobs:
    - name: a
"""
    )
    found, _ = _load(text)
    assert [w.split(": ")[0:2] for w in found] == [
        ["batch.yaml:6", "spec.podSecurity"],
        ["batch.yaml:9", "spec.sequential.onFailure"],
    ]


PARALLEL = (
    HEAD
    + """\
  variants: [parallel]
  defaults:
    image: busybox:1.36
    command: [sh, -c]
    resources: {requests: {cpu: 100m}}
  jobs:
    - name: a
    - name: b
      image: busybox:1.37
"""
)


def _render_error(text: str) -> str:
    batches, problems = source.load_text(text, source="batch.yaml")
    assert problems == []
    with pytest.raises(RenderError) as caught:
        render.render_batch(batches[0])
    return str(caught.value)


def test_an_indexed_job_error_names_the_entry_line() -> None:
    assert _render_error(PARALLEL) == (
        "batch.yaml:14: spec.jobs[1].image: job 'b' differs from job 'a' in image, so they "
        "cannot share the one pod template of an Indexed Job; set spec.variants: [sequential]"
    )
    # The job that inherits is not where to look: the one that wrote its own value is.
    first_own = PARALLEL.replace("    - name: a\n", "    - name: a\n      image: busybox:1.35\n")
    first_own = first_own.replace("      image: busybox:1.37\n", "")
    assert _render_error(first_own).startswith("batch.yaml:13: spec.jobs[0].image: job 'b'")


def test_jobs_that_differ_in_secrets_are_fixed_where_one_wrote_its_own() -> None:
    text = PARALLEL.replace("      image: busybox:1.37\n", "").replace(
        "    - name: a\n", "    - name: a\n      secretEnv: {TOKEN: wandb/key}\n"
    )
    assert _render_error(text).startswith("batch.yaml:13: spec.jobs[0].secretEnv: job 'b'")


def test_an_indexed_job_error_of_the_defaults_names_the_defaults_line() -> None:
    text = PARALLEL.replace("      image: busybox:1.37\n", "").replace(
        "    command: [sh, -c]", "    command: [A=1, run]"
    )
    assert _render_error(text).startswith(
        "batch.yaml:9: spec.defaults.command[0]: 'A=1' contains '='"
    )


def test_a_problem_of_a_defaults_pod_field_over_a_matrix_is_one_error_at_its_line() -> None:
    text = NO_IMAGE.replace(
        "    command: [python, train.py]\n",
        "    image: busybox:1.36\n    command: [python, train.py]\n"
        "    volumeMounts: [{name: data, mountPath: /data}]\n",
    )
    with pytest.raises(SpecError) as caught:
        source.load_files([_write(text)])
    assert str(caught.value).splitlines() == [
        "batch.yaml:9: spec.defaults.volumeMounts[0].name: no volume named 'data'; add it to "
        "volumes (declared: none) (applies to 6 jobs)"
    ]


def _write(text: str) -> Path:
    path = Path("batch.yaml")
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # errors name files relative to the working directory


def test_a_field_is_placed_where_it_was_written() -> None:
    located = places.Places(
        lines={
            "spec.defaults.image": 7,
            "spec.defaults.env.SEED": 8,
            "spec.defaults.resources": 9,
            "spec.jobs[0]": 11,
            "spec.jobs[0].env.LR": 12,
            "spec.jobs[0].resources": 13,
            "spec.jobs[1]": 14,
        },
        entries=(0, 0, 1),  # jobs 0 and 1 come from the matrix entry 0
    )
    assert located.job(1, "image") == "spec.defaults.image"
    assert located.job(1, "env.SEED") == "spec.defaults.env.SEED"  # env merges by key
    assert located.job(1, "env.LR") == "spec.jobs[0].env.LR"
    # resources replace the defaults' whole: the entry's, even for a key it does not set
    assert located.job(0, "resources.requests") == "spec.jobs[0].resources.requests"
    assert located.job(2, "resources.requests") == "spec.defaults.resources.requests"
    assert located.job(2, "args") == "spec.jobs[1].args"  # nobody wrote it: add it here
    assert located.origin("spec.jobs[1].image") == "spec.defaults.image"
    assert located.origin("spec.jobs[2]") == "spec.jobs[1]"
    assert located.at("b.yaml", "spec.jobs[1].args") == "b.yaml:14: spec.jobs[1].args"
    assert located.at("b.yaml", "metadata.name") == "b.yaml: metadata.name"


def test_identical_problems_are_said_once_with_their_count() -> None:
    assert places.collapse([("f:7: x", "p"), ("f:9: y", "q"), ("f:7: x", "p")]) == [
        "f:7: x: p (applies to 2 jobs)",
        "f:9: y: q",
    ]
