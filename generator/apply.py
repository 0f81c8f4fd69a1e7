"""`mlgen apply`: server-side apply a rendered variant directory, wave by wave.

Order: namespaces, then configuration (ConfigMaps, Secrets, ServiceAccounts), then
what the strategies run (Jobs, or any kind a strategy annotates: `contract.is_run`),
grouped by their Argo CD sync wave. Each wave is applied, then watched until its objects
reach a condition that ends them (the strategy says which, success first); a
Failed Job stops the chain unless its step says `onFailure: continue`. Applying a
finished batch again changes nothing: the objects are identical, and Complete Jobs are
recognised at once.

Only files mlgen rendered are read: they are written so that PyYAML reads exactly what
kubectl's decoder reads (see manifest.py), which a test proves with the real kubectl.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlgen import contract, kube, lookout, manifest, variants
from mlgen import references as refs
from mlgen.errors import JobFailedError, UsageError

if TYPE_CHECKING:
    from mlgen.variants.base import Variant

Progress = Callable[[str], None]

_KIND_ORDER = {
    "Namespace": 0,
    "ResourceQuota": 1,
    "LimitRange": 1,
    "ServiceAccount": 2,
    "Secret": 2,
    "ConfigMap": 2,
    "Role": 3,
    "RoleBinding": 3,
}
_WORKLOAD = 4


@dataclass(frozen=True)
class JobOutcome:
    name: str
    namespace: str
    step: str
    status: str  # Complete | Failed | NotStarted (`_status`: whatever the kind says)
    seconds: float
    failed_indexes: str = ""
    kind: str = "Job"
    # Set when the Job failed after its one pod succeeded (a deadline passing in between):
    # the Job's reason. The later steps had already been applied by then.
    failed_late: str = ""
    # Set when it failed: how, in the cluster's words (`exit code 3`, `DeadlineExceeded`).
    why: str = ""


@dataclass
class Outcome:
    jobs: list[JobOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[JobOutcome]:
        return [j for j in self.jobs if j.status == "Failed"]


def load_dir(directory: Path) -> list[dict[str, Any]]:
    """The objects of a rendered variant directory, in kustomization.yaml's order."""
    if not directory.is_dir():
        raise UsageError(
            f"{directory}: not a directory; pass a rendered variant directory "
            "such as manifests/<batch>/sequential"
        )
    objects: list[dict[str, Any]] = []
    for path in _resource_files(directory):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"{path}: cannot be read ({e})") from e
        if not manifest.is_generated(text):
            raise UsageError(
                f"{path}: was not rendered by mlgen (no generated-file header); "
                "mlgen apply reads only rendered files. Apply it with kubectl, "
                "or move it out of the directory"
            )
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as e:
            raise UsageError(f"{path}: cannot be read as YAML ({e}); render it again") from e
        objects.extend(
            d
            for d in docs
            if isinstance(d, dict) and d.get("kind") and d.get("kind") != "Kustomization"
        )
    if not objects:
        raise UsageError(
            f"{directory}: holds no Kubernetes objects; render a batch into it "
            "first (mlgen render batch.yaml -o manifests/)"
        )
    _one_variant_per_batch(directory, objects)
    return objects


def _one_variant_per_batch(directory: Path, objects: list[dict[str, Any]]) -> None:
    seen: dict[str, set[str]] = {}
    for obj in objects:
        labels = obj.get("metadata", {}).get("labels") or {}
        if contract.PART_OF in labels and contract.VARIANT in labels:
            seen.setdefault(labels[contract.PART_OF], set()).add(labels[contract.VARIANT])
    for batch, found in sorted(seen.items()):
        if len(found) > 1:
            choices = " or ".join(f"{directory}/{batch}/{v}" for v in sorted(found))
            raise UsageError(
                f"{directory}: holds {' and '.join(sorted(found))} variants of "
                f"batch {batch!r}, which would run the same jobs twice; pass one "
                f"variant directory: {choices}"
            )


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
    """The object's Argo CD sync wave (0 when unset); a malformed value is an error."""
    annotations = obj.get("metadata", {}).get("annotations") or {}
    raw = annotations.get(contract.SYNC_WAVE, "0")
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise UsageError(
            f"{obj.get('kind')} {obj.get('metadata', {}).get('name')}: "
            f"{contract.SYNC_WAVE} is {raw!r}, not a whole number; render the "
            "batch again"
        ) from None


