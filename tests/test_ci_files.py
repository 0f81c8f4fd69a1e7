"""Files that run elsewhere (users' GitHub Actions, kind) checked offline here."""

from __future__ import annotations

import re
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


def test_kind_config_is_named_and_pins_node_images_by_digest() -> None:
    config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    assert config["kind"] == "Cluster" and config["name"]
    assert all(
        re.fullmatch(r"kindest/node:v1\.\d+\.\d+@sha256:[0-9a-f]{64}", node["image"])
        for node in config["nodes"]
    )


def test_ci_script_runs_the_readme_test_command_and_handles_no_tests() -> None:
    script = (ROOT / ".ci/run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "bash .ci/run" in readme and "`pytest`" in readme
    assert "\n.venv/bin/pytest --junitxml=" in script  # the README's command, plus a report
    assert '"$status" -eq 5' in script and '"$kind_status" -eq 5' in script
    assert "trap teardown EXIT" in script


def test_ci_script_runs_the_users_kind_command_against_real_kind() -> None:
    script = (ROOT / ".ci/run").read_text()
    assert "mlgen cluster build --kind" in script
    assert "mlgen cluster docker -- " in script
    for words in (
        "pytest conformance/ --mlgen-cluster kind",
        "--mlgen-kind-config kind-config.yaml",
        '--mlgen-kind-image "$MLGEN_KIND_NODE_IMAGE"',
    ):
        assert words in " ".join(script.split()), words


def test_kind_workflow_local_control_plane_and_default_version_agree() -> None:
    from mlgen import features, scaffold, spec, versions

    config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    assert {node["image"] for node in config["nodes"]} == {versions.KIND_RELEASED_NODE}
    released = versions.KIND_RELEASED_NODE.split(":")[1].split("@")[0]  # v1.36.4
    # The local image is built from the patch the Go module proxy serves, same minor.
    assert released.rsplit(".", 1)[0] == versions.KUBERNETES.rsplit(".", 1)[0]
    assert versions.KIND_NODE_IMAGE.endswith(f":{versions.KUBERNETES}")
    for path in (ROOT / ".github/workflows/conformance.yaml", None):
        text = (
            path.read_text()
            if path
            else scaffold.files(scaffold.Options())[".github/workflows/conformance.yaml"]
        )
        kind_step = next(
            s
            for s in yaml.safe_load(text)["jobs"]["kind"]["steps"]
            if str(s.get("uses", "")).startswith("helm/kind-action")
        )
        assert kind_step["with"]["version"] == versions.KIND, path or "mlgen init"
        assert kind_step["with"].get("kubectl_version", released) == released
    scaffolded = yaml.safe_load(scaffold.files(scaffold.Options())["kind-config.yaml"])
    assert {node["image"] for node in scaffolded["nodes"]} == {versions.KIND_RELEASED_NODE}
    rows = {  # the pins table of the page on real kind
        line.split("|")[1].strip(): line
        for line in (ROOT / "docs/real-kind.md").read_text().splitlines()
        if line.startswith("| ")
    }
    assert (
        f"v{versions.KIND.removeprefix('v')} (the workflows pin `version: {versions.KIND}`)"
        in rows["kind"]
    )
    assert f"`{versions.KIND_RELEASED_NODE}`" in rows["node image"]
    assert f"`{versions.KIND_NODE_IMAGE}`" in rows["node image"]
    assert f"| {released} | {versions.KUBERNETES}:" in rows["Kubernetes"]
    minor = ".".join(versions.KUBERNETES.removeprefix("v").split(".")[:2])
    assert spec.DEFAULT_KUBERNETES_VERSION == features.DEFAULT == minor
    assert minor in features.supported()


def test_ci_enforces_the_format_lint_and_types() -> None:
    script = (ROOT / ".ci/run").read_text()
    for command in ("ruff format --check", "ruff check", "mypy"):
        assert f".venv/bin/{command}" in script, command
