"""Memory: peak RSS of a running bot over a big shop, idle and during a campaign.

The bot is a real process (``carebot --config ... run``, polling) talking to the Bot API
sandbox, which runs in this process; this process reads the bot's ``VmRSS`` and ``VmHWM``
(peak) from ``/proc/<pid>/status`` four times a second. Two bots, one after the other:

1. **Baseline**: the same bot on an empty database, idle for ``--idle`` seconds (what carebot
   costs with nothing in it).
2. **Big shop**: ``--customers`` customers (default 1,000,000, all on Telegram) and about
   ``--lines`` order lines (default 5,000,000, in about ``--lines / 3`` orders), idle for
   ``--idle`` seconds with its jobs scheduled; then a campaign to the whole base is
   scheduled from this process (as the CLI would), and the bot plans it (its co-purchase
   model built over every line, then every recipient rendered into the ledger) and sends
   for ``--send`` seconds at the default limit. Peak RSS is read at the end of each phase.

The database is written straight into carebot's schema (migrations first, then bulk
``INSERT ... SELECT`` statements inside SQLite) and cached under ``var/bench/`` for later
runs; each run works on a copy, since planning fills the delivery ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.campaign import CATEGORIES, PRODUCTS, STYLES, USER_BASE
from bench.summary import figure, table, write_report
from bench.throughput import environment, utc_now
from bot.campaigns import CampaignStatus, parse_campaign
from bot.clock import to_iso
from bot.config import SUPPORTED_LANGUAGES
from bot.occasions import parse_custom_occasion
from carebot.sandbox import BotApiSandbox, SandboxUser
from storage.campaigns import CampaignRepository, CustomOccasionRepository
from storage.database import on_own_connection, open_database

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CACHE = ROOT / "var" / "bench"
DEFAULT_JSON = ROOT / "bench" / "results" / "memory.json"
TARGET_MB = 200.0
SAMPLE_EVERY = 0.25
#: Recipients registered in the sandbox (those due first): enough for the sending phase.
SANDBOX_RECIPIENTS = 20_000
#: Purchase history: four years before the build's fixed start.
HISTORY_START = datetime(2022, 1, 1, tzinfo=UTC)
HISTORY_SECONDS = 4 * 365 * 86_400
STAMP = to_iso(HISTORY_START)

CONFIG = """[database]
path = "{db}"
[shop]
name = "Bench Gifts"
timezone = "UTC"
url = "https://shop.example"
[telegram]
token = "{token}"
base_url = "{base_url}"
[web]
enabled = true
port = {port}
[campaigns]
quiet_hours = "03:00-03:01"
"""
TEMPLATE = """Hi {{ customer.first_name }}! {{ occasion.label }} is \
{{ occasion.days_left }} days away.
{% for s in suggestions %}• {{ s.name|title }} {{ s.price_text }}
{% endfor %}"""


# ------------------------------------------------------------------ the big shop


@dataclass(frozen=True)
class ShopSize:
    customers: int
    orders: int
    order_lines: int
    file_mb: float
    build_s: float


def database_path(customers: int, lines: int) -> Path:
    return CACHE / f"memory-{customers}-{lines}.db"


def build_database(path: Path, customers: int, lines: int) -> ShopSize:
    """The shop, built in SQLite itself: customers, about ``lines / 3`` orders of 1-5 lines
    (customer ids ascending with order ids), each customer buying mostly in one category."""
    started = time.perf_counter()
    partial = path.with_name(path.name + ".partial")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    db = open_database(partial)
    db.execute("PRAGMA synchronous = OFF")  # a throwaway file until it is complete
    orders = max(1, lines // 3)
    names = list(CATEGORIES)
    products = [
        (
            n,
            f"B{n:05d}",
            f"{STYLES[n % len(STYLES)]} {CATEGORIES[names[n % len(names)]][n % 4]}",
            names[n % len(names)],
            round(0.85 + (n * 37 % 5900) / 100, 2),
            STAMP,
            STAMP,
        )
        for n in range(1, PRODUCTS + 1)
    ]
    counting = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
    with db.conn:
        db.conn.executemany(
            """INSERT INTO products (id, sku, name, category, price, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            products,
        )
        db.conn.execute(
            f"""INSERT INTO customers (id, external_id, telegram_user_id, telegram_chat_id,
                    first_name, country, language, created_at, updated_at)
                {counting}
                SELECT i, 'M' || i, ? + i, ? + i,
                       CASE i % 4 WHEN 0 THEN 'Ann' WHEN 1 THEN 'Ben' WHEN 2 THEN 'Wei'
                            ELSE 'Rosa' END,
                       CASE i % 5 WHEN 0 THEN 'France' WHEN 1 THEN 'Germany'
                            ELSE 'United Kingdom' END,
                       CASE i % 9 WHEN 0 THEN 'zh' ELSE 'en' END, ?, ? FROM n""",
            [customers, USER_BASE, USER_BASE, STAMP, STAMP],
        )
        db.conn.execute(
            f"""INSERT INTO orders (id, external_id, customer_id, status, placed_at, total,
                    country, created_at, updated_at)
                {counting}
                SELECT i, 'MO' || i, 1 + (i - 1) * ? / ?, 'delivered',
                       strftime('%Y-%m-%dT%H:%M:%S+00:00', ? + (i * 7919) % ?, 'unixepoch'),
                       0, 'United Kingdom', ?, ? FROM n""",
            [
                orders,
                customers,
                orders,
                int(HISTORY_START.timestamp()),
                HISTORY_SECONDS,
                STAMP,
                STAMP,
            ],
        )
        # Line n of order o: 70% from the customer's category (every 12th product is of one
        # category), the rest anywhere; 1 to 5 lines per order, 3 on average.
        db.conn.execute(
            """INSERT INTO order_items (order_id, line_no, product_id, sku, description,
                   quantity, unit_price)
               SELECT o.id, l.n, p.id, p.sku, p.name, 1 + (o.id + l.n) % 3, p.price
               FROM orders o
               JOIN (SELECT column1 AS n FROM (VALUES (1), (2), (3), (4), (5))) l
                 ON l.n <= 1 + o.id % 5
               JOIN products p ON p.id = CASE WHEN (o.id * 7 + l.n * 3) % 10 < 7
                   THEN 1 + (o.customer_id % 12 + 12 * ((o.id * 31 + l.n * 17) % 416)) % ?
                   ELSE 1 + (o.id * 131 + l.n * 977) % ? END""",
            [PRODUCTS, PRODUCTS],
        )
    order_lines = db.execute("SELECT COUNT(*) FROM order_items").fetchone()[0]
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    partial.rename(path)
    return ShopSize(
        customers=customers,
        orders=orders,
        order_lines=order_lines,
        file_mb=round(path.stat().st_size / 2**20, 1),
        build_s=round(time.perf_counter() - started, 1),
    )


