"""Predicted makespans of a batch's variants, from `expectedDuration`: each strategy
predicts its own (`Variant.predict`, with the formulas of `schedule`), plus the overhead
each adds between one job and the next.

Default overheads are each strategy's figure measured on the local control plane
(docs/design.md, bench/); `mlgen estimate --overhead` overrides them, and
`--overhead-from` reads the per-step overheads a conformance run calibrated on your
cluster, one per driver (who starts each step: the client or the Job controller).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlgen import rules, schedule, spec, variants
from mlgen.errors import UsageError

MAX_OVERHEAD = 3600.0  # seconds per step: anything more is not a measurement


@dataclass(frozen=True)
class StageEstimate:
    """One stage of a staged batch: its predicted span (its schedule, the Job controller's
    completion lag) and the lower bound max(Σd/p, longest job)."""

    name: str
    jobs: int
    parallelism: int
    seconds: float
    lower_bound_seconds: float


@dataclass(frozen=True)
class Estimate:
    batch: str
    jobs: int
    parallelism: int
    # (variant directory, predicted seconds) for every directory mlgen renders, in the
    # registry's order; the first runs one job at a time, the baseline of the speed-up.
    makespans: tuple[tuple[str, float], ...]
    rendered: tuple[str, ...]  # the directories this batch renders (spec.variants)
    lower_bound_seconds: float
    rounds: int  # how many rounds of p the jobs need
    overhead: tuple[tuple[str, float], ...] = ()  # per strategy, as used
    stages: tuple[StageEstimate, ...] = ()  # spec.stages, each on its own

    def seconds(self, directory: str) -> float:
        return dict(self.makespans)[directory]

    @property
    def speedup(self) -> float | None:
        """The first variant the batch renders (in the registry's order: one job at a time
        first) over the fastest other one it renders; None when it renders only one (a
        figure for a variant it cannot render would mislead)."""
        rendered = [s for d, s in self.makespans if d in self.rendered]
        if len(rendered) < 2:
            return None
        best = min(rendered[1:])
        return rendered[0] / best if best else 1.0

    def as_dict(self) -> dict[str, object]:
        return {
            "batch": self.batch,
            "jobs": self.jobs,
            "parallelism": self.parallelism,
            **{f"{directory}Seconds": seconds for directory, seconds in self.makespans},
            "variants": list(self.rendered),
            "lowerBoundSeconds": self.lower_bound_seconds,
            "rounds": self.rounds,
            "speedup": None if self.speedup is None else round(self.speedup, 3),
            "overheadSeconds": dict(self.overhead),
            **(
                {
                    "stages": [
                        {
                            "name": s.name,
                            "jobs": s.jobs,
                            "parallelism": s.parallelism,
                            "seconds": s.seconds,
                            "lowerBoundSeconds": s.lower_bound_seconds,
                        }
                        for s in self.stages
                    ]
                }
                if self.stages
                else {}
            ),
        }


def overheads(*, seconds: float | None = None, calibration: Path | None = None) -> dict[str, float]:
    """The overhead per strategy: each one's measured default, one value for all, or a
    calibration file (`{"client": s, "controller": s}`, as the conformance suite writes
    it), read by each strategy's driver."""
    units = [variants.get(e.name) for e in variants.REGISTRY]
    if seconds is not None:
        if not math.isfinite(seconds) or seconds < 0:
            raise UsageError(f"--overhead is {seconds}; give a finite number of seconds, 0 or more")
        return {u.name: seconds for u in units}
    if calibration is None:
        return {u.name: u.overhead for u in units}
    try:
        data = json.loads(calibration.read_text(encoding="utf-8"))
        per = {driver: float(data[driver]) for driver in sorted({u.driver for u in units})}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(
            f"{calibration}: not a calibration file ({e}); pass the epsilon.json a "
            "conformance run wrote (one figure per driver: "
            f"{', '.join(sorted({u.driver for u in units}))})"
        ) from e
    for key, value in per.items():
        if not math.isfinite(value) or not 0 <= value <= MAX_OVERHEAD:
            raise UsageError(
                f"{calibration}: {key} is {value}, not an overhead; a conformance run writes "
                f"a finite number of seconds from 0 to {MAX_OVERHEAD:g}"
            )
    return {u.name: per[u.driver] for u in units}


