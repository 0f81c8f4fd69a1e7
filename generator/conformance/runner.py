"""Run a batch on a cluster for the conformance suite: render it into the test's
namespace (durations scaled on simulated clusters), apply a variant with
`mlgen apply`'s engine, and keep the timeline (JSON + PNG) as an artifact."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlgen import apply, estimate, gantt, kube, render, source, spec, timeline, variants, versions
from mlgen.cluster import kueue as queues
from mlgen.conformance import fitting, stalls, standin
from mlgen.errors import JobFailedError

PROBE_IMAGE = versions.STANDIN_IMAGE  # sleeper batches' image; stand-ins run it where real
# Scaled-down jobs run at least this long: the API server keeps whole seconds, and two
# pods of 1 s that start either side of a second boundary would read as not overlapping.
MIN_SCALED_SECONDS = 3


@dataclass(frozen=True)
class Case:
    """One (batch file, batch, variant) for the generic conformance test."""

    path: Path
    batch: str
    variant: str

    @property
    def id(self) -> str:
        return f"{self.path.stem}:{self.batch}:{self.variant}"


def cases(paths: Sequence[Path]) -> list[Case]:
    return [
        Case(path=Path(b.source), batch=b.name, variant=v)
        for path in paths
        for b in source.load_files([path])
        for v in b.variants
    ]


@dataclass(frozen=True)
class RunResult:
    batch: spec.Batch
    variant: str
    timeline: timeline.Timeline
    failure: JobFailedError | None
    objects: list[dict[str, Any]]
    estimate: float | None = None  # `mlgen estimate`'s makespan, where its model applies

    @property
    def durations(self) -> list[float]:
        return [float(j.expected_seconds or 0) for j in self.batch.jobs]


@dataclass
class Runner:
    client: kube.Kube
    namespace: str
    artifacts: Path
    time_scale: float
    say: Callable[[str], None]
    # Where each run's predicted and measured makespans go (the suite's estimate table);
    # None where the estimate's model does not apply (real containers, planted faults).
    estimated: Callable[[str, float, float], None] | None = None
    # Stand-in containers (standin.py): each run then checks what every pod received.
    standin: bool = False
    # Whether the suite may change the cluster (PriorityClasses, volumes, node labels).
    throwaway: bool = True
    # Fail a run whose pods stall this long, with the reason (stalls.py); None: never.
    stall_bound: float | None = None
    # The cluster runs Kueue (--mlgen-kueue): a queued batch gets a LocalQueue of its
    # spec.queue in this ClusterQueue, and each run checks Kueue admitted every Job.
    kueue: str | None = None
    # The shortest a scaled job runs: 3 s keeps order checks clear of the API's 1 s
    # timestamps; a run that checks only what its pods received may go lower.
    min_seconds: int = MIN_SCALED_SECONDS

    def load(self, path: Path, name: str | None = None) -> spec.Batch:
        batches = source.load_files([path])
        return next(b for b in batches if name is None or b.name == name)

    def from_dict(self, doc: dict[str, Any], *, source_name: str = "test-batch.yaml") -> spec.Batch:
        batches, problems = source.load_text(
            yaml.safe_dump(doc, sort_keys=False), source=source_name
        )
        assert not problems, problems
        return batches[0]

    def prepare(self, batch: spec.Batch) -> spec.Batch:
        """The batch as this test runs it: in the test namespace, durations scaled."""
        scale, shortest = self.time_scale, self.min_seconds

        def scaled(job: spec.Job) -> spec.Job:
            if job.expected_seconds is None or scale == 1:
                return job
            return dataclasses.replace(
                job, expected_seconds=max(shortest, round(job.expected_seconds / scale))
            )

        # Render the KWOK hints: on a simulated cluster they are how long a pod runs.
        return dataclasses.replace(
            batch,
            namespace=self.namespace,
            simulated=True,
            jobs=tuple(scaled(j) for j in batch.jobs),
        )

    def run(
        self,
        batch: spec.Batch,
        variant: str,
        *,
        timeout: float | None = None,
        capacity: Mapping[str, str] | None = None,
    ) -> RunResult:
        """Render, apply and record one variant; `capacity` is what the nodes hold at once
        (a resource by resource), for the estimate."""
        batch = self.prepare(batch)
        files = render.render_batch(batch, only=(variant,))
        # Apply the rendered files as parsed back, i.e. exactly the bytes a user commits.
        objects = [
            d
            for path, text in sorted(files.items())
            if not path.endswith("kustomization.yaml")
            for d in yaml.safe_load_all(text)
            if d
        ]
        self.provide(batch, objects)
        if self.kueue and batch.queue:
            queues.enroll(self.client, self.namespace, batch.queue, cluster_queue=self.kueue)
        if batch.pod_security != "restricted":  # the batch opted out: enforce what it asks
            with kube.errors(f"labelling namespace {self.namespace}"):
                self.client.core.patch_namespace(
                    self.namespace,
                    {
                        "metadata": {
                            "labels": {"pod-security.kubernetes.io/enforce": batch.pod_security}
                        }
                    },
                )
        total = sum(float(j.expected_seconds or 0) for j in batch.jobs)
        failure: JobFailedError | None = None

        def applying() -> None:
            apply.run(
                self.client,
                objects,
                timeout=timeout or 3 * total + 120,
                progress=lambda line: self.say(f"{batch.name}/{variant}: {line}"),
            )

        with timeline.recorder_for(self.client, objects) as recorded:
            try:
                if self.stall_bound is None:
                    applying()
                else:
                    stalls.guarded(self.client, self.namespace, applying, bound=self.stall_bound)
            except JobFailedError as e:
                failure = e
            recorded.settle()
        found = timeline.collect_for(self.client, objects, recorded=recorded)
        target = self.artifacts / f"{batch.name}-{variant}.json"
        gantt.save(found, target)
        said = f"{batch.name}/{variant}: makespan {found.makespan:.2f}s"
        predicted: float | None = None
        if self.estimated is not None and failure is None:
            unit = variants.select(batch, variant)
            # What the nodes let run at once, and who starts the next pod then.
            room = estimate.within(batch, capacity or {})
            per = estimate.scheduled(batch, capacity or {}, estimate.overheads())
            predicted = unit.predict(room, parallelism=room.parallelism, overheads=per)
            self.estimated(f"{batch.name}/{variant}", predicted, found.makespan)
            said += f", estimate {predicted:.2f}s"
        self.say(f"{said}, peak {found.max_concurrency()} pods -> {target}")
        if self.standin:
            problems = standin.verify(
                self.client,
                batch=batch,
                variant=variant,
                objects=objects,
                secret_value=fitting.SECRET_VALUE,
                complete=failure is None,
            )
            if problems:
                raise AssertionError(
                    "stand-ins did not receive what the batch promised:\n" + "\n".join(problems)
                )
        if self.kueue and batch.queue and failure is None:
            jobs = [o["metadata"]["name"] for o in objects if o["kind"] == "Job"]
            problems = queues.not_admitted(self.client, self.namespace, jobs)
            if problems:
                raise AssertionError("; ".join(problems))
        return RunResult(
            batch=batch,
            variant=variant,
            timeline=found,
            failure=failure,
            objects=objects,
            estimate=predicted,
        )

    def provide(self, batch: spec.Batch, objects: list[dict[str, Any]] | None = None) -> list[str]:
        """Fit the test cluster to the batch (fitting.py): placeholders for what its pods
        reference (in `objects`, else every variant rendered), and node labels its
        selectors ask for. Returns what was made."""
        if objects is None:
            objects = [
                d
                for path, text in sorted(render.render_batch(batch).items())
                if not path.endswith("kustomization.yaml")
                for d in yaml.safe_load_all(text)
                if d
            ]
        made = fitting.fit(self.client, objects, namespace=self.namespace, throwaway=self.throwaway)
        if made:
            self.say(f"{batch.name}: made to fit the cluster: {', '.join(made)}")
        return made


def sleeper_batch(
    name: str,
    *,
    durations: Sequence[int],
    parallelism: int | None = None,
    strategy: str | None = None,
    on_failure: str = "stop",
    extra_defaults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A test batch whose pods sleep for their duration on a real cluster too."""
    doc: dict[str, Any] = {
        "apiVersion": spec.API_VERSION,
        "kind": "Batch",
        "metadata": {"name": name},
        "spec": {
            "simulated": True,  # KWOK runs each pod for its expectedDuration (or fails it)
            "sequential": {"onFailure": on_failure, **({"strategy": strategy} if strategy else {})},
            "defaults": {
                "image": PROBE_IMAGE,
                "command": ["sh", "-c"],
                "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}},
                **(extra_defaults or {}),
            },
            "jobs": [
                {"name": f"step-{i}", "args": [f"sleep {d}"], "expectedDuration": f"{d}s"}
                for i, d in enumerate(durations)
            ],
        },
    }
    if parallelism is not None:
        doc["spec"]["parallelism"] = parallelism
    return doc


def staged_batch(
    name: str,
    plan: dict[str, Sequence[int]],
    *,
    parallelism: dict[str, int] | None = None,
    on_failure: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A sleeper batch in stages: `plan` maps each stage, in order, to its jobs' durations
    (jobs `<stage>-<i>`); a stage's jobs share one pod template, so a stage of many is one
    Indexed Job."""
    doc = sleeper_batch(name, durations=[d for spans in plan.values() for d in spans])
    doc["spec"].pop("sequential")
    doc["spec"]["stages"] = [
        {
            "name": stage,
            **({"parallelism": (parallelism or {})[stage]} if stage in (parallelism or {}) else {}),
            **({"onFailure": (on_failure or {})[stage]} if stage in (on_failure or {}) else {}),
        }
        for stage in plan
    ]
    jobs = iter(doc["spec"]["jobs"])
    for stage, spans in plan.items():
        for i in range(len(spans)):
            job = next(jobs)
            job["name"], job["stage"] = f"{stage}-{i}", stage
    return doc


def client_for(client: kube.Kube, placement: standin.Placement | None) -> kube.Kube:
    """The session's client, or one that runs stand-ins where kubelets are real."""
    return client if placement is None else standin.StandinKube(client, placement)
