"""Order past ten: every piece that orders steps or indexes, on twelve of them.

Below ten, string order and number order agree ("2" < "3"), so a wave, directory or index
sorted as text passes every smaller test. Twelve steps are where they part ("10" < "2").
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import yaml

from mlgen import apply, checks, contract

from .conftest import batch_doc, objects, render_doc
from .test_apply import FakeCluster, job
from .test_checks import chain

N = 12


def _twelve(**spec: Any) -> dict[str, Any]:
    doc = batch_doc(**spec)
    doc["spec"]["jobs"] = [{"name": f"s{i}", "args": [f"echo {i}"]} for i in range(N)]
    return doc


def test_twelve_waves_carry_their_batch_position_as_a_number() -> None:
    jobs = [
        o for o in objects(render_doc(_twelve(), variants=("sequential",))) if o["kind"] == "Job"
    ]
    waves = {
        o["metadata"]["annotations"][contract.STEP_NAME]: o["metadata"]["annotations"][
            contract.SYNC_WAVE
        ]
        for o in jobs
    }
    # Argo CD orders waves as integers: the annotation must be the position, unpadded.
    assert waves == {f"s{i}": str(i) for i in range(N)}


def test_twelve_step_directories_list_in_batch_order_as_text() -> None:
    """kustomization.yaml and every file listing show the steps in batch order, which
    needs zero-padded numbers once there are ten or more."""
    files = render_doc(_twelve(), variants=("sequential",))
    kustomization = yaml.safe_load(files["demo/sequential/kustomization.yaml"])
    steps = [r for r in kustomization["resources"] if r[0].isdigit()]
    assert steps == sorted(steps) == [f"{i:02d}-s{i}/job.yaml" for i in range(N)]


def test_twelve_flux_steps_each_depend_on_the_one_before() -> None:
    flux = {"source": "gitops", "path": "./clusters/ml/manifests"}
    files = render_doc(_twelve(flux=flux), variants=("sequential",))
    chain_ = list(yaml.safe_load_all(files["demo/flux/kustomizations.yaml"]))
    assert [k["spec"]["path"].rsplit("/", 1)[1] for k in chain_] == [
        f"{i:02d}-s{i}" for i in range(N)
    ]
    for before, after in itertools.pairwise(chain_):
        assert after["spec"]["dependsOn"] == [{"name": before["metadata"]["name"]}]


def test_twelve_indexes_name_their_jobs_and_args_by_number() -> None:
    rendered = objects(render_doc(_twelve(), variants=("parallel",)))
    (indexed,) = [o for o in rendered if o["kind"] == "Job"]
    assert indexed["spec"]["completions"] == N
    names = indexed["metadata"]["annotations"][contract.JOB_NAMES].split(",")
    assert names == [f"s{i}" for i in range(N)]
    (params,) = [o for o in rendered if o["kind"] == "ConfigMap"]
    for i in (1, 2, 10, 11):
        assert params["data"][f"{i}.arg.0"] == f"echo {i}"


def test_apply_runs_twelve_shuffled_waves_in_number_order() -> None:
    steps = [job(f"s{i}", i) for i in range(N)]
    shuffled = steps[:]
    random.Random(7).shuffle(shuffled)
    _, waves = apply.plan(shuffled)
    assert [w[0]["metadata"]["name"] for w in waves] == [f"s{i}" for i in range(N)]
    cluster = FakeCluster()
    apply.run(cluster, shuffled, timeout=60, progress=lambda _: None)  # type: ignore[arg-type]
    applied = [c.removeprefix("apply ") for c in cluster.calls if c.startswith("apply ")]
    assert applied == [f"s{i}" for i in range(N)]


def test_the_order_check_reads_twelve_steps_as_numbers() -> None:
    names = [f"step-{i}" for i in range(N)]
    in_order = chain(*[(2.0 * i, 2.0 * i + 1.5) for i in range(N)], names=names)
    checks.steps_in_order(in_order, names)
    # step-10 and step-11 ran before step-2: the order text sorting would accept.
    text_order = sorted(names)
    swapped = chain(*[(2.0 * i, 2.0 * i + 1.5) for i in range(N)], names=text_order)
    try:
        checks.steps_in_order(swapped, names)
    except AssertionError as e:
        assert "steps ran out of order" in str(e)
    else:
        raise AssertionError("a text-ordered run of twelve steps passed the order check")
