"""The Indexed Job's entrypoint cannot collide with anything a user may name.

Its own state lives in reserved names the batch format refuses; the user's env reaches
the command exactly as given (every single letter, every shell special variable) under
dash, busybox sh and bash --posix; it needs no tool PATH must find; and a job's secret
is never handed to another job's pod.
"""

from __future__ import annotations

import shutil
import string
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlgen import contract, source
from mlgen.errors import RenderError

from .conftest import batch_doc, objects, render_doc

SHELLS = {"dash": ["dash"], "busybox": ["busybox", "sh"], "bash": ["bash", "--posix"]}
# Variables some POSIX shell reads, sets or refuses (dash exits at start on OPTIND=x,
# bash refuses to assign UID), plus the names the old entrypoint used for itself.
SPECIAL = [
    "IFS",
    "OPTIND",
    "OPTARG",
    "PATH",
    "PS1",
    "PS2",
    "PS4",
    "ENV",
    "HOME",
    "PWD",
    "OLDPWD",
    "SHLVL",
    "_",
    "LINENO",
    "PPID",
    "UID",
    "EUID",
    "RANDOM",
    "SECONDS",
    "HOSTNAME",
    "SHELLOPTS",
    "BASHOPTS",
    "BASH_ENV",
    "BASH_VERSINFO",
    "CDPATH",
    "LANG",
    "LC_ALL",
    "TMOUT",
    "HISTFILE",
    "MAIL",
    "MAILPATH",
    "FCEDIT",
    "POSIXLY_CORRECT",
    "GLOBIGNORE",
    "BASH_XTRACEFD",
    "TERM",
    "SHELL",
    "FUNCNAME",
    "HISTSIZE",
    "MAILCHECK",
    "PS0",
    "COLUMNS",
    "LINES",
    "ENV_TOOL",
    "TMPDIR",
]
LETTERS = list(string.ascii_letters)
VALUES = [
    "x",
    "",
    "a b",
    "x=y",
    "\n",
    "trailing\n\n",
    "$(id)`id`$HOME",
    "*",
    "-",
    "--",
    "日本 ✓",
    "\\n",
    "'\"",
    "0",
    "-1",
    "99999999999999999999",
]
ENV_TOOL = next((p for p in ("/usr/bin/env", "/bin/env") if Path(p).exists()), "env")
# Variables a shell sets for the processes it starts when nobody else did.
HOUSEKEEPING = {"PWD", "SHLVL", "_", "OLDPWD"}


def available(shell: str) -> bool:
    return shutil.which(SHELLS[shell][0]) is not None