def plan(objects: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """Configuration objects in apply order, and the Jobs grouped into waves."""
    config = sorted(
        (o for o in objects if not contract.is_run(o)),
        key=lambda o: (_KIND_ORDER.get(o["kind"], _WORKLOAD), wave_of(o)),
    )
    waves: dict[int, list[dict[str, Any]]] = {}
    for job in (o for o in objects if contract.is_run(o)):
        waves.setdefault(wave_of(job), []).append(job)
    return config, [waves[w] for w in sorted(waves)]


def variant_of(job: dict[str, Any]) -> Variant:
    """The variant that rendered this Job, which says what ends a wait for it."""
    annotations = job["metadata"].get("annotations") or {}
    strategy = annotations.get(contract.STRATEGY, variants.REGISTRY[0].name)
    try:
        return variants.get(strategy)
    except KeyError:
        raise UsageError(
            f"{_ref(job)}: unknown {contract.STRATEGY} "
            f"{strategy!r}; render the batch again with this mlgen"
        ) from None


def run(
    client: kube.Kube,
    objects: list[dict[str, Any]],
    *,
    timeout: float,
    progress: Progress = print,
    pending_timeout: float = 0.0,
) -> Outcome:
    """Apply and await; raise JobFailedError naming the failed Jobs and their indexes.
    While it waits, say why pods wait; raise StuckError when one has been Pending for
    `pending_timeout` seconds with nothing else of the run moving (0: never)."""
    config, waves = plan(objects)
    by_name = {o["metadata"]["name"]: o for o in objects if contract.is_run(o)}
    look = lookout.Lookout(
        client,
        selector=lookout.selector(list(by_name.values())),
        bound=pending_timeout,
        labels={name: _label(obj) for name, obj in by_name.items()},
        say=progress,
    )
    namespaces = sorted(
        {o["metadata"]["namespace"] for o in objects if o["metadata"].get("namespace")}
    )
    declared = {o["metadata"]["name"] for o in config if o["kind"] == "Namespace"}
    for namespace in namespaces:
        if namespace not in declared and not client.namespace_exists(namespace):
            raise UsageError(
                f"namespace {namespace!r} does not exist in the cluster; create it "
                f"first (kubectl create namespace {namespace})"
            )
    _check_references(client, config, waves)
    for obj in config:
        client.apply(obj)
        progress(f"applied {obj['kind']} {obj['metadata']['name']}")
    deadline = time.monotonic() + timeout
    outcome = Outcome()
    stopped = False
    for number, wave in enumerate(waves, start=1):
        if stopped:
            outcome.jobs.extend(_outcome(job, "NotStarted", 0.0) for job in wave)
            continue
        started = time.monotonic()
        finished: dict[str, JobOutcome] = {}  # steps a previous apply already ran to their end
        for job in wave:
            stored = client.apply(job)
            if ended := _ended(stored, variant_of(job).ends):
                status = stored.get("status") or {}
                finished[job["metadata"]["name"]] = _outcome(
                    job,
                    _status(ended, variant_of(job).ends),
                    0.0,
                    failed_indexes=status.get("failedIndexes") or "",
                    why=_why(client, job, status, variant_of(job).ends),
                )
                continue
            progress(
                f"[{number}/{len(waves)}] {_label(job)}: applied, waiting for "
                f"{variant_of(job).ends[0]}"
            )
        for job in wave:
            result = finished.get(job["metadata"]["name"]) or _await(
                client,
                job,
                deadline=deadline,
                started=started,
                progress=_counts(job, progress),
                look=look,
            )
            outcome.jobs.append(result)
            detail = (
                f" (failed indexes {result.failed_indexes}: {_named(result, by_name)})"
                if result.failed_indexes
                else ""
            )
            said = "Succeeded" if result.status == _SUCCEEDED else result.status
            took = f"after {result.seconds:.1f}s"
            if job["metadata"]["name"] in finished:
                took = "already (before this apply)"
            took += f": {result.why}" if result.why else ""
            progress(f"[{number}/{len(waves)}] {_label(job)}: {said} {took}{detail}")
            annotations = job["metadata"].get("annotations") or {}
            if result.status == "Failed" and annotations.get(contract.ON_FAILURE) != "continue":
                stopped = True
    outcome.jobs[:] = _confirm(client, outcome.jobs, by_name, deadline=deadline)
    if outcome.failed:
        names = "; ".join(
            _ref(j)
            + (
                f" failed indexes {j.failed_indexes} ({_named(j, by_name)})"
                if j.failed_indexes
                else ""
            )
            + (
                f" (its pod succeeded, then the Job failed: {j.failed_late}; the later "
                "steps had already been applied)"
                if j.failed_late
                else ""
            )
            + (f" ({j.why})" if j.why else "")
            for j in outcome.failed
        )
        skipped = sum(1 for j in outcome.jobs if j.status == "NotStarted")
        raise JobFailedError(
            f"{names} failed; {skipped} later step(s) not started. Inspect "
            f"with kubectl describe {_ref(outcome.failed[0])} -n "
            f"{outcome.failed[0].namespace}"
        )
    return outcome


def references(job: dict[str, Any]) -> set[tuple[str, str]]:
    """The (kind, name) of every object a Job's pods need to start: without them the pods
    are never created (or never start), and a wait would only end at its timeout."""
    return {(r.kind, r.name) for r in refs.of(job) if not r.optional}


_CREATE = {
    "ServiceAccount": "create serviceaccount {name}",
    "Secret": "create secret generic {name} --from-literal=...",
    "ConfigMap": "create configmap {name} --from-file=...",
    "PersistentVolumeClaim": "apply -f <a PersistentVolumeClaim named {name}>",
    "PriorityClass": "create priorityclass {name} --value=...",
}


def _check_references(
    client: kube.Kube, config: list[dict[str, Any]], waves: list[list[dict[str, Any]]]
) -> None:
    """Name each object the Jobs need that neither the output nor the cluster holds, once,
    with the Jobs that need it and the command that creates it."""
    declared = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in config}
    needed: dict[tuple[str, str | None, str], list[str]] = {}
    for job in (j for wave in waves for j in wave):
        namespace = job["metadata"]["namespace"]
        for kind, name in sorted(references(job)):
            scope = None if kind in refs.CLUSTER_SCOPED else namespace
            needed.setdefault((kind, scope, name), []).append(_ref(job))
    missing = []
    for (kind, scope, name), jobs in needed.items():
        if (kind, scope, name) in declared or client.exists(kind, scope, name):
            continue
        holder = f"namespace {scope}" if scope else "the cluster"
        command = _CREATE[kind].format(name=name)
        how = f"kubectl -n {scope} {command}" if scope else f"kubectl {command}"
        more = f" and {len(jobs) - 1} more" if len(jobs) > 1 else ""
        missing.append(
            f"{kind} {name!r} is not in {holder}, so the pods of {jobs[0]}{more} "
            f"cannot start; create it first ({how})"
        )
    if missing:
        raise UsageError("\n".join(missing))


