"""Stages: the batch format, what each stage renders, names chained per stage, the Flux
chain, `mlgen apply` stage by stage, the estimate per stage and the stage promises."""

from __future__ import annotations

import copy
import itertools
import random
import re
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mlgen import apply, checks, contract, estimate, validation, variants
from mlgen.cli.app import app
from mlgen.errors import JobFailedError, RenderError, SpecError
from mlgen.timeline import JobRecord, PodRecord, Timeline

from .conftest import batch_doc, load, objects, render_doc, staged_doc
from .test_apply import FakeCluster


def _jobs(files: dict[str, str]) -> list[dict[str, Any]]:
    return [o for o in objects(files) if o["kind"] == "Job"]


def _pipeline(**sweep: Any) -> dict[str, Any]:
    """prep → sweep (b, c, d at p = 2) → eval."""
    doc = staged_doc(
        {"prep": ["a"], "sweep": ["b", "c", "d"], "eval": ["e"]},
        sweep={"parallelism": 2, **sweep},
    )
    doc["spec"]["jobs"] = [
        {"name": "a", "stage": "prep", "args": ["echo a"]},
        {"name": "b", "stage": "sweep", "args": ["echo b"]},
        {"name": "c", "stage": "sweep", "args": ["echo c"]},
        {"name": "d", "stage": "sweep", "args": ["echo d"]},
        {"name": "e", "stage": "eval", "args": ["echo e"], "image": "busybox:1.36.1"},
    ]
    return doc


def _names(doc: dict[str, Any]) -> dict[str, list[str]]:
    """The rendered Job names by stage."""
    out: dict[str, list[str]] = {}
    for job in _jobs(render_doc(doc)):
        stage = job["metadata"]["annotations"][contract.STAGE_NAME]
        out.setdefault(stage, []).append(job["metadata"]["name"])
    return out


def test_a_staged_batch_renders_a_wave_and_a_directory_per_stage() -> None:
    files = render_doc(_pipeline())
    assert sorted(files) == [
        "demo/stages/0-prep/job.yaml",
        "demo/stages/1-sweep/job.yaml",
        "demo/stages/1-sweep/params.yaml",
        "demo/stages/2-eval/job.yaml",
        "demo/stages/kustomization.yaml",
    ]
    kustomization = yaml.safe_load(files["demo/stages/kustomization.yaml"])
    assert kustomization["resources"] == [
        "0-prep/job.yaml",
        "1-sweep/params.yaml",
        "1-sweep/job.yaml",
        "2-eval/job.yaml",
    ]
    prep, sweep, final = _jobs(files)
    waves = [j["metadata"]["annotations"][contract.SYNC_WAVE] for j in (prep, sweep, final)]
    assert waves == ["0", "1", "2"]
    assert "completionMode" not in prep["spec"]  # one job: a plain Job
    assert sweep["spec"]["completionMode"] == "Indexed"
    assert (sweep["spec"]["completions"], sweep["spec"]["parallelism"]) == (3, 2)
    assert "maxFailedIndexes" not in sweep["spec"]  # a failed member never stops its siblings
    assert sweep["metadata"]["annotations"][contract.JOB_NAMES] == "b,c,d"
    assert {j["metadata"]["annotations"][contract.STRATEGY] for j in (prep, sweep, final)} == {
        "stages"
    }
    (config,) = [o for o in objects(files) if o["kind"] == "ConfigMap"]
    # The ConfigMap a stage's pods mount is in the stage's own wave, never a later one.
    assert config["metadata"]["annotations"][contract.SYNC_WAVE] == "1"
    assert config["data"]["0.arg.0"] == "echo b" and config["data"]["2.arg.0"] == "echo d"


