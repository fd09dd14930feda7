"""Campaigns, the delivery ledger, the audience query and campaign reports."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlite_utils import Database

from bot.campaign_service import PlannedReminder, Window
from bot.campaigns import (
    Campaign,
    CampaignError,
    CampaignSpec,
    CampaignStatus,
    Candidate,
    Delivery,
    DeliveryStatus,
)
from bot.clock import from_iso, to_iso
from bot.occasions import CustomOccasion, parse_custom_occasion
from bot.suggestions import PurchaseLine
from storage.database import write_transaction
from storage.repositories import one_row
from storage.suggestions import purchase_lines

OPEN_TICKET_STATUSES = ("open", "answered", "reopened")


def _campaign(row: dict[str, Any]) -> Campaign:
    def moment(key: str) -> datetime | None:
        return from_iso(row[key]) if row[key] else None

    return Campaign(
        id=row["id"],
        spec=CampaignSpec.from_json(row["spec"]),
        year=row["year"],
        status=CampaignStatus(row["status"]),
        created_at=from_iso(row["created_at"]),
        opens_at=moment("opens_at"),
        started_at=moment("started_at"),
        finished_at=moment("finished_at"),
        audience_size=row["audience_size"],
        excluded=json.loads(row["excluded"] or "{}"),
    )


class CampaignRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, spec: CampaignSpec, year: int, now: datetime) -> Campaign:
        try:
            cursor = self.db.execute(
                """INSERT INTO campaigns (occasion, year, days_before, send_time, spec,
                       updated_at, name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                [*_spec_columns(spec, year, now), spec.name, to_iso(now)],
            )
        except sqlite3.IntegrityError:
            raise CampaignError(f"a campaign called {spec.name} already exists") from None
        campaign = self.get(cursor.lastrowid or 0)
        assert campaign is not None
        return campaign

    def replace_spec(
        self, campaign: Campaign, spec: CampaignSpec, year: int, now: datetime
    ) -> bool:
        """Edit a draft (only drafts: a started campaign keeps what it was started with)."""
        cursor = self.db.execute(
            """UPDATE campaigns SET occasion = ?, year = ?, days_before = ?, send_time = ?,
                   spec = ?, updated_at = ? WHERE id = ? AND status = 'draft'""",
            [*_spec_columns(spec, year, now), campaign.id],
        )
        return cursor.rowcount == 1

    def get(self, campaign_id: int) -> Campaign | None:
        row = one_row(self.db, "SELECT * FROM campaigns WHERE id = ?", [campaign_id])
        return _campaign(row) if row else None

    def by_name(self, name: str) -> Campaign | None:
        row = one_row(self.db, "SELECT * FROM campaigns WHERE name = ?", [name])
        return _campaign(row) if row else None

    def all(self) -> list[Campaign]:
        return [_campaign(r) for r in self.db.query("SELECT * FROM campaigns ORDER BY id DESC")]

    def live(self) -> list[Campaign]:
        """Campaigns the bot must keep working on: waiting for their window, or sending."""
        return [
            _campaign(r)
            for r in self.db.query(
                "SELECT * FROM campaigns WHERE status IN ('scheduled', 'running') ORDER BY id"
            )
        ]

    def move(
        self,
        campaign_id: int,
        from_status: CampaignStatus,
        to_status: CampaignStatus,
        now: datetime,
        **fields: Any,
    ) -> bool:
        """Change status only if it is still ``from_status`` (a CLI and the bot may race)."""
        sets = ["status = ?", "updated_at = ?", *(f"{k} = ?" for k in fields)]
        values = [to_status.value, to_iso(now), *(_stored(v) for v in fields.values())]
        cursor = self.db.execute(
            f"UPDATE campaigns SET {', '.join(sets)} WHERE id = ? AND status = ?",
            [*values, campaign_id, from_status.value],
        )
        return cursor.rowcount == 1

    def planned(self, campaign_id: int) -> bool:
        """Whether the ledger has been written (the send window opened)."""
        row = one_row(self.db, "SELECT audience_size FROM campaigns WHERE id = ?", [campaign_id])
        return row is not None and row["audience_size"] is not None


