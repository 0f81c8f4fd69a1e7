"""`mlgen argocd-health`: print the Job health check Argo CD needs for queued batches."""

from __future__ import annotations

import typer

from mlgen import health, manifest
from mlgen.cli.common import reported


def argocd_health_command() -> None:
    """Print the argocd-cm patch that keeps a queued (Kueue) chain in order under Argo CD.

    Argo CD's own Job health calls a Job Healthy once Kueue admits it, while it still
    runs, so the next sync wave starts too soon. Merge this into your argocd-cm, e.g.
    `mlgen argocd-health > job-health.yaml; kubectl -n argocd patch configmap argocd-cm
    --patch-file job-health.yaml` (or add the key where you manage Argo CD's settings).
    """
    with reported():
        typer.echo(manifest.dump(health.argocd_patch()), nl=False)