def test_a_staged_batch_renders_only_stages_unless_it_lists_more() -> None:
    assert load(_pipeline()).variants == ("stages",)
    assert load(batch_doc()).variants == ("sequential", "parallel")
    both = _pipeline()
    both["spec"]["variants"] = ["sequential", "stages"]
    files = render_doc(both)
    order = [
        j["metadata"]["annotations"][contract.STEP_NAME]
        for j in _jobs({k: v for k, v in files.items() if "/sequential/" in k})
    ]
    assert order == ["a", "b", "c", "d", "e"]  # one at a time, in stage order


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda d: d["spec"]["jobs"][1].pop("stage"),
            "batch.yaml:{line}: spec.jobs[1].stage: missing; every job names its stage, "
            "one of prep, sweep, eval",
        ),
        (
            lambda d: d["spec"]["jobs"][1].update(stage="swep"),
            "spec.jobs[1].stage: 'swep' is not a stage of spec.stages; did you mean 'sweep'?",
        ),
        (
            lambda d: d["spec"]["jobs"][4].update(stage="prep"),
            "spec.jobs[4].stage: 'prep' comes after jobs of stage 'sweep'; list the jobs in "
            "stage order",
        ),
        (
            lambda d: d["spec"]["stages"].append({"name": "extra"}),
            "spec.stages[3].name: stage 'extra' has no job",
        ),
        (
            lambda d: d["spec"]["stages"].append({"name": "prep"}),
            "stages[3].name 'prep' repeats stages[0].name; stage names must be unique",
        ),
        (
            lambda d: d["spec"].pop("stages"),
            "spec.jobs[0].stage: names stage 'prep', but the batch has no spec.stages",
        ),
    ],
)
def test_a_stage_mistake_is_one_line_naming_the_field_and_fix(
    change: Any, problem: str, write_batch: Any, runner: CliRunner
) -> None:
    doc = _pipeline()
    change(doc)
    path = write_batch(doc)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors, result.output
    text = yaml.safe_dump(doc, sort_keys=False).splitlines()
    line = next((i + 1 for i, t in enumerate(text) if "name: b" in t), 0)
    assert any(problem.format(line=line) in e for e in errors), errors


def test_parallel_is_refused_for_a_staged_batch_and_stages_without_stages() -> None:
    doc = _pipeline()
    doc["spec"]["variants"] = ["parallel"]
    with pytest.raises(RenderError, match=re.escape("would break spec.stages' order")):
        render_doc(doc)
    plain = batch_doc(variants=["stages"])
    with pytest.raises(RenderError, match=re.escape("the stages variant runs spec.stages")):
        render_doc(plain)


def test_members_that_differ_in_image_run_as_a_job_each_when_p_allows_all() -> None:
    doc = _pipeline(parallelism=3)
    doc["spec"]["jobs"][2]["image"] = "busybox:1.36.1"  # c differs from b and d
    jobs = [
        j
        for j in _jobs(render_doc(doc))
        if j["metadata"]["annotations"][contract.STAGE_NAME] == "sweep"
    ]
    assert [j["metadata"]["annotations"][contract.STEP_NAME] for j in jobs] == ["b", "c", "d"]
    assert {j["metadata"]["annotations"][contract.SYNC_WAVE] for j in jobs} == {"1"}
    assert all("completionMode" not in j["spec"] for j in jobs)
    doc = _pipeline(parallelism=2)
    doc["spec"]["jobs"][2]["image"] = "busybox:1.36.1"
    with pytest.raises(
        RenderError, match=r"its parallelism 2 \(from .*\) cannot be kept for 3"
    ) as e:
        render_doc(doc)
    assert "differs from job 'b' in image" in str(e.value)
    assert str(e.value).startswith("batch.yaml:")


def test_an_edit_reruns_its_stage_and_the_later_ones_never_an_earlier_one() -> None:
    before = _names(_pipeline())
    for position, stage, changed in (
        (0, "prep", {"prep", "sweep", "eval"}),
        (2, "sweep", {"sweep", "eval"}),  # one member of an Indexed Job: the whole Job
        (4, "eval", {"eval"}),
    ):
        doc = _pipeline()
        doc["spec"]["jobs"][position]["args"] = ["echo edited"]
        after = _names(doc)
        assert {s for s in before if before[s] != after[s]} == changed, stage


