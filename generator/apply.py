"""`mlgen apply`: server-side apply a rendered variant directory, wave by wave.

Order: namespaces, then configuration (ConfigMaps, Secrets, ServiceAccounts), then
the Jobs grouped by their Argo CD sync wave. Each wave is applied, then awaited until
its Jobs are Complete; a Failed Job stops the chain unless its step says
`onFailure: continue`. Applying a finished batch again changes nothing: the objects
are identical, and Complete Jobs are recognised at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlgen import kube, sequential
from mlgen.errors import JobFailedError, UsageError

Progress = Callable[[str], None]

_KIND_ORDER = {"Namespace": 0, "ResourceQuota": 1, "LimitRange": 1, "ServiceAccount": 2,
               "Secret": 2, "ConfigMap": 2, "Role": 3, "RoleBinding": 3}
_WORKLOAD = 4


@dataclass(frozen=True)
class JobOutcome:
    name: str
    namespace: str
    step: str
    status: str  # Complete | Failed | NotStarted
    seconds: float
    failed_indexes: str = ""


@dataclass
class Outcome:
    jobs: list[JobOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[JobOutcome]:
        return [j for j in self.jobs if j.status == "Failed"]


def load_dir(directory: Path) -> list[dict[str, Any]]:
    """The objects of a rendered variant directory, in kustomization.yaml's order."""
    if not directory.is_dir():
        raise UsageError(f"{directory}: not a directory; pass a rendered variant directory "
                         "such as manifests/<batch>/sequential")
    objects: list[dict[str, Any]] = []
    for path in _resource_files(directory):
        try:
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError) as e:
            raise UsageError(f"{path}: cannot be read as YAML ({e})") from e
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") and doc.get("kind") != "Kustomization":
                objects.append(doc)
    if not objects:
        raise UsageError(f"{directory}: holds no Kubernetes objects; render a batch into it "
                         "first (mlgen render batch.yaml -o manifests/)")
    return objects


def _resource_files(directory: Path) -> list[Path]:
    kustomization = directory / "kustomization.yaml"
    if not kustomization.exists():
        return sorted(p for p in directory.rglob("*.yaml") if p.name != "kustomization.yaml")
    listed = yaml.safe_load(kustomization.read_text(encoding="utf-8")) or {}
    files: list[Path] = []
    for entry in listed.get("resources", []):
        target = directory / entry
        files.extend(_resource_files(target) if target.is_dir() else [target])
    return files


def wave_of(obj: dict[str, Any]) -> int:
    annotations = obj.get("metadata", {}).get("annotations") or {}
    try:
        return int(annotations.get(sequential.SYNC_WAVE, "0"))
    except ValueError:
        return 0


def plan(objects: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """Configuration objects in apply order, and the Jobs grouped into waves."""
    config = sorted((o for o in objects if o["kind"] != "Job"),
                    key=lambda o: (_KIND_ORDER.get(o["kind"], _WORKLOAD), wave_of(o)))
    waves: dict[int, list[dict[str, Any]]] = {}
    for job in (o for o in objects if o["kind"] == "Job"):
        waves.setdefault(wave_of(job), []).append(job)
    return config, [waves[w] for w in sorted(waves)]


def run(k: kube.Kube, objects: list[dict[str, Any]], *, timeout: float,
        progress: Progress = print, poll: float = 0.5) -> Outcome:
    """Apply and await; raise JobFailedError naming the failed Jobs and their indexes."""
    config, waves = plan(objects)
    namespaces = sorted({o["metadata"]["namespace"] for o in objects
                         if o["metadata"].get("namespace")})
    declared = {o["metadata"]["name"] for o in config if o["kind"] == "Namespace"}
    for namespace in namespaces:
        if namespace not in declared and not k.namespace_exists(namespace):
            raise UsageError(f"namespace {namespace!r} does not exist in the cluster; create it "
                             f"first (kubectl create namespace {namespace})")
    for obj in config:
        k.apply(obj)
        progress(f"applied {obj['kind']} {obj['metadata']['name']}")
    deadline = time.monotonic() + timeout
    outcome = Outcome()
    stopped = False
    for number, wave in enumerate(waves, start=1):
        for job in wave:
            if stopped:
                outcome.jobs.append(_outcome(job, "NotStarted", 0.0))
                continue
            k.apply(job)
            progress(f"[{number}/{len(waves)}] {_label(job)}: applied, waiting for Complete")
        if stopped:
            continue
        for job in wave:
            result = wait(k, job, deadline=deadline, poll=poll)
            outcome.jobs.append(result)
            detail = f" (failed indexes {result.failed_indexes})" if result.failed_indexes else ""
            progress(f"[{number}/{len(waves)}] {_label(job)}: {result.status} after "
                     f"{result.seconds:.0f}s{detail}")
            annotations = job["metadata"].get("annotations") or {}
            on_failure = annotations.get(sequential.ON_FAILURE, "stop")
            if result.status == "Failed" and on_failure != "continue":
                stopped = True
    if outcome.failed:
        names = "; ".join(f"job/{j.name}" + (f" failed indexes {j.failed_indexes}"
                                             if j.failed_indexes else "")
                          for j in outcome.failed)
        skipped = sum(1 for j in outcome.jobs if j.status == "NotStarted")
        raise JobFailedError(f"{names} failed; {skipped} later step(s) not started. Inspect "
                             f"with kubectl describe job/{outcome.failed[0].name} -n "
                             f"{outcome.failed[0].namespace}")
    return outcome


def wait(k: kube.Kube, job: dict[str, Any], *, deadline: float, poll: float) -> JobOutcome:
    """Poll a Job until it is Complete or Failed (its terminal conditions)."""
    name, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
    started = time.monotonic()
    while True:
        with kube.errors(f"reading job/{name}"):
            status = k.batch.read_namespaced_job_status(name, namespace).status
        for condition in status.conditions or []:
            if condition.status == "True" and condition.type in ("Complete", "Failed"):
                return _outcome(job, condition.type, time.monotonic() - started,
                                failed_indexes=status.failed_indexes or "")
        if time.monotonic() > deadline:
            raise JobFailedError(f"job/{name} in {namespace} did not finish before the "
                                 "--timeout; it keeps running in the cluster. Raise --timeout "
                                 f"or inspect it with kubectl describe job/{name} -n {namespace}")
        time.sleep(poll)


def _outcome(job: dict[str, Any], status: str, seconds: float, *,
             failed_indexes: str = "") -> JobOutcome:
    meta = job["metadata"]
    step = (meta.get("annotations") or {}).get(sequential.STEP_NAME, meta["name"])
    return JobOutcome(name=meta["name"], namespace=meta["namespace"], step=step, status=status,
                      seconds=seconds, failed_indexes=failed_indexes)


def _label(job: dict[str, Any]) -> str:
    step = (job["metadata"].get("annotations") or {}).get(sequential.STEP_NAME)
    return f"step {step!r} (job/{job['metadata']['name']})" if step else \
        f"job/{job['metadata']['name']}"
