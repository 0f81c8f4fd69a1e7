"""`podPatch`: the typed escape hatch for pod-template fields mlgen does not model.

A batch may carry a strategic-merge patch (Kubernetes' rules for pod lists: containers,
volumes, env and the like merge by name, mounts by mountPath; `null` removes a key;
`$patch: delete` removes a list item, `$patch: replace` replaces a map or list) or an
RFC 6902 JSON patch of the pod template (`{metadata, spec}`). It is applied before the
template is hashed and validated, so the committed output is exactly what the batch says
and no one has to patch it after rendering. The patched template must still pass strict
schema validation and the batch's Pod Security level.
"""

from __future__ import annotations

import copy
import json
import posixpath
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlgen import contract, limits, validation
from mlgen.errors import RenderError

# Merge keys of the pod-template lists (Kubernetes' patchMergeKey).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "env": "name",
    "imagePullSecrets": "name",
    "ports": "containerPort",
    "hostAliases": "ip",
    "resourceClaims": "name",
    "topologySpreadConstraints": "topologyKey",
    "readinessGates": "conditionType",
}


class Operation(BaseModel):
    """One RFC 6902 operation; `path` and `from` are JSON pointers into the template."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )
    op: Literal["add", "remove", "replace", "move", "copy", "test"]
    """The RFC 6902 operation."""
    path: str = Field(pattern=r"^(/[^/]*)*$")
    """A JSON pointer into the pod template ({metadata, spec}) the operation acts on."""
    value: Any = None
    """The value to add, replace with or test for."""
    from_: str | None = Field(default=None, alias="from", pattern=r"^(/[^/]*)*$")
    """A JSON pointer to the value to move or copy."""

    @model_validator(mode="after")
    def _operands(self) -> Operation:
        if self.op in ("move", "copy") and self.from_ is None:
            raise ValueError(f"a {self.op} operation needs from: /json/pointer")
        if self.op in ("add", "replace", "test") and "value" not in self.model_fields_set:
            raise ValueError(f"an {self.op} operation needs a value")
        return self


class PodPatch(BaseModel):
    """Exactly one of `strategic` (a strategic-merge patch of {metadata, spec}) or `json`
    (a list of RFC 6902 operations)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, use_attribute_docstrings=True
    )
    strategic: dict[str, Any] | None = None
    """A strategic-merge patch of the pod template's {metadata, spec}."""
    json_: list[Operation] | None = Field(default=None, alias="json")
    """A list of RFC 6902 operations on the pod template."""

    @model_validator(mode="after")
    def _one(self) -> PodPatch:
        if (self.strategic is None) == (self.json_ is None):
            raise ValueError(
                "podPatch needs exactly one of strategic (a merge patch) or json "
                "(a list of operations)"
            )
        if self.strategic is not None and set(self.strategic) - {"metadata", "spec"}:
            raise ValueError(
                "a strategic podPatch patches the pod template: only metadata and spec at its top"
            )
        return self


def apply(patch: PodPatch, template: dict[str, Any], *, where: str, version: str) -> dict[str, Any]:
    """The patched template, schema-checked; RenderError naming `where` otherwise."""
    try:
        if patch.strategic is not None:
            out = _merge(template, patch.strategic, key=None)
        else:
            out = copy.deepcopy(template)
            for number, operation in enumerate(patch.json_ or ()):
                try:
                    out = _operate(out, operation)
                    if operation.op in ("copy", "add", "replace", "move"):
                        _bounded(out)
                except (KeyError, IndexError, ValueError) as e:
                    why = e.args[0] if e.args else e
                    raise RenderError(
                        f"{where}: json[{number}] ({operation.op} "
                        f"{operation.path}): {why}; fix the operation"
                    ) from e
    except RenderError:
        raise
    except (TypeError, ValueError) as e:
        raise RenderError(f"{where}: cannot be applied: {e}") from e
    if not isinstance(out, dict):
        raise RenderError(
            f"{where}: the patched pod template is not a mapping; patch fields inside it"
        )
    null = _null_at(out, "")
    if null is not None:
        # The schema allows null almost everywhere; the API server decodes it as an empty
        # value (a volume without a name) and mlgen's own checks could not read it.
        raise RenderError(
            f"{where}: the patched pod template holds null at {null or '/'}; "
            "remove the key (null in a strategic patch deletes it) or give a value"
        )
    why = validation.definition_error(out, "io.k8s.api.core.v1.PodTemplateSpec", version=version)
    if why:
        raise RenderError(
            f"{where}: the patched pod template is not valid for Kubernetes "
            f"{version} ({why}); fix the patch"
        )
    return out


def _null_at(node: Any, pointer: str) -> str | None:
    """The JSON pointer of the first null in `node`, or None."""
    if node is None:
        return pointer
    items: Any = ()
    if isinstance(node, dict):
        items = ((str(k).replace("~", "~0").replace("/", "~1"), v) for k, v in node.items())
    elif isinstance(node, list):
        items = ((str(i), v) for i, v in enumerate(node))
    for token, child in items:
        found = _null_at(child, f"{pointer}/{token}")
        if found is not None:
            return found
    return None


