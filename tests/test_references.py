"""What a Job's pods reference, and the render-time rule that a rendered reference reaches
the cluster no later than its Job: in Argo CD's waves, in the kustomization.yaml that Argo
CD and `kubectl apply -k` read, and along Flux's dependsOn chain."""

from __future__ import annotations

from typing import Any

import pytest

from mlgen import contract, references
from mlgen.errors import RenderError
from mlgen.references import Reference

from .conftest import batch_doc, objects, render_doc


def _job(name: str, wave: int, pod: dict[str, Any], namespace: str = "ml") -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {contract.SYNC_WAVE: str(wave), contract.STRATEGY: "waves"},
        },
        "spec": {"template": {"spec": pod}},
    }


def _config_map(name: str, wave: int, namespace: str = "ml") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {contract.SYNC_WAVE: str(wave)},
        },
    }


READS_PARAMS = {
    "containers": [{"name": "main"}],
    "volumes": [{"name": "p", "configMap": {"name": "params"}}],
}


def test_every_kind_of_reference_is_found_with_its_key_and_optionality() -> None:
    pod = {
        "serviceAccountName": "trainer",
        "priorityClassName": "high",
        "imagePullSecrets": [{"name": "regcred"}],
        "containers": [
            {
                "name": "main",
                "env": [
                    {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                    {
                        "name": "B",
                        "valueFrom": {
                            "configMapKeyRef": {"name": "c", "key": "x", "optional": True}
                        },
                    },
                ],
                "envFrom": [{"secretRef": {"name": "s2"}}, {"configMapRef": {"name": "c2"}}],
            }
        ],
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": "dataset"}},
            {"name": "cfg", "configMap": {"name": "c3", "items": [{"key": "a", "path": "a"}]}},
            {"name": "sec", "secret": {"secretName": "s3", "optional": True}},
            {
                "name": "proj",
                "projected": {
                    "sources": [{"configMap": {"name": "c4"}}, {"secret": {"name": "s4"}}]
                },
            },
        ],
    }
    found = set(references.of(_job("j", 0, pod)))
    assert found == {
        Reference("ServiceAccount", "trainer"),
        Reference("PriorityClass", "high"),
        Reference("Secret", "regcred", optional=True, pulls=True),
        Reference("Secret", "s", "k"),
        Reference("ConfigMap", "c", "x", optional=True),
        Reference("Secret", "s2"),
        Reference("ConfigMap", "c2"),
        Reference("PersistentVolumeClaim", "dataset"),
        Reference("ConfigMap", "c3", "a"),
        Reference("Secret", "s3", optional=True),
        Reference("ConfigMap", "c4"),
        Reference("Secret", "s4"),
    }


def test_the_rendered_params_config_map_comes_no_later_than_its_job() -> None:
    rendered = objects(render_doc(batch_doc(), variants=("parallel",)))
    (job,) = [o for o in rendered if o["kind"] == "Job"]
    (params,) = [o for o in rendered if o["kind"] == "ConfigMap"]
    assert Reference("ConfigMap", params["metadata"]["name"]) in set(references.of(job))
    assert int(params["metadata"]["annotations"][contract.SYNC_WAVE]) < int(
        job["metadata"]["annotations"][contract.SYNC_WAVE]
    )


def test_a_reference_in_a_later_wave_is_an_mlgen_bug() -> None:
    placed = [
        ("b/parallel/job.yaml", _job("j", 0, READS_PARAMS)),
        ("b/parallel/p.yaml", _config_map("params", 1)),
    ]
    with pytest.raises(
        RenderError,
        match=r"reads ConfigMap params, which is in sync wave 1, after the Job's wave 0",
    ):
        references.check_order(placed, {"b/parallel": ["job.yaml", "p.yaml"]})
    placed[1][1]["metadata"]["annotations"][contract.SYNC_WAVE] = "0"
    references.check_order(placed, {"b/parallel": ["job.yaml", "p.yaml"]})


def test_a_reference_the_kustomization_does_not_list_is_an_mlgen_bug() -> None:
    placed = [
        ("b/parallel/job.yaml", _job("j", 0, READS_PARAMS)),
        ("b/parallel/p.yaml", _config_map("params", -1)),
    ]
    with pytest.raises(RenderError, match=r"b/parallel/kustomization.yaml does not list"):
        references.check_order(placed, {"b/parallel": ["job.yaml"]})


def _flux(name: str, path: str, after: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"path": f"./clusters/ml/{path}"}
    if after:
        spec["dependsOn"] = [{"name": after}]
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": spec,
    }


def test_a_reference_flux_applies_in_a_later_or_unrelated_kustomization_is_an_mlgen_bug() -> None:
    step0 = _job("j0", 0, {"containers": [{"name": "main"}]})
    step1 = _job("j1", 1, READS_PARAMS)
    chain = [_flux("b-0", "b/sequential/00-a"), _flux("b-1", "b/sequential/01-b", after="b-0")]
    listed = {"b/sequential": ["00-a/job.yaml", "01-b/job.yaml", "00-a/p.yaml", "01-b/p.yaml"]}

    def placed(params_at: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            ("b/sequential/00-a/job.yaml", step0),
            ("b/sequential/01-b/job.yaml", step1),
            (params_at, _config_map("params", 0)),
            *(("b/flux/kustomizations.yaml", k) for k in chain),
        ]

    # In the step's own Kustomization or an earlier one: applied no later than the Job.
    references.check_order(placed("b/sequential/01-b/p.yaml"), listed, flux_root="./clusters/ml")
    references.check_order(placed("b/sequential/00-a/p.yaml"), listed, flux_root="./clusters/ml")
    # Outside every step's path: Flux never applies it; a step-0 Job reading step 1's:
    # later.
    listed["b/sequential"].append("p.yaml")
    with pytest.raises(RenderError, match="no Flux Kustomization applies before or with"):
        references.check_order(placed("b/sequential/p.yaml"), listed, flux_root="./clusters/ml")
    step0["spec"]["template"]["spec"] = READS_PARAMS
    with pytest.raises(
        RenderError, match="no Flux Kustomization applies before or with the Job's 'b-0'"
    ):
        references.check_order(
            placed("b/sequential/01-b/p.yaml"), listed, flux_root="./clusters/ml"
        )
