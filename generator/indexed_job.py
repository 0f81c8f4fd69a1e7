"""One Indexed Job for a whole batch, its per-index args and env carried as data.

Used by the parallel variant (parallelism p) and by the sequential `indexed`
strategy (parallelism 1: the Job controller starts the lowest pending index first).
All jobs share one pod template, so they may differ only in args, env,
expectedDuration and simulation hints (not secretEnv: see entrypoint.py); the env and
args travel in a ConfigMap whose files a POSIX `sh` entrypoint reads for
`$JOB_COMPLETION_INDEX`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from mlgen import contract, entrypoint, naming, pod, podfields, spec
from mlgen.errors import RenderError

CONFIGMAP_LIMIT = 1024 * 1024
_HEADROOM = 16 * 1024  # metadata, labels and the entrypoint itself

# Fields that end up in the shared pod template, by their batch-file name.
_SHARED: dict[str, Callable[[spec.Job], object]] = {
    "image": lambda j: j.image,
    "command": lambda j: j.command,
    "resources": lambda j: (j.requests, j.limits),
    "retries": lambda j: j.retries,
    "timeout": lambda j: j.timeout_seconds,
    "nodeSelector": lambda j: j.node_selector,
    "tolerations": lambda j: j.tolerations,
    "serviceAccountName": lambda j: j.service_account,
    "shmSize": lambda j: j.shm_size,
    "runAsUser": lambda j: j.run_as_user,
    "fsGroup": lambda j: j.fs_group,
    "labels": lambda j: j.labels,
    **podfields.SHARED,
}


@dataclass(frozen=True)
class Rendered:
    job: dict[str, object]
    config: dict[str, object]


def difference(batch: spec.Batch) -> str:
    """Where two jobs differ in a field one pod template must share ("" when none do)."""
    first = batch.jobs[0]
    for job in batch.jobs[1:]:
        for field, get in _SHARED.items():
            if get(job) != get(first):
                return (
                    f"{batch.at_own(field, job.index, first.index)}: job {job.name!r} differs "
                    f"from job {first.name!r} in {field}"
                )
    return ""


def check_shared(batch: spec.Batch, *, fix: str) -> None:
    """Raise when two jobs differ in a field that must be the same for one pod template."""
    differs = difference(batch)
    if differs:
        raise RenderError(
            f"{differs}, so they cannot share the one pod template of an Indexed Job; {fix}"
        )
    first = batch.jobs[0]
    if first.command is None:
        raise RenderError(
            f"{batch.at('spec.defaults.command')}: an Indexed Job needs the "
            "command to exec after picking its index's args; set command "
            "(e.g. [python, -m, train])"
        )
    entrypoint.check(batch, fix=fix)


def render(
    batch: spec.Batch,
    *,
    variant: str,
    strategy: str,
    infix: str,
    parallelism: int,
    max_failed_indexes: int | None,
    previous: str = "",
    where: str | None = None,
    what: str = "batch or job name",
) -> Rendered:
    """The ConfigMap and the Indexed Job; `variant` is the output directory, `strategy`
    the variant unit (recorded on the Job for `mlgen apply` and the timeline), `infix`
    the short word in the Job's name (`<batch>-<infix>-<hash>`), `previous` the hash of
    what runs before it (a stage's predecessors), which enters the Job's own."""
    jobs = batch.jobs
    first = jobs[0]
    common_env = {k: v for k, v in first.env.items() if all(j.env.get(k) == v for j in jobs[1:])}
    data: dict[str, str] = {contract.shared_env_key(k): v for k, v in common_env.items()}
    for i, job in enumerate(jobs):  # the completion index, whatever the job's place in the file
        for k, arg in enumerate(job.args):
            data[contract.arg_key(i, k)] = arg
        data[contract.env_key(i, contract.JOB_NAME_ENV)] = job.name
        for name, value in job.env.items():
            if name not in common_env:
                data[contract.env_key(i, name)] = value
    data[contract.ENTRYPOINT_KEY] = entrypoint.script(batch)
    size = sum(len(k.encode()) + len(v.encode()) for k, v in data.items())
    if size > CONFIGMAP_LIMIT - _HEADROOM:
        raise RenderError(
            f"{batch.at('spec.jobs')}: the per-index args and env of batch {batch.name!r} "
            f"take {size:,} bytes, more than one ConfigMap holds (1 MiB); split the batch "
            f"into batches of about {max(1, len(jobs) * (CONFIGMAP_LIMIT - _HEADROOM) // size)} "
            "jobs, or move shared values into spec.defaults"
        )
    data = dict(sorted(data.items(), key=lambda kv: _key_order(kv[0])))
    config_labels = pod.labels(batch, variant=variant)
    config_name = naming.config_name(batch.name, variant, naming.content_hash(data))
    config: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": config_name,
            "namespace": batch.namespace,
            "labels": config_labels,
            # Argo CD: the data must exist before the Job's pods start.
            "annotations": {contract.SYNC_WAVE: "-1"},
        },
        "data": data,
    }
    # Only reserved names in the pod's env (entrypoint.check: every job's secretEnv is the
    # same); the entrypoint hands them to the command under their own names.
    env = [
        pod.secret_ref(f"{contract.SECRET_ENV_PREFIX}{slot}", ref)
        for slot, ref in enumerate(first.secret_env.values())
    ]
    assert first.command is not None
    template = pod.template(
        batch,
        # One pod template for every index: raising any job's rerun re-runs them all.
        dataclasses.replace(first, rerun=max(j.rerun for j in jobs)),
        labels=pod.labels(batch, variant=variant, job=first),
        annotations=pod.hints(batch, jobs),
        command=["/bin/sh", f"{pod.PARAMS_MOUNT}/{contract.ENTRYPOINT_KEY}"],
        args=pod.literals(first.command),
        env=env,
        extra_volumes=[{"name": pod.PARAMS_VOLUME, "configMap": {"name": config_name}}],
        extra_mounts=[{"name": pod.PARAMS_VOLUME, "mountPath": pod.PARAMS_MOUNT, "readOnly": True}],
    )
    job_spec: dict[str, object] = {
        "completionMode": "Indexed",
        "completions": len(jobs),
        "parallelism": parallelism,
        "backoffLimitPerIndex": first.retries,
    }
    if max_failed_indexes is not None:
        job_spec["maxFailedIndexes"] = max_failed_indexes
    job_spec["podReplacementPolicy"] = "Failed"
    job_spec["podFailurePolicy"] = pod.failure_policy()
    job_spec["template"] = template
    name = naming.job_name(
        batch.name,
        infix,
        digest=naming.content_hash(
            batch.hashed({"spec": job_spec, "previous": previous} if previous else job_spec)
        ),
        completions=len(jobs),
        where=where or batch.at("metadata.name"),
        what=what,
    )
    job_labels = pod.labels(batch, variant=variant)
    job_labels |= batch.queue_labels()
    # Mutable metadata, outside the hash: which job each index runs, and the plan.
    notes = {
        contract.SYNC_WAVE: "0",
        contract.STRATEGY: strategy,
        contract.JOB_NAMES: ",".join(j.name for j in jobs),
        contract.PLANNED_DURATIONS: pod.planned(jobs),
    }
    manifest: dict[str, object] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": batch.namespace,
            "labels": job_labels,
            "annotations": notes,
        },
        "spec": job_spec,
    }
    return Rendered(job=manifest, config=config)


def _key_order(key: str) -> tuple[int, str, int, str]:
    """Index, then kind, then argument position: a stable, readable order."""
    index, _, rest = key.partition(".")
    if not index.isdigit():
        return (-1, key, 0, "")
    kind, _, sub = rest.partition(".")
    return (int(index), kind, int(sub) if sub.isdigit() else 0, sub)
