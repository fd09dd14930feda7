"""The ``summary`` every benchmark's JSON carries: its figures, one table row each.

Each figure names what was measured, its value and unit, the baseline measured beside it in
the same run (None where the issue sets an absolute target), their ratio, the issue's target
(a value of None: nothing measurable, e.g. no overhead above the baseline's)
and whether it was met (None: context, no target of its own), so ``make bench`` results can
be printed as one table.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
#: Benchmark name -> its JSON file in RESULTS, in the order ``make bench`` runs them.
RESULT_FILES = {
    "throughput": "throughput.json",
    "latency": "latency.json",
    "import": "import.json",
    "campaign": "campaign.json",
    "memory": "memory.json",
}


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


#: Row name, unit and baseline name of the benchmarks whose summary is one headline figure.
HEADLINES = {
    "throughput": ("customer questions answered per second", "msg/s", "bare PTB echo bot"),
    "latency": ("p99 injected -> answered at 100 updates/s", "ms", "bare PTB echo bot"),
}


def figures_of(name: str, report: dict[str, Any]) -> list[dict[str, Any]]:
    """A benchmark's figures: its ``summary.figures``, or its one headline ``summary``."""
    summary = report.get("summary") or {}
    if "figures" in summary:
        return list(summary["figures"])
    if "figure" not in summary:
        return []
    row, unit, baseline_name = HEADLINES.get(name, (name, "", "baseline"))
    headline = figure(
        row,
        summary["figure"],
        unit,
        target=summary["target"],
        met=summary["met"],
        baseline=summary.get("baseline"),
        baseline_name=baseline_name,
    )
    return [headline]


def write_report(report: dict[str, Any], path: Path) -> None:
    """Write a benchmark's JSON (where ``combined`` reads it) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\n  results written to {path}")


def combined(results: Path = RESULTS) -> dict[str, Any]:
    """Every benchmark's latest figures from its JSON, with when each was measured."""
    benchmarks: dict[str, Any] = {}
    for name, file in RESULT_FILES.items():
        path = results / file
        if not path.exists():
            continue
        report = json.loads(path.read_text(encoding="utf-8"))
        benchmarks[name] = {
            "measured_at": report.get("started_at"),
            "figures": figures_of(name, report),
        }
    return {"written_at": datetime.now(UTC).isoformat(timespec="seconds"), **benchmarks}


def print_combined(results: Path = RESULTS) -> int:
    """Print one table of every benchmark's figures and write ``summary.json`` beside them."""
    report = combined(results)
    benchmarks = {k: v for k, v in report.items() if k != "written_at"}
    if not benchmarks:
        print(f"no benchmark results in {results} yet: run `python -m bench`")
        return 1
    for name, result in benchmarks.items():
        print(f"{name} (measured {result['measured_at']}):")
        print(table(result["figures"]))
    missed = [
        f["name"] for result in benchmarks.values() for f in result["figures"] if f["met"] is False
    ]
    print(f"targets not met: {', '.join(missed)}" if missed else "every target met")
    (results / "summary.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"  summary written to {results / 'summary.json'}")
    return 0
