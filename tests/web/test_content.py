"""The FAQ editor and canned replies: what is saved on the web is what the bot uses."""

from __future__ import annotations

from typing import Any

from bot.faq_file import MAX_ANSWER
from tests.e2e.conftest import ANN, text_of
from tests.e2e.test_tickets import MARIA
from tests.web.conftest import Site, Visitor

QUESTION = "Can I collect my parcel from your warehouse?"
COLLECT = {
    "slug": "collect-in-person",
    "lang": "en",
    "question": QUESTION,
    "keywords": "collect pickup warehouse in person",
    "answer": "Yes: choose 'collect' at checkout, weekdays 9-17.",
}


def audit_actions(site: Site) -> list[tuple[str, str]]:
    return [(e.action, e.detail) for e in site.dashboard.stores.audit.recent()]


def faq_id(site: Site, slug: str, lang: str = "en") -> int:
    entry = site.dashboard.repos.faq.get(slug, lang)
    assert entry is not None
    return entry.id


async def test_a_new_faq_entry_answers_customers_at_once_then_edits_and_deletion_follow(
    site: Site, admin: Visitor
) -> None:
    before = text_of(await site.desk.say(ANN, QUESTION))
    assert "choose 'collect' at checkout" not in before

    saved = await admin.post("/admin/faq/new", COLLECT)
    assert saved.url.endswith("/admin/faq")
    assert "FAQ entry collect-in-person (en) added" in saved.text
    assert QUESTION in saved.text
    answer = text_of(await site.desk.say(ANN, QUESTION))
    assert "Yes: choose 'collect' at checkout, weekdays 9-17." in answer

    entry_id = faq_id(site, "collect-in-person")
    form = await admin.get(f"/admin/faq/{entry_id}/edit")
    assert "weekdays 9-17" in form.text
    changed = {**COLLECT, "answer": "Yes, for free since November."}
    await admin.post(f"/admin/faq/{entry_id}/edit", changed)
    assert "Yes, for free since November." in text_of(await site.desk.say(ANN, QUESTION))

    unconfirmed = await admin.post(f"/admin/faq/{entry_id}/delete", {})
    assert unconfirmed.status == 400
    assert "tick “Yes, delete this entry” to delete it" in unconfirmed.text
    assert site.dashboard.repos.faq.get_by_id(entry_id) is not None
    deleted = await admin.post(f"/admin/faq/{entry_id}/delete", {"confirm": "yes"})
    assert "FAQ entry collect-in-person (en) deleted." in deleted.text
    assert site.dashboard.repos.faq.get_by_id(entry_id) is None
    assert "Yes, for free" not in text_of(await site.desk.say(ANN, QUESTION))

    assert audit_actions(site)[:3] == [
        ("faq deleted", "collect-in-person (en)"),
        ("faq saved", "collect-in-person (en)"),
        ("faq added", "collect-in-person (en)"),
    ]


async def test_an_invalid_faq_entry_is_refused_naming_the_field_and_keeping_the_input(
    site: Site, admin: Visitor
) -> None:
    count = site.dashboard.repos.faq.count()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"slug": "Gift Wrap"}, "slug: slug must be lower-case letters, digits and dashes"),
        ({"question": ""}, "question: question is missing"),
        ({"answer": "   "}, "answer: answer is missing"),
        (
            {"answer": "x" * (MAX_ANSWER + 1)},
            f"answer: answer is longer than {MAX_ANSWER} characters",
        ),
        ({"lang": "fr"}, "lang: language must be one of en, zh"),
        ({"slug": "delivery-time"}, "slug: there is already an entry delivery-time in en"),
    ]
    for change, message in cases:
        page = await admin.post("/admin/faq/new", {**COLLECT, **change})
        assert page.status == 400, change
        assert message in page.text, change
        assert 'value="collect pickup warehouse in person"' in page.text  # what was typed stays
    assert site.dashboard.repos.faq.count() == count
    taken = await admin.post("/admin/faq/new", {**COLLECT, "slug": "delivery-time"})
    delivery = faq_id(site, "delivery-time")
    assert f'href="/admin/faq/{delivery}/edit">Edit the existing entry delivery-time' in taken.text

    # editing an entry into another one's slug and language is refused too
    entry_id = faq_id(site, "shipping-cost")
    taken = {**COLLECT, "slug": "delivery-time"}
    page = await admin.post(f"/admin/faq/{entry_id}/edit", taken)
    assert page.status == 400
    assert "there is already an entry delivery-time in en" in page.text
    shipping = site.dashboard.repos.faq.get_by_id(entry_id)
    assert shipping is not None
    assert shipping.slug == "shipping-cost"


