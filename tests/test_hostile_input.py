"""Hostile batch files: alias bombs, self-referencing aliases, huge values and outputs,
values the API server would reject. Each fails `mlgen render` with exit 1, one short
line per problem naming the field, quickly, and writes nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mlgen import limits
from mlgen.cli.app import app
from mlgen.errors import RenderError

from .conftest import batch_doc

HEAD = """apiVersion: mlgen.io/v1alpha1
kind: Batch
metadata: {name: bomb}
spec:
  defaults: {image: busybox:1.36, command: [sh]}
"""


def laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return (
        HEAD
        + "  x:\n"
        + "".join(f"    {line}\n" for line in lines)
        + f"  jobs: [{{name: a, args: *a{levels}}}]\n"
    )


def render_text(runner: CliRunner, tmp_path: Path, text: str) -> tuple[int, list[str]]:
    path = tmp_path / "batch.yaml"
    path.write_text(text)
    out = tmp_path / "out"
    result = runner.invoke(app, ["render", str(path), "-o", str(out)])
    assert not out.exists(), "nothing may be written"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result.exit_code, result.output.strip().splitlines()


def test_billion_laughs_is_refused_fast_before_expanding(runner: CliRunner, tmp_path: Path) -> None:
    start = time.monotonic()
    code, lines = render_text(runner, tmp_path, laughs(9))
    assert time.monotonic() - start < 5
    assert code == 1 and len(lines) == 1, lines
    assert "through YAML aliases" in lines[0] and lines[0].startswith("error: batch.yaml:")


def test_a_self_referencing_alias_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    code, lines = render_text(runner, tmp_path, HEAD + "  x: &r [*r]\n  jobs: [{name: a}]\n")
    assert code == 1 and len(lines) == 1, lines
    assert "refers to a node that contains it" in lines[0]


def test_deep_nesting_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    code, lines = render_text(runner, tmp_path, HEAD + "  x: " + "[" * 5000 + "]" * 5000 + "\n")
    assert code == 1 and len(lines) == 1, lines
    assert "levels deep" in lines[0] or "nesting depth" in lines[0], lines


def test_one_big_anchor_used_many_times_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    big = "v" * 100_000
    uses = ", ".join(["*big"] * 1000)
    text = HEAD + f'  x: &big "{big}"\n  jobs: [{{name: a, args: [{uses}]}}]\n'
    code, lines = render_text(runner, tmp_path, text)
    assert code == 1 and len(lines) == 1 and "through YAML aliases" in lines[0], lines
    assert len(lines[0]) <= limits.MAX_ERROR_LINE + 10


def test_merge_keys_and_modest_aliases_still_work(runner: CliRunner, tmp_path: Path) -> None:
    text = HEAD.replace(
        "spec:\n",
        "spec:\n  jobs:\n    - {name: a, args: &lr [--lr, '1'], "
        "env: &e {X: '1'}}\n    - {name: b, env: {<<: *e, Y: '2'}}\n"
        "    - {name: c, args: *lr}\n",
    )
    path = tmp_path / "ok.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["render", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output


def test_a_job_manifest_over_the_api_request_limit_is_refused(
    runner: CliRunner, tmp_path: Path
) -> None:
    doc = batch_doc(variants=["sequential"])
    doc["spec"]["jobs"][0]["args"] = ["v" * 200_000] * 9
    code, lines = render_text(runner, tmp_path, yaml.safe_dump(doc))
    assert code == 1 and len(lines) == 1, lines
    assert "more than the API server accepts in one object" in lines[0]


def test_annotations_over_256_kib_are_refused(runner: CliRunner, tmp_path: Path) -> None:
    doc = batch_doc(simulated=True, variants=["parallel"])
    doc["spec"]["defaults"]["command"] = ["sh"]
    doc["spec"]["jobs"] = [
        {"name": f"job-{i}", "expectedDuration": f"{i + 1}s"} for i in range(20_000)
    ]
    code, lines = render_text(runner, tmp_path, yaml.safe_dump(doc))
    assert code == 1 and len(lines) == 1, lines
    assert "annotations would take" in lines[0] and "split the batch" in lines[0]


def test_pod_template_annotations_over_256_kib_are_refused() -> None:
    durations = ",".join(f"{i}s" for i in range(40_000))
    job = {
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {
            "template": {"metadata": {"annotations": {"mlgen.io/expected-durations": durations}}}
        },
    }
    with pytest.raises(RenderError, match=r"spec\.template\.metadata\.annotations would take"):
        limits.check_object(job, source="batch.yaml", path="b/parallel/job.yaml")


def test_a_huge_wrong_value_gives_a_short_error_line(runner: CliRunner, tmp_path: Path) -> None:
    doc = batch_doc()
    doc["spec"]["jobs"][0]["x" * 100_000] = list(range(20_000))  # an unknown key, named back
    code, lines = render_text(runner, tmp_path, yaml.safe_dump(doc))
    assert code == 1 and len(lines) == 1, lines
    assert len(lines[0]) <= limits.MAX_ERROR_LINE + 10
    assert "spec.jobs[0].xxx" in lines[0] and "more characters)" in lines[0]


# Values the API server rejects (conformance/test_bad_values.py proves it on a real one):
# render refuses each first, naming the field.
BAD: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("name-trailing-newline", lambda d: d["metadata"].update(name="b\n"), "metadata.name"),
    ("namespace-newline", lambda d: d["metadata"].update(namespace="ml\n"), "metadata.namespace"),
    (
        "label-value-newline",
        lambda d: d["metadata"].update(labels={"team": "x\n"}),
        "metadata.labels.team",
    ),
    (
        "node-selector-key-newline",
        lambda d: d["spec"]["defaults"].update(nodeSelector={"disk\n": "ssd"}),
        "spec.defaults.nodeSelector",
    ),
    (
        "env-name-newline",
        lambda d: d["spec"]["defaults"].update(env={"A\n": "x"}),
        "spec.defaults.env",
    ),
    (
        "secret-ref-newline",
        lambda d: d["spec"]["defaults"].update(secretEnv={"T": "s/k\n"}),
        "spec.defaults.secretEnv.T",
    ),
    (
        "arabic-digit-cpu",
        lambda d: d["spec"]["defaults"]["resources"]["requests"].update(cpu="٢"),
        "spec.defaults.resources.requests.cpu",
    ),
    (
        "arabic-digit-duration",
        lambda d: d["spec"]["defaults"].update(timeout="٢s"),
        "spec.defaults.timeout",
    ),
    (
        "negative-cpu",
        lambda d: d["spec"]["defaults"]["resources"]["requests"].update(cpu="-1"),
        "spec.defaults.resources.requests.cpu",
    ),
    (
        "half-gpu",
        lambda d: d["spec"]["defaults"].update(resources={"limits": {"nvidia.com/gpu": 0.5}}),
        "spec.defaults.resources.limits.nvidia.com/gpu",
    ),
    (
        "resource-name-space",
        lambda d: d["spec"]["defaults"].update(resources={"requests": {"my gpu": "1"}}),
        "spec.defaults.resources.requests",
    ),
    (
        "exists-with-value",
        lambda d: d["spec"]["defaults"].update(
            tolerations=[{"key": "k", "operator": "Exists", "value": "v"}]
        ),
        "spec.defaults.tolerations[0]",
    ),
    (
        "timeout-beyond-int32",
        lambda d: d["spec"]["defaults"].update(timeout="99999999999s"),
        "spec.defaults.timeout",
    ),
    (
        "duration-beyond-int64",
        lambda d: d["spec"]["defaults"].update(expectedDuration="99999999999999999999s"),
        "spec.defaults.expectedDuration",
    ),
    (
        "uid-beyond-int32",
        lambda d: d["spec"]["defaults"].update(runAsUser=2**31),
        "spec.defaults.runAsUser",
    ),
    (
        "uid-beyond-int64",
        lambda d: d["spec"]["defaults"].update(runAsUser=2**64),
        "spec.defaults.runAsUser",
    ),
    (
        "reserved-label",
        lambda d: d["metadata"].update(labels={"controller-uid": "x"}),
        "metadata.labels",
    ),
    (
        "reserved-batch-label",
        lambda d: d["spec"]["defaults"].update(labels={"batch.kubernetes.io/job-name": "x"}),
        "spec.defaults.labels",
    ),
    ("empty-command", lambda d: d["spec"]["defaults"].update(command=[]), "spec.defaults.command"),
    (
        "long-env-name",
        lambda d: d["spec"]["jobs"][0].update(env={"E" * 250: "x"}),
        "spec.jobs[0].env",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "field"), [(m, f) for _, m, f in BAD], ids=[i for i, _, _ in BAD]
)
def test_values_the_api_rejects_are_refused_naming_the_field(
    runner: CliRunner, tmp_path: Path, mutate: Callable[[dict[str, Any]], None], field: str
) -> None:
    doc = batch_doc()
    mutate(doc)
    code, lines = render_text(runner, tmp_path, yaml.safe_dump(doc, allow_unicode=True))
    assert code == 1, lines
    assert any(field in line for line in lines), lines
