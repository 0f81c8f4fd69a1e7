"""The batch format (`apiVersion: mlgen.io/v1alpha1`, `kind: Batch`) as strict models.

The pydantic models mirror the YAML exactly (camelCase, unknown keys forbidden, no
type coercion: `SEED: 1` is an error, not the string "1", because a silently
converted `0755` or `1e3` would not be the bytes the user meant). `resolve()` then
merges `spec.defaults` into each job and returns plain frozen dataclasses that the
rest of mlgen works with.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from mlgen import contract, features, patch, places, podfields, rules, units, variants

API_VERSION = "mlgen.io/v1alpha1"
DEFAULT_KUBERNETES_VERSION = features.DEFAULT

_DNS_LABEL = re.compile(rules.DNS_LABEL)
_ENV_NAME = re.compile(rules.ENV_NAME)
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SECRET_REF = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)/([-._A-Za-z0-9]+)$")
_K8S_VERSION = re.compile(r"^1\.[0-9]{2}$")


def _dns_label(value: str) -> str:
    return rules.dns_label(value)


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(
            "contains a NUL character, which no process argument or "
            "environment value can carry; remove it"
        )
    return value


def _label_key(key: str) -> str:
    return rules.label_key(key)


def _label_value(value: str) -> str:
    return rules.label_value(value)


def _env_name(name: str) -> str:
    return rules.env_name(name)


def _duration(value: str) -> str:
    rules.duration_seconds(units.parse_duration(value))
    return value


def _positive_duration(value: str) -> str:
    if units.parse_duration(value) <= 0:
        raise ValueError(f"{value!r} is zero; a timeout must be at least 1s")
    rules.deadline_seconds(units.parse_duration(value))
    return value


def _secret_ref(value: str) -> str:
    return rules.secret_ref(value)


def _k8s_version(value: str) -> str:
    if not _K8S_VERSION.fullmatch(value):
        raise ValueError(f'{value!r} is not a Kubernetes minor version; write it like "1.33"')
    features.check(value)
    return value


def _own_label(key: str) -> str:
    return rules.own_label(key)


def _variant(value: str) -> str:
    if value not in variants.directories():
        raise ValueError(
            f"{value!r} is not a variant; use one of {', '.join(variants.directories())}"
        )
    return value


def _strategy(value: str) -> str:
    if value not in variants.strategies("sequential"):
        raise ValueError(
            f"{value!r} is not a sequential strategy; use one of "
            f"{', '.join(variants.strategies('sequential'))}"
        )
    return value


DnsLabel = Annotated[
    str,
    AfterValidator(_dns_label),
    WithJsonSchema({"type": "string", "maxLength": 63, "pattern": _DNS_LABEL.pattern}),
]
Text = Annotated[str, AfterValidator(_no_nul)]
EnvName = Annotated[str, AfterValidator(_env_name)]
LabelKey = Annotated[str, AfterValidator(_label_key)]
OwnLabelKey = Annotated[LabelKey, AfterValidator(_own_label)]
LabelValue = Annotated[str, AfterValidator(_label_value)]
Duration = Annotated[
    str,
    AfterValidator(_duration),
    WithJsonSchema(
        {"type": "string", "pattern": units.DURATION_PATTERN, "examples": ["30s", "20m", "2h"]}
    ),
]


def _number_as_text(value: object) -> object:
    # Kubernetes itself accepts `nvidia.com/gpu: 1` and `cpu: 0.5` unquoted.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


PositiveDuration = Annotated[Duration, AfterValidator(_positive_duration)]
Quantity = Annotated[
    str,
    BeforeValidator(_number_as_text),
    AfterValidator(rules.quantity),
    WithJsonSchema(
        {"anyOf": [{"type": "string"}, {"type": "number"}], "examples": ["2", "500m", "8Gi"]}
    ),
]
SecretRef = Annotated[str, AfterValidator(_secret_ref)]
Variant = Annotated[
    str, AfterValidator(_variant), WithJsonSchema({"enum": list(variants.directories())})
]
Strategy = Annotated[
    str,
    AfterValidator(_strategy),
    WithJsonSchema({"enum": list(variants.strategies("sequential"))}),
]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, use_attribute_docstrings=True
    )


ResourceName = Annotated[str, AfterValidator(rules.resource_name)]
Image = Annotated[str, AfterValidator(_no_nul), AfterValidator(rules.image)]
Command = Annotated[list[Text], AfterValidator(rules.command)]
UserId = Annotated[
    int,
    AfterValidator(rules.user_id),
    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": rules.INT32_MAX}),
]
GroupId = Annotated[
    int,
    AfterValidator(rules.group_id),
    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": rules.INT32_MAX}),
]


class Resources(_Model):
    requests: dict[ResourceName, Quantity] = Field(default_factory=dict)
    """What the scheduler reserves for each pod, by resource name (cpu: "2", memory: 8Gi);
    default none."""
    limits: dict[ResourceName, Quantity] = Field(default_factory=dict)
    """The most each pod may use, by resource name; GPUs (nvidia.com/gpu) go here, equal to
    their request; default none."""


class Toleration(_Model):
    key: str | None = None
    """The taint key it matches; left out with operator Exists, it matches every taint."""
    operator: Literal["Exists", "Equal"] | None = None
    """Exists (any value) or Equal (the value must match); default Equal."""
    value: str | None = None
    """The taint value to match, with operator Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """The taint effect it tolerates (NoSchedule, PreferNoSchedule, NoExecute); default every
    effect."""
    tolerationSeconds: int | None = None
    """With NoExecute: seconds a pod stays on a node after the taint appears; default for ever."""

    @model_validator(mode="after")
    def _api_rules(self) -> Toleration:
        rules.toleration(self.key, self.operator, self.value, self.effect, self.tolerationSeconds)
        return self


