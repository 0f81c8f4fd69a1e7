"""Why a pod waits and how a failed one ended, in the cluster's words (mlgen.lookout):
what `mlgen apply` prints and the conformance plugin's stall guard reports."""

from __future__ import annotations

from typing import Any

from mlgen import contract, lookout
from mlgen.errors import ClusterError


class Client:
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


def pending(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "t"}, "status": {"phase": "Pending", **status}}


def test_the_reason_is_the_clusters_own_words() -> None:
    scheduled = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
    message = "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    gpu = pending(conditions=[{**scheduled, "message": message}])
    assert lookout.reason(Client(), gpu) == f"Unschedulable: {message}"
    waiting = {"reason": "CreateContainerConfigError", "message": 'secret "wandb" not found'}
    config = pending(containerStatuses=[{"state": {"waiting": waiting}}])
    said = lookout.reason(Client(), config)
    assert said == 'CreateContainerConfigError: secret "wandb" not found'
    starting = pending(containerStatuses=[{"state": {"waiting": {"reason": "ContainerCreating"}}}])
    assert lookout.reason(Client(), starting) == "", "starting is not a reason to wait"
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
            "lastTimestamp": "2025-01-01T00:00:09Z",
        },
        {
            "type": "Warning",
            "reason": "FailedMount",
            "message": 'persistentvolumeclaim "imagenet" not found',
            "lastTimestamp": "2025-01-01T00:00:05Z",
        },
    ]
    said = lookout.reason(Client(events=events), pending())
    assert said == 'FailedMount: persistentvolumeclaim "imagenet" not found'


def test_events_out_of_reach_are_no_reason_not_a_failure() -> None:
    client = Client()

    def forbidden(namespace: str, *, about: str) -> Any:
        raise ClusterError("listing in namespace t: the API server said 403 Forbidden")

    client.events = forbidden  # type: ignore[method-assign]
    assert lookout.reason(client, pending()) == ""


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
    client = Client([failed({"state": {"terminated": oom}})])
    assert lookout.ending(client, "t", "train") == "OOMKilled, exit code 137"
    assert client.asked == [(f"{contract.JOB_NAME_LABEL}=train", "status.phase=Failed")]
    assert lookout.ending(client, "t", "train", condition="BackoffLimitExceeded") == (
        "OOMKilled, exit code 137"
    ), "the Job's routine reason adds nothing"
    init = {"state": {"terminated": {"exitCode": 2, "reason": "Error"}}}
    client = Client([failed({"state": {"waiting": {"reason": "PodInitializing"}}}, init=(init,))])
    assert lookout.ending(client, "t", "train") == "exit code 2"
    assert lookout.ending(Client(), "t", "train", condition="DeadlineExceeded") == (
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
