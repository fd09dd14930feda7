"""Every template exists in every language and renders with StrictUndefined."""

from __future__ import annotations

import ast
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from markupsafe import Markup

from bot.campaign_service import PlannedReminder, Preview
from bot.campaigns import Campaign, CampaignSpec, CampaignStatus
from bot.config import SUPPORTED_LANGUAGES
from bot.models import Customer, Order, OrderItem, OrderStatus
from bot.sla import Priority
from bot.texts import BOT_COMMANDS, T, Texts, language_from_telegram, template_files
from bot.tickets import Actor, Ticket, TicketKind, TicketStatus

ROOT = Path(__file__).resolve().parents[2]

ORDER = Order(
    id=1,
    external_id="536012",
    customer_id=1,
    status=OrderStatus.SHIPPED,
    placed_at=datetime(2010, 12, 1, 9, 30, tzinfo=UTC),
    total=31.5,
    currency="GBP",
    item_count=2,
    items=(OrderItem("21844", "RETRO SPOT MUG", 6, 2.95), OrderItem("POST", "POSTAGE", 1, 13.8)),
)

CUSTOMER = Customer(1, "Ann", "Peeters", "en", None, "12680", 1001, False, False, False)
TICKET = Ticket(
    id=42,
    customer_id=1,
    kind=TicketKind.COMPLAINT,
    source="complaint",
    status=TicketStatus.OPEN,
    priority=Priority.NORMAL,
    created_at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
    updated_at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
    category="damaged",
    order_id=1,
    subject="The mug arrived broken <b>",
    assignee_name="Maria",
    first_response_due=datetime(2026, 11, 23, 14, 0, tzinfo=UTC),
    resolution_due=datetime(2026, 11, 25, 16, 0, tzinfo=UTC),
)

CAMPAIGN = Campaign(
    id=3,
    spec=CampaignSpec(
        name="christmas-2026",
        occasion="christmas",
        days_before=5,
        send_time=time(10, 0),
        templates={"en": "Hi!"},
    ),
    year=2026,
    status=CampaignStatus.RUNNING,
    created_at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
)

# Sample values for every variable a template uses (a template that needs one not listed
# here fails the test, which is the point of StrictUndefined).
SAMPLE: dict[str, Any] = {
    "name": "Ann <b>",
    "shop": "Demo Gifts",
    "url": "https://care.example/admin/login/link?token=abc",
    "linked": False,
    "question": "How long does delivery take?",
    "answer": "1-3 days",
    "request_id": 7,
    "open_now": False,
    "next_opening": datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
    "hours": [("mon", "09:00-18:00"), ("sat", "10:00-14:00")],
    "timezone": "Europe/London",
    "local_timezone": "Asia/Shanghai",
    "contact": "help@example.com",
    "orders": [ORDER],
    "order": ORDER,
    "items": list(ORDER.items),
    "more": 3,
    "language_name": "English",
    "shop_timezone": "Europe/London",
    "reminders_on": True,
    "updates_on": True,
    "current": "Europe/London",
    "local_time": "09:00",
    "value": "Mars/Base",
    "command": "/frobnicate",
    "bot_username": "demo_bot",
    # tickets
    "ticket": TICKET,
    "tickets": [TICKET, replace(TICKET, id=43, category=None, kind=TicketKind.INQUIRY)],
    "earlier": [replace(TICKET, id=40, status=TicketStatus.CLOSED, satisfaction=4)],
    "due": datetime(2026, 11, 23, 14, 0, tzinfo=UTC),
    "target": timedelta(hours=4),
    "reopen_days": 7,
    "zone": ZoneInfo("Europe/London"),
    "category": "wrong_item",
    "customer": CUSTOMER,
    "stats": None,
    "recent": [],
    "currency": "GBP",
    "resolved": True,
    "order_number": "536012",
    "reason": "blocked",
    "to_staff": False,
    "agent": "Maria",
    "body": "Your refund is on its way.",
    "breach": "first_response",
    "staff": Actor("staff", 501, "Maria"),
    "replies": {"thanks": "Thank you, {{ name }}!"},
    "names": ["thanks"],
    "deleted": True,
    "in_config": False,
    "action": "claim",
    "usage": "note",
    # surveys
    "ticket_id": 42,
    "score": 2,
    "question_key": "survey_purchase.html",
    "comment": "The box was crushed",
    "staff_name": "Maria",
    # campaigns
    "suggestions": [{"name": "RETRO SPOT MUG", "price": 2.95, "currency": "GBP"}],
    "shop_url": "https://shop.example",
    "occasion": "Christmas",
    "status": "paused",
    "campaigns": [CAMPAIGN],
    "counts": {CAMPAIGN.id: {"sent": 5, "pending": 2, "failed": 1}},
    "campaign": CAMPAIGN,
    "preview": Preview(
        eligible=7,
        excluded={"opted_out": 1, "not_on_telegram": 44},
        samples=(
            PlannedReminder(
                customer_id=1,
                chat_id=1001,
                language="en",
                occasion_date=date(2026, 12, 25),
                due_at=datetime(2026, 12, 20, 10, 0, tzinfo=UTC),
                text="Hi <b>Ann</b>!",
                suggested=(1, 2),
            ),
        ),
        first_due=datetime(2026, 12, 20, 10, 0, tzinfo=UTC),
        last_due=datetime(2026, 12, 20, 18, 0, tzinfo=UTC),
        send_seconds=0.3,
    ),
}


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
def test_every_key_has_a_template_and_every_template_a_key(lang: str) -> None:
    assert template_files(lang) == {key.value for key in T}


