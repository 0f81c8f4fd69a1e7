"""Files that run elsewhere (users' GitHub Actions, kind) checked offline here."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_github_workflow_matches_the_github_workflow_schema() -> None:
    from check_jsonschema.cli.main_command import main as check_jsonschema

    with pytest.raises(SystemExit) as done:
        check_jsonschema(
            [
                "--builtin-schema",
                "vendor.github-workflows",
                str(ROOT / ".github/workflows/conformance.yaml"),
            ]
        )
    assert done.value.code == 0


def test_workflow_runs_the_conformance_suite_on_kind_with_the_repo_config() -> None:
    workflow = yaml.safe_load((ROOT / ".github/workflows/conformance.yaml").read_text())
    commands = " ".join(step.get("run", "") for step in workflow["jobs"]["kind"]["steps"])
    assert "pytest conformance/ --mlgen-cluster kind" in commands
    assert "--mlgen-kind-config kind-config.yaml" in commands


def test_kind_config_is_named_and_pins_node_images() -> None:
    config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    assert config["kind"] == "Cluster" and config["name"]
    assert all(node["image"].startswith("kindest/node:v1.") for node in config["nodes"])


def test_ci_script_runs_the_readme_test_command_and_handles_no_tests() -> None:
    script = (ROOT / ".ci/run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "bash .ci/run" in readme and "`pytest`" in readme
    assert ".venv/bin/pytest\n" in script
    assert '"$status" -eq 5' in script
    assert "trap teardown EXIT" in script


def test_kind_workflow_local_control_plane_and_default_version_agree() -> None:
    from mlgen import features, spec
    from mlgen.cluster import versions

    config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    assert {node["image"] for node in config["nodes"]} == {f"kindest/node:{versions.KUBERNETES}"}
    workflow = yaml.safe_load((ROOT / ".github/workflows/conformance.yaml").read_text())
    kind_step = next(
        s
        for s in workflow["jobs"]["kind"]["steps"]
        if str(s.get("uses", "")).startswith("helm/kind-action")
    )
    assert kind_step["with"]["kubectl_version"] == versions.KUBERNETES
    minor = ".".join(versions.KUBERNETES.removeprefix("v").split(".")[:2])
    assert spec.DEFAULT_KUBERNETES_VERSION == features.DEFAULT == minor
    assert minor in features.supported()


def test_ci_enforces_the_format_lint_and_types() -> None:
    script = (ROOT / ".ci/run").read_text()
    for command in ("ruff format --check", "ruff check", "mypy"):
        assert f".venv/bin/{command}" in script, command
