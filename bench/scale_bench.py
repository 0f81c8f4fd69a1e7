"""Scale: a 10,000-index parallel Indexed Job through the local control plane.

On one local control plane (started here, torn down after), a batch of n jobs of d
seconds at parallelism p, rendered to its parallel variant and run with `mlgen apply`,
while a recorder (the conformance suite's: two watches, a note per transition) follows
it in its own process. Measured, each in its own process so that peak memory (the
kernel's ru_maxrss for that child) belongs to one thing:

  render     `mlgen render` of the batch file
  apply      `mlgen apply` of the parallel variant: wall time and peak memory
  record     the recorder over the whole run, then collection of its timeline
  collect    collection after the run without a recorder, a page of 500 at a time
  collect-0  the same in one unpaginated list (what collection did before)

From the recorded timeline: pods per second through the control plane (pod starts
over the time from the first start to the last), the most pods running at once
(must be <= p), makespan against ⌈n/p⌉·d. The Gantt chart of the run is written
with aggregated rows (bench/scale-gantt.svg). A small run (--small) first gives the
same figures at n = 100 so that growth with n reads off one table.

    .venv/bin/python bench/scale_bench.py                  # the committed run
    .venv/bin/python bench/scale_bench.py --n 1000 --small 0   # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import bench_cluster
import yaml

from mlgen import gantt, kube, timeline
from mlgen.cluster import build, local
from mlgen.recorder import Recorder

HERE = Path(__file__).resolve().parent


@dataclass
class Measured:
    what: str
    seconds: float
    peak_mib: float
    cpu: float = 0.0  # user + system CPU seconds


@dataclass
class Run:
    n: int
    p: int
    d: float
    steps: list[Measured]
    pods: int
    pods_per_second: float
    peak_running: int
    makespan: float
    ideal: float
    events: int
    timeline_mib: float
    cpu: dict[str, float]  # CPU seconds per control-plane component during the run


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """user + system CPU seconds so far of each process, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[name] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return found


def child(args: list[str], env: dict[str, str], what: str) -> tuple[Measured, str]:
    """Run one child, returning its wall time, its own peak RSS and its stdout."""
    started = time.monotonic()
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{what} failed with exit code {process.returncode}: {args}")
    seconds = time.monotonic() - started
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(what, seconds, usage.ru_maxrss / 1024, cpu), out


def batch_file(work: Path, *, n: int, p: int, d: float, namespace: str) -> Path:
    doc = {
        "apiVersion": "mlgen.io/v1alpha1",
        "kind": "Batch",
        "metadata": {"name": f"scale-{n}", "namespace": namespace},
        "spec": {
            "simulated": True,
            "parallelism": p,
            "variants": ["parallel"],
            "defaults": {
                "image": "busybox:1.36.1",
                "command": ["sh", "-c"],
                "args": [f"sleep {d:g}"],
                "expectedDuration": f"{d:g}s",
                "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}},
            },
            "jobs": [{"name": f"j{i}"} for i in range(n)],
        },
    }
    path = work / f"scale-{n}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def record(args: argparse.Namespace) -> int:
    """Child mode: follow the batch's Job to its end with a recorder, then collect."""
    client = kube.connect(kubeconfig=args.kubeconfig)
    wanted = timeline.selector(args.batch, "parallel")
    with Recorder(client, namespace=args.namespace, selector=wanted) as recorded:
        Path(args.ready).touch()
        ended = client.wait_ended(
            args.namespace, [args.job], until=("Complete", "Failed"), timeout=args.timeout
        )
        recorded.settle(1.0)
    if args.job not in ended:
        raise SystemExit(f"job/{args.job} did not end within {args.timeout}s")
    found = timeline.collect(
        client, batch=args.batch, variant="parallel", namespace=args.namespace, recorded=recorded
    )
    found.save(Path(args.out))
    print(json.dumps({"events": recorded.events}))
    return 0


