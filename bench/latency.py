"""Latency at a fixed offered load: carebot's FAQ path next to a bare PTB echo bot.

Open loop: the harness injects customer messages on a fixed schedule (by default 100 per
second for 30 s, round-robin over many private chats) whether or not the bot has answered
the earlier ones, so a slow bot cannot slow the offered load down.  Each message's latency
runs from its injection into the sandbox to the sandbox's timestamp of the ``sendMessage``
that answers it (replies in a private chat come in order, one per message).

Setup as in :mod:`bench.throughput`: one :class:`~carebot.sandbox.BotApiSandbox` in the
harness process, each bot in a child process of its own (:mod:`bench.bots`), carebot exactly
as it ships; the bots take turns in the same run (carebot, echo, carebot...).  Each run starts
with an untimed warm-up at the same rate (first template renders, SQLite page cache) whose
messages are answered before the measured schedule starts.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.bots import BOT_KINDS, SETTINGS, BotKind
from bench.summary import write_report
from bench.throughput import (
    CpuMeter,
    ReplyWatcher,
    anomalies,
    describe_checks,
    describe_environment,
    describe_settings,
    environment,
    percentile,
    started_bot,
    utc_now,
    verdict,
)
from bench.workload import Workload, make_workload
from carebot.sandbox import BotApiSandbox

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latency.json"
#: The issue's target: carebot's 99th percentile under this many milliseconds.
TARGET_P99_MS = 50.0
PERCENTILES = (50, 90, 99)


@dataclass
class Options:
    rate: float
    seconds: float
    chats: int
    warmup_seconds: float
    repeats: int
    json_path: Path


@dataclass
class Schedule:
    """How closely the harness kept to the offered load."""

    offered_per_s: float
    lag_p99_ms: float
    lag_max_ms: float


async def inject_on_schedule(
    sandbox: BotApiSandbox, watcher: ReplyWatcher, workload: Workload, rate: float
) -> Schedule:
    """Inject message i at ``start + i / rate``, never waiting for replies (open loop)."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.01
    lags: list[float] = []
    first = last = 0.0
    for number, (user, text) in enumerate(workload.messages):
        due = start + number / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append((loop.time() - due) * 1000)
        last = time.time()
        first = first or last
        watcher.sent(user.id, last, text)
        sandbox.send_text(user, text)
    count = len(workload.messages)
    return Schedule(
        offered_per_s=round((count - 1) / (last - first), 2) if count > 1 else 0.0,
        lag_p99_ms=round(percentile(lags, 99), 2),
        lag_max_ms=round(max(lags), 2),
    )


def latency_figures(latencies: Sequence[float]) -> dict[str, float]:
    figures = {f"p{q}": round(percentile(latencies, q), 2) for q in PERCENTILES}
    figures["max"] = round(max(latencies), 2)
    figures["mean"] = round(statistics.fmean(latencies), 2)
    return figures


async def run_once(
    sandbox: BotApiSandbox, kind: BotKind, options: Options, index: int
) -> dict[str, Any]:
    warmup = round(options.rate * options.warmup_seconds)
    measured = max(1, round(options.rate * options.seconds))
    give_up_after = 30.0
    async with started_bot(sandbox, kind) as bot:
        started_at = utc_now()
        if warmup:
            warm = make_workload(warmup, options.chats)
            warm_watcher = ReplyWatcher(sandbox, kind, warm.chat_ids)
            await inject_on_schedule(sandbox, warm_watcher, warm, options.rate)
            await warm_watcher.wait_for(warmup, give_up_after)
        workload = make_workload(measured, options.chats)
        watcher = ReplyWatcher(sandbox, kind, workload.chat_ids)
        cpu = await CpuMeter.read(bot)
        schedule = await inject_on_schedule(sandbox, watcher, workload, options.rate)
        await watcher.wait_for(measured, give_up_after)
        used = await cpu.since(bot)
    return {
        "bot": kind,
        "index": index,
        "started_at": started_at,
        "warmup_messages": warmup,
        "messages": measured,
        "offered_per_s": schedule.offered_per_s,
        "injection_lag_ms": {"p99": schedule.lag_p99_ms, "max": schedule.lag_max_ms},
        "latency_ms": latency_figures(watcher.latencies),
        "bot_cpu_ms_per_msg": round(used.bot * 1000 / measured, 3),
        "bot_cpu_busy_share": round(used.bot / options.seconds, 3),
        "checks": watcher.checks()
        | {k: v for k, v in bot.stats.items() if k.startswith("stored_")},
        "latencies_ms": watcher.latencies,
    }


def progress(run: dict[str, Any], of: int) -> None:
    figures = run["latency_ms"]
    print(
        f"  run {run['index']:>2}/{of:<2} {run['bot']:<8} {run['messages']:>5} msgs at "
        f"{run['offered_per_s']:6.1f}/s   p50 {figures['p50']:6.1f}  p90 {figures['p90']:6.1f}"
        f"  p99 {figures['p99']:6.1f}  max {figures['max']:7.1f} ms"
        f"   bot CPU {run['bot_cpu_ms_per_msg']:5.2f} ms/msg",
        flush=True,
    )


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    replies: Counter[str] = Counter()
    stored: Counter[str] = Counter()
    for run in runs:
        replies.update(run["checks"]["replies"])
        stored.update({k: v for k, v in run["checks"].items() if k.startswith("stored_")})
    return {
        "runs": len(runs),
        "latency_ms": latency_figures([value for run in runs for value in run["latencies_ms"]]),
        "offered_per_s_min": min(run["offered_per_s"] for run in runs),
        "injection_lag_max_ms": max(run["injection_lag_ms"]["max"] for run in runs),
        "bot_cpu_ms_per_msg_median": statistics.median(run["bot_cpu_ms_per_msg"] for run in runs),
        # every message the bot got, warm-up included, for the storage check
        "messages": sum(run["messages"] + run["warmup_messages"] for run in runs),
        "replies": dict(sorted(replies.items())),
        "stored": {key.removeprefix("stored_"): value for key, value in stored.items()},
    }


