"""In a parallel run every index is named by its job: in the pod (MLGEN_JOB_NAME through
the ConfigMap), in the timeline, in the Gantt chart and in the failure lines."""

from __future__ import annotations

from xml.etree import ElementTree

from mlgen import contract
from mlgen.conformance import runner


def test_a_parallel_run_names_jobs_in_chart_and_failures(mlgen_run: runner.Runner) -> None:
    doc = runner.sleeper_batch("names", durations=[3, 3, 3, 3], parallelism=2)
    doc["spec"]["jobs"] = [
        {**job, "name": name}
        for job, name in zip(
            doc["spec"]["jobs"], ["lr-1e-2", "lr-1e-3", "lr-bad", "lr-1e-4"], strict=True
        )
    ]
    doc["spec"]["jobs"][2]["simulate"] = {"exitCode": 3}
    result = mlgen_run.run(mlgen_run.from_dict(doc), "parallel")
    config = next(o for o in result.objects if o["kind"] == "ConfigMap")
    assert config["data"][contract.env_key(2, contract.JOB_NAME_ENV)] == "lr-bad"
    assert {p.step for p in result.timeline.pods} == {"lr-1e-2", "lr-1e-3", "lr-bad", "lr-1e-4"}
    failures = result.timeline.failures()
    assert len(failures) == 1 and failures[0].startswith("job 'lr-bad' (index 2 of ")
    assert "exit code 3" in failures[0]
    chart = mlgen_run.artifacts / "names-parallel.svg"
    rows = {t.text for t in ElementTree.parse(chart).iter("{http://www.w3.org/2000/svg}text")}
    assert {"lr-1e-2 (index 0)", "lr-bad (index 2)"} <= rows
    assert result.failure is not None