def collect(args: argparse.Namespace) -> int:
    """Child mode: collect the finished batch's timeline without a recorder."""
    client = kube.connect(kubeconfig=args.kubeconfig)
    found = timeline.collect(
        client, batch=args.batch, variant="parallel", namespace=args.namespace, page=args.page
    )
    print(json.dumps({"pods": len(found.pods)}))
    return 0


def measure(
    cluster: local.LocalCluster, client: kube.Kube, *, n: int, p: int, d: float, work: Path
) -> tuple[Run, timeline.Timeline]:
    namespace = f"bench-scale-{n}"
    client.core.create_namespace({"metadata": {"name": namespace}})
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    mlgen = str(Path(sys.executable).parent / "mlgen")
    me = [sys.executable, str(Path(__file__).resolve())]
    path = batch_file(work, n=n, p=p, d=d, namespace=namespace)
    out = work / f"m{n}"
    steps = [child([mlgen, "render", str(path), "-o", str(out)], env, "render")[0]]
    directory = out / f"scale-{n}" / "parallel"
    job = yaml.safe_load((directory / "job.yaml").read_text())["metadata"]["name"]
    saved, ready = work / f"timeline-{n}.json", work / f"ready-{n}"
    common = ["--kubeconfig", str(cluster.kubeconfig), "--namespace", namespace]
    common += ["--batch", f"scale-{n}"]
    timeout = 20 * n + 600
    recorder = subprocess.Popen(
        [
            *me,
            "record",
            *common,
            "--job",
            job,
            "--out",
            str(saved),
            "--ready",
            str(ready),
            "--timeout",
            str(timeout),
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    while not ready.exists():
        if recorder.poll() is not None:
            raise SystemExit("the recorder stopped before the run began")
        time.sleep(0.1)
    pids = cluster.pids()
    before = cpu_seconds(pids)
    started = time.monotonic()
    applied, _ = child([mlgen, "apply", str(directory), "--timeout", f"{timeout}s"], env, "apply")
    steps.append(applied)
    assert recorder.stdout is not None
    said = recorder.stdout.read()
    _, status, usage = os.wait4(recorder.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("the recorder failed")
    steps.append(
        Measured(
            "record",
            time.monotonic() - started,
            usage.ru_maxrss / 1024,
            usage.ru_utime + usage.ru_stime,
        )
    )
    after = cpu_seconds(pids)
    cpu = {name: round(after[name] - before.get(name, 0.0), 1) for name in sorted(after)}
    cpu["mlgen apply"] = round(applied.cpu, 1)
    cpu["recorder"] = round((usage.ru_utime + usage.ru_stime), 1)
    for page in (timeline.PAGE, 0):
        steps.append(
            child(
                [*me, "collect", *common, "--page", str(page)],
                env,
                "collect" if page else "collect-0",
            )[0]
        )
    found = timeline.Timeline.load(saved)
    starts = sorted(pod.start for pod in found.pods if pod.start is not None)
    rate = (len(starts) - 1) / (starts[-1] - starts[0]) if len(starts) > 1 else 0.0
    client.core.delete_namespace(namespace, propagation_policy="Background")
    run = Run(
        n=n,
        p=p,
        d=d,
        steps=steps,
        pods=len(found.pods),
        pods_per_second=rate,
        peak_running=found.max_concurrency(),
        makespan=found.makespan,
        ideal=-(-n // p) * d,
        events=json.loads(said)["events"],
        timeline_mib=saved.stat().st_size / 2**20,
        cpu=cpu,
    )
    for step in steps:
        print(f"  n={n:<6} {step.what:10} {step.seconds:8.1f}s {step.peak_mib:8.1f} MiB")
    print(f"  n={n:<6} {rate:.1f} pods/s, peak {run.peak_running} running (p = {p})")
    return run, found


def report(runs: list[Run], path: Path) -> None:
    lines = [
        "# Scale: a 10,000-index parallel Indexed Job, measured",
        "",
        "Generated by `python bench/scale_bench.py` on the local control plane (real API "
        "server, scheduler and Job controller; KWOK runs each pod for d). One run on one "
        "noisy 2-core machine. Each step is its own process: peak is that process's "
        "maximum resident set (ru_maxrss). Pods per second: pod starts over the time "
        "from the first start to the last, from the recorder's watch.",
        "",
        "| n | p | d (s) | pods | pods/s | peak running | makespan (s) | ⌈n/p⌉·d (s) "
        "| watch events | timeline JSON (MiB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r.n:,} | {r.p:,} | {r.d:g} | {r.pods:,} | {r.pods_per_second:.1f} | "
            f"{r.peak_running:,} | {r.makespan:.1f} | {r.ideal:g} | {r.events:,} | "
            f"{r.timeline_mib:.1f} |"
        )
    lines += [
        "",
        "| n | step | time (s) | CPU (s) | peak memory (MiB) |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in runs:
        for s in r.steps:
            lines.append(
                f"| {r.n:,} | {s.what} | {s.seconds:.1f} | {s.cpu:.1f} | {s.peak_mib:.0f} |"
            )
    lines += [
        "",
        "CPU seconds per process while the batch ran (the machine has 2 cores: "
        "twice the run's wall time is all there is):",
        "",
        "| n | wall (s) | " + " | ".join(runs[-1].cpu) + " |",
        "|---:|---:|" + "---:|" * len(runs[-1].cpu),
    ]
    for r in runs:
        wall = next(s.seconds for s in r.steps if s.what == "record")
        lines.append(
            f"| {r.n:,} | {wall:.0f} | "
            + " | ".join(f"{r.cpu.get(k, 0.0):.1f}" for k in runs[-1].cpu)
            + " |"
        )
    reading = path.with_name("scale-reading.md")  # the human reading, kept across runs
    if reading.exists():
        lines += ["", reading.read_text(encoding="utf-8").rstrip("\n")]
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode")
    for mode in ("record", "collect"):
        child_parser = sub.add_parser(mode, help=f"(internal) the {mode} child")
        child_parser.add_argument("--kubeconfig", type=Path, required=True)
        child_parser.add_argument("--namespace", required=True)
        child_parser.add_argument("--batch", required=True)
        if mode == "record":
            child_parser.add_argument("--job", required=True)
            child_parser.add_argument("--out", required=True)
            child_parser.add_argument("--ready", required=True)
            child_parser.add_argument("--timeout", type=float, required=True)
        else:
            child_parser.add_argument("--page", type=int, required=True)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--p", type=int, default=1_000)
    parser.add_argument("--d", type=float, default=1.0)
    parser.add_argument("--small", type=int, default=100, help="first a run at this n (0: none)")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument(
        "--report-only", action="store_true", help="redraw the table from the committed JSON"
    )
    args = parser.parse_args()
    if args.report_only:
        committed = json.loads((args.out / "scale-results.json").read_text())
        report(
            [Run(**{**r, "steps": [Measured(**m) for m in r["steps"]]}) for r in committed["runs"]],
            args.out / "scale-results.md",
        )
        return 0
    if args.mode == "record":
        return record(args)
    if args.mode == "collect":
        return collect(args)
    runs: list[Run] = []
    with (
        bench_cluster.running() as (cluster, client),
        tempfile.TemporaryDirectory(prefix="mlgen-scale-") as tmp,
    ):
        for n in [s for s in (args.small, args.n) if s]:
            run, found = measure(cluster, client, n=n, p=min(args.p, n), d=args.d, work=Path(tmp))
            runs.append(run)
        gantt.draw(found, args.out / "scale-gantt.svg")
    (args.out / "scale-results.json").write_text(
        json.dumps(
            {
                "runs": [asdict(r) for r in runs],
                "binaries": build.bin_dir().name,
                "max_rss_self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            },
            indent=2,
        )
        + "\n"
    )
    report(runs, args.out / "scale-results.md")
    print((args.out / "scale-results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
