"""Reminder campaigns end to end: the real Application, the sandbox, the demo shop's real
purchase history, and a controlled clock (jobs are run, never slept for)."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot.clock import FixedClock
from bot.config import Config, resolve_database_path
from bot.models import TelegramIdentity
from bot.tickets import TicketKind
from carebot.cli import main
from carebot.runtime import CareBot
from carebot.sandbox import BotApiSandbox, SandboxUser
from handlers.campaigns import advance_campaign, sender_running, suggestion_model
from storage.database import open_database
from storage.repositories import Repositories
from tests.conftest import bot_on_sandbox
from tests.e2e.test_tickets import ADMIN, OUTSIDER, desk_config

CHRISTMAS = """
name = "christmas-2026"
occasion = "christmas"
days_before = 5
send_time = "10:00"

[audience]
occasion_buyers_days = 21
occasion_min_years = 2

[suggestions]
count = 3

[template]
en = \"\"\"Hi {{ customer.first_name or "there" }}! Christmas is {{ occasion.days_left }} days away.
{% if last_occasion_purchase %}Last year you chose \
{{ last_occasion_purchase.items[0]|title }}.{% endif %}

Ideas for you:
{% for s in suggestions %}• {{ s.name|title }} {{ s.price_text }}
{% endfor %}\"\"\"
zh = \"\"\"{{ customer.first_name }}，您好！距离圣诞节还有 {{ occasion.days_left }} 天。\"\"\"
"""
# 20 Dec 2026, 10:00 in London: five days before Christmas, the reminders' moment.
SEND_DAY = datetime(2026, 12, 20, 10, 0, tzinfo=UTC)
USER_BASE = 70_000


def campaign_config(tmp_path: Path, **campaigns: Any) -> Config:
    config = desk_config(tmp_path)
    return dataclasses.replace(
        config,
        campaigns=dataclasses.replace(config.campaigns, **campaigns),
        shop=dataclasses.replace(config.shop, url="https://shop.example"),
    )


def loyal_christmas_buyers(repos: Repositories) -> list[dict[str, Any]]:
    """Customers who bought in the three weeks before Christmas in both 2009 and 2010."""
    return list(
        repos.db.query(
            """SELECT c.id, c.first_name FROM customers c WHERE c.id IN (
                   SELECT customer_id FROM orders WHERE kind = 'order' AND (
                       (placed_at >= '2009-12-04' AND placed_at < '2009-12-25') OR
                       (placed_at >= '2010-12-04' AND placed_at < '2010-12-25'))
                   GROUP BY customer_id HAVING COUNT(DISTINCT substr(placed_at, 1, 4)) = 2)
               ORDER BY c.id"""
        )
    )


def bind_on_telegram(repos: Repositories, customer_ids: list[int], sandbox: BotApiSandbox) -> None:
    """As if each had started the bot earlier: bound to a sandbox user with a private chat."""
    for customer_id in customer_ids:
        customer = repos.customers.get(customer_id)
        assert customer is not None
        user_id = USER_BASE + customer_id
        name = customer.first_name or f"Customer {customer_id}"
        who = TelegramIdentity(user_id, name)
        if customer.telegram_user_id is None:
            repos.customers.bind_telegram(
                customer_id, who, user_id, datetime(2026, 1, 1, tzinfo=UTC)
            )
        sandbox.add_user(SandboxUser(id=customer.telegram_user_id or user_id, first_name=name))


@dataclasses.dataclass
class Shop:
    sandbox: BotApiSandbox
    care: CareBot
    config_path: Path
    clock: FixedClock
    recipients: list[int]  # customer ids

    def cli(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(
            main, ["--config", str(self.config_path), *args], obj={"clock": self.clock}
        )
        return result.exit_code, result.stdout + result.stderr

    def chat_of(self, customer_id: int) -> int:
        customer = self.care.repos.customers.get(customer_id)
        assert customer is not None
        assert customer.telegram_user_id is not None
        return customer.telegram_user_id

    def reminders_to(self, customer_id: int) -> list[dict[str, Any]]:
        return [
            e.message
            for e in self.sandbox.events_after(0, chat_id=self.chat_of(customer_id))
            if e.method == "sendMessage"
            and e.message is not None
            and "Christmas" in e.message.get("plain_text", "")
        ]

    async def press(self, customer_id: int, message: dict[str, Any], label: str) -> list[Any]:
        """A recipient taps a button; the bot's answers (waits for slow ones: "Show me" may
        build the suggestion model first)."""
        user = SandboxUser(id=self.chat_of(customer_id), first_name="x")
        buttons = [b for row in message["reply_markup"]["inline_keyboard"] for b in row]
        [button] = [b for b in buttons if label in b["text"]]
        return await self.tap(user, message["message_id"], button["callback_data"])

    async def tap(self, user: SandboxUser, message_id: int, data: str) -> list[Any]:
        after = self.sandbox.seq
        self.sandbox.press_button(user, message_id, data, force=True)
        for _ in range(100):
            await asyncio.sleep(0.1)
            await self.sandbox.wait_idle(quiet=0.1, timeout=10)
            sent = [
                e.message
                for e in self.sandbox.events_after(after, chat_id=user.id)
                if e.message is not None
            ]
            answered = any(
                e.method == "answerCallbackQuery" for e in self.sandbox.events_after(after)
            )
            if sent or (answered and not data.endswith(":more")):
                return sent
        return []

    def ledger(self) -> list[dict[str, Any]]:
        return list(self.care.db.query("SELECT * FROM campaign_deliveries ORDER BY id"))

    async def run_campaign(self, moment: datetime) -> None:
        """Move the clock, do what the campaign's job does at that moment, and wait for its
        sender to finish."""
        self.clock.set(moment)
        for campaign in self.care.deps.campaigns.campaigns.live():
            task = await advance_campaign(self.care.application, campaign.id)
            if task is not None:
                await asyncio.wait_for(task, timeout=60)
        await self.sandbox.wait_idle(quiet=0.2, timeout=10)


def write_config_file(tmp_path: Path, config: Config) -> Path:
    """The CLI reads a file: the same settings the running bot was given."""
    path = tmp_path / "carebot.toml"
    path.write_text(
        f'[database]\npath = "{resolve_database_path(config)}"\n'
        f'[shop]\nname = "{config.shop.name}"\ntimezone = "{config.shop.timezone}"\n'
        f'url = "{config.shop.url}"\n'
        f"[staff]\nadmins = [{ADMIN.id}]\n"
        f"[campaigns]\nmessages_per_second = {config.campaigns.messages_per_second}\n",
        encoding="utf-8",
    )
    return path


async def open_shop(
    tmp_path: Path, demo_database: Path, clock: FixedClock, **campaigns: Any
) -> AsyncIterator[Shop]:
    config = campaign_config(tmp_path, **campaigns)
    shutil.copyfile(demo_database, resolve_database_path(config))
    async with BotApiSandbox() as sandbox:
        care = bot_on_sandbox(config, clock, sandbox)
        recipients = [r["id"] for r in loyal_christmas_buyers(care.repos)]
        bind_on_telegram(care.repos, recipients, sandbox)
        async with care.running():
            yield Shop(sandbox, care, write_config_file(tmp_path, config), clock, recipients)


@pytest.fixture
async def shop(tmp_path: Path, clock: FixedClock, demo_database: Path) -> AsyncIterator[Shop]:
    async for harness in open_shop(tmp_path, demo_database, clock, messages_per_second=20):
        yield harness


def create_and_start(shop: Shop, tmp_path: Path, text: str = CHRISTMAS) -> str:
    spec = tmp_path / "christmas.toml"
    spec.write_text(text, encoding="utf-8")
    code, out = shop.cli("campaign", "create", str(spec))
    assert code == 0, out
    code, out = shop.cli("campaign", "start", "christmas-2026")
    assert code == 0, out
    return out


async def test_loyal_christmas_buyers_get_one_personal_reminder_each(
    shop: Shop, tmp_path: Path
) -> None:
    assert len(shop.recipients) == 7  # bought before Christmas in 2009 and in 2010
    code, out = shop.cli("campaign", "create", str(tmp_path / "missing.toml"))
    assert code == 2
    spec = tmp_path / "christmas.toml"
    spec.write_text(CHRISTMAS, encoding="utf-8")
    assert shop.cli("campaign", "create", str(spec))[0] == 0
    code, out = shop.cli("campaign", "preview", "christmas-2026")
    assert code == 0, out
    assert "Audience: 7 recipients" in out
    assert "Hi " in out
    assert "Ideas for you:" in out
    assert shop.ledger() == []  # a preview writes nothing
    out = shop.cli("campaign", "start", "christmas-2026")[1]
    assert "is scheduled" in out

    await shop.run_campaign(SEND_DAY - timedelta(days=1))  # too early: nothing goes out
    assert all(shop.reminders_to(c) == [] for c in shop.recipients)

    await shop.run_campaign(SEND_DAY)
    for customer_id in shop.recipients:
        [reminder] = shop.reminders_to(customer_id)
        assert "Christmas is 5 days away" in reminder["plain_text"]
        assert "Last year you chose" in reminder["plain_text"]
        assert reminder["plain_text"].count("• ") == 3
        buttons = [b["text"] for r in reminder["reply_markup"]["inline_keyboard"] for b in r]
        assert buttons == ["🎁 Show me", "Not this year", "Stop reminders"]
    assert {r["status"] for r in shop.ledger()} == {"sent"}
    code, out = shop.cli("campaign", "report", "christmas-2026")
    assert "sent: 7" in out
    assert "christmas-2026  christmas 2026  done  (sent 7)" in shop.cli("campaign", "list")[1]


async def test_a_campaign_is_planned_once_while_its_plan_is_still_running(
    shop: Shop, tmp_path: Path
) -> None:
    """Planning a big base takes minutes; the watch job, finding the campaign still
    scheduled meanwhile, must not start a second plan beside it."""
    create_and_start(shop, tmp_path)
    shop.clock.set(SEND_DAY)
    app = shop.care.application
    [campaign] = shop.care.deps.campaigns.campaigns.live()
    first = asyncio.create_task(advance_campaign(app, campaign.id))
    await asyncio.sleep(0)  # the first plan is under way (in a worker thread)
    assert sender_running(app, campaign.id)  # what the watch job checks
    assert await advance_campaign(app, campaign.id) is None
    assert not first.done()
    sender = await first
    assert sender is not None
    await asyncio.wait_for(sender, timeout=60)
    assert {r["status"] for r in shop.ledger()} == {"sent"}
    assert len(shop.ledger()) == len(shop.recipients)


async def test_callers_at_the_same_moment_share_one_suggestion_model(shop: Shop) -> None:
    """A plan, a "Show me" press and a dashboard preview asking at once must not each
    build the co-purchase model (tens of megabytes apiece over a big shop)."""
    app = shop.care.application

    first, second = await asyncio.gather(suggestion_model(app), suggestion_model(app))

    assert first is second
    assert await suggestion_model(app) is first  # purchases unchanged: kept


async def test_a_button_press_never_waits_for_the_model_to_be_rebuilt(shop: Shop) -> None:
    """After new purchases, "Show me" and previews keep the model in hand (a rebuild takes
    tens of seconds over a million customers) and a rebuild runs in the background, at most
    every 15 minutes; planning asks for a fresh one."""
    app = shop.care.application
    first = await suggestion_model(app)
    with shop.care.db.conn:  # the catalogue changes
        shop.care.db.execute("UPDATE products SET updated_at = '2099-01-01'")

    shop.clock.advance(timedelta(minutes=5))
    assert await suggestion_model(app) is first  # changed, but rebuilt 5 minutes ago
    assert app.bot_data.suggestion_refresh is None

    shop.clock.advance(timedelta(minutes=15))
    assert await suggestion_model(app) is first  # in hand at once...
    refresh = app.bot_data.suggestion_refresh
    assert refresh is not None
    await refresh  # ...while the rebuild runs
    second = await suggestion_model(app)
    assert second is not first
    assert app.bot_data.suggestion_refresh is None

    with shop.care.db.conn:  # the catalogue changes
        shop.care.db.execute("UPDATE products SET updated_at = '2099-01-02'")
    planned = await suggestion_model(app, fresh=True)
    assert planned is not second  # planning does not use a model older than the purchases
    assert await suggestion_model(app, fresh=True) is planned


HOSTILE = {
    "attribute escape": "{{ customer.__class__.__mro__ }}",
    "attr filter": "{{ customer|attr('__class__') }}",
    "format trick": "{{ '{0.__class__}'.format(customer) }}",
    "hidden in a branch": "{% if false %}{{ cycler.__init__.__globals__.os }}{% endif %}Hi",
    "huge string": "{{ 'a' * 100000000 }}",
}


@pytest.mark.parametrize("template", HOSTILE.values(), ids=HOSTILE.keys())
async def test_a_hostile_template_is_refused_when_the_campaign_is_saved(
    shop: Shop, tmp_path: Path, template: str
) -> None:
    spec = tmp_path / "hostile.toml"
    spec.write_text(
        f'name = "x"\noccasion = "christmas"\n[template]\nen = """{template}"""\n',
        encoding="utf-8",
    )
    code, out = shop.cli("campaign", "create", str(spec))
    assert code == 2
    assert "line 1" in out
    assert "Traceback" not in out
    assert shop.cli("campaign", "list")[1].startswith("No campaigns yet")


async def test_exclusions_are_counted_and_rechecked_just_before_sending(
    shop: Shop, tmp_path: Path
) -> None:
    opted_out, complained, *_ = shop.recipients
    repos = shop.care.repos
    repos.customers.update_settings(opted_out, shop.clock.now(), reminders_opt_out=True)
    shop.care.deps.services.tickets.open(
        complained, TicketKind.COMPLAINT, "damaged", shop.clock.now()
    )
    create_and_start(shop, tmp_path)
    _code, out = shop.cli("campaign", "preview", "christmas-2026")
    assert "Audience: 5 recipients" in out
    assert "excluded, opted out: 1" in out
    assert "excluded, open complaint: 1" in out
    # planned with six... no: both are excluded when planned; a third opts out after planning
    await shop.run_campaign(SEND_DAY - timedelta(hours=2))  # window open, nothing due yet
    assert len(shop.ledger()) == 5
    late = shop.recipients[2]
    repos.customers.update_settings(late, shop.clock.now(), reminders_opt_out=True)
    await shop.run_campaign(SEND_DAY)
    for customer_id in (opted_out, complained, late):
        assert shop.reminders_to(customer_id) == []
    skipped = [r for r in shop.ledger() if r["status"] == "skipped"]
    assert [(r["customer_id"], r["reason"]) for r in skipped] == [(late, "opted_out")]
    assert sum(r["status"] == "sent" for r in shop.ledger()) == 4


async def test_buttons_show_more_skip_this_year_and_stop_only_for_their_owner(
    shop: Shop, tmp_path: Path
) -> None:
    create_and_start(shop, tmp_path)
    await shop.run_campaign(SEND_DAY)
    first, second, third, *_ = shop.recipients
    [reminder] = shop.reminders_to(first)
    [ideas] = await shop.press(first, reminder, "Show me")
    assert "A few more ideas" in ideas["plain_text"]
    assert ideas["plain_text"].count("• ") == 3
    shown = {line for line in reminder["plain_text"].splitlines() if line.startswith("• ")}
    more = {line.split(" — ")[0] for line in ideas["plain_text"].splitlines() if "• " in line}
    assert not more & {line.rsplit(" ", 1)[0] for line in shown}  # new ideas, not repeats
    assert ideas["reply_markup"]["inline_keyboard"][0][0]["url"] == "https://shop.example"
    # the second customer pressing the first one's button (forged callback data): refused
    intruder = SandboxUser(id=shop.chat_of(second), first_name="y")
    [other] = shop.reminders_to(second)
    callback = reminder["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    assert await shop.tap(intruder, other["message_id"], callback) == []
    [answer] = [c for c in shop.sandbox.calls("answerCallbackQuery")][-1:]
    assert answer["params"].get("show_alert") is True
    # not this year
    [skipped] = await shop.press(second, other, "Not this year")
    assert "no more Christmas reminders from us this year" in skipped["plain_text"]
    # stop, confirmed
    [confirm] = await shop.press(first, reminder, "Stop reminders")
    assert "Stop all reminders" in confirm["plain_text"]
    await shop.press(first, confirm, "Yes, stop")
    customer = shop.care.repos.customers.get(first)
    assert customer is not None
    assert customer.reminders_opt_out
    # stop, thought better of it
    [third_reminder] = shop.reminders_to(third)
    [confirm] = await shop.press(third, third_reminder, "Stop reminders")
    await shop.press(third, confirm, "No, keep")
    kept = shop.care.repos.customers.get(third)
    assert kept is not None
    assert not kept.reminders_opt_out
    out = shop.cli("campaign", "report", "christmas-2026")[1]
    assert 'Clicked "Show me": 1 (14.3% of sent), 1 clicks' in out
    assert "Not this year: 1 (14.3% of sent)" in out
    assert "Stopped reminders: 1 (14.3% of sent)" in out


async def test_admins_see_campaigns_and_others_are_refused(shop: Shop, tmp_path: Path) -> None:
    spec = tmp_path / "christmas.toml"
    spec.write_text(CHRISTMAS, encoding="utf-8")
    assert shop.cli("campaign", "create", str(spec))[0] == 0
    shop.sandbox.add_user(ADMIN)
    after = shop.sandbox.seq
    shop.sandbox.send_text(ADMIN, "/campaigns")
    await shop.sandbox.wait_idle(quiet=0.2, timeout=10)
    [listing] = [e.message for e in shop.sandbox.events_after(after, chat_id=ADMIN.id) if e.message]
    assert "christmas-2026" in listing["plain_text"]
    assert "draft" in listing["plain_text"]
    after = shop.sandbox.seq
    shop.sandbox.send_text(OUTSIDER, "/campaigns")
    await shop.sandbox.wait_idle(quiet=0.2, timeout=10)
    [refusal] = [
        e.message for e in shop.sandbox.events_after(after, chat_id=OUTSIDER.id) if e.message
    ]
    assert "admins" in refusal["plain_text"]


async def test_an_admin_starts_and_pauses_a_campaign_with_the_buttons(
    shop: Shop, tmp_path: Path
) -> None:
    spec = tmp_path / "christmas.toml"
    spec.write_text(CHRISTMAS, encoding="utf-8")
    assert shop.cli("campaign", "create", str(spec))[0] == 0
    shop.sandbox.add_user(ADMIN)
    shop.sandbox.add_user(OUTSIDER)

    async def listing(user: SandboxUser) -> dict[str, Any]:
        after = shop.sandbox.seq
        shop.sandbox.send_text(user, "/campaigns")
        await shop.sandbox.wait_idle(quiet=0.2, timeout=10)
        [message] = [
            e.message for e in shop.sandbox.events_after(after, chat_id=user.id) if e.message
        ]
        return message

    def status() -> str:
        return str(next(iter(shop.care.db.query("SELECT status FROM campaigns")))["status"])

    def button(message: dict[str, Any], label: str) -> str:
        rows = message["reply_markup"]["inline_keyboard"]
        [data] = [b["callback_data"] for row in rows for b in row if label in b["text"]]
        return str(data)

    async def press(user: SandboxUser, message: dict[str, Any], data: str) -> None:
        after = shop.sandbox.seq
        shop.sandbox.press_button(user, message["message_id"], data, force=True)
        for _ in range(100):  # starting renders the templates off the event loop
            await asyncio.sleep(0.1)
            if any(e.method == "answerCallbackQuery" for e in shop.sandbox.events_after(after)):
                return

    drafts = await listing(ADMIN)
    start = button(drafts, "Start")
    refused = await listing(OUTSIDER)  # no buttons for them; forged callback data instead
    await press(OUTSIDER, refused, start)
    assert status() == "draft"
    await press(ADMIN, drafts, start)
    assert status() == "scheduled"
    scheduled = await listing(ADMIN)
    await press(ADMIN, scheduled, button(scheduled, "Pause"))
    assert status() == "paused"
    paused = await listing(ADMIN)
    assert "paused" in paused["plain_text"]
    await press(ADMIN, paused, button(paused, "Resume"))
    assert status() == "scheduled"


async def test_a_blocked_recipient_is_flagged_and_the_campaign_goes_on(
    shop: Shop, tmp_path: Path
) -> None:
    create_and_start(shop, tmp_path)
    blocked = shop.recipients[0]
    shop.sandbox.block_user(shop.chat_of(blocked), notify=False)
    await shop.run_campaign(SEND_DAY)
    rows = {r["customer_id"]: r for r in shop.ledger()}
    assert (rows[blocked]["status"], rows[blocked]["reason"]) == ("failed", "blocked the bot")
    customer = shop.care.repos.customers.get(blocked)
    assert customer is not None
    assert customer.blocked
    assert all(len(shop.reminders_to(c)) == 1 for c in shop.recipients[1:])
    assert "failed, blocked the bot: 1" in shop.cli("campaign", "report", "christmas-2026")[1]


async def test_flood_control_429_is_waited_out_and_nothing_is_lost_or_doubled(
    shop: Shop, tmp_path: Path
) -> None:
    create_and_start(shop, tmp_path)
    shop.sandbox.set_fault("429", methods="sendMessage", retry_after=1, count=2)
    await shop.run_campaign(SEND_DAY)
    assert all(len(shop.reminders_to(c)) == 1 for c in shop.recipients)
    calls = shop.sandbox.calls("sendMessage")
    refused = [c for c in calls if c.get("error_code") == 429]
    assert len(refused) == 2
    # after each 429, the next send waited at least retry_after
    for call in refused:
        later = [c["time"] for c in calls if c["time"] > call["time"] and c["ok"]]
        assert min(later) - call["time"] >= 0.95
    assert {r["status"] for r in shop.ledger()} == {"sent"}


async def test_a_reminder_still_flooded_after_every_retry_waits_for_later(
    shop: Shop, tmp_path: Path
) -> None:
    create_and_start(shop, tmp_path)
    flooded = shop.recipients[0]
    shop.sandbox.set_fault(
        "429",
        methods="sendMessage",
        retry_after=1,
        count=shop.care.config.telegram.max_retries + 1,
        chat_id=shop.chat_of(flooded),
    )
    await shop.run_campaign(SEND_DAY)
    assert shop.reminders_to(flooded) == []
    released = [r for r in shop.ledger() if r["status"] == "pending"]
    assert [(r["customer_id"], r["reason"]) for r in released] == [(flooded, "429 flood control")]
    assert datetime.fromisoformat(released[0]["due_at"]) >= SEND_DAY + timedelta(seconds=1)
    assert all(r["status"] == "sent" for r in shop.ledger() if r not in released)


BROADCAST = """
name = "christmas-2026"
occasion = "christmas"
days_before = 5
[template]
en = "Hi! Christmas is {{ occasion.days_left }} days away."
"""


def sliding_window_max(times: list[float], width: float = 1.0) -> int:
    """The most sends inside any window of ``width`` seconds."""
    times = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_the_overall_and_per_chat_limits_hold_in_the_sandboxs_clock(
    tmp_path: Path, clock: FixedClock, demo_database: Path
) -> None:
    async for shop in open_shop(tmp_path, demo_database, clock, messages_per_second=10):
        everyone = [r["id"] for r in shop.care.db.query("SELECT id FROM customers LIMIT 40")]
        bind_on_telegram(shop.care.repos, everyone, shop.sandbox)
        # one recipient just got a reply: their reminder must wait a second after it
        first_chat = shop.chat_of(everyone[0])
        await shop.care.application.bot.send_message(first_chat, "Your order has shipped")
        create_and_start(shop, tmp_path, BROADCAST)
        await shop.run_campaign(SEND_DAY)
        calls = [c for c in shop.sandbox.calls("sendMessage") if c["ok"]]
        reminders = [c for c in calls if "Christmas" in c["params"]["text"]]
        bound = len(set(everyone) | set(shop.recipients))
        assert len(reminders) == bound
        assert sliding_window_max([c["time"] for c in reminders]) <= 10
        span = max(c["time"] for c in reminders) - min(c["time"] for c in reminders)
        assert span >= (bound - 10) / 10  # at 10/s, whatever the burst
        assert len({c["params"]["chat_id"] for c in reminders}) == bound
        to_first = sorted(c["time"] for c in calls if c["params"]["chat_id"] == first_chat)
        assert len(to_first) == 2
        assert to_first[1] - to_first[0] >= 1.0


FLASH = """
name = "flash-sale"
occasion = "flash"
days_before = 2
send_time = "00:00"
[template]
en = "Hi! The flash sale starts in {{ occasion.days_left }} days."
"""


async def wait_for(condition: Callable[[], bool], *, limit: float, every: float = 0.05) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(every)


async def test_killed_mid_campaign_then_restarted_every_reminder_arrives_exactly_once(
    tmp_path: Path, demo_database: Path
) -> None:
    """A real process, SIGKILLed while sending, started again: the ledger resumes."""
    database = tmp_path / "shop.db"
    shutil.copyfile(demo_database, database)
    async with BotApiSandbox() as sandbox:
        repos = Repositories.over(open_database(database))
        everyone = [r["id"] for r in repos.db.query("SELECT id FROM customers LIMIT 30")]
        bind_on_telegram(repos, everyone, sandbox)
        chats = {
            r["telegram_user_id"]
            for r in repos.db.query(
                "SELECT telegram_user_id FROM customers WHERE telegram_user_id IS NOT NULL"
            )
        }
        for chat in chats:
            sandbox.add_user(SandboxUser(id=chat, first_name="Customer"))
        repos.db.close()
        config = tmp_path / "carebot.toml"
        config.write_text(
            f'[database]\npath = "{database}"\n'
            '[shop]\nname = "Demo Gifts"\ntimezone = "Europe/London"\n'
            f'[telegram]\ntoken = "{sandbox.bot_token}"\nbase_url = "{sandbox.base_url}"\n'
            '[campaigns]\nmessages_per_second = 10\nquiet_hours = "03:00-03:01"\n',
            encoding="utf-8",
        )
        soon = (datetime.now(UTC) + timedelta(days=2)).strftime("%m-%d")

        def cli(*args: str) -> str:
            result = CliRunner().invoke(main, ["--config", str(config), *args])
            assert result.exit_code == 0, result.output
            return result.output

        cli("occasions", "add", "flash", soon)
        spec = tmp_path / "flash.toml"
        spec.write_text(FLASH, encoding="utf-8")
        cli("campaign", "create", str(spec))
        cli("campaign", "start", "flash-sale")

        def reminders() -> list[int]:
            return [
                c["params"]["chat_id"]
                for c in sandbox.calls("sendMessage")
                if c["ok"] and "flash sale" in c["params"]["text"]
            ]

        command = [sys.executable, "-m", "carebot", "--config", str(config), "run"]
        first = await asyncio.create_subprocess_exec(*command, stderr=asyncio.subprocess.DEVNULL)
        try:
            await wait_for(lambda: len(reminders()) >= 8, limit=60)
            # Telegram takes the next messages but the answers never come back; the process
            # dies with two requests on the wire (and nothing claimed that is not).
            sandbox.set_fault("timeout", methods="sendMessage", apply=True, delay=60)
            hung = len(reminders()) + 2
            await wait_for(lambda: len(reminders()) >= hung, limit=30, every=0.002)
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        sandbox.clear_faults()
        assert len(reminders()) < len(chats)  # killed in the middle
        second = await asyncio.create_subprocess_exec(*command, stderr=asyncio.subprocess.DEVNULL)
        try:
            await wait_for(lambda: len(set(reminders())) >= len(chats), limit=60)
            await asyncio.sleep(1.5)  # anything doubled would show up now
        finally:
            second.send_signal(signal.SIGTERM)
            await second.wait()
        assert sorted(reminders()) == sorted(chats)  # each exactly once
        db = open_database(database)
        statuses = {r["status"] for r in db.query("SELECT status FROM campaign_deliveries")}
        db.close()
        assert statuses == {"sent", "uncertain"}
        assert "uncertain: 2" in cli("campaign", "report", "flash-sale")
