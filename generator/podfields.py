"""Pod fields beyond the container basics: volumes and mounts, envFrom, image pull
secrets, pod labels and annotations, affinity, priority class, and the `podPatch`
escape hatch.

Each is validated when the batch is read, merged from `spec.defaults` like the other job
fields, and written into the pod template, so it is part of the Job's content hash (the
pod template is immutable: a changed volume is a new Job). `apply()` adds them to a
template that `pod.template()` built; the patch comes last, then the Pod Security check
(`podsecurity`), so what is hashed is what is admitted.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from mlgen import contract, patch, podrules, podsecurity, rules, units, validation
from mlgen.errors import RenderError

if TYPE_CHECKING:
    from mlgen import spec

_DNS_LABEL = re.compile(rules.DNS_LABEL)
_DNS_SUBDOMAIN = re.compile(rules.DNS_SUBDOMAIN)
_QUALIFIED_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_ENV_PREFIX = re.compile(rules.ENV_NAME)
RESERVED_VOLUMES = ("dshm", "mlgen-params")  # pod.SHM_VOLUME, pod.PARAMS_VOLUME
RESERVED_PATHS = ("/dev/shm", "/etc/mlgen/params")


def _volume_name(value: str) -> str:
    if not rules.strict():  # conformance/test_bad_values.py: the API's verdict instead
        return value
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):  # `$` takes a trailing \n
        raise ValueError(
            f"{value!r} is not a volume name; use at most 63 lowercase letters, "
            "digits and '-', starting and ending with a letter or digit"
        )
    if value in RESERVED_VOLUMES:
        raise ValueError(f"{value!r} is a volume mlgen adds itself; use another name")
    return value


def _object_name(value: str) -> str:
    if not rules.strict():
        return value
    if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Kubernetes object name; use lowercase letters, "
            "digits, '-' and '.', starting and ending with a letter or digit"
        )
    return value


def _mount_path(value: str) -> str:
    if not value.startswith("/") or ":" in value or "\x00" in value:
        raise ValueError(
            f"{value!r} is not a mount path; write an absolute path like /data (no ':')"
        )
    normal = posixpath.normpath("/" + value.lstrip("/"))
    if any(normal == p or normal.startswith(p + "/") for p in RESERVED_PATHS):
        raise ValueError(f"{value!r} is where mlgen mounts its own volume; mount elsewhere")
    if value != normal:
        raise ValueError(f"{value!r} is not a plain path; write it as {normal!r}")
    return value


def _sub_path(value: str) -> str:
    if value.startswith("/") or ".." in value.split("/"):
        raise ValueError(
            f"{value!r} is not a relative path inside the volume; drop the leading '/' and any '..'"
        )
    return value


def _env_prefix(value: str) -> str:
    if not rules.strict():
        return value
    if not _ENV_PREFIX.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an environment variable prefix; use letters, "
            "digits and '_', not starting with a digit"
        )
    return value


def _annotation_key(key: str) -> str:
    if not rules.strict():
        return key
    prefix, _, name = key.rpartition("/")
    if (
        not name
        or len(name) > 63
        or not _QUALIFIED_NAME.fullmatch(name)
        or (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)))
    ):
        raise ValueError(
            f"{key!r} is not an annotation key; use [prefix/]name with letters, "
            "digits, '-', '_', '.' (name at most 63 characters)"
        )
    if contract.is_reserved_label(key):
        raise ValueError(f"{key!r} is an annotation mlgen sets itself; use another key")
    return key


VolumeName = Annotated[str, AfterValidator(_volume_name)]
ObjectName = Annotated[str, AfterValidator(_object_name)]
MountPath = Annotated[str, AfterValidator(_mount_path)]
SubPath = Annotated[str, AfterValidator(_sub_path)]
EnvPrefix = Annotated[str, AfterValidator(_env_prefix)]
AnnotationKey = Annotated[str, AfterValidator(_annotation_key)]
FileMode = Annotated[int, Field(ge=0, le=0o777)]


def _quantity(value: str) -> str:
    return units.check_quantity(value)


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, use_attribute_docstrings=True
    )


class KeyToPath(_Model):
    key: str
    """The key to project as a file."""
    path: SubPath
    """The file's relative path inside the volume."""
    mode: FileMode | None = None
    """The file's permission bits, 0 to 0777 (decimal in JSON: 0644 is 420); default the
    volume's defaultMode."""


class ClaimSource(_Model):
    claimName: ObjectName
    """The PersistentVolumeClaim, in the batch's namespace."""
    readOnly: bool | None = None
    """Mount the claim read-only; default false."""


class ConfigMapSource(_Model):
    name: ObjectName
    """The ConfigMap, in the batch's namespace."""
    items: list[KeyToPath] | None = None
    """Only these keys, at these paths; default every key as a file of its name."""
    defaultMode: FileMode | None = None
    """Permission bits of its files, 0 to 0777; default 0644."""
    optional: bool | None = None
    """Start the pod even when the ConfigMap is missing; default false."""


