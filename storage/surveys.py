"""Survey invitations: planned, claimed, sent, answered, with their follow-up."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlite_utils import Database

from bot.clock import from_iso, to_iso
from bot.surveys import Recipient, Survey, SurveyKind, SurveyStatus
from storage.repositories import one_row

_TIMES = ("due_at", "created_at", "sent_at", "expires_at", "answered_at")
_PLAIN = (
    "id",
    "customer_id",
    "order_id",
    "ticket_id",
    "staff_id",
    "staff_name",
    "chat_id",
    "message_id",
    "score",
    "followup",
    "comment",
    "nps",
    "recovery_ticket_id",
    "skip_reason",
)


def _survey(row: dict[str, Any]) -> Survey:
    times: dict[str, Any] = {k: from_iso(row[k]) if row[k] else None for k in _TIMES}
    return Survey(
        kind=SurveyKind(row["kind"]),
        status=SurveyStatus(row["status"]),
        **times,
        **{k: row[k] for k in _PLAIN},
    )


class SurveyRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        *,
        customer_id: int,
        kind: SurveyKind,
        due_at: datetime,
        now: datetime,
        order_id: int | None = None,
        ticket_id: int | None = None,
        staff_id: int | None = None,
        staff_name: str | None = None,
    ) -> Survey | None:
        """Plan an invitation; None if that order (or ticket) already has one."""
        cursor = self.db.execute(
            """INSERT INTO surveys (customer_id, kind, order_id, ticket_id, staff_id, staff_name,
                   due_at, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
            [
                customer_id,
                kind.value,
                order_id,
                ticket_id,
                staff_id,
                staff_name,
                to_iso(due_at),
                to_iso(now),
            ],
        )
        return self.get(cursor.lastrowid or 0) if cursor.rowcount == 1 else None

    def get(self, survey_id: int) -> Survey | None:
        row = one_row(self.db, "SELECT * FROM surveys WHERE id = ?", [survey_id])
        return _survey(row) if row else None

    def scheduled(self) -> list[Survey]:
        rows = self.db.query("SELECT * FROM surveys WHERE status = 'scheduled' ORDER BY due_at")
        return [_survey(r) for r in rows]

    def reschedule(self, survey_id: int, due_at: datetime) -> None:
        self.db.execute(
            "UPDATE surveys SET due_at = ? WHERE id = ? AND status = 'scheduled'",
            [to_iso(due_at), survey_id],
        )

    def skip(self, survey_id: int, reason: str) -> None:
        self.db.execute(
            """UPDATE surveys SET status = 'skipped', skip_reason = ?
               WHERE id = ? AND status = 'scheduled'""",
            [reason, survey_id],
        )

    def claim(self, survey_id: int) -> bool:
        """Take the invitation for sending, once: after a crash it is never sent again."""
        cursor = self.db.execute(
            "UPDATE surveys SET status = 'sending' WHERE id = ? AND status = 'scheduled'",
            [survey_id],
        )
        return cursor.rowcount == 1

    def sent(
        self, survey_id: int, chat_id: int, message_id: int, now: datetime, expires: datetime
    ) -> None:
        self.db.execute(
            """UPDATE surveys SET status = 'sent', chat_id = ?, message_id = ?, sent_at = ?,
                   expires_at = ? WHERE id = ?""",
            [chat_id, message_id, to_iso(now), to_iso(expires), survey_id],
        )

    def failed(self, survey_id: int, reason: str) -> None:
        self.db.execute(
            "UPDATE surveys SET status = 'skipped', skip_reason = ? WHERE id = ?",
            [reason, survey_id],
        )

    def record_score(self, survey_id: int, score: int, followup: str | None, now: datetime) -> bool:
        cursor = self.db.execute(
            """UPDATE surveys SET status = 'answered', score = ?, followup = ?, answered_at = ?
               WHERE id = ? AND status = 'sent'""",
            [score, followup, to_iso(now), survey_id],
        )
        return cursor.rowcount == 1

    def record_followup(
        self, survey_id: int, *, comment: str | None, nps: int | None, now: datetime
    ) -> bool:
        cursor = self.db.execute(
            """UPDATE surveys SET comment = COALESCE(?, comment), nps = COALESCE(?, nps),
                   followup_at = ? WHERE id = ?""",
            [comment, nps, to_iso(now), survey_id],
        )
        return cursor.rowcount == 1

    def set_recovery(self, survey_id: int, ticket_id: int) -> None:
        self.db.execute(
            "UPDATE surveys SET recovery_ticket_id = ? WHERE id = ?", [ticket_id, survey_id]
        )

    def awaiting_comment(self, customer_id: int, since: datetime) -> Survey | None:
        """The survey whose "what went wrong?" the customer's next text answers, if any."""
        row = one_row(
            self.db,
            """SELECT * FROM surveys WHERE customer_id = ? AND followup = 'comment'
               AND comment IS NULL AND answered_at >= ? ORDER BY answered_at DESC LIMIT 1""",
            [customer_id, to_iso(since)],
        )
        return _survey(row) if row else None

    def recipient(self, customer_id: int) -> Recipient | None:
        row = one_row(  # one statement: a consistent read of the three tables
            self.db,
            """SELECT c.timezone, c.surveys_opt_out, c.banned, c.blocked,
                          c.telegram_user_id,
                          (SELECT count(*) FROM tickets t WHERE t.customer_id = c.id
                             AND t.status IN ('open', 'answered', 'reopened')) AS open_tickets,
                          (SELECT max(sent_at) FROM surveys s WHERE s.customer_id = c.id
                             AND s.kind = 'purchase') AS last_sent
                   FROM customers c WHERE c.id = ?""",
            [customer_id],
        )
        if row is None:
            return None
        return Recipient(
            customer_id=customer_id,
            timezone=row["timezone"],
            opted_out=bool(row["surveys_opt_out"]),
            banned=bool(row["banned"]),
            blocked=bool(row["blocked"]),
            has_chat=row["telegram_user_id"] is not None,
            has_open_ticket=row["open_tickets"] > 0,
            last_survey_sent=from_iso(row["last_sent"]) if row["last_sent"] else None,
        )
