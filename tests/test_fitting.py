"""The test cluster made to fit a team's batch: what `fitting.needs` finds in rendered
objects, and the placeholders it makes (only cluster-wide ones on a throwaway cluster)."""

from __future__ import annotations

from typing import Any

import yaml

from mlgen import render, source
from mlgen.conformance import fitting

TEAM = """\
apiVersion: mlgen.io/v1alpha1
kind: Batch
metadata: {name: finetune}
spec:
  variants: [sequential]
  defaults:
    image: ghcr.io/acme/train:1.4.2
    command: [python, -m, train]
    serviceAccountName: trainer
    secretEnv: {WANDB_API_KEY: wandb/api-key}
    nodeSelector: {pool: a100}
    priorityClassName: research-high
    imagePullSecrets: [ghcr-pull]
    volumes:
      - {name: data, persistentVolumeClaim: {claimName: imagenet}}
      - {name: cfg, configMap: {name: train-config, items: [{key: hp.yaml, path: hp.yaml}]}}
    volumeMounts:
      - {name: data, mountPath: /data}
      - {name: cfg, mountPath: /cfg}
    envFrom: [{configMapRef: {name: shared-env}}]
    affinity:
      nodeAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
          nodeSelectorTerms:
            - matchExpressions: [{key: zone, operator: In, values: [eu-1, eu-2]}]
  jobs:
    - {name: prep, args: [prep]}
    - {name: train, args: [train]}
"""


def objects(text: str = TEAM) -> list[dict[str, Any]]:
    (batch,), problems = source.load_text(text, source="team.yaml")
    assert not problems, problems
    return [
        d
        for path, body in sorted(render.render_batch(batch).items())
        if not path.endswith("kustomization.yaml")
        for d in yaml.safe_load_all(body)
        if d
    ]


def test_every_reference_of_a_team_batch_is_found() -> None:
    found = fitting.needs(objects())
    assert found.service_accounts == {"trainer"}
    assert found.secrets == {"wandb": {"api-key"}}
    assert found.pull_secrets == {"ghcr-pull"}
    assert found.config_maps == {"train-config": {"hp.yaml"}, "shared-env": set()}
    assert found.claims == {"imagenet"}
    assert found.priority_classes == {"research-high"}
    assert found.node_labels == {"pool": "a100", "zone": "eu-1"}


def test_placeholders_live_in_the_test_namespace_and_carry_the_keys_read() -> None:
    made = fitting.placeholders(fitting.needs(objects()), namespace="t-x")
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in made)
    assert kinds == [
        ("ConfigMap", "shared-env"),
        ("ConfigMap", "train-config"),
        ("PersistentVolumeClaim", "imagenet"),
        ("Secret", "ghcr-pull"),
        ("Secret", "wandb"),
        ("ServiceAccount", "trainer"),
    ]
    assert all(o["metadata"]["namespace"] == "t-x" for o in made)
    by_name = {o["metadata"]["name"]: o for o in made}
    assert by_name["wandb"]["stringData"] == {"api-key": fitting.SECRET_VALUE}
    assert by_name["ghcr-pull"]["type"] == "kubernetes.io/dockerconfigjson"
    assert by_name["train-config"]["data"] == {"hp.yaml": fitting.SECRET_VALUE}
    cluster = fitting.cluster_placeholders(fitting.needs(objects()), namespace="t-x")
    assert sorted(o["kind"] for o in cluster) == ["PersistentVolume", "PriorityClass"]
    volume = next(o for o in cluster if o["kind"] == "PersistentVolume")
    assert volume["spec"]["claimRef"] == {"namespace": "t-x", "name": "imagenet"}


def test_what_the_batch_renders_itself_is_not_made_again() -> None:
    sweep = TEAM.replace("variants: [sequential]", "variants: [parallel]").replace(
        "envFrom: [{configMapRef: {name: shared-env}}]",
        "envFrom: [{configMapRef: {name: shared-env}, prefix: CFG_}]",
    )
    found = fitting.needs(objects(sweep))
    rendered = {o["metadata"]["name"] for o in objects(sweep) if o["kind"] == "ConfigMap"}
    assert rendered and not rendered & set(found.config_maps)


class FakeCluster:
    """Nodes and objects in memory: what `fitting.fit` reads and writes."""

    def __init__(self, nodes: dict[str, dict[str, str]]) -> None:
        from types import SimpleNamespace as NS

        self.objects: list[dict[str, Any]] = []
        self.reads: list[str] = []
        self.nodes = {
            name: NS(metadata=NS(name=name, labels=dict(labels), annotations={}))
            for name, labels in nodes.items()
        }
        outer = self

        class Core:
            def list_node(self) -> Any:
                return NS(items=list(outer.nodes.values()))

            def read_namespaced_persistent_volume_claim(self, name: str, namespace: str) -> Any:
                outer.reads.append(name)
                return NS(status=NS(phase="Bound"))

            def patch_node(self, name: str, body: dict[str, Any]) -> None:
                meta = outer.nodes[name].metadata
                meta.labels.update(body["metadata"].get("labels", {}))
                meta.annotations.update(body["metadata"].get("annotations", {}))

        self.core = Core()

    def exists(self, kind: str, namespace: str | None, name: str) -> bool:
        return any(o["kind"] == kind and o["metadata"]["name"] == name for o in self.objects)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects.append(obj)
        return obj


def test_fit_labels_nodes_but_never_changes_a_nodes_own_labels() -> None:
    cluster = FakeCluster({"cpu-0": {"pool": "cpu"}, "fresh-0": {}})
    made = fitting.fit(cluster, objects(), namespace="t-x", throwaway=True)  # type: ignore[arg-type]
    assert cluster.nodes["cpu-0"].metadata.labels["pool"] == "cpu"  # its own: kept
    assert cluster.nodes["fresh-0"].metadata.labels == {"pool": "a100", "zone": "eu-1"}
    assert cluster.nodes["cpu-0"].metadata.labels["zone"] == "eu-1"
    assert {o["kind"] for o in cluster.objects} >= {"PriorityClass", "PersistentVolume"}
    assert cluster.reads == ["imagenet"]  # the claim was awaited Bound
    assert any(line.startswith("node labels") for line in made)
    # A later batch on another pool: the suite's own label moves, the node's own stays.
    later = TEAM.replace("pool: a100", "pool: h100")
    fitting.fit(cluster, objects(later), namespace="t-y", throwaway=True)  # type: ignore[arg-type]
    assert cluster.nodes["fresh-0"].metadata.labels["pool"] == "h100"
    assert cluster.nodes["cpu-0"].metadata.labels["pool"] == "cpu"


def test_a_users_cluster_gets_namespaced_placeholders_only() -> None:
    cluster = FakeCluster({"n": {}})
    fitting.fit(cluster, objects(), namespace="t-x", throwaway=False)  # type: ignore[arg-type]
    assert {o["kind"] for o in cluster.objects} == {
        "ServiceAccount",
        "Secret",
        "ConfigMap",
        "PersistentVolumeClaim",
    }
    assert cluster.nodes["n"].metadata.labels == {}
