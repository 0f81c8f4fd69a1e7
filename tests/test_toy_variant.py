"""A variant is one module behind the registry: this test registers a toy strategy that
renders no batch/v1 Job but a JobSet-shaped object, and runs render, validation warnings,
estimate and apply against a fake client with nothing else changed (docs/design.md,
"Adding a variant")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pytest

from mlgen import apply, checks, contract, estimate, render, schedule, spec, validation, variants
from mlgen.variants.base import Driver, Rendered

from .conftest import batch_doc, load, objects
from .test_apply import FakeCluster

if TYPE_CHECKING:
    from mlgen.timeline import Timeline

API_VERSION, KIND = "jobset.x-k8s.io/v1alpha2", "JobSet"


class Gang:
    """Every job of the batch as one replicated job of a JobSet, all at once."""

    name = "gang"
    directory = "gang"
    ends = ("Completed", "Failed")  # a JobSet's own conditions, success first
    done_when_pod_succeeds = False
    driver: Driver = "controller"
    rounds = True
    overhead = 2.0
    companions: tuple[str, ...] = ()
    entrypoint = False

    def render(self, batch: spec.Batch) -> Rendered:
        jobset = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {
                "name": f"{batch.name}-gang",
                "namespace": batch.namespace,
                "annotations": {contract.STRATEGY: self.name, contract.SYNC_WAVE: "0"},
            },
            "spec": {
                "replicatedJobs": [
                    {"name": j.name, "replicas": 1, "template": {"spec": {}}} for j in batch.jobs
                ]
            },
        }
        return Rendered(files={"gang/jobset.yaml": [jobset]}, resources=["jobset.yaml"])

    def fits(self, batch: spec.Batch) -> str:
        return ""

    def predict(
        self,
        batch: spec.Batch,
        *,
        parallelism: int,
        overheads: Mapping[str, float],
        ideal: bool = False,
    ) -> float:
        durations = [float(j.expected_seconds or 0) for j in batch.jobs]
        return schedule.parallel(
            durations, parallelism=len(durations), overhead=overheads[self.name]
        )

    def check(self, timeline: Timeline, batch: spec.Batch, *, epsilon: checks.Epsilon) -> None:
        checks.all_complete(timeline)


VARIANT = Gang()


@pytest.fixture
def gang(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = variants.Entry("gang", "gang", __name__)
    monkeypatch.setattr(variants, "REGISTRY", (*variants.REGISTRY, entry))


def _batch(**spec_fields: Any) -> spec.Batch:
    return load(batch_doc(variants=["sequential", "gang"], **spec_fields))


@pytest.mark.usefixtures("gang")
def test_a_registered_variant_is_rendered_listed_and_estimated() -> None:
    assert "gang" in variants.directories()
    batch = _batch()
    files = render.render_batch(batch)
    assert {"demo/gang/jobset.yaml", "demo/gang/kustomization.yaml"} <= set(files)
    (jobset,) = objects({k: v for k, v in files.items() if k == "demo/gang/jobset.yaml"})
    assert jobset["kind"] == KIND and contract.is_run(jobset)
    assert "jobset.yaml" in files["demo/gang/kustomization.yaml"]
    found = estimate.of(batch, overhead=estimate.overheads(seconds=0))
    assert found.rendered == ("sequential", "gang")
    assert found.seconds("gang") == max(float(j.expected_seconds or 0) for j in batch.jobs)
    assert found.as_dict()["gangSeconds"] == found.seconds("gang")
    assert estimate.overheads()["gang"] == Gang.overhead
    validation.warnings(batch)  # loops over the strategies' model, whatever they are


@pytest.mark.usefixtures("gang")
def test_apply_waits_on_the_variant_s_own_kind_and_conditions() -> None:
    batch = _batch()
    rendered = render.render_batch(batch, only=["gang"])
    found = [o for o in objects(rendered) if "metadata" in o]
    waited: list[tuple[tuple[str, str], tuple[str, ...]]] = []

    class Cluster(FakeCluster):
        def wait_ended(
            self,
            namespace: str,
            names: list[str],
            *,
            until: tuple[str, ...],
            timeout: float,
            kind: tuple[str, str] = ("batch/v1", "Job"),
            seen: Any = None,
        ) -> dict[str, Any]:
            waited.append((kind, until))
            conditions = [{"type": until[0], "status": "True"}]
            return {n: {"status": {"conditions": conditions}} for n in names}

    cluster = Cluster()
    outcome = apply.run(cluster, found, timeout=60, progress=lambda _: None)  # type: ignore[arg-type]
    assert waited == [((API_VERSION, KIND), Gang.ends)]
    assert cluster.calls[0] == "apply demo-gang"
    assert [(j.kind, j.status) for j in outcome.jobs] == [(KIND, "Complete")]


@pytest.mark.usefixtures("gang")
def test_a_failed_run_of_the_variant_names_it_as_kubectl_does() -> None:
    batch = _batch()
    found = [o for o in objects(render.render_batch(batch, only=["gang"])) if "metadata" in o]

    class Failing(FakeCluster):
        def wait_ended(self, namespace: str, names: list[str], **kw: Any) -> dict[str, Any]:
            return {
                n: {"status": {"conditions": [{"type": "Failed", "status": "True"}]}} for n in names
            }

    with pytest.raises(apply.JobFailedError, match=r"jobset/demo-gang failed; .*describe jobset/"):
        apply.run(Failing(), found, timeout=60, progress=lambda _: None)  # type: ignore[arg-type]
