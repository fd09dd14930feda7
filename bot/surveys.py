"""Satisfaction micro-surveys: after a delivery (or purchase) and after support.

Satisfaction is perceived value against expectation, so it is asked where it happens, in
one tap, and a bad answer is acted on at once (a service-recovery ticket). Courtesy rules
decide when an invitation may go out: the customer's daytime, a frequency cap, never twice
for one order, never to opted-out, banned or blocked customers or ones with an open ticket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo


class SurveyKind(StrEnum):
    PURCHASE = "purchase"
    SUPPORT = "support"


class SurveyStatus(StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"  # claimed for sending: never sent a second time
    SENT = "sent"
    ANSWERED = "answered"
    EXPIRED = "expired"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Survey:
    id: int
    customer_id: int
    kind: SurveyKind
    status: SurveyStatus
    due_at: datetime
    created_at: datetime
    order_id: int | None = None
    ticket_id: int | None = None
    staff_id: int | None = None
    staff_name: str | None = None
    sent_at: datetime | None = None
    expires_at: datetime | None = None
    chat_id: int | None = None
    message_id: int | None = None
    score: int | None = None
    answered_at: datetime | None = None
    followup: str | None = None
    comment: str | None = None
    nps: int | None = None
    recovery_ticket_id: int | None = None
    skip_reason: str | None = None


@dataclass(frozen=True)
class QuietHours:
    """Local hours when no survey is sent ("21:00-09:00" wraps past midnight)."""

    start: time = time(21, 0)
    end: time = time(9, 0)

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def next_allowed(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """``moment`` if it is daytime for the customer, else the next morning's end of quiet."""
        local = moment.astimezone(zone)
        if not self.contains(local.time()):
            return moment
        day = local.date()
        if self.start > self.end and local.time() >= self.start:
            day += timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=zone)


_QUIET = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_quiet_hours(text: str) -> QuietHours:
    match = _QUIET.match(text)
    if not match:
        raise ValueError(f'{text!r} is not a span like "21:00-09:00"')
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59 or (h1, m1) == (h2, m2):
        raise ValueError(f'{text!r} is not a span like "21:00-09:00"')
    return QuietHours(time(h1, m1), time(h2, m2))


@dataclass(frozen=True)
class SurveySettings:
    enabled: bool = True
    delay: timedelta = timedelta(days=3)
    send_after: str = "delivered"  # or "placed", for shops that send no delivery events
    quiet_hours: QuietHours = QuietHours()
    min_gap: timedelta = timedelta(days=14)
    expire_after: timedelta = timedelta(days=7)
    followup_max_score: int = 3
    recovery_max_score: int = 2
    nps_share: float = 0.3
    after_support: bool = True


@dataclass(frozen=True)
class Recipient:
    """What the courtesy rules need to know about the customer."""

    customer_id: int
    timezone: str | None
    opted_out: bool
    banned: bool
    blocked: bool
    has_chat: bool
    has_open_ticket: bool
    last_survey_sent: datetime | None


class Decision(StrEnum):
    SEND = "send"
    WAIT = "wait"
    SKIP = "skip"


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    at: datetime | None = None  # WAIT: when to try again
    reason: str | None = None  # SKIP: why


class AnswerOutcome(StrEnum):
    RECORDED = "recorded"
    ALREADY = "already"  # a second tap changes nothing
    CLOSED = "closed"  # expired, or never sent
    NOT_YOURS = "not_yours"


@dataclass(frozen=True)
class Answer:
    outcome: AnswerOutcome
    survey: Survey | None = None
    followup: str | None = None  # "comment" | "nps" | None
    recover: bool = False  # open a service-recovery ticket


class SurveyStore(Protocol):
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
    ) -> Survey | None: ...
    def get(self, survey_id: int) -> Survey | None: ...
    def record_score(
        self, survey_id: int, score: int, followup: str | None, now: datetime
    ) -> bool: ...
    def record_followup(
        self, survey_id: int, *, comment: str | None, nps: int | None, now: datetime
    ) -> bool: ...


# Words that make a follow-up comment read like a complaint (English and Chinese).
_COMPLAINT_WORDS = re.compile(
    r"\b(broken|damaged|smashed|cracked|late|never (?:came|arrived)|not arrived|missing|wrong|"
    r"refund|return|rude|terrible|awful|worst|disappoint\w*|complain\w*|faulty|defect\w*)\b"
    r"|坏|破|损|迟到|没收到|未收到|少了|缺少|错|退款|退货|差|投诉|失望",
    re.IGNORECASE,
)


def reads_like_complaint(text: str) -> bool:
    return bool(_COMPLAINT_WORDS.search(text))


