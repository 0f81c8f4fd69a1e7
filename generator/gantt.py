"""A Gantt chart of a timeline: one row per job, one bar per pod attempt, coloured by how
the attempt ended. Rows name the batch's jobs (in an Indexed Job, by completion index:
`lr-1e-3 (index 2)`), never bare indexes.

The chart is SVG written as text, so the core install needs no plotting library; a PNG
(`.png` path) is drawn with matplotlib, from the `mlgen[png]` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from mlgen.errors import UsageError
from mlgen.timeline import PodRecord, Timeline

COLOURS = {"Succeeded": "#2e7d32", "Failed": "#c62828", "Running": "#9e9e9e", "Pending": "#e0e0e0"}
_WIDTH, _LEFT, _ROW, _TOP = 960, 220, 24, 48


def save(timeline: Timeline, path: Path) -> Path:
    """Write the timeline JSON at `path` and its SVG chart beside it; return the chart."""
    timeline.save(path)
    return draw(timeline, path.with_suffix(".svg"))


def row_of(pod: PodRecord, steps: dict[str, str]) -> str:
    """The row a pod attempt is drawn in: its job's name (and index, in an Indexed Job)."""
    if pod.index is None:
        return steps.get(pod.job, pod.job)
    return f"{pod.step} (index {pod.index})" if pod.step else f"index {pod.index}"


@dataclass(frozen=True)
class Layout:
    rows: list[str]
    horizon: float
    title: str


def layout(timeline: Timeline) -> Layout:
    steps = {j.name: j.step for j in timeline.jobs}
    ordered = sorted(
        timeline.pods,
        key=lambda p: (
            p.index is None,
            p.index if p.index is not None else 0,
            p.start if p.start is not None else float("inf"),
        ),
    )
    rows: list[str] = []
    for pod in ordered if all(p.index is not None for p in timeline.pods) else timeline.pods:
        row = row_of(pod, steps)
        if row not in rows:
            rows.append(row)
    horizon = max([p.end or p.start or 0 for p in timeline.pods] + [timeline.makespan, 1.0])
    title = (
        f"{timeline.batch} / {timeline.variant}: makespan {timeline.makespan:.0f}s, "
        f"peak {timeline.max_concurrency()} pods"
    )
    return Layout(rows=rows, horizon=horizon, title=title)


def draw(timeline: Timeline, path: Path) -> Path:
    """Write the chart at `path`: SVG, or PNG when the path ends in .png."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".png":
        return _png(timeline, path)
    path.write_text(svg(timeline), encoding="utf-8")
    return path


def svg(timeline: Timeline) -> str:
    found = layout(timeline)
    steps = {j.name: j.step for j in timeline.jobs}
    plot = _WIDTH - _LEFT - 20
    scale = plot / found.horizon
    height = _TOP + _ROW * max(len(found.rows), 1) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{_WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{_WIDTH / 2}" y="24" text-anchor="middle" font-size="14">'
        f"{escape(found.title)}</text>",
    ]
    for number, row in enumerate(found.rows):
        y = _TOP + number * _ROW
        parts.append(
            f'<text x="{_LEFT - 8}" y="{y + _ROW / 2 + 4}" text-anchor="end">{escape(row)}</text>'
        )
    for pod in timeline.pods:
        if pod.start is None:
            continue
        y = _TOP + found.rows.index(row_of(pod, steps)) * _ROW + 4
        end = pod.end if pod.end is not None else found.horizon
        x, width = _LEFT + pod.start * scale, max((end - pod.start) * scale, 1.0)
        tip = f"{row_of(pod, steps)} attempt {pod.attempt}: {pod.phase}" + (
            f", exit code {pod.exit_code}" if pod.exit_code else ""
        )
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{_ROW - 8}" '
            f'fill="{COLOURS.get(pod.phase, "#9e9e9e")}" stroke="black" '
            f'stroke-width="0.5"><title>{escape(tip)}</title></rect>'
        )
        if pod.attempt > 1:
            parts.append(
                f'<text x="{x + 3:.1f}" y="{y + _ROW / 2}" fill="white" '
                f'font-size="10">#{pod.attempt}</text>'
            )
    axis = _TOP + _ROW * max(len(found.rows), 1) + 4
    parts.append(f'<line x1="{_LEFT}" y1="{axis}" x2="{_LEFT + plot}" y2="{axis}" stroke="black"/>')
    for tick in range(6):
        seconds = found.horizon * tick / 5
        x = _LEFT + seconds * scale
        parts.append(
            f'<text x="{x:.1f}" y="{axis + 16}" text-anchor="middle">{seconds:.0f}s</text>'
        )
    parts.append(
        f'<text x="{_LEFT + plot / 2}" y="{axis + 32}" text-anchor="middle">'
        "seconds since the first start</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _png(timeline: Timeline, path: Path) -> Path:
    try:
        import matplotlib
    except ImportError as e:
        raise UsageError(
            f"{path}: a PNG chart needs matplotlib: pip install 'mlgen[png]', or write an .svg"
        ) from e
    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    found = layout(timeline)
    steps = {j.name: j.step for j in timeline.jobs}
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.35 * max(len(found.rows), 1)))
    for pod in timeline.pods:
        if pod.start is None:
            continue
        row = found.rows.index(row_of(pod, steps))
        end = pod.end if pod.end is not None else found.horizon
        ax.barh(
            row,
            end - pod.start,
            left=pod.start,
            height=0.6,
            color=COLOURS.get(pod.phase, "#9e9e9e"),
            edgecolor="black",
            linewidth=0.5,
        )
        if pod.attempt > 1:
            ax.text(
                pod.start + 0.05, row, f"#{pod.attempt}", va="center", fontsize=7, color="white"
            )
    ax.set_yticks(range(len(found.rows)), found.rows)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first start")
    ax.set_title(found.title)
    ax.legend(
        handles=[
            Patch(color=c, label=k)
            for k, c in COLOURS.items()
            if any(p.phase == k for p in timeline.pods)
        ],
        loc="lower right",
        fontsize=8,
    )
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