class Simulate(_Model):
    """Hints for a simulated cluster (KWOK); a real cluster ignores them."""

    exitCode: int = Field(ge=1, le=255)
    """The exit code a simulated attempt fails with, 1 to 255."""
    failAttempts: int | None = Field(default=None, ge=1, le=rules.INT32_MAX)
    """Fail only this many first attempts, then succeed; default every attempt fails."""


class JobFields(_Model):
    """Every field a job may set; `spec.defaults` holds the same ones."""

    image: Image | None = None
    """The container image, with a tag or digest; required here or in spec.defaults."""
    command: Command | None = None
    """The container's command as a list (e.g. [python, -m, train]); default the image's
    entrypoint, but an Indexed Job needs one."""
    args: list[Text] | None = None
    """Arguments after the command; default none."""
    env: dict[EnvName, Text] | None = None
    """Environment variables, name to string value; a job's own are merged over
    spec.defaults.env."""
    secretEnv: dict[EnvName, SecretRef] | None = None
    """Environment variables read from Secrets, name to <secret>/<key>; default none."""
    resources: Resources | None = None
    """CPU, memory and accelerator requests and limits of each pod; default none (validate
    warns)."""
    retries: int | None = Field(default=None, ge=0, le=10_000)
    """How many times a failed pod is retried (backoffLimit, per index in an Indexed Job);
    default 0."""
    timeout: PositiveDuration | None = None
    """Longest a pod attempt may run, a duration like 30s, 20m or 2h (activeDeadlineSeconds);
    default no limit."""
    expectedDuration: Duration | None = None
    """How long the job usually runs, a duration like 20m; for estimates, conformance bounds and
    simulated runs; default none."""
    nodeSelector: dict[LabelKey, LabelValue] | None = None
    """Node labels a pod's node must carry; default none."""
    tolerations: list[Toleration] | None = None
    """Taints the pods tolerate, e.g. of dedicated GPU nodes; default none."""
    serviceAccountName: DnsLabel | None = None
    """The service account the pods run as; default none, and then no API token is mounted."""
    shmSize: Quantity | None = None
    """Size of a memory-backed /dev/shm, a quantity like 8Gi (DataLoader workers); default the
    runtime's 64 MiB."""
    runAsUser: UserId | None = None
    """The user id the container runs as, 0 to 2147483647; default 1000 (0 needs
    spec.podSecurity baseline)."""
    fsGroup: GroupId | None = None
    """The group id that owns the pod's volumes (pod securityContext.fsGroup), 0 to 2147483647;
    default unset."""
    labels: dict[OwnLabelKey, LabelValue] | None = None
    """Labels on this job's Job and pods (not mlgen's own keys); default none."""
    simulate: Simulate | None = None
    """How the job fails on a simulated cluster (with spec.simulated: true); a real cluster
    ignores it."""
    # A counter in the pod template, so in the content hash: raising it re-runs the job
    # (and, in a chain, the later steps) through Git, with nothing else changed.
    rerun: int | None = Field(default=None, ge=0, le=1_000_000)
    """A counter: raise it to run an unchanged job again through Git, 0 to 1000000; default 0."""
    # Pod fields (podfields.py): in the pod template, so in the content hash.
    volumes: list[podfields.Volume] | None = None
    """Pod volumes: each a persistentVolumeClaim, configMap, secret or emptyDir; default none."""
    volumeMounts: list[podfields.VolumeMount] | None = None
    """Where the main container mounts the volumes; default none."""
    envFrom: list[podfields.EnvFrom] | None = None
    """ConfigMaps or Secrets whose keys all become environment variables; default none."""
    imagePullSecrets: list[podfields.ObjectName] | None = None
    """Names of Secrets with the registry credentials for the image; default none."""
    podLabels: dict[OwnLabelKey, LabelValue] | None = None
    """Labels on the pods only, not on the Job; default none."""
    podAnnotations: dict[podfields.AnnotationKey, Text] | None = None
    """Annotations on the pods, e.g. sidecar.istio.io/inject; default none."""
    affinity: podfields.Affinity | None = None
    """Kubernetes affinity of the pods (node, pod, anti-affinity), checked for
    spec.kubernetesVersion; default none."""
    priorityClassName: podfields.ObjectName | None = None
    """The PriorityClass of the pods; default the cluster's default priority."""
    podPatch: patch.PodPatch | None = None
    """A patch of the pod template for fields mlgen does not model; it may not change what mlgen
    owns; default none."""


