"""Update throughput: carebot's FAQ path next to a bare python-telegram-bot echo bot.

Both bots poll the same in-process :class:`~carebot.sandbox.BotApiSandbox` (so the sandbox's
own work is on the same CPU and event loop for both).  For each run the harness injects N
customer messages spread over many private chats as fast as it can (a burst, yielding to the
event loop after every round of chats), starts the clock at the first injection and stops it
at the sandbox timestamp of the N-th answering ``sendMessage``.  Runs alternate between the
bots (carebot, echo, carebot, echo...) after one untimed warm-up run each; carebot gets a
fresh temporary database with the demo shop for every run.

The machine this runs on is small and noisy: read medians and ratios, not absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import telegram

from bench.bots import (
    BOT_KINDS,
    LIMITER_MODES,
    MAX_RETRIES,
    BotKind,
    LimiterMode,
    RunningBot,
    describe_limiter,
    running_bot,
)
from bench.workload import Workload, make_workload
from carebot.runtime import POLL_TIMEOUT_SECONDS
from carebot.sandbox import BotApiSandbox

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "throughput.json"
#: The ratio carebot/echo (of median msg/s) our issue tracker asks for.
TARGET_RATIO = 0.8
#: How often the harness looks for new replies; reply times come from the sandbox's own
#: timestamps, so this only bounds how late the harness notices the end of a run.
WATCH_INTERVAL = 0.01


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class RunResult:
    bot: BotKind
    phase: str  # "warm-up", "timed" or "flood-limit check"
    index: int
    limiter: LimiterMode
    messages: int
    chats: int
    started_at: str
    elapsed_s: float
    msg_per_s: float
    cpu_s: float
    cpu_ms_per_msg: float
    latency_p50_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    checks: dict[str, Any]
    latencies_ms: list[float] = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["latencies_ms"]
        return data


def classify(bot: BotKind, message: dict[str, Any] | None, asked: str) -> str:
    """What kind of answer a reply is: for carebot FAQ answer / no match, for echo ok/wrong."""
    if message is None:
        return "no_message"
    if bot == "echo":
        return "echoed" if message.get("plain_text") == asked else "echo_mismatch"
    markup = message.get("reply_markup") or {}
    data = [
        str(button.get("callback_data", ""))
        for row in markup.get("inline_keyboard", [])
        for button in row
    ]
    if any(item.startswith("faq:") for item in data):
        return "faq_answer"
    if any(item.startswith("person:no_match") for item in data):
        return "faq_no_match"
    return "other_reply"


async def drive(
    sandbox: BotApiSandbox, bot: RunningBot, workload: Workload, give_up_after: float
) -> tuple[float, float, list[float], dict[str, Any]]:
    """Inject the workload, wait for every answer; (elapsed, cpu, latencies, checks)."""
    chats = len(workload.users)
    pending: dict[int, deque[tuple[float, str]]] = {user.id: deque() for user in workload.users}
    after = sandbox.seq
    cpu_start = time.process_time()
    started = time.time()
    for number, (user, text) in enumerate(workload.messages, start=1):
        pending[user.id].append((time.time(), text))
        sandbox.send_text(user, text)
        if number % chats == 0:
            await asyncio.sleep(0)  # let the bot start while the rest is injected

    total = len(workload.messages)
    answered, last_reply = 0, started
    latencies: list[float] = []
    kinds: Counter[str] = Counter()
    api_calls: Counter[str] = Counter()
    deadline = time.monotonic() + give_up_after
    while True:
        for event in sandbox.events_after(after):
            after = event.seq
            api_calls[event.method] += 1
            if event.method != "sendMessage" or event.chat_id not in pending:
                continue
            queue = pending[event.chat_id]
            if not queue:
                raise RuntimeError(
                    f"{bot.kind}: more replies than messages in chat {event.chat_id}"
                )
            sent_at, text = queue.popleft()
            latencies.append((event.time - sent_at) * 1000)
            last_reply = max(last_reply, event.time)
            answered += 1
            kinds[classify(bot.kind, event.message, text)] += 1
        if answered >= total:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{bot.kind}: only {answered} of {total} messages answered "
                f"within {give_up_after:.0f}s"
            )
        await asyncio.sleep(WATCH_INTERVAL)
    cpu = time.process_time() - cpu_start
    checks: dict[str, Any] = {"replies": dict(sorted(kinds.items()))}
    checks["api_calls"] = dict(sorted(api_calls.items()))
    return last_reply - started, cpu, latencies, checks


async def run_once(
    sandbox: BotApiSandbox,
    kind: BotKind,
    workload: Workload,
    limiter: LimiterMode,
    *,
    phase: str,
    index: int,
) -> RunResult:
    sandbox.reset()  # same starting state for every run: no chats, events or queued updates
    gc.collect()
    total = len(workload.messages)
    # Generous: the production limiter alone needs total/30 seconds.
    give_up_after = 30 + total / 10
    async with running_bot(kind, sandbox, limiter) as bot:
        await sandbox.wait_idle(quiet=0.1, timeout=10)  # startup calls (setMyCommands...) done
        started_at = utc_now()
        elapsed, cpu, latencies, checks = await drive(sandbox, bot, workload, give_up_after)
    checks.update(bot.stats)
    return RunResult(
        bot=kind,
        phase=phase,
        index=index,
        limiter=limiter,
        messages=total,
        chats=len(workload.users),
        started_at=started_at,
        elapsed_s=round(elapsed, 4),
        msg_per_s=round(total / elapsed, 2),
        cpu_s=round(cpu, 4),
        cpu_ms_per_msg=round(cpu * 1000 / total, 3),
        latency_p50_ms=round(percentile(latencies, 50), 2),
        latency_p99_ms=round(percentile(latencies, 99), 2),
        latency_max_ms=round(max(latencies), 2),
        checks=checks,
        latencies_ms=latencies,
    )


def progress(result: RunResult, of: int) -> None:
    print(
        f"  {result.phase:<17} {result.index:>2}/{of:<2} {result.bot:<8}"
        f" {result.messages:>5} msgs {result.elapsed_s:7.2f} s {result.msg_per_s:8.1f} msg/s"
        f"   p50 {result.latency_p50_ms:8.1f} ms  p99 {result.latency_p99_ms:8.1f} ms"
        f"   CPU {result.cpu_ms_per_msg:5.2f} ms/msg",
        flush=True,
    )


def summarize(runs: Sequence[RunResult]) -> dict[str, Any]:
    rates = [run.msg_per_s for run in runs]
    latencies = [value for run in runs for value in run.latencies_ms]
    replies: Counter[str] = Counter()
    stored: Counter[str] = Counter()
    for run in runs:
        replies.update(run.checks["replies"])
        stored.update({k: v for k, v in run.checks.items() if k.startswith("stored_")})
    return {
        "runs": len(runs),
        "msg_per_s": {
            "median": round(statistics.median(rates), 2),
            "min": min(rates),
            "max": max(rates),
            "all": rates,
        },
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 2),
            "p99": round(percentile(latencies, 99), 2),
            "max": round(max(latencies), 2),
        },
        "cpu_ms_per_msg_median": round(statistics.median(run.cpu_ms_per_msg for run in runs), 3),
        "messages": sum(run.messages for run in runs),
        "replies": dict(sorted(replies.items())),
        "stored": {key.removeprefix("stored_"): value for key, value in stored.items()},
    }


@dataclass
class Options:
    messages: int
    repeats: int
    chats: int
    limiter: LimiterMode
    warmup: int
    cap_check: int
    json_path: Path


async def benchmark(options: Options) -> dict[str, Any]:
    workload = make_workload(options.messages, options.chats)
    runs: list[RunResult] = []
    cap_runs: list[RunResult] = []
    started, clock = utc_now(), time.perf_counter()
    async with BotApiSandbox() as sandbox:
        if options.warmup:
            warm = make_workload(min(options.warmup, options.messages), options.chats)
            for kind in BOT_KINDS:
                result = await run_once(
                    sandbox, kind, warm, options.limiter, phase="warm-up", index=1
                )
                progress(result, 1)
        for index in range(1, options.repeats + 1):
            for kind in BOT_KINDS:  # ABAB...: carebot, echo, carebot, echo
                result = await run_once(
                    sandbox, kind, workload, options.limiter, phase="timed", index=index
                )
                runs.append(result)
                progress(result, options.repeats)
        if options.cap_check and options.limiter != "production":
            capped = make_workload(options.cap_check, options.chats)
            for kind in BOT_KINDS:
                result = await run_once(
                    sandbox, kind, capped, "production", phase="flood-limit check", index=1
                )
                cap_runs.append(result)
                progress(result, 1)
    finished = utc_now()

    by_bot = {kind: [run for run in runs if run.bot == kind] for kind in BOT_KINDS}
    summary: dict[str, Any] = {kind: summarize(by_bot[kind]) for kind in BOT_KINDS}
    ratio = summary["carebot"]["msg_per_s"]["median"] / summary["echo"]["msg_per_s"]["median"]
    paired = [
        round(care.msg_per_s / echo.msg_per_s, 3)
        for care, echo in zip(by_bot["carebot"], by_bot["echo"], strict=True)
    ]
    cpu_ratio = (
        summary["carebot"]["cpu_ms_per_msg_median"] / summary["echo"]["cpu_ms_per_msg_median"]
    )
    summary["ratio_carebot_over_echo"] = {
        "of_median_msg_per_s": round(ratio, 3),
        "paired_runs": paired,
        "target": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
        "cpu_ms_per_msg_carebot_over_echo": round(cpu_ratio, 3),
    }
    summary["anomalies"] = anomalies(summary)
    return {
        "benchmark": "update-throughput",
        "started_at": started,
        "finished_at": finished,
        "duration_s": round(time.perf_counter() - clock, 1),
        "parameters": {
            "messages": options.messages,
            "repeats": options.repeats,
            "chats": options.chats,
            "warmup_messages": min(options.warmup, options.messages),
            "limiter": options.limiter,
            "flood_limit_check_messages": options.cap_check if cap_runs else 0,
            "order": "ABAB: " + ", ".join(BOT_KINDS) + " per repeat, after one warm-up each",
            "injection": "burst: all messages injected at once, round-robin over the chats",
            "carebot_path": "FAQ questions (some unmatched) from new and demo customers",
        },
        "settings": {
            "rate_limiter": describe_limiter(options.limiter, MAX_RETRIES),
            "polling": {
                "poll_interval": 0.0,
                "timeout": POLL_TIMEOUT_SECONDS,
                "allowed_updates": "Update.ALL_TYPES",
            },
            "concurrent_updates": "PTB default (updates processed one at a time) for both",
            "sandbox": "carebot.sandbox.BotApiSandbox in the same process and event loop",
        },
        "environment": environment(),
        "summary": summary,
        "flood_limit_check": (
            {
                "limiter": describe_limiter("production", MAX_RETRIES),
                "runs": [run.to_json() for run in cap_runs],
            }
            if cap_runs
            else None
        ),
        "runs": [run.to_json() for run in runs],
    }


def environment() -> dict[str, Any]:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "python_telegram_bot": telegram.__version__,
        "aiohttp": version("aiohttp"),
        "httpx": version("httpx"),
        "sqlite_utils": version("sqlite-utils"),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "carebot_source": source_revision(),
    }


def source_revision() -> str:
    """The git commit the code under test comes from, "+dirty" with uncommitted changes."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def render(report: dict[str, Any]) -> str:
    params, settings = report["parameters"], report["settings"]
    summary, env = report["summary"], report["environment"]
    lines = [
        "",
        "Update throughput: carebot (FAQ path, SQLite) vs bare PTB echo bot, one BotApiSandbox",
        f"  python-telegram-bot {env['python_telegram_bot']}, Python {env['python']}, "
        f"{env['cpu_count']} CPUs, carebot {env['carebot_source']}, "
        f"{report['started_at']} .. {report['finished_at']}",
        f"  {params['messages']} messages per run (one burst) over {params['chats']} private "
        f"chats; {params['repeats']} timed runs per bot, alternating carebot/echo",
        f"  both bots: {settings['rate_limiter']}",
    ]
    if params["limiter"] == "unthrottled":
        lines.append(
            "    (for carebot this replaces the limiter build_application made; bench only)"
        )
    lines += [
        f"  both bots: polling, poll_interval=0, timeout={settings['polling']['timeout']} s, "
        "updates handled one at a time (PTB default)",
        "",
        f"  {'bot':<8} {'runs':>4}  {'msg/s median':>12} {'min':>7} {'max':>7}"
        f"   {'latency p50':>11} {'p99':>8}   {'CPU ms/msg':>10}",
    ]
    for kind in BOT_KINDS:
        s = summary[kind]
        rate, latency = s["msg_per_s"], s["latency_ms"]
        lines.append(
            f"  {kind:<8} {s['runs']:>4}  {rate['median']:>12.1f} {rate['min']:>7.1f}"
            f" {rate['max']:>7.1f}   {latency['p50']:>8.0f} ms {latency['p99']:>5.0f} ms"
            f"   {s['cpu_ms_per_msg_median']:>10.2f}"
        )
    ratio = summary["ratio_carebot_over_echo"]
    verdict = "met" if ratio["meets_target"] else "NOT met"
    paired = ratio["paired_runs"]
    lines += [
        "",
        f"  ratio carebot/echo of median msg/s: {ratio['of_median_msg_per_s']:.2f}"
        f"   (issue target >= {ratio['target']:.1f}: {verdict})",
        f"    paired runs {min(paired):.2f} .. {max(paired):.2f}; CPU per message "
        f"carebot/echo {ratio['cpu_ms_per_msg_carebot_over_echo']:.2f}x",
        "  checked: " + "; ".join(f"{kind} {describe_checks(summary[kind])}" for kind in BOT_KINDS),
        "  latency: injection -> reply; all messages are injected at once, so mostly queueing",
        "  CPU ms/msg: CPU time of the whole process (bot + in-process sandbox + harness)",
    ]
    lines += [f"  WARNING: {problem}" for problem in anomalies(summary)]
    check = report["flood_limit_check"]
    if check:
        rates = ", ".join(f"{run['bot']} {run['msg_per_s']:.1f} msg/s" for run in check["runs"])
        lines += [
            "",
            f"  flood-limit check, 1 run each of {check['runs'][0]['messages']} messages with "
            "PTB's default AIORateLimiter",
            "  as carebot ships it (30 requests/s after a 30-request burst): " + rates,
        ]
    return "\n".join(lines)


