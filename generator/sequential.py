"""The sequential-ordered variant: each job starts only after the previous one completed.

`waves` renders one Job per entry, each with its own pod template, ordered by Argo CD
sync waves, by `mlgen apply`, and (optionally) by chained Flux Kustomizations.
`indexed` renders one Indexed Job with parallelism 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlgen import indexed, naming, pod, spec

SYNC_WAVE = "argocd.argoproj.io/sync-wave"
STEP_NAME = "mlgen.io/step-name"
ON_FAILURE = "mlgen.io/on-failure"  # read by `mlgen apply`: stop or continue the chain


@dataclass(frozen=True)
class Step:
    """One rendered step of the waves strategy."""

    number: int
    job: spec.Job
    manifest: dict[str, object]


def waves(batch: spec.Batch) -> list[Step]:
    steps: list[Step] = []
    previous = ""
    for job in batch.jobs:
        labels = pod.labels(batch, variant="sequential", job=job, step=job.index)
        template = pod.template(
            batch, job,
            labels=dict(labels),
            annotations=pod.hints([job]),
            command=pod.literals(job.command) if job.command is not None else None,
            args=pod.literals(job.args),
            env=pod.env_entries(job.env, job.secret_env),
        )
        job_spec: dict[str, object] = {
            "backoffLimit": job.retries,
            "podReplacementPolicy": "Failed",
            "podFailurePolicy": pod.failure_policy(),
            "template": template,
        }
        # Chained: a step's hash covers the previous step's, so editing step k re-runs
        # k and everything after it, and nothing before.
        digest = naming.content_hash({"spec": job_spec, "previous": previous})
        previous = digest
        if batch.queue:
            labels[naming.QUEUE] = batch.queue
        manifest: dict[str, object] = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": naming.job_name(batch.name, job.name, digest=digest,
                                        source=batch.source,
                                        path=f"spec.jobs[{job.index}].name"),
                "namespace": batch.namespace,
                "labels": labels,
                "annotations": {SYNC_WAVE: str(job.index), STEP_NAME: job.name,
                                ON_FAILURE: batch.on_failure},
            },
            "spec": job_spec,
        }
        steps.append(Step(number=job.index, job=job, manifest=manifest))
    return steps


def indexed_job(batch: spec.Batch) -> indexed.Rendered:
    indexed.check_shared(batch, fix="set spec.sequential.strategy: waves, which gives "
                                    "every job its own pod template")
    return indexed.render(batch, variant="sequential", parallelism=1,
                          max_failed_indexes=0 if batch.on_failure == "stop" else None)