def lay_out(files: dict[str, str], mount: Path) -> dict[str, Any]:
    """Write the ConfigMap as the pod would mount it; return the Job's container."""
    rendered = objects(files)
    (config,) = [o for o in rendered if o["kind"] == "ConfigMap"]
    (job,) = [o for o in rendered if o["kind"] == "Job"]
    mount.mkdir(exist_ok=True)
    for key, value in config["data"].items():
        (mount / key).write_bytes(value.encode("utf-8"))
    return job["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


def run_index(
    shell: str, mount: Path, container: dict[str, Any], index: int, *, inherited: dict[str, str]
) -> tuple[dict[str, str], list[str]]:
    """The env and argv the command sees (the command is `env -0`, or the probe given)."""
    env = dict(inherited)
    for entry in container.get("env", []):
        assert entry["name"].startswith(contract.SECRET_ENV_PREFIX), entry
        ref = entry["valueFrom"]["secretKeyRef"]
        env[entry["name"]] = f"secret:{ref['name']}/{ref['key']}"
    env["JOB_COMPLETION_INDEX"] = str(index)
    args = [a.replace("$$", "$") for a in container["args"]]
    result = subprocess.run(
        [*SHELLS[shell], str(mount / "entrypoint.sh"), *args],
        env=env,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    out: dict[str, str] = {}
    for item in result.stdout.decode("utf-8").split("\0"):
        if item:
            name, _, value = item.partition("=")
            out[name] = value
    return out, []


def env_batch(shared: dict[str, str], own: list[dict[str, str]]) -> dict[str, Any]:
    doc = batch_doc()
    doc["spec"]["defaults"]["command"] = [ENV_TOOL, "-0"]
    doc["spec"]["defaults"]["env"] = shared
    doc["spec"]["jobs"] = [{"name": f"j{i}", "env": env} for i, env in enumerate(own)]
    return doc


def check_env(
    shell: str, tmp_path: Path, shared: dict[str, str], own: list[dict[str, str]]
) -> None:
    files = render_doc(env_batch(shared, own), variants=("parallel",), validate=False)
    mount = Path(tempfile.mkdtemp(dir=tmp_path, prefix=shell))  # hypothesis reuses tmp_path
    container = lay_out(files, mount)
    inherited = {"PATH": "/usr/bin:/bin", "HOSTNAME": "pod-0", "KUBERNETES_PORT": "tcp://x"}
    extra_keys = {k.split(".env.")[-1] for k in (p.name for p in mount.iterdir()) if ".env." in k}
    for index, env in enumerate(own):
        got, _ = run_index(shell, mount, container, index, inherited=inherited)
        given = {**shared, **env}
        for name, value in given.items():
            assert got.get(name) == value, (shell, index, name)
        allowed = {*inherited, *given, "JOB_COMPLETION_INDEX", *extra_keys, *HOUSEKEEPING}
        assert set(got) <= allowed, (shell, set(got) - allowed)
        assert not any(k.startswith(contract.SECRET_ENV_PREFIX) for k in got)
        for name in set(inherited) - set(given):
            assert got[name] == inherited[name], (shell, name)
        assert got["JOB_COMPLETION_INDEX"] == str(index)


@pytest.mark.parametrize("shell", list(SHELLS))
def test_every_letter_and_shell_variable_arrives_exactly_as_given(
    shell: str, tmp_path: Path
) -> None:
    if not available(shell):
        pytest.skip(f"{SHELLS[shell][0]} is not installed (.ci/run installs it)")
    names = LETTERS + SPECIAL
    shared = {n: VALUES[i % len(VALUES)] for i, n in enumerate(names[::2])}
    own = [
        {n: f"{n} of job 0\n" for n in names[1::2]},
        {n: VALUES[(i + 3) % len(VALUES)] for i, n in enumerate(names[1::2])},
    ]
    check_env(shell, tmp_path, shared, own)


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True).filter(
    lambda n: n != "JOB_COMPLETION_INDEX" and not n.startswith("MLGEN_")
)
values = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
    max_size=12,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    shared=st.dictionaries(
        st.one_of(names, st.sampled_from(SPECIAL + LETTERS)), values, max_size=6
    ),
    own=st.dictionaries(st.one_of(names, st.sampled_from(SPECIAL + LETTERS)), values, max_size=6),
)
def test_any_env_names_and_values_arrive_exactly_under_every_shell(
    tmp_path: Path, shared: dict[str, str], own: dict[str, str]
) -> None:
    own = {k: v for k, v in own.items() if k not in shared}
    for shell in SHELLS:
        if available(shell):
            check_env(shell, tmp_path, shared, [own, {}])


