"""The overview: after real activity in the sandbox (a complaint answered and resolved,
surveys sent and answered, a breached ticket, a campaign sent), it shows the figures the
reports give for the same period, with its charts."""

from __future__ import annotations

import tomllib
from datetime import date, timedelta

from bot.campaign_service import PlannedReminder
from bot.campaigns import CampaignStatus, parse_campaign
from bot.dashboard_metrics import period_start
from bot.reports import build_report, format_duration
from bot.segments import Segment
from bot.survey_report import build_survey_report
from bot.tickets import Breach
from carebot.survey_views import percent
from storage.campaigns import CampaignRepository, DeliveryLedger
from storage.dashboard_reports import customers_in_segment
from storage.reports import tickets_created
from storage.segments import SegmentRepository
from storage.survey_report import surveys_sent
from tests.e2e.conftest import ANN, WEI
from tests.e2e.test_campaigns import CHRISTMAS
from tests.e2e.test_surveys import invited
from tests.e2e.test_tickets import MARIA
from tests.web.conftest import Site, Visitor
from tests.web.test_surveys import settings_form, text


async def test_a_new_shop_shows_no_data_yet_and_its_segments(site: Site, admin: Visitor) -> None:
    page = await admin.get("/admin")
    assert page.status == 200
    seen = text(page.text)
    assert "CSAT, last 30 days No data yet" in seen
    assert "NPS, last 30 days No data yet" in seen
    assert "Median first response, last 30 days No data yet" in seen
    assert "No data yet: no campaigns." in seen
    assert "Open tickets, now 0" in seen
    # Segments of the demo history: the top 20% share and the at-risk customers.
    db = site.desk.care.db
    summary = SegmentRepository(db).summary()
    assert summary is not None
    assert (
        f"Revenue share of the top 20% of customers {percent(summary.top_fifth_revenue_share)}"
        in seen
    )
    at_risk = next(r.customers for r in summary.rows if r.segment == Segment.AT_RISK)
    assert at_risk > 0
    assert f"Customers at risk of churning {at_risk}" in seen
    biggest = customers_in_segment(db, Segment.AT_RISK, 1)[0]
    assert f'href="/admin/customers/{biggest.customer_id}"' in page.text
    # CSAT and NPS by week, open tickets by state, tickets by topic
    assert page.text.count("<svg") == 4


async def test_after_real_activity_the_overview_matches_the_reports(
    site: Site, admin: Visitor
) -> None:
    desk, clock, care = site.desk, site.clock, site.desk.care
    await admin.get("/admin/surveys/settings")
    await admin.post("/admin/surveys/settings", settings_form(nps_percent="100"))
    await desk.say(ANN, "/start")
    await desk.say(WEI, "/start")

    # Ann complains; Maria answers half an hour later and resolves; Ann rates the support 5.
    await desk.complaint(ANN, "The mugs arrived broken")
    clock.advance(timedelta(minutes=30))
    thread = desk.topic()
    await desk.staff_says(MARIA, "So sorry! A replacement is on its way.", thread_id=thread)
    after = await desk.staff_says(MARIA, "/resolve", thread_id=thread)
    await desk.sandbox.wait_idle(quiet=0.3, timeout=10)
    support = desk.sent_to(ANN.id, after)[-1]
    await desk.press(ANN, support, "5")
    # Wei rates an order 1: a recovery ticket, which then misses its first-response target.
    await desk.press(WEI, await invited(desk, clock, WEI), "1")
    [recovery] = care.db.query("SELECT id FROM tickets WHERE source = 'low_satisfaction'")
    care.deps.desk.tickets.record_breach(recovery["id"], Breach.FIRST_RESPONSE, clock.now())
    # Ann rates an order 4 and answers the NPS question (asked of everyone now) with 9.
    [nps_question] = await desk.press(ANN, await invited(desk, clock, ANN), "4")
    await desk.press(ANN, nps_question, "9")
    # A Christmas campaign sent to both, clicked by Ann.
    campaign_id = sent_campaign(site)

    await admin.login("alex")  # days later: the session from before has expired
    page = await admin.get("/admin")
    assert page.status == 200
    seen = text(page.text)
    tz = care.config.business_calendar().tz
    since = period_start(clock.now(), tz, 30)
    surveys = build_survey_report(surveys_sent(care.db, since, None), None, tz).total
    tickets = build_report(tickets_created(care.db, since, None), care.config.business_calendar())
    assert (surveys.answered, surveys.csat, surveys.nps) == (3, 2 / 3, 100.0)
    assert f"CSAT, last 30 days {percent(surveys.csat)} share of 4 and 5 among 3 answers" in seen
    assert "NPS, last 30 days +100 1 promoter, 0 detractors of 1 answer" in seen
    assert tickets.first_response_breaches == 1
    assert "SLA breaches, tickets of the last 30 days 1 1 first response, 0 resolution" in seen
    assert tickets.first_response.business_median == timedelta(minutes=30)
    median = format_duration(tickets.first_response.business_median)
    assert f"Median first response, last 30 days {median} support hours" in seen
    assert "Open tickets, now 1 open 1 answered 0 reopened 0" in seen
    assert "Open tickets past an SLA target, now 1" in seen
    assert f'href="/admin/tickets/{recovery["id"]}"' in page.text
    assert f'href="/admin/campaigns/{campaign_id}"' in page.text
    assert "christmas-2026 christmas running 2 2 1" in seen  # audience, sent, clicked
    assert page.text.count("<svg") == 4
    assert "Tickets by topic, last 30 days" in page.text
    assert "CSAT by week, last 12 weeks" in page.text
    assert "CSAT 23 Nov: 67%" in page.text  # this week's point on the trend

    # Staff see the same overview, without links to the admins' campaign pages.
    staff = await site.signed_in("maria", "staff")
    staff_page = await staff.get("/admin")
    assert staff_page.status == 200
    assert "christmas-2026" in staff_page.text
    assert f'href="/admin/campaigns/{campaign_id}"' not in staff_page.text


def sent_campaign(site: Site) -> int:
    """A running campaign whose reminders went to Ann and Wei, with Ann's link clicked."""
    care, now = site.desk.care, site.clock.now()
    spec = parse_campaign(tomllib.loads(CHRISTMAS), languages=("en", "zh"))
    campaigns = CampaignRepository(care.db)
    campaign = campaigns.create(spec, 2026, now)
    ledger = DeliveryLedger(care.db)
    people = [care.repos.customers.by_telegram_user(u.id) for u in (ANN, WEI)]
    planned = [
        PlannedReminder(c.id, c.telegram_user_id or 0, "en", date(2026, 12, 25), now, "Hi", ())
        for c in people
        if c is not None
    ]
    ledger.plan(campaign.id, planned, now)
    campaigns.move(campaign.id, CampaignStatus.DRAFT, CampaignStatus.RUNNING, now, audience_size=2)
    for n, delivery in enumerate(ledger.due(campaign.id, now, 10), start=1):
        assert ledger.claim(delivery.id)
        ledger.sent(delivery.id, 9000 + n, now)
        if delivery.customer_id == planned[0].customer_id:
            ledger.click(delivery.id, now)
    return campaign.id
