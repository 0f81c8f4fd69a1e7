"""The seed's table, measured: the naive kubectl loop against every mlgen strategy.

On one local control plane (started here, torn down after), for the same batch of n
jobs of d seconds each, wall time from the first command to the last Job's completion:

  loop      the seed's loop with the built kubectl: `kubectl apply -f <step>/job.yaml`,
            then `kubectl wait --for=condition=complete job/<name>`, job after job
  waves     `mlgen apply manifests/<batch>/sequential` (waves strategy)
  indexed   `mlgen apply` of the sequential Indexed Job (parallelism 1)
  par-10    `mlgen apply` of the parallel variant at p = 10
  par-n     ... at p = n

Per-step overhead is (T - Σd) / n; its spread is the min-max over the repeats. Sizes
too long for one sitting are skipped and said so (--max-minutes). Results:
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
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from mlgen import kube, render, source
from mlgen.cluster import build, local, nodes

HERE = Path(__file__).resolve().parent
STRATEGIES = ("loop", "waves", "indexed", "par-10", "par-n")


@dataclass
class Row:
    strategy: str
    n: int
    d: float
    parallelism: int
    seconds: list[float]

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


def batch_file(
    work: Path, *, name: str, n: int, d: float, strategy: str, p: int, namespace: str
) -> Path:
    doc = {
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
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


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


def measure(
    cluster: local.LocalCluster,
    client: kube.Kube,
    *,
    strategy: str,
    n: int,
    d: float,
    repeat: int,
    work: Path,
) -> Row:
    p = 1 if strategy in ("loop", "waves", "indexed") else (10 if strategy == "par-10" else n)
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    mlgen = str(Path(sys.executable).parent / "mlgen")
    seconds: list[float] = []
    for attempt in range(repeat):
        namespace = f"bench-{strategy}-{n}-{attempt}".replace(".", "")
        client.core.create_namespace({"metadata": {"name": namespace}})
        name = f"b{n}-{strategy.replace('-', '')}-{attempt}"
        path = batch_file(
            work,
            name=name,
            n=n,
            d=d,
            p=max(p, 1),
            strategy="indexed" if strategy == "indexed" else "waves",
            namespace=namespace,
        )
        out = work / "m"
        rendered(path, out)
        timeout = 3 * n * d + 600
        if strategy == "loop":
            steps = sorted((out / name / "sequential").glob("*/"))
            seconds.append(run_loop(steps, kube.kubectl_binary(), env, namespace, timeout))
        else:
            variant = "parallel" if strategy.startswith("par") else "sequential"
            seconds.append(
                timed(
                    [mlgen, "apply", str(out / name / variant), "--timeout", f"{int(timeout)}s"],
                    env,
                )
            )
        client.core.delete_namespace(namespace, propagation_policy="Background")
        print(f"  {strategy:8} n={n:<5} d={d:g}s p={p:<5} {seconds[-1]:8.2f}s", flush=True)
    return Row(strategy=strategy, n=n, d=d, parallelism=p, seconds=seconds)


def predicted_minutes(strategy: str, n: int, d: float) -> float:
    per = {"loop": 1.2, "waves": 0.2, "indexed": 1.2}.get(strategy)
    if per is None:
        p = 10 if strategy == "par-10" else n
        return math.ceil(n / p) * (d + 1.2) / 60
    return n * (d + per) / 60


def report(rows: list[Row], skipped: list[str], path_md: Path, path_png: Path) -> None:
    loop = {(r.n, r.d): r for r in rows if r.strategy == "loop"}
    lines = [
        "# The naive loop against mlgen, measured",
        "",
        "Generated by `python bench/loop_bench.py` on the local control plane (real "
        "API server, scheduler and Job controller; KWOK runs each pod for exactly d). "
        "One run on one noisy 2-core machine: compare ratios within the table, not "
        "absolute seconds. T is wall time from the first command to the last Job's "
        "completion (median of the repeats); per-step overhead is (T - ideal)/steps "
        "(min-max over the repeats); ideal is n·d sequentially and ⌈n/p⌉·d in "
        "parallel; efficiency = ideal / T.",
        "",
        "| strategy | n | d | p | T (s) | ideal (s) | per-step overhead (s) | "
        "T / loop | efficiency |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r.d, r.n, STRATEGIES.index(r.strategy))):
        base = loop.get((r.n, r.d))
        ratio = f"{r.median / base.median:.2f}" if base else "—"
        spread = (
            f"{statistics.median(r.per_step):.3f} ({min(r.per_step):.3f}-{max(r.per_step):.3f})"
        )
        lines.append(
            f"| {r.strategy} | {r.n:,} | {r.d:g} | {r.parallelism:,} | "
            f"{r.median:.1f} | {r.ideal:.0f} | {spread} | {ratio} | "
            f"{r.ideal / r.median:.2f} |"
        )
    if skipped:
        lines += [
            "",
            "Not run (longer than --max-minutes at the measured per-step cost):",
            *[f"- {s}" for s in skipped],
        ]
    path_md.write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot (pip install 'mlgen[png]')")
        return
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for d in sorted({r.d for r in rows}):
        for strategy in STRATEGIES:
            points = sorted((r.n, r.median) for r in rows if r.strategy == strategy and r.d == d)
            if points:
                axes.plot(*zip(*points, strict=True), marker="o", label=f"{strategy}, d={d:g}s")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("jobs n")
    axes.set_ylabel("makespan (s)")
    axes.set_title("Makespan against n: linear (sequential) and n/p (parallel)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path_png, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--d", type=int, default=1, help="short job duration (whole s)")
    parser.add_argument("--long-d", type=int, default=10)
    parser.add_argument("--long-sizes", default="10")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=6.0,
        help="skip a (strategy, n) predicted to take longer than this, except the --always ones",
    )
    parser.add_argument(
        "--always",
        default="indexed,par-10,par-n",
        help="strategies measured at every size, however long",
    )
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    plan = [(n, args.d) for n in map(int, args.sizes.split(","))]
    plan += [(n, args.long_d) for n in map(int, args.long_sizes.split(",")) if n]
    rows: list[Row] = []
    skipped: list[str] = []
    cluster = local.up(progress=print)
    try:
        client = kube.connect(kubeconfig=cluster.kubeconfig)
        # Room for 1,000 pods at once: the default pools hold 440.
        nodes.create(
            client,
            [
                *nodes.load(None),
                nodes.Pool(
                    pool="bench",
                    count=4,
                    capacity={"cpu": "64", "memory": "256Gi", "pods": "300"},
                    labels={"mlgen.io/pool": "bench"},
                ),
            ],
        )
        with tempfile.TemporaryDirectory(prefix="mlgen-bench-") as tmp:
            for n, d in plan:
                for strategy in STRATEGIES:
                    minutes = predicted_minutes(strategy, n, d)
                    if minutes > args.max_minutes and strategy not in args.always.split(","):
                        skipped.append(
                            f"{strategy} at n = {n:,}, d = {d:g}s (about {minutes:.0f} min)"
                        )
                        continue
                    repeat = args.repeat if n <= 10 else 1
                    rows.append(
                        measure(
                            cluster,
                            client,
                            strategy=strategy,
                            n=n,
                            d=d,
                            repeat=repeat,
                            work=Path(tmp),
                        )
                    )
    finally:
        local.down(cluster, progress=print)
    (args.out / "loop-results.json").write_text(
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