EXPECTED_REPLIES: dict[BotKind, frozenset[str]] = {
    "carebot": frozenset({"faq_answer", "faq_no_match"}),
    "echo": frozenset({"echoed"}),
}


def anomalies(summary: dict[str, Any]) -> list[str]:
    """Replies that are not what the bot should have said, or messages carebot did not store."""
    problems = []
    for kind in BOT_KINDS:
        s = summary[kind]
        odd = {k: n for k, n in s["replies"].items() if k not in EXPECTED_REPLIES[kind]}
        if odd:
            problems.append(f"{kind} sent unexpected replies: {odd}")
        stored = s["stored"]
        if kind == "carebot" and (stored.get("in"), stored.get("out")) != (s["messages"],) * 2:
            problems.append(f"carebot stored {stored} for {s['messages']} messages")
    return problems


def describe_checks(bot_summary: dict[str, Any]) -> str:
    replies: dict[str, int] = bot_summary["replies"]
    total = bot_summary["messages"]
    text = ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in replies.items())
    stored = bot_summary.get("stored")
    if stored:
        text += f", stored {stored.get('in', 0)} in / {stored.get('out', 0)} out of {total}"
    return text


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Update throughput of carebot's FAQ path next to a bare PTB echo bot.",
    )
    parser.add_argument("--messages", type=int, default=1000, help="messages per run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per bot")
    parser.add_argument("--chats", type=int, default=50, help="distinct private chats/users")
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"result file (default {DEFAULT_JSON})"
    )
    parser.add_argument(
        "--limiter",
        choices=LIMITER_MODES,
        default="unthrottled",
        help="AIORateLimiter flood limits for the timed runs (default: unthrottled; "
        "production = PTB's 30 requests/s, which caps both bots)",
    )
    parser.add_argument(
        "--warmup", type=int, default=100, help="messages in the untimed warm-up run (0: none)"
    )
    parser.add_argument(
        "--cap-check",
        type=int,
        default=200,
        help="messages for one extra run per bot with the production limiter (0: skip)",
    )
    args = parser.parse_args(argv)
    for name in ("messages", "repeats", "chats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0 or args.cap_check < 0:
        parser.error("--warmup and --cap-check must not be negative")
    return Options(
        messages=args.messages,
        repeats=args.repeats,
        chats=args.chats,
        limiter=args.limiter,
        warmup=args.warmup,
        cap_check=args.cap_check,
        json_path=args.json,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    print(
        f"bench: {options.repeats} x {options.messages} messages per bot over "
        f"{options.chats} chats (limiter: {options.limiter})",
        flush=True,
    )
    report = asyncio.run(benchmark(options))
    print(render(report))
    options.json_path.parent.mkdir(parents=True, exist_ok=True)
    options.json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\n  results written to {options.json_path}")
    return 0
