"""Customers on the dashboard: search, and a profile with everything the shop knows."""

from __future__ import annotations

import re
from datetime import date, timedelta

from bot.campaign_service import PlannedReminder
from bot.campaigns import parse_campaign
from bot.surveys import SurveyKind
from storage.campaigns import CampaignRepository, DeliveryLedger
from storage.surveys import SurveyRepository
from tests.e2e.conftest import ANN
from tests.web.conftest import Site, Visitor

ANN_ID = 3  # the demo shop's customer 12361, bound to Telegram user 1001


def result_links(html: str) -> list[str]:
    return re.findall(r'href="/admin/customers/(\d+)"', html)


async def test_search_finds_ann_by_name_shop_id_telegram_id_and_username(
    site: Site, staff: Visitor
) -> None:
    site.dashboard.repos.db.execute(
        "UPDATE customers SET username = 'annp', email = 'ann.peeters@example.com' WHERE id = ?",
        [ANN_ID],
    )
    queries = (
        "Ann",
        "ann peeters",
        "12361",
        "1001",
        "@annp",
        "ANN.Peeters@example.com",
        "peeters@",
    )
    for query in queries:
        page = await staff.get("/admin/customers", params={"q": query})
        assert page.status == 200, query
        assert result_links(page.text)[0] == str(ANN_ID), query
        assert "Ann Peeters" in page.text
        assert "at risk" in page.text  # her segment
    nobody = await staff.get("/admin/customers", params={"q": "Zebedee"})
    assert "No customer matches “Zebedee”" in nobody.text


async def test_search_pages_through_every_customer(site: Site, staff: Visitor) -> None:
    first = await staff.get("/admin/customers")
    second = await staff.get("/admin/customers", params={"page": "2"})
    assert len(result_links(first.text)) == 50
    assert "Next" in first.text
    assert set(result_links(first.text)).isdisjoint(result_links(second.text))
    assert "Previous" in second.text
    # a wildcard typed by someone is a plain character, not "match anything"
    percent = await staff.get("/admin/customers", params={"q": "%"})
    assert result_links(percent.text) == []


async def test_profile_shows_orders_with_items_segment_and_a_ticket(
    site: Site, staff: Visitor
) -> None:
    await site.desk.complaint(ANN, "The mugs arrived broken")
    page = await staff.get(f"/admin/customers/{ANN_ID}")
    assert page.status == 200
    db = site.dashboard.repos.db
    orders = [
        r["external_id"]
        for r in db.query("SELECT external_id FROM orders WHERE customer_id = ?", [ANN_ID])
    ]
    assert len(orders) == 4
    for order in orders:
        assert f"#{order}" in page.text
    [item] = db.query(
        """SELECT description FROM order_items i JOIN orders o ON o.id = i.order_id
           WHERE o.customer_id = ? LIMIT 1""",
        [ANN_ID],
    )
    assert item["description"] in page.text
    assert "Purchase history (4)" in page.text
    assert "511.25" in page.text  # lifetime value: her net spend
    assert "at risk" in page.text
    assert "RFM scores: recency 2, frequency 4, monetary 2" in page.text
    assert 'href="/admin/tickets/1"' in page.text
    assert "The mugs arrived broken" in page.text  # in her recent messages
    assert "SLA first response" not in page.text  # the staff chat's card is not her chat
    assert "12361" in page.text
    assert "user 1001" in page.text


async def test_a_long_purchase_history_pages_twenty_orders_at_a_time(
    site: Site, staff: Visitor
) -> None:
    db = site.dashboard.repos.db
    [busiest] = db.query(
        "SELECT customer_id, count(*) AS n FROM orders GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
    )
    assert busiest["n"] == 164
    path = f"/admin/customers/{busiest['customer_id']}"
    first = await staff.get(path)
    last = await staff.get(path, params={"orders_page": "9"})
    shown = [re.findall(r"<td>#(\w+)", page.text) for page in (first, last)]
    assert (len(shown[0]), len(shown[1])) == (20, 4)
    assert set(shown[0]).isdisjoint(shown[1])
    assert "Purchase history (164)" in first.text
    assert "Page 1 of 9" in first.text
    assert "Older orders" in first.text
    assert "Newer orders" in last.text
    assert "Older orders" not in last.text


async def test_profile_shows_survey_answers_and_campaign_reminders(
    site: Site, staff: Visitor
) -> None:
    db, now = site.dashboard.repos.db, site.clock.now()
    surveys = SurveyRepository(db)
    [order] = db.query("SELECT id FROM orders WHERE customer_id = ? LIMIT 1", [ANN_ID])
    survey = surveys.create(
        customer_id=ANN_ID, kind=SurveyKind.PURCHASE, due_at=now, now=now, order_id=order["id"]
    )
    assert survey is not None
    assert surveys.claim(survey.id)
    surveys.sent(survey.id, ANN.id, 99, now, now + timedelta(days=7))
    assert surveys.record_score(survey.id, 2, "comment", now)
    surveys.record_followup(survey.id, comment="The box was crushed", nps=None, now=now)

    spec = parse_campaign(
        {"name": "xmas-2026", "occasion": "christmas", "template": {"en": "Hi"}},
        languages=("en", "zh"),
    )
    campaign = CampaignRepository(db).create(spec, 2026, now)
    ledger = DeliveryLedger(db)
    reminder = PlannedReminder(ANN_ID, ANN.id, "en", date(2026, 12, 25), now, "Hi", ())
    ledger.plan(campaign.id, [reminder], now)
    [delivery] = ledger.due(campaign.id, now, 1)
    assert ledger.claim(delivery.id)
    ledger.sent(delivery.id, 100, now)

    page = await staff.get(f"/admin/customers/{ANN_ID}")
    assert "The box was crushed" in page.text
    assert re.search(r'<td class="num">2</td>', page.text)  # the score
    assert "xmas-2026" in page.text
    assert "christmas" in page.text


async def test_customer_text_is_escaped_everywhere(site: Site, staff: Visitor) -> None:
    hostile = "<script>alert(1)</script>"
    customer_id = site.dashboard.repos.customers.create_shop_customer(
        "X-1",
        first_name=hostile,
        last_name="<b>bold</b>",
        email="a@b.example",
        now=site.clock.now(),
    )
    for page in (
        await staff.get("/admin/customers", params={"q": "<script>"}),
        await staff.get(f"/admin/customers/{customer_id}"),
    ):
        assert page.status == 200
        assert "<script>alert" not in page.text
        assert "<b>bold" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_an_unknown_customer_is_not_found(site: Site, staff: Visitor) -> None:
    assert (await staff.get("/admin/customers/999999")).status == 404
    assert (await staff.get("/admin/customers/abc")).status == 404
