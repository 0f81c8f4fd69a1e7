"""Nothing waits silently: why a run's pods do not run, when waiting is stuck, and how a
failed pod ended, in the cluster's own words.

A pod that stays Pending (unscheduled, or scheduled with a container waiting to start)
while no pod of the run runs, starts or ends for a bound is stuck: a missing claim, too
few GPUs, an image that cannot be pulled. A pod running elsewhere is progress, so a
parallel run queued on capacity (pods Pending while others run, however long) is not
stuck. The reason is the scheduler's or the kubelet's: the PodScheduled condition's
reason and message, a container's waiting reason and message, or the pod's latest
Warning event that nothing has overtaken (no later Normal event; no FailedScheduling once
the pod is scheduled). `mlgen apply` looks between the slices of its waits (`Lookout`) and calls
a pod stuck only when the cluster gives such a reason (one pulling a large image is on
its way); the conformance plugin's stall guard (`conformance/stalls.py`), whose bound is
calibrated to its clusters, keeps a `Watch` of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from mlgen import contract
from mlgen.errors import ClusterError, StuckError

if TYPE_CHECKING:
    from mlgen import kube

T = TypeVar("T")

# The pods still to run or running: an ended pod never changes again, and an Indexed Job
# of 10,000 completions keeps them all, so a look lists only the unfinished ones.
UNFINISHED = "status.phase!=Succeeded,status.phase!=Failed"
EVERY = 5.0  # seconds between looks while a wait goes on
_STARTING = (None, "ContainerCreating", "PodInitializing")  # waiting, but not stuck
NO_REASON = "no reason given by the scheduler or the kubelet yet"


def selector(runs: list[dict[str, Any]]) -> str:
    """The label selector of the pods of these rendered objects: their batches and
    variants (the pods carry both), or every pod mlgen rendered when they say neither."""
    labels = [(o.get("metadata") or {}).get("labels") or {} for o in runs]
    batches = sorted({str(x[contract.PART_OF]) for x in labels if contract.PART_OF in x})
    found = sorted({str(x[contract.VARIANT]) for x in labels if contract.VARIANT in x})
    if not batches or not found:
        return f"{contract.MANAGED_BY}={contract.MANAGER}"
    return f"{contract.PART_OF} in ({','.join(batches)}),{contract.VARIANT} in ({','.join(found)})"


def reason(client: kube.Kube, pod: dict[str, Any]) -> str:
    """Why a Pending pod does not run, in the cluster's words; "" when it gave none."""
    status = pod.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"{condition.get('reason')}: {condition.get('message')}"
    for container in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting and waiting.get("reason") not in _STARTING:
            return f"{waiting.get('reason')}: {waiting.get('message') or ''}".rstrip(": ")
    meta = pod.get("metadata") or {}
    try:
        events = client.events(meta.get("namespace", ""), about=meta.get("name", ""))
    except ClusterError:  # events may be out of the user's reach: no word, not a failure
        return ""
    # Only a warning nothing has overtaken: a pod scheduled after a FailedScheduling, or
    # one whose image pull started after a failed mount, is on its way, not stuck.
    settled = max((_when(e) for e in events if e.get("type") == "Normal"), default="")
    scheduled = _scheduled(pod)
    warnings = [
        e
        for e in events
        if e.get("type") == "Warning"
        and _when(e) >= settled
        and not (scheduled and e.get("reason") == "FailedScheduling")
    ]
    if not warnings:
        return ""
    last = max(warnings, key=_when)
    return f"{last.get('reason')}: {last.get('message')}"


