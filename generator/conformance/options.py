"""The plugin's options and ini keys, and what they resolve to.

Options (also as ini keys without the leading dashes and with `_`):
  --mlgen-cluster local|kind|kubeconfig   which cluster (default: local)
  --mlgen-kubeconfig PATH, --mlgen-context NAME   for `kubeconfig` (read, never written)
  --mlgen-kind-config PATH    kind cluster config (default: kind-config.yaml)
  --mlgen-kind-image IMAGE    run every kind node on IMAGE instead of the config's (a node
                              image built offline, e.g. by `mlgen cluster build --kind`)
  --mlgen-standin-image IMAGE the stand-in containers' image on real kubelets (default:
                              busybox:1.36.1; see standin.py)
  --mlgen-nodes PATH          node pools of the local cluster
  --mlgen-artifacts DIR       where timelines (JSON + PNG) go (default: artifacts/conformance)
  --mlgen-batch GLOB          batch files for the generic `test_batch_conforms` (repeatable;
                              ini `mlgen_batches`, one glob a line)
  --mlgen-time-scale X|auto   runs take expectedDuration / X (at least 3 s), on every
                              cluster and in every test that uses `mlgen_run` (default auto:
                              1 on the simulated cluster, 600 where kubelets are real, so a
                              3 h job runs 18 s)
  --mlgen-max-epsilon S       the ceiling on the calibrated per-step overhead (default: the
                              one of the session's kind of cluster, calibration.LIMITS)
  --mlgen-kueue CLUSTERQUEUE  the cluster runs Kueue: a batch with spec.queue gets that
                              LocalQueue in its test namespace, in this ClusterQueue, and
                              each run checks that Kueue admitted every Job (default: off)
Ini key only:
  mlgen_workers N             what pytest-xdist's `-n auto` means on the local cluster: N
                              workers, each starting a cluster of its own (default: xdist's
                              answer); on kind or a kubeconfig cluster always one session
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

import pytest

from mlgen import versions

CLUSTERS = ("local", "kind", "kubeconfig")
STANDIN_IMAGE = versions.STANDIN_IMAGE
# Where kubelets are real, a run takes what the stand-ins sleep: 3 h of training become 18 s.
REAL_TIME_SCALE = 600.0


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
    group.addoption(
        "--mlgen-kind-image",
        default=None,
        help="Run every kind node on this image instead of the kind config's (e.g. one "
        "built offline by `mlgen cluster build --kind`).",
    )
    group.addoption(
        "--mlgen-standin-image",
        default=None,
        help="Image of the stand-in containers on clusters with real kubelets "
        f"(default {STANDIN_IMAGE}).",
    )
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
        default=None,
        help="Divide expectedDuration by this (or 'auto': 1 on the simulated cluster, "
        f"{REAL_TIME_SCALE:g} where kubelets are real).",
    )
    group.addoption(
        "--mlgen-max-epsilon",
        type=float,
        default=None,
        help="Ceiling (seconds) on the calibrated per-step overhead (default: the one of "
        "the session's kind of cluster); raise it for slower clusters.",
    )
    group.addoption(
        "--mlgen-kueue",
        default=None,
        metavar="CLUSTERQUEUE",
        help="The cluster runs Kueue: queued batches get their LocalQueue in this "
        "ClusterQueue, and each run checks that Kueue admitted every Job.",
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
    parser.addini("mlgen_time_scale", "default for --mlgen-time-scale", default="auto")
    parser.addini("mlgen_kind_image", "default for --mlgen-kind-image", default="")
    parser.addini("mlgen_standin_image", "default for --mlgen-standin-image", default="")
    parser.addini("mlgen_max_epsilon", "default for --mlgen-max-epsilon", default="")
    parser.addini("mlgen_kueue", "default for --mlgen-kueue", default="")
    parser.addini(
        "mlgen_workers",
        "pytest-xdist's -n auto on the local cluster: this many workers, a cluster each",
        default="",
    )


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


def time_scale(config: pytest.Config, *, simulated: bool) -> float:
    """The session's time scale: the option or ini key, `auto` by kind of cluster."""
    raw = str(value(config, "time_scale")).strip()
    if raw in ("", "auto"):
        return 1.0 if simulated else REAL_TIME_SCALE
    try:
        scale = float(raw)
    except ValueError:
        scale = float("nan")
    if not scale > 0 or scale == float("inf"):
        raise pytest.UsageError(f"mlgen_time_scale must be a positive number or auto, not {raw!r}")
    return scale


def workers(config: pytest.Config) -> int | None:
    """The ini key `mlgen_workers` (None when unset); a usage error names a bad value."""
    raw = str(config.getini("mlgen_workers")).strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise pytest.UsageError(
            f"mlgen_workers = {raw!r}: a number of pytest-xdist workers, e.g. 3 (or unset)"
        )
    return int(raw)