class SecretSource(_Model):
    secretName: ObjectName
    """The Secret, in the batch's namespace."""
    items: list[KeyToPath] | None = None
    """Only these keys, at these paths; default every key as a file of its name."""
    defaultMode: FileMode | None = None
    """Permission bits of its files, 0 to 0777; default 0644."""
    optional: bool | None = None
    """Start the pod even when the Secret is missing; default false."""


class EmptyDirSource(_Model):
    medium: Literal["", "Memory"] | None = None
    """Memory for a RAM-backed tmpfs; default the node's disk."""
    sizeLimit: Annotated[str, AfterValidator(_quantity)] | None = None
    """The most the directory may hold, a quantity like 10Gi; default no limit."""


class Volume(_Model):
    """A pod volume: exactly one of persistentVolumeClaim, configMap, secret, emptyDir."""

    name: VolumeName
    """The volume's name, which volumeMounts refer to."""
    persistentVolumeClaim: ClaimSource | None = None
    """Mount a PersistentVolumeClaim (datasets, checkpoints)."""
    configMap: ConfigMapSource | None = None
    """Mount a ConfigMap's keys as files."""
    secret: SecretSource | None = None
    """Mount a Secret's keys as files."""
    emptyDir: EmptyDirSource | None = None
    """A scratch directory that lives as long as the pod."""

    @model_validator(mode="after")
    def _one_source(self) -> Volume:
        sources = [
            k
            for k in ("persistentVolumeClaim", "configMap", "secret", "emptyDir")
            if getattr(self, k) is not None
        ]
        if len(sources) != 1:
            raise ValueError(
                f"volume {self.name!r} needs exactly one of persistentVolumeClaim, "
                f"configMap, secret or emptyDir (it has "
                f"{', '.join(sources) or 'none'}); other volume types go in "
                "podPatch"
            )
        return self


class VolumeMount(_Model):
    name: VolumeName
    """The volume to mount, a name from volumes."""
    mountPath: MountPath
    """The absolute path in the container to mount it at."""
    subPath: SubPath | None = None
    """Mount only this path inside the volume; default its root."""
    readOnly: bool | None = None
    """Mount it read-only; default false."""


class Ref(_Model):
    name: ObjectName
    """The ConfigMap or Secret, in the batch's namespace."""
    optional: bool | None = None
    """Start the pod even when it is missing; default false."""


class EnvFrom(_Model):
    """All keys of a ConfigMap or a Secret as environment variables."""

    configMapRef: Ref | None = None
    """A ConfigMap whose keys become environment variables."""
    secretRef: Ref | None = None
    """A Secret whose keys become environment variables."""
    prefix: EnvPrefix | None = None
    """Put before every variable's name; default none."""

    @model_validator(mode="after")
    def _one_ref(self) -> EnvFrom:
        if (self.configMapRef is None) == (self.secretRef is None):
            raise ValueError("an envFrom entry needs exactly one of configMapRef or secretRef")
        return self


class Affinity(_Model):
    """Kubernetes' Affinity, checked against the schema of spec.kubernetesVersion."""

    nodeAffinity: dict[str, Any] | None = None
    """Kubernetes NodeAffinity: the nodes the pods must or would rather run on."""
    podAffinity: dict[str, Any] | None = None
    """Kubernetes PodAffinity: run the pods near pods with these labels."""
    podAntiAffinity: dict[str, Any] | None = None
    """Kubernetes PodAntiAffinity: run the pods away from pods with these labels."""


@dataclass(frozen=True)
class PodFields:
    """The resolved pod fields of one job (defaults merged)."""

    volumes: tuple[dict[str, Any], ...] = ()
    mounts: tuple[dict[str, Any], ...] = ()
    env_from: tuple[dict[str, Any], ...] = ()
    pull_secrets: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    affinity: dict[str, Any] | None = None
    priority_class: str | None = None
    patch: patch.PodPatch | None = None


NONE: PodFields = PodFields()

# Fields one Indexed Job's jobs must share (they land in its one pod template).
SHARED: dict[str, Callable[[spec.Job], object]] = {
    "volumes": lambda j: j.pod.volumes,
    "volumeMounts": lambda j: j.pod.mounts,
    "envFrom": lambda j: j.pod.env_from,
    "imagePullSecrets": lambda j: j.pod.pull_secrets,
    "podLabels": lambda j: j.pod.labels,
    "podAnnotations": lambda j: j.pod.annotations,
    "affinity": lambda j: j.pod.affinity,
    "priorityClassName": lambda j: j.pod.priority_class,
    "podPatch": lambda j: j.pod.patch.model_dump() if j.pod.patch else None,
}


def _dump(items: list[_Model] | None) -> tuple[dict[str, Any], ...]:
    return tuple(i.model_dump(exclude_none=True) for i in items or ())


