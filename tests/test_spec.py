"""The batch format: what it accepts, and the errors for what it does not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mlgen import source
from mlgen.errors import SpecError

from .conftest import batch_doc, load


def test_defaults_merge_into_jobs_job_value_wins_env_and_labels_merge() -> None:
    doc = batch_doc()
    doc["spec"]["defaults"].update(env={"A": "1", "B": "2"}, labels={"x": "1"}, retries=2)
    doc["spec"]["jobs"][0].update(
        env={"B": "override", "C": "3"}, retries=5, image="other:2", labels={"y": "2"}
    )
    batch = load(doc)
    first, second = batch.jobs[0], batch.jobs[1]
    assert first.env == {"A": "1", "B": "override", "C": "3"}
    assert first.labels == {"x": "1", "y": "2"}
    assert (first.retries, first.image) == (5, "other:2")
    assert (second.retries, second.image, second.env) == (2, "busybox:1.36", {"A": "1", "B": "2"})
    assert second.expected_seconds == 2
    assert batch.parallelism == 2 and batch.namespace == "ml"
    assert batch.variants == ("sequential", "parallel")


def test_parallelism_defaults_to_number_of_jobs_and_is_capped_by_it() -> None:
    doc = batch_doc()
    del doc["spec"]["parallelism"]
    assert load(doc).parallelism == 3
    assert load(batch_doc(parallelism=50)).parallelism == 3


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["spec"]["jobs"][1].update(nmae="x"), "spec.jobs[1].nmae: unknown key"),
        (
            lambda d: d["spec"]["jobs"][2].update(name="Bad_Name"),
            "spec.jobs[2].name: 'Bad_Name' is not a DNS-1123 label",
        ),
        (
            lambda d: d["spec"]["jobs"][2].update(name="a"),
            "spec.jobs[2].name: 'a' repeats jobs[0].name; job names must be unique",
        ),
        (
            lambda d: d["spec"]["defaults"].update(expectedDuration="30 minutes"),
            "spec.defaults.expectedDuration: '30 minutes' is not a duration; write it like 30s",
        ),
        (
            lambda d: d["spec"]["defaults"]["resources"]["requests"].update(memory="8GB"),
            "spec.defaults.resources.requests.memory: '8GB' is not a Kubernetes quantity",
        ),
        (
            lambda d: d["spec"]["jobs"][0].update(env={"SEED": 1}),
            "spec.jobs[0].env.SEED: 1 is a number, not a string; put the value in quotes",
        ),
        (
            lambda d: d["spec"]["jobs"][0].update(env={"1BAD": "x"}),
            "'1BAD' is not an environment variable name",
        ),
        (
            lambda d: d["spec"].update(variants=["sequential", "paralel"]),
            "spec.variants[1]: 'paralel' is not a variant; use one of sequential, parallel",
        ),
        (
            lambda d: d["metadata"].update(labels={"app.kubernetes.io/part-of": "x"}),
            "metadata.labels.app.kubernetes.io/part-of.[key]: 'app.kubernetes.io/part-of' is a "
            "label mlgen sets itself",
        ),
        (
            lambda d: d["spec"]["jobs"][0].update(labels={"mlgen.io/variant": "x"}),
            "'mlgen.io/variant' is a label mlgen sets itself",
        ),
        (
            lambda d: d["spec"]["defaults"].update(secretEnv={"TOKEN": "no-key"}),
            "'no-key' is not a secret reference; write it as <secret-name>/<key>",
        ),
        (
            lambda d: d["spec"]["defaults"].pop("image"),
            "spec.jobs[0].image: no image; set spec.defaults.image or the job's own image",
        ),
        (lambda d: d["metadata"].pop("name"), "metadata.name: is required; add it"),
        (
            lambda d: d.update(apiVersion="mlgen.io/v1"),
            "apiVersion: is 'mlgen.io/v1'; write 'mlgen.io/v1alpha1'",
        ),
        (
            lambda d: d["spec"].update(kubernetesVersion=1.33),
            "spec.kubernetesVersion: 1.33 is a number, not a string; put the value in quotes",
        ),
        (lambda d: d["spec"]["jobs"][0].update(args=["a\x00b"]), "contains a NUL character"),
        (lambda d: d["spec"]["jobs"][0].update(timeout="0s"), "a timeout must be at least 1s"),
    ],
)
def test_invalid_batches_name_file_line_path_and_fix(
    mutate: Callable[[dict[str, object]], None], expected: str
) -> None:
    doc = batch_doc()
    mutate(doc)
    _, problems = source.load_text(yaml.safe_dump(doc, sort_keys=False), source="batch.yaml")
    assert problems, "the batch should have been rejected"
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("batch.yaml") for p in problems)


def test_line_numbers_point_at_the_offending_key() -> None:
    text = """apiVersion: mlgen.io/v1alpha1
kind: Batch
metadata: {name: demo}
spec:
  defaults: {image: "busybox:1", command: [sh]}
  jobs:
    - name: ok
    - name: also-ok
      retires: 3
"""
    _, problems = source.load_text(text, source="b.yaml")
    assert problems == ["b.yaml:9: spec.jobs[1].retires: unknown key; did you mean retries?"]


def test_yaml_syntax_error_and_duplicate_keys_are_reported_with_lines() -> None:
    _, problems = source.load_text("a: [1, 2\nb: 3\n", source="b.yaml")
    assert problems[0].startswith("b.yaml:") and "not valid YAML" in problems[0]
    text = yaml.safe_dump(batch_doc(), sort_keys=False) + "kind: Batch\n"
    _, problems = source.load_text(text, source="b.yaml")
    assert any("kind: key appears twice" in p for p in problems), problems


def test_multi_document_files_and_several_files(write_batch: Callable[..., Path]) -> None:
    one, two = batch_doc(), batch_doc()
    two["metadata"]["name"] = "other"
    multi = write_batch(text=yaml.safe_dump_all([one, two], sort_keys=False), name="m.yaml")
    third = batch_doc()
    third["metadata"]["name"] = "third"
    single = write_batch(third, name="s.yaml")
    names = [b.name for b in source.load_files([multi, single])]
    assert names == ["demo", "other", "third"]
    with pytest.raises(SpecError, match="batch 'demo' is also defined in"):
        source.load_files([multi, write_batch(one, name="dup.yaml")])


def test_all_problems_of_all_files_are_reported_at_once(write_batch: Callable[..., Path]) -> None:
    bad_one = batch_doc()
    bad_one["spec"]["jobs"][0]["oops"] = 1
    bad_two = batch_doc(parallelism=0)
    bad_two["metadata"]["name"] = "two"
    with pytest.raises(SpecError) as caught:
        source.load_files(
            [write_batch(bad_one, name="1.yaml"), write_batch(bad_two, name="2.yaml")]
        )
    lines = str(caught.value).splitlines()
    assert any("1.yaml" in line and "oops" in line for line in lines)
    assert any("2.yaml" in line and "spec.parallelism" in line for line in lines)


def test_missing_file_and_empty_file(write_batch: Callable[..., Path], tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        source.load_files([tmp_path / "nope.yaml"])
    with pytest.raises(SpecError, match="holds no batch"):
        source.load_files([write_batch(text="# nothing\n")])


def test_quantities_accept_plain_numbers_like_kubernetes() -> None:
    doc = batch_doc()
    doc["spec"]["defaults"]["resources"] = {"limits": {"nvidia.com/gpu": 1, "cpu": 0.5}}
    assert load(doc).jobs[0].limits == {"nvidia.com/gpu": "1", "cpu": "0.5"}
