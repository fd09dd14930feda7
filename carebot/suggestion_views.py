"""Plain-text report of an offline evaluation of gift suggestions (``carebot eval suggestions``)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from bot.suggestion_eval import EvalResult, Hits

# Below this many customers a rate moves by several points with one customer either way.
SMALL_SAMPLE = 100
HEADERS = ("method", "hits", "hit rate", "category hits", "category hit rate")


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def window_text(start: datetime, end: datetime) -> str:
    """ "2010-12-04 to 2010-12-24 (21 days)" for whole days (end excluded), else exact times."""
    if start.time() == time(0) and end.time() == time(0):
        days = (end - start).days
        last = (end - timedelta(days=1)).date()
        plural = "day" if days == 1 else "days"
        return f"{start.date()} to {last} ({days} {plural})"
    return f"{start.isoformat()} to {end.isoformat()} (end excluded)"


def _row(method: str, hits: Hits) -> tuple[str, ...]:
    return (
        method,
        str(hits.hits),
        percent(hits.hit_rate),
        str(hits.category_hits),
        percent(hits.category_hit_rate),
    )


def format_eval(result: EvalResult) -> str:
    """A short header and a table: the suggestions against the most-popular baseline."""
    each = "suggestion" if result.n == 1 else "suggestions"
    lines = [
        f"Gift suggestions replayed over {window_text(result.window_start, result.window_end)},"
        f" {result.n} {each} per customer",
        f"Customers evaluated: {result.evaluated}"
        f" (skipped, no purchase before the window: {result.skipped_no_history})",
        f"Bought a product new to them in the window: {result.bought_new}",
        "",
    ]
    rows = [
        HEADERS,
        _row("suggestions", result.suggested),
        _row("most popular", result.popular),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells))
    if result.evaluated < SMALL_SAMPLE:
        lines += [
            "",
            f"Small sample ({result.evaluated} customers, under {SMALL_SAMPLE}):"
            " a difference of a few hits is noise.",
        ]
    return "\n".join(lines)