def resolve(
    defaults: Any, entry: Any, *, at: str, version: str
) -> tuple[PodFields, list[tuple[str, str]]]:
    """Merge one job entry's pod fields over the defaults; check what spans fields."""

    def pick(name: str) -> Any:
        own = getattr(entry, name)
        return own if own is not None else getattr(defaults, name)

    problems: list[tuple[str, str]] = []
    volumes, mounts = pick("volumes"), pick("volumeMounts")
    names = [v.name for v in volumes or ()]
    for number, name in enumerate(names):
        if name in names[:number]:
            problems.append(
                (
                    f"{at}.volumes[{number}].name",
                    f"volume {name!r} is listed twice; give each volume its own name",
                )
            )
    paths: list[str] = []
    for number, mount in enumerate(mounts or ()):
        if mount.name not in names:
            problems.append(
                (
                    f"{at}.volumeMounts[{number}].name",
                    f"no volume named "
                    f"{mount.name!r}; add it to volumes (declared: "
                    f"{', '.join(names) or 'none'})",
                )
            )
        if mount.mountPath in paths:
            problems.append(
                (
                    f"{at}.volumeMounts[{number}].mountPath",
                    f"{mount.mountPath!r} is mounted twice; use one mount per path",
                )
            )
        paths.append(mount.mountPath)
    affinity = pick("affinity")
    raw_affinity = affinity.model_dump(exclude_none=True) if affinity else None
    if raw_affinity:
        why = validation.definition_error(
            raw_affinity, "io.k8s.api.core.v1.Affinity", version=version
        )
        if why:
            problems.append(
                (
                    f"{at}.affinity",
                    f"is not a Kubernetes {version} affinity "
                    f"({why}); see `kubectl explain pod.spec.affinity`",
                )
            )
    resolved = PodFields(
        volumes=_dump(volumes),
        mounts=_dump(mounts),
        env_from=_dump(pick("envFrom")),
        pull_secrets=tuple(pick("imagePullSecrets") or ()),
        labels={**(defaults.podLabels or {}), **(entry.podLabels or {})},
        annotations={**(defaults.podAnnotations or {}), **(entry.podAnnotations or {})},
        affinity=raw_affinity or None,
        priority_class=pick("priorityClassName"),
        patch=pick("podPatch"),
    )
    return resolved, problems


def apply(
    batch: spec.Batch, job: spec.Job, template: dict[str, Any], *, container: str
) -> dict[str, Any]:
    """The pod template with this job's pod fields, its patch, and its Pod Security level
    checked; raises RenderError naming the job when the patch or the level fails."""
    fields = job.pod
    metadata, pod = template["metadata"], template["spec"]
    reserved = {"container": container, "volumes": RESERVED_VOLUMES, "paths": RESERVED_PATHS}
    if fields.labels:
        # mlgen's own labels win: the timeline and `mlgen apply` select on them.
        metadata["labels"] = {**fields.labels, **metadata["labels"]}
    if fields.annotations:
        metadata["annotations"] = {**fields.annotations, **metadata.get("annotations", {})}
    main = next(c for c in pod["containers"] if c["name"] == container)
    if fields.env_from:
        main["envFrom"] = [dict(e) for e in fields.env_from]
    if fields.mounts:
        main["volumeMounts"] = [*main.get("volumeMounts", []), *map(dict, fields.mounts)]
    if fields.volumes:
        pod["volumes"] = [*pod.get("volumes", []), *map(dict, fields.volumes)]
    if fields.pull_secrets:
        pod["imagePullSecrets"] = [{"name": n} for n in fields.pull_secrets]
    if fields.affinity:
        pod["affinity"] = fields.affinity
    if fields.priority_class:
        pod["priorityClassName"] = fields.priority_class
    if job.run_as_user == 0:  # root: allowed below "restricted", checked just after
        for context in (pod.get("securityContext", {}), main.get("securityContext", {})):
            context.pop("runAsNonRoot", None)
    if fields.patch is not None:
        where = f"{batch.at_job(job.index, 'podPatch')} (job {job.name!r})"
        before = patch.owned(template, **reserved)  # type: ignore[arg-type]
        template = patch.apply(
            fields.patch, template, where=where, version=batch.kubernetes_version
        )
        patch.check_owned(before, template, where=where, **reserved)  # type: ignore[arg-type]
        refused = podrules.problems(template)
        if refused:
            raise RenderError(
                f"{where}: the patched pod template breaks an API rule at {refused[0]}; "
                "fix the patch"
            )
    # Point at what can break a level: the patch, else root, else the annotations.
    cause = (
        "podPatch"
        if fields.patch
        else "runAsUser"
        if job.run_as_user == 0
        else "podAnnotations"
        if fields.annotations
        else ""
    )
    at = batch.at_job(job.index, cause)
    podsecurity.check(template, level=batch.pod_security, where=f"{at} (job {job.name!r})")
    return template
