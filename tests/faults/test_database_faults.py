"""The database in trouble: locked by another writer, full, read-only.

A lock is waited for (the busy timeout); beyond it, and on a full or read-only database, the
customer is asked to send the message again, nothing half-written stays behind, and the
CLI fails with one line naming the file and the problem.

Full and read-only are real conditions: SQLite's own (``max_page_count``, ``query_only``) on
the running bot's connection, and, where user namespaces allow it, a real read-only mount
and a real full tmpfs for the CLI (root ignores file permissions, so chmod proves nothing).
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.clock import FixedClock
from bot.config import resolve_database_path
from bot.importing import RETAIL_PROFILE
from carebot.cli import main
from carebot.importer import run_order_import
from storage import database
from storage.database import open_database
from storage.imports import BATCH_INVOICES
from storage.repositories import Repositories
from tests.conftest import make_config
from tests.e2e.conftest import ANN, Chat, start_chat
from tests.faults.process.test_crash_import import INVOICES, LINES_PER_INVOICE, write_orders

NOT_STORED = "could not receive that message just now. Please send it again"
SAMPLE = Path(__file__).resolve().parents[2] / "carebot" / "demo" / "online_retail_ii_sample.csv.gz"


@pytest.fixture
async def chat(tmp_path: Path, clock: FixedClock, demo_database: Path) -> AsyncIterator[Chat]:
    async for harness in start_chat(demo_database, make_config(tmp_path), clock):
        yield harness


async def first_reply(chat: Chat, text: str) -> str:
    """What the customer reads first after sending ``text`` (waits out a blocked loop: the
    bot's SQLite waits happen on the event loop's thread)."""
    after = chat.sandbox.seq
    chat.sandbox.send_text(ANN, text)
    [first, *_] = await chat.sandbox.wait_for_messages(ANN.id, after=after, timeout=15)
    return str(first["plain_text"])


def stored_texts(chat: Chat) -> list[str]:
    return [
        r["text"]
        for r in chat.care.db.query(
            "SELECT text FROM messages WHERE chat_id = ? AND direction = 'in'", [ANN.id]
        )
    ]


@contextmanager
def write_lock(path: Path, *, for_seconds: float | None = None) -> Iterator[None]:
    """Another program (a second carebot, a backup tool) holds the write lock: until the
    block ends, or, with ``for_seconds``, released by a timer while the bot waits."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(for_seconds or 0, other.execute, ["COMMIT"])
    try:
        if for_seconds is not None:
            timer.start()
        yield
    finally:
        if for_seconds is None:
            other.execute("ROLLBACK")
        else:
            timer.join()
        other.close()


# ------------------------------------------------------------------ the running bot


async def test_a_write_lock_held_for_a_moment_is_waited_for(chat: Chat) -> None:
    with write_lock(resolve_database_path(chat.care.config), for_seconds=1.0):
        reply = await first_reply(chat, "Do you ship to Belgium?")
    assert NOT_STORED not in reply
    assert stored_texts(chat) == ["Do you ship to Belgium?"]


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The busy timeout (5 s) cut short, so a lock that outlasts it takes no time to test."""
    monkeypatch.setattr(database, "BUSY_TIMEOUT_MS", 200)


@pytest.mark.usefixtures("short_busy_timeout")
async def test_a_lock_outlasting_the_busy_timeout_asks_the_customer_to_send_again(
    chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    with write_lock(resolve_database_path(chat.care.config)):
        apology = await first_reply(chat, "Where is my parcel?")
    assert NOT_STORED in apology
    assert "could not be stored" in caplog.text
    assert "database is locked" in caplog.text
    # the lock is gone: sent again, it is kept and answered
    assert NOT_STORED not in await first_reply(chat, "Where is my parcel?")
    assert stored_texts(chat) == ["Where is my parcel?"]


@pytest.mark.parametrize(
    ("condition", "lifted"),
    [
        # SQLITE_FULL: the database may not grow by a page (a long message needs several)
        (
            "PRAGMA max_page_count = {pages}",
            "PRAGMA max_page_count = 1073741823",
        ),
        # SQLITE_READONLY
        ("PRAGMA query_only = 1", "PRAGMA query_only = 0"),
    ],
    ids=["disk-full", "read-only"],
)
async def test_a_full_or_read_only_database_asks_the_customer_to_send_again(
    chat: Chat, condition: str, lifted: str
) -> None:
    db = chat.care.db
    [[pages]] = db.execute("PRAGMA page_count").fetchall()
    assert db.execute("PRAGMA freelist_count").fetchall() == [(0,)]
    long_message = "我的包裹在哪里？" * 500  # 4,000 characters, 12 kB: overflow pages
    db.execute(condition.format(pages=pages))
    assert NOT_STORED in await first_reply(chat, long_message)
    assert stored_texts(chat) == []  # nothing half-written
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    db.execute(lifted)
    assert NOT_STORED not in await first_reply(chat, long_message)
    assert stored_texts(chat) == [long_message]


# ------------------------------------------------------------------ imports


def imported(db: sqlite3.Connection) -> tuple[int, int]:
    """(orders, order lines) the import stored."""
    row = db.execute(
        """SELECT COUNT(DISTINCT o.id), COUNT(i.id) FROM orders o
           JOIN order_items i ON i.order_id = o.id WHERE o.external_id >= '900000'"""
    ).fetchone()
    return int(row[0]), int(row[1])


def test_an_import_that_fills_the_disk_keeps_whole_batches_and_completes_when_run_again(
    tmp_path: Path, clock: FixedClock
) -> None:
    orders = tmp_path / "big.csv"
    write_orders(orders)
    config = make_config(tmp_path)
    repos = Repositories.over(open_database(resolve_database_path(config)))
    [[pages]] = repos.db.execute("PRAGMA page_count").fetchall()
    repos.db.execute(f"PRAGMA max_page_count = {pages + 600}")  # 2.4 MB more, then full

    def run() -> None:
        run_order_import(
            repos, orders, config=config, cols=RETAIL_PROFILE, profile="retail", clock=clock
        )

    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        run()
    kept, lines = imported(repos.db.conn)
    assert 0 < kept < INVOICES
    assert kept % BATCH_INVOICES == 0  # whole batches...
    assert lines == kept * LINES_PER_INVOICE  # ...of whole invoices
    repos.db.execute("PRAGMA max_page_count = 1073741823")  # space freed
    run()
    assert imported(repos.db.conn) == (INVOICES, INVOICES * LINES_PER_INVOICE)
    repos.db.close()


# ------------------------------------------------------------------ the CLI, real mounts


def namespaces_available() -> bool:
    """Mounting needs a user and mount namespace (``unshare -rm``)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False)
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(
    not namespaces_available(), reason="unshare -rm (user namespaces) not available"
)


