"""Every command that writes fails on a bad output path with one line and exit 2 (or 1),
never a traceback; `render --check` prints its diff verbatim."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgen import gantt, timeline
from mlgen.cli.app import app

ROOT = Path(__file__).resolve().parents[1]
SWEEP = str(ROOT / "examples" / "sweep.yaml")


def one_line_failure(result: object) -> str:
    exit_code = getattr(result, "exit_code", None)
    exception = getattr(result, "exception", None)
    output = getattr(result, "output", "")
    assert exception is None or isinstance(exception, SystemExit), repr(exception)
    assert exit_code in (1, 2), (exit_code, output)
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return str(lines[0])


def a_timeline(tmp_path: Path) -> Path:
    found = timeline.Timeline(
        batch="b",
        variant="sequential",
        namespace="ns",
        origin="2026-01-01T00:00:00+00:00",
        jobs=[],
        pods=[],
    )
    path = tmp_path / "run.json"
    gantt.save(found, path)
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["render", SWEEP, "-o", "{file}/sub"],
        ["render", SWEEP, "-o", "/proc/mlgen-out"],
        ["schema", "-o", "/nonexistent/dir/s.json"],
        ["schema", "-o", "{file}/s.json"],
        ["schema", "-o", "/proc/mlgen-schema.json"],
        ["report", "{timeline}", "-o", "/proc/x.png"],
        ["report", "{timeline}", "-o", "/proc/x.svg"],
        ["report", "{timeline}", "-o", "{file}/x.svg"],
    ],
)
def test_bad_output_paths_fail_with_one_line(
    runner: CliRunner, tmp_path: Path, args: list[str]
) -> None:
    file = tmp_path / "a-file"
    file.write_text("x")
    values = {"file": str(file), "timeline": str(a_timeline(tmp_path))}
    result = runner.invoke(app, [a.format(**values) for a in args])
    line = one_line_failure(result)
    assert any(part in line for part in ("/proc/", str(file), "/nonexistent")), line


def test_an_unwritable_output_root_fails_with_one_line(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    tmp_path.chmod(0o755)
    command = [str(Path(sys.executable).parent / "mlgen")]
    if os.geteuid() == 0:
        # Root writes anywhere through CAP_DAC_OVERRIDE: run as root without capabilities,
        # the owner of `locked` and not a superuser. (Not as nobody: a checkout under a
        # private directory, /root or a 0700 home, is not readable by another user.)
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv")
        command = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--", *command]
    for args in (
        ["render", SWEEP, "-o", str(locked / "out")],
        ["render", SWEEP, "-o", str(locked)],
        ["schema", "-o", str(locked / "s.json")],
    ):
        result = subprocess.run(
            [*command, *args], capture_output=True, text=True, check=False, cwd=tmp_path
        )
        assert result.returncode in (1, 2), result
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
        assert str(locked) in lines[0]


def test_check_prints_the_diff_verbatim(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert runner.invoke(app, ["render", SWEEP, "-o", str(out)]).exit_code == 0
    kustomization = next(out.rglob("kustomization.yaml"))
    text = kustomization.read_text()
    odd = "# [bold]x[/] :smile: :thumbs_up:\tTAB [link=x]y[/link]  \\[z]\n"
    kustomization.write_text(text + odd)
    result = runner.invoke(app, ["render", SWEEP, "-o", str(out), "--check"])
    assert result.exit_code == 1
    assert f"-{odd}".encode() in result.stdout_bytes, result.stdout_bytes[-300:]


def test_check_keeps_carriage_returns_and_separators_inside_their_line(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert runner.invoke(app, ["render", SWEEP, "-o", str(out)]).exit_code == 0
    kustomization = next(out.rglob("kustomization.yaml"))
    odd = "# a\rb\u2028c\x85d\n"
    kustomization.write_bytes(kustomization.read_bytes() + odd.encode())
    result = runner.invoke(app, ["render", SWEEP, "-o", str(out), "--check"])
    assert result.exit_code == 1
    assert f"-{odd}".encode() in result.stdout_bytes, result.stdout_bytes[-300:]
