"""Stand-in containers: a team's batch, unchanged, run on a cluster with real kubelets.

On kind, a kubeconfig cluster or the local cluster's real node, the suite cannot run a
team's real image and command for real hours on GPUs the cluster does not have. So every
container of a rendered Job runs a stand-in: a small image the test cluster has, whose
shell records what the process received (argv, env, uid, privilege flags, /dev/shm; see
`mlgen.cluster.probe`), sleeps the job's `expectedDuration` (already divided by the time
scale) and exits 0, or with the job's simulated exit code.

`CHANGES` is every change the suite makes to a rendered object, in one place; the run's
report prints it. Everything else — args, env, secrets, the Indexed Job's ConfigMap and
entrypoint, security context, volumes, /dev/shm, selectors, retries — stays as rendered.
`verify` then holds every recorded pod to what the batch file promised.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes.utils import parse_quantity

from mlgen import contract, kube, pod, spec, units
from mlgen.cluster import probe
from mlgen.conformance import fitting

MARK = "mlgen-standin"
# Set from the downward API on Indexed Jobs, so that `failAttempts` can count; the record
# leaves it out (it is the suite's, not the batch's).
FAILURES_ENV = "MLGEN_STANDIN_FAILURES"
CPU, MEMORY = "50m", "32Mi"
_ENTRYPOINT = ["/bin/sh", f"{pod.PARAMS_MOUNT}/{contract.ENTRYPOINT_KEY}"]

# $1: seconds to sleep, $2: "<exitCode>" or "<exitCode>/<failAttempts>" (empty: succeed),
# each one value or a comma list by completion index; then the program's own argv.
SCRIPT = (
    """mlgen_pick() {
  case $1 in *,*) ;; *) printf %s "$1"; return ;; esac
  mlgen_rest=$1, mlgen_n=0
  while [ -n "$mlgen_rest" ]; do
    mlgen_item=${mlgen_rest%%,*} mlgen_rest=${mlgen_rest#*,}
    if [ "$mlgen_n" = "${JOB_COMPLETION_INDEX:-0}" ]; then printf %s "$mlgen_item"; return; fi
    mlgen_n=$((mlgen_n + 1))
  done
}
mlgen_seconds=$(mlgen_pick "$1") mlgen_failure=$(mlgen_pick "$2")
shift 2
"""
    + probe.SCRIPT
    + """[ -z "$mlgen_seconds" ] || sleep "$mlgen_seconds"
[ -n "$mlgen_failure" ] || exit 0
mlgen_code=${mlgen_failure%%/*} mlgen_attempts=${mlgen_failure#*/}
if [ "$mlgen_attempts" != "$mlgen_failure" ] && \
   [ "${"""
    + FAILURES_ENV
    + """:-0}" -ge "$mlgen_attempts" ]; then exit 0; fi
exit "$mlgen_code"
"""
)

CHANGES = (
    "image: every container runs the stand-in image (kind: busybox; the local real node: "
    "mlgen's busybox image with imagePullPolicy Never)",
    "program: the stand-in shell is put in front of the container's command (for an Indexed "
    "Job, in front of the command its entrypoint runs), so it receives exactly the argv and "
    "env the program would; it records them, sleeps expectedDuration / time scale, and exits "
    "0 or with simulate.exitCode",
    f"env: Indexed Jobs get {FAILURES_ENV} (the downward API's index failure count), so that "
    "simulate.failAttempts counts; the record leaves it out",
    f"resources: cpu and memory requests capped at {CPU} and {MEMORY}, also where a limit "
    "alone would set them (a CI machine cannot hold a batch planned for 8-CPU nodes); limits "
    "and extended resources (GPUs) as rendered",
    "placement (the local real node only): a kubernetes.io/hostname node selector and a "
    "toleration of the node's taint",
)


@dataclass(frozen=True)
class Placement:
    """Where and with what image the stand-ins run."""

    image: str
    pull_never: bool = False
    node_name: str | None = None  # pin to this node (the local real node); None: anywhere
    toleration: dict[str, str] | None = None
    nodes: tuple[str, ...] = ()  # nodes labelled for the batch's node selectors


