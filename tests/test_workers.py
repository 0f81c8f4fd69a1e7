"""pytest-xdist with the mlgen plugin: `-n auto` means three workers on the local cluster
and one session on any other; each worker's figures reach the controller's summary
under the worker's name."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlgen.conformance import figures, sessions

pytest_plugins = ["pytester"]

RECORDS = """
def test_records_a_figure(mlgen_record):
    mlgen_record("a figure from this worker")
"""


def _workers_line(result: pytest.RunResult) -> str:
    return next((line for line in result.outlines if "workers [" in line), "")


def test_auto_means_three_local_clusters_and_one_session_elsewhere(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    local = pytester.runpytest_subprocess("-n", "auto", "-p", "no:cacheprovider")
    local.assert_outcomes(passed=1)
    assert f"{sessions.LOCAL_WORKERS} workers [1 item]" in _workers_line(local)
    kind = pytester.runpytest_subprocess(
        "-n", "auto", "--mlgen-cluster", "kind", "-p", "no:cacheprovider"
    )
    kind.assert_outcomes(passed=1)
    assert _workers_line(kind) == "", "kind: one session, no workers"
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "2")
    told = pytester.runpytest_subprocess("-n", "auto", "-p", "no:cacheprovider")
    assert "2 workers [1 item]" in _workers_line(told), "xdist's own variable is honoured"


def test_each_workers_figures_reach_the_summary_under_its_name(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_a=RECORDS, test_b=RECORDS)
    result = pytester.runpytest_subprocess(
        "-n", "2", "--dist", "loadfile", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*mlgen conformance figures*"])
    named = sorted(line for line in result.outlines if line.endswith(": a figure from this worker"))
    assert named == ["gw0: a figure from this worker", "gw1: a figure from this worker"]


def test_a_worker_hands_over_figures_and_estimates_the_controller_takes() -> None:
    worker = SimpleNamespace(
        stash=pytest.Stash(),
        workeroutput={},
        pluginmanager=SimpleNamespace(get_plugin=lambda name: None),  # no terminal
    )
    figures.reporter(worker, keep=True)("calibrated client (waves): worst step 0.1s")  # type: ignore[arg-type]
    figures.estimates(worker)("sweep/parallel", 12.5, 10.0)  # type: ignore[arg-type]
    figures.hand_over(worker)  # type: ignore[arg-type]
    controller = SimpleNamespace(stash=pytest.Stash())
    figures.take_over(controller, "gw1", worker.workeroutput)  # type: ignore[arg-type]
    figures.take_over(controller, "gw2", {})  # type: ignore[arg-type]  # a worker without figures
    printed: list[str] = []
    terminal = SimpleNamespace(section=lambda title: printed.append(f"== {title}"))
    terminal.write_line = printed.append
    figures.summary(terminal, controller)  # type: ignore[arg-type]
    assert printed[:2] == [
        "== mlgen conformance figures",
        "gw1: calibrated client (waves): worst step 0.1s",
    ]
    assert printed[3:] == figures.table([("sweep/parallel", 12.5, 10.0)])


def test_outside_xdist_nothing_is_handed_over() -> None:
    config = SimpleNamespace(stash=pytest.Stash())
    figures.hand_over(config)  # type: ignore[arg-type]
    assert not hasattr(config, "workeroutput")