@pytest.mark.parametrize("shell", list(SHELLS))
def test_entrypoint_needs_no_tool_on_path_and_keeps_args_exact(shell: str, tmp_path: Path) -> None:
    if not available(shell):
        pytest.skip(f"{SHELLS[shell][0]} is not installed")
    printf = shutil.which("printf") or "/usr/bin/printf"
    doc = batch_doc()
    doc["spec"]["defaults"]["command"] = [printf, "[%s]"]
    doc["spec"]["defaults"]["env"] = {"PATH": "/nonexistent"}
    doc["spec"]["jobs"] = [{"name": "a", "args": ["x\n", "", "$(HOME) *"]}]
    container = lay_out(render_doc(doc, variants=("parallel",), validate=False), tmp_path / shell)
    env = {"PATH": "/nonexistent", "JOB_COMPLETION_INDEX": "0"}
    result = subprocess.run(
        [
            shutil.which(SHELLS[shell][0]) or "",
            *SHELLS[shell][1:],
            str(tmp_path / shell / "entrypoint.sh"),
            *[a.replace("$$", "$") for a in container["args"]],
        ],
        env=env,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"[x\n][][$(HOME) *]"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"JOB_COMPLETION_INDEX": "0"}, "'JOB_COMPLETION_INDEX' is reserved"),
        ({"MLGEN_SECRET_0": "x"}, "'MLGEN_SECRET_0' is reserved"),
        ({"MLGEN_V": "x"}, "'MLGEN_V' is reserved"),
        ({"A" * 244: "x"}, "an environment variable name may have at most 243"),
    ],
)
def test_reserved_and_overlong_env_names_are_refused(env: dict[str, str], expected: str) -> None:
    for place in ("env", "secretEnv"):
        doc = batch_doc()
        doc["spec"]["jobs"][0][place] = {k: "s/k" for k in env} if place == "secretEnv" else env
        _, problems = source.load_text(yaml.safe_dump(doc), source="batch.yaml")
        assert any(expected in p and f"spec.jobs[0].{place}" in p for p in problems), problems


@pytest.mark.parametrize("strategy", ["parallel", "indexed"])
def test_per_job_secrets_are_refused_in_indexed_jobs_with_why_and_what_instead(
    strategy: str,
) -> None:
    doc = batch_doc(sequential={"strategy": "indexed"})
    doc["spec"]["jobs"][1]["secretEnv"] = {"TOKEN": "tok-b/key"}
    variant = "parallel" if strategy == "parallel" else "sequential"
    with pytest.raises(RenderError) as caught:
        render_doc(doc, variants=(variant,))
    message = str(caught.value)
    assert "spec.jobs[1].secretEnv" in message
    assert "every job's secret" in message and "spec.defaults.secretEnv" in message
    doc["spec"]["sequential"] = {"strategy": "waves"}  # each Job its own template: fine
    assert render_doc(doc, variants=("sequential",))


def test_shared_secrets_are_required_and_reach_the_command_by_name(tmp_path: Path) -> None:
    doc = env_batch({}, [{}, {}])
    doc["spec"]["defaults"]["secretEnv"] = {"OPTIND": "tok/key", "X": "other/key"}
    container = lay_out(render_doc(doc, variants=("parallel",), validate=False), tmp_path)
    refs = [e["valueFrom"]["secretKeyRef"] for e in container["env"]]
    assert all("optional" not in r for r in refs), "a missing secret must stop the pod"
    for shell in SHELLS:
        if available(shell):
            got, _ = run_index(shell, tmp_path, container, 1, inherited={})
            assert (got["OPTIND"], got["X"]) == ("secret:tok/key", "secret:other/key")


def test_an_empty_command_is_refused() -> None:
    doc = batch_doc()
    doc["spec"]["defaults"]["command"] = []
    _, problems = source.load_text(yaml.safe_dump(doc), source="batch.yaml")
    assert any("spec.defaults.command: is empty" in p for p in problems), problems


def test_env_from_reaches_an_indexed_job_only_under_a_safe_prefix() -> None:
    from mlgen import render, source
    from mlgen.errors import RenderError

    from .conftest import batch_doc

    for prefix, ok in (
        ("", False),
        ("LC_", False),
        ("BASH_", False),
        ("MLGEN_", False),
        ("cfg_", False),
        ("CFG_", True),
        ("S_", True),
    ):
        doc = batch_doc()
        entry: dict[str, object] = {"configMapRef": {"name": "train-env"}}
        if prefix:
            entry["prefix"] = prefix
        doc["spec"]["defaults"]["envFrom"] = [entry]
        batches, problems = source.load_text(yaml.safe_dump(doc), source="batch.yaml")
        assert not problems, problems
        if ok:
            assert render.render_batch(batches[0])
        else:
            with pytest.raises(RenderError, match=r"envFrom\[0\].prefix: .*OPTIND"):
                render.render_batch(batches[0], only=("parallel",))
            assert render.render_batch(batches[0], only=("sequential",))  # waves: no shell
