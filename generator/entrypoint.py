"""The Indexed Job's entrypoint (`templates/entrypoint.sh.j2`) and what it cannot carry.

The script runs under the image's `/bin/sh` (dash, busybox ash, bash in POSIX mode).
The user's environment never enters that shell: shared env travels in the ConfigMap
like per-index env, secrets under reserved `MLGEN_SECRET_<slot>` names, and env(1)
hands all of it to the command under the user's names at exec. So no variable a
batch names can change the script (OPTIND, IFS, PATH, a single letter), and the
command starts with exactly the environment the batch gave.
"""

from __future__ import annotations

import re

from mlgen import rules, spec, templating
from mlgen.errors import RenderError

# envFrom keys land in the entrypoint shell's environment: only under a prefix that no
# variable a POSIX shell, dash, busybox sh or bash reads starts with.
_SAFE_PREFIX = re.compile(r"[A-Z][A-Z0-9]*_")
_SHELL_NAMES = (
    "IFS",
    "PS1",
    "PS2",
    "PS4",
    "OPTIND",
    "OPTARG",
    "PATH",
    "HOME",
    "ENV",
    "CDPATH",
    "MAIL",
    "MAILCHECK",
    "MAILPATH",
    "PPID",
    "PWD",
    "OLDPWD",
    "LINENO",
    "HISTFILE",
    "HISTSIZE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_COLLATE",
    "LC_MESSAGES",
    "LANG",
    "NLSPATH",
    "TERM",
    "SHELL",
    "SHELLOPTS",
    "BASHOPTS",
    "BASH_ENV",
    "BASH_XTRACEFD",
    "POSIXLY_CORRECT",
    "FUNCNEST",
    "GLOBIGNORE",
    "TMOUT",
    "TMPDIR",
    "MLGEN_",
    "JOB_COMPLETION_INDEX",
)


def check(batch: spec.Batch, *, fix: str) -> None:
    """Refuse what one pod template would deliver wrongly: per-job secrets (every pod of
    the Indexed Job would receive every job's secret) and a command env(1) misreads."""
    first = batch.jobs[0]
    for job in batch.jobs[1:]:
        if job.secret_env != first.secret_env:
            names = sorted(set(job.secret_env.items()) ^ set(first.secret_env.items()))
            raise RenderError(
                f"{batch.at_own('secretEnv', job.index, first.index)}: job {job.name!r} and job "
                f"{first.name!r} have different secretEnv ({names[0][0]}), but every pod of an "
                "Indexed Job shares one pod template, so each would be handed every job's "
                "secret; give all jobs the same secretEnv (spec.defaults.secretEnv), or "
                f"keep per-job secrets and {fix}"
            )
    # mlgen's own rule, not the API's: off with the API's rules (rules.relaxed), which
    # the bad-values corpus uses to show the API server rejecting each value itself.
    for position, entry in enumerate(first.pod.env_from if rules.strict() else ()):
        prefix = str(entry.get("prefix", ""))
        if not _SAFE_PREFIX.fullmatch(prefix) or any(
            name.startswith(prefix) for name in _SHELL_NAMES
        ):
            raise RenderError(
                f"{batch.at_job(first.index, f'envFrom[{position}].prefix')}: an Indexed Job's "
                "entrypoint is a shell, and envFrom puts keys nobody lists here into its "
                "environment, where a name like OPTIND, IFS or PATH changes how it runs; give "
                "the entry a prefix such as CFG_ (capitals, digits, ending in '_', not MLGEN_ "
                f"or a shell's own like LC_ or BASH_), or keep it as is and {fix}"
            )
    command = first.command or ("",)
    if "=" in command[0]:
        raise RenderError(
            f"{batch.at_job(first.index, 'command[0]')}: {command[0]!r} contains "
            "'=', which env(1) in the Indexed Job's entrypoint would take for a "
            "variable; name the program without '='"
        )


def script(batch: spec.Batch) -> str:
    """The entrypoint for this batch: it maps each `MLGEN_SECRET_<slot>` to its name."""
    return templating.render(
        "entrypoint.sh.j2", batch=batch.name, secrets=list(enumerate(batch.jobs[0].secret_env))
    )
