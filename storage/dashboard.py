"""The web dashboard's own tables: accounts, sessions, one-time login links, saved settings
and the audit trail of what people changed there.

Session and link tokens are stored only as SHA-256 hashes: a copy of the database does not
let anyone log in.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlite_utils import Database

from bot.clock import from_iso, to_iso
from storage.database import write_transaction
from storage.repositories import one_row

Role = Literal["admin", "staff"]
ROLES: tuple[Role, ...] = ("admin", "staff")
LOGIN_LINK_PATH = "/admin/login/link"
LOGIN_LINK_LIFETIME = timedelta(minutes=10)
USERNAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    display_name: str
    role: Role
    password_hash: str | None
    telegram_user_id: int | None
    active: bool
    created_at: datetime
    last_login_at: datetime | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _account(row: dict[str, Any]) -> Account:
    return Account(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        role=row["role"],
        password_hash=row["password_hash"],
        telegram_user_id=row["telegram_user_id"],
        active=bool(row["active"]),
        created_at=from_iso(row["created_at"]),
        last_login_at=from_iso(row["last_login_at"]) if row["last_login_at"] else None,
    )


class AccountError(ValueError):
    """An account change that cannot be made, with the reason and the field it is about."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class AccountRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        username: str,
        *,
        display_name: str,
        role: Role,
        password_hash: str | None,
        telegram_user_id: int | None,
        now: datetime,
    ) -> Account:
        if not USERNAME.match(username):
            raise AccountError(
                "a username may hold letters, digits, '.', '_' and '-' only", "username"
            )
        if self.by_username(username) is not None:
            raise AccountError(f"there is already an account called {username!r}", "username")
        if telegram_user_id is not None and self.by_telegram_user(telegram_user_id) is not None:
            raise AccountError(
                f"Telegram user {telegram_user_id} already has an account", "telegram_user_id"
            )
        cursor = self.db.execute(
            """INSERT INTO dashboard_accounts (username, display_name, role, password_hash,
                   telegram_user_id, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            [username, display_name, role, password_hash, telegram_user_id, *[to_iso(now)] * 2],
        )
        account = self.get(cursor.lastrowid or 0)
        assert account is not None
        return account

    def get(self, account_id: int) -> Account | None:
        row = one_row(self.db, "SELECT * FROM dashboard_accounts WHERE id = ?", [account_id])
        return _account(row) if row else None

    def by_username(self, username: str) -> Account | None:
        row = one_row(self.db, "SELECT * FROM dashboard_accounts WHERE username = ?", [username])
        return _account(row) if row else None

    def by_telegram_user(self, user_id: int) -> Account | None:
        row = one_row(
            self.db, "SELECT * FROM dashboard_accounts WHERE telegram_user_id = ?", [user_id]
        )
        return _account(row) if row else None

    def for_telegram_login(
        self, user_id: int, name: str, *, is_config_admin: bool, now: datetime
    ) -> Account | None:
        """The active account a Telegram user's /login signs in to. ``[staff] admins`` get an
        admin account (no password: links only, until one is set) on their first /login."""
        account = self.by_telegram_user(user_id)
        if account is None and is_config_admin:
            account = self.create(
                f"tg{user_id}",
                display_name=name or f"Admin {user_id}",
                role="admin",
                password_hash=None,
                telegram_user_id=user_id,
                now=now,
            )
        return account if account is not None and account.active else None

    def all(self) -> list[Account]:
        rows = self.db.query("SELECT * FROM dashboard_accounts ORDER BY active DESC, username")
        return [_account(row) for row in rows]

    def active_admins(self) -> int:
        row = one_row(
            self.db,
            "SELECT count(*) AS n FROM dashboard_accounts WHERE role = 'admin' AND active = 1",
            [],
        )
        return int(row["n"]) if row else 0

    def update(self, account_id: int, now: datetime, **changes: Any) -> None:
        """Change display_name, role, password_hash, telegram_user_id or active."""
        allowed = {"display_name", "role", "password_hash", "telegram_user_id", "active"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"not an account field: {', '.join(sorted(unknown))}")
        if not changes:
            return
        assignments = ", ".join(f"{name} = ?" for name in changes)
        values = [int(v) if isinstance(v, bool) else v for v in changes.values()]
        with write_transaction(self.db):
            if changes.get("telegram_user_id") is not None:
                owner = self.by_telegram_user(changes["telegram_user_id"])
                if owner is not None and owner.id != account_id:
                    raise AccountError(
                        f"Telegram user {changes['telegram_user_id']} already has an account "
                        f"({owner.username})",
                        "telegram_user_id",
                    )
            self.db.execute(
                f"UPDATE dashboard_accounts SET {assignments}, updated_at = ? WHERE id = ?",
                [*values, to_iso(now), account_id],
            )
            if changes.get("active") is False or "password_hash" in changes or "role" in changes:
                # Disabled, demoted or a new password: every open session ends.
                self.db.execute("DELETE FROM dashboard_sessions WHERE account_id = ?", [account_id])

    def update_keeping_an_admin(self, account_id: int, now: datetime, **changes: Any) -> None:
        """``update``, refused when it would disable or demote the last active admin."""
        with write_transaction(self.db):
            account = self.get(account_id)
            if account is None:
                raise AccountError("no such account")
            loses_admin = changes.get("active") is False or changes.get("role", "admin") != "admin"
            if account.is_admin and account.active and loses_admin and self.active_admins() <= 1:
                raise AccountError(
                    f"{account.username} is the last active admin; make another admin first"
                )
            self.update(account_id, now, **changes)

    def logged_in(self, account_id: int, now: datetime) -> None:
        self.db.execute(
            "UPDATE dashboard_accounts SET last_login_at = ? WHERE id = ?",
            [to_iso(now), account_id],
        )


@dataclass(frozen=True)
class Session:
    account: Account
    csrf_token: str
    expires_at: datetime


class SessionRepository:
    """Login sessions: a random token in the cookie, its hash here, a CSRF token per session."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def start(self, account_id: int, now: datetime, lifetime: timedelta, remote: str | None) -> str:
        """A new session; returns the cookie token (stored only as its hash)."""
        token, started, expires = new_token(), to_iso(now), to_iso(now + lifetime)
        self.db.execute(
            """INSERT INTO dashboard_sessions (token_hash, account_id, csrf_token, created_at,
                   last_seen_at, expires_at, remote) VALUES (?, ?, ?, ?, ?, ?, ?)""",
            [token_hash(token), account_id, new_token(), started, started, expires, remote],
        )
        return token

    def resume(self, token: str, now: datetime, idle: timedelta) -> Session | None:
        """The live session behind a cookie token (touching it), or None: unknown, expired,
        idle too long or its account disabled."""
        row = one_row(
            self.db,
            """SELECT s.csrf_token, s.expires_at, s.last_seen_at, a.*
               FROM dashboard_sessions s JOIN dashboard_accounts a ON a.id = s.account_id
               WHERE s.token_hash = ?""",
            [token_hash(token)],
        )
        if row is None:
            return None
        expires, seen = from_iso(row["expires_at"]), from_iso(row["last_seen_at"])
        if now >= expires or now - seen >= idle or not row["active"]:
            self.end(token)
            return None
        if now - seen >= timedelta(minutes=1):  # one write a minute, not one per request
            self.db.execute(
                "UPDATE dashboard_sessions SET last_seen_at = ? WHERE token_hash = ?",
                [to_iso(now), token_hash(token)],
            )
        return Session(_account(row), row["csrf_token"], expires)

    def end(self, token: str) -> None:
        self.db.execute("DELETE FROM dashboard_sessions WHERE token_hash = ?", [token_hash(token)])

    def purge_expired(self, now: datetime, idle: timedelta) -> int:
        cursor = self.db.execute(
            "DELETE FROM dashboard_sessions WHERE expires_at <= ? OR last_seen_at <= ?",
            [to_iso(now), to_iso(now - idle)],
        )
        return cursor.rowcount


class LoginLinkRepository:
    """One-time login links (sent by the bot on /login): usable once, for a few minutes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def issue(self, account_id: int, now: datetime, lifetime: timedelta) -> str:
        token = new_token()
        self.db.execute(
            """INSERT INTO dashboard_login_links (token_hash, account_id, created_at, expires_at)
               VALUES (?, ?, ?, ?)""",
            [token_hash(token), account_id, to_iso(now), to_iso(now + lifetime)],
        )
        return token

    def valid(self, token: str, now: datetime) -> bool:
        row = one_row(
            self.db,
            """SELECT 1 FROM dashboard_login_links
               WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?""",
            [token_hash(token), to_iso(now)],
        )
        return row is not None

    def redeem(self, token: str, now: datetime) -> int | None:
        """The link's account id, marking the link used; None if unknown, used or expired."""
        with write_transaction(self.db):
            row = one_row(
                self.db,
                """SELECT account_id FROM dashboard_login_links
                   WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?""",
                [token_hash(token), to_iso(now)],
            )
            if row is None:
                return None
            self.db.execute(
                "UPDATE dashboard_login_links SET used_at = ? WHERE token_hash = ?",
                [to_iso(now), token_hash(token)],
            )
        return int(row["account_id"])


class SettingsRepository:
    """Settings saved on the dashboard, per config section; they win over config.toml."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, section: str) -> dict[str, Any]:
        row = one_row(
            self.db, "SELECT settings FROM dashboard_settings WHERE section = ?", [section]
        )
        return dict(json.loads(row["settings"])) if row else {}

    def save(self, section: str, values: dict[str, Any], by: int | None, now: datetime) -> None:
        self.db.execute(
            """INSERT INTO dashboard_settings (section, settings, updated_at, updated_by)
               VALUES (?, ?, ?, ?)
               ON CONFLICT (section) DO UPDATE SET settings = excluded.settings,
                   updated_at = excluded.updated_at, updated_by = excluded.updated_by""",
            [section, json.dumps(values, sort_keys=True), to_iso(now), by],
        )


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    who: str
    action: str
    detail: str


class AuditLog:
    """Who changed what on the dashboard (logins, campaigns, settings, accounts, replies)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, account_id: int | None, action: str, detail: str, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO dashboard_audit (account_id, action, detail, at) VALUES (?, ?, ?, ?)",
            [account_id, action, detail[:500], to_iso(now)],
        )

    def recent(self, limit: int = 50) -> list[AuditEntry]:
        rows = self.db.query(
            """SELECT l.at, coalesce(a.username, '-') AS who, l.action, l.detail
               FROM dashboard_audit l LEFT JOIN dashboard_accounts a ON a.id = l.account_id
               ORDER BY l.id DESC LIMIT ?""",
            [limit],
        )
        return [AuditEntry(from_iso(r["at"]), r["who"], r["action"], r["detail"]) for r in rows]


def issue_login_link(
    links: LoginLinkRepository, account_id: int, base_url: str, now: datetime
) -> str:
    """A one-time login URL for the account (sent by /login in Telegram, printed by the CLI)."""
    token = links.issue(account_id, now, LOGIN_LINK_LIFETIME)
    return f"{base_url}{LOGIN_LINK_PATH}?token={token}"


@dataclass(frozen=True)
class DashboardStores:
    accounts: AccountRepository
    sessions: SessionRepository
    links: LoginLinkRepository
    settings: SettingsRepository
    audit: AuditLog

    @classmethod
    def over(cls, db: Database) -> DashboardStores:
        return cls(
            AccountRepository(db),
            SessionRepository(db),
            LoginLinkRepository(db),
            SettingsRepository(db),
            AuditLog(db),
        )