class JobEntry(JobFields):
    name: DnsLabel
    """The job's name, a DNS label unique in the batch: in its Job's name and the chart's rows."""
    stage: DnsLabel | None = None
    """The stage this job runs in, one of spec.stages' names; required when spec.stages is
    set, not allowed otherwise."""


class StageEntry(_Model):
    name: DnsLabel
    """The stage's name, a DNS label unique in the batch: its directory and the jobs' stage."""
    parallelism: int | None = Field(default=None, ge=1, le=100_000)
    """The most of the stage's jobs that run at once; default spec.parallelism, else all of
    them."""
    onFailure: Literal["stop", "continue"] = "stop"
    """What a failed job of this stage does to the later stages: stop them (default) or
    continue with them (mlgen apply; Argo CD and Flux always stop)."""


class Sequential(_Model):
    strategy: Strategy = variants.default("sequential")
    """How the sequential variant runs the chain: waves (a Job per step) or indexed (one Indexed
    Job, one pod at a time); default waves."""
    onFailure: Literal["stop", "continue"] = "stop"
    """What a failed step does to the chain: stop the later steps (default) or continue with
    them."""


class Flux(_Model):
    """Where Flux finds the rendered tree: renders `<batch>/flux/kustomizations.yaml`
    (sequential) and `<batch>/flux-stages/kustomizations.yaml` (stages), with an
    `access.yaml` beside each for a queued batch."""

    source: DnsLabel
    """The Flux GitRepository that holds the rendered manifests."""
    path: Text = "./manifests"
    """The manifest tree's path inside that repository; default ./manifests."""
    namespace: DnsLabel = "flux-system"
    """The namespace of the Kustomizations and the GitRepository; default flux-system."""


