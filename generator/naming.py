"""Object names: content hashes and Kubernetes' 63-character budget.

A Job's pod template is immutable, so a Job's name carries a hash of what it runs:
a changed spec is a new Job instead of a "field is immutable" sync failure. The
budget that matters is `<job-name>-<index>`: Indexed Job pods use it as hostname,
and it must be a DNS-1123 label.
"""

from __future__ import annotations

import hashlib
import json

from mlgen.errors import SpecError

HASH_LENGTH = 8
NAME_BUDGET = 63


def content_hash(value: object) -> str:
    """A short, stable hash of any JSON-able value (key order does not matter)."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def job_name(
    *parts: str,
    digest: str,
    completions: int = 1,
    where: str = "metadata.name",
    what: str = "batch or job name",
) -> str:
    """`<parts>-<digest>`, checked so that `<name>-<completions-1>` fits 63 characters;
    `where` (`file:line: path`) names the field to shorten, `what` says it in words."""
    name = "-".join((*parts, digest))
    longest = f"{name}-{max(completions - 1, 0)}"
    if len(longest) > NAME_BUDGET:
        over = len(longest) - NAME_BUDGET
        raise SpecError(
            f"{where}: the rendered Job name {name!r} leaves pod "
            f"hostnames like {longest!r} {over} character(s) over Kubernetes' "
            f"{NAME_BUDGET}-character limit; shorten the {what} by {over}"
        )
    return name


def config_name(batch: str, variant: str, digest: str) -> str:
    """ConfigMap names are DNS subdomains (253 characters): no budget problem."""
    return f"{batch}-{variant}-params-{digest}"
