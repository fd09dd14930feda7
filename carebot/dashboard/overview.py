"""The overview page: the shop at a glance, from the same reports the CLI prints.

Satisfaction and ticket figures come from ``build_survey_report`` / ``build_report`` over
``surveys_sent`` / ``tickets_created`` (what ``carebot report surveys|tickets --since DAY``
prints for the same day); segments from the stored segment summary. Everything is read in
one worker thread on a connection of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web
from markupsafe import Markup
from sqlite_utils import Database

from bot.config import Config
from bot.dashboard_metrics import Bucket, period_start, weekly, weeks_start
from bot.reports import TicketReport, build_report, format_duration
from bot.segments import Segment, SegmentSummary
from bot.survey_report import SurveyStats, build_survey_report
from carebot.dashboard.app import Routes, dashboard_of, render_page
from carebot.dashboard.charts import bar_chart
from carebot.dashboard.surveys import nps_trend, percent_trend
from carebot.survey_views import nps_text
from carebot.survey_views import percent as percent_text
from storage.dashboard_reports import (
    BreachedTicket,
    CampaignLine,
    SegmentCustomer,
    breached_open_tickets,
    customers_in_segment,
    open_ticket_counts,
    recent_campaigns,
)
from storage.reports import tickets_created
from storage.segments import SegmentRepository
from storage.survey_report import surveys_sent

PERIOD_DAYS = 30
TREND_WEEKS = 12
AT_RISK_LISTED = 8
CAMPAIGNS_LISTED = 5
BREACHES_LISTED = 5


@dataclass(frozen=True)
class Overview:
    since: datetime  # start of the last PERIOD_DAYS days (shop time)
    surveys: SurveyStats  # sent since then
    weeks: list[Bucket]  # the last TREND_WEEKS weeks
    tickets: TicketReport  # created since then
    open_tickets: dict[str, int]  # active state -> count, right now
    breached: list[BreachedTicket]  # active tickets past an SLA target, right now
    segments: SegmentSummary | None  # None until segments were computed
    at_risk: list[SegmentCustomer]
    campaigns: list[CampaignLine]

    @property
    def at_risk_count(self) -> int:
        if self.segments is None:
            return 0
        return sum(row.customers for row in self.segments.rows if row.segment == Segment.AT_RISK)


def gather(db: Database, config: Config, now: datetime) -> Overview:
    """Every figure on the page (run off the event loop)."""
    calendar = config.business_calendar()
    tz = calendar.tz
    since = period_start(now, tz, PERIOD_DAYS)
    trend_since = weeks_start(now, tz, TREND_WEEKS)
    surveys = build_survey_report(surveys_sent(db, since, None), None, tz).total
    return Overview(
        since=since,
        surveys=surveys,
        weeks=weekly(surveys_sent(db, trend_since, None), trend_since, now, tz),
        tickets=build_report(tickets_created(db, since, None), calendar),
        open_tickets=open_ticket_counts(db),
        breached=breached_open_tickets(db),
        segments=SegmentRepository(db).summary(),
        at_risk=customers_in_segment(db, Segment.AT_RISK, AT_RISK_LISTED),
        campaigns=recent_campaigns(db, CAMPAIGNS_LISTED),
    )


def trend_charts(weeks: list[Bucket]) -> tuple[Markup, Markup]:
    """CSAT and NPS per week, as two line charts (their scales differ)."""
    csat = percent_trend(
        f"CSAT by week, last {len(weeks)} weeks (share of 4 and 5 scores)",
        "CSAT",
        weeks,
        lambda s: s.csat,
    )
    return csat, nps_trend(f"NPS by week, last {len(weeks)} weeks", weeks)


async def overview(request: web.Request) -> web.StreamResponse:
    """The shop at a glance."""
    dashboard = dashboard_of(request)
    config, now = dashboard.config, dashboard.now()
    data = await dashboard.off_loop(lambda db: gather(db, config, now))
    csat_chart, nps_chart = trend_charts(data.weeks)
    open_chart = bar_chart(
        "Open tickets by state, now",
        [(state, float(count)) for state, count in data.open_tickets.items()],
    )
    topic_chart = bar_chart(
        f"Tickets by topic, last {PERIOD_DAYS} days",
        [(topic, float(count)) for topic, count in data.tickets.by_topic.items()],
    )
    return render_page(
        request,
        "overview.html",
        data=data,
        zone=ZoneInfo(config.shop.timezone),
        currency=config.shop.currency,
        period_days=PERIOD_DAYS,
        breaches_listed=BREACHES_LISTED,
        csat_chart=csat_chart,
        nps_chart=nps_chart,
        open_chart=open_chart,
        topic_chart=topic_chart,
        percent=percent_text,
        nps_text=nps_text,
        duration=format_duration,
    )


def register(routes: Routes) -> None:
    routes.get("", overview)
    routes.get("/", overview)
