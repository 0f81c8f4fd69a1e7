"""pytest-xdist with the mlgen plugin: `-n auto` means `mlgen_workers` workers on the
local cluster and one session on any other; several workers on kind are refused; each
worker's figures reach the controller's summary under the worker's name."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import xdist.plugin

from mlgen.conformance import figures

pytest_plugins = ["pytester"]

RECORDS = """
def test_records_a_figure(mlgen_record):
    mlgen_record("a figure from this worker")
"""


def _auto(pytester: pytest.Pytester, *args: str) -> int:
    """What `-n auto` resolves to in a session with these arguments."""
    config = pytester.parseconfig("-p", "no:cacheprovider", *args)
    return int(config.hook.pytest_xdist_auto_num_workers(config=config))


def test_auto_is_mlgen_workers_locally_and_one_session_elsewhere(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    pytester.makeini("[pytest]\nmlgen_workers = 7\n")
    assert _auto(pytester) == 7, "mlgen's answer must come before xdist's CPU count"
    assert _auto(pytester, "--mlgen-cluster", "kind") == 0
    assert _auto(pytester, "--mlgen-cluster", "kubeconfig") == 0
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "2")
    assert _auto(pytester) == 2, "xdist's own variable is honoured on the local cluster"
    assert _auto(pytester, "--mlgen-cluster", "kind") == 0, "but never on kind"


def test_without_mlgen_workers_auto_stays_xdists_answer(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any project whose environment has mlgen installed: its `-n auto` is unchanged."""
    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    config = pytester.parseconfig("-p", "no:cacheprovider")
    own = xdist.plugin.pytest_xdist_auto_num_workers(config)
    assert config.hook.pytest_xdist_auto_num_workers(config=config) == own


def test_a_bad_mlgen_workers_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmlgen_workers = three\n")
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess("-n", "auto", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*mlgen_workers = 'three': a number of pytest-xdist workers*"])


def test_workers_on_kind_are_refused_before_anything_starts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-n", "2", "--mlgen-cluster", "kind", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mlgen-cluster kind runs one session on one cluster*"])


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


def _worker() -> SimpleNamespace:
    return SimpleNamespace(
        stash=pytest.Stash(),
        workeroutput={},
        pluginmanager=SimpleNamespace(get_plugin=lambda name: None),  # no terminal
    )


def _printed(config: SimpleNamespace) -> list[str]:
    printed: list[str] = []
    terminal = SimpleNamespace(section=lambda title: printed.append(f"== {title}"))
    terminal.write_line = printed.append
    figures.summary(terminal, config)  # type: ignore[arg-type]
    return printed


def test_a_worker_hands_over_figures_and_estimates_the_controller_takes_once() -> None:
    worker = _worker()
    figures.reporter(worker, keep=True)("calibrated client (waves): worst step 0.1s")  # type: ignore[arg-type]
    figures.estimates(worker)("sweep/parallel", 12.5, 10.0)  # type: ignore[arg-type]
    figures.hand_over(worker)  # type: ignore[arg-type]
    controller = SimpleNamespace(stash=pytest.Stash())
    figures.take_over(controller, "gw1", worker.workeroutput)  # type: ignore[arg-type]
    figures.take_over(controller, "gw1", worker.workeroutput)  # type: ignore[arg-type]  # Ctrl-C: down twice
    assert _printed(controller) == [
        "== mlgen conformance figures",
        "gw1: calibrated client (waves): worst step 0.1s",
        "== mlgen estimate against measured makespan",
        *figures.table([("sweep/parallel", 12.5, 10.0)]),
    ]


def test_a_worker_that_went_down_says_so() -> None:
    controller = SimpleNamespace(stash=pytest.Stash())
    figures.take_over(controller, "gw2", None, error="worker 'gw2' crashed")  # type: ignore[arg-type]
    figures.take_over(controller, "gw0", {})  # type: ignore[arg-type]  # finished, no figures
    assert _printed(controller) == [
        "== mlgen conformance figures",
        "gw2: no figures, the worker went down (worker 'gw2' crashed)",
    ]