def _await(
    client: kube.Kube,
    job: dict[str, Any],
    *,
    deadline: float,
    started: float,
    progress: Callable[[Any], None] | None = None,
    look: lookout.Lookout,
) -> JobOutcome:
    name, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
    unit = variant_of(job)
    if unit.done_when_pod_succeeds:
        selector = f"{contract.JOB_NAME_LABEL}={name}"
        phase = look.during(
            namespace,
            lambda seconds: client.wait_pod_ended(namespace, selector, timeout=seconds),
            deadline=deadline,
        )
        if phase == "Succeeded":  # its Job says Complete up to a second later: _confirm
            return _outcome(job, _SUCCEEDED, time.monotonic() - started)
    found = look.during(
        namespace,
        lambda seconds: client.wait_ended(
            namespace,
            [name],
            until=unit.ends,
            timeout=seconds,
            kind=(job["apiVersion"], job["kind"]),
            seen=progress,
        ),
        deadline=deadline,
    )
    if name not in found:
        what = _ref(job)
        raise JobFailedError(
            f"{what} in {namespace} did not finish before the "
            "--timeout; it keeps running in the cluster. Raise --timeout "
            f"or inspect it with kubectl describe {what} -n {namespace}"
        )
    status = found[name].get("status") or {}
    ended = next(
        c["type"]
        for c in status.get("conditions") or []
        if c.get("status") == "True" and c.get("type") in unit.ends
    )
    return _outcome(
        job,
        _status(ended, unit.ends),
        time.monotonic() - started,
        failed_indexes=status.get("failedIndexes") or "",
        why=_why(client, job, status, unit.ends),
    )


def _why(
    client: kube.Kube, job: dict[str, Any], status: dict[str, Any], ends: tuple[str, ...]
) -> str:
    """How a Job that ended Failed failed, in the cluster's words; "" for a success."""
    ended = next(
        (
            c
            for c in status.get("conditions") or []
            if c.get("status") == "True" and c.get("type") in ends
        ),
        None,
    )
    if ended is None or ended.get("type") == ends[0]:
        return ""
    meta = job["metadata"]
    return lookout.ending(
        client, meta["namespace"], meta["name"], condition=str(ended.get("reason") or "")
    )


PROGRESS_EVERY = 10.0  # seconds between progress lines for a Job of many completions


def _counts(job: dict[str, Any], progress: Progress) -> Callable[[Any], None] | None:
    """For a Job of several completions: say how many have succeeded, at most every
    PROGRESS_EVERY seconds and only when the counts changed."""
    completions = (job.get("spec") or {}).get("completions") or 1
    if completions == 1:
        return None
    said: list[Any] = [time.monotonic(), None]

    def seen(found: dict[str, Any]) -> None:
        status = found.get("status") or {}
        counts = tuple(status.get(k) or 0 for k in ("succeeded", "active", "failed"))
        if counts == said[1] or time.monotonic() - said[0] < PROGRESS_EVERY:
            return
        said[:] = [time.monotonic(), counts]
        progress(
            f"  {_label(job)}: {counts[0]:,}/{completions:,} succeeded, "
            f"{counts[1]:,} running, {counts[2]:,} failed"
        )

    return seen


