"""End-to-end tests of the Bot API sandbox, driven by real python-telegram-bot over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dtm
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import telegram
from aiohttp import web
from telegram import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from carebot.sandbox import BotApiSandbox, SandboxUser

ANN = SandboxUser(id=1001, first_name="Ann", last_name="Lee", username="ann")
BOB = SandboxUser(id=1002, first_name="Bob", language_code="de")
SUPPORT = -1001234567890


@pytest.fixture
async def sandbox() -> AsyncIterator[BotApiSandbox]:
    async with BotApiSandbox(seed=1) as sb:
        yield sb


@pytest.fixture
async def bot(sandbox: BotApiSandbox) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(sandbox.bot_token, base_url=sandbox.base_url) as tg_bot:
        yield tg_bot


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d.title(), callback_data=d) for d in data]])


async def test_get_me(bot: telegram.Bot, sandbox: BotApiSandbox) -> None:
    me = await bot.get_me()
    assert me.id == 123456 == sandbox.bot_id
    assert me.is_bot
    assert me.username == "carebot_sandbox_bot"
    assert me.first_name == "Carebot Sandbox"
    assert me.can_join_groups is True
    assert me.can_read_all_group_messages is False
    assert me.supports_inline_queries is False
    assert me.can_connect_to_business is False
    assert me.has_main_web_app is False
    assert me.api_kwargs == {}  # nothing PTB does not know about
    assert sandbox.base_url == f"{sandbox.url}/bot"


async def test_get_updates_long_poll_and_offset(bot: telegram.Bot, sandbox: BotApiSandbox) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    assert not poll.done()
    started = time.monotonic()
    sent = sandbox.send_text(ANN, "/start@carebot_sandbox_bot hello")
    updates = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - started < 1.0

    assert len(updates) == 1
    message = updates[0].message
    assert message is not None
    assert message.message_id == sent["message_id"] == 1
    assert message.text == "/start@carebot_sandbox_bot hello"
    assert message.chat.id == ANN.id
    assert message.chat.type == "private"
    assert message.from_user is not None
    assert message.from_user.username == "ann"
    assert message.from_user.language_code == "en"
    assert message.parse_entities(["bot_command"]) == {
        message.entities[0]: "/start@carebot_sandbox_bot"
    }
    assert isinstance(message.date, dtm.datetime)

    # Without an offset, unconfirmed updates are delivered again ...
    again = await bot.get_updates(timeout=0)
    assert [u.update_id for u in again] == [updates[0].update_id]
    # ... and an offset confirms them.
    sandbox.send_text(ANN, "second")
    rest = await bot.get_updates(offset=updates[0].update_id + 1, timeout=0)
    assert [u.message.text for u in rest if u.message] == ["second"]
    assert await bot.get_updates(offset=rest[-1].update_id + 1, timeout=0) == ()
    # limit is honoured
    for text in ("a", "b", "c"):
        sandbox.send_text(BOB, text)
    limited = await bot.get_updates(limit=2, timeout=0)
    assert [u.message.text for u in limited if u.message] == ["a", "b"]
    # allowed_updates filters what Telegram creates from now on
    await bot.get_updates(offset=-1, timeout=0, allowed_updates=["callback_query"])
    sandbox.send_text(BOB, "ignored")
    remaining = await bot.get_updates(offset=limited[-1].update_id + 2, timeout=0)
    assert remaining == ()


async def test_send_edit_answer_round_trip(bot: telegram.Bot, sandbox: BotApiSandbox) -> None:
    sandbox.send_text(ANN, "hi")
    msg = await bot.send_message(
        ANN.id, "<b>Order</b> #7 &amp; more", parse_mode="HTML", reply_markup=keyboard("yes", "no")
    )
    assert isinstance(msg, telegram.Message)
    assert msg.message_id == 2  # counters are per chat and shared by both sides
    assert msg.text == "Order #7 & more"
    assert msg.text_html == "<b>Order</b> #7 &amp; more"
    assert msg.from_user is not None
    assert msg.from_user.id == sandbox.bot_id
    assert msg.reply_markup == keyboard("yes", "no")

    stored = sandbox.sent(ANN.id)[-1]
    assert stored["text"] == "<b>Order</b> #7 &amp; more"
    assert stored["plain_text"] == "Order #7 & more"
    assert stored["parse_mode"] == "HTML"

    with pytest.raises(ValueError, match="no button"):
        sandbox.press_button(ANN, msg.message_id, "maybe")
    query_id = sandbox.press_button(ANN, msg.message_id, "yes")
    updates = await bot.get_updates(timeout=1)
    query = updates[-1].callback_query
    assert query is not None
    assert query.id == query_id
    assert query.data == "yes"
    assert query.from_user.id == ANN.id
    assert query.message is not None
    assert query.message.message_id == msg.message_id
    assert sandbox.callback_answer(query_id) is None
    assert await query.answer("Thanks!", show_alert=True)
    assert sandbox.callback_answer(query_id) == {
        "text": "Thanks!",
        "show_alert": True,
        "url": None,
        "cache_time": 0,
    }
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query_id)
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query("nope")
    # chat_instance is stable per chat
    sandbox.press_button(ANN, msg.message_id, "no")
    second = (await bot.get_updates(offset=updates[-1].update_id + 1, timeout=1))[-1]
    assert second.callback_query is not None
    assert second.callback_query.chat_instance == query.chat_instance

    edited = await bot.edit_message_text(
        "Confirmed", chat_id=ANN.id, message_id=msg.message_id, reply_markup=keyboard("undo")
    )
    assert isinstance(edited, telegram.Message)
    assert edited.text == "Confirmed"
    assert edited.edit_date is not None
    assert edited.reply_markup == keyboard("undo")
    markup_only = await bot.edit_message_reply_markup(ANN.id, msg.message_id)
    assert isinstance(markup_only, telegram.Message)
    assert markup_only.reply_markup is None

    current = sandbox.sent(ANN.id)
    assert [m["plain_text"] for m in current] == ["Confirmed"]
    assert "reply_markup" not in current[0]
    assert "edit_date" in current[0]
    assert [e.method for e in sandbox.events] == [
        "sendMessage",
        "answerCallbackQuery",
        "editMessageText",
        "editMessageReplyMarkup",
    ]
    assert [c["ok"] for c in sandbox.calls("answercallbackquery")] == [True, False, False]

    # custom reply keyboards are recorded per chat
    await bot.send_message(ANN.id, "Pick", reply_markup=ReplyKeyboardMarkup([["A", "B"]]))
    shown = sandbox.reply_keyboard(ANN.id)
    assert shown is not None
    assert shown["keyboard"] == [[{"text": "A"}, {"text": "B"}]]
    await bot.send_message(ANN.id, "Done", reply_markup=ReplyKeyboardRemove())
    assert sandbox.reply_keyboard(ANN.id) is None


async def test_bad_requests_match_telegram(bot: telegram.Bot, sandbox: BotApiSandbox) -> None:
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(ANN.id, "nobody here yet")  # user never wrote to the bot
    sandbox.send_text(ANN, "hi")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(ANN.id, "x" * 4097)
    await bot.send_message(ANN.id, "x" * 4096)
    # the limit applies after entity parsing
    await bot.send_message(ANN.id, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    # counted in UTF-16 code units: an emoji outside the BMP takes two
    await bot.send_message(ANN.id, "😀" * 2048)
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(ANN.id, "😀" * 2049)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(ANN.id, "")
    with pytest.raises(BadRequest, match="Can't parse entities: unsupported start tag"):
        await bot.send_message(ANN.id, "<div>hi</div>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="reserved and must be escaped"):
        await bot.send_message(ANN.id, "Total: 5.00", parse_mode="MarkdownV2")
    ok = await bot.send_message(ANN.id, r"*Total:* 5\.00", parse_mode="MarkdownV2")
    assert ok.text == "Total: 5.00"
    assert ok.entities[0].type == "bold"

    msg = await bot.send_message(ANN.id, "same", reply_markup=keyboard("a"))
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("same", ANN.id, msg.message_id, reply_markup=keyboard("a"))
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(ANN.id, msg.message_id, reply_markup=keyboard("a"))
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("new", ANN.id, 999)
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await bot.edit_message_text("new", ANN.id, 1)  # the user's own message
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(ANN.id, "x", reply_markup=keyboard("d" * 65))
    failures = [c for c in sandbox.calls() if not c["ok"]]
    assert failures[0]["description"] == "Bad Request: chat not found"
    assert failures[0]["error_code"] == 400


async def test_entities_use_utf16_offsets(bot: telegram.Bot, sandbox: BotApiSandbox) -> None:
    sandbox.send_text(ANN, "hi")
    msg = await bot.send_message(ANN.id, "Hi <b>😀 Ann</b> <i>x</i>", parse_mode="HTML")
    assert msg.text == "Hi 😀 Ann x"
    assert [(e.type, e.offset, e.length) for e in msg.entities] == [
        ("bold", 3, 6),
        ("italic", 10, 1),
    ]
    assert list(msg.parse_entities().values()) == ["😀 Ann", "x"]
    md = await bot.send_message(
        ANN.id, "||secret|| [link](https://example.com/a_\\(b\\)) ~no~", parse_mode="MarkdownV2"
    )
    assert md.text == "secret link no"
    assert md.entities[1].url == "https://example.com/a_(b)"
    with pytest.raises(BadRequest, match="can't find end of bold entity at byte offset 0"):
        await bot.send_message(ANN.id, "*open", parse_mode="MarkdownV2")


async def test_raw_http_errors(sandbox: BotApiSandbox) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{sandbox.base_url}{sandbox.bot_token}/frobnicate") as resp:
            assert resp.status == 404
            assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        async with session.post(f"{sandbox.base_url}not-a-token/getMe") as resp:
            assert resp.status == 401
            assert await resp.json() == {
                "ok": False,
                "error_code": 401,
                "description": "Unauthorized",
            }
        # method names are case-insensitive, JSON bodies are accepted
        sandbox.send_text(ANN, "hi")
        url = f"{sandbox.base_url}{sandbox.bot_token}/SENDMESSAGE"
        body = {"chat_id": ANN.id, "text": "json", "reply_markup": {"inline_keyboard": []}}
        async with session.post(url, json=body) as resp:
            data = await resp.json()
        assert resp.status == 200
        assert data["ok"] is True
        assert data["result"]["text"] == "json"
        assert data["result"]["chat"]["id"] == ANN.id
        async with session.get(url, params={"chat_id": "42", "text": "x"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["description"] == "Bad Request: chat not found"
    assert sandbox.events[-1].method == "sendMessage"


async def test_blocked_user_and_faults(
    bot: telegram.Bot, sandbox: BotApiSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    sandbox.send_text(ANN, "hi")
    sandbox.send_text(BOB, "hallo")

    sandbox.block_user(ANN.id)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(ANN.id, "still there?")
    await bot.send_message(BOB.id, "Bob is fine")
    sandbox.unblock_user(ANN.id)
    await bot.send_message(ANN.id, "welcome back")

    sandbox.set_fault("429", count=1, retry_after=3)
    with pytest.raises(RetryAfter) as retry:
        await bot.send_message(ANN.id, "flood")
    assert retry.value.retry_after == dtm.timedelta(seconds=3)
    await bot.send_message(ANN.id, "after the flood")  # count=1: only the first call failed

    sandbox.set_fault("500", methods={"sendMessage"}, count=1)
    with pytest.raises(NetworkError, match="Internal Server Error") as server_error:
        await bot.send_message(ANN.id, "boom")
    assert not isinstance(server_error.value, BadRequest)

    sandbox.set_fault("403", chat_id=BOB.id)
    with pytest.raises(Forbidden):
        await bot.send_message(BOB.id, "blocked by fault")
    await bot.send_message(ANN.id, "other chats unaffected")
    sandbox.clear_faults()
    await bot.send_message(BOB.id, "fault cleared")

    sandbox.set_fault("timeout", delay=2.0, count=1)
    started = time.monotonic()
    with pytest.raises(TimedOut):
        await bot.send_message(ANN.id, "lost", read_timeout=0.3)
    assert time.monotonic() - started < 1.5
    await bot.send_message(ANN.id, "retried")

    # apply=True: the call takes effect, only the answer is lost
    sandbox.set_fault("timeout", delay=2.0, count=1, apply=True)
    with pytest.raises(TimedOut):
        await bot.send_message(BOB.id, "delivered anyway", read_timeout=0.3)
    assert sandbox.sent(BOB.id)[-1]["text"] == "delivered anyway"

    sandbox.set_fault("500", rate=0.5)
    outcomes = []
    for i in range(20):
        try:
            await bot.send_message(BOB.id, f"maybe {i}")
            outcomes.append(True)
        except NetworkError:
            outcomes.append(False)
    assert 0 < sum(outcomes) < 20
    sandbox.clear_faults()

    assert [m["plain_text"] for m in sandbox.sent(ANN.id)] == [
        "welcome back",
        "after the flood",
        "other chats unaffected",
        "retried",
    ]
    assert [c.get("fault") for c in sandbox.calls("sendMessage") if not c["ok"]][:4] == [
        None,
        "429",
        "500",
        "403",
    ]

    # blocking queues a my_chat_member update like Telegram
    kinds = [type(u.my_chat_member).__name__ for u in await bot.get_updates(timeout=0)]
    assert kinds.count("ChatMemberUpdated") == 2


async def test_fault_rates_are_deterministic() -> None:
    async def run() -> list[bool]:
        async with (
            BotApiSandbox(seed=7) as sb,
            telegram.Bot(sb.bot_token, base_url=sb.base_url) as tg_bot,
        ):
            sb.send_text(ANN, "hi")
            sb.set_fault("500", rate=0.3)
            results = []
            for _ in range(15):
                try:
                    await tg_bot.send_message(ANN.id, "x")
                    results.append(True)
                except NetworkError:
                    results.append(False)
            return results

    assert await run() == await run()


async def test_forum_topics(bot: telegram.Bot, sandbox: BotApiSandbox) -> None:
    sandbox.add_group(SUPPORT, "Support", forum=True)
    sandbox.add_group(-1009, "Plain group")
    topic = await bot.create_forum_topic(SUPPORT, "Ann Lee #1001")
    assert isinstance(topic, telegram.ForumTopic)
    assert topic.name == "Ann Lee #1001"
    assert topic.icon_color == 7322096
    thread = topic.message_thread_id

    msg = await bot.send_message(SUPPORT, "New ticket", message_thread_id=thread)
    assert msg.message_thread_id == thread
    assert msg.is_topic_message is True
    assert msg.chat.is_forum is True
    assert msg.chat.type == "supergroup"
    assert msg.chat.title == "Support"

    operator = SandboxUser(id=7, first_name="Operator")
    reply = sandbox.send_text(operator, "Hello Ann", chat_id=SUPPORT, thread_id=thread)
    update = (await bot.get_updates(timeout=1))[-1]
    assert update.message is not None
    assert update.message.message_id == reply["message_id"]
    assert update.message.message_thread_id == thread
    assert update.message.is_topic_message
    assert update.message.from_user is not None
    assert update.message.from_user.id == operator.id

    with pytest.raises(BadRequest, match="Message thread not found"):
        await bot.send_message(SUPPORT, "x", message_thread_id=424242)
    with pytest.raises(BadRequest, match="The chat is not a forum"):
        await bot.create_forum_topic(-1009, "nope")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.create_forum_topic(-1000, "nope")

    assert await bot.edit_forum_topic(SUPPORT, thread, name="Ann Lee (closed)")
    assert await bot.close_forum_topic(SUPPORT, thread)
    with pytest.raises(BadRequest, match="Topic_not_modified"):
        await bot.close_forum_topic(SUPPORT, thread)
    assert sandbox.topics(SUPPORT) == [
        {
            "message_thread_id": thread,
            "name": "Ann Lee (closed)",
            "icon_color": 7322096,
            "is_closed": True,
        }
    ]
    assert await bot.reopen_forum_topic(SUPPORT, thread)
    assert [m["plain_text"] for m in sandbox.sent(SUPPORT)] == ["New ticket"]
    assert await bot.delete_forum_topic(SUPPORT, thread)
    assert sandbox.messages(SUPPORT) == []
    assert sandbox.topics(SUPPORT) == []


async def test_copy_forward_photo_and_chat_action(
    bot: telegram.Bot, sandbox: BotApiSandbox
) -> None:
    sandbox.add_group(SUPPORT, "Support", forum=True)
    topic = await bot.create_forum_topic(SUPPORT, "Ann")
    photo = sandbox.send_photo(ANN, caption="broken item")
    assert photo["photo"][-1]["width"] == 800

    copied = await bot.copy_message(
        SUPPORT, ANN.id, photo["message_id"], message_thread_id=topic.message_thread_id
    )
    assert isinstance(copied, telegram.MessageId)
    group_msgs = sandbox.sent(SUPPORT)
    assert group_msgs[-1]["message_id"] == copied.message_id
    assert group_msgs[-1]["caption"] == "broken item"
    assert group_msgs[-1]["photo"] == photo["photo"]
    assert group_msgs[-1]["from"]["id"] == sandbox.bot_id
    assert group_msgs[-1]["message_thread_id"] == topic.message_thread_id

    text = sandbox.send_text(ANN, "where is my order?")
    forwarded = await bot.forward_message(SUPPORT, ANN.id, text["message_id"])
    assert forwarded.text == "where is my order?"
    assert isinstance(forwarded.forward_origin, telegram.MessageOriginUser)
    assert forwarded.forward_origin.sender_user.id == ANN.id
    with pytest.raises(BadRequest, match="Message to copy not found"):
        await bot.copy_message(SUPPORT, ANN.id, 999)

    sent_photo = await bot.send_photo(
        ANN.id, photo["photo"][-1]["file_id"], caption="<i>Looks bad</i>", parse_mode="HTML"
    )
    assert sent_photo.caption == "Looks bad"
    assert sent_photo.photo[-1].file_id == photo["photo"][-1]["file_id"]
    assert sandbox.sent(ANN.id)[-1]["caption"] == "<i>Looks bad</i>"

    assert await bot.send_chat_action(ANN.id, "typing")
    assert sandbox.events[-1].method == "sendChatAction"
    assert sandbox.events[-1].chat_id == ANN.id
    assert await bot.delete_message(ANN.id, sent_photo.message_id)
    assert all(m["message_id"] != sent_photo.message_id for m in sandbox.messages(ANN.id))

    chat = await bot.get_chat(ANN.id)
    assert chat.type == "private"
    assert chat.first_name == "Ann"
    assert chat.username == "ann"


async def test_commands_per_scope_and_language(bot: telegram.Bot, sandbox: BotApiSandbox) -> None:
    await bot.set_my_commands([BotCommand("start", "Start"), BotCommand("help", "Help")])
    await bot.set_my_commands([BotCommand("start", "Starten")], language_code="de")
    await bot.set_my_commands(
        [BotCommand("orders", "My orders")], scope=BotCommandScopeAllPrivateChats()
    )
    assert sandbox.commands() == [
        {"command": "start", "description": "Start"},
        {"command": "help", "description": "Help"},
    ]
    assert sandbox.commands("de") == [{"command": "start", "description": "Starten"}]
    assert sandbox.commands(scope={"type": "all_private_chats"}) == [
        {"command": "orders", "description": "My orders"}
    ]
    assert sandbox.commands("fr") == []
    assert [c.command for c in await bot.get_my_commands(language_code="de")] == ["start"]
    assert await bot.delete_my_commands(language_code="de")
    assert sandbox.commands("de") == []
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])


async def test_webhook_delivery(bot: telegram.Bot, sandbox: BotApiSandbox) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []
    failures_left = 1
    got_two = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        nonlocal failures_left
        if failures_left:
            failures_left -= 1
            return web.Response(status=500)  # the sandbox retries
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        if len(received) == 2:
            got_two.set()
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        sandbox.send_text(ANN, "queued before the webhook")
        assert await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        sandbox.send_text(ANN, "after")
        await asyncio.wait_for(got_two.wait(), 3)
        assert [secret for secret, _ in received] == ["s3cret", "s3cret"]
        assert [u["message"]["text"] for _, u in received] == ["queued before the webhook", "after"]
        assert received[0][1]["update_id"] < received[1][1]["update_id"]

        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        info = await bot.get_webhook_info()
        assert info.url == f"http://127.0.0.1:{port}/hook"
        assert info.pending_update_count == 0
        assert info.last_error_message is not None  # the first attempt got a 500

        assert await bot.delete_webhook()
        sandbox.send_text(ANN, "polling again")
        updates = await bot.get_updates(timeout=1)
        assert [u.message.text for u in updates if u.message] == ["polling again"]
        assert (await bot.get_webhook_info()).url == ""
    finally:
        await runner.cleanup()


async def test_application_echo_bot(sandbox: BotApiSandbox) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            f"echo: {update.effective_message.text}", reply_markup=keyboard("again")
        )

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("pressed")
        await query.edit_message_text(f"pressed {query.data}")

    application: Application[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder().token(sandbox.bot_token).base_url(sandbox.base_url).build()
    )
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    application.add_handler(CallbackQueryHandler(on_button))
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0)
        try:
            seq = sandbox.seq
            sandbox.send_text(ANN, "hello")
            replies = await sandbox.wait_for_messages(ANN.id, after=seq, timeout=5)
            assert [m["text"] for m in replies] == ["echo: hello"]
            ann_reply = replies[0]

            seq = sandbox.seq
            sandbox.send_text(BOB, "one")
            sandbox.send_text(BOB, "two")
            replies = await sandbox.wait_for_messages(BOB.id, 2, after=seq)
            assert sorted(m["text"] for m in replies) == ["echo: one", "echo: two"]

            query_id = sandbox.press_button(ANN, ann_reply["message_id"], "again")
            await sandbox.wait_idle(quiet=0.2)
            answer = sandbox.callback_answer(query_id)
            assert answer is not None
            assert answer["text"] == "pressed"
            assert sandbox.sent(ANN.id)[-1]["text"] == "pressed again"
            assert "reply_markup" not in sandbox.sent(ANN.id)[-1]
        finally:
            await application.updater.stop()
            await application.stop()


async def test_wait_for_messages_timeout_is_helpful(
    bot: telegram.Bot, sandbox: BotApiSandbox
) -> None:
    sandbox.send_text(ANN, "hi")
    await bot.send_message(ANN.id, "first reply")
    seq = sandbox.seq
    with pytest.raises(BadRequest):
        await bot.send_message(ANN.id, "")
    with pytest.raises(TimeoutError) as excinfo:
        await sandbox.wait_for_messages(ANN.id, after=seq, timeout=0.2)
    text = str(excinfo.value)
    assert "expected 1 new bot message(s) in chat 1001" in text
    assert "'first reply'" in text
    assert "message text is empty" in text
    # ... while an earlier seq finds the message that is already there
    assert [m["text"] for m in await sandbox.wait_for_messages(ANN.id, after=0)] == ["first reply"]


async def test_http_control_api(bot: telegram.Bot, sandbox: BotApiSandbox) -> None:
    async with aiohttp.ClientSession(base_url=sandbox.url) as http:
        user = {"id": 555, "first_name": "Remote"}
        async with http.post("/control/message", json={"user": user, "text": "via http"}) as r:
            assert r.status == 200
            message = await r.json()
        assert message["text"] == "via http"
        assert message["chat"]["id"] == 555

        seq = sandbox.seq
        events_request = asyncio.create_task(
            http.get("/control/events", params={"after": seq, "timeout": 3, "chat_id": 555})
        )
        await asyncio.sleep(0.05)
        sent = await bot.send_message(555, "pong", reply_markup=keyboard("ok"))
        async with await events_request as r:
            events = await r.json()
        assert [(e["method"], e["message"]["text"]) for e in events] == [("sendMessage", "pong")]
        assert events[0]["seq"] == seq + 1

        body = {"user": user, "message_id": sent.message_id, "data": "ok"}
        async with http.post("/control/callback", json=body) as r:
            query_id = (await r.json())["query_id"]
        async with http.post("/control/callback", json={**body, "data": "forged"}) as r:
            assert r.status == 400
            assert "no button" in (await r.json())["error"]
        raw = {
            "message_id": 99,
            "date": 0,
            "chat": {"id": 555, "type": "private", "first_name": "Remote"},
            "text": "raw",
        }
        async with http.post("/control/update", json={"message": raw}) as r:
            update_id = (await r.json())["update_id"]
        updates = await bot.get_updates(timeout=0)
        assert updates[1].callback_query is not None
        assert updates[1].callback_query.id == query_id
        assert updates[-1].update_id == update_id

        async with http.post("/control/faults", json={"kind": "500", "count": 1}) as r:
            assert r.status == 200
        with pytest.raises(NetworkError):
            await bot.send_message(555, "fails")
        async with http.post("/control/faults", json={"kind": "429"}) as r:
            assert r.status == 200
        async with http.delete("/control/faults") as r:
            assert r.status == 200
        await bot.send_message(555, "works")
        async with http.get("/control/sent", params={"chat_id": 555}) as r:
            assert [m["text"] for m in await r.json()] == ["pong", "works"]

        async with http.post("/control/reset") as r:
            assert r.status == 200
        assert sandbox.messages(555) == []
        assert sandbox.events == []
        with pytest.raises(BadRequest, match="Chat not found"):
            await bot.send_message(555, "forgotten")


async def test_wait_idle_and_stop_release_long_polls(sandbox: BotApiSandbox) -> None:
    async with telegram.Bot(sandbox.bot_token, base_url=sandbox.base_url) as tg_bot:
        await sandbox.wait_idle(quiet=0.05, timeout=1)
        sandbox.send_text(ANN, "nobody polls")
        with pytest.raises(TimeoutError, match="not yet fetched"):
            await sandbox.wait_idle(quiet=0.05, timeout=0.2)
        await tg_bot.get_updates(timeout=0)
        await sandbox.wait_idle(quiet=0.05, timeout=1)

        poll = asyncio.create_task(tg_bot.get_updates(offset=-1, timeout=30))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await sandbox.stop()
        assert time.monotonic() - started < 2
        await asyncio.gather(poll, return_exceptions=True)
