"""Waves: the sequential variant as one Job per step, each with its own pod template.

Order is carried by Argo CD sync waves, by `mlgen apply` (wave by wave), and, when the
batch names a Flux source, by one Flux Kustomization per step chained with `dependsOn`.
A step's name hash covers the previous step's, so editing step k re-runs k and every
step after it, and nothing before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlgen import checks, contract, flux, naming, pod, schedule, spec
from mlgen.errors import RenderError
from mlgen.variants.base import JOB_ENDS, Driver, Rendered, durations

if TYPE_CHECKING:
    from mlgen.timeline import Timeline


@dataclass(frozen=True)
class Step:
    """One rendered step: its position, job, directory and Job object."""

    number: int
    job: spec.Job
    directory: str
    manifest: dict[str, Any]


def steps(batch: spec.Batch) -> list[Step]:
    out: list[Step] = []
    previous = ""
    width = len(str(len(batch.jobs) - 1))
    for job in batch.jobs:
        previous, manifest = one_job(
            batch,
            job,
            previous=previous,
            variant="sequential",
            step=job.index,
            notes={
                contract.SYNC_WAVE: str(job.index),
                contract.STRATEGY: Waves.name,
                contract.ON_FAILURE: batch.on_failure,
            },
        )
        out.append(
            Step(
                number=job.index,
                job=job,
                directory=f"{job.index:0{width}d}-{job.name}",
                manifest=manifest,
            )
        )
    return out


def no_attempt_count(batch: spec.Batch, jobs: Sequence[spec.Job], *, fix: str) -> None:
    """Refuse `simulate.failAttempts` on jobs rendered as plain Jobs, whose pods carry no
    attempt count for KWOK (or a stand-in) to count by."""
    for job in jobs:
        if job.simulate is not None and job.simulate.failAttempts:
            raise RenderError(
                f"{batch.at_job(job.index, 'simulate.failAttempts')}: job {job.name!r} renders "
                "as a plain Job, whose pods carry no attempt count to simulate by; drop "
                f"failAttempts (the job then fails every attempt) or {fix}"
            )


def one_job(
    batch: spec.Batch,
    job: spec.Job,
    *,
    previous: str,
    variant: str,
    step: int,
    notes: dict[str, str],
) -> tuple[str, dict[str, Any]]:
    """One job as a plain Job with its own pod template, and its hash, which covers
    `previous` (the hash of what runs before it): editing an earlier job renames this
    one. `notes` are the run's annotations (wave, strategy, onFailure)."""
    labels = pod.labels(batch, variant=variant, job=job, step=step)
    template = pod.template(
        batch,
        job,
        labels=dict(labels),
        annotations=pod.hints(batch, [job]),
        command=pod.literals(job.command) if job.command is not None else None,
        args=pod.literals(job.args),
        env=[
            *pod.env_entries(job.env, job.secret_env),
            {"name": contract.JOB_NAME_ENV, "value": job.name},
        ],
    )
    job_spec: dict[str, object] = {
        "backoffLimit": job.retries,
        "podReplacementPolicy": "Failed",
        "podFailurePolicy": pod.failure_policy(),
        "template": template,
    }
    digest = naming.content_hash(batch.hashed({"spec": job_spec, "previous": previous}))
    labels |= batch.queue_labels()
    manifest: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": naming.job_name(
                batch.name,
                job.name,
                digest=digest,
                where=batch.at_job(job.index, "name"),
            ),
            "namespace": batch.namespace,
            "labels": labels,
            # Mutable metadata, outside the hash: an estimate edit re-runs nothing.
            "annotations": {
                contract.SYNC_WAVE: notes[contract.SYNC_WAVE],
                contract.STEP_NAME: job.name,
                **notes,
                contract.PLANNED_DURATIONS: pod.planned([job]),
            },
        },
        "spec": job_spec,
    }
    return digest, manifest


class Waves:
    name = "waves"
    directory = "sequential"
    ends = JOB_ENDS
    done_when_pod_succeeds = True
    driver: Driver = "client"
    rounds = False
    overhead = 0.1  # seconds per step, measured on the local control plane
    companions: tuple[str, ...] = ("flux",)
    entrypoint = False

    def render(self, batch: spec.Batch) -> Rendered:
        no_attempt_count(batch, batch.jobs, fix="use spec.sequential.strategy: indexed")
        rendered = steps(batch)
        files = {f"sequential/{s.directory}/job.yaml": [s.manifest] for s in rendered}
        if batch.flux is not None:
            files |= flux.files(batch, "flux", flux.chain(batch, rendered))
        return Rendered(files=files, resources=[f"{s.directory}/job.yaml" for s in rendered])

    def fits(self, batch: spec.Batch) -> str:
        return ""  # any batch runs one job after another (a staged one in stage order)

    def predict(
        self,
        batch: spec.Batch,
        *,
        parallelism: int,
        overheads: Mapping[str, float],
        ideal: bool = False,
    ) -> float:
        lag = 0.0 if ideal else schedule.COMPLETION_LAG
        return schedule.sequential(durations(batch.jobs), overhead=overheads[self.name], lag=lag)

    def check(self, timeline: Timeline, batch: spec.Batch, *, epsilon: checks.Epsilon) -> None:
        checks.check_sequential(timeline, batch, epsilon=epsilon.of(self), slack=epsilon.slack)


VARIANT = Waves()
