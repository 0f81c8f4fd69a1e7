"""Help text: every command's `--help` works on a core install (no Kubernetes client, no
matplotlib), and arguments are named as a user writes them, not by their Python type."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from importlib.machinery import ModuleSpec
from typing import Any

import pytest
from typer.testing import CliRunner

from mlgen.cli.app import app

EXTRAS = ("kubernetes", "matplotlib", "urllib3")


class _Missing:
    """An import finder that makes the extras' packages fail as when not installed."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if name.split(".")[0] in EXTRAS:
            raise ImportError(f"not installed: {name}")
        return None


@pytest.fixture
def core_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The CLI imported afresh while the extras do not import; sys.modules as it was after."""
    saved = dict(sys.modules)
    for name in saved:
        if name.split(".")[0] in ("mlgen", *EXTRAS):
            del sys.modules[name]
    monkeypatch.setattr(sys, "meta_path", [_Missing(), *sys.meta_path])
    try:
        yield importlib.import_module("mlgen.cli.app").app
    finally:
        for name in set(sys.modules) - set(saved):
            del sys.modules[name]
        sys.modules.update(saved)


CLUSTER_COMMANDS = [
    "apply",
    "report",
    "cluster",
    "cluster build",
    "cluster docker",
    "cluster up",
    "cluster down",
    "cluster list",
    "cluster nodes",
]


def test_help_of_the_cluster_commands_needs_no_extra(core_app: Any) -> None:
    runner = CliRunner()
    for command in CLUSTER_COMMANDS:
        result = runner.invoke(core_app, [*command.split(), "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert result.output.startswith("Usage:"), command
    assert not [name for name in sys.modules if name.split(".")[0] in EXTRAS]
    assert "mlgen-gitops[cluster]" in runner.invoke(core_app, ["apply", "--help"]).output


@pytest.mark.parametrize(
    "args", [["apply", "manifests/b/parallel"], ["report", "t.json"], ["cluster", "up"]]
)
def test_running_a_cluster_command_without_the_extra_says_what_to_install(
    core_app: Any, args: list[str]
) -> None:
    result = CliRunner().invoke(core_app, args)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: `mlgen {' '.join(args[:-1] if args[0] != 'cluster' else args)}` needs the "
        "Kubernetes client, which this install of mlgen leaves out; run pip install "
        "'mlgen-gitops[cluster]'"
    ]


@pytest.mark.parametrize("command", ["render", "validate", "estimate"])
def test_batch_arguments_are_named_without_their_python_type(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    arguments = result.output.split("Arguments:")[1].split("Options:")[0]
    assert arguments.split()[0] == "BATCH..."
    assert "list[" not in result.output and "Path" not in result.output


def test_variant_option_lists_its_choices_without_a_python_type() -> None:
    output = CliRunner().invoke(app, ["render", "--help"]).output
    assert "--variant [sequential|parallel|stages]" in output


def test_the_default_node_pools_file_prints_without_the_extra(core_app: Any) -> None:
    result = CliRunner().invoke(core_app, ["cluster", "nodes"])
    assert result.exit_code == 0, result.output
    assert "- pool: gpu" in result.output, result.output
    assert not [name for name in sys.modules if name.split(".")[0] in EXTRAS]