class Spec(_Model):
    kubernetesVersion: Annotated[str, AfterValidator(_k8s_version)] = DEFAULT_KUBERNETES_VERSION
    """The cluster's Kubernetes minor version, like "1.33": objects are validated for it;
    default the newest mlgen knows."""
    variants: list[Variant] | None = Field(default=None, min_length=1)
    """The variants to render: sequential (jobs one after another), parallel (one Indexed
    Job, p at a time) and stages (spec.stages in order); default sequential and parallel,
    or stages when spec.stages is set."""
    stages: list[StageEntry] | None = Field(default=None, min_length=1, max_length=1000)
    """Ordered stages (e.g. prep, sweep, eval): stage k+1 starts only after every job of stage
    k completed, and a stage runs its jobs up to its parallelism at a time; each job names its
    stage. Default none."""
    flux: Flux | None = None
    """Also render a chain of Flux Kustomizations for the variants; default none."""
    simulated: bool = False
    """For a simulated cluster (KWOK): pods carry run times and simulate hints; default false."""
    parallelism: int | None = Field(default=None, ge=1, le=100_000)
    """The most pods the parallel variant runs at once, and each stage's default; default one
    per job."""
    sequential: Sequential = Field(default_factory=Sequential)
    """How the sequential variant runs: strategy and onFailure."""
    queue: LabelValue | None = None
    """The Kueue LocalQueue the Jobs are submitted to (Kueue's queue-name label); default
    none."""
    workloadPriorityClass: LabelValue | None = None
    """The Kueue WorkloadPriorityClass of the Jobs (Kueue's priority-class label): the
    queue admits higher priorities first. Needs spec.queue; default none."""
    queueQuota: dict[ResourceName, Quantity] | None = None
    """What spec.queue's ClusterQueue admits at once (its nominal quota), like
    {nvidia.com/gpu: 4}. Kueue admits an Indexed Job whole or not at all, so each one runs
    at most as many pods as fit in it (counted from the jobs' resources; a podPatch's
    sidecars are not counted); estimates count it. Needs spec.queue; default none."""
    podSecurity: Literal["restricted", "baseline", "privileged"] = "restricted"
    """The Pod Security level the namespace enforces and every pod is checked against:
    restricted (default), baseline or privileged."""
    defaults: JobFields = Field(default_factory=JobFields)
    """Fields every job takes unless it sets its own."""
    jobs: list[JobEntry] = Field(min_length=1, max_length=100_000)
    """The jobs, in the order the sequential variant runs them (1 to 100000); a matrix entry
    expands into many."""

    @model_validator(mode="after")
    def _unique(self) -> Spec:
        for field in ("workloadPriorityClass", "queueQuota"):
            if getattr(self, field) and not self.queue:
                raise ValueError(
                    f"{field} needs queue: Kueue reads it only for the Jobs it queues; set "
                    "spec.queue to your LocalQueue"
                )
        if self.variants is not None and len(set(self.variants)) != len(self.variants):
            raise ValueError("variants lists a variant twice; list each at most once")
        stages = [s.name for s in self.stages or []]
        for position, name in enumerate(stages):
            if name in stages[:position]:
                raise ValueError(
                    f"stages[{position}].name {name!r} repeats stages[{stages.index(name)}]"
                    ".name; stage names must be unique"
                )
        seen: dict[str, int] = {}
        for position, job in enumerate(self.jobs):
            if job.name in seen:
                raise ValueError(
                    f"jobs[{position}].name {job.name!r} repeats "
                    f"jobs[{seen[job.name]}].name; job names must be unique"
                )
            seen[job.name] = position
        return self


