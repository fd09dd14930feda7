"""Figures the dashboard shows over time, computed by the same code as the reports.

Periods are whole days in the shop's timezone, so a dashboard figure "since 25 Oct" is what
``carebot report surveys --since 2026-10-25`` (or ``report tickets``) prints. Trends are the
survey report's :class:`SurveyStats` per ISO week (the report's own ``--by week`` grouping)
or per calendar month, with empty buckets kept so a quiet week shows as a gap.
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


def _week_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def weekly(
    records: Sequence[SurveyRecord], start: datetime, now: datetime, tz: ZoneInfo
) -> list[Bucket]:
    """Survey figures per ISO week from the week of ``start`` to this week."""
    by_week = {g.name: g.stats for g in build_survey_report(records, GroupBy.WEEK, tz).groups}
    monday = start.astimezone(tz).date()
    monday -= timedelta(days=monday.weekday())
    last = now.astimezone(tz).date()
    buckets = []
    while monday <= last:
        key = _week_key(monday)
        buckets.append(Bucket(key, monday.strftime("%d %b"), by_week.get(key, NO_SURVEYS)))
        monday += timedelta(weeks=1)
    return buckets


def monthly(
    records: Sequence[SurveyRecord], start: datetime, now: datetime, tz: ZoneInfo
) -> list[Bucket]:
    """Survey figures per calendar month (shop time) from ``start``'s month to this month."""
    members: dict[str, list[SurveyRecord]] = {}
    for record in records:
        members.setdefault(record.sent_at.astimezone(tz).strftime("%Y-%m"), []).append(record)
    month = start.astimezone(tz).date().replace(day=1)
    last = now.astimezone(tz).date()
    buckets = []
    while month <= last:
        key = month.strftime("%Y-%m")
        stats = SurveyStats.of(members[key]) if key in members else NO_SURVEYS
        buckets.append(Bucket(key, month.strftime("%b %Y"), stats))
        month = (month + timedelta(days=32)).replace(day=1)
    return buckets


def percent(share: float | None) -> float | None:
    """A 0..1 share as a percentage for charts (None stays a gap)."""
    return None if share is None else 100 * share
