"""A recorded run's timeline takes the watch's millisecond times and keeps the API
server's whole seconds beside them (docs/design.md, "Conformance bounds")."""

from __future__ import annotations

from types import SimpleNamespace

from mlgen import recorder, timeline


def test_recorded_times_replace_the_api_seconds_which_stay_as_a_cross_check() -> None:
    api = timeline.Timeline(
        batch="b",
        variant="sequential",
        namespace="ns",
        origin="",
        jobs=[
            timeline.JobRecord(name="j", step="s", wave=0, status="Complete", start=0.0, end=5.0)
        ],
        pods=[
            timeline.PodRecord(
                name="p",
                job="j",
                index=0,
                attempt=1,
                node="n",
                phase="Succeeded",
                start=1.0,
                end=4.0,
                exit_code=0,
            )
        ],
    )
    seen = SimpleNamespace(
        jobs={"j": recorder.Seen(created=0.1, running=0.2, ended=5.3)},
        pods={"p": recorder.Seen(created=0.3, running=1.2, ended=4.25)},
        wall_origin=1_700_000_000.0,
    )
    found = timeline._as_recorded(api, seen)  # type: ignore[arg-type]
    (job,), (pod,) = found.jobs, found.pods
    assert (job.start, job.end, job.api_start, job.api_end) == (0.0, 5.1, 0.0, 5.0)
    assert (pod.start, pod.end, pod.api_start, pod.api_end) == (1.0, 4.05, 1.0, 4.0)
    assert pod.created == 0.1  # the watch's first sighting, on the same clock
    assert found.resolution == recorder.RESOLUTION < timeline.API_RESOLUTION
    assert found.makespan == 5.1
