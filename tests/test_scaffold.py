"""The scaffold `mlgen init` writes guards the repository it creates: its render check
and pre-commit hook fail when a batch file is deleted but its manifests stay, and its
workflows install the mlgen that wrote them."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from mlgen import DISTRIBUTION, scaffold
from mlgen.cli.app import app

from .conftest import batch_doc

ROOT = Path(__file__).resolve().parents[1]


def _check(root: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["render", "--check", *extra, str(root / "batches"), "-o", str(root / "manifests")]
    )
    return result.exit_code, result.output


def test_a_deleted_batch_fails_the_scaffold_s_check(tmp_path: Path) -> None:
    root = tmp_path / "gitops"
    assert CliRunner().invoke(app, ["init", str(root)]).exit_code == 0
    second = root / "batches" / "second.yaml"
    second.write_text(yaml.safe_dump(batch_doc()), encoding="utf-8")
    rendered = CliRunner().invoke(
        app, ["render", str(root / "batches"), "-o", str(root / "manifests")]
    )
    assert rendered.exit_code == 0, rendered.output
    second.unlink()  # its manifests stay in Git, and would stay live
    assert _check(root)[0] == 0  # without --prune the leak passes
    code, said = _check(root, "--prune")
    assert code == 1 and "stale file(s)" in said, said
    # ...and every check the scaffold wires runs with --prune.
    hook = yaml.safe_load((root / ".pre-commit-config.yaml").read_text())
    (entry,) = [h["entry"] for r in hook["repos"] for h in r["hooks"]]
    workflow = (root / ".github/workflows/render-check.yaml").read_text()
    shipped = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())[0]
    assert "render --check --prune" in entry and hook["repos"][0]["repo"] == "local"
    assert "mlgen render --check --prune batches/ -o manifests/" in workflow
    assert shipped["entry"] == "mlgen render --check --prune"


def test_the_workflows_install_the_version_that_wrote_them(tmp_path: Path) -> None:
    pinned = scaffold.requirement()
    assert pinned.startswith(f"{DISTRIBUTION}==") and pinned != f"{DISTRIBUTION}=="
    files = scaffold.files(scaffold.Options())
    assert f'pip install "{pinned}"' in files[".github/workflows/render-check.yaml"]
    kind = scaffold.requirement("kind")
    assert kind == pinned.replace(DISTRIBUTION, f"{DISTRIBUTION}[kind]")
    assert f'pip install "{kind}" pytest' in files[".github/workflows/conformance.yaml"]
    for text in files.values():
        assert 'install "mlgen"' not in text and 'install "mlgen[' not in text
