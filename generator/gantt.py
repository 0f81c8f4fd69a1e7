"""A Gantt chart of a timeline: one row per job, one bar per pod attempt, coloured by how
the attempt ended, after a hatched Pending stretch from the pod's creation to its start
(scheduling, image pulls: time the job waited, not ran). Rows name the batch's jobs (in
an Indexed Job, by completion index: `lr-1e-3 (index 2)`), never bare indexes. Past
`MAX_ROWS` jobs (a 10,000-index sweep), a row stands for a run of consecutive jobs and its
bars for the stretches in which their attempts overlapped, so the chart stays one screen
high. The legend sits below the plot, never over a bar.

The chart is SVG written as text, so the core install needs no plotting library; a PNG
(`.png` path) is drawn with matplotlib, from the `mlgen-gitops[png]` extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax import saxutils

from mlgen import terminal
from mlgen.errors import UsageError
from mlgen.timeline import PodRecord, Timeline

COLOURS = {"Succeeded": "#2e7d32", "Failed": "#c62828", "Running": "#9e9e9e", "Pending": "#e0e0e0"}
PENDING = "Pending"
_WIDTH, _LEFT, _ROW, _TOP = 960, 220, 24, 48
# Pending is drawn hatched as well as lighter: it must read apart from Running in grey print.
_PATTERN = (
    '<defs><pattern id="pending" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="6" height="6" fill="#e0e0e0"/>'
    '<line x1="0" y1="0" x2="0" y2="6" stroke="#9e9e9e" stroke-width="2"/></pattern></defs>'
)


def save(timeline: Timeline, path: Path) -> Path:
    """Write the timeline JSON at `path` and its SVG chart beside it; return the chart."""
    timeline.save(path)
    return draw(timeline, path.with_suffix(".svg"))


def row_of(pod: PodRecord, steps: dict[str, str]) -> str:
    """The row a pod attempt is drawn in: its job's name (and index, in an Indexed Job)."""
    if pod.index is None:
        return steps.get(pod.job, pod.job)
    return f"{pod.step} (index {pod.index})" if pod.step else f"index {pod.index}"


MAX_ROWS = 60  # beyond this many jobs, each row stands for a run of consecutive jobs


@dataclass(frozen=True)
class Bar:
    row: int
    start: float
    end: float
    phase: str
    tip: str
    attempt: int = 1  # > 1 is written on the bar (a retry)


@dataclass(frozen=True)
class Layout:
    rows: list[str]
    bars: list[Bar]
    horizon: float
    title: str


