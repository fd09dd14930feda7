"""What a customer sees, end to end: real PTB Application <-> HTTP <-> Bot API sandbox."""

from __future__ import annotations

from bot.texts import BOT_COMMANDS
from carebot.runtime import services_over
from carebot.sandbox import SandboxUser
from tests.e2e.conftest import ANN, NEWCOMER, START, STRANGER, WEI, Chat, text_of


async def test_start_in_english_greets_by_name_with_the_menu(chat: Chat) -> None:
    [welcome] = await chat.say(ANN, "/start")
    assert welcome["plain_text"].startswith("Hello, Ann!")
    menu = [b["text"] for row in welcome["reply_keyboard"]["keyboard"] for b in row]
    assert menu == [
        "❓ Ask a question",
        "📦 My orders",
        "⚠️ Complaint",
        "🙋 Talk to a person",
        "⚙️ Settings",
    ]


async def test_start_in_chinese_from_telegram_language(chat: Chat) -> None:
    newcomer = SandboxUser(id=5005, first_name="李雷", language_code="zh-hans")
    [welcome] = await chat.say(newcomer, "/start")
    assert welcome["plain_text"].startswith("李雷，您好！")
    assert "订单确认邮件" in welcome["plain_text"]  # not linked yet: told how to link
    menu = [b["text"] for row in welcome["reply_keyboard"]["keyboard"] for b in row]
    assert "📦 我的订单" in menu


async def test_unsupported_language_falls_back_to_the_shop_default(chat: Chat) -> None:
    [welcome] = await chat.say(STRANGER, "/start")
    assert welcome["plain_text"].startswith("Hello, Sam!")


async def test_commands_are_published_per_language(chat: Chat) -> None:
    scope = {"type": "all_private_chats"}
    english = chat.sandbox.commands("en", scope=scope)
    chinese = chat.sandbox.commands("zh", scope=scope)
    assert [c["command"] for c in english] == list(BOT_COMMANDS)
    assert dict((c["command"], c["description"]) for c in chinese)["orders"] == "最近的订单"


async def test_faq_hit_with_feedback(chat: Chat) -> None:
    [answer] = await chat.say(ANN, "How long will delivery take to Belgium?")
    assert "How long does delivery take?" in answer["plain_text"]
    assert "Did this help?" in answer["plain_text"]
    [thanks] = await chat.press(ANN, answer, "Yes")
    assert "Glad I could help" in thanks["plain_text"]
    assert "reply_markup" not in chat.current(ANN, answer["message_id"])  # buttons gone
    rows = list(chat.care.db.query("SELECT faq_slug, helpful FROM faq_feedback"))
    assert rows == [{"faq_slug": "delivery-time", "helpful": 1}]


async def test_faq_in_chinese(chat: Chat) -> None:
    [answer] = await chat.say(WEI, "运费多少钱？")
    assert "运费是多少？" in answer["plain_text"]
    assert "这个回答有帮助吗？" in answer["plain_text"]


async def test_not_helpful_offers_a_person_and_records_the_request(chat: Chat) -> None:
    [answer] = await chat.say(ANN, "can I pay with paypal")
    [sorry] = await chat.press(ANN, answer, "No")
    assert "talk to a person" in sorry["plain_text"]
    [recorded] = await chat.press(ANN, sorry, "Talk to a person")
    assert "Your request is ticket #1" in recorded["plain_text"]
    assert "by Mon 23 Nov, 14:00 (Europe/London)" in recorded["plain_text"]  # 4 support hours
    [row] = chat.care.db.query("SELECT kind, source, subject, status FROM tickets")
    assert row == {
        "kind": "inquiry",
        "source": "not_helpful",
        "subject": "can I pay with paypal",
        "status": "open",
    }


async def test_faq_miss_offers_a_person(chat: Chat) -> None:
    [miss] = await chat.say(ANN, "do you sell quantum flux capacitors")
    assert "could not find an answer" in miss["plain_text"]
    await chat.say(ANN, "how long does delivery take")  # another question in between
    [recorded] = await chat.press(ANN, miss, "Talk to a person")
    assert "ticket #1" in recorded["plain_text"]
    [row] = chat.care.db.query("SELECT source, subject FROM tickets")
    assert row == {"source": "no_match", "subject": "do you sell quantum flux capacitors"}


