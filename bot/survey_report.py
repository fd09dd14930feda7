"""Survey reports: response rate, average score, CSAT, score distribution and NPS, grouped.

Pure computation over survey records loaded by storage. A survey counts in the period it
was sent in; it is answered once it has a score (whenever that came). CSAT is the share of
4 and 5 among the scores; NPS is the percentage of promoters (9-10) minus the percentage of
detractors (0-6) among the NPS follow-up answers. Figures from fewer than
``RELIABLE_ANSWERS`` answers are flagged as a small sample.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.surveys import SurveyKind
from bot.tickets import TicketKind

RELIABLE_ANSWERS = 30
UNCATEGORISED = "uncategorised"
UNKNOWN_STAFF = "(unknown)"
NOT_STAFF = "-"  # the staff "group" of purchase surveys


class GroupBy(StrEnum):
    WEEK = "week"
    MONTH = "month"
    CATEGORY = "category"
    STAFF = "staff"


@dataclass(frozen=True)
class SurveyRecord:
    """What a report needs of one sent survey."""

    kind: str
    sent_at: datetime
    score: int | None = None
    nps: int | None = None
    staff_name: str | None = None
    # Purchase: the most common product category of the order; support: the ticket's.
    category: str | None = None

    @property
    def topic(self) -> str:
        """The category, or "uncategorised" (purchase) / "inquiry" (support) without one."""
        if self.category:
            return self.category
        return TicketKind.INQUIRY.value if self.kind == SurveyKind.SUPPORT else UNCATEGORISED

    @property
    def staff(self) -> str:
        if self.kind != SurveyKind.SUPPORT:
            return NOT_STAFF
        return self.staff_name or UNKNOWN_STAFF

    def week(self, tz: ZoneInfo) -> str:
        """The ISO week it was sent in, in ``tz``: "2026-W48"."""
        year, week, _ = self.sent_at.astimezone(tz).isocalendar()
        return f"{year}-W{week:02d}"

    def month(self, tz: ZoneInfo) -> str:
        """The calendar month it was sent in, in ``tz``: "2026-11"."""
        return self.sent_at.astimezone(tz).strftime("%Y-%m")


@dataclass(frozen=True)
class SurveyStats:
    sent: int
    answered: int
    scores: tuple[int, int, int, int, int]  # how many answered 1, 2, 3, 4, 5
    nps_answers: int
    promoters: int  # NPS 9-10
    detractors: int  # NPS 0-6

    @classmethod
    def of(cls, records: Iterable[SurveyRecord]) -> SurveyStats:
        records = list(records)
        scores = Counter(r.score for r in records if r.score is not None)
        nps = [r.nps for r in records if r.nps is not None]
        return cls(
            sent=len(records),
            answered=sum(scores.values()),
            scores=(scores[1], scores[2], scores[3], scores[4], scores[5]),
            nps_answers=len(nps),
            promoters=sum(v >= 9 for v in nps),
            detractors=sum(v <= 6 for v in nps),
        )

    @property
    def response_rate(self) -> float | None:
        """Answered / sent, 0..1; None if nothing was sent."""
        return self.answered / self.sent if self.sent else None

    @property
    def average_score(self) -> float | None:
        if not self.answered:
            return None
        return sum(n * count for n, count in enumerate(self.scores, start=1)) / self.answered

    @property
    def csat(self) -> float | None:
        """Share of 4 and 5 among the answers, 0..1; None without answers."""
        return (self.scores[3] + self.scores[4]) / self.answered if self.answered else None

    @property
    def nps(self) -> float | None:
        """Net Promoter Score, -100..100; None without NPS answers."""
        if not self.nps_answers:
            return None
        return 100 * (self.promoters - self.detractors) / self.nps_answers

    @property
    def small_sample(self) -> bool:
        return self.answered < RELIABLE_ANSWERS


@dataclass(frozen=True)
class SurveyGroup:
    name: str
    stats: SurveyStats


@dataclass(frozen=True)
class SurveyReport:
    by: GroupBy | None
    groups: tuple[SurveyGroup, ...]  # empty when not grouped
    total: SurveyStats

    @property
    def empty(self) -> bool:
        return self.total.sent == 0


def build_survey_report(
    records: Sequence[SurveyRecord], by: GroupBy | None, tz: ZoneInfo
) -> SurveyReport:
    """Figures for all ``records`` and, with ``by``, per group (in a stable, useful order)."""
    groups: tuple[SurveyGroup, ...] = ()
    if by is not None:
        key: Callable[[SurveyRecord], str] = {
            GroupBy.WEEK: lambda r: r.week(tz),
            GroupBy.MONTH: lambda r: r.month(tz),
            GroupBy.CATEGORY: lambda r: r.topic,
            GroupBy.STAFF: lambda r: r.staff,
        }[by]
        members: dict[str, list[SurveyRecord]] = {}
        for r in records:
            members.setdefault(key(r), []).append(r)
        groups = tuple(
            SurveyGroup(name, SurveyStats.of(members[name])) for name in _ordered(members, by)
        )
    return SurveyReport(by=by, groups=groups, total=SurveyStats.of(records))


def _ordered(members: dict[str, list[SurveyRecord]], by: GroupBy) -> list[str]:
    """Weeks and months in time order, staff by name, categories by surveys sent (most first)."""
    if by in (GroupBy.WEEK, GroupBy.MONTH):
        return sorted(members)
    if by == GroupBy.STAFF:
        return sorted(members, key=lambda name: (name.casefold(), name))
    return sorted(members, key=lambda name: (-len(members[name]), name))
