"""Durations (`30s`, `20m`, `1h30m`) and Kubernetes resource quantities (`8Gi`, `500m`)."""

from __future__ import annotations

import re

# ECMA-compatible (JSON Schema uses it); [0-9], not \d, which takes any Unicode digit
DURATION_PATTERN = r"^(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?$"
_DURATION = re.compile(DURATION_PATTERN)
_QUANTITY = re.compile(
    r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)


def parse_duration(text: str) -> int:
    """Seconds in `text` (`45s`, `20m`, `2h`, `1h30m`); ValueError when malformed."""
    match = _DURATION.fullmatch(text)  # `$` alone would accept a trailing newline
    if not text or not match:
        raise ValueError(f"{text!r} is not a duration; write it like 30s, 20m, 2h or 1h30m")
    hours, minutes, seconds = (int(match[g] or 0) for g in (1, 2, 3))
    return hours * 3600 + minutes * 60 + seconds


def go_duration(seconds: int) -> str:
    """Go's `time.ParseDuration` syntax, always with a unit (KWOK ignores bare numbers)."""
    return f"{seconds}s"


def human_duration(seconds: float) -> str:
    """A short human form for tables: `45s`, `20m`, `1h05m`."""
    whole = round(seconds)
    if whole < 120:
        return f"{seconds:.1f}s" if seconds < 10 and seconds != whole else f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s" if whole % 60 else f"{whole // 60}m"
    return f"{whole // 3600}h{(whole % 3600) // 60:02d}m"


def check_quantity(text: str) -> str:
    """Return `text` if it is a Kubernetes quantity, else raise ValueError with the fix."""
    if not _QUANTITY.fullmatch(text):
        raise ValueError(f"{text!r} is not a Kubernetes quantity; write it like 2, 500m, 8Gi")
    return text