async def benchmark(options: Options) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    started, clock = utc_now(), time.perf_counter()
    async with BotApiSandbox() as sandbox:
        for index in range(1, options.repeats + 1):
            for kind in BOT_KINDS:  # carebot, echo, carebot, echo...
                run = await run_once(sandbox, kind, options, index)
                runs.append(run)
                progress(run, options.repeats)
    finished = utc_now()
    bots: dict[str, Any] = {
        kind: summarize([run for run in runs if run["bot"] == kind]) for kind in BOT_KINDS
    }
    care, echo = (bots[kind]["latency_ms"]["p99"] for kind in BOT_KINDS)
    summary = {
        "figure": care,
        "baseline": echo,
        "unit": "p99 latency in ms, update injected -> reply received by the sandbox",
        "ratio": round(care / echo, 3) if echo else None,
        "target": f"carebot p99 < {TARGET_P99_MS:.0f} ms",
        "met": care < TARGET_P99_MS,
        "anomalies": anomalies(bots),
    }
    for run in runs:
        del run["latencies_ms"]
    return {
        "benchmark": "latency",
        "started_at": started,
        "finished_at": finished,
        "duration_s": round(time.perf_counter() - clock, 1),
        "parameters": {
            "rate_per_s": options.rate,
            "seconds": options.seconds,
            "chats": options.chats,
            "warmup_seconds": options.warmup_seconds,
            "repeats": options.repeats,
            "injection": "open loop: message i injected at start + i / rate, round-robin "
            "over the chats, whatever the bot has answered so far",
            "measured": "injection into the sandbox -> sandbox timestamp of the answering "
            "sendMessage; warm-up messages excluded",
            "carebot_path": "FAQ questions (some unmatched) from new and demo customers",
        },
        "settings": SETTINGS,
        "environment": environment(),
        "summary": summary,
        "bots": bots,
        "runs": runs,
    }


def render(report: dict[str, Any]) -> str:
    params, summary, bots = report["parameters"], report["summary"], report["bots"]
    lines = [
        "",
        "Latency at a fixed offered load: carebot (FAQ path, SQLite) vs bare PTB echo bot",
        describe_environment(report),
        f"  open loop: {params['rate_per_s']:g} messages/s for {params['seconds']:g} s over "
        f"{params['chats']} private chats (after {params['warmup_seconds']:g} s of warm-up); "
        f"{params['repeats']} run(s) per bot, alternating",
        *describe_settings(report["settings"]),
        "",
        f"  {'bot':<8} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>8} ms"
        f"   {'offered/s':>9} {'bot CPU ms/msg':>14}",
    ]
    for kind in BOT_KINDS:
        s = bots[kind]
        figures = s["latency_ms"]
        lines.append(
            f"  {kind:<8} {figures['p50']:>7.1f} {figures['p90']:>7.1f} {figures['p99']:>7.1f}"
            f" {figures['max']:>8.1f}   {s['offered_per_s_min']:>12.1f}"
            f" {s['bot_cpu_ms_per_msg_median']:>14.2f}"
        )
    lines += [
        "",
        f"  carebot p99 {summary['figure']:.1f} ms (echo {summary['baseline']:.1f} ms); "
        f"issue target: {summary['target']}: {verdict(summary['met'])}",
        "  checked: " + "; ".join(f"{kind} {describe_checks(bots[kind])}" for kind in BOT_KINDS),
        "  injection kept to schedule within "
        + ", ".join(f"{k} {bots[k]['injection_lag_max_ms']:.1f} ms" for k in BOT_KINDS)
        + " (worst lag)",
    ]
    lines += [f"  WARNING: {problem}" for problem in summary["anomalies"]]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench latency",
        description="Latency of carebot's FAQ path at a fixed offered load, beside an echo bot.",
    )
    parser.add_argument("--rate", type=float, default=100.0, help="messages per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured duration")
    parser.add_argument("--chats", type=int, default=200, help="distinct private chats/users")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed seconds first")
    parser.add_argument("--repeats", type=int, default=1, help="runs per bot")
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"result file (default {DEFAULT_JSON})"
    )
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0 or args.warmup < 0:
        parser.error("--rate and --seconds must be positive, --warmup not negative")
    if args.chats < 1 or args.repeats < 1:
        parser.error("--chats and --repeats must be at least 1")
    return Options(
        rate=args.rate,
        seconds=args.seconds,
        chats=args.chats,
        warmup_seconds=args.warmup,
        repeats=args.repeats,
        json_path=args.json,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    print(
        f"bench: latency at {options.rate:g} messages/s for {options.seconds:g} s, "
        f"{options.repeats} run(s) per bot",
        flush=True,
    )
    report = asyncio.run(benchmark(options))
    print(render(report))
    write_report(report, options.json_path)
    return 0
