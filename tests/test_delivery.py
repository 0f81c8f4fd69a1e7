"""Args and env reach the process byte for byte, in every variant.

The parallel variant's entrypoint runs under /bin/sh (dash) with the rendered
ConfigMap laid out as the pod would mount it; the waves variant's argv and env go
through Kubernetes' `$(VAR)` expansion, reimplemented here from its documented rules.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import batch_doc, objects, render_doc

HOSTILE = [
    "plain",
    "",
    " ",
    "two words",
    "'single'",
    '"double"',
    "$(HOME)",
    "$HOME",
    "${HOME}",
    "$$",
    "$",
    "a$",
    "$(",
    "`id`",
    "$(id)",
    "*",
    "?",
    "[a-z]*",
    "~",
    "line\nbreak",
    "trailing\n\n",
    "\ttab",
    "cr\r",
    "back\\slash",
    "\\n",
    "héllo ✓ 日本 🚀",
    "--lr",
    "-",
    "-n",
    "-e",
    "x=y",
    ";rm -rf /",
    "a && b | c > d",
    "%s%d",
    "#comment",
    "end\\",
    "'\"'\"'",
    "\u2028\u0085",
    "multi\nline\u2028sep\x85",
    " leading and trailing \n",
]
ENV = {
    "SPACE": "a b",
    "DOLLAR": "$(HOME)$$x",
    "EMPTY": "",
    "NEWLINES": "\n\nx\n\n",
    "QUOTES": "'\"`",
    "UNICODE": "日本 ✓",
}
PROBE = """import json, os, sys
names = json.loads(sys.argv[1])
print(json.dumps({"argv": sys.argv[2:], "env": {k: os.environ.get(k) for k in names},
                  "job": os.environ.get("MLGEN_JOB_NAME"),
                  "leaked": sorted(k for k in os.environ
                                   if k.startswith("MLGEN_") and k != "MLGEN_JOB_NAME")}))
