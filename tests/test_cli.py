"""The command line: help, version, exit codes, one-line errors, estimate and validate."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgen import estimate, schedule, schema
from mlgen.cli.app import app

from .conftest import batch_doc, load

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command",
    ["render", "validate", "estimate", "apply", "report", "schema", "cluster", "cluster up"],
)
def test_every_command_has_help(runner: CliRunner, command: str) -> None:
    result = runner.invoke(app, [*command.split(), "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output) > 200


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("mlgen 0.")


def test_usage_errors_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(app, ["render"]).exit_code == 2
    result = runner.invoke(app, ["apply", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "not a directory" in result.output


def test_invalid_batch_exits_1_with_one_line_per_problem(
    runner: CliRunner, write_batch: Callable[..., Path]
) -> None:
    doc = batch_doc(parallelism="4")
    result = runner.invoke(app, ["validate", str(write_batch(doc))])
    assert result.exit_code == 1
    line = _line_of(write_batch(doc), "parallelism")
    assert result.output.strip().splitlines() == [
        f"error: batch.yaml:{line}: spec.parallelism: '4' is a string; write a whole number, "
        "without quotes"
    ]


def _line_of(path: Path, key: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if key in line)


def test_validate_warns_and_strict_fails(
    runner: CliRunner, write_batch: Callable[..., Path]
) -> None:
    doc = batch_doc()
    doc["spec"]["defaults"]["image"] = "busybox"
    path = write_batch(doc)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0
    assert "warning:" in result.output and "neither tag nor digest" in result.output
    assert runner.invoke(app, ["validate", "--strict", str(path)]).exit_code == 1


def test_estimate_table_and_json(runner: CliRunner, write_batch: Callable[..., Path]) -> None:
    doc = batch_doc(parallelism=2)
    doc["spec"]["jobs"][2]["expectedDuration"] = "10s"
    path = write_batch(doc)
    result = runner.invoke(app, ["estimate", "--json", "--overhead", "0", str(path)])
    assert result.exit_code == 0
    (row,) = json.loads(result.output)
    assert row["sequentialSeconds"] == 14 and row["parallelSeconds"] == 12
    assert row["lowerBoundSeconds"] == 10
    table = runner.invoke(app, ["estimate", "--overhead", "0", str(path)])
    assert table.exit_code == 0 and "demo" in table.output and "14s" in table.output
    calibrated = path.parent / "epsilon.json"
    calibrated.write_text(json.dumps({"client": 0.5, "controller": 2.0}))
    result = runner.invoke(
        app, ["estimate", "--json", "--overhead-from", str(calibrated), str(path)]
    )
    (row,) = json.loads(result.output)
    # 14 + 2·0.5 between steps + 1 (lag); parallel: 2 and 2 at once, then 10 after a
    # 2 s gap = 14, + 1
    assert (row["sequentialSeconds"], row["parallelSeconds"]) == (16.0, 15.0)
    calibrated.write_text("{}")
    result = runner.invoke(app, ["estimate", "--overhead-from", str(calibrated), str(path)])
    assert result.exit_code == 2 and "not a calibration file" in result.output
    for bad in ("NaN", "Infinity", "-1", "1e9"):
        calibrated.write_text(f'{{"client": {bad}, "controller": 1}}')
        result = runner.invoke(app, ["estimate", "--overhead-from", str(calibrated), str(path)])
        assert result.exit_code == 2 and "client is" in result.output, (bad, result.output)
    for bad in ("nan", "inf"):
        result = runner.invoke(app, ["estimate", "--overhead", bad, str(path)])
        assert result.exit_code == 2 and "--overhead" in result.output, (bad, result.output)


@pytest.mark.parametrize(
    ("durations", "p", "makespan"),
    [
        ([1, 1, 1, 1], 2, 2),
        ([5, 1, 1, 1], 2, 5),
        ([1, 5, 1, 1, 1], 2, 5),
        ([3] * 7, 3, 9),
        ([4, 3, 2, 1], 1, 10),
    ],
)
def test_schedule_is_lowest_index_first_onto_p_slots(
    durations: list[float], p: int, makespan: float
) -> None:
    assert schedule.slots(durations, p)[0] == makespan
    total = sum(durations)
    assert makespan >= max(total / p, max(durations))


def test_estimate_of_a_batch() -> None:
    bare = estimate.overheads(seconds=0)
    result = estimate.of(load(batch_doc(parallelism=2)), overhead=bare)
    assert result.makespans == (("sequential", 6), ("parallel", 4)) and result.rounds == 2
    assert schedule.slots([2.0, 2.0, 2.0], 2)[1] == [0, 0, 2]
    measured = estimate.of(load(batch_doc(parallelism=2)))  # the measured defaults
    # overhead between one job and the next in a slot, not before the first
    assert measured.seconds("sequential") == pytest.approx(6 + 2 * 0.1 + 1)
    assert measured.seconds("parallel") == pytest.approx(2 + 1.1 + 2 + 1)
    indexed = estimate.of(load(batch_doc(parallelism=2, sequential={"strategy": "indexed"})))
    assert indexed.seconds("sequential") == pytest.approx(6 + 2 * 1.1 + 1)
    # A speed-up over a variant the batch does not render would mislead: none is given.
    alone = estimate.of(load(batch_doc(parallelism=2, variants=["sequential"])))
    assert alone.speedup is None and alone.as_dict()["speedup"] is None
    assert measured.speedup == pytest.approx(measured.seconds("sequential") / 6.1)


def test_parallel_starts_are_held_to_the_pod_start_rate() -> None:
    # 100 at once cannot all start at 0: index i starts no earlier than i / rate
    makespan, starts = schedule.slots([10.0] * 100, 100, rate=40.0)
    assert starts[1] == pytest.approx(1 / 40) and starts[99] == pytest.approx(99 / 40)
    assert makespan == pytest.approx(99 / 40 + 10)
    # one slot: each job waits `gap` after the previous one, none before the first
    makespan, starts = schedule.slots([1.0, 2.0, 3.0], 1, gap=0.5)
    assert starts == [0.0, 1.5, 4.0] and makespan == 7.0


def test_committed_json_schema_matches_the_models() -> None:
    assert schema.committed() == schema.text(), (
        "the batch JSON Schema is stale: run mlgen schema -o generator/schema/batch.schema.json"
    )


def test_examples_validate_against_the_json_schema() -> None:
    from check_jsonschema.cli.main_command import main as check_jsonschema

    examples = sorted(str(p) for p in (ROOT / "examples").glob("*.yaml"))
    with pytest.raises(SystemExit) as done:
        check_jsonschema(
            ["--schemafile", str(ROOT / "generator/schema/batch.schema.json"), *examples]
        )
    assert done.value.code == 0


def test_examples_render_without_warnings(runner: CliRunner) -> None:
    examples = sorted(str(p) for p in (ROOT / "examples").glob("*.yaml"))
    assert len(examples) >= 3
    result = runner.invoke(app, ["validate", "--strict", *examples])
    assert result.exit_code == 0, result.output


def test_timeline_measures_makespan_and_concurrency(tmp_path: Path) -> None:
    from mlgen import gantt, timeline

    pod = timeline.PodRecord
    found = timeline.Timeline(
        batch="b",
        variant="parallel",
        namespace="ns",
        origin="2026-01-01T00:00:00+00:00",
        jobs=[
            timeline.JobRecord(
                name="j", step="j", wave=0, status="Failed", start=0.0, end=None, failed_indexes="2"
            )
        ],
        pods=[
            pod("p0", "j", 0, 1, "n", "Succeeded", 0.0, 3.0, 0),
            pod("p1", "j", 1, 1, "n", "Succeeded", 0.0, 3.0, 0),
            pod("p2", "j", 2, 1, "n", "Failed", 3.0, 5.0, 3),
            pod("p3", "j", 2, 2, "n", "Failed", 15.0, 17.0, 3),
        ],
    )
    assert found.makespan == 17.0  # the failed Job's last pod, not 0
    assert found.max_concurrency() == 2  # p2 starts as p0 and p1 end: half-open intervals
    path = tmp_path / "t.json"
    found.save(path)
    assert timeline.Timeline.load(path) == found
    assert gantt.draw(found, tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"


def _gitops_directory(tmp_path: Path) -> Path:
    """A batches directory as teams keep one: batches beside a kustomization and a values
    file (one of them not even YAML a parser accepts: a Helm-style template)."""
    batches = tmp_path / "batches"
    batches.mkdir()
    (batches / "sweep.yaml").write_text(json.dumps(batch_doc()))
    (batches / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n"
    )
    (batches / "values.yml").write_text("image: {{ .Values.tag }\nreplicas: 2\n")
    return batches


def test_render_of_a_directory_skips_files_without_a_batch_and_names_them(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _gitops_directory(tmp_path)
    result = runner.invoke(app, ["render", "batches", "-o", "manifests"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "manifests/demo/parallel/job.yaml").is_file()
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped")]
    assert skipped == [
        "skipped batches/kustomization.yaml, batches/values.yml: no document with "
        "kind: Batch (apiVersion mlgen.io/v1alpha1)"
    ]
    assert "skipped" not in result.stdout
    # Named on the command line, a file is a batch file whatever it holds.
    result = runner.invoke(app, ["render", "batches/kustomization.yaml", "-o", "manifests"])
    assert result.exit_code == 1 and "kind" in result.output


def test_a_file_that_claims_to_be_a_batch_still_fails_in_a_directory(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    batches = _gitops_directory(tmp_path)
    cases = {
        # invalid under kind: Batch, as today
        "bad.yaml": json.dumps(batch_doc(parallelism="4")),
        # a mistyped kind under mlgen's apiVersion is a batch, not another tool's file
        "typo.yaml": json.dumps({**batch_doc(), "kind": "Bacth"}),
        # not valid YAML, but its lines say it is a batch being edited
        "broken.yaml": "apiVersion: mlgen.io/v1alpha1\nkind: Batch\nmetadata: {name: x\n",
    }
    for name, text in cases.items():
        (batches / name).write_text(text)
        result = runner.invoke(app, ["render", "batches", "-o", "manifests"])
        assert result.exit_code == 1, name
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert errors and all(f"batches/{name}" in line for line in errors), result.stderr
        assert not (tmp_path / "manifests").exists(), name
        (batches / name).unlink()


def _properties(node: object, where: str = "#") -> Iterator[tuple[str, object]]:
    """Every property of every object in a JSON Schema, with where it is."""
    if isinstance(node, dict):
        for name, value in (node.get("properties") or {}).items():
            yield f"{where}/properties/{name}", value
        for key, value in node.items():
            yield from _properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for number, value in enumerate(node):
            yield from _properties(value, f"{where}/{number}")


def test_every_field_of_the_json_schema_says_what_it_does() -> None:
    found = dict(_properties(json.loads(schema.committed())))
    assert len(found) > 150 and "#/$defs/JobFields/properties/fsGroup" in found
    missing = [where for where, value in found.items() if not _description(value)]
    assert not missing, f"fields without a description: {missing}"
    assert all("\n" not in _description(value) for value in found.values())


def _description(value: object) -> str:
    text = value.get("description") if isinstance(value, dict) else None
    return text.strip() if isinstance(text, str) else ""