def in_namespace(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def carebot(config: Path, *args: str) -> str:
    return " ".join([sys.executable, "-m", "carebot", "--config", str(config), *args])


def write_config(directory: Path, database_path: Path) -> Path:
    config = directory / "carebot.toml"
    config.write_text(
        f'[database]\npath = "{database_path}"\n[shop]\nname = "T"\ntimezone = "Europe/London"\n'
        '[telegram]\ntoken = "123456:SANDBOX"\nbase_url = "http://127.0.0.1:9/bot"\n',
        encoding="utf-8",
    )
    return config


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


@needs_mounts
@pytest.mark.parametrize("command", [("import", "orders", str(SAMPLE)), ("run",)])
def test_on_a_read_only_mount_the_cli_refuses_in_one_line_and_writes_nothing(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    shop = tmp_path / "shop"
    shop.mkdir()
    open_database(shop / "shop.db").close()
    config = write_config(shop, shop / "shop.db")
    before = digest(shop)
    result = in_namespace(
        f"mount --bind {shop} {shop} && mount -o remount,bind,ro {shop} && "
        f"exec {carebot(config, *command)}"
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"carebot: error: database {shop / 'shop.db'} is read-only")
    assert result.stderr.count("\n") == 1  # one line, no traceback
    assert digest(shop) == before


@needs_mounts
def test_an_import_filling_a_real_disk_stops_with_one_clear_line_and_whole_batches(
    tmp_path: Path,
) -> None:
    orders = tmp_path / "big.csv"
    write_orders(orders)
    seed, disk, kept = tmp_path / "seed.db", tmp_path / "disk", tmp_path / "kept"
    open_database(seed).close()
    disk.mkdir()
    kept.mkdir()
    config = write_config(tmp_path, disk / "shop.db")
    size_kb = seed.stat().st_size // 1024 + 2048  # room for a batch or so
    result = in_namespace(
        f"mount -t tmpfs -o size={size_kb}k tmpfs {disk} && cp {seed} {disk}/shop.db && "
        f"{{ {carebot(config, 'import', 'orders', str(orders))}; status=$?; }}; "
        f"cp {disk}/shop.db* {kept}/ && exit $status"
    )
    assert result.returncode == 2
    [message] = [line for line in result.stderr.splitlines() if "carebot: error" in line]
    assert f"the disk holding {disk / 'shop.db'} is full" in message
    assert "the batches before were kept, nothing of the unfinished one was" in message
    assert "Traceback" not in result.stderr
    db = sqlite3.connect(kept / "shop.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    stored, lines = imported(db)
    db.close()
    assert 0 < stored < INVOICES  # whole batches kept, not none
    assert stored % BATCH_INVOICES == 0
    assert lines == stored * LINES_PER_INVOICE


@pytest.mark.usefixtures("short_busy_timeout")
def test_a_catalog_import_locked_out_says_so_and_changes_nothing(
    tmp_path: Path, demo_database: Path
) -> None:
    shop = tmp_path / "shop.db"
    shutil.copyfile(demo_database, shop)
    config = write_config(tmp_path, shop)
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("sku,name,category,price\n85123A,Heart Holder,Home,2.95\n", "utf-8")
    with write_lock(shop):
        result = CliRunner().invoke(
            main, ["--config", str(config), "import", "products", str(catalog)]
        )
    assert result.exit_code == 2
    assert result.stderr == (
        f"carebot: error: {catalog}: nothing imported: {shop} stayed locked by another "
        "writer for over 0.2 s (database is locked); try again when it is done\n"
    )
    db = sqlite3.connect(shop)
    assert db.execute("SELECT name FROM products WHERE sku = '85123A'").fetchone() != (
        "Heart Holder",
    )
    db.close()
