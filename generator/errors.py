"""The one error hierarchy of mlgen.

Every failure a user can cause or fix is an `MlgenError` whose message is a full
sentence naming the file or object at fault and what to do about it. The CLI prints
that sentence on one line and exits with `exit_code`; anything else escaping is a bug
in mlgen and keeps its traceback. Third-party errors are wrapped with `raise … from e`
so the cause stays visible to developers without reaching users.
"""

from __future__ import annotations


class MlgenError(Exception):
    """Base of every expected failure; `exit_code` is what the CLI exits with."""

    exit_code = 1


class SpecError(MlgenError):
    """A batch file is invalid: bad YAML, unknown key, bad value, duplicate name."""


class RenderError(MlgenError):
    """A valid batch cannot be rendered as asked (e.g. jobs cannot share one pod template)."""


class OutputError(MlgenError):
    """The output tree cannot be written without touching files mlgen does not own."""


class StaleError(MlgenError):
    """`render --check` found the committed tree differs from what would be rendered."""


class UsageError(MlgenError):
    """A command was called wrongly (missing file, conflicting options)."""

    exit_code = 2


class ClusterError(MlgenError):
    """The cluster could not be built, started, reached or used."""

    exit_code = 2


class JobFailedError(MlgenError):
    """A Job applied by mlgen reported Failed (or did not finish in time)."""


class StuckError(MlgenError):
    """A pod of a run stayed Pending past its bound while nothing else of the run moved."""