def cached_database(customers: int, lines: int) -> tuple[Path, ShopSize, bool]:
    """The cached shop (built first if absent); whether it was built in this run."""
    path = database_path(customers, lines)
    facts = path.with_suffix(".json")
    if path.exists() and facts.exists():
        return path, ShopSize(**json.loads(facts.read_text())), False
    CACHE.mkdir(parents=True, exist_ok=True)
    size = build_database(path, customers, lines)
    facts.write_text(json.dumps(asdict(size)))
    return path, size, True


def copy_database(source: Path, target: Path) -> Path:
    """A work copy (the WAL was checkpointed away when the cache was built)."""
    shutil.copyfile(source, target)
    return target


# ------------------------------------------------------------------ watching the bot


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) of the process, in MB."""
    found: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) / 1024
    return found


@dataclass
class Phase:
    name: str
    seconds: float
    peak_rss_mb: float  # VmHWM at the end of the phase: the most the process ever held
    rss_median_mb: float
    rss_max_sampled_mb: float
    notes: dict[str, Any] = field(default_factory=dict)


class Sampler:
    """Samples the bot's RSS in the background; ``phase`` closes one stretch of samples."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[float] = []
        self.started = time.perf_counter()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.samples.append(proc_status(self.pid)["VmRSS"])
            await asyncio.sleep(SAMPLE_EVERY)

    def phase(self, name: str, **notes: Any) -> Phase:
        status, samples = proc_status(self.pid), self.samples or [0.0]
        now = time.perf_counter()
        phase = Phase(
            name=name,
            seconds=round(now - self.started, 1),
            peak_rss_mb=round(status["VmHWM"], 1),
            rss_median_mb=round(statistics.median(samples), 1),
            rss_max_sampled_mb=round(max(samples), 1),
            notes=notes,
        )
        self.samples, self.started = [], now
        print(
            f"  {name}: peak {phase.peak_rss_mb:.1f} MB, median {phase.rss_median_mb:.1f} MB"
            f" over {phase.seconds:.0f} s {notes or ''}",
            flush=True,
        )
        return phase

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_for(check: Any, what: str, timeout: float, every: float = 0.5) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(every)


