"""Timeline collection reads the cluster a page at a time and gives the same record as one
unpaginated list: pods are reduced to records as each page arrives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace as NS
from typing import Any

from mlgen import contract, timeline

T0 = datetime(2026, 11, 30, tzinfo=UTC)


def _job() -> Any:
    return NS(
        metadata=NS(
            name="sweep-par",
            annotations={contract.JOB_NAMES: ",".join(f"lr-{i}" for i in range(7))},
        ),
        status=NS(
            start_time=T0,
            completion_time=T0 + timedelta(seconds=9),
            conditions=[NS(type="Complete", status="True")],
            failed_indexes=None,
        ),
    )


def _pod(i: int) -> Any:
    started = T0 + timedelta(seconds=1 + i)
    finished = started + timedelta(seconds=2)
    return NS(
        metadata=NS(
            name=f"sweep-par-{i}-x",
            creation_timestamp=T0 + timedelta(seconds=i // 2),  # Pending until `started`
            labels={contract.COMPLETION_INDEX: str(i)},
            annotations={contract.INDEX_FAILURE_COUNT: "0"},
            owner_references=[NS(kind="Job", name="sweep-par")],
        ),
        spec=NS(node_name="kwok-0"),
        status=NS(
            phase="Succeeded",
            container_statuses=[
                NS(
                    state=NS(
                        terminated=NS(started_at=started, finished_at=finished, exit_code=0),
                        running=None,
                    )
                )
            ],
        ),
    )


class Lister:
    """A list call over `items`, honouring limit and continue like the API server."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.calls: list[tuple[int, str | None]] = []

    def __call__(
        self, namespace: str, *, label_selector: str, limit: int = 0, _continue: str | None = None
    ) -> Any:
        self.calls.append((limit, _continue))
        first = int(_continue or 0)
        last = first + limit if limit else len(self.items)
        token = str(last) if limit and last < len(self.items) else None
        return NS(items=self.items[first:last], metadata=NS(_continue=token))


def _collect(page: int) -> tuple[timeline.Timeline, Lister]:
    pods = Lister([_pod(i) for i in range(7)])
    client: Any = NS(
        batch=NS(list_namespaced_job=Lister([_job()])), core=NS(list_namespaced_pod=pods)
    )
    found = timeline.collect(
        client,
        batch="sweep",
        variant="parallel",
        namespace="ns",
        page=page,
    )
    return found, pods


def test_pages_give_the_same_timeline_as_one_list() -> None:
    paged, lister = _collect(page=3)
    whole, single = _collect(page=0)
    assert lister.calls == [(3, None), (3, "3"), (3, "6")] and single.calls == [(0, None)]
    assert paged == whole
    assert [p.step for p in paged.pods] == [f"lr-{i}" for i in range(7)]
    assert [(p.start, p.end) for p in paged.pods][:2] == [(1.0, 3.0), (2.0, 4.0)]
    assert [p.created for p in paged.pods][:4] == [0.0, 0.0, 1.0, 1.0]  # same origin
    assert paged.jobs[0].start == 0.0 and paged.jobs[0].end == 9.0
    assert paged.origin == T0.isoformat() and paged.makespan == 9.0
