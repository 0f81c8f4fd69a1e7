"""The seed's table, measured: the naive kubectl loop against every mlgen strategy.

On one local control plane (started here, torn down after), for the same batch of n
jobs of d seconds each, wall time from the first command to the last Job's completion:

  loop      the seed's loop with the built kubectl: `kubectl apply -f <step>/job.yaml`,
            then `kubectl wait --for=condition=complete job/<name>`, job after job
  waves     `mlgen apply manifests/<batch>/sequential` (waves strategy)
  indexed   `mlgen apply` of the sequential Indexed Job (parallelism 1)
  par-10    `mlgen apply` of the parallel variant at p = 10
  par-100   ... at p = 100 (n > 100 only)
  par-n     ... at p = n
  flux      the real Flux syncing the committed chain (push to the last Complete)
  argocd    the real Argo CD syncing the committed sync waves (likewise)

Per-step overhead is (T - Σd) / n; its spread is the min-max over the repeats. Beside
the wall time T, a recorder (two watches, one clock) gives the cluster's makespan: the
first Job created to the last Job Complete, which leaves out the client's start. Each
mlgen row is compared with `mlgen estimate`'s prediction of that makespan. Sizes too
long for one sitting are skipped and said so (--max-minutes). With --together, the
strategies of a size run at the same time in their own namespaces (for long d, where
each chain starts a pod every d seconds and the machine is otherwise idle). --merge
keeps the committed rows that this run does not measure. Results:
bench/loop-results.{md,json} and bench/makespan.png (log-log makespan against n).

    .venv/bin/python bench/loop_bench.py                   # the committed run
    .venv/bin/python bench/loop_bench.py --sizes 10 --d 1  # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlgen import estimate, kube, render, source, timeline
from mlgen.cluster import argocd, build, fluxcd, gitserver, local
from mlgen.recorder import Recorder

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "conformance"))  # the GitOps harness of the suite
import bench_cluster  # noqa: E402
from gitops_fixtures import Repo  # noqa: E402

STRATEGIES = ("loop", "waves", "indexed", "flux", "argocd", "par-10", "par-100", "par-n")
GITOPS = ("flux", "argocd")
PARALLELISM = {"par-10": 10, "par-100": 100}


@dataclass
class Row:
    strategy: str
    n: int
    d: float
    parallelism: int
    seconds: list[float]
    makespans: list[float] = field(default_factory=list)  # cluster: first Job to last end
    peaks: list[int] = field(default_factory=list)  # most pods running at once
    together: bool = False  # measured at the same time as the size's other strategies

    @property
    def makespan(self) -> float | None:
        return statistics.median(self.makespans) if self.makespans else None

    @property
    def predicted(self) -> float | None:
        """`mlgen estimate`'s makespan for this row's batch (none for the loop and the
        GitOps tools: not mlgen's to predict), from the estimate as it is now."""
        if self.strategy == "loop" or self.strategy in GITOPS:
            return None
        doc = batch_doc(
            name="estimate",
            n=self.n,
            d=self.d,
            p=self.parallelism,
            strategy="indexed" if self.strategy == "indexed" else "waves",
            namespace="estimate",
        )
        batches, problems = source.load_text(yaml.safe_dump(doc), source="bench")
        if problems:
            raise SystemExit(f"the bench's batch is invalid: {problems}")
        found = estimate.of(batches[0], parallelism=self.parallelism)
        return found.seconds("parallel" if self.strategy.startswith("par") else "sequential")

    @property
    def error(self) -> float | None:
        """Prediction error against the cluster's makespan, in %."""
        measured, predicted = self.makespan, self.predicted
        if predicted is None or not measured:
            return None
        return 100 * (predicted - measured) / measured

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def ideal(self) -> float:
        return self.d * (self.n if self.parallelism == 1 else math.ceil(self.n / self.parallelism))

    @property
    def per_step(self) -> list[float]:
        steps = self.n if self.parallelism == 1 else math.ceil(self.n / self.parallelism)
        return [(s - self.ideal) / steps for s in self.seconds]


def batch_doc(
    *, name: str, n: int, d: float, strategy: str, p: int, namespace: str
) -> dict[str, Any]:
    return {
        "apiVersion": "mlgen.io/v1alpha1",
        "kind": "Batch",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "simulated": True,
            "parallelism": p,
            "sequential": {"strategy": strategy},
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


def rendered(path: Path, out: Path) -> None:
    batches = source.load_files([path])
    for rel, text in render.render_all(batches).files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def run_loop(
    step_dirs: list[Path], kubectl: str, env: dict[str, str], namespace: str, timeout: float
) -> float:
    started = time.monotonic()
    for directory in step_dirs:
        name = yaml.safe_load((directory / "job.yaml").read_text())["metadata"]["name"]
        subprocess.run(
            [kubectl, "apply", "-f", str(directory / "job.yaml")],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [
                kubectl,
                "wait",
                "-n",
                namespace,
                "--for=condition=complete",
                f"--timeout={int(timeout)}s",
                f"job/{name}",
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return time.monotonic() - started


def parallelism(strategy: str, n: int) -> int:
    if strategy.startswith("par"):
        return PARALLELISM.get(strategy, n)
    return 1


@dataclass
class Bench:
    cluster: local.LocalCluster
    client: kube.Kube
    work: Path
    git: gitserver.GitServer | None = None
    flux: fluxcd.Flux | None = None
    argo: argocd.ArgoCD | None = None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)}

    def measure(self, strategy: str, *, n: int, d: float, repeat: int, together: bool) -> Row:
        p = parallelism(strategy, n)
        row = Row(strategy=strategy, n=n, d=d, parallelism=p, seconds=[], together=together)
        for attempt in range(repeat):
            seconds, makespan, peak = self.once(strategy, n=n, d=d, p=p, attempt=attempt)
            row.seconds.append(seconds)
            row.makespans.append(makespan)
            row.peaks.append(peak)
            print(
                f"  {strategy:8} n={n:<5} d={d:g}s p={p:<5} {seconds:8.2f}s "
                f"(cluster {makespan:.2f}s, peak {peak})",
                flush=True,
            )
        return row

    def once(
        self, strategy: str, *, n: int, d: float, p: int, attempt: int
    ) -> tuple[float, float, int]:
        """Wall time, the cluster's makespan, the most pods at once."""
        name = f"b{n}-{strategy.replace('-', '')}-d{d:g}-{attempt}"
        namespace = f"bench-{name}"
        self.client.core.create_namespace({"metadata": {"name": namespace}})
        doc = batch_doc(
            name=name,
            n=n,
            d=d,
            p=p,
            strategy="indexed" if strategy == "indexed" else "waves",
            namespace=namespace,
        )
        variant = "parallel" if strategy.startswith("par") else "sequential"
        watched = Recorder(self.client, namespace, timeline.selector(name, variant))
        timeout = 3 * n * d + 600 + (30 * n if strategy in GITOPS else 0)
        with watched:
            if strategy in GITOPS:
                seconds = self.synced(strategy, doc, n=n, timeout=timeout)
            else:
                out = self.work / name
                path = self.work / f"{name}.yaml"
                path.write_text(yaml.safe_dump(doc, sort_keys=False))
                rendered(path, out)
                if strategy == "loop":
                    steps = sorted((out / name / "sequential").glob("*/"))
                    kubectl = build.kubectl()
                    seconds = run_loop(steps, kubectl, self.env, namespace, timeout)
                else:
                    directory = out / name / variant
                    mlgen = str(Path(sys.executable).parent / "mlgen")
                    seconds = timed(
                        [mlgen, "apply", str(directory), "--timeout", f"{int(timeout)}s"], self.env
                    )
            watched.settle(1.0)
        created = [s.created for s in watched.jobs.values()]
        ended = [s.ended for s in watched.jobs.values() if s.ended is not None]
        makespan = max(ended) - min(created) if created and ended else float("nan")
        peak = _peak(watched)
        self.client.core.delete_namespace(namespace, propagation_policy="Background")
        return seconds, makespan, peak

    def synced(self, tool: str, doc: dict[str, Any], *, n: int, timeout: float) -> float:
        """Commit the rendered batch and let the tool run it: push to the last Complete."""
        assert self.git is not None
        name, namespace = doc["metadata"]["name"], doc["metadata"]["namespace"]
        repo = Repo.create(self.git, name, self.work)
        if tool == "flux":
            doc["spec"]["flux"] = {
                "source": repo.name,
                "path": "./manifests",
                "namespace": fluxcd.NAMESPACE,
            }
        repo.render(doc)
        jobs = [
            yaml.safe_load((step / "job.yaml").read_text())["metadata"]["name"]
            for step in sorted((repo.worktree / "manifests" / name / "sequential").glob("*/"))
        ]
        started = time.monotonic()
        repo.push(f"render {name}")
        driver = self.flux if tool == "flux" else self.argo
        assert driver is not None
        driver.watch(repo, batch=name, variant="sequential", namespace=namespace)
        done = self.client.wait_ended(
            namespace, jobs, until=("Complete", "Failed"), timeout=timeout
        )
        seconds = time.monotonic() - started
        failed = [j for j in jobs if j not in done or _failed(done[j])]
        if failed:
            raise SystemExit(f"{tool}: {', '.join(failed)} did not complete")
        return seconds


def _failed(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Failed" and c.get("status") == "True" for c in conditions)


def _peak(watched: Recorder) -> int:
    events = sorted(
        (moment, delta)
        for seen in watched.pods.values()
        if seen.running is not None
        for moment, delta in ((seen.running, 1), (seen.ended, -1))
        if moment is not None
    )
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


@contextmanager
def gitops(bench: Bench, tool: str) -> Iterator[None]:
    """The tool's controllers for the duration of its rows only."""
    build.ensure_group("gitops", progress=print)
    scratch = bench.work / f"{tool}-controllers"
    scratch.mkdir(exist_ok=True)
    if tool == "flux":
        with fluxcd.start(
            bench.client, kubeconfig=bench.cluster.kubeconfig, workdir=scratch
        ) as flux:
            bench.flux = flux
            yield
    else:
        with argocd.start(
            bench.client, kubeconfig=bench.cluster.kubeconfig, workdir=scratch
        ) as argo:
            bench.argo = argo
            yield


def predicted_minutes(strategy: str, n: int, d: float) -> float:
    per = {"loop": 1.2, "waves": 0.2, "indexed": 1.2, "flux": 11.0, "argocd": 5.0}.get(strategy)
    if per is None:
        return math.ceil(n / parallelism(strategy, n)) * (d + 1.2) / 60
    return n * (d + per) / 60


def report(rows: list[Row], skipped: list[str], path_md: Path, path_png: Path) -> None:
    loop = {(r.n, r.d): r for r in rows if r.strategy == "loop"}
    lines = [
        "# The naive loop against mlgen, measured",
        "",
        "Generated by `python bench/loop_bench.py` on the local control plane (real "
        "API server, scheduler and Job controller; KWOK runs each pod for exactly d). "
        "One run on one noisy 2-core machine: compare ratios within the table, not "
        "absolute seconds. T is wall time from the first command (or the push) to the "
        "last Job's completion (median of the repeats); per-step overhead is "
        "(T - ideal)/steps (min-max over the repeats); ideal is n·d sequentially and "
        "⌈n/p⌉·d in parallel; efficiency = ideal / T. The cluster's makespan is what "
        "a recorder's watches saw from the first Job created to the last Job Complete "
        "(no client start); cluster efficiency = ideal / that. Estimate is `mlgen "
        "estimate`'s prediction of the cluster makespan with the default overheads, "
        "and its error against it. Peak is the most pods running at once. Rows marked * "
        "ran at the same time as the other marked rows of their size.",
        "",
        "| strategy | n | d | p | T (s) | ideal (s) | per-step overhead (s) | T / loop "
        "| efficiency | cluster makespan (s) | cluster efficiency | estimate (s) | error "
        "| peak |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r.d, r.n, STRATEGIES.index(r.strategy))):
        base = loop.get((r.n, r.d))
        ratio = f"{r.median / base.median:.2f}" if base else "—"
        spread = (
            f"{statistics.median(r.per_step):.3f} ({min(r.per_step):.3f}-{max(r.per_step):.3f})"
        )
        makespan = r.makespan
        cluster = f"{makespan:.1f}" if makespan else "—"
        cluster_eff = f"{r.ideal / makespan:.2f}" if makespan else "—"
        predicted = f"{r.predicted:.1f}" if r.predicted is not None else "—"
        error = f"{r.error:+.1f} %" if r.error is not None else "—"
        peak = f"{max(r.peaks):,}" if r.peaks else "—"
        lines.append(
            f"| {r.strategy}{' *' if r.together else ''} | {r.n:,} | {r.d:g} | "
            f"{r.parallelism:,} | {r.median:.1f} | {r.ideal:.0f} | {spread} | {ratio} | "
            f"{r.ideal / r.median:.2f} | {cluster} | {cluster_eff} | {predicted} | {error} "
            f"| {peak} |"
        )
    if skipped:
        lines += [
            "",
            "Not run (longer than --max-minutes at the measured per-step cost):",
            *[f"- {s}" for s in skipped],
        ]
    reading = path_md.with_name("loop-reading.md")  # the human reading, kept across runs
    if reading.exists():
        lines += ["", reading.read_text(encoding="utf-8").rstrip("\n")]
    path_md.write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot (pip install 'mlgen-gitops[png]')")
        return
    figure, panels = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    colours = dict(zip(STRATEGIES, plt.get_cmap("tab10").colors, strict=False))
    for axes, d in zip(panels, sorted({r.d for r in rows}), strict=False):
        sizes = sorted({r.n for r in rows if r.d == d})
        span = [min(sizes), max(sizes)]
        axes.plot(span, [n * d for n in span], ":", color="grey", label="ideal n·d")
        axes.plot(span, [n * d / 10 for n in span], "--", color="grey", label="ideal n/10·d")
        for strategy in STRATEGIES:
            points = sorted(
                (r.n, r.makespan or r.median) for r in rows if r.strategy == strategy and r.d == d
            )
            if points:
                axes.plot(
                    *zip(*points, strict=True),
                    marker="o",
                    color=colours[strategy],
                    label=f"{strategy} (p = {_p_label(strategy)})",
                )
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("jobs n")
        axes.set_title(f"d = {d:g} s")
        axes.grid(True, which="both", alpha=0.3)
    panels[0].set_ylabel("cluster makespan (s)")
    legend: dict[str, Any] = {}
    for axes in panels:
        for handle, label in zip(*axes.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    panels[-1].legend(
        legend.values(), legend.keys(), fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0)
    )
    figure.suptitle("Makespan against n: linear (sequential) and n/p (parallel)")
    figure.tight_layout()
    figure.savefig(path_png, dpi=110)


def _p_label(strategy: str) -> str:
    if strategy == "par-n":
        return "n"
    return str(PARALLELISM.get(strategy, 1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--d", type=int, default=1, help="short job duration (whole s)")
    parser.add_argument("--long-d", type=int, default=10)
    parser.add_argument("--long-sizes", default="10,100")
    parser.add_argument("--gitops-sizes", default="10", help="n for the flux and argocd rows")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument(
        "--together",
        action="store_true",
        help="at the long d, run a size's mlgen and loop strategies at the same time",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the committed rows of (strategy, n, d) that this run does not measure",
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=6.0,
        help="skip a (strategy, n) predicted to take longer than this, except the --always ones",
    )
    parser.add_argument(
        "--always",
        default="indexed,par-10,par-100,par-n",
        help="strategies measured at every size, however long",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="redraw the table and plot from the committed JSON (e.g. after the estimate changed)",
    )
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    path = args.out / "loop-results.json"
    if args.report_only:
        committed = json.loads(path.read_text())
        report(
            [Row(**r) for r in committed["rows"]],
            committed["skipped"],
            args.out / "loop-results.md",
            args.out / "makespan.png",
        )
        return 0
    wanted = [s for s in STRATEGIES if s in args.strategies.split(",")]
    plan = [(n, args.d) for n in map(int, args.sizes.split(",")) if n]
    plan += [(n, args.long_d) for n in map(int, args.long_sizes.split(",")) if n]
    gitops_sizes = {int(n) for n in args.gitops_sizes.split(",") if n}
    rows: list[Row] = []
    skipped: list[str] = []

    def runs(strategy: str, n: int, d: float) -> bool:
        if strategy == "par-100" and n <= 100:
            return False
        if strategy in GITOPS and n not in gitops_sizes:
            return False
        minutes = predicted_minutes(strategy, n, d)
        if minutes > args.max_minutes and strategy not in args.always.split(","):
            skipped.append(f"{strategy} at n = {n:,}, d = {d:g}s (about {minutes:.0f} min)")
            return False
        return True

    server = None
    try:
        with (
            bench_cluster.running() as (cluster, client),
            tempfile.TemporaryDirectory(prefix="mlgen-bench-") as tmp,
        ):
            bench = Bench(cluster=cluster, client=client, work=Path(tmp))
            for n, d in plan:
                chosen = [s for s in wanted if s not in GITOPS and runs(s, n, d)]
                repeat = args.repeat if n <= 10 else 1
                together = args.together and d == args.long_d
                if together:
                    with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
                        rows += pool.map(
                            lambda s, n=n, d=d, repeat=repeat: bench.measure(
                                s, n=n, d=d, repeat=repeat, together=True
                            ),
                            chosen,
                        )
                else:
                    rows += [
                        bench.measure(s, n=n, d=d, repeat=repeat, together=False) for s in chosen
                    ]
            for tool in (t for t in GITOPS if t in wanted):
                todo = [(n, d) for n, d in plan if runs(tool, n, d)]
                if not todo:
                    continue
                if bench.git is None:
                    server = bench.git = gitserver.start(Path(tmp) / "git")
                with gitops(bench, tool):
                    rows += [
                        bench.measure(tool, n=n, d=d, repeat=1, together=False) for n, d in todo
                    ]
    finally:
        if server is not None:
            server.stop()
    if args.merge and path.exists():
        measured = {(r.strategy, r.n, r.d) for r in rows}
        kept = [Row(**r) for r in json.loads(path.read_text())["rows"]]
        rows = [r for r in kept if (r.strategy, r.n, r.d) not in measured] + rows
        had = {f"{r.strategy} at n = {r.n:,}, d = {r.d:g}s" for r in rows}
        skipped = sorted(s for s in set(skipped) if s.split(" (")[0] not in had)
    path.write_text(
        json.dumps(
            {
                "rows": [asdict(r) for r in rows],
                "skipped": skipped,
                "binaries": str(build.bin_dir().name),
            },
            indent=2,
        )
        + "\n"
    )
    report(rows, skipped, args.out / "loop-results.md", args.out / "makespan.png")
    print((args.out / "loop-results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