def queued(client: kube.Kube, job: dict[str, Any]) -> str:
    """Why Kueue has not admitted a suspended Job: its Workload's QuotaReserved message
    ("couldn't assign flavors to pod set main: insufficient unused quota ..."); "" when
    the Job is not suspended, or nothing says."""
    if not (job.get("spec") or {}).get("suspend"):
        return ""
    meta = job.get("metadata") or {}
    try:
        workloads = client.objects(
            *contract.WORKLOAD,
            str(meta.get("namespace", "")),
            selector=f"{contract.WORKLOAD_JOB_UID}={meta.get('uid', '')}",
        )
    except ClusterError:  # no Kueue here, or out of the user's reach: suspended, no word
        return "suspended"
    for workload in workloads:
        for condition in (workload.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "QuotaReserved" and condition.get("status") == "False":
                return f"queued, waiting for admission by Kueue: {condition.get('message')}"
    return "queued, waiting for admission by Kueue" if workloads else "suspended"


def _scheduled(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "PodScheduled" and c.get("status") == "True" for c in conditions)


def _when(event: dict[str, Any]) -> str:
    # RFC 3339 times of one cluster sort as text.
    meta = event.get("metadata") or {}
    return str(
        event.get("lastTimestamp") or event.get("eventTime") or meta.get("creationTimestamp")
    )


def ending(client: kube.Kube, namespace: str, job: str, *, condition: str = "") -> str:
    """How a failed Job ended: its latest failed pod's container (`exit code 3`,
    `OOMKilled, exit code 137`), after the Job's own reason when that says more than
    "its pods failed" (`DeadlineExceeded`)."""
    words = [] if condition in ("", "BackoffLimitExceeded", "FailedIndexes") else [condition]
    try:
        failed = client.pods(
            namespace, selector=f"{contract.JOB_NAME_LABEL}={job}", fields="status.phase=Failed"
        )
    except ClusterError:  # the pods may be out of the user's reach: the Job's word only
        failed = []
    ends = [end for pod in failed if (end := _terminated(pod))]
    if ends:
        last = max(ends, key=lambda t: str(t.get("finishedAt")))
        if last.get("reason") not in (None, "", "Error", "Completed"):
            words.append(str(last["reason"]))
        words.append(f"exit code {last.get('exitCode')}")
    return ", ".join(words)


def _terminated(pod: dict[str, Any]) -> dict[str, Any] | None:
    """The failing container's end: the first that exited non-zero (an init container
    first, as the kubelet runs them)."""
    status = pod.get("status") or {}
    for container in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        for state in ("state", "lastState"):
            end = (container.get(state) or {}).get("terminated")
            if end and end.get("exitCode"):
                return dict(end)
    return None


class Watch:
    """One namespace's unfinished pods, look after look: when something last moved, and
    since when each pod has been seen Pending."""

    def __init__(self, *, now: float) -> None:
        self.state: str | None = None
        self.moved = now
        self.since: dict[str, float] = {}

    def note(self, pods: list[dict[str, Any]], *, now: float) -> None:
        """Take a listing of the unfinished pods; a pod that appeared, was scheduled,
        started, ended (left the listing) or runs is progress."""
        # Being scheduled is progress too: the pod then waits for its image, not a node.
        state = ";".join(
            sorted(f"{_name(p)}={_phase(p)}/{_scheduled(p)}/{_running(p)}" for p in pods)
        )
        if state != self.state or any(_phase(p) == "Running" for p in pods):
            self.state, self.moved = state, now
        waiting = {_name(p) for p in pods if _phase(p) == "Pending"}
        self.since = {n: self.since.get(n, now) for n in waiting}

    def stuck(
        self, pods: list[dict[str, Any]], *, now: float, bound: float
    ) -> dict[str, Any] | None:
        """The pod Pending longest, when nothing has moved for `bound` seconds."""
        waiting = [p for p in pods if _name(p) in self.since]
        if not waiting or now - self.moved <= bound:
            return None
        return min(waiting, key=lambda p: self.since[_name(p)])

    def pending_for(self, pod: dict[str, Any], *, now: float) -> float:
        return now - self.since.get(_name(pod), now)


def _name(pod: dict[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name"))


def _phase(pod: dict[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase"))


def _job(pod: dict[str, Any]) -> str:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return str(labels.get(contract.JOB_NAME_LABEL, ""))


def _running(pod: dict[str, Any]) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return sum(1 for s in statuses if (s.get("state") or {}).get("running") is not None)


class Lookout:
    """What `mlgen apply` sees of its pods while it waits: each Job's reason for waiting,
    said once when it appears or changes, and a StuckError when a pod the cluster gives a
    reason for has been Pending past `bound` with nothing else moving (0: no bound)."""

    def __init__(
        self,
        client: kube.Kube,
        *,
        selector: str,
        bound: float,
        labels: dict[str, str],
        say: Callable[[str], None],
    ) -> None:
        self.client, self.selector, self.bound = client, selector, bound
        self.labels, self.say = labels, say  # labels: a Job's name -> its name in lines
        self.watches: dict[str, Watch] = {}
        self.said: dict[str, str] = {}  # a Job's name -> the reason last said

    def during(self, namespace: str, wait: Callable[[float], T], *, deadline: float) -> T:
        """`wait(timeout)` in slices of EVERY seconds until it answers (anything true) or
        `deadline` passes, looking at the pods between slices. Each slice lists its
        objects again (one Job, usually), and an end is still seen the moment it comes."""
        while True:
            remaining = deadline - time.monotonic()
            answer = wait(max(0.0, min(remaining, EVERY)))
            if answer or remaining <= EVERY:
                return answer
            self.look(namespace)

    def look(self, namespace: str) -> None:
        """One look at the run's unfinished pods in `namespace`."""
        now = time.monotonic()
        watch = self.watches.setdefault(namespace, Watch(now=now))
        try:
            pods = self.client.pods(namespace, selector=self.selector, fields=UNFINISHED)
        except ClusterError:
            # No word on the pods (the API server restarting, or pods out of the user's
            # reach): no stall either; the wait itself rides out a restart.
            watch.moved = now
            return
        watch.note(pods, now=now)
        self._queued(namespace)
        oldest: dict[str, dict[str, Any]] = {}  # each Job's pod Pending longest
        for pod in sorted(pods, key=lambda p: watch.since.get(_name(p), now)):
            if _phase(pod) == "Pending":
                oldest.setdefault(_job(pod), pod)
        # One line per Job, not per pod: a queue of 100 pods waits for one reason.
        whys = {job: reason(self.client, pod) for job, pod in sorted(oldest.items())}
        for job, why in whys.items():
            if why and self.said.get(job) != why:
                self.said[job] = why
                self.say(f"  {self._label(job)}: pod {_name(oldest[job])} Pending: {why}")
        stuck = watch.stuck(pods, now=now, bound=self.bound) if self.bound > 0 else None
        # Stuck only with the cluster's word on why: a pod scheduled and pulling a 20 GB
        # image for half an hour is Pending with no reason, and on its way.
        if stuck is not None and whys.get(_job(stuck)):
            job = _job(stuck)
            raise StuckError(
                # The reason early: a line longer than limits.MAX_ERROR_LINE loses its end.
                f"{self._label(job)}: pod {namespace}/{_name(stuck)} has been Pending for "
                f"at least {watch.pending_for(stuck, now=now):.0f}s: "
                f"{whys[job].rstrip('. ')}. No pod of the run ran, "
                f"started or ended for {self.bound:.0f}s (--pending-timeout); fix the cause "
                "or raise it (0: no bound). The Jobs stay in the cluster"
            )

    def _queued(self, namespace: str) -> None:
        """Say why each suspended Job of the run waits: a Job Kueue has not admitted has
        no pods yet, so the pods cannot say it."""
        try:
            jobs = self.client.jobs(namespace, selector=self.selector)
        except ClusterError:
            return
        for job in jobs:
            name = str((job.get("metadata") or {}).get("name", ""))
            why = queued(self.client, job)
            if why and self.said.get(name) != why:
                self.said[name] = why
                self.say(f"  {self._label(name)}: {why}")

    def _label(self, job: str) -> str:
        return self.labels.get(job) or (f"job/{job}" if job else "the run")
