"""The plugin's options and ini keys, and what they resolve to.

Options (also as ini keys without the leading dashes and with `_`):
  --mlgen-cluster local|kind|kubeconfig   which cluster (default: local)
  --mlgen-kubeconfig PATH, --mlgen-context NAME   for `kubeconfig` (read, never written)
  --mlgen-kind-config PATH    kind cluster config (default: kind-config.yaml)
  --mlgen-nodes PATH          node pools of the local cluster
  --mlgen-artifacts DIR       where timelines (JSON + PNG) go (default: artifacts/conformance)
  --mlgen-batch GLOB          batch files for the generic `test_batch_conforms` (repeatable;
                              ini `mlgen_batches`, one glob a line)
  --mlgen-time-scale X        test_batch_conforms runs expectedDuration / X (at least 3 s)
                              on simulated clusters (default 1; dedicated tests unscaled)
  --mlgen-max-epsilon S       the ceiling on the calibrated per-step overhead (default: the
                              local control plane's, see calibration.py; raise it for kind)
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

import pytest

CLUSTERS = ("local", "kind", "kubeconfig")


def add(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlgen", "mlgen conformance")
    group.addoption(
        "--mlgen-cluster",
        choices=CLUSTERS,
        default=None,
        help="Cluster to run on: local (simulated control plane, default), kind "
        "(pytest-kubernetes and kind-config.yaml) or kubeconfig.",
    )
    group.addoption(
        "--mlgen-kubeconfig",
        default=None,
        help="Kubeconfig for --mlgen-cluster kubeconfig (default: $KUBECONFIG); never modified.",
    )
    group.addoption("--mlgen-context", default=None, help="Kubeconfig context.")
    group.addoption("--mlgen-kind-config", default=None, help="kind config file.")
    group.addoption("--mlgen-nodes", default=None, help="Node pools YAML (local cluster).")
    group.addoption("--mlgen-artifacts", default=None, help="Timeline output directory.")
    group.addoption(
        "--mlgen-batch",
        action="append",
        default=[],
        help="Batch file glob for test_batch_conforms; repeatable.",
    )
    group.addoption(
        "--mlgen-time-scale",
        type=float,
        default=None,
        help="Divide expectedDuration by this on simulated clusters.",
    )
    group.addoption(
        "--mlgen-max-epsilon",
        type=float,
        default=None,
        help="Ceiling (seconds) on the calibrated per-step overhead; raise it for "
        "slower clusters such as kind.",
    )
    parser.addini("mlgen_cluster", "default for --mlgen-cluster", default="local")
    parser.addini(
        "mlgen_kind_config", "default for --mlgen-kind-config", default="kind-config.yaml"
    )
    parser.addini(
        "mlgen_artifacts", "default for --mlgen-artifacts", default="artifacts/conformance"
    )
    parser.addini(
        "mlgen_batches", "batch file globs for test_batch_conforms", type="linelist", default=[]
    )
    parser.addini("mlgen_time_scale", "default for --mlgen-time-scale", default="1")
    parser.addini("mlgen_max_epsilon", "default for --mlgen-max-epsilon", default="")


def value(config: pytest.Config, name: str) -> Any:
    """An option's value, else its ini key's."""
    found = config.getoption(f"--mlgen-{name.replace('_', '-')}")
    return found if found not in (None, []) else config.getini(f"mlgen_{name}")


def cluster_kind(config: pytest.Config) -> str:
    choice = str(value(config, "cluster"))
    if choice not in CLUSTERS:
        raise pytest.UsageError(f"mlgen_cluster must be one of {', '.join(CLUSTERS)}")
    return choice


def simulated(config: pytest.Config) -> bool:
    """Whether this session's cluster is mlgen's simulated one (KWOK capacity, failures)."""
    return cluster_kind(config) == "local"


def batch_files(config: pytest.Config) -> list[Path]:
    patterns = list(config.getoption("--mlgen-batch")) + list(config.getini("mlgen_batches"))
    root = Path(config.rootpath)
    found: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(str(root / pattern)) or glob.glob(pattern))
        if not matches:
            raise pytest.UsageError(f"mlgen: no batch file matches {pattern!r}")
        found.extend(Path(m) for m in matches)
    return found
