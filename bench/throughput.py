"""Update throughput: carebot's FAQ path next to a bare python-telegram-bot echo bot.

The harness process runs one :class:`~carebot.sandbox.BotApiSandbox`; each bot runs in a
child process of its own (see :mod:`bench.bots`) and polls it over HTTP, so the sandbox's and
the harness's work is not on the bot's CPU or event loop.  For each run the harness injects N
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
import math
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import telegram

from bench.bots import BOT_KINDS, SETTINGS, BotKind, BotProcess, bot_process
from bench.summary import write_report
from bench.workload import Workload, make_workload
from carebot.sandbox import BotApiSandbox

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "throughput.json"
#: The ratio carebot/echo (of median msg/s) our issue tracker asks for.
TARGET_RATIO = 0.8
#: How often the harness looks for new replies; reply times come from the sandbox's own
#: timestamps, so this only bounds how late the harness notices replies.
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
    phase: str  # "warm-up" or "timed"
    index: int
    messages: int
    chats: int
    started_at: str
    elapsed_s: float
    msg_per_s: float
    bot_cpu_ms_per_msg: float
    harness_cpu_ms_per_msg: float
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


class ReplyWatcher:
    """Pairs each answering ``sendMessage`` with the oldest unanswered message of its chat.

    Each private chat's replies come in order (both bots answer one message with exactly one
    message), so the pairing gives every message its latency, from its injection to the
    sandbox's timestamp of the reply.
    """

    def __init__(self, sandbox: BotApiSandbox, bot: BotKind, chat_ids: frozenset[int]) -> None:
        self.sandbox, self.bot = sandbox, bot
        self.after = sandbox.seq
        self.pending: dict[int, deque[tuple[float, str]]] = {chat: deque() for chat in chat_ids}
        self.latencies: list[float] = []
        self.kinds: Counter[str] = Counter()
        self.api_calls: Counter[str] = Counter()
        self.answered = 0
        self.last_reply = 0.0

    def sent(self, chat_id: int, at: float, text: str) -> None:
        self.pending[chat_id].append((at, text))

    def collect(self) -> None:
        """Account for every sandbox event since the last call."""
        for event in self.sandbox.events_after(self.after):
            self.after = event.seq
            self.api_calls[event.method] += 1
            if event.method != "sendMessage" or event.chat_id not in self.pending:
                continue
            queue = self.pending[event.chat_id]
            if not queue:
                raise RuntimeError(
                    f"{self.bot}: more replies than messages in chat {event.chat_id}"
                )
            sent_at, text = queue.popleft()
            self.latencies.append((event.time - sent_at) * 1000)
            self.last_reply = max(self.last_reply, event.time)
            self.answered += 1
            self.kinds[classify(self.bot, event.message, text)] += 1

    async def wait_for(self, total: int, give_up_after: float) -> None:
        deadline = time.monotonic() + give_up_after
        while True:
            self.collect()
            if self.answered >= total:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.bot}: only {self.answered} of {total} messages answered "
                    f"within {give_up_after:.0f}s"
                )
            await asyncio.sleep(WATCH_INTERVAL)

    def checks(self) -> dict[str, Any]:
        return {
            "replies": dict(sorted(self.kinds.items())),
            "api_calls": dict(sorted(self.api_calls.items())),
        }


@dataclass
class CpuMeter:
    """CPU seconds used by the bot's process and by the harness (sandbox included)."""

    bot: float
    harness: float

    @classmethod
    async def read(cls, bot: BotProcess) -> CpuMeter:
        return cls(bot=await bot.cpu_seconds(), harness=time.process_time())

    async def since(self, bot: BotProcess) -> CpuMeter:
        now = await CpuMeter.read(bot)
        return CpuMeter(bot=now.bot - self.bot, harness=now.harness - self.harness)


@asynccontextmanager
async def started_bot(sandbox: BotApiSandbox, kind: BotKind) -> AsyncIterator[BotProcess]:
    """``kind`` in its own process, polling a freshly reset sandbox, its startup calls done."""
    sandbox.reset()  # same starting state for every run: no chats, events or queued updates
    gc.collect()
    async with bot_process(kind, sandbox.base_url, sandbox.bot_token) as bot:
        await sandbox.wait_idle(quiet=0.1, timeout=10)  # startup calls (setMyCommands...) done
        yield bot


