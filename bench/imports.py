"""Import speed: ``carebot import orders`` next to ``sqlite-utils insert --csv`` (the floor).

Both run as separate processes on the same generated file, alternating, fresh database each
run; wall time and peak RSS come from ``os.wait4`` for that process alone. The importer does
far more per line (parsing, validation, invoices, customers, products, dedup) than a raw bulk
insert, so the ratio says how close it stays to the floor. Memory is measured at two file
sizes: it must stay flat as the file grows (the importer streams).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.summary import figure, table, write_report
from bench.synthetic import write_history

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TARGET_RATIO = 0.5
CONFIG = """[database]
path = "{db}"
[shop]
name = "Bench"
timezone = "Europe/London"
"""


@dataclass
class Run:
    tool: str
    lines: int
    seconds: float
    peak_rss_mb: float

    @property
    def rows_per_second(self) -> float:
        return self.lines / self.seconds


def measure(command: list[str], tool: str, lines: int) -> Run:
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{tool} failed: {stderr[-2000:]}")
    return Run(tool, lines, seconds, usage.ru_maxrss / 1024)


def one_pair(csv_path: Path, lines: int, work: Path, n: int) -> tuple[Run, Run]:
    floor_db = work / f"floor-{n}.db"
    floor = measure(
        [str(BIN / "sqlite-utils"), "insert", str(floor_db), "lines", str(csv_path), "--csv"],
        "sqlite-utils insert --csv",
        lines,
    )
    config = work / f"carebot-{n}.toml"
    config.write_text(CONFIG.format(db=work / f"carebot-{n}.db"), encoding="utf-8")
    ours = measure(
        [str(BIN / "carebot"), "--config", str(config), "import", "orders", str(csv_path)],
        "carebot import orders",
        lines,
    )
    return floor, ours


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench import", description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines in the big file")
    parser.add_argument("--small", type=int, default=100_000, help="lines in the small file")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per tool")
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/import.json")
    args = parser.parse_args(argv)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="carebot-bench-") as tmp:
        work = Path(tmp)
        print(f"generating {args.lines:,} and {args.small:,} synthetic lines ...", flush=True)
        big = write_history(work / "big.csv", args.lines)
        small = write_history(work / "small.csv", args.small)
        runs: list[Run] = []
        for n in range(args.repeats):
            floor, ours = one_pair(big, args.lines, work, n)
            runs += [floor, ours]
            print(
                f"  run {n + 1}/{args.repeats}: floor {floor.rows_per_second:,.0f} rows/s, "
                f"carebot {ours.rows_per_second:,.0f} rows/s",
                flush=True,
            )
        _, small_ours = one_pair(small, args.small, work, args.repeats)
    floor_rates = [r.rows_per_second for r in runs if r.tool.startswith("sqlite")]
    our_rates = [r.rows_per_second for r in runs if r.tool.startswith("carebot")]
    our_rss = [r.peak_rss_mb for r in runs if r.tool.startswith("carebot")]
    ratios = [o / f for o, f in zip(our_rates, floor_rates, strict=True)]
    summary = {
        "lines": args.lines,
        "floor_rows_per_second_median": statistics.median(floor_rates),
        "carebot_rows_per_second_median": statistics.median(our_rates),
        "ratio_median": statistics.median(ratios),
        "ratio_range": [min(ratios), max(ratios)],
        "carebot_peak_rss_mb_big": statistics.median(our_rss),
        "carebot_peak_rss_mb_small": small_ours.peak_rss_mb,
        "small_lines": args.small,
    }
    summary["figures"] = [
        figure(
            f"import: {args.lines:,} order lines",
            summary["carebot_rows_per_second_median"],
            "rows/s",
            baseline=summary["floor_rows_per_second_median"],
            baseline_name="sqlite-utils insert --csv",
            target=f">= {TARGET_RATIO} x the baseline",
            met=summary["ratio_median"] >= TARGET_RATIO,
        ),
        figure(
            f"import: peak RSS at {args.lines:,} lines",
            summary["carebot_peak_rss_mb_big"],
            "MB",
            baseline=summary["carebot_peak_rss_mb_small"],
            baseline_name=f"at {args.small:,} lines",
            target="flat in file size (no target of its own in MB)",
            met=None,
        ),
    ]
    print()
    print(f"Import: {args.lines:,} synthetic order lines, {args.repeats} alternating runs, medians")
    floor_rate, our_rate = (
        summary["floor_rows_per_second_median"],
        summary["carebot_rows_per_second_median"],
    )
    print(f"  sqlite-utils insert --csv (floor): {floor_rate:>10,.0f} rows/s")
    print(f"  carebot import orders:             {our_rate:>10,.0f} rows/s")
    print(
        f"  ratio carebot/floor: {summary['ratio_median']:.2f} "
        f"(runs {min(ratios):.2f}-{max(ratios):.2f}; target >= {TARGET_RATIO})"
    )
    print(
        f"  peak RSS carebot: {summary['carebot_peak_rss_mb_small']:.0f} MB at {args.small:,} "
        f"lines, {summary['carebot_peak_rss_mb_big']:.0f} MB at {args.lines:,} lines"
    )
    print(table(summary["figures"]))
    write_report(
        {"started_at": started_at, "summary": summary, "runs": [asdict(r) for r in runs]},
        args.json,
    )
    return 0