class Metadata(_Model):
    name: DnsLabel
    """The batch's name, a DNS label: its directory in the manifest tree and the start of every
    object's name."""
    namespace: DnsLabel = "default"
    """The namespace of every rendered object; default default."""
    labels: dict[OwnLabelKey, LabelValue] = Field(default_factory=dict)
    """Labels on every object of the batch; default none."""


class BatchModel(_Model):
    apiVersion: Literal["mlgen.io/v1alpha1"]
    """The format's version: mlgen.io/v1alpha1."""
    kind: Literal["Batch"]
    """Always Batch."""
    metadata: Metadata
    """The batch's name, namespace and labels."""
    spec: Spec
    """The jobs and how to run them."""


@dataclass(frozen=True)
class Job:
    """One job with `spec.defaults` merged in: what every variant renders from."""

    name: str
    index: int
    image: str
    command: tuple[str, ...] | None
    args: tuple[str, ...]
    env: dict[str, str]
    secret_env: dict[str, str]
    requests: dict[str, str]
    limits: dict[str, str]
    retries: int
    timeout_seconds: int | None
    expected_seconds: int | None
    node_selector: dict[str, str]
    tolerations: tuple[dict[str, object], ...]
    service_account: str | None
    shm_size: str | None
    run_as_user: int
    labels: dict[str, str]
    simulate: Simulate | None
    pod: podfields.PodFields = podfields.NONE
    rerun: int = 0
    fs_group: int | None = None
    stage: str | None = None  # the name of its stage (spec.stages), None without stages


@dataclass(frozen=True)
class Stage:
    """One stage, resolved: its position, its jobs' positions in `Batch.jobs` (a run of
    consecutive jobs) and the parallelism it keeps."""

    name: str
    index: int
    jobs: tuple[int, ...]
    parallelism: int
    on_failure: str
    # What the batch asked for before spec.queueQuota capped `parallelism` (0: not capped).
    # A stage of a Job each starts them all; Kueue then admits as many as fit.
    asked: int = 0


@dataclass(frozen=True)
class Batch:
    """A validated batch with its jobs resolved, plus where it came from."""

    name: str
    namespace: str
    labels: dict[str, str]
    kubernetes_version: str
    variants: tuple[str, ...]
    parallelism: int
    strategy: str
    on_failure: str
    queue: str | None
    jobs: tuple[Job, ...]
    source: str  # the batch file as errors name it
    flux: Flux | None = None
    simulated: bool = False  # KWOK hints in pod templates; they then re-run Jobs when edited
    pod_security: str = "restricted"  # restricted | baseline | privileged
    located: places.Places = dataclasses.field(default_factory=places.Places)
    stages: tuple[Stage, ...] = ()  # spec.stages in order; () without stages
    priority_class: str | None = None  # Kueue's WorkloadPriorityClass
    # spec.queueQuota, and when it lowered the parallelism: (pods that fit, why, asked).
    queue_quota: dict[str, str] = dataclasses.field(default_factory=dict)
    quota_cap: tuple[int, str, int] | None = None

    def hashed(self, basis: object) -> object:
        """What a Job's name hashes: `basis`, and its Kueue priority when it has one. Kueue
        refuses to change a Job's priority once admitted, so a new priority is a new Job;
        the queue stays out, so that a queued batch kept its names when priorities came."""
        return {"job": basis, "priority": self.priority_class} if self.priority_class else basis

    def queue_labels(self) -> dict[str, str]:
        """What Kueue reads from every Job: its LocalQueue and priority."""
        labels = {contract.QUEUE: self.queue} if self.queue else {}
        if self.priority_class:
            labels[contract.PRIORITY_CLASS] = self.priority_class
        return labels

    def stage_jobs(self, stage: Stage) -> tuple[Job, ...]:
        return tuple(self.jobs[i] for i in stage.jobs)

    def at(self, path: str) -> str:
        """`file:line: path` for a path of the batch file, the prefix of a problem."""
        return self.located.at(self.source, path)

    def at_job(self, index: int, name: str) -> str:
        """`file:line: path` of where job `index` got its field `name`: its entry, or
        `spec.defaults` when it inherits it (one place for every job that does)."""
        return self.at(self.located.job(index, name))

    def at_own(self, name: str, *indexes: int) -> str:
        """`at_job` of the first of these jobs that writes field `name` itself: two jobs
        that differ are fixed where one of them wrote its own value, not in the defaults."""
        paths = [self.located.job(i, name) for i in indexes]
        written = (p for p in paths if p.startswith("spec.jobs") and p in self.located.lines)
        return self.at(next(written, paths[0]))

    @property
    def source_name(self) -> str:
        """The batch file's name without its directory: what headers record, the same from
        any working directory."""
        return self.source.replace("\\", "/").rsplit("/", 1)[-1]