async def run_once(
    sandbox: BotApiSandbox, kind: BotKind, workload: Workload, *, phase: str, index: int
) -> RunResult:
    total = len(workload.messages)
    chats = len(workload.users)
    async with started_bot(sandbox, kind) as bot:
        started_at = utc_now()
        watcher = ReplyWatcher(sandbox, kind, workload.chat_ids)
        cpu = await CpuMeter.read(bot)
        started = time.time()
        for number, (user, text) in enumerate(workload.messages, start=1):
            watcher.sent(user.id, time.time(), text)
            sandbox.send_text(user, text)
            if number % chats == 0:
                await asyncio.sleep(0)  # let the sandbox hand out updates meanwhile
        await watcher.wait_for(total, give_up_after=30 + total / 10)
        used = await cpu.since(bot)
    checks = watcher.checks() | {k: v for k, v in bot.stats.items() if k.startswith("stored_")}
    elapsed = watcher.last_reply - started
    latencies = watcher.latencies
    return RunResult(
        bot=kind,
        phase=phase,
        index=index,
        messages=total,
        chats=chats,
        started_at=started_at,
        elapsed_s=round(elapsed, 4),
        msg_per_s=round(total / elapsed, 2),
        bot_cpu_ms_per_msg=round(used.bot * 1000 / total, 3),
        harness_cpu_ms_per_msg=round(used.harness * 1000 / total, 3),
        latency_p50_ms=round(percentile(latencies, 50), 2),
        latency_p99_ms=round(percentile(latencies, 99), 2),
        latency_max_ms=round(max(latencies), 2),
        checks=checks,
        latencies_ms=latencies,
    )


def progress(result: RunResult, of: int) -> None:
    print(
        f"  {result.phase:<8} {result.index:>2}/{of:<2} {result.bot:<8}"
        f" {result.messages:>5} msgs {result.elapsed_s:7.2f} s {result.msg_per_s:8.1f} msg/s"
        f"   p50 {result.latency_p50_ms:8.1f} ms  p99 {result.latency_p99_ms:8.1f} ms"
        f"   bot CPU {result.bot_cpu_ms_per_msg:5.2f} ms/msg",
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
        "bot_cpu_ms_per_msg_median": round(
            statistics.median(run.bot_cpu_ms_per_msg for run in runs), 3
        ),
        "harness_cpu_ms_per_msg_median": round(
            statistics.median(run.harness_cpu_ms_per_msg for run in runs), 3
        ),
        "messages": sum(run.messages for run in runs),
        "replies": dict(sorted(replies.items())),
        "stored": {key.removeprefix("stored_"): value for key, value in stored.items()},
    }


@dataclass
class Options:
    messages: int
    repeats: int
    chats: int
    warmup: int
    json_path: Path


