"""The Indexed Job's entrypoint (`templates/entrypoint.sh.j2`) and what it cannot carry.

The script runs under the image's `/bin/sh` (dash, busybox ash, bash in POSIX mode).
The user's environment never enters that shell: shared env travels in the ConfigMap
like per-index env, secrets under reserved `MLGEN_SECRET_<slot>` names, and env(1)
hands all of it to the command under the user's names at exec. So no variable a
batch names can change the script (OPTIND, IFS, PATH, a single letter), and the
command starts with exactly the environment the batch gave.
"""

from __future__ import annotations

from mlgen import spec, templating
from mlgen.errors import RenderError


def check(batch: spec.Batch, *, fix: str) -> None:
    """Refuse what one pod template would deliver wrongly: per-job secrets (every pod of
    the Indexed Job would receive every job's secret) and a command env(1) misreads."""
    first = batch.jobs[0]
    for job in batch.jobs[1:]:
        if job.secret_env != first.secret_env:
            names = sorted(set(job.secret_env.items()) ^ set(first.secret_env.items()))
            raise RenderError(
                f"{batch.source}: spec.jobs[{job.index}].secretEnv: job {job.name!r} and job "
                f"{first.name!r} have different secretEnv ({names[0][0]}), but every pod of an "
                "Indexed Job shares one pod template, so each would be handed every job's "
                "secret; give all jobs the same secretEnv (spec.defaults.secretEnv), or "
                f"keep per-job secrets and {fix}"
            )
    command = first.command or ("",)
    if "=" in command[0]:
        raise RenderError(
            f"{batch.source}: spec.defaults.command[0]: {command[0]!r} contains "
            "'=', which env(1) in the Indexed Job's entrypoint would take for a "
            "variable; name the program without '='"
        )


def script(batch: spec.Batch) -> str:
    """The entrypoint for this batch: it maps each `MLGEN_SECRET_<slot>` to its name."""
    return templating.render(
        "entrypoint.sh.j2", batch=batch.name, secrets=list(enumerate(batch.jobs[0].secret_env))
    )