def asks_nps(survey_id: int, share: float) -> bool:
    """A stable pseudo-random share of surveys (so a retry asks the same thing)."""
    return (survey_id * 2654435761 % 1000) / 1000 < share


class SurveyService:
    def __init__(self, store: SurveyStore, settings: SurveySettings, shop_timezone: str) -> None:
        self.store = store
        self.settings = settings
        self.shop_zone = ZoneInfo(shop_timezone)

    def plan_purchase(
        self, customer_id: int, order_id: int, status: str, happened_at: datetime, now: datetime
    ) -> Survey | None:
        """An invitation for one order when it reaches the status surveys follow
        (``send_after``); None otherwise, if surveys are off, or if the order has one."""
        if not self.settings.enabled or status != self.settings.send_after:
            return None
        return self.store.create(
            customer_id=customer_id,
            kind=SurveyKind.PURCHASE,
            order_id=order_id,
            due_at=max(happened_at + self.settings.delay, now),
            now=now,
        )

    def plan_support(
        self, customer_id: int, ticket_id: int, staff_id: int | None, staff_name: str, now: datetime
    ) -> Survey | None:
        if not (self.settings.enabled and self.settings.after_support):
            return None
        return self.store.create(
            customer_id=customer_id,
            kind=SurveyKind.SUPPORT,
            ticket_id=ticket_id,
            staff_id=staff_id,
            staff_name=staff_name,
            due_at=now,
            now=now,
        )

    def verdict(self, survey: Survey, who: Recipient, now: datetime) -> Verdict:
        """May this invitation go out now? (Checked when it is due, not when planned.)"""
        if survey.status != SurveyStatus.SCHEDULED:
            return Verdict(Decision.SKIP, reason="not_scheduled")
        if who.banned or who.blocked or not who.has_chat:
            return Verdict(Decision.SKIP, reason="unreachable")
        if who.opted_out:
            return Verdict(Decision.SKIP, reason="opted_out")
        if survey.kind == SurveyKind.PURCHASE and who.has_open_ticket:
            return Verdict(Decision.SKIP, reason="open_ticket")
        last = who.last_survey_sent
        if survey.kind == SurveyKind.PURCHASE and last and now - last < self.settings.min_gap:
            return Verdict(Decision.SKIP, reason="frequency_cap")
        zone = ZoneInfo(who.timezone) if who.timezone else self.shop_zone
        allowed = self.settings.quiet_hours.next_allowed(now, zone)
        if allowed > now:
            return Verdict(Decision.WAIT, at=allowed)
        return Verdict(Decision.SEND)

    def expires(self, sent_at: datetime) -> datetime:
        return sent_at + self.settings.expire_after

    def answer(self, survey_id: int, customer_id: int, score: int, now: datetime) -> Answer:
        """A tap on 1-5: only the customer's own, sent, unexpired survey, and only once."""
        survey = self.store.get(survey_id)
        if survey is None or survey.customer_id != customer_id or not 1 <= score <= 5:
            return Answer(AnswerOutcome.NOT_YOURS)
        if survey.status == SurveyStatus.ANSWERED:
            return Answer(AnswerOutcome.ALREADY, survey)
        if survey.status != SurveyStatus.SENT or (
            survey.expires_at is not None and now >= survey.expires_at
        ):
            return Answer(AnswerOutcome.CLOSED, survey)
        followup: str | None = None
        if score <= self.settings.followup_max_score:
            followup = "comment"
        elif survey.kind == SurveyKind.PURCHASE and asks_nps(survey.id, self.settings.nps_share):
            followup = "nps"
        if not self.store.record_score(survey.id, score, followup, now):
            return Answer(AnswerOutcome.ALREADY, survey)
        return Answer(
            AnswerOutcome.RECORDED,
            self.store.get(survey.id),
            followup,
            recover=score <= self.settings.recovery_max_score,
        )

    def comment(self, survey: Survey, text: str, now: datetime) -> bool:
        """The free-text follow-up; True if it should open a recovery ticket."""
        self.store.record_followup(survey.id, comment=text, nps=None, now=now)
        low = survey.score is not None and survey.score <= self.settings.recovery_max_score
        return not low and survey.recovery_ticket_id is None and reads_like_complaint(text)

    def nps(self, survey_id: int, customer_id: int, value: int, now: datetime) -> Answer:
        survey = self.store.get(survey_id)
        if survey is None or survey.customer_id != customer_id or not 0 <= value <= 10:
            return Answer(AnswerOutcome.NOT_YOURS)
        if survey.followup != "nps" or survey.nps is not None:
            return Answer(AnswerOutcome.ALREADY, survey)
        self.store.record_followup(survey.id, comment=None, nps=value, now=now)
        return Answer(AnswerOutcome.RECORDED, self.store.get(survey.id))
