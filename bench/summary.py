"""The ``summary`` every benchmark's JSON carries: its figures, one table row each.

Each figure names what was measured, its value and unit, the baseline measured beside it in
the same run (None where the issue sets an absolute target), their ratio, the issue's target
(a value of None: nothing measurable, e.g. no overhead above the baseline's)
and whether it was met (None: context, no target of its own), so ``make bench`` results can
be printed as one table.
"""

from __future__ import annotations

from typing import Any


def figure(
    name: str,
    value: float | None,
    unit: str,
    *,
    target: str,
    met: bool | None,
    baseline: float | None = None,
    baseline_name: str = "",
) -> dict[str, Any]:
    return {
        "name": name,
        "figure": round(value, 3) if value is not None else None,
        "unit": unit,
        "baseline": round(baseline, 3) if baseline is not None else None,
        "baseline_name": baseline_name,
        "ratio": round(value / baseline, 3) if baseline and value is not None else None,
        "target": target,
        "met": met,
    }


def table(figures: list[dict[str, Any]]) -> str:
    """The figures as aligned text lines (what each benchmark prints last)."""
    lines = []
    for f in figures:
        baseline = (
            f"{f['baseline']:,.2f} ({f['baseline_name']}), ratio {f['ratio']:.2f}"
            if f["baseline"] is not None
            else "-"
        )
        verdict = {True: "met", False: "NOT met", None: "context"}[f["met"]]
        value = f"{f['figure']:>10,.2f}" if f["figure"] is not None else f"{'n/a':>10}"
        lines.append(
            f"  {f['name']:<56} {value} {f['unit']:<7} baseline {baseline};"
            f" target {f['target']}: {verdict}"
        )
    return "\n".join(lines)