def test_an_edit_of_one_member_of_a_job_each_stage_reruns_only_it_and_later_stages() -> None:
    def doc(arg: str) -> dict[str, Any]:
        d = _pipeline(parallelism=3)
        d["spec"]["jobs"][2]["image"] = "busybox:1.36.1"  # a Job per member
        d["spec"]["jobs"][1]["args"] = [arg]
        return d

    before, after = _names(doc("echo b")), _names(doc("echo B"))
    assert before["prep"] == after["prep"]
    assert before["sweep"][0] != after["sweep"][0]  # b itself
    assert before["sweep"][1:] == after["sweep"][1:]  # its siblings stay
    assert before["eval"] != after["eval"]


def test_flux_gets_one_kustomization_per_stage_each_waiting_on_the_one_before() -> None:
    doc = _pipeline()
    doc["spec"]["flux"] = {"source": "gitops", "path": "./clusters/ml/manifests"}
    files = render_doc(doc)
    chain = list(yaml.safe_load_all(files["demo/flux-stages/kustomizations.yaml"]))
    assert [k["spec"]["path"] for k in chain] == [
        f"./clusters/ml/manifests/demo/stages/{d}" for d in ("0-prep", "1-sweep", "2-eval")
    ]
    assert all(k["spec"]["wait"] is True for k in chain)
    assert "dependsOn" not in chain[0]["spec"]
    for before, after in itertools.pairwise(chain):
        assert after["spec"]["dependsOn"] == [{"name": before["metadata"]["name"]}]


def test_twelve_stages_run_in_number_order_through_apply() -> None:
    names = [f"s{i}" for i in range(12)]
    doc = staged_doc({n: [n] for n in names})
    rendered = objects(render_doc(doc))
    random.Random(7).shuffle(rendered)
    _, waves = apply.plan(rendered)
    assert [w[0]["metadata"]["annotations"][contract.STAGE_NAME] for w in waves] == names


def test_apply_runs_each_stage_after_the_one_before_and_stops_after_a_failure() -> None:
    rendered = [o for o in objects(render_doc(_pipeline())) if "metadata" in o]
    cluster = FakeCluster()
    apply.run(cluster, rendered, timeout=60, progress=lambda _: None)  # type: ignore[arg-type]
    by_stage = {
        j["metadata"]["annotations"][contract.STAGE_NAME]: j["metadata"]["name"]
        for j in rendered
        if j["kind"] == "Job"
    }
    calls = cluster.calls
    for first, then in itertools.pairwise(["prep", "sweep", "eval"]):
        # Stage k+1 is applied only after stage k was awaited to its end.
        assert calls.index(f"apply {by_stage[first]}") < calls.index(f"job {by_stage[first]}")
        assert calls.index(f"job {by_stage[first]}") < calls.index(f"apply {by_stage[then]}")
    failing = FakeCluster(failing={by_stage["sweep"]})
    with pytest.raises(JobFailedError):
        apply.run(failing, rendered, timeout=60, progress=lambda _: None)  # type: ignore[arg-type]
    assert f"apply {by_stage['eval']}" not in failing.calls


def test_the_estimate_is_per_stage_and_sums_them() -> None:
    doc = _pipeline()
    for job, seconds in zip(doc["spec"]["jobs"], (60, 600, 600, 600, 120), strict=True):
        job["expectedDuration"] = f"{seconds}s"
    found = estimate.of(load(doc), overhead=estimate.overheads(seconds=0))
    assert [(s.name, s.jobs, s.parallelism) for s in found.stages] == [
        ("prep", 1, 1),
        ("sweep", 3, 2),
        ("eval", 1, 1),
    ]
    assert [s.seconds for s in found.stages] == [60, 1200, 120]  # ⌈3/2⌉ rounds of 600
    assert found.seconds("stages") == 1380
    assert found.seconds("sequential") == 1980
    assert "parallel" not in dict(found.makespans)  # it cannot run a staged batch at all
    assert found.lower_bound_seconds == 60 + 900 + 120  # Σ max(Σd/p, max d)
    assert found.as_dict()["stages"][1]["seconds"] == 1200
    # With the measured overheads: each stage adds the Job controller's final lag.
    measured = estimate.of(load(doc))
    assert measured.seconds("stages") > 1380 + 3 * 0.9


