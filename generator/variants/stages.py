"""Stages: prep → sweep → eval in one batch; stage k+1 starts only after stage k completed.

Each stage is one sync wave (Argo CD, `mlgen apply`) and, with `spec.flux`, one Flux
Kustomization that `dependsOn` the previous stage's with `wait: true`
(`<batch>/flux-stages/kustomizations.yaml`, beside the sequential chain's `flux/`).
A stage renders as:

- one job: a plain Job, as a waves step;
- jobs that can share one pod template (they differ only in args, env and
  expectedDuration): one Indexed Job running `parallelism` of them at a time, its
  per-index args and env in a ConfigMap of the same wave and directory;
- jobs that differ in their pod template (image, resources, ...): a plain Job each, all
  in the stage's wave, so all at once: the stage's parallelism must then allow all of
  them (a Job per job cannot be held to p without a scheduler of its own).

Names chain per stage: every Job's hash covers the hash of the stage before it, so an
edit re-runs its stage and every later one, never an earlier one. Within a stage, an
edit of one member re-runs the whole Indexed Job (one pod template), or only that
member's Job where each job has its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlgen import checks, contract, flux, indexed_job, naming, schedule, spec
from mlgen.errors import RenderError
from mlgen.variants import waves
from mlgen.variants.base import JOB_ENDS, Driver, Rendered, durations

if TYPE_CHECKING:
    from mlgen.timeline import Timeline


@dataclass(frozen=True)
class Group:
    """How one stage runs: "job" (one plain Job), "indexed" (one Indexed Job, p at a
    time) or "jobs" (a plain Job a member, all at once)."""

    stage: spec.Stage
    jobs: tuple[spec.Job, ...]
    form: str


def groups(batch: spec.Batch) -> list[Group]:
    """Each stage and the form it renders in (the rule in this module's docstring)."""
    out = []
    for stage in batch.stages:
        jobs = batch.stage_jobs(stage)
        if len(jobs) == 1:
            form = "job"
        elif _differs(batch, jobs):
            form = "jobs"
        else:
            form = "indexed"
        out.append(Group(stage=stage, jobs=jobs, form=form))
    return out


def _differs(batch: spec.Batch, jobs: tuple[spec.Job, ...]) -> str:
    """Why these jobs cannot share one pod template ("" when they can): a field of the
    template, or secretEnv (every pod of an Indexed Job would get every job's secrets)."""
    differs = indexed_job.difference(dataclasses.replace(batch, jobs=jobs))
    if differs:
        return differs
    first = jobs[0]
    for job in jobs[1:]:
        if job.secret_env != first.secret_env:
            return (
                f"{batch.at_own('secretEnv', job.index, first.index)}: job {job.name!r} "
                f"differs from job {first.name!r} in secretEnv"
            )
    return ""


class Stages:
    name = "stages"
    directory = "stages"
    ends = JOB_ENDS
    done_when_pod_succeeds = False  # a stage of many pods ends with its Jobs' conditions
    driver: Driver = "client"  # what starts stage k+1: apply or a GitOps tool
    rounds = True  # a stage's group starts p pods together
    overhead = 0.1  # seconds between stages, measured on the local control plane (waves)
    # Its own Flux directory: a Flux root applies every file of the directory it points
    # at, so a batch rendering the sequential chain too keeps the two apart.
    companions: tuple[str, ...] = ("flux-stages",)
    entrypoint = True  # an Indexed Job stage starts through mlgen's /bin/sh entrypoint

    def fits(self, batch: spec.Batch) -> str:
        if not batch.stages:
            return (
                "the stages variant runs spec.stages, which this batch has none of; add "
                "spec.stages and a stage to every job, or list sequential and parallel in "
                "spec.variants"
            )
        return ""

    def render(self, batch: spec.Batch) -> Rendered:
        files: dict[str, list[dict[str, Any]]] = {}
        resources: list[str] = []
        chain: list[flux.Link] = []
        previous = ""
        width = len(str(len(batch.stages) - 1))
        for group in groups(batch):
            stage = group.stage
            folder = f"{stage.index:0{width}d}-{stage.name}"
            notes = {
                contract.SYNC_WAVE: str(stage.index),
                contract.STRATEGY: self.name,
                contract.ON_FAILURE: stage.on_failure,
                contract.STAGE_NAME: stage.name,
            }
            previous, config, jobs = _group(batch, group, previous=previous, notes=notes)
            if config is not None:
                files[f"stages/{folder}/params.yaml"] = [config]
                resources.append(f"{folder}/params.yaml")
            files[f"stages/{folder}/job.yaml"] = jobs
            resources.append(f"{folder}/job.yaml")
            chain.append(
                flux.Link(
                    name=f"{batch.name}-stages-{folder}",
                    path=f"stages/{folder}",
                    seconds=_seconds(group),
                    where=batch.at(f"spec.stages[{stage.index}].name"),
                )
            )
        if batch.flux is not None:
            files |= flux.files(batch, "flux-stages", flux.links(batch, chain))
        return Rendered(files=files, resources=resources)

    def predict(
        self,
        batch: spec.Batch,
        *,
        parallelism: int,
        overheads: Mapping[str, float],
        ideal: bool = False,
    ) -> float:
        """Σ over stages of each stage's schedule (an Indexed Job's list schedule with the
        Job controller's gap between a slot's jobs, the parallel strategy's overhead),
        the completion lag of each stage, and this strategy's overhead between stages."""
        lag = 0.0 if ideal else schedule.COMPLETION_LAG
        inner = overheads.get("parallel", overheads[self.name])
        total = 0.0
        for group in groups(batch) if batch.stages else []:
            spans = durations(group.jobs)
            if group.form == "indexed":
                total += schedule.parallel(
                    spans,
                    parallelism=group.stage.parallelism,
                    overhead=inner,
                    lag=lag,
                    rate=None if ideal else schedule.START_RATE,
                )
            else:
                total += max(spans) + lag
        return total + overheads[self.name] * max(len(batch.stages) - 1, 0)

    def check(self, timeline: Timeline, batch: spec.Batch, *, epsilon: checks.Epsilon) -> None:
        checks.all_complete(timeline)
        checks.ran_for(timeline, checks.planned(batch), slack=epsilon.slack)
        # Two drivers: the client starts each stage, the Job controller the rounds in it.
        within = epsilon.round if epsilon.round is not None else epsilon.controller
        checks.stages_bounds(timeline, batch, between=epsilon.client, within=within)


def _group(
    batch: spec.Batch, group: Group, *, previous: str, notes: dict[str, str]
) -> tuple[str, dict[str, Any] | None, list[dict[str, Any]]]:
    """(the stage's hash, its params ConfigMap or None, its Jobs)."""
    stage = group.stage
    if group.form == "indexed":
        sub = dataclasses.replace(batch, jobs=group.jobs)
        indexed_job.check_shared(
            sub, fix=f"give stage {stage.name!r} jobs that each need their own pod template"
        )
        out = indexed_job.render(
            sub,
            variant=Stages.directory,
            strategy=Stages.name,
            infix=stage.name,
            parallelism=stage.parallelism,
            max_failed_indexes=None,  # a failed member never stops its siblings
            previous=previous,
            where=batch.at(f"spec.stages[{stage.index}].name"),
            what="batch or stage name",
        )
        indexed = dict(out.job)
        job_meta = dict(indexed["metadata"])  # type: ignore[call-overload]
        job_meta["annotations"] = {**job_meta["annotations"], **notes}
        indexed["metadata"] = job_meta
        config = dict(out.config)
        config_meta = dict(config["metadata"])  # type: ignore[call-overload]
        # The same wave as its Job: Argo CD applies a wave's ConfigMaps before its Jobs.
        config_meta["annotations"] = {contract.SYNC_WAVE: notes[contract.SYNC_WAVE]}
        config["metadata"] = config_meta
        digest = naming.content_hash({"job": job_meta["name"], "previous": previous})
        return digest, config, [indexed]
    waves.no_attempt_count(batch, group.jobs, fix="give the stage jobs that share one pod template")
    # A Job each starts them all; under a quota cap Kueue admits as many as fit.
    if group.form == "jobs" and (stage.asked or stage.parallelism) < len(group.jobs):
        own = f"spec.stages[{stage.index}].parallelism"
        source = own if own in batch.located.lines else "spec.parallelism"
        raise RenderError(
            f"{_differs(batch, group.jobs)}, so stage {stage.name!r} renders a Job each, which "
            f"start together; its parallelism {stage.asked or stage.parallelism} (from "
            f"{batch.at(source)}) "
            f"cannot be kept for {len(group.jobs)} jobs. Give the stage's jobs one pod "
            "template (they may differ in args, env and expectedDuration), or raise the "
            "stage's parallelism to its job count"
        )
    digests, jobs = [], []
    for job in group.jobs:
        digest, manifest = waves.one_job(
            batch, job, previous=previous, variant=Stages.directory, step=stage.index, notes=notes
        )
        digests.append(digest)
        jobs.append(manifest)
    return naming.content_hash({"jobs": sorted(digests), "previous": previous}), None, jobs


def _seconds(group: Group) -> int:
    """How long Flux waits on a stage: twice its schedule, or the schedule of every job
    running to its timeout on each of its 1 + retries attempts when that is longer
    (flux.py raises both to at least 10 minutes)."""
    p = group.stage.parallelism
    planned, _ = schedule.slots(durations(group.jobs), p)
    worst, _ = schedule.slots(
        [float((1 + j.retries) * (j.timeout_seconds or 0)) for j in group.jobs], p
    )
    return int(max(2 * planned, worst))


VARIANT = Stages()