def schedule_whole_base_campaign(db_path: Path) -> None:
    """A campaign to every customer, its window open now (what ``carebot campaign start``
    leads to): a custom occasion two days ahead, reminders due today."""
    now = datetime.now(UTC)
    day = (now + timedelta(days=2)).date()

    def schedule(db: Any) -> None:
        CustomOccasionRepository(db).save(
            parse_custom_occasion("bench-day", f"{day.month}-{day.day}", label="Bench day"), now
        )
        spec = parse_campaign(
            {
                "name": "memory-bench",
                "occasion": "bench-day",
                "days_before": 2,
                "send_time": "00:00",
                "template": {"en": TEMPLATE},
                "suggestions": {"count": 3},
            },
            languages=SUPPORTED_LANGUAGES,
        )
        repo = CampaignRepository(db)
        campaign = repo.create(spec, day.year, now)
        moved = repo.move(
            campaign.id, CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, now, opens_at=now
        )
        assert moved

    on_own_connection(db_path, schedule)


def campaign_status(db_path: Path) -> str | None:
    def status(db: Any) -> str | None:
        row = db.execute("SELECT status FROM campaigns WHERE name = 'memory-bench'").fetchone()
        return row[0] if row else None

    return on_own_connection(db_path, status)


async def watch_bot(
    sandbox: BotApiSandbox,
    work: Path,
    db_path: Path,
    *,
    idle_s: float,
    send_s: float | None,
    label: str,
    recipients: int = 0,
) -> list[Phase]:
    """Start ``carebot run`` on ``db_path``, sample it while idle and (with ``send_s``)
    through a whole-base campaign; stop it with SIGTERM. The first ``recipients`` customers
    have a chat with the bot in the sandbox (those whose reminders go out first)."""
    config = work / f"{label}.toml"
    config.write_text(
        CONFIG.format(
            db=db_path, token=sandbox.bot_token, base_url=sandbox.base_url, port=free_port()
        ),
        encoding="utf-8",
    )
    sandbox.reset()
    for n in range(1, recipients + 1):
        sandbox.add_user(SandboxUser(id=USER_BASE + n, first_name=f"Customer {n}"))
    log = (work / f"{label}.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        str(BIN / "carebot"), "--config", str(config), "run", stdout=log, stderr=log
    )
    phases: list[Phase] = []
    sampler = Sampler(process.pid)
    try:
        await wait_for(lambda: bool(sandbox.calls()), "the bot to start", 120)
        phases.append(sampler.phase(f"{label}: start"))
        await asyncio.sleep(idle_s)
        phases.append(sampler.phase(f"{label}: idle"))
        if send_s is not None:
            schedule_whole_base_campaign(db_path)
            await wait_for(
                lambda: campaign_status(db_path) == "running", "the campaign's plan", 3600, 1.0
            )
            planned = sampler.phase(f"{label}: campaign planned")
            phases.append(planned)
            await wait_for(lambda: bool(sandbox.calls("sendMessage")), "the first reminder", 120)
            await asyncio.sleep(send_s)
            sent = [c for c in sandbox.calls("sendMessage") if c["ok"]]
            phases.append(sampler.phase(f"{label}: sending", reminders_sent=len(sent)))
    finally:
        await sampler.stop()
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()
    return phases