def _run(stages: dict[str, list[tuple[float, float]]], *, shared: set[str]) -> Timeline:
    """A staged run: pods (start, end) per stage; a stage in `shared` is one Indexed Job."""
    jobs, pods = [], []
    number = 0
    for wave, (stage, spans) in enumerate(stages.items()):
        for k, (a, b) in enumerate(spans):
            job = f"j-{stage}" if stage in shared else f"j-{stage}-{k}"
            pods.append(
                PodRecord(
                    name=f"p{number}",
                    job=job,
                    index=k if stage in shared else None,
                    attempt=1,
                    node="n",
                    phase="Succeeded",
                    start=a,
                    end=b,
                    exit_code=0,
                    step=f"{stage}{k}",
                )
            )
            number += 1
        for job in sorted({p.job for p in pods if p.step.startswith(stage)}):
            own = [p for p in pods if p.job == job]
            jobs.append(
                JobRecord(
                    name=job,
                    step=stage,
                    wave=wave,
                    status="Complete",
                    start=min(p.start or 0 for p in own),
                    end=max(p.end or 0 for p in own) + 1,
                )
            )
    return Timeline(
        batch="b",
        variant="stages",
        namespace="ns",
        origin="",
        jobs=jobs,
        pods=pods,
        resolution=0.25,
    )


def _three_stage_batch() -> Any:
    doc = staged_doc(
        {"prep": ["prep0"], "sweep": ["sweep0", "sweep1", "sweep2"], "eval": ["eval0"]},
        sweep={"parallelism": 2},
    )
    return load(doc)  # every job 2s (the base batch's default)


GOOD = {
    "prep": [(0.0, 2.0)],
    "sweep": [(3.1, 5.1), (3.2, 5.2), (6.3, 8.3)],
    "eval": [(9.4, 11.4)],
}


def test_the_stage_promises_hold_for_a_good_run_and_break_for_each_bad_one() -> None:
    batch = _three_stage_batch()
    checks.stages_bounds(_run(GOOD, shared={"sweep"}), batch, between=0.5, within=1.5)
    early = copy.deepcopy(GOOD)
    early["eval"] = [(8.0, 10.0)]  # before the sweep's last pod ended at 8.3
    too_many = copy.deepcopy(GOOD)
    too_many["sweep"] = [(3.1, 5.1), (3.2, 5.2), (3.3, 5.3)]
    too_few = copy.deepcopy(GOOD)
    too_few["sweep"] = [(3.1, 5.1), (5.2, 7.2), (7.3, 9.3)]
    too_few["eval"] = [(9.4, 11.4)]
    slow = copy.deepcopy(GOOD)
    slow["eval"] = [(40.0, 42.0)]  # bound: 6 + 1.5 + 3 x (0.5 + 2.0) + 0.25 = 15.25s
    for bad, why in (
        (early, "stage 'eval' started a pod at 8.000s, before stage 'sweep' ended at 8.300s"),
        (too_many, "stage 'sweep': 3 pods ran at once, more than its parallelism 2"),
        (too_few, "stage 'sweep': at most 1 pods ran at once; min(p, n) = 2"),
        (slow, "too slow: makespan 43.000s exceeds"),
    ):
        with pytest.raises(AssertionError, match=why.replace("(", r"\(").replace(")", r"\)")):
            checks.stages_bounds(_run(bad, shared={"sweep"}), batch, between=0.5, within=1.5)


def test_the_stages_strategy_is_registered_for_staged_batches_only() -> None:
    assert variants.defaults(staged=True) == ("stages",)
    assert "stages" not in variants.defaults(staged=False)
    unit = variants.get("stages")
    assert unit.fits(load(_pipeline())) == ""
    assert "spec.stages" in unit.fits(load(batch_doc()))
    assert "spec.stages" in variants.get("parallel").fits(load(_pipeline()))


def test_continue_after_a_failed_stage_is_warned_to_hold_for_apply_only() -> None:
    assert not [w for w in validation.warnings(load(_pipeline())) if "onFailure" in w]
    warned = [
        w for w in validation.warnings(load(_pipeline(onFailure="continue"))) if "onFailure" in w
    ]
    assert len(warned) == 1 and "spec.stages[1].onFailure" in warned[0], warned
    assert "`mlgen apply` only" in warned[0]
    sweep = _jobs(render_doc(_pipeline(onFailure="continue")))[1]
    assert sweep["metadata"]["annotations"][contract.ON_FAILURE] == "continue"


