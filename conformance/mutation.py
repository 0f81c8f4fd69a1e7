"""Mutation harness for the conformance suite (run on demand, not in CI).

Plants one deliberate bug at a time in a copy of the working tree, runs the fast tests
and the conformance scenarios against the copy (on their own local cluster), and prints
which test caught each mutant, with its message. A mutant that no test catches is a
hole in mlgen's proof.

    .venv/bin/python conformance/mutation.py [--only NAME ...] [-o conformance/mutation-results.md]

On real kind, beside mlgen's own Docker engine (the fast tests are the same there):

    mlgen cluster docker -- sh -c '.venv/bin/python conformance/mutation.py --kind \
        --only "5 s extra per step in apply" -o conformance/mutation-results-kind.md'

The copy is imported instead of the installed tree by putting a package directory of
links (`mlgen` -> the copy's generator/ and templates/) first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAST = [
    "tests/test_render.py",
    "tests/test_checks.py",
    "tests/test_apply.py",
    "tests/test_contract.py",
    "tests/test_past_ten.py",
    "tests/test_references.py",
    "tests/test_pod_security.py",
    "tests/test_stages.py",
    "tests/test_kueue.py",
]
CONFORMANCE = ["conformance/test_admission.py", "conformance/test_scenarios.py"]


@dataclass(frozen=True)
class Mutant:
    name: str
    edits: tuple[tuple[str, str, str], ...]  # (file, old text, new text), each exactly once
    # Why no cluster run can catch it (it is then shown by the fast tests alone): a race
    # no cluster reproduces on demand, say. Empty: the conformance tests must catch it.
    fast_only: str = ""
    # The conformance tests that can catch it, when not CONFORMANCE.
    conformance: tuple[str, ...] = ()
    # Why only real kubelets can catch it: the local run then leaves its conformance
    # tests out and says so, and `--kind` runs them.
    kind_only: str = ""


MUTANTS = [
    Mutant(
        "every step in one wave",
        (
            (
                "generator/variants/waves.py",
                "contract.SYNC_WAVE: str(job.index)",
                'contract.SYNC_WAVE: "0"',
            ),
        ),
    ),
    Mutant(
        "steps reversed",
        (
            (
                "generator/variants/waves.py",
                "contract.SYNC_WAVE: str(job.index)",
                "contract.SYNC_WAVE: str(len(batch.jobs) - 1 - job.index)",
            ),
        ),
    ),
    Mutant(
        "all waves applied at once",
        (
            (
                "generator/apply.py",
                "phase = look.during(",
                'phase = "Succeeded" or look.during(',
            ),
        ),
    ),
    Mutant(
        "5 s extra per step in apply",
        (
            (
                "generator/apply.py",
                "            outcome.jobs.append(result)\n",
                "            outcome.jobs.append(result)\n            time.sleep(5)\n",
            ),
        ),
    ),
    Mutant(
        "indexed parallelism 2",
        (("generator/variants/indexed.py", "parallelism=1,", "parallelism=2,"),),
    ),
    Mutant(
        "parallel p = 1",
        (
            (
                "generator/variants/parallel.py",
                "parallelism=batch.parallelism,\n            max_failed_indexes=None",
                "parallelism=1,\n            max_failed_indexes=None",
            ),
        ),
    ),
    Mutant(
        "parallel p + 1",
        (
            (
                "generator/variants/parallel.py",
                "parallelism=batch.parallelism,\n            max_failed_indexes=None",
                "parallelism=batch.parallelism + 1,\n            max_failed_indexes=None",
            ),
        ),
    ),
    Mutant(
        "KWOK durations x2",
        (
            (
                "generator/pod.py",
                "    durations = [\n        units.go_duration(j.expected_seconds) if",
                "    durations = [\n        units.go_duration(2 * j.expected_seconds) if",
            ),
        ),
    ),
    Mutant(
        "KWOK durations x1.5",
        (
            (
                "generator/pod.py",
                "    durations = [\n        units.go_duration(j.expected_seconds) if",
                "    durations = [\n        units.go_duration(round(1.5 * j.expected_seconds)) if",
            ),
        ),
    ),
    Mutant(
        "retries 0 in both strategies",
        (
            ("generator/variants/waves.py", '"backoffLimit": job.retries,', '"backoffLimit": 0,'),
            (
                "generator/indexed_job.py",
                '"backoffLimitPerIndex": first.retries,',
                '"backoffLimitPerIndex": 0,',
            ),
        ),
    ),
    Mutant(
        "retries 0 in waves alone",
        (("generator/variants/waves.py", '"backoffLimit": job.retries,', '"backoffLimit": 0,'),),
    ),
    Mutant(
        "onFailure ignored",
        (
            ("generator/apply.py", 'annotations.get(contract.ON_FAILURE) != "continue"', "True"),
            (
                "generator/variants/indexed.py",
                'max_failed_indexes=0 if batch.on_failure == "stop" else None',
                "max_failed_indexes=0",
            ),
        ),
    ),
    Mutant(
        "allowPrivilegeEscalation dropped",
        (("generator/pod.py", '        "allowPrivilegeEscalation": False,\n', ""),),
    ),
    Mutant(
        "waves sorted as text past ten",
        (
            (
                "generator/apply.py",
                "[waves[w] for w in sorted(waves)]",
                "[waves[w] for w in sorted(waves, key=str)]",
            ),
        ),
    ),
    Mutant(
        "params ConfigMap a wave after its Job",
        (("generator/indexed_job.py", 'contract.SYNC_WAVE: "-1"', 'contract.SYNC_WAVE: "1"'),),
    ),
    Mutant(
        "params ConfigMap a wave after its Job, render check off",
        (
            ("generator/indexed_job.py", 'contract.SYNC_WAVE: "-1"', 'contract.SYNC_WAVE: "1"'),
            (
                "generator/render.py",
                "references.check_order(placed, listed,",
                "(lambda *_, **__: None)(placed, listed,",
            ),
        ),
        conformance=("conformance/test_gitops.py::TestArgoCD",),
        kind_only="KWOK's pods mount nothing, so a ConfigMap that comes after its Job stops "
        "no simulated pod; on a real kubelet the Job's pods wait for it and Argo CD waits on "
        "the Job",
    ),
    Mutant(
        "every stage in one wave",
        (
            (
                "generator/variants/stages.py",
                "contract.SYNC_WAVE: str(stage.index),",
                'contract.SYNC_WAVE: "0",',
            ),
        ),
        conformance=("conformance/test_stages.py",),
    ),
    Mutant(
        "stage parallelism ignored",
        (
            (
                "generator/variants/stages.py",
                "parallelism=stage.parallelism,\n            max_failed_indexes=None",
                "parallelism=len(group.jobs),\n            max_failed_indexes=None",
            ),
        ),
        conformance=("conformance/test_stages.py",),
    ),
    Mutant(
        "privileged through podPatch unchecked",
        (
            (
                "generator/podsecurity.py",
                'if context.get("privileged"):',
                'if context.get("privileged") and False:',
            ),
        ),
    ),
    Mutant(
        "a Job failed after its pod succeeded taken as Complete",
        (("generator/apply.py", 'status=_status(ended["type"], ends),', 'status="Complete",'),),
        fast_only="the Job controller marks a Job whose pod succeeded Failed only when its "
        "deadline passes within the same sync, milliseconds: no cluster reproduces it on "
        "demand, so the fast tests' fake cluster disagrees with itself instead",
    ),
    Mutant(
        "queued Flux chain on Flux's own Job health",
        (
            (
                "generator/flux.py",
                "    if batch.queue:\n        for kustomization in chain:",
                "    if False:\n        for kustomization in chain:",
            ),
        ),
        conformance=("conformance/test_kueue.py::TestFlux",),
    ),
    Mutant(
        "Argo CD health check: a running Job Healthy",
        (
            (
                "templates/argocd-job-health.lua",
                'local hs = {status = "Progressing", message = "Job is running"}',
                'local hs = {status = "Healthy", message = "Job is running"}',
            ),
        ),
        conformance=("conformance/test_kueue.py::TestArgoCD",),
    ),
    Mutant(
        "queue quota ignored",
        (("generator/spec.py", "parallelism=min(asked, fit or asked),", "parallelism=asked,"),),
        conformance=(
            "conformance/test_kueue.py::test_parallel_under_quota_runs_what_the_quota_admits",
        ),
    ),
]


def tracked_copy(target: Path) -> None:
    """The working tree as it is (tracked and untracked files, not what git ignores)."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, files):
        source = ROOT / rel
        if source.is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / rel)


