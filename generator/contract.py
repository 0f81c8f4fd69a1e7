"""Every label, annotation and ConfigMap key that crosses from rendering to running.

The renderers write these names; `mlgen apply`, the timeline, the conformance suite and
the KWOK stages (`cluster/stages/stages.yaml`, checked against this module by a test)
read them. Nothing else in the package spells them: import them from here.
"""

from __future__ import annotations

from typing import Any

# Labels on every rendered object (selectors of the timeline and of `mlgen apply`).
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "mlgen"
PART_OF = "app.kubernetes.io/part-of"
VARIANT = "mlgen.io/variant"  # the output directory: sequential | parallel | stages
STEP = "mlgen.io/step"  # waves: the step's position in the batch
QUEUE = "kueue.x-k8s.io/queue-name"
PRIORITY_CLASS = "kueue.x-k8s.io/priority-class"  # a Kueue WorkloadPriorityClass

# What Kueue writes, read by `mlgen apply`: the Workload it makes for each queued Job.
WORKLOAD = ("kueue.x-k8s.io/v1beta2", "Workload")
WORKLOAD_JOB_UID = "kueue.x-k8s.io/job-uid"  # a Workload's label: its Job's uid

# Annotations on Jobs.
SYNC_WAVE = "argocd.argoproj.io/sync-wave"  # order for Argo CD and `mlgen apply`
STEP_NAME = "mlgen.io/step-name"  # waves: the batch's job name of this step
JOB_NAMES = "mlgen.io/job-names"  # Indexed Jobs: the batch's job names by completion index
STAGE_NAME = "mlgen.io/stage"  # stages: the name of the stage the Job runs
ON_FAILURE = "mlgen.io/on-failure"  # stop | continue, read by `mlgen apply`
STRATEGY = "mlgen.io/strategy"  # the unit that rendered the Job: waves|indexed|parallel|stages
PLANNED_DURATIONS = "mlgen.io/planned-durations"  # expectedDuration by index, for estimates
# On the pod template, so in the content hash: bumping a job's `rerun` re-runs it.
RERUN = "mlgen.io/rerun"

# Pod-template annotations read by the KWOK stages (simulated clusters only).
EXPECTED_DURATION = "mlgen.io/expected-duration"
EXPECTED_DURATIONS = "mlgen.io/expected-durations"
SIMULATE_FAILURE = "mlgen.io/simulate-failure"

# On nodes of a throwaway test cluster: the label keys the conformance suite set to fit a
# batch (conformance/fitting.py), which a later batch may set to another value.
FITTED_LABELS = "mlgen.io/fitted-labels"

# Written by the Job controller, read by the timeline and by `mlgen apply` (which pods
# are a Job's).
JOB_NAME_LABEL = "job-name"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
INDEX_FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"

# In every pod's environment: the batch's job name it runs (per index in an Indexed Job,
# where the pod template is shared, so it travels as a per-index env entry).
JOB_NAME_ENV = "MLGEN_JOB_NAME"

# The Indexed Job's ConfigMap: `<index>.arg.<k>`, `<index>.env.<NAME>`, the entrypoint.
ENTRYPOINT_KEY = "entrypoint.sh"


def arg_key(index: int, position: int) -> str:
    return f"{index}.arg.{position}"


def env_key(index: int, name: str) -> str:
    return f"{index}.env.{name}"


def shared_env_key(name: str) -> str:
    """Env every index shares: kept out of the pod spec so that the entrypoint's shell
    never starts with a user's variable (OPTIND, IFS, PATH...) in its environment."""
    return f"env.{name}"


# Keys mlgen owns: a batch's own labels may not set them (mlgen's values always win, and
# the timeline selects on them).
# The Job controller's own pod labels: a template that sets them no longer matches the
# selector it generates, and the API server rejects the Job.
JOB_CONTROLLER_LABELS = frozenset({"controller-uid", JOB_NAME_LABEL})
RESERVED_LABELS = frozenset(
    {MANAGED_BY, PART_OF, VARIANT, STEP, QUEUE, PRIORITY_CLASS, *JOB_CONTROLLER_LABELS}
)
RESERVED_PREFIXES = ("mlgen.io/", "batch.kubernetes.io/")

# Env names a batch may not set: the Job controller's index, and the names the Indexed
# Job's entrypoint keeps its own state and the secrets in (`MLGEN_SECRET_<slot>`).
RESERVED_ENV = frozenset({"JOB_COMPLETION_INDEX"})
RESERVED_ENV_PREFIX = "MLGEN_"
SECRET_ENV_PREFIX = "MLGEN_SECRET_"


def is_run(obj: dict[str, Any]) -> bool:
    """Whether a rendered object is one a strategy runs (a Job, or another kind a variant
    renders), not configuration: the strategy that rendered it annotates it."""
    return STRATEGY in ((obj.get("metadata") or {}).get("annotations") or {})


def is_reserved_label(key: str) -> bool:
    return key in RESERVED_LABELS or key.startswith(RESERVED_PREFIXES)