def place(obj: dict[str, Any], placement: Placement) -> dict[str, Any]:
    """A copy of a rendered object with the changes of `CHANGES` (Jobs only)."""
    out = copy.deepcopy(obj)
    if out.get("kind") != "Job":
        return out
    template = out["spec"]["template"]
    annotations = template.get("metadata", {}).get("annotations", {})
    seconds = _seconds(
        annotations.get(contract.EXPECTED_DURATIONS, annotations.get(contract.EXPECTED_DURATION))
    )
    failure = annotations.get(contract.SIMULATE_FAILURE, "")
    indexed = out["spec"].get("completionMode") == "Indexed"
    front = pod.literals(["/bin/sh", "-c", SCRIPT, MARK, seconds, failure])
    pod_spec = template["spec"]
    for container in [*pod_spec.get("initContainers", []), *pod_spec["containers"]]:
        container["image"] = placement.image
        if placement.pull_never:
            container["imagePullPolicy"] = "Never"
        if container.get("command") == _ENTRYPOINT:
            container["args"] = [*front, *container.get("args", [])]
        else:
            container["command"] = [*front, *container.get("command", [])]
        if indexed:
            container.setdefault("env", []).append(
                {
                    "name": FAILURES_ENV,
                    "valueFrom": {
                        "fieldRef": {
                            "fieldPath": f"metadata.annotations['{contract.INDEX_FAILURE_COUNT}']"
                        }
                    },
                }
            )
        resources = container.setdefault("resources", {})
        requests, limits = resources.get("requests", {}), resources.get("limits", {})
        for key, cap in (("cpu", CPU), ("memory", MEMORY)):
            # A limit without a request is a request of the limit (the API server's default).
            asked = requests.get(key, limits.get(key))
            if asked is not None and parse_quantity(str(asked)) > parse_quantity(cap):
                resources.setdefault("requests", requests)[key] = cap
    if placement.node_name is not None:
        pod_spec.setdefault("nodeSelector", {})["kubernetes.io/hostname"] = placement.node_name
    if placement.toleration is not None:
        pod_spec.setdefault("tolerations", []).append(dict(placement.toleration))
    return out


def _seconds(durations: str | None) -> str:
    """`30s,1m30s,` (Go durations by index) as `30,90,` for the stand-in's `sleep`."""
    if not durations:
        return ""
    return ",".join(str(units.parse_duration(d)) if d else "" for d in durations.split(","))


