"""Charts as server-rendered SVG: no JavaScript and no CDN, so they work offline and in print.

Colours come from CSS classes (``series-0``, ``bar``...) in dashboard.css; every label is
escaped. Each chart carries a title for screen readers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 14, 28


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # None: no data for that point (a gap in the line)


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _svg(title: str, width: int, height: int, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    y_min: float | None = None,
    y_max: float | None = None,
    height: int = 220,
    format_value: Callable[[float], str] = _number,
) -> Markup:
    """Lines over time (``labels`` along the bottom, one value per label in each series)."""
    values = [v for s in series for v in s.values if v is not None]
    low = y_min if y_min is not None else min(values, default=0.0)
    high = y_max if y_max is not None else max(values, default=1.0)
    if high <= low:
        high = low + 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    count = max(len(labels), 1)

    def x(i: int) -> float:
        return LEFT + (plot_w * (i + 0.5) / count)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - (v - low) / (high - low))

    body = []
    for tick in range(5):
        value = low + (high - low) * tick / 4
        body.append(
            f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}"/><text x="{LEFT - 6}" y="{y(value) + 4:.1f}" '
            f'text-anchor="end">{escape(format_value(value))}</text>'
        )
    step = max(1, -(-count // 8))  # at most ~8 labels under the axis
    for i, label in enumerate(labels):
        if i % step == 0 or i == count - 1:
            body.append(
                f'<text x="{x(i):.1f}" y="{height - 8}" text-anchor="middle">{escape(label)}</text>'
            )
    for n, s in enumerate(series):
        runs: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                runs.append([])
                continue
            runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
            body.append(
                f'<circle class="dot-{n % 3}" cx="{x(i):.1f}" cy="{y(v):.1f}" r="3">'
                f"<title>{escape(s.name)} {escape(labels[i] if i < len(labels) else '')}: "
                f"{escape(format_value(v))}</title></circle>"
            )
        body.extend(
            f'<polyline class="series-{n % 3}" points="{" ".join(run)}"/>'
            for run in runs
            if len(run) > 1
        )
    if not values:
        body.append(
            f'<text x="{WIDTH / 2}" y="{height / 2}" text-anchor="middle">No data yet</text>'
        )
    return _svg(title, WIDTH, height, body)


def bar_chart(
    title: str,
    bars: Sequence[tuple[str, float]],
    *,
    format_value: Callable[[float], str] = _number,
    notes: Sequence[str] | None = None,
) -> Markup:
    """Horizontal bars, one per (label, value), longest = largest value; ``notes`` are
    shown after each value (e.g. "42%")."""
    row, label_w = 30, 150
    height = TOP + row * max(len(bars), 1) + 6
    biggest = max((value for _, value in bars), default=0) or 1
    plot_w = WIDTH - label_w - 110
    body = []
    for i, (label, value) in enumerate(bars):
        top = TOP + i * row
        length = plot_w * value / biggest
        note = f" · {notes[i]}" if notes and i < len(notes) and notes[i] else ""
        body.append(
            f'<text x="{label_w - 8}" y="{top + 15}" text-anchor="end">{escape(label)}</text>'
            f'<rect class="bar{" alt" if i % 2 else ""}" x="{label_w}" y="{top + 3}" '
            f'width="{max(length, 1):.1f}" height="{row - 10}" rx="3"/>'
            f'<text class="value" x="{label_w + length + 6:.1f}" y="{top + 15}">'
            f"{escape(format_value(value))}{escape(note)}</text>"
        )
    if not bars:
        body.append(f'<text x="{WIDTH / 2}" y="{TOP + 15}" text-anchor="middle">No data yet</text>')
    return _svg(title, WIDTH, height, body)


def funnel_chart(title: str, stages: Sequence[tuple[str, int]]) -> Markup:
    """A funnel: each stage's count as a bar with its share of the first stage."""
    first = stages[0][1] if stages else 0
    notes = [f"{100 * count / first:.0f}%" if first else "" for _, count in stages]
    return bar_chart(title, [(label, float(count)) for label, count in stages], notes=notes)