DEFAULT_RUN_AS_USER = 1000


def resolve(
    model: BatchModel, *, source: str, located: places.Places | None = None
) -> tuple[Batch, list[tuple[str, str]]]:
    """Merge defaults into jobs; return the batch and (path, problem) pairs left unresolved,
    one a job (`places.collapse` says each once)."""
    spec = model.spec
    defaults = spec.defaults
    problems: list[tuple[str, str]] = []
    jobs: list[Job] = []
    for position, entry in enumerate(spec.jobs):
        own = {name: getattr(entry, name) for name in JobFields.model_fields}
        job = JobEntry.model_construct(
            name=entry.name,
            **{
                name: value if value is not None else getattr(defaults, name)
                for name, value in own.items()
            },
        )
        if not job.image:
            problems.append(
                (
                    f"spec.jobs[{position}].image",
                    "no image; set spec.defaults.image or the job's own image",
                )
            )
        pod_fields, pod_problems = podfields.resolve(
            defaults, entry, at=f"spec.jobs[{position}]", version=spec.kubernetesVersion
        )
        problems.extend(pod_problems)
        jobs.append(
            Job(
                name=job.name,
                index=position,
                image=job.image or "",
                command=tuple(job.command) if job.command is not None else None,
                args=tuple(job.args or ()),
                env={**(defaults.env or {}), **(entry.env or {})},
                secret_env={**(defaults.secretEnv or {}), **(entry.secretEnv or {})},
                requests=dict(job.resources.requests) if job.resources else {},
                limits=dict(job.resources.limits) if job.resources else {},
                retries=job.retries or 0,
                timeout_seconds=units.parse_duration(job.timeout) if job.timeout else None,
                expected_seconds=(
                    units.parse_duration(job.expectedDuration) if job.expectedDuration else None
                ),
                node_selector=dict(job.nodeSelector or {}),
                tolerations=tuple(t.model_dump(exclude_none=True) for t in job.tolerations or ()),
                service_account=job.serviceAccountName,
                shm_size=job.shmSize,
                run_as_user=job.runAsUser if job.runAsUser is not None else DEFAULT_RUN_AS_USER,
                labels={**(defaults.labels or {}), **(entry.labels or {})},
                simulate=job.simulate,
                pod=pod_fields,
                rerun=job.rerun or 0,
                fs_group=job.fsGroup,
                stage=entry.stage,
            )
        )
        for found in rules.resources(jobs[-1].requests, jobs[-1].limits):
            field, _, text = found.partition(": ")
            problems.append((f"spec.jobs[{position}].{field}", text))
    stages, stage_problems = _stages(spec, jobs)
    problems.extend(stage_problems)
    chosen = spec.variants or variants.defaults(staged=bool(spec.stages))
    asked = min(spec.parallelism or len(jobs), len(jobs))
    fit, why = rules.room_for(spec.queueQuota or {}, [(j.requests, j.limits) for j in jobs])
    if fit == 0:
        problems.append(
            (
                "spec.queueQuota",
                f"admits no pod at once ({why}), so Kueue would never admit these Jobs; "
                "set it to the ClusterQueue's nominal quota (at least one pod's request), or "
                "lower the jobs' requests",
            )
        )
    batch = Batch(
        name=model.metadata.name,
        namespace=model.metadata.namespace,
        labels=dict(model.metadata.labels),
        kubernetes_version=spec.kubernetesVersion,
        variants=tuple(v for v in variants.directories() if v in chosen),
        parallelism=min(asked, fit or asked),
        strategy=spec.sequential.strategy,
        on_failure=spec.sequential.onFailure,
        queue=spec.queue,
        priority_class=spec.workloadPriorityClass,
        queue_quota=dict(spec.queueQuota or {}),
        quota_cap=(fit, why, asked) if fit and fit < asked else None,
        jobs=tuple(jobs),
        source=source,
        flux=spec.flux,
        simulated=spec.simulated,
        pod_security=spec.podSecurity,
        located=located or places.Places(),
        stages=stages,
    )
    return batch, problems


