"""`pip install .` gives an importable `mlgen` with its templates, schema, stages and a
`mlgen` command: build the wheel, install it into a fresh venv, render outside the repo."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_renders_outside_the_repo(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("mlgen_gitops-*.whl")  # the distribution: mlgen-gitops
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "mlgen/templates/entrypoint.sh.j2",
        "mlgen/templates/header.j2",
        "mlgen/schema/batch.schema.json",
        "mlgen/cluster/stages/stages.yaml",
        "mlgen/cluster/nodes.yaml",
        "mlgen/py.typed",
        "mlgen/cli/app.py",
    ):
        assert expected in names, expected
    assert not any(n.startswith(("generator/", "tests/", "templates/")) for n in names)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # Dependencies come from the test environment (appended after the venv's own
    # site-packages, whose .pth files it does not run), so no network is needed and
    # mlgen itself can only come from the wheel.
    site = subprocess.run(
        [str(python), "-c", "import site; print(site.getsitepackages()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deps = next(p for p in sys.path if p.endswith("site-packages"))
    Path(site, "test-deps.pth").write_text(deps + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    (work / "batch.yaml").write_text((ROOT / "examples" / "sweep.yaml").read_text())
    done = subprocess.run(
        [str(env_dir / "bin" / "mlgen"), "render", "batch.yaml", "-o", "out"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rendered = (work / "out" / "resnet-sweep" / "parallel" / "params.yaml").read_text()
    assert "entrypoint.sh: |" in rendered
    located = subprocess.run(
        [str(python), "-c", "import mlgen; print(mlgen.__file__)"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(env_dir) in located, "the installed mlgen, not the source tree, was imported"


def test_the_jinja2_floor_has_no_known_sandbox_escape() -> None:
    """Matrix templates run in Jinja2's sandbox (below mlgen's own expression rules);
    3.1.0-3.1.5 have known escapes, so the declared floor and the installed one are 3.1.6+."""
    import importlib.metadata
    import re
    import tomllib

    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    (floor,) = [d for d in project["project"]["dependencies"] if re.match(r"jinja2\b", d, re.I)]

    def version(text: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", text)[:3])

    assert version(floor.split(">=", 1)[1]) >= (3, 1, 6), floor
    assert version(importlib.metadata.version("jinja2")) >= (3, 1, 6)