def test_rendering_one_variant_keeps_the_other_flux_chain(
    runner: CliRunner, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sequential and the stages chains live in directories of their own: a Flux root
    applies a whole directory, and `render --variant` leaves the other one as it is."""
    monkeypatch.chdir(tmp_path)
    doc = _pipeline()
    doc["spec"]["variants"] = ["sequential", "stages"]
    doc["spec"]["flux"] = {"source": "gitops"}
    (tmp_path / "batch.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    assert runner.invoke(app, ["render", "batch.yaml", "-o", "out"]).exit_code == 0
    chains = ["out/demo/flux/kustomizations.yaml", "out/demo/flux-stages/kustomizations.yaml"]
    assert all((tmp_path / c).is_file() for c in chains)
    for variant in ("stages", "sequential"):
        result = runner.invoke(app, ["render", "batch.yaml", "-o", "out", "--variant", variant])
        assert result.exit_code == 0, result.output
        assert all((tmp_path / c).is_file() for c in chains), variant


def test_names_that_flux_or_pods_could_not_carry_are_refused_at_the_stage() -> None:
    doc = _pipeline()
    doc["spec"]["flux"] = {"source": "gitops"}
    doc["spec"]["stages"][2]["name"] = "e" * 50
    for job in doc["spec"]["jobs"][4:]:
        job["stage"] = "e" * 50
    with pytest.raises(SpecError, match=r"spec\.stages\[2\]\.name: the Flux Kustomization"):
        render_doc(doc)
    long_sweep = _pipeline()
    long_sweep["spec"]["stages"][1]["name"] = "s" * 50
    for job in long_sweep["spec"]["jobs"][1:4]:
        job["stage"] = "s" * 50
    with pytest.raises(SpecError, match=r"spec\.stages\[1\]\.name: .*shorten the batch or stage"):
        render_doc(long_sweep)


def test_a_simulated_attempt_count_needs_an_indexed_job_in_a_stage_too() -> None:
    doc = _pipeline()
    doc["spec"]["jobs"][0]["simulate"] = {"exitCode": 3, "failAttempts": 1}
    with pytest.raises(RenderError, match=r"spec\.jobs\[0\]\.simulate\.failAttempts: job 'a'"):
        render_doc(doc)
    doc = _pipeline()
    doc["spec"]["jobs"][1]["simulate"] = {"exitCode": 3, "failAttempts": 1}
    render_doc(doc)  # the sweep is one Indexed Job, whose pods count their attempts


def test_members_with_their_own_secrets_get_a_job_each_not_each_others_secrets() -> None:
    doc = _pipeline(parallelism=3)
    doc["spec"]["jobs"][2]["secretEnv"] = {"TOKEN": "hf/token"}
    sweep = [
        j
        for j in _jobs(render_doc(doc))
        if j["metadata"]["annotations"][contract.STAGE_NAME] == "sweep"
    ]
    assert len(sweep) == 3 and all("completionMode" not in j["spec"] for j in sweep)
    doc["spec"]["stages"][1]["parallelism"] = 2
    with pytest.raises(RenderError, match="differs from job 'b' in secretEnv") as e:
        render_doc(doc)
    assert "spec.stages[1].parallelism" in str(e.value)  # where the 2 came from


def test_the_flux_timeout_of_a_stage_covers_its_rounds_and_retries() -> None:
    doc = _pipeline()
    doc["spec"]["flux"] = {"source": "gitops"}
    for job in doc["spec"]["jobs"][1:4]:
        job.update(timeout="1h", retries=2)
    chain = list(yaml.safe_load_all(render_doc(doc)["demo/flux-stages/kustomizations.yaml"]))
    # 3 jobs at p = 2 are 2 rounds, each job up to 3 attempts of 1 h: 6 h.
    assert chain[1]["spec"]["timeout"] == f"{6 * 3600}s"
