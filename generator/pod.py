"""Pod templates: one job's container, security defaults, volumes and annotations.

Everything is built as plain data and serialised afterwards, so no value can ever
inject YAML. Kubernetes expands `$(VAR)` in command, args and env values; every `$`
a user wrote is doubled so that the process receives exactly the batch file's text.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlgen import naming, spec, units

CONTAINER = "main"
PARAMS_MOUNT = "/etc/mlgen/params"
SHM_VOLUME = "dshm"
PARAMS_VOLUME = "mlgen-params"

ANNOTATION_DURATION = "mlgen.io/expected-duration"
ANNOTATION_DURATIONS = "mlgen.io/expected-durations"
ANNOTATION_FAILURE = "mlgen.io/simulate-failure"


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


def hints(jobs: Sequence[spec.Job]) -> dict[str, str]:
    """Simulation hints; one value for all pods, or a comma list by completion index."""
    out: dict[str, str] = {}
    durations = [units.go_duration(j.expected_seconds) if j.expected_seconds is not None
                 else "" for j in jobs]
    if len(set(durations)) == 1:
        if durations[0]:
            out[ANNOTATION_DURATION] = durations[0]
    else:
        out[ANNOTATION_DURATIONS] = ",".join(durations)
    failures = [failure_code(j) for j in jobs]
    if any(failures):
        out[ANNOTATION_FAILURE] = failures[0] if len(set(failures)) == 1 else ",".join(failures)
    return out


def template(batch: spec.Batch, job: spec.Job, *, labels: dict[str, str],
             annotations: dict[str, str], command: list[str] | None, args: list[str],
             env: list[dict[str, object]], extra_volumes: Sequence[dict[str, object]] = (),
             extra_mounts: Sequence[dict[str, object]] = ()) -> dict[str, object]:
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
    container["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "runAsUser": job.run_as_user,
    }
    volumes = list(extra_volumes)
    mounts = list(extra_mounts)
    if job.shm_size:
        # PyTorch's DataLoader workers share tensors through /dev/shm, 64 MiB by default.
        volumes.append({"name": SHM_VOLUME, "emptyDir": {"medium": "Memory",
                                                         "sizeLimit": job.shm_size}})
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
    pod["securityContext"] = {
        "runAsNonRoot": True,
        "runAsUser": job.run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if job.node_selector:
        pod["nodeSelector"] = dict(job.node_selector)
    if job.tolerations:
        pod["tolerations"] = [dict(t) for t in job.tolerations]
    pod["containers"] = [container]
    if volumes:
        pod["volumes"] = volumes
    metadata: dict[str, object] = {"labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    return {"metadata": metadata, "spec": pod}


def labels(batch: spec.Batch, *, variant: str, job: spec.Job | None = None,
           step: int | None = None) -> dict[str, str]:
    """Labels every object carries; a job's own labels only where one job is meant."""
    out = {naming.MANAGED_BY: "mlgen", naming.PART_OF: batch.name, naming.VARIANT: variant}
    out.update(batch.labels)
    if job is not None:
        out.update(job.labels)
    if step is not None:
        out[naming.STEP] = str(step)
    return out


def failure_policy() -> dict[str, object]:
    """Evictions and preemptions are not the job's fault: never count them as retries."""
    return {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
