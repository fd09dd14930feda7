"""Campaign pages: create and edit a draft through the form (checked like `campaign create`),
the live preview on real customers, actions as the CLI takes them, and the report."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.campaigns import (
    AudienceRules,
    CampaignSpec,
    CampaignStatus,
    SuggestionSettings,
    parse_campaign,
)
from bot.config import SUPPORTED_LANGUAGES
from bot.models import OrderStatus
from bot.occasions import parse_custom_occasion
from carebot.dashboard.campaigns import (
    AUDIENCE_FIELDS,
    FormValues,
    field_of,
    raw_campaign,
)
from storage.campaigns import CampaignRepository, CustomOccasionRepository
from storage.repositories import NewOrderItem
from tests.e2e.test_campaigns import SEND_DAY, bind_on_telegram, loyal_christmas_buyers
from tests.web.conftest import Page, Site, Visitor

ENGLISH = (
    "Hi {{ customer.first_name }}! {{ occasion.label }} is in {{ occasion.days_left }} days."
    "{% for s in suggestions %}\n• {{ s.name|title }} {{ s.price_text }}{% endfor %}"
)
CHINESE = "{{ customer.first_name }}，您好！{{ occasion.label }}就要到了。"
AUDIENCE = re.compile(r'data-audience="(\d+)"')


def christmas_form(**fields: Any) -> dict[str, Any]:
    """The form as an admin fills it in: Christmas, loyal Christmas buyers (two years)."""
    form = {
        "name": "christmas-2026",
        "occasion": "christmas",
        "year": "",
        "days_before": "5",
        "send_time": "10:00",
        "audience.occasion_buyers_days": "21",
        "audience.occasion_min_years": "2",
        "suggestions.count": "3",
        "suggestions.more": "3",
        "template.en": ENGLISH,
        "template.zh": CHINESE,
    }
    form.update(fields)
    return form


def campaigns(site: Site) -> CampaignRepository:
    return site.desk.care.deps.campaigns.campaigns


def stored(site: Site, name: str = "christmas-2026") -> CampaignStatus:
    campaign = campaigns(site).by_name(name)
    assert campaign is not None
    return campaign.status


async def preview(visitor: Visitor, form: dict[str, Any]) -> Page:
    """What campaigns.js posts as the admin types: the form, CSRF in the header."""
    async with visitor.http.post(
        "/admin/campaigns/preview", data=form, headers={"X-CSRF-Token": visitor.csrf}
    ) as response:
        return Page(response.status, str(response.url), await response.text())


def audience_of(page: Page) -> int:
    found = AUDIENCE.search(page.text)
    assert found, page.text[:2000]
    return int(found.group(1))


def audit_actions(site: Site) -> list[tuple[str, str]]:
    return [(e.action, e.detail) for e in site.dashboard.stores.audit.recent()]


def christmas_buyers_on_telegram(site: Site) -> list[int]:
    """Customers who bought before Christmas in 2009 and 2010, bound to sandbox users."""
    repos = site.desk.care.repos
    ids = [row["id"] for row in loyal_christmas_buyers(repos)]
    bind_on_telegram(repos, ids, site.desk.sandbox)
    return ids


# ------------------------------------------------------------------ the form is a campaign file


def test_every_audience_rule_has_a_form_field() -> None:
    assert {f.key for f in AUDIENCE_FIELDS} == set(AudienceRules.__dataclass_fields__)


def test_a_saved_campaign_fills_the_form_with_what_gives_it_back() -> None:
    spec = CampaignSpec(
        name="winback-2027",
        occasion="mothers-day",
        days_before=3,
        send_time=datetime(2027, 1, 1, 9, 30).time(),
        templates={"en": ENGLISH, "zh": CHINESE},
        audience=AudienceRules(
            occasion_buyers_days=30,
            occasion_min_years=2,
            categories=("kitchen", "garden"),
            segments=("at_risk",),
            key_customers=True,
            last_purchase_within_days=900,
            last_purchase_not_within_days=90,
            min_orders=2,
            countries=("GB", "IE"),
        ),
        suggestions=SuggestionSettings(count=2, more=4),
        year=2027,
    )
    raw = raw_campaign(FormValues.of_spec(spec))
    assert parse_campaign(raw, languages=SUPPORTED_LANGUAGES) == spec


def test_errors_are_placed_at_the_field_they_name() -> None:
    assert field_of("audience.min_orders must be a whole number", "en") == "audience.min_orders"
    assert field_of("name must be lowercase letters", "en") == "name"
    assert field_of("occasion 'x' is unknown (known: ...)", "en") == "occasion"
    assert field_of('[template] must be a table of languages, like en = """Hi..."""', "en") == (
        "template.en"
    )
    assert field_of("a campaign called x already exists", "en") is None


# ------------------------------------------------------------------ create, validate, edit


async def test_admin_creates_a_campaign_on_the_web(site: Site, admin: Visitor) -> None:
    CustomOccasionRepository(site.desk.care.db).save(
        parse_custom_occasion("shop-birthday", "09-14", label="Our birthday"), site.clock.now()
    )
    listed = await admin.get("/admin/campaigns")
    assert listed.status == 200
    assert 'href="/admin/campaigns/new"' in listed.text
    form = await admin.get("/admin/campaigns/new")
    assert form.status == 200
    assert '<option value="shop-birthday">Our birthday (custom)</option>' in form.text
    assert '<option value="christmas" selected>' in form.text  # the next occasion
    assert 'name="audience.key_customers"' in form.text
    assert 'value="champions"' in form.text  # segments to tick
    assert 'value="kitchen"' in form.text  # the shop's categories

    page = await admin.post("/admin/campaigns/new", christmas_form(**{"intent": "save"}))
    assert page.status == 200
    assert page.url.endswith("/admin/campaigns/1")
    assert "Saved draft christmas-2026 (christmas 2026)." in page.text
    assert '<span class="badge draft">draft</span>' in page.text
    campaign = campaigns(site).by_name("christmas-2026")
    assert campaign is not None
    assert (campaign.status, campaign.year, campaign.spec.days_before) == ("draft", 2026, 5)
    assert campaign.spec.audience == AudienceRules(occasion_buyers_days=21, occasion_min_years=2)
    assert campaign.spec.templates == {"en": ENGLISH, "zh": CHINESE}
    assert ("campaign.create", "christmas-2026 (christmas 2026)") in audit_actions(site)

    listed = await admin.get("/admin/campaigns")
    assert '<a href="/admin/campaigns/1">christmas-2026</a>' in listed.text
    assert '<span class="badge draft">draft</span>' in listed.text
    assert "Christmas" in listed.text
    again = await admin.post("/admin/campaigns/new", christmas_form())
    assert again.status == 400
    assert "a campaign called christmas-2026 already exists" in again.text


async def test_a_bad_field_is_named_beside_it_what_was_typed_stays_and_nothing_is_saved(
    site: Site, admin: Visitor
) -> None:
    await admin.get("/admin/campaigns/new")
    page = await admin.post(
        "/admin/campaigns/new", christmas_form(**{"audience.min_orders": "two"})
    )
    assert page.status == 400
    assert "Not saved." in page.text
    assert (
        '<span class="field-error" id="audience-min_orders-error">audience.min_orders must be '
        "a whole number from 1 to 1000000, got &#39;two&#39;</span>"
    ) in page.text
    assert 'name="audience.min_orders" type="number" value="two"' in page.text
    assert 'value="christmas-2026"' in page.text
    assert "Hi {{ customer.first_name }}!" in page.text  # the templates as typed
    assert campaigns(site).all() == []

    page = await admin.post("/admin/campaigns/new", christmas_form(name="Christmas 2026"))
    assert page.status == 400
    assert 'id="name-error">name must be lowercase letters, digits and dashes' in page.text
    assert 'value="Christmas 2026"' in page.text
    page = await admin.post("/admin/campaigns/new", christmas_form(occasion="easter-bunny"))
    assert page.status == 400
    assert 'id="occasion-error">occasion: unknown occasion &#39;easter-bunny&#39;' in page.text
    page = await admin.post("/admin/campaigns/new", christmas_form(**{"template.en": ""}))
    assert page.status == 400
    assert 'id="template-en-error">there is no template for the default language' in page.text
    broken = christmas_form(**{"template.zh": "{{ customer.orders // 0 }}"})
    page = await admin.post("/admin/campaigns/new", broken)
    assert page.status == 400
    assert 'id="template-zh-error">Does not render: zh, sample 1' in page.text
    assert "ZeroDivisionError" in page.text
    assert campaigns(site).all() == []
    assert not [a for a, _ in audit_actions(site) if a.startswith("campaign.")]


async def test_a_hostile_template_is_refused_and_never_rendered(site: Site, admin: Visitor) -> None:
    hostile = "Hi {{ ''.__class__.__mro__ }}"
    await admin.get("/admin/campaigns/new")
    page = await admin.post("/admin/campaigns/new", christmas_form(**{"template.en": hostile}))
    assert page.status == 400
    assert 'id="template-en-error">en: line 1: &#39;__class__&#39; is not allowed' in page.text
    assert campaigns(site).all() == []
    shown = await preview(admin, christmas_form(**{"template.en": hostile}))
    assert shown.status == 200
    assert "Cannot preview yet" in shown.text
    assert "is not allowed" in shown.text
    assert "&lt;class" not in shown.text


async def test_a_draft_can_be_edited_a_scheduled_one_cannot(site: Site, admin: Visitor) -> None:
    await admin.get("/admin/campaigns/new")
    await admin.post("/admin/campaigns/new", christmas_form(**{"audience.min_orders": "2"}))
    form = await admin.get("/admin/campaigns/1/edit")
    assert form.status == 200
    assert 'name="audience.min_orders" type="number" value="2"' in form.text
    assert 'name="name" type="text" value="christmas-2026" readonly' in form.text
    page = await admin.post(
        "/admin/campaigns/1/edit",
        christmas_form(name="renamed", days_before="3", **{"audience.segments": "champions"}),
    )
    assert page.url.endswith("/admin/campaigns/1")
    campaign = campaigns(site).get(1)
    assert campaign is not None
    assert campaign.name == "christmas-2026"  # the name identifies it
    assert campaign.spec.days_before == 3
    assert campaign.spec.audience.segments == ("champions",)
    assert campaign.spec.audience.min_orders is None  # cleared on the form
    assert ("campaign.edit", "christmas-2026 (christmas 2026)") in audit_actions(site)

    await admin.post("/admin/campaigns/1/start")  # the CLI's word for it works too
    assert stored(site) == "scheduled"
    refused = await admin.get("/admin/campaigns/1/edit")
    assert refused.status == 409
    assert "only drafts can be edited" in refused.text
    refused = await admin.post("/admin/campaigns/1/edit", christmas_form(days_before="1"))
    assert refused.status == 409
    campaign = campaigns(site).get(1)
    assert campaign is not None
    assert campaign.spec.days_before == 3


# ------------------------------------------------------------------ the live preview


async def test_preview_counts_the_audience_as_rules_change_and_renders_real_customers(
    site: Site, admin: Visitor
) -> None:
    await admin.get("/admin/campaigns/new")
    everyone = christmas_form(
        **{"audience.occasion_buyers_days": "", "audience.occasion_min_years": ""}
    )
    page = await preview(admin, everyone)
    assert page.status == 200
    assert audience_of(page) == 2  # Ann and Wei are the demo customers on Telegram
    assert "not on telegram" in page.text
    assert "Ann Peeters" in page.text
    assert "Wei Zhang" in page.text
    assert "Hi Ann! Christmas is in 32 days." in page.text
    assert "Wei，您好！Christmas就要到了。" in page.text  # Wei reads Chinese
    assert "about 1 s at 25 messages/s" in page.text  # two reminders: not "about 0 s"
    assert "<html" not in page.text  # a fragment, to swap into the page

    belgium = await preview(admin, {**everyone, "audience.countries": "BE"})
    assert audience_of(belgium) == 1
    assert "Ann Peeters" in belgium.text
    assert "Wei Zhang" not in belgium.text

    loyal = await preview(admin, christmas_form())
    assert audience_of(loyal) == 0
    assert '0</span></div>\n  <div class="label">recipients · 12 match the rules' in loyal.text
    assert "Nobody would receive it with these rules" in loyal.text
    buyers = christmas_buyers_on_telegram(site)
    loyal = await preview(admin, christmas_form())
    assert audience_of(loyal) == len(buyers) > 2
    assert "Last time" not in loyal.text  # not in this template
    assert loyal.text.count('<article class="sample">') == 5  # [campaigns] preview_samples

    bad = await preview(admin, {**everyone, "audience.min_orders": "0"})
    assert "audience.min_orders must be a whole number from 1 to 1000000, got 0" in bad.text


async def test_customer_names_in_the_preview_are_escaped(site: Site, admin: Visitor) -> None:
    site.desk.care.db.execute(
        "UPDATE customers SET first_name = '<b>Ann</b>' WHERE first_name = 'Ann'"
    )
    await admin.get("/admin/campaigns/new")
    page = await preview(
        admin,
        christmas_form(**{"audience.occasion_buyers_days": "", "audience.occasion_min_years": ""}),
    )
    assert "Hi &lt;b&gt;Ann&lt;/b&gt;!" in page.text
    assert "<b>Ann" not in page.text


async def test_without_javascript_the_preview_button_shows_it_in_the_page(
    site: Site, admin: Visitor
) -> None:
    await admin.get("/admin/campaigns/new")
    page = await admin.post(
        "/admin/campaigns/new",
        christmas_form(
            intent="preview",
            **{"audience.occasion_buyers_days": "", "audience.occasion_min_years": ""},
        ),
    )
    assert page.status == 200
    assert audience_of(page) == 2
    assert "Hi Ann! Christmas is in 32 days." in page.text
    assert '<form id="campaign-form"' in page.text  # the whole page, form kept as typed
    assert campaigns(site).all() == []


# ------------------------------------------------------------------ actions


async def test_actions_change_the_status_as_the_cli_would(site: Site, admin: Visitor) -> None:
    await admin.get("/admin/campaigns/new")
    page = await admin.post("/admin/campaigns/new", christmas_form())
    assert 'action="/admin/campaigns/1/schedule"' in page.text
    assert 'action="/admin/campaigns/1/cancel"' in page.text
    assert 'action="/admin/campaigns/1/pause"' not in page.text

    refused = await admin.post("/admin/campaigns/1/pause")
    assert refused.status == 409
    assert "campaign christmas-2026 is draft: cannot pause" in refused.text
    assert stored(site) == "draft"

    page = await admin.post("/admin/campaigns/1/schedule")
    assert page.url.endswith("/admin/campaigns/1")
    assert (
        "Campaign christmas-2026 is scheduled; recipients are planned on 2026-12-19 20:00 "
        "(shop time) and each gets it at their send time."
    ) in page.text
    campaign = campaigns(site).get(1)
    assert campaign is not None
    assert campaign.status == "scheduled"
    assert campaign.opens_at == datetime(2026, 12, 19, 20, 0, tzinfo=UTC)
    # The bot was told at once: the campaign's job waits for its window (no 10 s watch).
    queue = site.desk.care.application.job_queue
    assert queue is not None
    [job] = queue.get_jobs_by_name("campaign:1")
    assert job.next_t is not None
    assert job.next_t - datetime.now(UTC) > timedelta(days=26)
    assert 'action="/admin/campaigns/1/pause"' in page.text
    assert 'action="/admin/campaigns/1/schedule"' not in page.text

    await admin.post("/admin/campaigns/1/pause")
    assert stored(site) == "paused"
    await admin.post("/admin/campaigns/1/resume")
    assert stored(site) == "scheduled"
    page = await admin.post("/admin/campaigns/1/cancel")
    assert stored(site) == "cancelled"
    assert '<span class="badge cancelled">cancelled</span>' in page.text
    assert 'action="/admin/campaigns/1/' not in page.text  # nothing left to do
    refused = await admin.post("/admin/campaigns/1/resume")
    assert refused.status == 409
    assert "is cancelled: cannot resume" in refused.text
    assert [a for a, _ in audit_actions(site) if a.startswith("campaign.")] == [
        "campaign.cancel",
        "campaign.resume",
        "campaign.pause",
        "campaign.start",
        "campaign.create",
    ]
    assert (await admin.post("/admin/campaigns/99/pause")).status == 404


async def test_scheduling_checks_the_templates_on_real_customers_first(
    site: Site, admin: Visitor
) -> None:
    await admin.get("/admin/campaigns/new")
    await admin.post(
        "/admin/campaigns/new",
        christmas_form(**{"audience.occasion_buyers_days": "", "audience.occasion_min_years": ""}),
    )
    # A template that renders for nobody (as if the draft were changed by hand since).
    site.desk.care.db.execute(
        "UPDATE campaigns SET spec = json_set(spec, '$.templates.zh', ?) WHERE id = 1",
        ["{{ customer.orders // 0 }}"],
    )
    refused = await admin.post("/admin/campaigns/1/schedule")
    assert refused.status == 409
    assert "the template does not render" in refused.text
    assert stored(site) == "draft"


async def test_a_campaign_scheduled_on_the_web_is_sent_at_once_and_reported(
    site: Site,
) -> None:
    buyers = christmas_buyers_on_telegram(site)
    site.clock.set(SEND_DAY)  # five days before Christmas, 10:00: the window is open
    admin = await site.signed_in("alex", "admin")
    await admin.get("/admin/campaigns/new")
    await admin.post("/admin/campaigns/new", christmas_form())
    page = await admin.post("/admin/campaigns/1/schedule")
    assert "recipients are planned now" in page.text
    ledger = site.desk.care.deps.campaigns.ledger
    for _ in range(50):  # well within the 10 s watch: the web asked the bot directly
        if ledger.counts(1).get("sent", 0) == len(buyers):
            break
        await asyncio.sleep(0.1)
    assert ledger.counts(1) == {"sent": len(buyers)}
    assert stored(site) in ("running", "done")

    first = buyers[0]
    [row] = site.desk.care.db.query(
        "SELECT id FROM campaign_deliveries WHERE customer_id = ?", [first]
    )
    ledger.click(row["id"], SEND_DAY + timedelta(minutes=5))
    ledger.click(row["id"], SEND_DAY + timedelta(minutes=5))  # one recipient, two clicks
    ledger.respond(row["id"], "not_this_year", SEND_DAY + timedelta(minutes=6))
    [other] = site.desk.care.db.query(
        "SELECT id FROM campaign_deliveries WHERE customer_id = ?", [buyers[1]]
    )
    ledger.respond(other["id"], "stop", SEND_DAY + timedelta(minutes=7))
    site.desk.care.repos.orders.save_order(
        external_id="WEB-1",
        customer_id=first,
        status=OrderStatus.PAID,
        placed_at=SEND_DAY + timedelta(days=2),
        currency="GBP",
        items=[NewOrderItem(sku="85123A", description="Heart holder", quantity=2, unit_price=12.5)],
        now=SEND_DAY + timedelta(days=2),
    )
    report = await admin.get("/admin/campaigns/1")
    assert report.status == 200
    assert re.search(rf'value">{len(buyers)}</div><div class="label">Planned', report.text)
    assert re.search(rf'value">{len(buyers)}</div><div class="label">Sent', report.text)
    assert 'value">0</div><div class="label">Failed' in report.text
    assert (
        'value">1</div><div class="label">Clicked “Show me”</div><div class="note">2 clicks'
    ) in report.text
    assert 'value">1</div><div class="label">Not this year' in report.text
    assert 'value">1</div><div class="label">Stopped reminders' in report.text
    assert 'value">1</div><div class="label">Converted' in report.text
    assert "25.00 GBP" in report.text
    assert "<svg" in report.text
    assert "not on telegram" in report.text  # excluded at planning
    assert "in earlier years: <strong>21</strong>" in report.text  # the rules it was sent with
    assert "at least this many different years: <strong>2</strong>" in report.text
    listed = await admin.get("/admin/campaigns")
    sent_failed_clicks = [f'<td class="num">{n}</td>' for n in (len(buyers), 0, 2)]
    assert "\n      ".join(sent_failed_clicks) in listed.text


# ------------------------------------------------------------------ roles


async def test_staff_cannot_open_campaigns(site: Site, staff: Visitor) -> None:
    for path in ("/admin/campaigns", "/admin/campaigns/new", "/admin/campaigns/1"):
        page = await staff.get(path)
        assert page.status == 403, path
    page = await preview(staff, christmas_form())
    assert page.status == 403
