"""The API server's validation rules for every field mlgen writes, checked at render time.

Each rule mirrors k8s.io/apimachinery's and k8s.io/kubernetes' validation (names,
labels, quantities, resources, tolerations, integer ranges), so that a batch the API
server would reject fails `mlgen render` first, naming the batch field. Patterns are
matched whole (`re.fullmatch`: `$` would accept a trailing newline) and over ASCII
only (`\\d` accepts any Unicode digit). Where mlgen is stricter than the API (C
identifiers for env names, reserved names), the message says why.

`relaxed()` switches these rules off for one block: conformance/test_bad_values.py
renders the bad values anyway and proves, by a server-side dry run, that the API
server rejects them too.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterable, Iterator, Mapping
from fractions import Fraction

from mlgen import contract

INT32_MAX = 2**31 - 1
GO_DURATION_MAX_SECONDS = (2**63 - 1) // 10**9  # time.Duration is int64 nanoseconds
CONFIGMAP_KEY_MAX = 253
# The Indexed Job stores env as ConfigMap keys `<index>.env.<NAME>` (index < 100,000).
ENV_NAME_MAX = CONFIGMAP_KEY_MAX - len("99999.env.")

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_NAME = r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
CONFIGMAP_KEY = r"^[-._A-Za-z0-9]+$"
QUANTITY = (
    r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)"
    r"([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_SUFFIX = {
    "": Fraction(1),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}

_strict = contextvars.ContextVar("mlgen_rules_strict", default=True)


@contextlib.contextmanager
def relaxed() -> Iterator[None]:
    """Skip the API's rules in this block (to prove the API server rejects what they do)."""
    token = _strict.set(False)
    try:
        yield
    finally:
        _strict.reset(token)


def strict() -> bool:
    return _strict.get()


def _full(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value, flags=re.ASCII) is not None


def dns_label(value: str) -> str:
    if strict() and (len(value) > 63 or not _full(DNS_LABEL, value)):
        raise ValueError(
            f"{value!r} is not a DNS-1123 label; use at most 63 lowercase letters, "
            "digits and '-', starting and ending with a letter or digit"
        )
    return value


