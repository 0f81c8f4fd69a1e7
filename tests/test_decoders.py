"""Every rendered file reads the same under the decoder users' tools use.

kubectl, kustomize, Argo CD and Flux decode YAML with `sigs.k8s.io/yaml` (go-yaml v2),
which reads plain `1e-2`, `08`, `0o17`, `+.5`, `y` or `on` as numbers and booleans
where PyYAML reads strings. Here the real decoder — the kubectl that `mlgen cluster
build` builds, run offline with `annotate --local -o json` — reads every file that the
examples and the test batches render, and must see exactly mlgen's own objects.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlgen import render, source
from mlgen.cluster import build
from mlgen.errors import ClusterError

from .conftest import batch_doc
from .test_delivery import ENV, HOSTILE

ROOT = Path(__file__).resolve().parent.parent
PROBE = "mlgen.io/decoder-probe"
# Strings that some YAML resolver reads as a number, boolean or null when plain.
AMBIGUOUS = [
    "1e-2",
    "1e3",
    "08",
    "0o17",
    "0X1F",
    "0x1f",
    "+.5",
    "-.5e+3",
    ".inf",
    "-.Inf",
    ".NaN",
    "1_000",
    "0b101",
    "190:20:30",
    "2001-12-14",
    "2001-12-14t21:59:43.10-05:00",
    "y",
    "Y",
    "n",
    "N",
    "yes",
    "No",
    "on",
    "OFF",
    "true",
    "False",
    "null",
    "NULL",
    "~",
    "",
    " ",
    "<<",
    "=",
    "-",
    "0",
    "-0",
    "007",
    "1.",
    "12e03",
]


def kubectl() -> str:
    try:
        return build.kubectl()
    except ClusterError as e:
        pytest.fail(f"{e}: these tests decode with the real kubectl")


def go_decoded(paths: list[Path]) -> list[dict[str, Any]]:
    """The objects kubectl's decoder reads from `paths`, in order, without our probe."""
    args = [kubectl(), "annotate", "--local", "-o", "json", f"{PROBE}=1"]
    for path in paths:
        args += ["-f", str(path)]
    proc = subprocess.run(
        args,
        capture_output=True,
        text=True,
        check=False,
        env={"KUBECONFIG": "/dev/null", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, f"kubectl could not decode {paths}: {proc.stderr.strip()}"
    items: list[dict[str, Any]] = []
    decoder, text, at = json.JSONDecoder(), proc.stdout, 0
    while text[at:].strip():  # one JSON document per object, back to back
        at += len(text[at:]) - len(text[at:].lstrip())
        item, at = decoder.raw_decode(text, at)
        items.extend(item["items"] if item.get("kind") == "List" else [item])
    for item in items:
        annotations = item["metadata"]["annotations"]
        del annotations[PROBE]
        if not annotations:
            del item["metadata"]["annotations"]
        if not item["metadata"]:  # a kustomization.yaml has none of its own
            del item["metadata"]
    return list(items)


def ours(paths: list[Path]) -> list[dict[str, Any]]:
    return [d for p in paths for d in yaml.safe_load_all(p.read_text(encoding="utf-8")) if d]


def assert_identical(files: dict[str, str], root: Path) -> int:
    paths = []
    for rel, text in sorted(files.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    decoded, expected = go_decoded(paths), ours(paths)
    assert len(decoded) == len(expected)
    for go, py in zip(decoded, expected, strict=True):
        assert go == py, (
            f"{py['kind']} {py.get('metadata', {}).get('name')}: kubectl reads it otherwise"
        )
    return len(decoded)


def test_the_examples_decode_identically_under_kubectl(tmp_path: Path) -> None:
    batches = source.load_files(sorted((ROOT / "examples").glob("*.yaml")))
    flux = {"source": "gitops", "path": "./manifests"}
    batches += source.load_text(
        yaml.safe_dump(batch_doc(flux=flux, simulated=True)), source="flux.yaml"
    )[0]
    files = render.render_all(batches).files
    assert assert_identical(files, tmp_path) >= 20


def ambiguous_batch() -> dict[str, Any]:
    doc = batch_doc(simulated=True)
    doc["metadata"]["name"] = "08"
    doc["metadata"]["labels"] = {"y": "on", "no": "1e3", "x": "08"}
    doc["spec"]["jobs"] = [
        {
            "name": "1e3",
            "args": AMBIGUOUS[: len(AMBIGUOUS) // 2],
            "env": {"Y": "n", "ON": "1e-2", "NULL": "~", "_1e3": "0o17", **ENV},
        },
        {"name": "0o17", "args": AMBIGUOUS[len(AMBIGUOUS) // 2 :], "env": {"Y": "08"}},
        {"name": "y", "args": HOSTILE, "env": {"OFF": "yes"}},
    ]
    doc["spec"]["defaults"].update(secretEnv={"N": "y/on"}, labels={"on": "off"})
    return doc


@pytest.mark.parametrize("strategy", ["waves", "indexed"])
def test_ambiguous_and_hostile_strings_decode_identically(tmp_path: Path, strategy: str) -> None:
    doc = ambiguous_batch()
    doc["spec"]["sequential"] = {"strategy": strategy}
    batches, problems = source.load_text(yaml.safe_dump(doc), source="ambiguous.yaml")
    assert not problems, problems
    assert assert_identical(render.render_all(batches).files, tmp_path) >= 3


plain = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
    max_size=12,
)
value = st.one_of(
    st.sampled_from(AMBIGUOUS),
    plain,
    st.from_regex(r"[-+.]?[0-9][0-9a-fA-FxXoObB_.:e+-]{0,8}", fullmatch=True),
)
env_name = st.one_of(
    st.sampled_from(["Y", "N", "ON", "OFF", "NULL", "TRUE", "y", "no", "_0"]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True),
)
label = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,6}[A-Za-z0-9])?", fullmatch=True)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    args=st.lists(value, min_size=1, max_size=6),
    env=st.dictionaries(env_name, value, max_size=5),
    labels=st.dictionaries(label, label, max_size=3),
)
def test_arbitrary_strings_decode_identically(
    args: list[str],
    env: dict[str, str],
    labels: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    doc = batch_doc()
    doc["metadata"]["labels"] = {
        k: v for k, v in labels.items() if "/" not in k and not k.startswith("mlgen")
    }
    doc["spec"]["jobs"][0]["args"] = args
    doc["spec"]["jobs"][0]["env"] = env
    doc["spec"]["jobs"][1]["args"] = list(reversed(args))
    batches, problems = source.load_text(
        yaml.safe_dump(doc, allow_unicode=False), source="batch.yaml"
    )
    assert not problems, problems
    assert_identical(render.render_all(batches).files, tmp_path_factory.mktemp("decode"))