def layout(timeline: Timeline, *, max_rows: int = MAX_ROWS) -> Layout:
    """Rows and bars: a bar per pod attempt, or, with more than `max_rows` jobs, rows that
    each stand for a run of consecutive jobs, with one bar per stretch of time in which
    their attempts overlapped (per outcome) and the counts in its tip."""
    steps = {j.name: j.step for j in timeline.jobs}
    indexed = all(p.index is not None for p in timeline.pods)
    ordered = (
        sorted(
            timeline.pods,
            key=lambda p: (p.index or 0, p.start if p.start is not None else float("inf")),
        )
        if indexed
        else timeline.pods
    )
    names: dict[str, int] = {}
    first: list[PodRecord] = []  # a pod of each row, for aggregated labels
    for pod in ordered:
        if names.setdefault(row_of(pod, steps), len(names)) == len(first):
            first.append(pod)
    horizon = max(
        [p.end or p.start or p.created or 0 for p in timeline.pods] + [timeline.makespan, 1.0]
    )
    title = (
        f"{timeline.batch} / {timeline.variant}: makespan {timeline.makespan:.0f}s, "
        f"peak {timeline.max_concurrency()} pods"
    )
    drawn = [p for p in ordered if p.start is not None or p.created is not None]
    if len(names) <= max_rows:
        bars = [b for p in drawn for b in _bars(names[row_of(p, steps)], p, steps, horizon)]
        return Layout(rows=list(names), bars=bars, horizon=horizon, title=title)
    size = -(-len(names) // max_rows)  # jobs per row, rounded up
    rows = [
        _span(first[at], first[min(at + size, len(first)) - 1], steps)
        for at in range(0, len(first), size)
    ]
    groups: dict[int, list[PodRecord]] = {}
    for pod in drawn:
        groups.setdefault(names[row_of(pod, steps)] // size, []).append(pod)
    bars = [
        bar
        for number, pods in sorted(groups.items())
        for bar in _merged(number, rows[number], pods, horizon)
    ]
    title += f" ({len(names):,} jobs, {size} per row)"
    return Layout(rows=rows, bars=bars, horizon=horizon, title=title)


def segments(pod: PodRecord, horizon: float) -> list[tuple[str, float, float]]:
    """(phase, start, end) of a pod: Pending from its creation until it started (or ended,
    or the chart's end, when it never started), then its run, in the phase it ended in."""
    out: list[tuple[str, float, float]] = []
    if pod.created is not None:
        until = pod.start if pod.start is not None else pod.end
        # A watch may see a pod a moment before the first start it counts from.
        begin = max(pod.created, 0.0)
        if (until if until is not None else horizon) > begin:
            out.append((PENDING, begin, until if until is not None else horizon))
    if pod.start is not None:
        out.append((pod.phase, pod.start, pod.end if pod.end is not None else horizon))
    return out


def _bars(row: int, pod: PodRecord, steps: dict[str, str], horizon: float) -> list[Bar]:
    name = f"{row_of(pod, steps)} attempt {pod.attempt}"
    bars = []
    for phase, start, end in segments(pod, horizon):
        if phase == PENDING:  # the attempt's number goes on its run, not twice
            bars.append(Bar(row, start, end, phase, f"{name}: Pending {end - start:.1f}s"))
            continue
        tip = f"{name}: {phase}" + (f", exit code {pod.exit_code}" if pod.exit_code else "")
        bars.append(Bar(row, start, end, phase, tip, pod.attempt))
    return bars


def _span(first: PodRecord, last: PodRecord, steps: dict[str, str]) -> str:
    """`lr-0 … lr-166 (indexes 0-166)`: the first and last job a row stands for."""
    if first is last:
        return row_of(first, steps)
    if first.index is None or last.index is None:
        return f"{row_of(first, steps)} … {row_of(last, steps)}"
    names = f"{first.step} … {last.step} " if first.step and last.step else ""
    return f"{names}(indexes {first.index}-{last.index})"


def _merged(row: int, label: str, pods: list[PodRecord], horizon: float) -> list[Bar]:
    """One bar per phase per stretch of overlapping attempts; Pending drawn first (under
    the runs), failures last (on top)."""
    counts: dict[str, int] = {}
    for pod in pods:
        counts[pod.phase] = counts.get(pod.phase, 0) + 1
    summary = ", ".join(f"{count} {phase}" for phase, count in sorted(counts.items()))
    retries = sum(1 for p in pods if p.attempt > 1)
    tip = f"{label}: {len(pods)} attempts ({summary})" + (f", {retries} retries" if retries else "")
    pieces = [piece for p in pods for piece in segments(p, horizon)]
    phases = dict.fromkeys(phase for phase, _, _ in pieces)
    bars: list[Bar] = []
    for phase in sorted(phases, key=lambda k: (k != PENDING, k == "Failed")):
        spans = sorted((start, end) for kind, start, end in pieces if kind == phase)
        begin, finish = spans[0]
        for start, end in spans[1:]:
            if start > finish:
                bars.append(Bar(row, begin, finish, phase, tip))
                begin = start
            finish = max(finish, end)
        bars.append(Bar(row, begin, finish, phase, tip))
    return bars


def draw(timeline: Timeline, path: Path) -> Path:
    """Write the chart at `path`: SVG, or PNG when the path ends in .png."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".png":
        return _png(timeline, path)
    path.write_text(svg(timeline), encoding="utf-8")
    return path


def escape(text: str) -> str:
    """Text for SVG: XML 1.0 holds no control characters, so they are shown escaped."""
    return saxutils.escape(terminal.safe(text).replace("\t", "\\t").replace("\n", "\\n"))


def svg(timeline: Timeline) -> str:
    found = layout(timeline)
    plot = _WIDTH - _LEFT - 20
    scale = plot / found.horizon
    axis = _TOP + _ROW * max(len(found.rows), 1) + 4
    height = axis + 64  # ticks, the axis title, then the legend: all below the bars
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        _PATTERN,
        f'<rect width="{_WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{_WIDTH / 2}" y="24" text-anchor="middle" font-size="14">'
        f"{escape(found.title)}</text>",
    ]
    for number, row in enumerate(found.rows):
        y = _TOP + number * _ROW
        parts.append(
            f'<text x="{_LEFT - 8}" y="{y + _ROW / 2 + 4}" text-anchor="end">{escape(row)}</text>'
        )
    for bar in found.bars:
        y = _TOP + bar.row * _ROW + 4
        x, width = _LEFT + bar.start * scale, max((bar.end - bar.start) * scale, 1.0)
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{_ROW - 8}" '
            f'fill="{_fill(bar.phase)}" stroke="black" '
            f'stroke-width="0.5"><title>{escape(bar.tip)}</title></rect>'
        )
        if bar.attempt > 1:
            parts.append(
                f'<text x="{x + 3:.1f}" y="{y + _ROW / 2}" fill="white" '
                f'font-size="10">#{bar.attempt}</text>'
            )
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
    for number, phase in enumerate(legend(found)):
        x = _LEFT + number * 110
        parts.append(
            f'<rect x="{x}" y="{axis + 44}" width="12" height="12" fill="{_fill(phase)}" '
            f'stroke="black" stroke-width="0.5"/>'
            f'<text x="{x + 18}" y="{axis + 54}">{escape(phase)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def legend(found: Layout) -> list[str]:
    """The phases the chart draws, Pending first, in the order of `COLOURS`."""
    drawn = {bar.phase for bar in found.bars}
    return sorted(
        drawn, key=lambda k: (k != PENDING, list(COLOURS).index(k) if k in COLOURS else 9)
    )


def _fill(phase: str) -> str:
    return "url(#pending)" if phase == PENDING else COLOURS.get(phase, "#9e9e9e")


def _png(timeline: Timeline, path: Path) -> Path:
    try:
        import matplotlib
    except ImportError as e:
        raise UsageError(
            f"{path}: a PNG chart needs matplotlib: pip install 'mlgen-gitops[png]', or "
            "write an .svg"
        ) from e
    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    fig = figure(timeline)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def figure(timeline: Timeline) -> Any:
    """The chart as a matplotlib Figure (the caller closes it); needs matplotlib, which
    mypy here sees as untyped."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    found = layout(timeline)
    # Constrained layout keeps the legend, placed outside the axes, clear of every bar.
    fig = plt.figure(figsize=(10, 1.6 + 0.35 * max(len(found.rows), 1)), layout="constrained")
    ax = fig.add_subplot()
    for bar in found.bars:
        ax.barh(
            bar.row,
            bar.end - bar.start,
            left=bar.start,
            height=0.6,
            color=COLOURS.get(bar.phase, "#9e9e9e"),
            edgecolor="black",
            linewidth=0.5,
            hatch="////" if bar.phase == PENDING else None,
        )
        if bar.attempt > 1:
            ax.text(
                bar.start + 0.05, bar.row, f"#{bar.attempt}", va="center", fontsize=7, color="white"
            )
    ax.set_yticks(range(len(found.rows)), found.rows)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first start")
    ax.set_title(found.title)
    phases = legend(found)
    if phases:
        fig.legend(
            handles=[
                Patch(
                    facecolor=COLOURS.get(k, "#9e9e9e"),
                    edgecolor="black",
                    hatch="////" if k == PENDING else None,
                    label=k,
                )
                for k in phases
            ],
            loc="outside lower center",
            ncols=len(phases),
            fontsize=8,
        )
    ax.grid(axis="x", alpha=0.3)
    return fig
