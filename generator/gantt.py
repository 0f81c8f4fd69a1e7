"""A PNG Gantt chart of a timeline: one row per job (waves) or per index, one bar per
pod attempt, coloured by how the attempt ended."""

from __future__ import annotations

from pathlib import Path

from mlgen.timeline import Timeline

COLOURS = {"Succeeded": "#2e7d32", "Failed": "#c62828", "Running": "#9e9e9e",
           "Pending": "#e0e0e0"}


def save(timeline: Timeline, path: Path) -> Path:
    """Write the timeline JSON at `path` and its chart beside it; return the PNG's path."""
    timeline.save(path)
    return draw(timeline, path.with_suffix(".png"))


def draw(timeline: Timeline, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    steps = {j.name: j.step for j in timeline.jobs}
    rows: list[str] = []
    for pod in timeline.pods:
        row = steps.get(pod.job, pod.job) if pod.index is None else f"index {pod.index}"
        if row not in rows:
            rows.append(row)
    if all(p.index is not None for p in timeline.pods):
        rows.sort(key=lambda r: int(r.split()[-1]))
    horizon = max([p.end or p.start or 0 for p in timeline.pods] + [timeline.makespan, 1.0])
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.35 * max(len(rows), 1)))
    for pod in timeline.pods:
        if pod.start is None:
            continue
        row = steps.get(pod.job, pod.job) if pod.index is None else f"index {pod.index}"
        end = pod.end if pod.end is not None else horizon
        ax.barh(rows.index(row), end - pod.start, left=pod.start, height=0.6,
                color=COLOURS.get(pod.phase, "#9e9e9e"), edgecolor="black", linewidth=0.5)
        if pod.attempt > 1:
            ax.text(pod.start + 0.05, rows.index(row), f"#{pod.attempt}", va="center",
                    fontsize=7, color="white")
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first start")
    ax.set_title(f"{timeline.batch} / {timeline.variant}: makespan {timeline.makespan:.0f}s, "
                 f"peak {timeline.max_concurrency()} pods")
    ax.legend(handles=[Patch(color=c, label=k) for k, c in COLOURS.items()
                       if any(p.phase == k for p in timeline.pods)],
              loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
