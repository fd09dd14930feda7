"""Opening the SQLite database: WAL, foreign keys, a busy timeout, and migrations."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlite_utils import Database

from storage.migrations import MIGRATIONS

# A second writer (an import, the CLI) holds the lock briefly; wait rather than fail.
BUSY_TIMEOUT_MS = 5000

T = TypeVar("T")


class StorageError(Exception):
    """The database cannot be used, with a message a shop owner can act on."""


def database_problem(path: str | Path, error: sqlite3.Error, *, doing: str = "use") -> str:
    """What went wrong with the database file, naming it, in words a shop owner can act on
    (``doing``: what failed, for errors without a better explanation)."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        code &= 0xFF  # the primary result code, without its extended detail
    if code == sqlite3.SQLITE_FULL:
        return f"the disk holding {path} is full ({error}); free some space and try again"
    if code == sqlite3.SQLITE_READONLY or _read_only(Path(path)):
        return f"{_read_only_reason(Path(path))} ({error})"
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return (
            f"{path} stayed locked by another writer for over {BUSY_TIMEOUT_MS / 1000:g} s "
            f"({error}); try again when it is done"
        )
    return f"cannot {doing} database {path}: {error}"


def _read_only(path: Path) -> bool:
    """The file (or, for a new file and the WAL's side files, its directory) cannot be
    written: permissions, or a read-only mount (which binds root too)."""
    if path.exists() and not os.access(path, os.W_OK):
        return True
    return path.parent.exists() and not os.access(path.parent, os.W_OK)


def _read_only_reason(path: Path) -> str:
    where = path if path.exists() and not os.access(path, os.W_OK) else path.parent
    return (
        f"database {path} is read-only ({where} cannot be written): carebot writes the file "
        "and its -wal and -shm files beside it"
    )


def open_database(path: str | Path, *, migrate: bool = True) -> Database:
    """Open (creating if needed) the database file, enable WAL and apply pending migrations.

    A read-only file or directory is refused before anything is opened: the bot would
    otherwise start and then fail at every customer message.
    """
    path = Path(path)
    if _read_only(path):
        raise StorageError(_read_only_reason(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
        db = Database(conn)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA foreign_keys = ON")
        db.enable_wal()
        db.execute("PRAGMA synchronous = NORMAL")
        if migrate:
            MIGRATIONS.apply(db)
    except sqlite3.DatabaseError as exc:
        raise StorageError(database_problem(path, exc, doing="open")) from exc
    except OSError as exc:
        raise StorageError(f"cannot create database directory for {path}: {exc}") from exc
    return db


def on_own_connection(path: str | Path, work: Callable[[Database], T]) -> T:
    """Run ``work`` on a connection of its own, closed after: for heavy reads and writes in
    a worker thread, so the event loop's connection stays free."""
    db = open_database(path, migrate=False)
    try:
        return work(db)
    finally:
        db.close()


async def off_loop(path: str | Path, work: Callable[[Database], T]) -> T:
    """``work`` in a worker thread on a connection of its own (from the event loop)."""
    return await asyncio.to_thread(on_own_connection, path, work)


def pending_migrations(db: Database) -> list[str]:
    return [m.name for m in MIGRATIONS.pending(db)]


def applied_migrations(db: Database) -> list[str]:
    return [m.name for m in MIGRATIONS.applied(db)]


@contextmanager
def write_transaction(db: Database) -> Iterator[None]:
    """Like ``db.atomic()``, but takes the write lock at BEGIN (``BEGIN IMMEDIATE``).

    A deferred transaction that reads first and writes later fails at once with "database
    is locked" if another connection wrote in between (WAL cannot upgrade a stale
    snapshot); taking the lock up front makes it wait for the busy timeout instead.
    Nested inside another transaction it is a savepoint.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.rollback()  # no-op if the error already ended the transaction
        raise
    db.conn.execute("COMMIT")
