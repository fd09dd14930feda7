"""Reads for the dashboard's overview and survey pages that the existing reports do not make:
tickets open right now, at-risk customers, recent campaigns, survey answers worth reading.

The headline figures themselves (CSAT, NPS, SLA, first response) come from the same report
functions the CLI uses (``storage.reports``, ``storage.survey_report``); these are the lists
and counts around them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.campaigns import CampaignStatus
from bot.clock import from_iso, to_iso
from bot.segments import Segment
from bot.tickets import ACTIVE_STATUSES
from storage.campaigns import CampaignRepository, DeliveryTotals, delivery_totals
from storage.reports import customer_labels
from storage.repositories import one_row


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


def _time(value: str | None) -> datetime | None:
    return from_iso(value) if value else None


def _customer_names(db: Database, rows: list[dict[str, Any]]) -> dict[int, str]:
    """How the reports label the rows' customers (name and shop id), by customer id."""
    labels = customer_labels(db, (r["customer_id"] for r in rows))
    return {customer_id: str(label) for customer_id, label in labels.items()}


def open_ticket_counts(db: Database) -> dict[str, int]:
    """Tickets in each active state (open, answered, reopened) now, zeros included."""
    rows = db.query(
        f"""SELECT status, count(*) AS n FROM tickets WHERE status IN ({_marks(ACTIVE_STATUSES)})
            GROUP BY status""",
        list(ACTIVE_STATUSES),
    )
    found = {r["status"]: r["n"] for r in rows}
    return {s.value: int(found.get(s.value, 0)) for s in ACTIVE_STATUSES}


@dataclass(frozen=True)
class BreachedTicket:
    id: int
    subject: str
    status: str
    priority: str
    customer: str
    first_response_breached_at: datetime | None
    resolution_breached_at: datetime | None


def breached_open_tickets(db: Database) -> list[BreachedTicket]:
    """Active tickets that missed an SLA target, most recent breach first."""
    rows = list(
        db.query(
            f"""SELECT id, subject, status, priority, customer_id, first_response_breached_at,
                       resolution_breached_at FROM tickets
                WHERE status IN ({_marks(ACTIVE_STATUSES)})
                  AND (first_response_breached_at IS NOT NULL
                       OR resolution_breached_at IS NOT NULL)
                ORDER BY max(coalesce(first_response_breached_at, ''),
                             coalesce(resolution_breached_at, '')) DESC, id DESC""",
            list(ACTIVE_STATUSES),
        )
    )
    names = _customer_names(db, rows)
    return [
        BreachedTicket(
            id=r["id"],
            subject=r["subject"] or "",
            status=r["status"],
            priority=r["priority"],
            customer=names.get(r["customer_id"], ""),
            first_response_breached_at=_time(r["first_response_breached_at"]),
            resolution_breached_at=_time(r["resolution_breached_at"]),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class SegmentCustomer:
    customer_id: int
    name: str
    orders: int
    spend: float
    last_purchase: datetime | None
    key_customer: bool


def customers_in_segment(db: Database, segment: Segment, limit: int) -> list[SegmentCustomer]:
    """The segment's customers as last computed, biggest spenders first (the ones most worth
    winning back)."""
    rows = list(
        db.query(
            """SELECT customer_id, orders, spend, last_purchase, key_customer
               FROM customer_stats WHERE segment = ?
               ORDER BY spend DESC, customer_id LIMIT ?""",
            [segment.value, limit],
        )
    )
    names = _customer_names(db, rows)
    return [
        SegmentCustomer(
            customer_id=r["customer_id"],
            name=names.get(r["customer_id"], ""),
            orders=r["orders"],
            spend=r["spend"],
            last_purchase=_time(r["last_purchase"]),
            key_customer=bool(r["key_customer"]),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class CampaignLine:
    id: int
    name: str
    occasion: str
    status: CampaignStatus
    created_at: datetime
    audience: int | None
    totals: DeliveryTotals  # sent, recipients who clicked... (as in the campaign report)


def recent_campaigns(db: Database, limit: int = 5) -> list[CampaignLine]:
    """The latest campaigns with what they sent and how many recipients clicked."""
    campaigns = CampaignRepository(db).all()[:limit]
    totals = delivery_totals(db, [c.id for c in campaigns])
    return [
        CampaignLine(
            id=c.id,
            name=c.spec.name,
            occasion=c.spec.occasion,
            status=c.status,
            created_at=c.created_at,
            audience=c.audience_size,
            totals=totals.get(c.id, DeliveryTotals()),
        )
        for c in campaigns
    ]


@dataclass(frozen=True)
class SurveyAnswer:
    """One answered survey as the survey page lists it."""

    survey_id: int
    kind: str
    customer_id: int
    customer: str
    score: int | None
    nps: int | None
    comment: str | None
    answered_at: datetime | None
    recovery_ticket_id: int | None
    recovery_status: str | None


_ANSWER_COLUMNS = """s.id, s.kind, s.customer_id, s.score, s.nps, s.comment, s.answered_at,
    s.followup_at, s.recovery_ticket_id, t.status AS recovery_status"""


def _answers(db: Database, rows: list[dict[str, Any]]) -> list[SurveyAnswer]:
    names = _customer_names(db, rows)
    return [
        SurveyAnswer(
            survey_id=r["id"],
            kind=r["kind"],
            customer_id=r["customer_id"],
            customer=names.get(r["customer_id"], ""),
            score=r["score"],
            nps=r["nps"],
            comment=r["comment"],
            answered_at=_time(r["followup_at"] or r["answered_at"]),
            recovery_ticket_id=r["recovery_ticket_id"],
            recovery_status=r["recovery_status"],
        )
        for r in rows
    ]


def recovery_answers(db: Database, since: datetime, limit: int) -> tuple[int, list[SurveyAnswer]]:
    """Surveys sent since ``since`` whose answer opened a service-recovery ticket: how many,
    and the latest ``limit`` of them."""
    where = "s.sent_at >= ? AND s.recovery_ticket_id IS NOT NULL"
    count = one_row(db, f"SELECT count(*) AS n FROM surveys s WHERE {where}", [to_iso(since)])
    rows = list(
        db.query(
            f"""SELECT {_ANSWER_COLUMNS} FROM surveys s
                LEFT JOIN tickets t ON t.id = s.recovery_ticket_id
                WHERE {where} ORDER BY s.answered_at DESC, s.id DESC LIMIT ?""",
            [to_iso(since), limit],
        )
    )
    return (int(count["n"]) if count else 0), _answers(db, rows)


def recent_comments(db: Database, since: datetime, limit: int) -> list[SurveyAnswer]:
    """Follow-up comments on surveys sent since ``since``, newest first."""
    rows = list(
        db.query(
            f"""SELECT {_ANSWER_COLUMNS} FROM surveys s
                LEFT JOIN tickets t ON t.id = s.recovery_ticket_id
                WHERE s.sent_at >= ? AND s.comment IS NOT NULL AND s.comment != ''
                ORDER BY coalesce(s.followup_at, s.answered_at) DESC, s.id DESC LIMIT ?""",
            [to_iso(since), limit],
        )
    )
    return _answers(db, rows)