def _spec_columns(spec: CampaignSpec, year: int, now: datetime) -> list[Any]:
    """occasion, year, days_before, send_time, spec, updated_at."""
    return [
        spec.occasion,
        year,
        spec.days_before,
        spec.send_time.strftime("%H:%M"),
        spec.to_json(),
        to_iso(now),
    ]


def _stored(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def _delivery(row: dict[str, Any]) -> Delivery:
    return Delivery(
        id=row["id"],
        campaign_id=row["campaign_id"],
        customer_id=row["customer_id"],
        chat_id=row["chat_id"],
        language=row["language"],
        occasion_date=date.fromisoformat(row["occasion_date"]),
        due_at=from_iso(row["due_at"]),
        text=row["text"],
        suggested=tuple(json.loads(row["suggested"])),
        status=DeliveryStatus(row["status"]),
        reason=row["reason"],
        message_id=row["message_id"],
        sent_at=from_iso(row["sent_at"]) if row["sent_at"] else None,
        response=row["response"],
        attempts=row["attempts"],
    )


class _FormattedOnce(dict[Any, str]):
    """``formatter(value)`` remembered per value."""

    def __init__(self, formatter: Callable[[Any], str]) -> None:
        super().__init__()
        self._format = formatter

    def __missing__(self, value: Any) -> str:
        text = self[value] = self._format(value)
        return text


def _id_list(ids: Sequence[int]) -> str:
    """``json.dumps(list(ids))`` for ints, without the encoder's per-call setup."""
    return "[" + ", ".join(map(str, ids)) + "]"


class DeliveryLedger:
    """One row per (campaign, customer), written before anything is sent.

    pending -> sending (claimed, committed before the request) -> sent | failed; a row found
    in ``sending`` after a crash may or may not have reached Telegram: it becomes
    ``uncertain`` and is never sent again (a duplicate is worse than a gap, and is counted).
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def plan(self, campaign_id: int, planned: Sequence[PlannedReminder], now: datetime) -> int:
        """Write a chunk of planned reminders; rows already there (a re-run) are kept."""
        # A plan has a few distinct days and due times for many rows: each formatted once.
        days = _FormattedOnce(date.isoformat)
        dues = _FormattedOnce(to_iso)
        created = to_iso(now)
        rows = [
            (
                campaign_id,
                p.customer_id,
                p.chat_id,
                p.language,
                days[p.occasion_date],
                dues[p.due_at],
                p.text or "",
                _id_list(p.suggested),
                "pending" if p.text is not None else "skipped",
                None if p.text is not None else f"template: {p.problem}",
                created,
            )
            for p in planned
        ]
        with write_transaction(self.db):
            before = self.db.conn.total_changes
            self.db.conn.executemany(
                """INSERT INTO campaign_deliveries (campaign_id, customer_id, chat_id, language,
                       occasion_date, due_at, text, suggested, status, reason, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
                rows,
            )
            return self.db.conn.total_changes - before

    def due(self, campaign_id: int, now: datetime, limit: int) -> list[Delivery]:
        return [
            _delivery(r)
            for r in self.db.query(
                """SELECT * FROM campaign_deliveries
                   WHERE campaign_id = ? AND status = 'pending' AND due_at <= ?
                   ORDER BY due_at, id LIMIT ?""",
                [campaign_id, to_iso(now), limit],
            )
        ]

    def next_due(self, campaign_id: int) -> datetime | None:
        row = one_row(
            self.db,
            """SELECT MIN(due_at) AS due FROM campaign_deliveries
               WHERE campaign_id = ? AND status = 'pending'""",
            [campaign_id],
        )
        return from_iso(row["due"]) if row and row["due"] else None

    def _set(self, delivery_id: int, sets: str, params: Sequence[Any], when: str) -> bool:
        cursor = self.db.execute(
            f"UPDATE campaign_deliveries SET {sets} WHERE id = ? AND {when}",
            [*params, delivery_id],
        )
        return cursor.rowcount == 1

    def claim(self, delivery_id: int) -> bool:
        """pending -> sending, committed before the request goes out; False if taken."""
        return self._set(
            delivery_id, "status = 'sending', attempts = attempts + 1", [], "status = 'pending'"
        )

    def sent(self, delivery_id: int, message_id: int, now: datetime) -> None:
        self._set(
            delivery_id,
            "status = 'sent', message_id = ?, sent_at = ?, reason = NULL",
            [message_id, to_iso(now)],
            "status = 'sending'",
        )

    def failed(self, delivery_id: int, reason: str) -> None:
        self._set(delivery_id, "status = 'failed', reason = ?", [reason], "status = 'sending'")

    def uncertain(self, delivery_id: int, reason: str) -> None:
        self._set(delivery_id, "status = 'uncertain', reason = ?", [reason], "status = 'sending'")

    def skip(self, delivery_id: int, reason: str) -> None:
        self._set(
            delivery_id,
            "status = 'skipped', reason = ?",
            [reason],
            "status IN ('pending', 'sending')",
        )

    def release(self, delivery_id: int, due_at: datetime, reason: str) -> None:
        """Not sent (Telegram refused before accepting it): try again at ``due_at``."""
        self._set(
            delivery_id,
            "status = 'pending', due_at = ?, reason = ?",
            [to_iso(due_at), reason],
            "status = 'sending'",
        )

    def settle_interrupted(self, campaign_id: int) -> int:
        """At start: rows a crash left in ``sending`` may have been sent; never resend them."""
        cursor = self.db.execute(
            """UPDATE campaign_deliveries SET status = 'uncertain',
                   reason = 'interrupted while sending (may have arrived)'
               WHERE campaign_id = ? AND status = 'sending'""",
            [campaign_id],
        )
        return cursor.rowcount

    def cancel_pending(self, campaign_id: int) -> int:
        cursor = self.db.execute(
            """UPDATE campaign_deliveries SET status = 'skipped', reason = 'cancelled'
               WHERE campaign_id = ? AND status = 'pending'""",
            [campaign_id],
        )
        return cursor.rowcount

    def open_count(self, campaign_id: int) -> int:
        row = one_row(
            self.db,
            """SELECT COUNT(*) AS n FROM campaign_deliveries
               WHERE campaign_id = ? AND status IN ('pending', 'sending')""",
            [campaign_id],
        )
        return int(row["n"]) if row else 0

    def counts(self, campaign_id: int) -> dict[str, int]:
        return {
            r["status"]: r["n"]
            for r in self.db.query(
                """SELECT status, COUNT(*) AS n FROM campaign_deliveries
                   WHERE campaign_id = ? GROUP BY status""",
                [campaign_id],
            )
        }

    def of_customer(self, delivery_id: int, customer_id: int) -> Delivery | None:
        """The delivery, only if it is this customer's (callback data is never trusted)."""
        row = one_row(
            self.db,
            "SELECT * FROM campaign_deliveries WHERE id = ? AND customer_id = ?",
            [delivery_id, customer_id],
        )
        return _delivery(row) if row else None

    def click(self, delivery_id: int, now: datetime) -> None:
        self.db.execute(
            """UPDATE campaign_deliveries SET clicks = clicks + 1,
                   first_click_at = COALESCE(first_click_at, ?) WHERE id = ?""",
            [to_iso(now), delivery_id],
        )

    def respond(self, delivery_id: int, response: str, now: datetime) -> bool:
        """Record "not this year" / "stop" once; False if already answered that way."""
        cursor = self.db.execute(
            """UPDATE campaign_deliveries SET response = ?, responded_at = ?
               WHERE id = ? AND (response IS NULL OR response != ?)""",
            [response, to_iso(now), delivery_id, response],
        )
        return cursor.rowcount == 1

    def add_suggested(self, delivery_id: int, product_ids: Sequence[int]) -> None:
        row = one_row(
            self.db, "SELECT suggested FROM campaign_deliveries WHERE id = ?", [delivery_id]
        )
        if row is None:
            return
        shown = [*json.loads(row["suggested"]), *product_ids]
        self.db.execute(
            "UPDATE campaign_deliveries SET suggested = ? WHERE id = ?",
            [json.dumps(shown), delivery_id],
        )


# ------------------------------------------------------------------ the audience query

_CANDIDATE_COLUMNS = """
    c.id AS customer_id, COALESCE(c.telegram_chat_id, c.telegram_user_id) AS chat_id,
    c.first_name, c.last_name, c.language, c.timezone, c.country, c.birthday,
    c.reminders_opt_out AS opted_out, c.blocked, c.banned,
    EXISTS (SELECT 1 FROM tickets t WHERE t.customer_id = c.id AND t.kind = 'complaint'
            AND t.status IN ('open', 'answered', 'reopened')) AS open_complaint,
    (SELECT MAX(d.sent_at) FROM campaign_deliveries d
     WHERE d.customer_id = c.id AND d.status = 'sent') AS last_reminder_at,
    s.segment, COALESCE(s.key_customer, 0) AS key_customer, COALESCE(s.orders, 0) AS orders,
    COALESCE(s.spend, 0) AS spend, s.last_purchase
"""


def _candidate(row: sqlite3.Row | dict[str, Any]) -> Candidate:
    return Candidate(
        customer_id=row["customer_id"],
        chat_id=row["chat_id"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        language=row["language"],
        timezone=row["timezone"],
        country=row["country"],
        birthday=date.fromisoformat(row["birthday"]) if row["birthday"] else None,
        opted_out=bool(row["opted_out"]),
        blocked=bool(row["blocked"]),
        banned=bool(row["banned"]),
        open_complaint=bool(row["open_complaint"]),
        last_reminder_at=from_iso(row["last_reminder_at"]) if row["last_reminder_at"] else None,
        segment=row["segment"],
        key_customer=bool(row["key_customer"]),
        orders=row["orders"],
        spend=row["spend"],
        last_purchase=from_iso(row["last_purchase"]) if row["last_purchase"] else None,
    )


@dataclass
class _Query:
    sql: str
    params: list[Any]


def _audience_query(spec: CampaignSpec, windows: Sequence[Window]) -> _Query:
    rules = spec.audience
    where = ["1"]
    params: list[Any] = []
    hits = "NULL"
    hit_params: list[Any] = []
    if rules.occasion_buyers_days is not None:
        if not windows:
            where.append("0")
        else:
            cases = " ".join(
                f"WHEN o.placed_at >= ? AND o.placed_at < ? THEN {i}" for i in range(len(windows))
            )
            hits = (
                f"(SELECT group_concat(DISTINCT CASE {cases} END) FROM orders o "
                "WHERE o.customer_id = c.id AND o.kind = 'order' "
                "AND o.placed_at >= ? AND o.placed_at < ?)"
            )
            for start, end in windows:
                hit_params += [to_iso(start), to_iso(end)]
            hit_params += [to_iso(min(w[0] for w in windows)), to_iso(max(w[1] for w in windows))]
    if rules.categories:
        marks = ", ".join("?" for _ in rules.categories)
        where.append(
            "EXISTS (SELECT 1 FROM orders o JOIN order_items i ON i.order_id = o.id "
            "JOIN products p ON p.id = i.product_id WHERE o.customer_id = c.id "
            f"AND o.kind = 'order' AND p.category IN ({marks}))"
        )
        params += list(rules.categories)
    if rules.segments:
        where.append(f"s.segment IN ({', '.join('?' for _ in rules.segments)})")
        params += list(rules.segments)
    if rules.key_customers:
        where.append("s.key_customer = 1")
    if rules.min_orders is not None:
        where.append("COALESCE(s.orders, 0) >= ?")
        params.append(rules.min_orders)
    inner = (
        f"SELECT {_CANDIDATE_COLUMNS}, {hits} AS hits FROM customers c "
        "LEFT JOIN customer_stats s ON s.customer_id = c.id "
        f"WHERE {' AND '.join(where)}"
    )
    outer_where = " WHERE hits IS NOT NULL" if rules.occasion_buyers_days is not None else ""
    return _Query(f"SELECT * FROM ({inner}){outer_where} ORDER BY customer_id", hit_params + params)


class AudienceStore:
    """The campaign planner's view of the database (see bot.campaign_service.AudienceSource)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def countries(self) -> list[str | None]:
        return [r["country"] for r in self.db.query("SELECT DISTINCT country FROM customers")]

    def first_order_year(self) -> int | None:
        row = one_row(self.db, "SELECT MIN(placed_at) AS first FROM orders", [])
        return int(row["first"][:4]) if row and row["first"] else None

    def candidates(
        self, spec: CampaignSpec, windows: Sequence[Window], now: datetime
    ) -> Iterator[tuple[Candidate, frozenset[int]]]:
        query = _audience_query(spec, windows)
        cursor = self.db.conn.execute(query.sql, query.params)
        names = [c[0] for c in cursor.description]
        while batch := cursor.fetchmany(1000):
            for values in batch:
                row = dict(zip(names, values, strict=True))
                hits = (
                    frozenset(int(h) for h in row["hits"].split(","))
                    if row["hits"]
                    else frozenset()
                )
                yield _candidate(row), hits

    def said_not_this_year(self, occasion: str, year: int) -> set[int]:
        return {
            r["customer_id"]
            for r in self.db.query(
                """SELECT d.customer_id FROM campaign_deliveries d
                   JOIN campaigns c ON c.id = d.campaign_id
                   WHERE c.occasion = ? AND c.year = ? AND d.response = 'not_this_year'""",
                [occasion, year],
            )
        }

    def purchase_lines(self, customer_ids: Sequence[int]) -> dict[int, list[PurchaseLine]]:
        return purchase_lines(self.db, customer_ids)

    def candidate(self, customer_id: int) -> Candidate | None:
        """One customer as the exclusions see them now (re-checked just before sending)."""
        row = one_row(
            self.db,
            f"""SELECT {_CANDIDATE_COLUMNS} FROM customers c
                LEFT JOIN customer_stats s ON s.customer_id = c.id WHERE c.id = ?""",
            [customer_id],
        )
        return _candidate(row) if row else None


# ------------------------------------------------------------------ report


@dataclass(frozen=True)
class DeliveryTotals:
    """What one campaign's reminders came to: sent and failed, recipients who clicked "Show
    me" (and the clicks in all), and answers "Not this year" and "Stop"."""

    sent: int = 0
    failed: int = 0
    clicked: int = 0
    clicks: int = 0
    not_this_year: int = 0
    opted_out: int = 0


def delivery_totals(
    db: Database, campaign_ids: Sequence[int] | None = None
) -> dict[int, DeliveryTotals]:
    """Per campaign (every one, or those of ``campaign_ids``), in one pass over the ledger;
    campaigns without reminders yet are left out."""
    where, params = "", list(campaign_ids or ())
    if campaign_ids is not None:
        where = f"WHERE campaign_id IN ({', '.join('?' for _ in params)})"
    return {
        r["campaign_id"]: DeliveryTotals(
            r["sent"], r["failed"], r["clicked"], r["clicks"], r["not_this_year"], r["opted_out"]
        )
        for r in db.query(
            f"""SELECT campaign_id, COALESCE(SUM(status = 'sent'), 0) AS sent,
                       COALESCE(SUM(status = 'failed'), 0) AS failed,
                       COALESCE(SUM(clicks > 0), 0) AS clicked, COALESCE(SUM(clicks), 0) AS clicks,
                       COALESCE(SUM(response = 'not_this_year'), 0) AS not_this_year,
                       COALESCE(SUM(response = 'stop'), 0) AS opted_out
                FROM campaign_deliveries {where} GROUP BY campaign_id""",
            params,
        )
    }


@dataclass(frozen=True)
class CampaignReport:
    statuses: dict[str, int]
    skipped: dict[str, int]
    failed: dict[str, int]
    clicked: int
    clicks: int
    not_this_year: int
    opted_out: int
    converted: int
    revenue: float


def campaign_report(db: Database, campaign_id: int, attribution: timedelta) -> CampaignReport:
    """Outcome of one campaign: deliveries, clicks, responses and attributed conversions
    (recipients who ordered within ``attribution`` after their reminder)."""

    def grouped(status: str) -> dict[str, int]:
        return {
            r["reason"] or "": r["n"]
            for r in db.query(
                """SELECT reason, COUNT(*) AS n FROM campaign_deliveries
                   WHERE campaign_id = ? AND status = ? GROUP BY reason ORDER BY n DESC""",
                [campaign_id, status],
            )
        }

    totals = delivery_totals(db, [campaign_id]).get(campaign_id, DeliveryTotals())
    conversions = one_row(
        db,
        """SELECT COUNT(DISTINCT d.customer_id) AS converted, COALESCE(SUM(o.total), 0) AS revenue
           FROM campaign_deliveries d JOIN orders o ON o.customer_id = d.customer_id
           WHERE d.campaign_id = ? AND d.status = 'sent' AND o.kind = 'order'
             AND julianday(o.placed_at) > julianday(d.sent_at)
             AND julianday(o.placed_at) <= julianday(d.sent_at) + ?""",
        [campaign_id, attribution.total_seconds() / 86400],
    )
    assert conversions is not None
    return CampaignReport(
        statuses=DeliveryLedger(db).counts(campaign_id),
        skipped=grouped("skipped"),
        failed=grouped("failed"),
        clicked=totals.clicked,
        clicks=totals.clicks,
        not_this_year=totals.not_this_year,
        opted_out=totals.opted_out,
        converted=conversions["converted"],
        revenue=round(conversions["revenue"], 2),
    )


class CustomOccasionRepository:
    """Occasions an admin adds (a shop's anniversary...), beside the built-in calendar."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def all(self) -> list[CustomOccasion]:
        return [
            parse_custom_occasion(
                r["name"], r["rule"], label=r["label"], by_country=json.loads(r["by_country"])
            )
            for r in self.db.query("SELECT * FROM custom_occasions ORDER BY name")
        ]

    def save(self, occasion: CustomOccasion, now: datetime) -> None:
        self.db.execute(
            """INSERT INTO custom_occasions (name, label, rule, by_country, updated_at)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET label = excluded.label, rule = excluded.rule,
                   by_country = excluded.by_country, updated_at = excluded.updated_at""",
            [
                occasion.name,
                occasion.label,
                str(occasion.rule),
                json.dumps({code: str(rule) for code, rule in occasion.by_country}),
                to_iso(now),
            ],
        )

    def remove(self, name: str) -> bool:
        cursor = self.db.execute("DELETE FROM custom_occasions WHERE name = ?", [name])
        return cursor.rowcount == 1


@dataclass(frozen=True)
class CampaignStores:
    """What the bot's campaign handlers read and write."""

    campaigns: CampaignRepository
    ledger: DeliveryLedger
    audience: AudienceStore

    @classmethod
    def over(cls, db: Database) -> CampaignStores:
        return cls(CampaignRepository(db), DeliveryLedger(db), AudienceStore(db))
