"""Pod templates: one job's container, security defaults, volumes and annotations.

Everything is built as plain data and serialised afterwards, so no value can ever
inject YAML. Kubernetes expands `$(VAR)` in command, args and env values; every `$`
a user wrote is doubled so that the process receives exactly the batch file's text.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlgen import contract, podfields, spec, units

CONTAINER = "main"
PARAMS_MOUNT = "/etc/mlgen/params"
SHM_VOLUME = "dshm"
PARAMS_VOLUME = "mlgen-params"


def literal(value: str) -> str:
    """Escape `$` so Kubernetes' `$(VAR)` expansion leaves the value as written."""
    return value.replace("$", "$$")


def literals(values: Sequence[str]) -> list[str]:
    return [literal(v) for v in values]


def env_entries(env: dict[str, str], secret_env: dict[str, str]) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = [{"name": k, "value": literal(v)} for k, v in env.items()]
    entries += [secret_ref(name, ref) for name, ref in secret_env.items()]
    return entries


def secret_ref(name: str, ref: str, *, optional: bool = False) -> dict[str, object]:
    secret, _, key = ref.partition("/")
    selector: dict[str, object] = {"name": secret, "key": key}
    if optional:
        selector["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": selector}}


def failure_code(job: spec.Job) -> str:
    """`<exitCode>` or `<exitCode>/<failAttempts>`; empty when the job should succeed."""
    if job.simulate is None:
        return ""
    code = str(job.simulate.exitCode)
    return f"{code}/{job.simulate.failAttempts}" if job.simulate.failAttempts else code


def planned(jobs: Sequence[spec.Job]) -> str:
    """expectedDuration of each job, by index (`1800s,1200s`; empty when unset): on the Job,
    which is mutable, so editing an estimate renames nothing."""
    return ",".join(
        units.go_duration(j.expected_seconds) if j.expected_seconds is not None else ""
        for j in jobs
    )


def hints(batch: spec.Batch, jobs: Sequence[spec.Job]) -> dict[str, str]:
    """Pod-template hints for KWOK, only for `spec.simulated` batches: one value for all
    pods, or a comma list by completion index. On a simulated cluster they are what a pod
    does (its run time, its exit code), so they are part of the content hash."""
    out: dict[str, str] = {}
    if not batch.simulated:
        return out
    durations = [
        units.go_duration(j.expected_seconds) if j.expected_seconds is not None else ""
        for j in jobs
    ]
    if len(set(durations)) == 1:
        if durations[0]:
            out[contract.EXPECTED_DURATION] = durations[0]
    else:
        out[contract.EXPECTED_DURATIONS] = ",".join(durations)
    failures = [failure_code(j) for j in jobs]
    if any(failures):
        out[contract.SIMULATE_FAILURE] = (
            failures[0] if len(set(failures)) == 1 else ",".join(failures)
        )
    return out


def template(
    batch: spec.Batch,
    job: spec.Job,
    *,
    labels: dict[str, str],
    annotations: dict[str, str],
    command: list[str] | None,
    args: list[str],
    env: list[dict[str, object]],
    extra_volumes: Sequence[dict[str, object]] = (),
    extra_mounts: Sequence[dict[str, object]] = (),
) -> dict[str, object]:
    """The pod template of one Job; `job` supplies everything but argv and env."""
    container: dict[str, object] = {"name": CONTAINER, "image": job.image}
    if command is not None:
        container["command"] = command
    if args:
        container["args"] = args
    if env:
        container["env"] = env
    resources: dict[str, object] = {}
    if job.requests:
        resources["requests"] = dict(job.requests)
    if job.limits:
        resources["limits"] = dict(job.limits)
    if resources:
        container["resources"] = resources
    # runAsUser: 0 (NGC and other root images) needs a batch that opts out of
    # "restricted" (spec.podSecurity); runAsNonRoot would then stop the container.
    root = job.run_as_user == 0
    container["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": not root,
        "runAsUser": job.run_as_user,
    }
    volumes = list(extra_volumes)
    mounts = list(extra_mounts)
    if job.shm_size:
        # PyTorch's DataLoader workers share tensors through /dev/shm, 64 MiB by default.
        volumes.append(
            {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": job.shm_size}}
        )
        mounts.append({"name": SHM_VOLUME, "mountPath": "/dev/shm"})
    if mounts:
        container["volumeMounts"] = mounts
    pod: dict[str, object] = {"restartPolicy": "Never"}
    if job.service_account:
        pod["serviceAccountName"] = job.service_account
    else:
        pod["automountServiceAccountToken"] = False
    if job.timeout_seconds is not None:
        pod["activeDeadlineSeconds"] = job.timeout_seconds
    context: dict[str, object] = {
        "runAsNonRoot": not root,
        "runAsUser": job.run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if job.fs_group is not None:
        # Volumes that support ownership management (PVCs, emptyDir) are made writable
        # by this group: a non-root uid can then write checkpoints to them.
        context["fsGroup"] = job.fs_group
    pod["securityContext"] = context
    if job.node_selector:
        pod["nodeSelector"] = dict(job.node_selector)
    if job.tolerations:
        pod["tolerations"] = [dict(t) for t in job.tolerations]
    pod["containers"] = [container]
    if volumes:
        pod["volumes"] = volumes
    metadata: dict[str, object] = {"labels": labels}
    if job.rerun:  # only when set: a batch without it keeps its names
        annotations = {**annotations, contract.RERUN: str(job.rerun)}
    if annotations:
        metadata["annotations"] = annotations
    # The batch's pod fields and podPatch, then its Pod Security level: before hashing.
    return podfields.apply(batch, job, {"metadata": metadata, "spec": pod}, container=CONTAINER)


def labels(
    batch: spec.Batch, *, variant: str, job: spec.Job | None = None, step: int | None = None
) -> dict[str, str]:
    """Labels every object carries; a job's own labels only where one job is meant."""
    own = {
        contract.MANAGED_BY: contract.MANAGER,
        contract.PART_OF: batch.name,
        contract.VARIANT: variant,
    }
    out = {**own, **batch.labels, **(job.labels if job is not None else {})}
    out.update(own)  # mlgen's keys always win (validation also refuses them in batches)
    if step is not None:
        out[contract.STEP] = str(step)
    return out


def failure_policy() -> dict[str, object]:
    """Evictions and preemptions are not the job's fault: never count them as retries."""
    # `status` is optional from 1.35 and required before: always written.
    return {
        "rules": [
            {
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            }
        ]
    }