def _fitting(spec: Spec, jobs: list[Job]) -> int:
    """How many of these jobs' pods spec.queueQuota admits at once (unbounded without)."""
    fit, _ = rules.room_for(spec.queueQuota or {}, [(j.requests, j.limits) for j in jobs])
    return fit or len(jobs) or 1


def _stages(spec: Spec, jobs: list[Job]) -> tuple[tuple[Stage, ...], list[tuple[str, str]]]:
    """spec.stages resolved, and the problems of the jobs' `stage` fields: every job names
    a listed stage (with stages) or none (without), in stage order, every stage has a job."""
    if not spec.stages:
        return (), [
            (
                f"spec.jobs[{j.index}].stage",
                f"names stage {j.stage!r}, but the batch has no spec.stages; add spec.stages "
                f"(e.g. [{{name: {j.stage}}}]) or drop the job's stage",
            )
            for j in jobs
            if j.stage is not None
        ]
    names = [s.name for s in spec.stages]
    problems: list[tuple[str, str]] = []
    members: dict[str, list[int]] = {name: [] for name in names}
    last = 0
    for job in jobs:
        at = f"spec.jobs[{job.index}].stage"
        if job.stage is None:
            problems.append((at, f"missing; every job names its stage, one of {', '.join(names)}"))
            continue
        if job.stage not in members:
            near = difflib.get_close_matches(job.stage, names, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            problems.append(
                (
                    at,
                    f"{job.stage!r} is not a stage of spec.stages; {hint}use one of "
                    f"{', '.join(names)}",
                )
            )
            continue
        position = names.index(job.stage)
        if position < last:
            problems.append(
                (
                    at,
                    f"{job.stage!r} comes after jobs of stage {names[last]!r}; list the jobs in "
                    "stage order (spec.stages), so that the file reads as the pipeline runs",
                )
            )
            continue
        last = position
        members[job.stage].append(job.index)
    for position, stage in enumerate(spec.stages):
        if not members[stage.name] and not problems:
            problems.append(
                (
                    f"spec.stages[{position}].name",
                    f"stage {stage.name!r} has no job; set stage: {stage.name} on its jobs "
                    "or drop the stage",
                )
            )
    resolved = []
    for position, stage in enumerate(spec.stages):
        count = len(members[stage.name])
        asked = min(stage.parallelism or spec.parallelism or count, max(count, 1))
        fit = min(asked, _fitting(spec, [jobs[i] for i in members[stage.name]]))
        resolved.append(
            Stage(
                name=stage.name,
                index=position,
                jobs=tuple(members[stage.name]),
                parallelism=fit,
                on_failure=stage.onFailure,
                asked=asked if fit < asked else 0,
            )
        )
    return tuple(resolved), problems