def room(capacity: Mapping[str, str], jobs: Sequence[spec.Job], *, parallelism: int) -> int:
    """`parallelism`, or fewer when fewer of these jobs' pods fit in `capacity` at once
    (the nodes' room, or a queue's quota): the scheduler holds the rest Pending."""
    fit, why = rules.room_for(capacity, [(j.requests, j.limits) for j in jobs])
    if fit == 0:
        raise UsageError(f"--capacity has room for no pod ({why}); give what the cluster has")
    return min(parallelism, fit) if fit is not None else parallelism


def within(batch: spec.Batch, capacity: Mapping[str, str]) -> spec.Batch:
    """The batch as it runs in `capacity`: its parallelism and each stage's lowered to the
    pods that fit at once."""
    if not capacity:
        return batch
    return dataclasses.replace(
        batch,
        parallelism=room(capacity, batch.jobs, parallelism=batch.parallelism),
        stages=tuple(
            dataclasses.replace(
                s, parallelism=room(capacity, batch.stage_jobs(s), parallelism=s.parallelism)
            )
            for s in batch.stages
        ),
    )


def scheduled(
    batch: spec.Batch, capacity: Mapping[str, str], per: Mapping[str, float]
) -> dict[str, float]:
    """The overheads for a batch run in `capacity`: where the room bounds a round below
    the Job's own parallelism, the scheduler starts the next pod (schedule.SCHEDULED_ROUND),
    not the Job controller."""
    room = within(batch, capacity)
    lowered = room.parallelism < batch.parallelism or any(
        a.parallelism < b.parallelism for a, b in zip(room.stages, batch.stages, strict=True)
    )
    if not lowered:
        return dict(per)
    # Only strategies that start p pods together have rounds the room can bound.
    return {
        name: min(seconds, schedule.SCHEDULED_ROUND) if variants.get(name).rounds else seconds
        for name, seconds in per.items()
    }


def of(
    batch: spec.Batch,
    *,
    parallelism: int | None = None,
    overhead: dict[str, float] | None = None,
    capacity: Mapping[str, str] | None = None,
) -> Estimate:
    """The predicted makespan of every variant directory, by the strategy that would
    render it for this batch; `capacity` bounds how many pods run at once."""
    per = scheduled(batch, capacity or {}, overhead if overhead is not None else overheads())
    ideal = overhead is not None and not any(per.values())  # --overhead 0
    batch = within(batch, capacity or {})
    durations = [float(j.expected_seconds or 0) for j in batch.jobs]
    # An override of spec.parallelism still runs within the queue's quota and the capacity.
    asked = min(parallelism or batch.parallelism, len(durations))
    p = room(
        capacity or {},
        batch.jobs,
        parallelism=room(batch.queue_quota, batch.jobs, parallelism=asked),
    )
    makespans = []
    for directory in variants.directories():
        unit = variants.select(batch, directory)
        if unit.fits(batch):
            continue  # no figure for a variant that cannot run this batch at all
        predicted = unit.predict(batch, parallelism=p, overheads=per, ideal=ideal)
        makespans.append((directory, predicted))
    stages = _stages(batch, per, ideal=ideal)
    return Estimate(
        batch=batch.name,
        jobs=len(durations),
        parallelism=max((s.parallelism for s in stages), default=p),
        makespans=tuple(makespans),
        rendered=batch.variants,
        lower_bound_seconds=(
            sum(s.lower_bound_seconds for s in stages)
            if stages
            else schedule.lower_bound(durations, p)
        ),
        rounds=(
            sum(-(-s.jobs // s.parallelism) for s in stages)
            if stages
            else -(-len(durations) // p)
            if p
            else 0
        ),
        overhead=tuple(sorted(per.items())),
        stages=stages,
    )


def _stages(batch: spec.Batch, per: dict[str, float], *, ideal: bool) -> tuple[StageEstimate, ...]:
    """Each stage predicted alone, by the strategy that renders staged batches: a batch of
    that one stage."""
    if not batch.stages:
        return ()
    unit = variants.select(batch, variants.defaults(staged=True)[0])
    out = []
    for stage in batch.stages:
        jobs = batch.stage_jobs(stage)
        alone = dataclasses.replace(stage, index=0, jobs=tuple(range(len(jobs))))
        sub = dataclasses.replace(batch, jobs=jobs, stages=(alone,))
        spans = [float(j.expected_seconds or 0) for j in jobs]
        out.append(
            StageEstimate(
                name=stage.name,
                jobs=len(jobs),
                parallelism=stage.parallelism,
                seconds=unit.predict(
                    sub, parallelism=stage.parallelism, overheads=per, ideal=ideal
                ),
                lower_bound_seconds=schedule.lower_bound(spans, stage.parallelism),
            )
        )
    return tuple(out)