@pytest.mark.parametrize("lang", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("key", list(T))
def test_renders_with_strict_undefined(lang: str, key: T) -> None:
    text = Texts("en").render(key, lang, **SAMPLE)
    assert text.strip()
    assert len(text) <= 4096


def test_html_messages_escape_customer_input_and_labels_do_not() -> None:
    texts = Texts("en")
    assert "Ann &lt;b&gt;" in texts.render(T.WELCOME, "en", **SAMPLE)
    assert texts.render(T.BTN_ORDER, "en", order=ORDER) == "#536012 · 01 Dec 2010"
    assert texts.render(T.BTN_ORDER, "zh", order=ORDER) == "#536012 · 2010年12月1日"


def test_an_answer_sent_again_is_escaped_the_same_and_trusted_markup_stays_markup() -> None:
    """Plain-string values are rendered once per value set; a Markup value equal to a plain
    string must not get (or give) the plain string's escaped text."""
    texts = Texts("en")
    question, answer = "<i>Returns?</i>", "Within 30 days & free"
    first = texts.render(T.FAQ_ANSWER, "en", question=question, answer=answer)
    assert "<b>&lt;i&gt;Returns?&lt;/i&gt;</b>" in first
    assert "Within 30 days &amp; free" in first
    assert texts.render(T.FAQ_ANSWER, "en", question=question, answer=answer) == first
    trusted = texts.render(T.FAQ_ANSWER, "en", question=Markup(question), answer=answer)
    assert "<b><i>Returns?</i></b>" in trusted
    assert texts.render(T.FAQ_ANSWER, "zh", question=question, answer=answer) != first


def test_unknown_language_falls_back_to_default() -> None:
    assert Texts("zh").render(T.LANGUAGE_NAME, "fr") == "简体中文"
    assert language_from_telegram("zh-hans", "en") == "zh"
    assert language_from_telegram("en-GB", "zh") == "en"
    assert language_from_telegram(None, "en") == "en"


def test_no_literal_user_text_in_handlers() -> None:
    """Handlers pass template keys, never sentences (all user-facing text is in templates/)."""
    for path in (ROOT / "handlers").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in {
                "send_message",
                "reply_text",
                "edit_message_text",
            }:
                for arg in node.args[1:2]:
                    assert not isinstance(arg, ast.Constant), f"{path.name}: literal text sent"


def test_every_bot_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for command in BOT_COMMANDS:
        assert f"/{command}" in readme
