"""What the cluster reports about a run: Jobs and pod attempts with their times.

Collected from Job status (`startTime`, `completionTime`, `failedIndexes`) and pod
status (container `startedAt`/`finishedAt`, exit codes, node, completion index,
per-index failure count), saved as JSON, and measured: makespan, concurrency, order.
With a `recorder.Recorder` that watched the run, every start and end is the moment the
watch saw it, in milliseconds on one clock (`resolution` 0.25 s); the API server's
whole-second times stay beside them (`api_start`, `api_end`) as a cross-check. Without
one, the API's times are all there is (`resolution` 1 s).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic

from mlgen import contract, lazy

if TYPE_CHECKING:
    from mlgen import kube, recorder
else:  # the Kubernetes client (mlgen-gitops[cluster]) only when a run is collected
    kube, recorder = lazy.Module("mlgen.kube"), lazy.Module("mlgen.recorder")
from mlgen.errors import UsageError

API_RESOLUTION = 1.0  # the API server keeps times to the second, truncated


@dataclass(frozen=True)
class JobRecord:
    name: str
    step: str
    wave: int
    status: str  # Complete | Failed | Running | NotStarted
    start: float | None  # seconds since the timeline's origin
    end: float | None
    failed_indexes: str = ""
    api_start: float | None = None  # the API server's times, whole seconds, same origin
    api_end: float | None = None


@dataclass(frozen=True)
class PodRecord:
    name: str
    job: str
    index: int | None
    attempt: int
    node: str
    phase: str
    start: float | None
    end: float | None
    exit_code: int | None
    step: str = ""  # the batch's job name this pod ran (by completion index or step)
    api_start: float | None = None
    api_end: float | None = None
    # When the pod was created: from here to `start` it was Pending (scheduling, image
    # pull). Recorded runs take the watch's first sighting; older timelines lack it.
    created: float | None = None


def peak(pods: Sequence[PodRecord]) -> int:
    """Most of these pods running at one instant; intervals are half-open [start, end)."""
    events: list[tuple[float, int]] = []
    for pod in pods:
        if pod.start is not None:
            events.append((pod.start, 1))
            if pod.end is not None:
                events.append((pod.end, -1))
    running = most = 0
    for _, delta in sorted(events):  # at equal times -1 sorts first: end before start
        running += delta
        most = max(most, running)
    return most


@dataclass
class Timeline:
    batch: str
    variant: str
    namespace: str
    origin: str  # ISO time that offset 0 stands for
    jobs: list[JobRecord] = field(default_factory=list)
    pods: list[PodRecord] = field(default_factory=list)
    resolution: float = API_RESOLUTION  # how far a recorded time may be off, seconds

    @property
    def makespan(self) -> float:
        """First Job start to last end; a Failed Job has no completionTime, so its pods'
        last finish counts instead."""
        starts = [j.start for j in self.jobs if j.start is not None]
        ends = [
            t for t in [*(j.end for j in self.jobs), *(p.end for p in self.pods)] if t is not None
        ]
        return (max(ends) - min(starts)) if starts and ends else 0.0

    def max_concurrency(self) -> int:
        """Most pods running at one instant; intervals are half-open [start, end)."""
        return peak(self.pods)

    def failures(self) -> list[str]:
        """One sentence per job whose pods failed, naming the batch's job (and its index in
        an Indexed Job), how often it failed and its last exit code."""
        failed: dict[tuple[str, int | None], list[PodRecord]] = {}
        for pod in self.pods:
            if pod.phase == "Failed":
                failed.setdefault((pod.job, pod.index), []).append(pod)
        out = []
        for (job, index), pods in failed.items():
            name = pods[-1].step or job
            where = f"job {name!r}" + (f" (index {index} of {job})" if index is not None else "")
            code = pods[-1].exit_code
            out.append(
                f"{where} failed {len(pods)} time(s)"
                + (f", last exit code {code}" if code is not None else "")
            )
        return out

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Timeline:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            # Every field of its type (a chart does arithmetic on them): pydantic checks
            # the dataclasses' own annotations.
            return pydantic.TypeAdapter(Timeline).validate_python(
                {"resolution": API_RESOLUTION, **data} if isinstance(data, dict) else data
            )
        except pydantic.ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise UsageError(
                f"{path}: not a timeline written by mlgen ({where}: {first['msg']}); pass "
                "the JSON that `mlgen apply --timeline` or the conformance suite wrote"
            ) from None
        except (OSError, ValueError, RecursionError) as e:
            why = "nested too deep" if isinstance(e, RecursionError) else str(e)
            raise UsageError(
                f"{path}: not a timeline written by mlgen ({why}); pass the JSON "
                "that `mlgen apply --timeline` or the conformance suite wrote"
            ) from None


def selector(batch: str, variant: str) -> str:
    return f"{contract.PART_OF}={batch},{contract.VARIANT}={variant}"


def recorder_for(client: kube.Kube, manifests: list[dict[str, Any]]) -> recorder.Recorder:
    """A recorder for the batch and variant these rendered objects belong to."""
    job = _first_job(manifests)
    labels = job["metadata"].get("labels") or {}
    return recorder.Recorder(
        client,
        namespace=job["metadata"]["namespace"],
        selector=selector(labels.get(contract.PART_OF, ""), labels.get(contract.VARIANT, "")),
    )


def _first_job(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    job = next((o for o in manifests if o["kind"] == "Job"), None)
    if job is None:
        raise UsageError("no Job among the applied objects: nothing to record a timeline of")
    return job


def collect_for(
    client: kube.Kube, manifests: list[dict[str, Any]], *, recorded: recorder.Recorder | None = None
) -> Timeline:
    """The timeline of the batch and variant that these rendered objects belong to."""
    job = _first_job(manifests)
    labels = job["metadata"].get("labels") or {}
    return collect(
        client,
        batch=labels.get(contract.PART_OF, ""),
        variant=labels.get(contract.VARIANT, ""),
        namespace=job["metadata"]["namespace"],
        manifests=manifests,
        recorded=recorded,
    )


PAGE = 500  # objects per list call: collection holds one page of API objects at a time


def collect(
    client: kube.Kube,
    *,
    batch: str,
    variant: str,
    namespace: str,
    manifests: list[dict[str, Any]] | None = None,
    recorded: recorder.Recorder | None = None,
    page: int = PAGE,
) -> Timeline:
    """Read every Job of `batch`/`variant` in `namespace` and its pods from the cluster;
    with `recorded`, take every start and end from what the recorder's watches saw.

    Lists go `page` objects at a time (0: all at once) and each object is reduced to its
    record before the next page is read, so memory grows with the records, not with the
    API objects (about 40 times larger in the client's models)."""
    wanted = selector(batch, variant)
    raw_jobs: list[tuple[str, dict[str, str], Any]] = []
    with kube.errors(f"listing the jobs of {batch} in {namespace}"):
        for j in _pages(client.batch.list_namespaced_job, namespace, wanted, page):
            raw_jobs.append((j.metadata.name, dict(j.metadata.annotations or {}), j.status))
        present = {name for name, _, _ in raw_jobs}
        for obj in manifests or []:  # steps that never started are part of the story too
            if obj["kind"] == "Job" and obj["metadata"]["name"] not in present:
                raw_jobs.append(
                    (obj["metadata"]["name"], obj["metadata"].get("annotations") or {}, None)
                )
        steps = {name: notes.get(contract.STEP_NAME, "") for name, notes, _ in raw_jobs}
        indexed = {
            name: notes[contract.JOB_NAMES].split(",")
            for name, notes, _ in raw_jobs
            if notes.get(contract.JOB_NAMES)
        }
        pods = [  # absolute times (epoch seconds) until the origin is known
            _pod(p, steps=steps, indexed=indexed)
            for p in _pages(client.core.list_namespaced_pod, namespace, wanted, page)
        ]
    records = [_job(name, notes, status) for name, notes, status in raw_jobs]
    starts = [r.start for r in records if r.start is not None]
    starts += [p.start for p in pods if p.start is not None]
    origin = min(starts) if starts else None

    def moved(moment: float | None) -> float | None:
        return None if moment is None or origin is None else moment - origin

    def shifted(record: _Record) -> _Record:
        if origin is None:
            return record
        return dataclasses.replace(record, start=moved(record.start), end=moved(record.end))

    records = [shifted(r) for r in records]
    records.sort(key=lambda r: (r.wave, r.start if r.start is not None else float("inf")))
    found = Timeline(
        batch=batch,
        variant=variant,
        namespace=namespace,
        origin=datetime.fromtimestamp(origin, tz=UTC).isoformat() if origin else "",
        jobs=records,
        pods=[dataclasses.replace(shifted(p), created=moved(p.created)) for p in pods],
    )
    if recorded is not None:
        found = _as_recorded(found, recorded)
    found.pods.sort(key=lambda p: (p.start if p.start is not None else float("inf"), p.name))
    found.pods[:] = _number_attempts(found.pods)
    return found


def _pages(lister: Callable[..., Any], namespace: str, wanted: str, page: int) -> Iterator[Any]:
    """Every object the list returns, `page` at a time (0: one unpaginated list)."""
    token: str | None = None
    while True:
        paging = {"limit": page, "_continue": token} if page else {}
        listing = lister(namespace, label_selector=wanted, **paging)
        yield from listing.items
        token = listing.metadata._continue
        if not page or not token:
            return


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _job(name: str, notes: dict[str, str], status: Any) -> JobRecord:
    state = "NotStarted" if status is None else "Running"
    for condition in (status.conditions or []) if status else []:
        if condition.status == "True" and condition.type in ("Complete", "Failed"):
            state = condition.type
    return JobRecord(
        name=name,
        step=notes.get(contract.STEP_NAME, name),
        wave=_wave(notes),
        status=state,
        start=_epoch(status.start_time) if status else None,
        end=_epoch(status.completion_time) if status else None,
        failed_indexes=(status.failed_indexes or "") if status else "",
    )


def _as_recorded(found: Timeline, recorded: recorder.Recorder) -> Timeline:
    """The same records with the watch's times, re-based on the first recorded start; the
    API's times move to api_start/api_end."""
    starts = [
        s.running
        for s in [*recorded.jobs.values(), *recorded.pods.values()]
        if s.running is not None
    ]
    base = min(starts) if starts else 0.0

    def at(moment: float | None) -> float | None:
        return None if moment is None else round(moment - base, 3)

    def retimed(record: _Record, table: dict[str, recorder.Seen]) -> _Record:
        moments = table.get(record.name) or recorder.Seen(created=0.0)
        return dataclasses.replace(
            record,
            api_start=record.start,
            api_end=record.end,
            start=at(moments.running),
            end=at(moments.ended),
        )

    jobs = [retimed(j, recorded.jobs) for j in found.jobs]
    pods = [
        dataclasses.replace(
            retimed(p, recorded.pods),
            created=at(recorded.pods[p.name].created) if p.name in recorded.pods else None,
        )
        for p in found.pods
    ]
    origin = datetime.fromtimestamp(recorded.wall_origin + base).astimezone().isoformat()
    return Timeline(
        batch=found.batch,
        variant=found.variant,
        namespace=found.namespace,
        origin=origin,
        jobs=jobs,
        pods=pods,
        resolution=recorder.RESOLUTION,
    )


_Record = TypeVar("_Record", JobRecord, PodRecord)


def _wave(notes: dict[str, str]) -> int:
    try:
        return int(notes.get(contract.SYNC_WAVE, "0") or 0)
    except ValueError:
        return 0  # not one of mlgen's Jobs; its place in the record does not matter


def _pod(pod: Any, *, steps: dict[str, str], indexed: dict[str, list[str]]) -> PodRecord:
    labels = pod.metadata.labels or {}
    annotations = pod.metadata.annotations or {}
    terminated = running = None
    for status in pod.status.container_statuses or []:
        terminated = terminated or status.state.terminated
        running = running or status.state.running
    start = terminated.started_at if terminated else (running.started_at if running else None)
    owner = next((o.name for o in pod.metadata.owner_references or [] if o.kind == "Job"), "")
    raw = labels.get(contract.COMPLETION_INDEX)
    index = int(raw) if raw is not None else None
    names = indexed.get(owner, [])
    step = names[index] if index is not None and index < len(names) else steps.get(owner, "")
    return PodRecord(
        name=pod.metadata.name,
        job=owner,
        index=index,
        attempt=int(annotations.get(contract.INDEX_FAILURE_COUNT, "0")) + 1,
        node=pod.spec.node_name or "",
        phase=pod.status.phase or "",
        start=_epoch(start),
        end=_epoch(terminated.finished_at) if terminated else None,
        exit_code=terminated.exit_code if terminated else None,
        step=step,
        created=_epoch(pod.metadata.creation_timestamp),
    )


def _number_attempts(pods: list[PodRecord]) -> list[PodRecord]:
    """Non-indexed Jobs carry no failure count: number their pods by start order."""
    seen: dict[tuple[str, int | None], int] = {}
    out = []
    for pod in pods:
        key = (pod.job, pod.index)
        seen[key] = seen.get(key, 0) + 1
        attempt = pod.attempt if pod.index is not None else seen[key]
        out.append(pod if attempt == pod.attempt else dataclasses.replace(pod, attempt=attempt))
    return out