async def test_my_orders_lists_orders_and_shows_details(chat: Chat) -> None:
    [listing] = await chat.say(ANN, "📦 My orders")
    text = listing["plain_text"]
    assert text.index("#545017") < text.index("#495719")  # newest first
    assert "Delivered" in text  # imported history
    assert "£189.90" in text
    [detail] = await chat.press(ANN, listing, "#545017")
    assert "12 × DOLLY GIRL LUNCH BOX · £23.40" in detail["plain_text"]
    assert "Total: £189.90" in detail["plain_text"]


async def test_a_forged_order_button_cannot_show_another_customers_order(chat: Chat) -> None:
    [listing] = await chat.say(ANN, "/orders")
    ann_order = listing["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    [wei_listing] = await chat.say(WEI, "/orders")
    after = chat.sandbox.seq
    query_id = chat.sandbox.press_button(WEI, wei_listing["message_id"], ann_order, force=True)
    assert await chat.replies(WEI, after) == []
    answer = chat.sandbox.callback_answer(query_id)
    assert answer is not None
    assert answer["text"] == "在您的订单中找不到这个订单。"
    assert "DOLLY GIRL" not in text_of(chat.sandbox.sent(WEI.id))


async def test_unlinked_customer_is_told_how_to_see_orders(chat: Chat) -> None:
    [reply] = await chat.say(NEWCOMER, "/orders")
    assert "cannot see any orders" in reply["plain_text"]
    assert "help@demo.example" in reply["plain_text"]


async def test_deep_link_binds_the_telegram_user_to_the_shop_customer(chat: Chat) -> None:
    services = services_over(chat.care.config, chat.care.repos, chat.care.deps.clock)
    claire = chat.care.repos.customers.by_external_id("12651")
    assert claire is not None
    token, _ = services.links.issue(claire.id)
    await chat.say(NEWCOMER, "hello")  # first contact before linking: kept after binding
    linked, welcome = await chat.say(NEWCOMER, f"/start {token}")
    assert "now connected to your Demo Gifts account, Claire" in linked["plain_text"]
    assert welcome["plain_text"].startswith("Hello, Claire!")
    [orders] = await chat.say(NEWCOMER, "/orders")
    assert "Your recent orders" in orders["plain_text"]
    log = chat.care.repos.messages.for_customer(claire.id)
    assert log[0].text == "hello"
    [reused, _] = await chat.say(STRANGER, f"/start {token}")
    assert "already been used" in reused["plain_text"]


async def test_stop_opts_out_of_reminders(chat: Chat) -> None:
    [reply] = await chat.say(ANN, "/stop")
    assert "no more reminders" in reply["plain_text"]
    customer = chat.care.repos.customers.by_telegram_user(ANN.id)
    assert customer is not None
    assert customer.reminders_opt_out
    [row] = chat.care.db.query("SELECT surveys_opt_out FROM customers WHERE id = ?", [customer.id])
    assert row == {"surveys_opt_out": 1}


async def test_settings_switch_language_and_timezone(chat: Chat) -> None:
    [settings] = await chat.say(ANN, "/settings")
    assert "Reminders and offers: on" in settings["plain_text"]
    await chat.press(ANN, settings, "Language")
    prompt = chat.current(ANN, settings["message_id"])
    [changed] = await chat.press(ANN, prompt, "简体中文")
    assert changed["plain_text"] == "好的，之后我会使用简体中文与您交流。"
    [settings_zh] = await chat.say(ANN, "⚙️ 设置")
    await chat.press(ANN, settings_zh, "时区")
    zones = chat.current(ANN, settings_zh["message_id"])
    await chat.press(ANN, zones, "其他")
    [bad] = await chat.say(ANN, "Mars/Olympus")
    assert "不是有效的时区" in bad["plain_text"]
    [good] = await chat.say(ANN, "asia/shanghai")
    assert "Asia/Shanghai" in good["plain_text"]
    customer = chat.care.repos.customers.by_telegram_user(ANN.id)
    assert customer is not None
    assert (customer.language, customer.timezone) == ("zh", "Asia/Shanghai")


async def test_complaint_is_kept_as_a_ticket_even_without_a_staff_chat(chat: Chat) -> None:
    [choose] = await chat.say(ANN, "⚠️ Complaint")
    assert "Which order is it about?" in choose["plain_text"]
    await chat.press(ANN, choose, "Not about an order")
    await chat.press(ANN, chat.current(ANN, choose["message_id"]), "Wrong item")
    assert "please tell us what happened" in chat.current(ANN, choose["message_id"])["plain_text"]
    [added] = await chat.say(ANN, "I got a teapot instead of mugs")
    [opened] = await chat.press(ANN, added, "Send")
    assert "Your complaint is ticket #1" in opened["plain_text"]
    [row] = chat.care.db.query("SELECT kind, category, subject, card_message_id FROM tickets")
    assert row == {
        "kind": "complaint",
        "category": "wrong_item",
        "subject": "I got a teapot instead of mugs",
        "card_message_id": None,  # posted once a staff chat is configured
    }


async def test_unknown_command_and_sticker_get_a_helpful_answer(chat: Chat) -> None:
    [unknown] = await chat.say(ANN, "/frobnicate now")
    assert "I do not know the command /frobnicate" in unknown["plain_text"]
    after = chat.sandbox.seq
    chat.sandbox.send_sticker(ANN, emoji="🐱")
    [sticker] = await chat.replies(ANN, after)
    assert "only read text" in sticker["plain_text"]
    [row] = chat.care.db.query("SELECT payload FROM messages WHERE kind = 'sticker'")
    assert "🐱" in row["payload"]


async def test_edited_message_is_stored_but_not_answered_twice(chat: Chat) -> None:
    await chat.say(ANN, "how much is shiping")
    [original] = [
        m for m in chat.sandbox.messages(ANN.id) if m.get("from", {}).get("id") == ANN.id
    ][-1:]
    after = chat.sandbox.seq
    chat.sandbox.edit_text(ANN, original["message_id"], "how much is shipping")
    assert await chat.replies(ANN, after) == []
    kinds = [
        r["kind"] for r in chat.care.db.query("SELECT kind FROM messages WHERE direction='in'")
    ]
    assert kinds[-1] == "edited_text"


async def test_group_chat_is_asked_to_write_privately_and_chatter_is_not_stored(
    chat: Chat,
) -> None:
    group = -1009876543210
    chat.sandbox.add_group(group, "Gift fans")
    after = chat.sandbox.seq
    chat.sandbox.send_text(ANN, "what is the weather", chat_id=group)
    chat.sandbox.send_text(ANN, "/start", chat_id=group)
    await chat.sandbox.wait_idle(quiet=0.15, timeout=10)
    sent = [e.message for e in chat.sandbox.events_after(after, chat_id=group) if e.message]
    assert len(sent) == 1
    assert "private chat" in sent[0]["plain_text"]
    stored = chat.care.db.query(
        "SELECT kind, text FROM messages WHERE chat_id = ? AND direction = 'in'", [group]
    )
    assert list(stored) == [{"kind": "command", "text": "/start"}]  # the chatter is not kept


async def test_every_incoming_message_is_stored_before_its_answer(chat: Chat) -> None:
    await chat.say(ANN, "/start")
    await chat.say(ANN, "where is my order")
    rows = list(chat.care.db.query("SELECT direction, kind, text FROM messages ORDER BY id"))
    assert [r["direction"] for r in rows] == ["in", "out", "in", "out"]
    assert rows[2]["text"] == "where is my order"
    assert rows[3]["kind"] == "faq_answer"


async def test_a_telegram_failure_gets_an_apology_not_a_traceback(chat: Chat) -> None:
    # the reply fails on every attempt the rate limiter makes (a single 500 is just retried)
    retries = chat.care.config.telegram.max_retries
    chat.sandbox.set_fault("500", methods="sendMessage", count=1 + retries)
    after = chat.sandbox.seq
    chat.sandbox.send_text(ANN, "/help")
    replies = await chat.sandbox.wait_for_messages(ANN.id, after=after, timeout=30)
    assert [m["plain_text"] for m in replies] == [
        "Sorry, something went wrong on our side. Your message is saved; please try again in a "
        "moment."
    ]
    assert chat.care.db.table("messages").count_where("direction = 'in' AND text = '/help'") == 1


async def test_blocking_the_bot_flags_the_customer_and_writing_again_clears_it(chat: Chat) -> None:
    await chat.say(ANN, "/start")
    chat.sandbox.block_user(ANN.id)  # Telegram sends my_chat_member "kicked"
    await chat.sandbox.wait_idle(quiet=0.15)
    customer = chat.care.repos.customers.by_telegram_user(ANN.id)
    assert customer is not None
    assert customer.blocked
    chat.sandbox.unblock_user(ANN.id)
    [reply] = await chat.say(ANN, "/help")
    assert "what I can do" in reply["plain_text"]
    customer = chat.care.repos.customers.by_telegram_user(ANN.id)
    assert customer is not None
    assert not customer.blocked


async def test_a_403_while_answering_flags_the_customer_without_an_apology(chat: Chat) -> None:
    chat.sandbox.set_fault("403", methods="sendMessage", chat_id=ANN.id, count=1)
    assert await chat.say(ANN, "/help") == []
    customer = chat.care.repos.customers.by_telegram_user(ANN.id)
    assert customer is not None
    assert customer.blocked
    assert len(chat.sandbox.calls("sendMessage")) == 1  # no apology sent into a blocked chat


async def test_a_double_tap_is_harmless(chat: Chat) -> None:
    [answer] = await chat.say(ANN, "how much is shipping")
    button = answer["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    after = chat.sandbox.seq
    chat.sandbox.press_button(ANN, answer["message_id"], button)
    chat.sandbox.press_button(ANN, answer["message_id"], button, force=True)
    replies = await chat.replies(ANN, after)
    assert [m["plain_text"] for m in replies] == ["Glad I could help! Anything else, just ask."]
    assert chat.care.db.table("faq_feedback").count == 1


async def test_a_command_leaves_a_half_finished_step(chat: Chat) -> None:
    [choose] = await chat.say(ANN, "⚠️ Complaint")
    await chat.press(ANN, choose, "Not about an order")
    await chat.press(ANN, chat.current(ANN, choose["message_id"]), "Late")
    await chat.say(ANN, "/start")
    [answer] = await chat.say(ANN, "How long does delivery take?")
    assert "Did this help?" in answer["plain_text"]
    assert chat.care.db.table("ticket_drafts").count == 0
    assert chat.care.db.table("tickets").count == 0


async def test_order_dates_are_in_the_customers_timezone(chat: Chat) -> None:
    customer = chat.care.repos.customers.by_telegram_user(ANN.id)
    assert customer is not None
    chat.care.repos.customers.update_settings(customer.id, START, timezone="Asia/Shanghai")
    # order 545017 was placed 2011-02-25 15:xx London time: still the 25th in Shanghai (UTC+8)
    # but order 521354 at 2010-09-03 ... let the listing speak for the zone:
    [listing] = await chat.say(ANN, "/orders")
    orders = chat.care.repos.orders.recent_for_customer(customer.id, 5)
    from zoneinfo import ZoneInfo

    for order in orders:
        local = order.placed_at.astimezone(ZoneInfo("Asia/Shanghai"))
        assert f"#{order.external_id} · {local:%d %b %Y}" in listing["plain_text"]


async def test_storage_failure_asks_to_resend_and_does_not_answer(chat: Chat) -> None:
    chat.care.db.execute("PRAGMA query_only = ON")  # every write now fails
    replies = await chat.say(ANN, "how much is shipping")
    chat.care.db.execute("PRAGMA query_only = OFF")
    assert [m["plain_text"] for m in replies] == [
        "Sorry, I could not receive that message just now. Please send it again in a minute."
    ]


async def test_unknown_buttons_are_answered(chat: Chat) -> None:
    [welcome] = await chat.say(ANN, "/start")
    query_id = chat.sandbox.press_button(ANN, welcome["message_id"], "bogus:1", force=True)
    await chat.sandbox.wait_idle(quiet=0.15)
    assert chat.sandbox.callback_answer(query_id) is not None


async def test_group_commands_for_other_bots_are_ignored(chat: Chat) -> None:
    group = -1005550001111
    chat.sandbox.add_group(group, "Gift fans")
    after = chat.sandbox.seq
    chat.sandbox.send_text(ANN, "/start@some_other_bot", chat_id=group)
    await chat.sandbox.wait_idle(quiet=0.15)
    assert chat.sandbox.events_after(after, chat_id=group) == []


async def test_a_long_answer_with_ampersands_is_sent_whole(chat: Chat) -> None:
    from bot.models import FaqEntry

    answer = "Tea & biscuits " * 230  # 3,450 characters, 4,600 once & is escaped
    chat.care.repos.faq.upsert(
        [FaqEntry(0, "tea", "en", "Do you sell tea?", answer.strip(), "tea biscuits")], START
    )
    [reply] = await chat.say(ANN, "tea and biscuits?")
    assert reply["plain_text"].endswith("Did this help?")
    assert "Tea & biscuits" in reply["plain_text"]


async def test_order_updates_can_be_switched_off_in_settings(chat: Chat) -> None:
    [settings] = await chat.say(ANN, "/settings")
    assert "Order updates (shipped, delivered): on" in settings["plain_text"]
    await chat.press(ANN, settings, "Order updates")
    assert (
        "Order updates (shipped, delivered): off"
        in chat.current(ANN, settings["message_id"])["plain_text"]
    )
    customer = chat.care.repos.customers.by_telegram_user(ANN.id)
    assert customer is not None
    assert customer.order_updates_opt_out
