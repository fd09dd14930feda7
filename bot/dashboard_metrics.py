"""Figures the dashboard shows over time, computed by the same code as the reports.

Periods are whole days in the shop's timezone, so a dashboard figure "since 25 Oct" is what
``carebot report surveys --since 2026-10-25`` (or ``report tickets``) prints. Trends are the
survey report's :class:`SurveyStats` per ISO week or calendar month (the report's own
``--by week`` and ``--by month`` groupings), with empty buckets kept so a quiet week shows as a gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.survey_report import GroupBy, SurveyRecord, SurveyStats, build_survey_report

NO_SURVEYS = SurveyStats.of([])


def day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz)


def period_start(now: datetime, tz: ZoneInfo, days: int) -> datetime:
    """Midnight (shop time) that starts the last ``days`` days, today included."""
    return day_start(now.astimezone(tz).date() - timedelta(days=days - 1), tz)


def weeks_start(now: datetime, tz: ZoneInfo, weeks: int) -> datetime:
    """Monday midnight (shop time) that starts the last ``weeks`` ISO weeks, this one included."""
    today = now.astimezone(tz).date()
    return day_start(today - timedelta(days=today.weekday(), weeks=weeks - 1), tz)


@dataclass(frozen=True)
class Bucket:
    """One week or month of a trend."""

    key: str  # "2026-W48" (as the survey report names weeks) or "2026-11"
    label: str  # under the chart: "23 Nov" (the Monday) or "Nov 2026"
    stats: SurveyStats


def _trend(
    records: Sequence[SurveyRecord],
    by: GroupBy,
    tz: ZoneInfo,
    first_days: Sequence[date],
    label_format: str,
) -> list[Bucket]:
    """A bucket per week or month (given by its first day), empty ones kept."""
    stats = {g.name: g.stats for g in build_survey_report(records, by, tz).groups}
    buckets = []
    for day in first_days:
        # Named by the report's own rule, as if a survey had been sent at the day's start.
        probe = SurveyRecord(kind="", sent_at=day_start(day, tz))
        key = probe.week(tz) if by == GroupBy.WEEK else probe.month(tz)
        buckets.append(Bucket(key, day.strftime(label_format), stats.get(key, NO_SURVEYS)))
    return buckets


def weekly(
    records: Sequence[SurveyRecord], start: datetime, now: datetime, tz: ZoneInfo
) -> list[Bucket]:
    """Survey figures per ISO week from the week of ``start`` to this week."""
    monday = start.astimezone(tz).date()
    monday -= timedelta(days=monday.weekday())
    last = now.astimezone(tz).date()
    mondays = []
    while monday <= last:
        mondays.append(monday)
        monday += timedelta(weeks=1)
    return _trend(records, GroupBy.WEEK, tz, mondays, "%d %b")


def monthly(
    records: Sequence[SurveyRecord], start: datetime, now: datetime, tz: ZoneInfo
) -> list[Bucket]:
    """Survey figures per calendar month (shop time) from ``start``'s month to this month."""
    month = start.astimezone(tz).date().replace(day=1)
    last = now.astimezone(tz).date()
    firsts = []
    while month <= last:
        firsts.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return _trend(records, GroupBy.MONTH, tz, firsts, "%b %Y")


def percent(share: float | None) -> float | None:
    """A 0..1 share as a percentage for charts (None stays a gap)."""
    return None if share is None else 100 * share