async def benchmark(options: Options) -> dict[str, Any]:
    workload = make_workload(options.messages, options.chats)
    runs: list[RunResult] = []
    started, clock = utc_now(), time.perf_counter()
    async with BotApiSandbox() as sandbox:
        if options.warmup:
            warm = make_workload(min(options.warmup, options.messages), options.chats)
            for kind in BOT_KINDS:
                progress(await run_once(sandbox, kind, warm, phase="warm-up", index=1), 1)
        for index in range(1, options.repeats + 1):
            for kind in BOT_KINDS:  # ABAB...: carebot, echo, carebot, echo
                result = await run_once(sandbox, kind, workload, phase="timed", index=index)
                runs.append(result)
                progress(result, options.repeats)
    finished = utc_now()

    by_bot = {kind: [run for run in runs if run.bot == kind] for kind in BOT_KINDS}
    bots: dict[str, Any] = {kind: summarize(by_bot[kind]) for kind in BOT_KINDS}
    care, echo = (bots[kind]["msg_per_s"]["median"] for kind in BOT_KINDS)
    ratio = care / echo
    cpu_ratio = bots["carebot"]["bot_cpu_ms_per_msg_median"] / max(
        bots["echo"]["bot_cpu_ms_per_msg_median"], 1e-9
    )
    summary = {
        "figure": care,
        "baseline": echo,
        "unit": "messages answered per second (median of runs)",
        "ratio": round(ratio, 3),
        "target": f"carebot >= {TARGET_RATIO} x echo bot",
        "met": ratio >= TARGET_RATIO,
        "paired_ratios": [
            round(c.msg_per_s / e.msg_per_s, 3)
            for c, e in zip(by_bot["carebot"], by_bot["echo"], strict=True)
        ],
        "bot_cpu_per_msg_carebot_over_echo": round(cpu_ratio, 3),
        "anomalies": anomalies(bots),
    }
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
            "order": "ABAB: " + ", ".join(BOT_KINDS) + " per repeat, after one warm-up each",
            "injection": "burst: all messages injected at once, round-robin over the chats",
            "carebot_path": "FAQ questions (some unmatched) from new and demo customers",
        },
        "settings": SETTINGS,
        "environment": environment(),
        "summary": summary,
        "bots": bots,
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
    summary, bots = report["summary"], report["bots"]
    lines = [
        "",
        "Update throughput: carebot (FAQ path, SQLite) vs bare PTB echo bot, one BotApiSandbox",
        describe_environment(report),
        f"  {params['messages']} messages per run (one burst) over {params['chats']} private "
        f"chats; {params['repeats']} timed runs per bot, alternating carebot/echo",
        *describe_settings(settings),
        "",
        f"  {'bot':<8} {'runs':>4}  {'msg/s median':>12} {'min':>7} {'max':>7}"
        f"   {'latency p50':>11} {'p99':>8}   {'bot CPU ms/msg':>14}",
    ]
    for kind in BOT_KINDS:
        s = bots[kind]
        rate, latency = s["msg_per_s"], s["latency_ms"]
        lines.append(
            f"  {kind:<8} {s['runs']:>4}  {rate['median']:>12.1f} {rate['min']:>7.1f}"
            f" {rate['max']:>7.1f}   {latency['p50']:>8.0f} ms {latency['p99']:>5.0f} ms"
            f"   {s['bot_cpu_ms_per_msg_median']:>14.2f}"
        )
    paired = summary["paired_ratios"]
    lines += [
        "",
        f"  ratio carebot/echo of median msg/s: {summary['ratio']:.2f}"
        f"   (issue target: {summary['target']}: {verdict(summary['met'])})",
        f"    paired runs {min(paired):.2f} .. {max(paired):.2f}; bot CPU per message "
        f"carebot/echo {summary['bot_cpu_per_msg_carebot_over_echo']:.2f}x",
        "  checked: " + "; ".join(f"{kind} {describe_checks(bots[kind])}" for kind in BOT_KINDS),
        "  latency: injection -> reply; all messages are injected at once, so mostly queueing",
        "  sandbox + harness CPU per message (in their own process): "
        + ", ".join(f"{k} {bots[k]['harness_cpu_ms_per_msg_median']:.2f} ms" for k in BOT_KINDS),
    ]
    lines += [f"  WARNING: {problem}" for problem in summary["anomalies"]]
    return "\n".join(lines)


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def describe_environment(report: dict[str, Any]) -> str:
    env = report["environment"]
    return (
        f"  python-telegram-bot {env['python_telegram_bot']}, Python {env['python']}, "
        f"{env['cpu_count']} CPUs, carebot {env['carebot_source']}, "
        f"{report['started_at']} .. {report['finished_at']}"
    )


def describe_settings(settings: dict[str, Any]) -> list[str]:
    return [
        f"  carebot: {settings['carebot']}",
        f"  echo:    {settings['echo']}",
        f"  both: polling (poll_interval=0, timeout={settings['polling']['timeout']} s), "
        "updates handled one at a time (PTB default), each bot in a process of its own",
    ]


EXPECTED_REPLIES: dict[BotKind, frozenset[str]] = {
    "carebot": frozenset({"faq_answer", "faq_no_match"}),
    "echo": frozenset({"echoed"}),
}


def anomalies(bots: dict[str, Any]) -> list[str]:
    """Replies that are not what the bot should have said, or messages carebot did not store."""
    problems = []
    for kind in BOT_KINDS:
        s = bots[kind]
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
        prog="python -m bench throughput",
        description="Update throughput of carebot's FAQ path next to a bare PTB echo bot.",
    )
    parser.add_argument("--messages", type=int, default=1000, help="messages per run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per bot")
    parser.add_argument("--chats", type=int, default=50, help="distinct private chats/users")
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help=f"result file (default {DEFAULT_JSON})"
    )
    parser.add_argument(
        "--warmup", type=int, default=100, help="messages in the untimed warm-up run (0: none)"
    )
    args = parser.parse_args(argv)
    for name in ("messages", "repeats", "chats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    return Options(
        messages=args.messages,
        repeats=args.repeats,
        chats=args.chats,
        warmup=args.warmup,
        json_path=args.json,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    print(
        f"bench: {options.repeats} x {options.messages} messages per bot over "
        f"{options.chats} chats",
        flush=True,
    )
    report = asyncio.run(benchmark(options))
    print(render(report))
    write_report(report, options.json_path)
    return 0
