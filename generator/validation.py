"""Strict offline schema validation (kubernetes-validate) and spec warnings.

kubernetes-validate's own `validate()` re-reads the multi-megabyte definitions file
for every object; a batch of 10,000 Jobs needs one compiled validator per kind and
version instead, so this module builds those once from the package's bundled schemas.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import jsonschema
import kubernetes_validate
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

from mlgen import messages, places, variants
from mlgen.errors import RenderError, SpecError

if TYPE_CHECKING:
    from mlgen import spec


def supported_versions() -> list[str]:
    return sorted(
        {kv_utils.major_minor(v) for v in kv_utils.all_versions()},
        key=lambda v: tuple(int(p) for p in v.split(".")),
    )


def check_version(version: str, *, source: str) -> str:
    """The bundled schema version to use for `version`, or a SpecError naming the range."""
    known = supported_versions()
    if version not in known:
        raise SpecError(
            f"{source}: spec.kubernetesVersion: no schemas for Kubernetes {version} "
            f"in kubernetes-validate {kubernetes_validate.__version__}; use one of "
            f"{known[0]} to {known[-1]}"
        )
    return str(next(v for v in kv_utils.all_versions() if kv_utils.major_minor(v) == version))


@functools.cache
def _definitions(schema_version: str) -> Registry:
    defs = kv_utils.schema_contents(
        f"kubernetes-json-schema/v{schema_version}-local-strict/_definitions.json", schema_version
    )
    return Resource.from_contents(defs) @ Registry()


@functools.cache
def _validator(schema_version: str, api_version: str, kind: str) -> Any:
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = kv_utils.schema_contents(
        f"kubernetes-json-schema/v{schema_version}-local-strict/{kind.lower()}-{group}.json",
        schema_version,
    )
    registry = Resource.from_contents(schema) @ _definitions(schema_version)
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def definition_error(value: object, definition: str, *, version: str) -> str | None:
    """Why `value` is not a valid `definition` (e.g. io.k8s.api.core.v1.Affinity) of the
    strict Kubernetes schema for `version`: `at <path>: <message>`, or None."""
    schema_version = check_version(version, source="spec.kubernetesVersion")
    schema = {"$ref": f"https://kubernetes.io/api/_definitions.json#/$defs/{definition}"}
    validator = jsonschema.validators.Draft202012Validator(
        schema, registry=_definitions(schema_version)
    )
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"at {where}: {error.message}"


# Images that usually ship without /bin/sh (the Indexed Job entrypoint needs it).
_SHELL_LESS = re.compile(r"distroless|chainguard/static|(^|/)scratch([:@]|$)")
_PLACEHOLDER = "\x00mlgen"
_STRING_RULES = ("pattern", "minLength", "maxLength", "const", "format")


@functools.cache
def _enum_strings(schema_version: str) -> frozenset[str] | None:
    """Every string any enum of the schemas allows; None if the schemas constrain strings
    in another way (a pattern, a length) outside the CRD definitions."""
    defs = kv_utils.schema_contents(
        f"kubernetes-json-schema/v{schema_version}-local-strict/_definitions.json", schema_version
    )
    enums: set[str] = set()
    unsafe = False

    def walk(node: object, crd: bool) -> None:
        nonlocal unsafe
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "enum" and isinstance(value, list):
                    enums.update(v for v in value if isinstance(v, str))
                elif (
                    key in _STRING_RULES
                    and not crd
                    and not (
                        key == "format"
                        and value
                        in ("int32", "int64", "double", "byte", "date-time", "int-or-string")
                    )
                ):
                    unsafe = True
                walk(value, crd)
        elif isinstance(node, list):
            for item in node:
                walk(item, crd)

    for name, definition in {**defs.get("definitions", {}), **defs.get("$defs", {})}.items():
        walk(definition, name.startswith("io.k8s.apiextensions-apiserver"))
    return None if unsafe or _PLACEHOLDER in enums else frozenset(enums)


def _shape(value: object, enums: frozenset[str]) -> object:
    """The object with every string that no enum names replaced by one placeholder.

    jsonschema checks a string leaf only by type and enum membership here (formats are
    not asserted), so two objects with the same shape get the same verdict: a batch of
    10,000 Jobs that differ only in names, args and env is validated once, not 10,000
    times. Keys, numbers and enum values stay as they are."""
    if isinstance(value, str):
        return value if value in enums else _PLACEHOLDER
    if isinstance(value, dict):
        return {k: _shape(v, enums) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v, enums) for v in value]
    return value


def has_schema(obj: dict[str, Any]) -> bool:
    """Built-in kinds have bundled schemas; custom resources (Flux's) do not."""
    return "." not in str(obj.get("apiVersion", "")).split("/")[0] or str(
        obj.get("apiVersion", "")
    ).startswith("batch/")


def check_objects(objects: Iterable[dict[str, Any]], *, version: str, source: str) -> None:
    """Raise RenderError on the first object that the strict schema rejects."""
    schema_version = check_version(version, source=source)
    enums = _enum_strings(schema_version)
    verdicts: set[str] = set()
    for obj in objects:
        if enums is not None:
            shape = json.dumps(_shape(obj, enums), sort_keys=True)
            if shape in verdicts:
                continue  # an object of this shape already passed
            verdicts.add(shape)
        validator = _validator(schema_version, obj["apiVersion"], obj["kind"])
        error = jsonschema.exceptions.best_match(validator.iter_errors(obj))
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
            raise RenderError(
                f"{source}: rendered {obj['kind']} {obj['metadata']['name']!r} fails Kubernetes "
                f"{version} schema validation at {where}: {error.message}; this is a bug in "
                "mlgen (features.py says which Kubernetes minor each field needs): please "
                "report it with the batch file"
            )


def warnings(batch: spec.Batch) -> list[str]:
    """Things that are legal but probably not what the user wants, each once, at the line
    that causes it (a field of `spec.defaults` once for all the jobs that inherit it),
    top to bottom."""
    found: list[tuple[str, str]] = []
    found += _missing(
        batch,
        [j for j in batch.jobs if not j.requests],
        "resources.requests",
        own="the job requests no CPU or memory; the scheduler may pack it onto a full node. "
        "Set resources.requests",
        every="no job requests CPU or memory; the scheduler may pack them onto full nodes. "
        "Set spec.defaults.resources.requests",
    )
    found += _missing(
        batch,
        [j for j in batch.jobs if j.expected_seconds is None],
        "expectedDuration",
        own="the job has no expectedDuration; estimates and conformance bounds count it "
        "as 0s. Set one",
        every="no job has an expectedDuration; estimates and conformance bounds count each "
        "as 0s. Set spec.defaults.expectedDuration",
    )
    for job in batch.jobs:
        last = job.image.rsplit("/", 1)[-1]
        if "@" not in job.image and ":" not in last:
            found.append(
                (
                    batch.at_job(job.index, "image"),
                    f"{job.image!r} has neither tag nor digest, so it floats to :latest; "
                    "pin a tag or a digest (@sha256:...)",
                )
            )
        elif last.endswith(":latest"):
            found.append(
                (
                    batch.at_job(job.index, "image"),
                    f"{job.image!r} uses :latest, which changes under you; pin a tag or a digest",
                )
            )
    units = variants.for_batch(batch)
    entrypoint = [u for u in units if u.entrypoint]
    if entrypoint:
        without = [
            f"{e.directory} with strategy {e.name}"
            for e in variants.REGISTRY
            if not variants.get(e.name).entrypoint
        ]
        found += [
            (
                batch.at_job(j.index, "image"),
                f"{j.image!r} may have no shell: the "
                f"{', '.join(f'{u.directory} ({u.name})' for u in entrypoint)} variant starts "
                "each pod with mlgen's /bin/sh entrypoint. Use an image with sh (distroless: "
                f"a :debug tag), or {' or '.join(without) or 'another image'}",
            )
            for j in batch.jobs
            if _SHELL_LESS.search(j.image)
        ]
    if batch.pod_security != "restricted":
        found.append(
            (
                batch.at("spec.podSecurity"),
                f'{batch.pod_security!r} opts out of Pod Security "restricted" (pods may '
                "run as root or with more privilege); the namespace must enforce this level "
                f"or lower (pod-security.kubernetes.io/enforce: {batch.pod_security})",
            )
        )
    client = [u for u in units if u.driver == "client"]
    if batch.on_failure == "continue" and client:
        # A client-driven chain is Argo CD's sync waves: a failed wave stops the sync.
        controller = [
            e.name
            for e in variants.REGISTRY
            if e.directory == client[0].directory and variants.get(e.name).driver != "client"
        ]
        found.append(
            (
                batch.at("spec.sequential.onFailure"),
                "Argo CD stops at a failed wave whatever onFailure says; `continue` holds "
                f"for `mlgen apply` only. Use strategy: {' or '.join(controller)} to run "
                "every step after a failure under Argo CD",
            )
        )
    if batch.quota_cap is not None and "parallel" in batch.variants:
        fit, why, asked = batch.quota_cap
        found.append(
            (
                batch.at("spec.queueQuota"),
                f"admits {fit} pod(s) at once ({why}): the parallel variant runs {fit} at a "
                f"time, not {asked}, since Kueue admits an Indexed Job whole or not at all. "
                "Raise the quota or set spec.parallelism to match",
            )
        )
    found += [
        (
            batch.at(f"spec.stages[{stage.index}].onFailure"),
            "Argo CD stops at a failed wave and Flux at a failed Kustomization whatever "
            "onFailure says; `continue` lets the later stages run under `mlgen apply` only",
        )
        for stage in batch.stages
        if stage.on_failure == "continue"
    ]
    return messages.by_file_and_line(places.collapse(found), files=[batch.source])


def _missing(
    batch: spec.Batch, jobs: list[spec.Job], name: str, *, own: str, every: str
) -> list[tuple[str, str]]:
    """A field no job sets is one warning at `spec.defaults`, where one line fixes it;
    a field some jobs lack is one warning at each entry that lacks it."""
    if len(jobs) > 1 and len(jobs) == len(batch.jobs):
        return [(batch.at(f"spec.defaults.{name}"), every)] * len(jobs)
    return [(batch.at_job(j.index, name), own) for j in jobs]