# ------------------------------------------------------------------ the benchmark


async def measure(options: argparse.Namespace, work: Path, db: Path) -> list[Phase]:
    async with BotApiSandbox() as sandbox:
        phases = await watch_bot(
            sandbox, work, work / "empty.db", idle_s=options.idle, send_s=None, label="empty"
        )
        print(f"copying the shop to {work} ...", flush=True)
        big = copy_database(db, work / "big.db")
        phases += await watch_bot(
            sandbox,
            work,
            big,
            idle_s=options.idle,
            send_s=options.send,
            label="big shop",
            recipients=min(options.customers, SANDBOX_RECIPIENTS),
        )
    return phases


def summarize(phases: Sequence[Phase], size: ShopSize) -> dict[str, Any]:
    by_name = {phase.name: phase for phase in phases}
    baseline = by_name["empty: idle"].peak_rss_mb
    idle = by_name["big shop: idle"].peak_rss_mb
    during = max(p.peak_rss_mb for p in phases if p.name.startswith("big shop"))
    shop = f"{size.customers:,} customers, {size.order_lines:,} lines"
    target = f"< {TARGET_MB:.0f} MB"
    return {
        "figures": [
            figure(
                f"memory: idle bot, {shop}",
                idle,
                "MB peak",
                baseline=baseline,
                baseline_name="idle bot, empty database",
                target=target,
                met=idle < TARGET_MB,
            ),
            figure(
                f"memory: campaign over {shop}",
                during,
                "MB peak",
                baseline=baseline,
                baseline_name="idle bot, empty database",
                target=target,
                met=during < TARGET_MB,
            ),
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench memory",
        description="Peak RSS of a running bot over a big shop, idle and during a campaign.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=5_000_000, help="order lines, about")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds idle, per bot")
    parser.add_argument("--send", type=float, default=20.0, help="seconds of sending")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="result file")
    options = parser.parse_args(argv)
    started, clock = utc_now(), time.perf_counter()
    print(f"shop of {options.customers:,} customers, {options.lines:,} lines ...", flush=True)
    db, size, built = cached_database(options.customers, options.lines)
    print(
        f"  {db} ({size.file_mb:,.0f} MB, {size.order_lines:,} lines; "
        + (f"built in {size.build_s:.0f} s)" if built else "cached)"),
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="carebot-bench-", dir=CACHE) as tmp:
        phases = asyncio.run(measure(options, Path(tmp), db))
    summary = summarize(phases, size)
    report = {
        "benchmark": "memory",
        "started_at": started,
        "finished_at": utc_now(),
        "duration_s": round(time.perf_counter() - clock, 1),
        "parameters": {
            "customers": options.customers,
            "lines": options.lines,
            "idle_s": options.idle,
            "send_s": options.send,
            "measured": "VmHWM (peak RSS) and VmRSS of the `carebot run` process from "
            f"/proc/<pid>/status every {SAMPLE_EVERY} s; the sandbox runs in the bench process",
            "campaign": "every customer, 3 suggestions, default limit; planned by the bot "
            "when its window opens (co-purchase model built over every line first)",
        },
        "shop": {**asdict(size), "database": str(db), "built_in_this_run": built},
        "environment": environment(),
        "summary": summary,
        "phases": [asdict(phase) for phase in phases],
    }
    print("\nMemory of a running bot (peak RSS of the carebot process)")
    print(table(summary["figures"]))
    write_report(report, options.json)
    return 0