_SUCCEEDED = "PodSucceeded"  # a step whose pod succeeded; its Job's condition still to come


def _confirm(
    client: kube.Kube,
    jobs: list[JobOutcome],
    objects: dict[str, dict[str, Any]],
    *,
    deadline: float,
) -> list[JobOutcome]:
    """Wait for the final condition of the Jobs that were left when their pod succeeded."""
    early = [j for j in jobs if j.status == _SUCCEEDED]
    found: dict[str, dict[str, Any]] = {}
    groups: dict[tuple[str, tuple[str, str], tuple[str, ...]], list[str]] = {}
    for each in early:
        obj = objects[each.name]
        key = (each.namespace, _kind(obj), variant_of(obj).ends)
        groups.setdefault(key, []).append(each.name)
    for (namespace, kind, ends), names in sorted(groups.items()):
        found.update(
            client.wait_ended(
                namespace,
                names,
                until=ends,
                timeout=max(1.0, deadline - time.monotonic()),
                kind=kind,
            )
        )
    out = []
    for job in jobs:
        if job.status == _SUCCEEDED:
            if job.name not in found:
                raise JobFailedError(
                    f"{_ref(job)} in {job.namespace}: its pod succeeded "
                    "but it never said Complete before the --timeout"
                )
            status = found[job.name].get("status") or {}
            ends = variant_of(objects[job.name]).ends
            ended = next(
                c
                for c in status.get("conditions") or []
                if c.get("status") == "True" and c.get("type") in ends
            )
            job = JobOutcome(
                name=job.name,
                namespace=job.namespace,
                step=job.step,
                status=_status(ended["type"], ends),
                seconds=job.seconds,
                failed_indexes=status.get("failedIndexes") or "",
                kind=job.kind,
                failed_late=(ended.get("reason") or "no reason given")
                if ended["type"] != ends[0]
                else "",
            )
        out.append(job)
    return out


def _named(result: JobOutcome, jobs: dict[str, dict[str, Any]]) -> str:
    """The batch's job names of an Indexed Job's failed indexes ("1,3-4" -> "b, d, e")."""
    annotations = jobs.get(result.name, {}).get("metadata", {}).get("annotations") or {}
    names = str(annotations.get(contract.JOB_NAMES, "")).split(",")
    found: list[str] = []
    for part in result.failed_indexes.split(","):
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            continue
        for index in range(int(low), int(high or low) + 1):
            found.append(names[index] if index < len(names) and names[index] else f"index {index}")
    return ", ".join(found)


def _outcome(
    job: dict[str, Any], status: str, seconds: float, *, failed_indexes: str = "", why: str = ""
) -> JobOutcome:
    meta = job["metadata"]
    step = (meta.get("annotations") or {}).get(contract.STEP_NAME, meta["name"])
    return JobOutcome(
        name=meta["name"],
        namespace=meta["namespace"],
        step=step,
        status=status,
        seconds=seconds,
        failed_indexes=failed_indexes,
        kind=job["kind"],
        why=why,
    )


def _ended(stored: Any, ends: tuple[str, ...]) -> str:
    """The end condition an object the API server returned already has, or ""."""
    status = (stored.get("status") if isinstance(stored, dict) else None) or {}
    return next(
        (
            str(c.get("type"))
            for c in status.get("conditions") or []
            if c.get("status") == "True" and c.get("type") in ends
        ),
        "",
    )


def _status(condition: str, ends: tuple[str, ...]) -> str:
    """Complete or Failed, whatever the kind calls them: a strategy's `ends` list its
    success condition first (a JobSet says Completed)."""
    return "Complete" if condition == ends[0] else "Failed"


def _kind(obj: dict[str, Any]) -> tuple[str, str]:
    return (obj["apiVersion"], obj["kind"])


def _ref(obj: dict[str, Any] | JobOutcome) -> str:
    """`job/name`, as kubectl names an object (`jobset/name` for a JobSet)."""
    if isinstance(obj, JobOutcome):
        return f"{obj.kind.lower()}/{obj.name}"
    return f"{obj['kind'].lower()}/{obj['metadata']['name']}"


def _label(job: dict[str, Any]) -> str:
    step = (job["metadata"].get("annotations") or {}).get(contract.STEP_NAME)
    return f"step {step!r} ({_ref(job)})" if step else _ref(job)