class StandinKube(kube.Kube):
    """A client that applies every Job through `place`; everything else goes through
    unchanged. A pinned node (the local real node, mlgen's own) takes every label the
    Job's selectors and required affinity ask for; elsewhere `fitting` labels nodes."""

    def __init__(self, inner: kube.Kube, placement: Placement) -> None:
        super().__init__(inner.api, where=inner.where)
        self.inner = inner
        self.placement = placement

    def apply(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        placed = place(obj, self.placement)
        pinned = self.placement.node_name
        if placed.get("kind") == "Job" and not dry_run and pinned is not None:
            labels = fitting.needs([placed]).node_labels
            if labels:
                with kube.errors(f"labelling node {pinned}"):
                    self.core.patch_node(pinned, {"metadata": {"labels": labels}})
        return super().apply(placed, dry_run=dry_run)


def expected_argv(job: spec.Job) -> list[str]:
    """What the program itself is started with: its command, then its args."""
    return [*(job.command or ()), *job.args]


def recorded(log: str) -> probe.Report:
    """The stand-in's record from a pod log, without the suite's own variable."""
    report = probe.read(log)
    report.env.pop(FAILURES_ENV, None)
    return report


def verify(
    client: kube.Kube,
    *,
    batch: spec.Batch,
    variant: str,
    objects: Iterable[dict[str, Any]],
    secret_value: str,
    complete: bool,
) -> list[str]:
    """One line per difference between what a stand-in recorded and what the batch file
    promised: argv (per index in Indexed Jobs), env, uid, no privilege escalation, no
    capabilities, /dev/shm. With `complete`, every job must have a record."""
    names = {n for j in batch.jobs for n in (*j.env, *j.secret_env)}
    jobs = sorted(
        (o for o in objects if o.get("kind") == "Job"),
        key=lambda o: int(o["metadata"].get("annotations", {}).get(contract.SYNC_WAVE, "0")),
    )
    problems: list[str] = []
    seen: set[str] = set()
    by_name = {j.name: j for j in batch.jobs}
    for position, job_object in enumerate(jobs):
        name, namespace = job_object["metadata"]["name"], batch.namespace
        # Which batch job a pod ran, as the rendered Job says it: its step, or its
        # index's name in an Indexed Job (a stage's group is one among several Jobs).
        notes = job_object["metadata"].get("annotations") or {}
        indexed = [n for n in notes.get(contract.JOB_NAMES, "").split(",") if n]
        step = notes.get(contract.STEP_NAME)
        with kube.errors(f"listing the pods of Job {namespace}/{name}"):
            pods = client.core.list_namespaced_pod(
                namespace, label_selector=f"batch.kubernetes.io/job-name={name}"
            ).items
        for each in pods:
            if each.status.phase not in ("Succeeded", "Failed"):
                continue
            index = (each.metadata.labels or {}).get(contract.COMPLETION_INDEX)
            if index is not None and indexed:
                job = by_name[indexed[int(index)]]
            elif step in by_name:
                job = by_name[step]
            else:
                job = batch.jobs[int(index) if index is not None else position]
            with kube.errors(f"reading the log of pod {namespace}/{each.metadata.name}"):
                log = client.core.read_namespaced_pod_log(each.metadata.name, namespace)
            try:
                report = recorded(log)
            except ValueError as e:
                problems.append(f"job {job.name!r} (pod {each.metadata.name}): {e}")
                continue
            seen.add(job.name)
            want_env: dict[str, str | None] = dict.fromkeys(names)
            want_env.update(job.env)
            want_env.update(dict.fromkeys(job.secret_env, secret_value))
            want_env[contract.JOB_NAME_ENV] = job.name  # every variant tells the process
            found = probe.mismatches(
                report,
                args=expected_argv(job),
                env=want_env,
                uid=job.run_as_user,
                shm_bytes=_shm(client, each, job),
            )
            problems += [
                f"{batch.name}/{variant}: job {job.name!r} (pod {each.metadata.name}): {f}"
                for f in found
            ]
    if complete:
        missing = [j.name for j in batch.jobs if j.name not in seen]
        if missing:
            problems.append(f"{batch.name}/{variant}: no stand-in record for jobs {missing}")
    return problems


def _shm(client: kube.Kube, each: Any, job: spec.Job) -> int | None:
    if job.shm_size is None:
        return None
    with kube.errors(f"reading node {each.spec.node_name}"):
        allocatable = client.core.read_node(each.spec.node_name).status.allocatable
    limits = each.spec.containers[0].resources.limits or {}
    return probe.shm_size(
        job.shm_size, pod_memory_limit=limits.get("memory"), node_memory=allocatable["memory"]
    )


def describe(changes: Sequence[str] = CHANGES) -> list[str]:
    """The report's lines: what the suite changed in the rendered objects, and why."""
    return ["stand-in containers: the suite changed the rendered Jobs in these ways only:"] + [
        f"  - {c}" for c in changes
    ]


def warm_up(
    client: kube.Kube, namespace: str, nodes: Sequence[str], *, image: str, timeout: float = 180
) -> float:
    """Start one stand-in pod on each node and wait for all to succeed; the seconds taken.

    A fresh node's first pod waits for its CNI config and the image's first unpack
    (measured on kind here: 10 s, against 2 s for every later pod); calibration would
    count that wait as a slow step, and the run that meets it as a slow run."""
    started = time.monotonic()
    security = {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for number, name in enumerate(nodes):
        with kube.errors(f"creating a warm-up pod on node {name}"):
            client.core.create_namespaced_pod(
                namespace,
                {
                    "metadata": {"name": f"warm-up-{number}"},
                    "spec": {
                        "nodeName": name,  # every node, tainted or not
                        "restartPolicy": "Never",
                        "automountServiceAccountToken": False,
                        "containers": [
                            {
                                "name": "warm-up",
                                "image": image,
                                "command": ["/bin/sh", "-c", "true"],
                                "securityContext": security,
                            }
                        ],
                    },
                },
            )
    pending = {f"warm-up-{number}" for number in range(len(nodes))}
    while pending:
        if time.monotonic() - started > timeout:
            raise AssertionError(
                f"warm-up: pods {sorted(pending)} did not succeed in {timeout:.0f}s; "
                "see `kubectl describe pod` in namespace " + namespace
            )
        with kube.errors(f"listing the warm-up pods in {namespace}"):
            for each in client.core.list_namespaced_pod(namespace).items:
                if each.status.phase == "Succeeded":
                    pending.discard(each.metadata.name)
                elif each.status.phase == "Failed":
                    raise AssertionError(f"warm-up pod {each.metadata.name} failed on its node")
        time.sleep(0.5)
    return time.monotonic() - started
