"""Ticket reports: counts, response and resolution times, SLA breaches, per staff member.

Pure computation over ticket records loaded by storage. Times are measured twice: in
business time (support hours in the shop's timezone, minus holidays: what the SLA targets
count) and in wall-clock time (what the customer lived through).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.sla import BusinessCalendar
from bot.tickets import TicketKind, TicketStatus

UNKNOWN_STAFF = "(unknown)"


@dataclass(frozen=True)
class TicketRecord:
    """What a report needs of one ticket."""

    created_at: datetime
    status: str
    kind: str
    priority: str
    category: str | None = None
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    first_responder_name: str | None = None
    resolved_by_name: str | None = None
    first_response_breached_at: datetime | None = None
    resolution_breached_at: datetime | None = None

    @property
    def topic(self) -> str:
        """The category, or what an uncategorised ticket is: an inquiry, or "uncategorised"."""
        if self.category:
            return self.category
        return TicketKind.INQUIRY.value if self.kind == TicketKind.INQUIRY else "uncategorised"


@dataclass(frozen=True)
class DurationStats:
    """Median and 90th percentile of a set of durations, in business and wall-clock time."""

    count: int
    business_median: timedelta | None = None
    business_p90: timedelta | None = None
    wall_median: timedelta | None = None
    wall_p90: timedelta | None = None

    @classmethod
    def of(cls, pairs: Sequence[tuple[timedelta, timedelta]]) -> DurationStats:
        """From (business, wall-clock) durations; all None when there are none."""
        business = [b for b, _ in pairs]
        wall = [w for _, w in pairs]
        return cls(
            count=len(pairs),
            business_median=median(business),
            business_p90=percentile(business, 90),
            wall_median=median(wall),
            wall_p90=percentile(wall, 90),
        )


@dataclass(frozen=True)
class StaffRow:
    name: str
    first_answered: int
    resolved: int
    median_first_response: timedelta | None  # business time, of the tickets they first answered


@dataclass(frozen=True)
class TicketReport:
    total: int
    by_status: dict[str, int]
    by_kind: dict[str, int]
    by_topic: dict[str, int]
    first_response: DurationStats
    resolution: DurationStats
    first_response_breaches: int
    resolution_breaches: int
    staff: tuple[StaffRow, ...]

    @property
    def empty(self) -> bool:
        return self.total == 0


def median(values: Iterable[timedelta]) -> timedelta | None:
    """The middle value (mean of the two middle ones for an even count); None if no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def percentile(values: Iterable[timedelta], p: float) -> timedelta | None:
    """Nearest-rank percentile: the smallest value with at least p% of values at or below it."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[rank - 1]


def build_report(records: Sequence[TicketRecord], calendar: BusinessCalendar) -> TicketReport:
    def durations(start: datetime, end: datetime) -> tuple[timedelta, timedelta]:
        return calendar.elapsed(start, end), max(end - start, timedelta(0))

    first: list[tuple[timedelta, timedelta]] = []
    resolution: list[tuple[timedelta, timedelta]] = []
    answered_by: dict[str, list[timedelta]] = {}
    resolved_by: Counter[str] = Counter()
    for r in records:
        if r.first_response_at is not None:
            first.append(durations(r.created_at, r.first_response_at))
            name = r.first_responder_name or UNKNOWN_STAFF
            answered_by.setdefault(name, []).append(first[-1][0])
        if r.resolved_at is not None:
            resolution.append(durations(r.created_at, r.resolved_at))
            resolved_by[r.resolved_by_name or UNKNOWN_STAFF] += 1

    staff = tuple(
        StaffRow(
            name=name,
            first_answered=len(answered_by.get(name, [])),
            resolved=resolved_by[name],
            median_first_response=median(answered_by.get(name, [])),
        )
        for name in sorted(set(answered_by) | set(resolved_by), key=str.casefold)
    )
    statuses = Counter(r.status for r in records)
    kinds = Counter(r.kind for r in records)
    return TicketReport(
        total=len(records),
        # Every status and kind in their natural order (zeros included); topics by count.
        by_status={s.value: statuses[s.value] for s in TicketStatus},
        by_kind={k.value: kinds[k.value] for k in TicketKind},
        by_topic=dict(
            sorted(Counter(r.topic for r in records).items(), key=lambda kv: (-kv[1], kv[0]))
        ),
        first_response=DurationStats.of(first),
        resolution=DurationStats.of(resolution),
        first_response_breaches=sum(r.first_response_breached_at is not None for r in records),
        resolution_breaches=sum(r.resolution_breached_at is not None for r in records),
        staff=staff,
    )


def format_duration(duration: timedelta | None) -> str:
    """ "45m", "1h 05m", "2d 3h" (days of 24 hours; seconds rounded to the minute); "-" if None."""
    if duration is None:
        return "-"
    minutes = round(duration.total_seconds() / 60)
    if minutes < 0:
        return "-" + format_duration(timedelta(minutes=-minutes))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"