def plant(repo: Path, mutant: Mutant) -> None:
    for rel, old, new in mutant.edits:
        path = repo / rel
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(
                f"{mutant.name}: {rel} holds {old!r} {text.count(old)} times; update the harness"
            )
        path.write_text(text.replace(old, new))


def package_links(repo: Path, site: Path) -> None:
    package = site / "mlgen"
    package.mkdir(parents=True)
    for entry in (repo / "generator").iterdir():
        (package / entry.name).symlink_to(entry)
    (package / "templates").symlink_to(repo / "templates")


def run_tests(
    repo: Path, site: Path, paths: list[str], *, extra: tuple[str, ...] = ()
) -> tuple[str, str]:
    """(the failing test or "", its first assertion line)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "MLGEN_CLUSTER_WORKDIR": str(site.parent / "clusters"),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *paths,
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
            "--tb=short",
            "-W",
            "ignore",
            "-n",  # one session: the first failure is the mutant's catch, in order
            "0",
            *extra,
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    failed = re.search(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, flags=re.M)
    if not failed:
        return "", ""
    message = next(
        (
            line.strip()[2:].strip()
            for line in proc.stdout.splitlines()
            if line.strip().startswith("E ") and "Error" in line
        ),
        "",
    )
    return failed.group(1), message[:300]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="mutant name(s)")
    parser.add_argument("-o", "--output", type=Path, default=None)
    parser.add_argument(
        "--kind",
        action="store_true",
        help="run the conformance tests on real kind (inside `mlgen cluster docker`; node "
        "image from $MLGEN_KIND_NODE_IMAGE) and skip the fast tests",
    )
    args = parser.parse_args()
    extra: tuple[str, ...] = ()
    if args.kind:
        image = os.environ.get("MLGEN_KIND_NODE_IMAGE")
        if not image:
            raise SystemExit("--kind runs inside `mlgen cluster docker -- ...` (no node image)")
        extra = (
            "--mlgen-cluster",
            "kind",
            "--mlgen-kind-config",
            "kind-config.yaml",
            "--mlgen-kind-image",
            image,
        )
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    lines = [
        "# Mutation results",
        "",
        f"`python conformance/mutation.py` on {time.strftime('%Y-%m-%d')}: each mutant "
        "planted alone in a copy of the tree; the first failing test of the fast "
        f"tests ({', '.join(FAST)}) and of the conformance scenarios "
        f"({', '.join(CONFORMANCE)}, on a fresh "
        f"{'real kind' if args.kind else 'local'} cluster), with its message.",
        "",
        "| mutant | fast test | conformance test | conformance message |",
        "|---|---|---|---|",
    ]
    missed = 0
    for mutant in chosen:
        with tempfile.TemporaryDirectory(prefix="mlgen-mutant-") as work:
            repo, site = Path(work) / "repo", Path(work) / "site"
            tracked_copy(repo)
            plant(repo, mutant)
            package_links(repo, site)
            started = time.monotonic()
            fast = "(run on the local cluster)" if args.kind else run_tests(repo, site, FAST)[0]
            if mutant.fast_only:
                slow, message = "", f"(not run: {mutant.fast_only})"
            elif mutant.kind_only and not args.kind:
                slow, message = "", f"(not run here: {mutant.kind_only}; run with --kind)"
            else:
                tests = list(mutant.conformance) or CONFORMANCE
                slow, message = run_tests(repo, site, tests, extra=extra)
        deferred = bool(mutant.kind_only) and not args.kind
        missed += not (slow or (mutant.fast_only and fast) or deferred)
        shown = slow or (
            "fast tests only"
            if mutant.fast_only
            else "real kind only"
            if deferred
            else "**NOT CAUGHT**"
        )
        row = f"| {mutant.name} | {fast or 'not caught'} | {shown} | {message.replace('|', '/')} |"
        print(f"{row}  ({time.monotonic() - started:.0f}s)", flush=True)
        lines.append(row)
    fast_only = sum(1 for m in chosen if m.fast_only)
    deferred = sum(1 for m in chosen if m.kind_only and not args.kind)
    lines += [
        "",
        f"{len(chosen) - missed - deferred} of {len(chosen)} mutants caught: "
        f"{len(chosen) - missed - fast_only - deferred} by a conformance test, "
        f"{fast_only} by the fast tests alone (the reason in the row)"
        + (
            f"; {deferred} left to the real kind run (mutation-results-kind.md)."
            if deferred
            else "."
        ),
    ]
    if args.output:
        args.output.write_text("\n".join(lines) + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