"""


def k8s_expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion (third_party/forked/golang/expansion)."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "$" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                close = value.find(")", i + 2)
                if close != -1:
                    name = value[i + 2 : close]
                    out.append(env.get(name, f"$({name})"))
                    i = close + 1
                    continue
            out.append("$" + nxt if nxt != "(" else "$(")
            i += 2
            continue
        out.append(value[i])
        i += 1
    return "".join(out)


def container_env(container: dict[str, Any]) -> dict[str, str]:
    """The env a kubelet would hand the container, secrets faked as `secret:<name>/<key>`."""
    env: dict[str, str] = {}
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = k8s_expand(entry["value"], env)
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = f"secret:{ref['name']}/{ref['key']}"
    return env


def run(argv: list[str], env: dict[str, str], names: list[str]) -> dict[str, Any]:
    base = {"PATH": os.environ["PATH"], "LC_ALL": "C.UTF-8"}
    result = subprocess.run(
        [argv[0], *argv[1:]], env={**base, **env}, capture_output=True, check=True
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def hostile_batch(probe: Path, *, per_job_secrets: bool = True) -> dict[str, Any]:
    """Per-job secrets only where each Job has a pod template of its own (waves): an
    Indexed Job refuses them (tests/test_entrypoint_env.py)."""
    doc = batch_doc()
    doc["spec"]["defaults"]["command"] = [sys.executable, str(probe)]
    doc["spec"]["defaults"]["env"] = {"SHARED": "$(SPACE) shared"}
    doc["spec"]["defaults"]["secretEnv"] = {"COMMON": "common/key"}
    names = json.dumps([*ENV, "SHARED", "COMMON", "TOKEN"])
    chunks = [HOSTILE[i::3] for i in range(3)]
    doc["spec"]["jobs"] = [
        {
            "name": "a",
            "args": [names, *chunks[0]],
            "env": dict(ENV),
            "secretEnv": {"TOKEN": "tok-a/key"},
        },
        {
            "name": "b",
            "args": [names, *chunks[1]],
            "env": {"SPACE": "other one"},
            "secretEnv": {"TOKEN": "tok-b/key"},
        },
        {"name": "c", "args": [names, *chunks[2]], "env": {}},
    ]
    if not per_job_secrets:
        for job in doc["spec"]["jobs"]:
            job.pop("secretEnv", None)
    return doc


def expected_env(job: dict[str, Any]) -> dict[str, str | None]:
    want: dict[str, str | None] = dict.fromkeys([*ENV, "SHARED", "COMMON", "TOKEN"])
    want.update({"SHARED": "$(SPACE) shared", "COMMON": "secret:common/key"})
    want.update(job["env"])
    if "secretEnv" in job:
        want["TOKEN"] = "secret:{}".format(job["secretEnv"]["TOKEN"])
    return want


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    path = tmp_path / "probe.py"
    path.write_text(PROBE)
    return path


@pytest.mark.skipif(shutil.which("dash") is None, reason="needs dash, Debian's /bin/sh")
@pytest.mark.parametrize("strategy", ["parallel", "indexed"])
def test_indexed_entrypoint_delivers_values_byte_for_byte(
    tmp_path: Path, probe: Path, strategy: str
) -> None:
    doc = hostile_batch(probe, per_job_secrets=False)
    variant = "parallel" if strategy == "parallel" else "sequential"
    doc["spec"]["sequential"] = {"strategy": "indexed"}
    files = render_doc(doc, variants=(variant,))
    rendered = objects(files)
    (config,) = [o for o in rendered if o["kind"] == "ConfigMap"]
    (job,) = [o for o in rendered if o["kind"] == "Job"]
    mount = tmp_path / "params"
    mount.mkdir()
    for key, value in config["data"].items():
        (mount / key).write_bytes(value.encode("utf-8"))
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:2] == ["/bin/sh", "/etc/mlgen/params/entrypoint.sh"]
    env = container_env(container)
    # An optional secret the kubelet could not find is simply absent; here all exist.
    for index, entry in enumerate(doc["spec"]["jobs"]):
        argv = [
            "dash",
            str(mount / "entrypoint.sh"),
            *(k8s_expand(a, env) for a in container.get("args", [])),
        ]
        got = run(argv, {**env, "JOB_COMPLETION_INDEX": str(index)}, [])
        assert got["argv"] == entry["args"][1:], f"index {index}"
        assert got["env"] == expected_env(entry), f"index {index}"
        assert got["leaked"] == []
        assert got["job"] == entry["name"]  # each index knows its job's name


def test_waves_deliver_values_byte_for_byte_through_k8s_expansion(probe: Path) -> None:
    doc = hostile_batch(probe)
    files = render_doc(doc, variants=("sequential",))
    jobs = [o for o in objects(files) if o["kind"] == "Job"]
    for entry, job in zip(doc["spec"]["jobs"], jobs, strict=True):
        container = job["spec"]["template"]["spec"]["containers"][0]
        env = container_env(container)
        argv = [k8s_expand(a, env) for a in container["command"] + container["args"]]
        got = run(argv, env, [])
        assert got["argv"] == entry["args"][1:]
        assert got["env"] == expected_env(entry)


def test_missing_secret_stops_the_pod_with_a_message(tmp_path: Path, probe: Path) -> None:
    doc = hostile_batch(probe, per_job_secrets=False)
    files = render_doc(doc, variants=("parallel",))
    rendered = objects(files)
    (config,) = [o for o in rendered if o["kind"] == "ConfigMap"]
    (job,) = [o for o in rendered if o["kind"] == "Job"]
    for key, value in config["data"].items():
        (tmp_path / key).write_text(value)
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {k: v for k, v in container_env(container).items() if k != "MLGEN_SECRET_0"}
    result = subprocess.run(
        ["dash", str(tmp_path / "entrypoint.sh"), "true"],
        env={**env, "JOB_COMPLETION_INDEX": "0", "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "the secret for COMMON is missing" in result.stderr


def test_rendered_yaml_round_trips_hostile_values_exactly(probe: Path) -> None:
    doc = hostile_batch(probe, per_job_secrets=False)
    for text in render_doc(doc).values():
        for obj in yaml.safe_load_all(text):
            assert obj is not None
    (config,) = [
        o for o in objects(render_doc(doc, variants=("parallel",))) if o["kind"] == "ConfigMap"
    ]
    assert [
        config["data"][f"0.arg.{k}"] for k in range(len(doc["spec"]["jobs"][0]["args"]))
    ] == doc["spec"]["jobs"][0]["args"]
