"""Which Kubernetes minor versions mlgen renders for, and the Job features that set the floor.

The one place that says which feature needs which minor. Every rendered object is
validated against the strict schema of the batch's `spec.kubernetesVersion`, and a test
renders every example for every supported minor.
"""

from __future__ import annotations

from mlgen.errors import SpecError

# feature -> (first minor where it is on by default, what mlgen uses it for)
FEATURES: dict[str, tuple[str, str]] = {
    "backoffLimitPerIndex": (
        "1.29",
        "per-index retries of Indexed Jobs (one bad index never "
        "fails the sweep); beta and on by default from 1.29",
    ),
    "podReplacementPolicy": (
        "1.29",
        "replacing a failed pod only once it has terminated "
        "(never two attempts of one step at once); beta from 1.29",
    ),
    "podFailurePolicy": ("1.26", "not counting evictions and preemptions as retries"),
    "maxFailedIndexes": (
        "1.29",
        "stopping a sequential Indexed Job at its first failed index (onFailure: stop)",
    ),
}

OLDEST = "1.29"  # the newest of the floors above
NEWEST = "1.37"  # the newest schemas kubernetes-validate bundles that mlgen is tested with
DEFAULT = "1.36"  # the local control plane's minor (versions.KUBERNETES), kind's node image


def minor(version: str) -> tuple[int, int]:
    major, _, rest = version.partition(".")
    return int(major), int(rest)


def supported() -> list[str]:
    low, high = minor(OLDEST)[1], minor(NEWEST)[1]
    return [f"1.{m}" for m in range(low, high + 1)]


def check(version: str) -> None:
    """Raise ValueError naming the missing feature when `version` is outside the range."""
    if minor(version) > minor(NEWEST):
        raise ValueError(
            f"Kubernetes {version} is newer than mlgen knows (up to {NEWEST}); "
            f"use {NEWEST}, or upgrade mlgen"
        )
    missing = [
        (name, need, why) for name, (need, why) in FEATURES.items() if minor(version) < minor(need)
    ]
    if missing:
        name, need, why = max(missing, key=lambda m: minor(m[1]))
        raise ValueError(
            f"Kubernetes {version} lacks {name} ({why}), which needs {need} or "
            f"newer; mlgen supports {OLDEST} to {NEWEST}. Upgrade the cluster, or "
            "run the batch with an older mlgen"
        )


def require(version: str, *, source: str) -> None:
    try:
        check(version)
    except ValueError as e:
        raise SpecError(f"{source}: spec.kubernetesVersion: {e}") from e
