"""The API server's rules for a whole pod template, where its OpenAPI schema says nothing.

Batch fields are checked one by one as they are read (`rules.py`, `podfields.py`); a
podPatch can set anything, so the patched template goes through these rules too, and a
patch the API server would refuse is refused at render time with the job named. They
cover what the schema lets through and the API refuses: label keys and values, quantities
(an emptyDir of -1Gi), key-to-path items (an empty or escaping path), volume and mount
names that do not match, and selector requirements whose operator and values disagree
(`In` without values). `rules.relaxed()` turns them off, like the field rules, so the
conformance suite can show the API server refuses the same input.
"""

from __future__ import annotations

from typing import Any

from mlgen import rules

_WITH_VALUES = ("In", "NotIn")
_WITHOUT_VALUES = ("Exists", "DoesNotExist")


def problems(template: dict[str, Any]) -> list[str]:
    """What the API server would refuse in `template`, each naming the field."""
    if not rules.strict():
        return []
    out: list[str] = []
    metadata, pod = template.get("metadata") or {}, template.get("spec") or {}
    for key, value in (metadata.get("labels") or {}).items():
        out += _try(f"metadata.labels.{key}", rules.label_key, str(key))
        out += _try(f"metadata.labels.{key}", rules.label_value, str(value))
    volumes = {v.get("name") for v in pod.get("volumes") or []}
    for number, volume in enumerate(pod.get("volumes") or []):
        out += _volume(volume, f"spec.volumes[{number}]")
    for kind in ("initContainers", "containers"):
        for number, container in enumerate(pod.get(kind) or []):
            at = f"spec.{kind}[{number}]"
            for m, mount in enumerate(container.get("volumeMounts") or []):
                if mount.get("name") not in volumes:
                    out.append(
                        f"{at}.volumeMounts[{m}].name: {mount.get('name')!r} is not a volume "
                        "of the pod"
                    )
            resources = container.get("resources") or {}
            for field in ("requests", "limits"):
                for name, amount in (resources.get(field) or {}).items():
                    out += _try(f"{at}.resources.{field}.{name}", rules.quantity, str(amount))
    out += _affinity(pod.get("affinity") or {})
    for number, toleration in enumerate(pod.get("tolerations") or []):
        out += _try(
            f"spec.tolerations[{number}]",
            lambda t: rules.toleration(
                t.get("key"),
                t.get("operator"),
                t.get("value"),
                t.get("effect"),
                t.get("tolerationSeconds"),
            ),
            toleration,
        )
    return out


def _try(where: str, check: Any, value: Any) -> list[str]:
    try:
        check(value)
    except ValueError as e:
        return [f"{where}: {e}"]
    return []


def _volume(volume: dict[str, Any], at: str) -> list[str]:
    out: list[str] = []
    size = (volume.get("emptyDir") or {}).get("sizeLimit")
    if size is not None:
        out += _try(f"{at}.emptyDir.sizeLimit", rules.quantity, str(size))
    sources = [volume.get("configMap"), volume.get("secret")]
    sources += [s.get(k) for s in (volume.get("projected") or {}).get("sources") or [] for k in s]
    for source in (s for s in sources if isinstance(s, dict)):
        for number, item in enumerate(source.get("items") or []):
            path = str(item.get("path", ""))
            parts = path.split("/")
            if not item.get("key"):
                out.append(f"{at} items[{number}].key: must not be empty")
            if not path or path.startswith("/") or ".." in parts:
                out.append(
                    f"{at} items[{number}].path: {path!r} must be a relative path inside "
                    "the volume, not empty and without '..'"
                )
    return out


def _requirements(expressions: list[dict[str, Any]], at: str, *, node: bool) -> list[str]:
    out: list[str] = []
    for number, expression in enumerate(expressions):
        operator, values = expression.get("operator"), expression.get("values") or []
        where = f"{at}[{number}]"
        out += _try(f"{where}.key", rules.label_key, str(expression.get("key", "")))
        if operator in _WITH_VALUES and not values:
            out.append(f"{where}: operator {operator} needs at least one value")
        elif operator in _WITHOUT_VALUES and values:
            out.append(f"{where}: operator {operator} takes no values; drop them")
        elif (
            node
            and operator in ("Gt", "Lt")
            and (len(values) != 1 or not str(values[0]).lstrip("-").isdigit())
        ):
            out.append(f"{where}: operator {operator} needs exactly one whole number")
    return out


def _affinity(affinity: dict[str, Any]) -> list[str]:
    out: list[str] = []
    node = affinity.get("nodeAffinity") or {}
    required = (node.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get(
        "nodeSelectorTerms"
    ) or []
    preferred = [
        p.get("preference") or {}
        for p in node.get("preferredDuringSchedulingIgnoredDuringExecution") or []
    ]
    for name, terms in (("required", required), ("preferred", preferred)):
        for number, term in enumerate(terms):
            at = f"spec.affinity.nodeAffinity.{name}[{number}]"
            for field in ("matchExpressions", "matchFields"):
                out += _requirements(term.get(field) or [], f"{at}.{field}", node=True)
    for kind in ("podAffinity", "podAntiAffinity"):
        section = affinity.get(kind) or {}
        terms = list(section.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
        terms += [
            w.get("podAffinityTerm") or {}
            for w in section.get("preferredDuringSchedulingIgnoredDuringExecution") or []
        ]
        for number, term in enumerate(terms):
            selector = term.get("labelSelector") or {}
            out += _requirements(
                selector.get("matchExpressions") or [],
                f"spec.affinity.{kind}[{number}].labelSelector.matchExpressions",
                node=False,
            )
    return out
