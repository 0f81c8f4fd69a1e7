"""The Job health the GitOps tools need to keep a queued chain in order.

Kueue creates a batch's Jobs suspended and unsuspends each once its queue admits it
(`spec.queue`). Both tools then misread a step as done (read in their source, proven by
`conformance/test_kueue.py`):
- Argo CD v2.14's built-in Job health counts any Suspended condition as finished, so a
  step that was admitted and still runs reads Healthy, and the next sync wave starts.
  The fix is a health check of its own (`ARGOCD_KEY`, Lua) in `argocd-cm`: cluster
  settings, not an app's manifests, so `mlgen argocd-health` prints it to install.
- Flux's built-in Job reader calls a suspended Job Current, so a queued step is Ready
  before it starts and the next `dependsOn` Kustomization applies. Its
  `healthCheckExprs` can say otherwise, but kustomize-controller v1.9 asks its built-in
  Job reader first unless the Kustomization impersonates a ServiceAccount (then the
  expressions come first). So a queued batch's chain names one (`access` renders it,
  with a Role for exactly what the chain applies) and carries `FLUX_JOB`.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from mlgen import contract, spec, variants

ARGOCD_KEY = "resource.customizations.health.batch_Job"
PRUNE = "kustomize.toolkit.fluxcd.io/prune"  # "disabled": Flux never deletes the object

# CEL over the Job; kustomize-controller asks inProgress, then failed, then current.
FLUX_JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "inProgress": "has(spec.suspend) && spec.suspend == true",
    "failed": (
        "has(status.conditions) && "
        "status.conditions.exists(c, c.type == 'Failed' && c.status == 'True')"
    ),
    "current": (
        "has(status.conditions) && "
        "status.conditions.exists(c, c.type == 'Complete' && c.status == 'True')"
    ),
}


def argocd_lua() -> str:
    return (resources.files("mlgen.templates") / "argocd-job-health.lua").read_text("utf-8")


def argocd_patch() -> dict[str, Any]:
    """The `argocd-cm` patch that installs the health check (merge it into yours)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "argocd-cm", "namespace": "argocd"},
        "data": {ARGOCD_KEY: argocd_lua()},
    }


def argocd_note(batch: spec.Batch) -> str:
    """What a queued batch synced by sync waves needs in Argo CD ('' when nothing): a
    note, not a warning, since the fix lives in the cluster's settings, not the batch."""
    waves = [u.directory for u in variants.for_batch(batch) if u.driver == "client"]
    if not batch.queue or not waves or len(batch.jobs) < 2:
        return ""
    return (
        f"{batch.at('spec.queue')}: under Argo CD, install mlgen's Job health check once "
        "(`mlgen argocd-health`): Argo CD's own reads a Job Healthy when Kueue admits it, "
        f"and the next sync wave of {' and '.join(waves)} would start while it runs"
    )


def flux_account(batch: spec.Batch, directory: str) -> str:
    """The ServiceAccount a queued batch's Flux chain in `directory` (flux, flux-stages)
    impersonates: one per chain, so that two chains never share (or prune) one."""
    return f"mlgen-{batch.name}-{directory}"


def access(batch: spec.Batch, directory: str) -> list[dict[str, Any]]:
    """The ServiceAccount (beside the Kustomizations) and what it may do in the batch's
    namespace: apply, read and prune the chain's Jobs and ConfigMaps, nothing else. The
    Kustomization that applies the chain itself (the user's) creates them, and never
    prunes them: removing the chain deletes its Kustomizations, whose own pruning of the
    Jobs runs afterwards, as this ServiceAccount."""
    assert batch.flux is not None
    name = flux_account(batch, directory)
    labels = {contract.MANAGED_BY: contract.MANAGER, contract.PART_OF: batch.name}
    kept = {PRUNE: "disabled"}
    verbs = ["get", "list", "watch", "create", "update", "patch", "delete"]
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": name,
                "namespace": batch.flux.namespace,
                "labels": labels,
                "annotations": kept,
            },
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {
                "name": name,
                "namespace": batch.namespace,
                "labels": labels,
                "annotations": kept,
            },
            "rules": [
                {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": verbs},
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": verbs},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {
                "name": name,
                "namespace": batch.namespace,
                "labels": labels,
                "annotations": kept,
            },
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [
                {"kind": "ServiceAccount", "name": name, "namespace": batch.flux.namespace}
            ],
        },
    ]