async def test_faq_list_shows_entries_and_feedback(site: Site, admin: Visitor) -> None:
    customer = site.dashboard.repos.customers.by_telegram_user(ANN.id)
    assert customer is not None
    site.dashboard.repos.faq.record_feedback(
        customer.id, "delivery-time", True, 5, site.clock.now()
    )
    page = await admin.get("/admin/faq")
    assert page.status == 200
    assert "How long does delivery take?" in page.text
    assert "配送需要多长时间？" in page.text
    assert '<td class="num">1</td>' in page.text


async def test_staff_cannot_edit_the_faq(site: Site, staff: Visitor) -> None:
    assert (await staff.get("/admin/faq")).status == 403
    assert (await staff.post("/admin/faq/new", COLLECT)).status == 403
    assert site.dashboard.repos.faq.get("collect-in-person", "en") is None


async def test_a_canned_reply_added_on_the_web_is_sent_by_canned_in_telegram(
    site: Site, staff: Visitor
) -> None:
    await site.desk.complaint(ANN, "Broken mug")
    thread = site.desk.topic()

    listing = await staff.get("/admin/canned")
    assert "/canned thanks" in listing.text
    assert "from config.toml" in listing.text
    assert "Thank you Ann! Order 536012 is on us. Maria" in listing.text  # sample preview

    reply = {"name": "sorry", "body": "We are sorry, {{ full_name }}. {{ agent }}"}
    preview = await staff.post("/admin/canned", {**reply, "action": "preview"})
    assert "We are sorry, Ann Peeters. Maria" in preview.text
    assert site.dashboard.deps.desk.canned.all() == {}  # a preview stores nothing

    saved = await staff.post("/admin/canned", {**reply, "action": "save"})
    assert "Canned reply sorry saved" in saved.text
    after = await site.desk.staff_says(MARIA, "/canned sorry", thread_id=thread)
    assert [m["plain_text"] for m in site.desk.sent_to(ANN.id, after)] == [
        "We are sorry, Ann Peeters. Maria"
    ]

    # overriding the config one: Telegram sends the web's text; the list shows both
    override = {"name": "thanks", "body": "Thanks a lot, {{ name }}!", "editing": "yes"}
    await staff.post("/admin/canned", {**override, "action": "save"})
    after = await site.desk.staff_says(MARIA, "/canned thanks", thread_id=thread)
    assert [m["plain_text"] for m in site.desk.sent_to(ANN.id, after)] == ["Thanks a lot, Ann!"]
    listing = await staff.get("/admin/canned")
    assert "stored, overrides config.toml" in listing.text
    assert "Thank you {{ name }}! Order {{ order }} is on us. {{ agent }}" in listing.text

    # one added in Telegram shows on the web
    await site.desk.staff_says(
        MARIA, "/canned add late Your parcel is late, sorry.", thread_id=thread
    )
    assert "Your parcel is late, sorry." in (await staff.get("/admin/canned")).text

    # deleting the override brings back config.toml's text
    refused = await staff.post("/admin/canned/thanks/delete", {})
    assert refused.status == 400
    deleted = await staff.post("/admin/canned/thanks/delete", {"confirm": "yes"})
    assert "config.toml text is used again" in deleted.text
    after = await site.desk.staff_says(MARIA, "/canned thanks", thread_id=thread)
    [sent] = site.desk.sent_to(ANN.id, after)
    assert sent["plain_text"].startswith("Thank you Ann!")

    actions = audit_actions(site)
    assert ("canned saved", "sorry") in actions
    assert ("canned deleted", "thanks") in actions


async def test_an_invalid_canned_reply_is_refused_naming_the_field(
    site: Site, staff: Visitor
) -> None:
    cases = [
        ({"name": "Bad name", "body": "Hi"}, "name: &#39;bad name&#39;: use a lowercase name"),
        ({"name": "sneaky", "body": "{{ name.__class__ }}"}, "body: only text and {{ variable }}"),
        ({"name": "typo", "body": "Hi {{ nmae }}"}, "body: unknown variable &#39;nmae&#39;"),
        ({"name": "empty", "body": "  "}, "body: the text is empty"),
    ]
    for reply, message in cases:
        page = await staff.post("/admin/canned", {**reply, "action": "save"})
        assert page.status == 400, reply
        assert message in page.text, reply
    page = await staff.post("/admin/canned", {"name": "typo", "body": "Hi {{ nmae }}"})
    assert "Hi {{ nmae }}</textarea>" in page.text  # kept as typed
    assert site.dashboard.deps.desk.canned.all() == {}
    # a second reply of the same name is refused (edit the first instead)
    await staff.post("/admin/canned", {"name": "hello", "body": "Hello!", "action": "save"})
    again = await staff.post("/admin/canned", {"name": "hello", "body": "Hi!", "action": "save"})
    assert "there is already a reply called hello" in again.text
    assert site.dashboard.deps.desk.canned.all() == {"hello": "Hello!"}
