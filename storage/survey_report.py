"""Reads for the survey report: surveys sent in a period, with their order's or ticket's
category."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.clock import from_iso, to_iso
from bot.survey_report import SurveyRecord
from bot.surveys import SurveyKind

# A purchase survey's category: the most common one among the order's product lines (ties:
# the first by name); lines without a categorised product do not count.
_CATEGORY = """
    CASE s.kind
        WHEN 'purchase' THEN (
            SELECT p.category FROM order_items i JOIN products p ON p.id = i.product_id
            WHERE i.order_id = s.order_id AND i.is_product = 1
              AND p.category IS NOT NULL AND p.category != ''
            GROUP BY p.category ORDER BY count(*) DESC, p.category LIMIT 1)
        ELSE (SELECT t.category FROM tickets t WHERE t.id = s.ticket_id)
    END"""


def _record(row: dict[str, Any]) -> SurveyRecord:
    return SurveyRecord(
        kind=row["kind"],
        sent_at=from_iso(row["sent_at"]),
        score=row["score"],
        nps=row["nps"],
        staff_name=row["staff_name"],
        category=row["category"],
    )


def surveys_sent(
    db: Database, since: datetime, until: datetime | None, kind: SurveyKind | None = None
) -> list[SurveyRecord]:
    """Surveys sent in [since, until) (no upper bound if ``until`` is None), oldest first;
    only those of ``kind`` if given. Answered or not, expired included."""
    where, params = "s.sent_at IS NOT NULL AND s.sent_at >= ?", [to_iso(since)]
    if until is not None:
        where += " AND s.sent_at < ?"
        params.append(to_iso(until))
    if kind is not None:
        where += " AND s.kind = ?"
        params.append(kind.value)
    rows = db.query(
        f"""SELECT s.kind, s.sent_at, s.score, s.nps, s.staff_name, {_CATEGORY} AS category
            FROM surveys s WHERE {where} ORDER BY s.sent_at, s.id""",
        params,
    )
    return [_record(r) for r in rows]
