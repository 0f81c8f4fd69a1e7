"""Why a pod waits and how a failed one ended, in the cluster's words (mlgen.lookout):
what `mlgen apply` prints and the conformance plugin's stall guard reports."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from mlgen import contract, kube, lookout
from mlgen.errors import ClusterError

from .test_recorder import Response


class Fake:
    def __init__(
        self, pods: list[dict[str, Any]] | None = None, events: list[dict[str, Any]] | None = None
    ) -> None:
        self.listed, self.said = pods or [], events or []
        self.asked: list[tuple[str | None, str | None]] = []

    def pods(
        self, namespace: str, *, selector: str | None = None, fields: str | None = None
    ) -> Any:
        self.asked.append((selector, fields))
        return self.listed

    def events(self, namespace: str, *, about: str) -> list[dict[str, Any]]:
        return self.said

    def jobs(self, namespace: str, *, selector: str | None = None) -> list[dict[str, Any]]:
        return []


def pending(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "t"}, "status": {"phase": "Pending", **status}}


def test_the_reason_is_the_clusters_own_words() -> None:
    scheduled = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
    message = "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    gpu = pending(conditions=[{**scheduled, "message": message}])
    assert lookout.reason(Fake(), gpu) == f"Unschedulable: {message}"
    waiting = {"reason": "CreateContainerConfigError", "message": 'secret "wandb" not found'}
    config = pending(containerStatuses=[{"state": {"waiting": waiting}}])
    said = lookout.reason(Fake(), config)
    assert said == 'CreateContainerConfigError: secret "wandb" not found'
    starting = pending(containerStatuses=[{"state": {"waiting": {"reason": "ContainerCreating"}}}])
    assert lookout.reason(Fake(), starting) == "", "starting is not a reason to wait"
    events = [
        {
            "type": "Warning",
            "reason": "FailedMount",
            "message": "old",
            "lastTimestamp": "2025-01-01T00:00:01Z",
        },
        {
            "type": "Normal",
            "reason": "Scheduled",
            "message": "x",
            "lastTimestamp": "2025-01-01T00:00:00Z",
        },
        {
            "type": "Warning",
            "reason": "FailedMount",
            "message": 'persistentvolumeclaim "imagenet" not found',
            "lastTimestamp": "2025-01-01T00:00:05Z",
        },
    ]
    said = lookout.reason(Fake(events=events), pending())
    assert said == 'FailedMount: persistentvolumeclaim "imagenet" not found'


def test_a_warning_the_pod_has_moved_past_is_no_reason() -> None:
    """FailedScheduling, then scheduled and pulling a large image: on its way, not stuck,
    however long the pull takes."""
    events = [
        {
            "type": "Warning",
            "reason": "FailedScheduling",
            "message": "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.",
            "lastTimestamp": "2025-01-01T00:00:01Z",
        },
        {
            "type": "Normal",
            "reason": "Pulling",
            "message": 'Pulling image "trainer:2.4"',
            "lastTimestamp": "2025-01-01T00:00:30Z",
        },
    ]
    scheduled = {"type": "PodScheduled", "status": "True"}
    pulling = pending(conditions=[scheduled])
    assert lookout.reason(Fake(events=events), pulling) == ""
    # Scheduled but with no later Normal event: the old FailedScheduling is still not it.
    assert lookout.reason(Fake(events=events[:1]), pulling) == ""
    said: list[str] = []
    look = lookout.Lookout(
        Fake(pods=[pulling], events=events), selector="s", bound=600, labels={}, say=said.append
    )
    clock = [1000.0]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lookout.time, "monotonic", lambda: clock[0])
        look.look("t")
        clock[0] += 601
        look.look("t")  # no StuckError: the cluster gives no reason to call it stuck
    assert said == []
    # Being scheduled is progress: a pod Pending unscheduled, then scheduled, moved.
    watch = lookout.Watch(now=0.0)
    watch.note([pending()], now=0.0)
    watch.note([pulling], now=50.0)
    assert watch.moved == 50.0


def test_events_out_of_reach_are_no_reason_not_a_failure() -> None:
    fake = Fake()

    def forbidden(namespace: str, *, about: str) -> Any:
        raise ClusterError("listing in namespace t: the API server said 403 Forbidden")

    fake.events = forbidden  # type: ignore[method-assign]
    assert lookout.reason(fake, pending()) == ""


def failed(*statuses: dict[str, Any], init: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return {
        "metadata": {"name": "f"},
        "status": {
            "phase": "Failed",
            "containerStatuses": list(statuses),
            "initContainerStatuses": list(init),
        },
    }


def test_a_failed_job_ends_with_its_latest_pods_exit_code_and_reason() -> None:
    oom = {"exitCode": 137, "reason": "OOMKilled", "finishedAt": "2025-01-01T00:00:09Z"}
    fake = Fake([failed({"state": {"terminated": oom}})])
    assert lookout.ending(fake, "t", "train") == "OOMKilled, exit code 137"
    assert fake.asked == [(f"{contract.JOB_NAME_LABEL}=train", "status.phase=Failed")]
    assert lookout.ending(fake, "t", "train", condition="BackoffLimitExceeded") == (
        "OOMKilled, exit code 137"
    ), "the Job's routine reason adds nothing"
    init = {"state": {"terminated": {"exitCode": 2, "reason": "Error"}}}
    fake = Fake([failed({"state": {"waiting": {"reason": "PodInitializing"}}}, init=(init,))])
    assert lookout.ending(fake, "t", "train") == "exit code 2"
    assert lookout.ending(Fake(), "t", "train", condition="DeadlineExceeded") == (
        "DeadlineExceeded"
    ), "a Job stopped at its deadline leaves no failed pod"


def test_the_runs_pods_are_selected_by_batch_and_variant() -> None:
    def run(batch: str, variant: str) -> dict[str, Any]:
        labels = {contract.PART_OF: batch, contract.VARIANT: variant}
        return {"metadata": {"name": batch, "labels": labels}}

    assert lookout.selector([run("b", "sequential"), run("a", "sequential")]) == (
        f"{contract.PART_OF} in (a,b),{contract.VARIANT} in (sequential)"
    )
    assert lookout.selector([{"metadata": {"name": "x"}}]) == (
        f"{contract.MANAGED_BY}={contract.MANAGER}"
    )


def test_the_client_lists_pods_and_events_as_plain_json_with_their_selectors() -> None:
    pods = [pending()]
    calls: list[dict[str, Any]] = []
    answers = [
        Response(body={"items": pods}),
        Response(body={"items": [{"type": "Warning"}]}),
        Response(status=403),
    ]

    def lister(namespace: str, **options: Any) -> Response:
        calls.append(options)
        return answers.pop(0)

    cluster = kube.Kube(client.ApiClient(), where="a test")
    cluster.core.list_namespaced_pod = lister  # type: ignore[method-assign]
    cluster.core.list_namespaced_event = lister  # type: ignore[method-assign]
    assert cluster.pods("t", selector="a=b", fields=lookout.UNFINISHED) == pods
    assert cluster.events("t", about="p") == [{"type": "Warning"}]
    with pytest.raises(ClusterError, match="403"):
        cluster.pods("t")
    assert [(c.get("label_selector"), c.get("field_selector")) for c in calls] == [
        ("a=b", lookout.UNFINISHED),
        (None, "involvedObject.name=p"),
        (None, None),
    ]
    assert all(c["_preload_content"] is False for c in calls)


class Queue(Fake):
    """A Job Kueue holds: suspended, its Workload waiting for quota (or no Kueue)."""

    def __init__(self, workloads: list[dict[str, Any]] | None) -> None:
        super().__init__()
        self.workloads = workloads
        self.selected: list[str | None] = []

    def jobs(self, namespace: str, *, selector: str | None = None) -> list[dict[str, Any]]:
        meta = {"name": "train-1a2b", "namespace": namespace, "uid": "u-1"}
        return [{"metadata": meta, "spec": {"suspend": True}}]

    def objects(
        self, api_version: str, kind: str, namespace: str, *, selector: str | None = None
    ) -> list[dict[str, Any]]:
        self.selected.append(selector)
        if self.workloads is None:
            raise ClusterError("the server could not find the requested resource")
        return self.workloads


def test_a_queued_job_says_it_waits_for_admission_in_kueues_words() -> None:
    message = (
        "couldn't assign flavors to pod set main: insufficient unused quota for "
        "nvidia.com/gpu in flavor mlgen-default, 1 more needed"
    )
    waiting = {"type": "QuotaReserved", "status": "False", "reason": "Pending", "message": message}
    fake = Queue([{"status": {"conditions": [waiting]}}])
    job = fake.jobs("t")[0]
    assert lookout.queued(fake, job) == f"queued, waiting for admission by Kueue: {message}"
    assert fake.selected == [f"{contract.WORKLOAD_JOB_UID}=u-1"], "its own Workload, by uid"
    assert lookout.queued(fake, {**job, "spec": {"suspend": False}}) == "", "admitted"
    assert lookout.queued(Queue(None), job) == "suspended", "no Kueue: suspended, no word"
    lines: list[str] = []
    watch = lookout.Lookout(
        fake, selector="s", bound=0, labels={"train-1a2b": "train"}, say=lines.append
    )
    watch.look("t")
    watch.look("t")
    assert lines == [f"  train: queued, waiting for admission by Kueue: {message}"], "said once"