def _merge(target: Any, change: Any, *, key: str | None) -> Any:
    if not isinstance(change, dict) or not isinstance(target, dict):
        return copy.deepcopy(change)
    if change.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in change.items() if k != "$patch"}
    out = copy.deepcopy(target)
    for name, value in change.items():
        if name.startswith("$"):
            raise ValueError(f"unsupported directive {name!r} (use $patch: delete or replace)")
        if value is None:
            out.pop(name, None)
        elif isinstance(value, list) and name in MERGE_KEYS and isinstance(out.get(name), list):
            out[name] = _merge_list(out[name], value, MERGE_KEYS[name])
        elif isinstance(value, dict) and isinstance(out.get(name), dict):
            out[name] = _merge(out[name], value, key=name)
        else:
            out[name] = copy.deepcopy(value)
    return out


def _merge_list(items: list[Any], change: list[Any], merge_key: str) -> list[Any]:
    out = copy.deepcopy(items)
    for item in change:
        if not isinstance(item, dict) or merge_key not in item:
            raise ValueError(f"every item of a list merged by {merge_key} needs {merge_key}")
        position = next(
            (
                i
                for i, old in enumerate(out)
                if isinstance(old, dict) and old.get(merge_key) == item[merge_key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if position is not None:
                del out[position]
        elif position is None:
            out.append({k: copy.deepcopy(v) for k, v in item.items() if k != "$patch"})
        else:
            out[position] = _merge(out[position], item, key=merge_key)
    return out


def _tokens(pointer: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def _bounded(doc: Any) -> None:
    """A patched template may not outgrow what the API server stores (copies of copies
    double with each operation)."""
    size = len(json.dumps(doc, default=str))
    if size > limits.MAX_OBJECT_BYTES:
        raise ValueError(
            f"the template grows to {size:,} bytes, more than a Job may hold "
            f"({limits.MAX_OBJECT_BYTES:,})"
        )


def _step(node: Any, token: str, tokens: list[str], at: int) -> Any:
    """One pointer step, or an error that says which part of the pointer is missing."""
    where = "/" + "/".join(tokens[: at + 1])
    if isinstance(node, list):
        if not token.isdigit() or int(token) >= len(node):
            raise IndexError(f"{where} does not exist (a list of {len(node)})")
        return node[int(token)]
    if not isinstance(node, dict) or token not in node:
        raise KeyError(f"{where} does not exist in the template; add it whole one level up")
    return node[token]


def _parent(doc: Any, pointer: str) -> tuple[Any, str]:
    tokens = _tokens(pointer)
    if not tokens:
        raise ValueError("the whole template cannot be the target; point inside it")
    node = doc
    for at, token in enumerate(tokens[:-1]):
        node = _step(node, token, tokens, at)
    return node, tokens[-1]


def _get(doc: Any, pointer: str) -> Any:
    node = doc
    tokens = _tokens(pointer)
    for at, token in enumerate(tokens):
        node = _step(node, token, tokens, at)
    return node


def _operate(doc: Any, operation: Operation) -> Any:
    op, path = operation.op, operation.path
    if op == "test":
        if _get(doc, path) != operation.value:
            raise ValueError("the value there differs from the test's value")
        return doc
    if op in ("move", "copy"):
        assert operation.from_ is not None
        value = copy.deepcopy(_get(doc, operation.from_))
        if op == "move":
            doc = _operate(doc, Operation(op="remove", path=operation.from_))
        return _operate(doc, Operation(op="add", path=path, value=value))
    parent, last = _parent(doc, path)
    if op == "remove":
        _step(parent, last, _tokens(path), len(_tokens(path)) - 1)  # it must exist
        if isinstance(parent, list):
            del parent[int(last)]
        else:
            del parent[last]
        return doc
    value = copy.deepcopy(operation.value)
    if isinstance(parent, list):
        if op == "add":
            parent.insert(len(parent) if last == "-" else _position(last, len(parent)), value)
        else:
            parent[int(last)] = value
    elif isinstance(parent, dict):
        if op == "replace" and last not in parent:
            raise KeyError(f"{path} does not exist (replace needs an existing value; use add)")
        parent[last] = value
    else:
        raise ValueError(f"the parent of {path} is neither a mapping nor a list")
    return doc


def _position(token: str, length: int) -> int:
    position = int(token)
    if not 0 <= position <= length:
        raise IndexError(f"index {position} is outside a list of {length}")
    return position


# Labels the Job controller sets on its pods; the API refuses a template that sets them.
_CONTROLLER_LABELS = ("job-name", "controller-uid")
_CONTROLLER_PREFIX = "batch.kubernetes.io/"


@dataclass(frozen=True)
class Owned:
    """What mlgen wrote into a pod template before the patch and keeps for itself: its
    labels and annotations (the timeline and `mlgen apply` select on them), the main
    container's command and args (an Indexed Job's entrypoint picks each index's args),
    its reserved environment variables, volumes and mounts, and the restart policy."""

    labels: dict[str, str]
    annotations: dict[str, str]
    command: Any
    args: Any
    env: dict[str, Any]
    volumes: dict[str, Any]
    mounts: dict[str, Any]
    restart_policy: Any


def _reserved_env(pod: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{c.get('name')}/{e.get('name')}": e
        for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
        for e in c.get("env") or []
        if isinstance(e, dict)
        and (
            e.get("name") in contract.RESERVED_ENV
            or str(e.get("name", "")).startswith(contract.RESERVED_ENV_PREFIX)
        )
    }


def _main(pod: dict[str, Any], container: str) -> dict[str, Any]:
    return next((c for c in pod.get("containers") or [] if c.get("name") == container), {})


def owned(
    template: dict[str, Any], *, container: str, volumes: tuple[str, ...], paths: tuple[str, ...]
) -> Owned:
    """A snapshot of what mlgen owns in `template`; `volumes` and `paths` are its reserved
    volume names and mount paths."""
    metadata, pod = template.get("metadata") or {}, template.get("spec") or {}
    main = _main(pod, container)
    return Owned(
        labels=dict(metadata.get("labels") or {}),
        annotations=dict(metadata.get("annotations") or {}),
        command=copy.deepcopy(main.get("command")),
        args=copy.deepcopy(main.get("args")),
        env=copy.deepcopy(_reserved_env(pod)),
        volumes={
            v["name"]: copy.deepcopy(v)
            for v in pod.get("volumes") or []
            if v.get("name") in volumes
        },
        mounts=_mounts(pod, paths),
        restart_policy=pod.get("restartPolicy"),
    )


def _normal(path: str) -> str:
    """A mount path as the kubelet resolves it: `//dev/shm/.` is /dev/shm."""
    return posixpath.normpath("/" + path.lstrip("/")) if path else path


def _mounts(pod: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """Every mount (any container) at or under a reserved path, by container and path."""
    found = {}
    for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        for m in c.get("volumeMounts") or []:
            at = _normal(str(m.get("mountPath", "")))
            if any(at == p or at.startswith(p + "/") for p in paths):
                found[f"{c.get('name')}:{at}"] = copy.deepcopy(m)
    return found


def check_owned(
    before: Owned,
    template: dict[str, Any],
    *,
    container: str,
    volumes: tuple[str, ...],
    paths: tuple[str, ...],
    where: str,
) -> None:
    """RenderError naming the first thing the patch took from mlgen, and the batch field
    that says it instead."""
    after = owned(template, container=container, volumes=volumes, paths=paths)
    pod = template.get("spec") or {}
    problems: list[str] = []
    for key, value in before.labels.items():
        if after.labels.get(key) != value:
            problems.append(
                f"changes the pod label {key!r}, set by mlgen (apply and the timeline select "
                "on its labels) or by podLabels; set podLabels instead"
            )
    for key in after.labels:
        if key in _CONTROLLER_LABELS or key.startswith(_CONTROLLER_PREFIX):
            problems.append(
                f"sets the label {key!r}, which the Job controller sets; the API refuses it"
            )
        elif key not in before.labels and contract.is_reserved_label(key):
            problems.append(
                f"sets the pod label {key!r}, a name mlgen keeps for its own; choose "
                "another name in podLabels"
            )
    for key, value in before.annotations.items():
        if after.annotations.get(key) != value:
            problems.append(
                f"changes the pod annotation {key!r}, set by mlgen or podAnnotations; set "
                "podAnnotations instead"
            )
    if (after.command, after.args) != (before.command, before.args):
        problems.append(
            f"changes container {container!r}'s command or args; set the job's command and "
            "args instead (an Indexed Job's entrypoint passes each index its own args)"
        )
    if after.env != before.env:
        changed = sorted(
            set(after.env) ^ set(before.env)
            | {k for k in after.env if after.env[k] != before.env.get(k)}
        )
        problems.append(
            f"sets or changes the environment variable {changed[0].split('/', 1)[1]!r} "
            "that mlgen owns (JOB_COMPLETION_INDEX picks an index's parameters; MLGEN_* are "
            "mlgen's); use another name"
        )
    if after.volumes != before.volumes:
        problems.append(
            f"changes a volume mlgen adds itself ({', '.join(volumes)}); use another name"
        )
    if after.mounts != before.mounts:
        problems.append(
            f"mounts at or over a path mlgen mounts itself ({', '.join(paths)}, however "
            "written); mount elsewhere"
        )
    if after.restart_policy != before.restart_policy:
        problems.append(
            "changes restartPolicy, which a Job's pods need as Never; drop it from the patch"
        )
    if pod.get("ephemeralContainers"):
        problems.append("adds ephemeralContainers, which a pod template cannot hold; drop them")
    if problems:
        raise RenderError(f"{where}: the patch {problems[0]}")
