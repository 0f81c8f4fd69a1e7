"""What a Job's pods reference by name, and the rule that a rendered one comes first.

One walk over a pod spec finds every object its pods need from the API: the
ServiceAccount, Secrets and ConfigMaps (env, envFrom, volumes, projected volumes, image
pull secrets), PersistentVolumeClaims and the PriorityClass. `mlgen apply` checks that the
cluster has them before it applies anything; the conformance suite creates placeholders
for those a team's batch expects its cluster to hold (`conformance/fitting.py`).

`check_order` is a render-time promise: an object the batch renders itself (the params
ConfigMap of an Indexed Job) reaches the cluster no later than the Job that reads it, in
every sync path users have — Argo CD's sync waves, Flux's `dependsOn` chain and the
`kustomization.yaml` that Argo CD and `kubectl apply -k` read. On a real kubelet a pod
whose ConfigMap comes later waits for it, and Argo CD would wait on that Job forever.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from mlgen import contract
from mlgen.errors import RenderError

CLUSTER_SCOPED = frozenset({"PriorityClass"})


@dataclass(frozen=True)
class Reference:
    kind: str  # ServiceAccount | Secret | ConfigMap | PersistentVolumeClaim | PriorityClass
    name: str
    key: str | None = None  # the one key read (env valueFrom, a volume's items)
    optional: bool = False  # the pod starts without it
    pulls: bool = False  # an image pull secret (kubernetes.io/dockerconfigjson)


def of(job: dict[str, Any]) -> Iterator[Reference]:
    """Every reference of a Job's pod template, in spec order (repeats included)."""
    pod = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
    if pod.get("serviceAccountName"):
        yield Reference("ServiceAccount", pod["serviceAccountName"])
    if pod.get("priorityClassName"):
        yield Reference("PriorityClass", pod["priorityClassName"])
    for secret in pod.get("imagePullSecrets") or []:
        # A missing pull secret is not fatal: the pull is tried without it.
        yield Reference("Secret", secret["name"], optional=True, pulls=True)
    for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        for entry in container.get("env") or []:
            source = entry.get("valueFrom") or {}
            for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                if ref := source.get(field):
                    yield Reference(kind, ref["name"], ref.get("key"), bool(ref.get("optional")))
        for entry in container.get("envFrom") or []:
            for field, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                if ref := entry.get(field):
                    yield Reference(kind, ref["name"], None, bool(ref.get("optional")))
    for volume in pod.get("volumes") or []:
        yield from _volume(volume)


def _volume(volume: dict[str, Any]) -> Iterator[Reference]:
    if source := volume.get("secret"):
        yield from _keyed("Secret", source["secretName"], source)
    if source := volume.get("configMap"):
        yield from _keyed("ConfigMap", source["name"], source)
    if source := volume.get("persistentVolumeClaim"):
        yield Reference("PersistentVolumeClaim", source["claimName"])
    for projection in (volume.get("projected") or {}).get("sources") or []:
        if source := projection.get("secret"):
            yield from _keyed("Secret", source["name"], source)
        if source := projection.get("configMap"):
            yield from _keyed("ConfigMap", source["name"], source)


def _keyed(kind: str, name: str, source: dict[str, Any]) -> Iterator[Reference]:
    optional = bool(source.get("optional"))
    items = source.get("items") or []
    if not items:
        yield Reference(kind, name, None, optional)
    for item in items:
        yield Reference(kind, name, item["key"], optional)


def check_order(
    placed: Iterable[tuple[str, dict[str, Any]]],
    resources: dict[str, list[str]],
    *,
    flux_root: str | None = None,
) -> None:
    """Raise RenderError (an mlgen bug, not the batch's) when an object that a Job reads
    is rendered but would reach the cluster after the Job. `placed` is (file path, object)
    for every rendered object, paths relative to the output directory; `resources` maps
    each variant directory to the files its kustomization.yaml lists (relative to it);
    `flux_root` is the batch's `spec.flux.path`, where Flux finds the output directory."""
    placed = list(placed)
    rendered = {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): path
        for path, o in placed
        if not contract.is_run(o) and o.get("kind") != "Kustomization"
    }
    chain = _flux_chain([o for _, o in placed if o.get("kind") == "Kustomization"], flux_root or "")
    for path, job in placed:
        if not contract.is_run(job):
            continue
        namespace = job["metadata"].get("namespace")
        for ref in of(job):
            scope = None if ref.kind in CLUSTER_SCOPED else namespace
            where = rendered.get((ref.kind, scope, ref.name))
            if where is None:
                continue
            obj = next(o for p, o in placed if p == where and o["metadata"]["name"] == ref.name)
            problem = _late(path, job, where, obj, resources, chain)
            if problem:
                raise RenderError(
                    f"mlgen bug: job/{job['metadata']['name']} reads {ref.kind} {ref.name}, "
                    f"which {problem}; its pods would wait for it. Please report this"
                )


def _wave(obj: dict[str, Any]) -> int:
    return int((obj["metadata"].get("annotations") or {}).get(contract.SYNC_WAVE, "0"))


def _late(
    job_path: str,
    job: dict[str, Any],
    ref_path: str,
    ref: dict[str, Any],
    resources: dict[str, list[str]],
    chain: dict[str, tuple[str, set[str]]],
) -> str:
    if _wave(ref) > _wave(job):
        return f"is in sync wave {_wave(ref)}, after the Job's wave {_wave(job)}"
    directory = job_path.split("/", 2)[:2]
    root = "/".join(directory)
    listed = {f"{root}/{r}" for r in resources.get(root, [])}
    if job_path in listed and ref_path not in listed:
        return f"{root}/kustomization.yaml does not list ({ref_path})"
    owner = _covering(job_path, chain)
    if owner is not None:
        allowed = {owner, *chain[owner][1]}
        if _covering(ref_path, chain) not in allowed:
            return f"no Flux Kustomization applies before or with the Job's {owner!r} ({ref_path})"
    return ""


def _flux_chain(
    kustomizations: list[dict[str, Any]], flux_root: str
) -> dict[str, tuple[str, set[str]]]:
    """Flux Kustomizations by name: (the output-relative directory they apply, every
    name they depend on, transitively)."""
    root = flux_root.strip("/").removeprefix("./").rstrip("/")
    direct: dict[str, tuple[str, set[str]]] = {}
    for k in kustomizations:
        if not str(k.get("apiVersion", "")).startswith("kustomize.toolkit.fluxcd.io/"):
            continue
        path = str(k["spec"]["path"]).strip("/").removeprefix("./")
        direct[k["metadata"]["name"]] = (
            path.removeprefix(root).strip("/"),
            {d["name"] for d in k["spec"].get("dependsOn") or []},
        )
    out: dict[str, tuple[str, set[str]]] = {}
    for name, (path, first) in direct.items():
        seen: set[str] = set()
        todo = list(first)
        while todo:
            other = todo.pop()
            if other in seen or other not in direct:
                continue
            seen.add(other)
            todo.extend(direct[other][1])
        out[name] = (path, seen)
    return out


def _covering(path: str, chain: dict[str, tuple[str, set[str]]]) -> str | None:
    """The Flux Kustomization whose directory holds `path` most narrowly."""
    found = [(len(root), name) for name, (root, _) in chain.items() if path.startswith(root + "/")]
    return max(found)[1] if found else None