def label_key(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if strict() and (
        not name
        or len(name) > 63
        or not _full(LABEL_NAME, name)
        or (key.count("/") > 1)
        or ("/" in key and (not prefix or len(prefix) > 253 or not _full(DNS_SUBDOMAIN, prefix)))
    ):
        raise ValueError(
            f"{key!r} is not a label key; use [prefix/]name with letters, "
            "digits, '-', '_', '.' (name at most 63 characters, prefix a DNS "
            "subdomain)"
        )
    return key


def label_value(value: str) -> str:
    if strict() and (len(value) > 63 or not _full(LABEL_NAME, value)):
        raise ValueError(
            f"{value!r} is not a label value; use at most 63 letters, digits, "
            "'-', '_', '.', starting and ending with a letter or digit"
        )
    return value


def own_label(key: str) -> str:
    if strict() and contract.is_reserved_label(key):
        raise ValueError(
            f"{key!r} is a label mlgen sets itself, or the Job controller does "
            "(the timeline, `mlgen apply` and the Job's selector rely on it); use "
            "another key"
        )
    return key


def env_name(name: str) -> str:
    if not strict():
        return name
    if not _full(ENV_NAME, name):
        raise ValueError(
            f"{name!r} is not an environment variable name; use letters, "
            "digits and '_', not starting with a digit"
        )
    if len(name) > ENV_NAME_MAX:
        raise ValueError(
            f"{name[:20]!r}… is {len(name)} characters; an environment variable "
            f"name may have at most {ENV_NAME_MAX} (the parallel variant keeps it "
            f"in a ConfigMap key, at most {CONFIGMAP_KEY_MAX})"
        )
    if name in contract.RESERVED_ENV or name.startswith(contract.RESERVED_ENV_PREFIX):
        raise ValueError(
            f"{name!r} is reserved: the Job controller sets JOB_COMPLETION_INDEX "
            f"and the Indexed Job's entrypoint keeps its own state in "
            f"{contract.RESERVED_ENV_PREFIX}* variables; rename it"
        )
    return name


def secret_ref(value: str) -> str:
    if not strict():
        return value
    secret, slash, key = value.partition("/")
    if (
        not slash
        or len(secret) > 253
        or not _full(DNS_SUBDOMAIN, secret)
        or len(key) > CONFIGMAP_KEY_MAX
        or not _full(CONFIGMAP_KEY, key)
        or key in (".", "..")
        or key.startswith("..")
    ):
        raise ValueError(
            f"{value!r} is not a secret reference; write it as <secret-name>/<key> "
            "(a DNS subdomain, then letters, digits, '-', '_', '.')"
        )
    return value


def quantity(text: str) -> str:
    if not strict():
        return text
    if not _full(QUANTITY, text):
        raise ValueError(f"{text!r} is not a Kubernetes quantity; write it like 2, 500m, 8Gi")
    exponent = re.search(r"[eE]([+-]?[0-9]+)$", text)
    if exponent and abs(int(exponent[1])) > 30:
        raise ValueError(f"{text!r} is out of range; write it like 2, 500m, 8Gi")
    if quantity_value(text) < 0:
        raise ValueError(f"{text!r} is negative; a resource quantity must be at least 0")
    return text


def room_for(
    room: Mapping[str, str], pods: Iterable[tuple[Mapping[str, str], Mapping[str, str]]]
) -> tuple[int | None, str]:
    """How many of the largest of these pods (requests, limits) fit in `room` at once,
    and the resource that limits it ("2 nvidia.com/gpu at 1 each"); None when no pod asks
    for anything `room` counts. A request left out is its limit, as Kubernetes defaults it."""
    most: int | None = None
    why = ""
    asked = list(pods)
    for resource, total in sorted(room.items()):
        sizes = [r.get(resource) or lim.get(resource) or "0" for r, lim in asked]
        largest = max(sizes, key=quantity_value, default="0")
        if quantity_value(largest) <= 0:
            continue
        count = int(quantity_value(total) // quantity_value(largest))
        if most is None or count < most:
            most, why = count, f"{total} {resource} at {largest} each"
    return most, why


def quantity_value(text: str) -> Fraction:
    """The exact value of a quantity already matched by QUANTITY."""
    match = re.fullmatch(r"([+-]?[0-9.]+)(.*)", text, flags=re.ASCII)
    assert match is not None
    number, suffix = match[1], match[2]
    if suffix[:1] in ("e", "E"):
        return Fraction(number) * Fraction(10) ** int(suffix[1:])
    return Fraction(number) * _SUFFIX[suffix]


def resource_name(name: str) -> str:
    if not strict():
        return name
    if name in STANDARD_RESOURCES or _hugepages(name):
        return name
    prefix, slash, _ = name.rpartition("/")
    if slash and prefix and not prefix.endswith("kubernetes.io"):
        try:
            label_key(name)
            label_key(f"requests.{name}")  # the quota name the API derives from it
            return name
        except ValueError:
            pass
    raise ValueError(
        f"{name!r} is not a container resource; use cpu, memory, "
        "ephemeral-storage, hugepages-<size> or an extended resource "
        "<domain>/<name> such as nvidia.com/gpu"
    )


def _hugepages(name: str) -> bool:
    size = name.removeprefix("hugepages-")
    return size != name and _full(QUANTITY, size)


def overcommits(name: str) -> bool:
    """cpu, memory and ephemeral storage may be requested below their limit; the rest not."""
    return name in STANDARD_RESOURCES


def resources(requests: Mapping[str, str], limits: Mapping[str, str]) -> list[str]:
    """Problems of one container's resources as a whole (the API's cross-field rules)."""
    if not strict():
        return []
    problems = []
    for name in sorted({*requests, *limits}):
        request, limit = requests.get(name), limits.get(name)
        if not overcommits(name):
            for where, text in (("requests", request), ("limits", limit)):
                if text is not None and quantity_value(text).denominator != 1:
                    problems.append(
                        f"resources.{where}.{name}: {text!r} is not a whole number; "
                        f"{name} cannot be shared, so ask for whole units"
                    )
            if request is not None and limit is None:
                problems.append(
                    f"resources.limits.{name}: {name} is requested but has no "
                    "limit; it cannot be overcommitted, so set the limit (equal "
                    "to the request)"
                )
            elif (
                request is not None
                and limit is not None
                and quantity_value(request) != quantity_value(limit)
            ):
                problems.append(
                    f"resources.requests.{name}: {request!r} differs from the "
                    f"limit {limit!r}; {name} cannot be overcommitted, so make "
                    "them equal"
                )
        elif (
            request is not None
            and limit is not None
            and (quantity_value(request) > quantity_value(limit))
        ):
            problems.append(
                f"resources.requests.{name}: {request!r} is more than the limit "
                f"{limit!r}; lower the request or raise the limit"
            )
    if any(_hugepages(n) for n in {*requests, *limits}) and not (
        {"cpu", "memory"} & {*requests, *limits}
    ):
        problems.append("resources: hugepages need a cpu or memory request or limit too; add one")
    return problems


def toleration(
    key: str | None,
    operator: str | None,
    value: str | None,
    effect: str | None,
    seconds: int | None,
) -> None:
    if not strict():
        return
    if key:
        label_key(key)
    elif operator != "Exists":
        raise ValueError(
            "a toleration without key must have operator: Exists (it then "
            "tolerates every taint); set key or operator: Exists"
        )
    if seconds is not None and effect != "NoExecute":
        raise ValueError(
            "tolerationSeconds applies only to effect: NoExecute; set that "
            "effect or drop tolerationSeconds"
        )
    if seconds is not None and abs(seconds) > 2**63 - 1:
        raise ValueError(f"tolerationSeconds {seconds} is out of range (int64)")
    if operator == "Exists" and value:
        raise ValueError(
            f"operator: Exists matches any value, so value {value!r} must be "
            "empty; drop value or use operator: Equal"
        )
    if operator in ("Equal", None) and value:
        label_value(value)


def image(value: str) -> str:
    if strict() and (not value or value != value.strip()):
        raise ValueError(f"{value!r} is not an image reference; remove the surrounding whitespace")
    return value


def command(value: list[str]) -> list[str]:
    if strict() and (not value or not value[0]):
        raise ValueError(
            "is empty, so the container would run nothing (the parallel "
            "entrypoint would exec no command and every index 'succeed'); give "
            "the program to run, e.g. [python, -m, train]"
        )
    return value


def user_id(value: int) -> int:
    """0 (root) is the API's to accept and Pod Security's to refuse (podsecurity.py)."""
    if strict() and not 0 <= value <= INT32_MAX:
        raise ValueError(f"{value} is not a user id the API accepts; use 0 to {INT32_MAX}")
    return value


def group_id(value: int) -> int:
    """A pod's fsGroup: the API takes the same range as a user id."""
    if strict() and not 0 <= value <= INT32_MAX:
        raise ValueError(f"{value} is not a group id the API accepts; use 0 to {INT32_MAX}")
    return value


def deadline_seconds(seconds: int) -> None:
    """Pod activeDeadlineSeconds: 1 to 2^31-1."""
    if strict() and seconds > INT32_MAX:
        raise ValueError(
            f"is {seconds:,} seconds, more than the API accepts as a pod's "
            f"deadline ({INT32_MAX:,} s, about 68 years)"
        )


def duration_seconds(seconds: int) -> None:
    """A Go time.Duration (KWOK reads expected durations as one): int64 nanoseconds."""
    if strict() and seconds > GO_DURATION_MAX_SECONDS:
        raise ValueError(
            f"is {seconds:,} seconds, more than a Go duration holds "
            f"({GO_DURATION_MAX_SECONDS:,} s, about 292 years)"
        )
