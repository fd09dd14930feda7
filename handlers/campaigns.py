"""Reminder campaigns in Telegram: planning when the send window opens, sending from the
delivery ledger, the buttons on each reminder, and ``/campaigns`` for admins.

The database drives everything: a campaign's status and its ledger rows. A watch job looks
at the campaigns table every few seconds, so a campaign started, paused or cancelled from
the CLI (another process) is picked up without a restart; a sender re-reads the status
between batches, so a pause takes effect within a batch.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiolimiter import AsyncLimiter
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application, CommandHandler, filters

from bot.campaign_templates import TemplateRejected
from bot.campaigns import (
    ACTIONS,
    Campaign,
    CampaignError,
    CampaignSettings,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    exclusion,
    next_status,
)
from bot.config import resolve_database_path
from bot.suggestions import SuggestionModel, history_from_lines
from bot.texts import T
from handlers.buttons import CustomerButton
from handlers.common import customer_of, deps, edit, inline_keyboard, label, reply, run_at
from handlers.context import BotData, CareContext, Deps
from handlers.retry_after import retry_after_seconds
from storage.campaign_planning import apply_action, calendar_of, preview, write_plan
from storage.database import off_loop
from storage.suggestions import CachedModel, load_model, purchase_lines, purchases_version

logger = logging.getLogger("carebot.campaigns")

WATCH_EVERY = timedelta(seconds=10)
BATCH = 50
# Requests in flight at once (the pacer below decides how fast they start).
IN_FLIGHT = 8
# Telegram failing in a way that means "not delivered" (5xx, connection refused): retried
# this much later, at most this many attempts in all.
RETRY_AFTER_ERROR = timedelta(minutes=1)
MAX_ATTEMPTS = 5
REMINDER_BUTTON = re.compile(r"^cm:(\d{1,12}):(more|skip|stop|stopyes|stopno)$")
ADMIN_BUTTON = re.compile(r"^ca:(\d{1,12}):(preview|start|pause|resume|cancel)$")

AnyApp = Application[Any, Any, Any, Any, Any, Any]


# ------------------------------------------------------------------ jobs and the sender


def sender_running(app: AnyApp, campaign_id: int) -> bool:
    """Whether a task of this process is working on the campaign: sending it, or planning
    it (a plan over a big base takes minutes; the watch job must not start a second one)."""
    task = app.bot_data.campaign_senders.get(campaign_id)
    return task is not None and not task.done()


def database_path(d: Deps) -> Path:
    """Where heavy work opens a connection of its own (off the event loop's)."""
    return resolve_database_path(d.config)


async def start_campaigns(app: AnyApp) -> None:
    """At start: rows a crash left mid-send are settled; every live campaign gets its job
    (now, not at the first watch: APScheduler cannot start a repeating job at once)."""
    d: Deps = app.bot_data.deps
    for campaign in d.campaigns.campaigns.live():
        schedule_campaign(app, campaign)
        settled = d.campaigns.ledger.settle_interrupted(campaign.id)
        if settled:
            logger.warning(
                "campaign %s: %d reminders were being sent when the bot stopped; marked "
                "uncertain (not sent again)",
                campaign.name,
                settled,
            )
    queue = app.job_queue
    if queue is not None:
        queue.run_repeating(watch_campaigns, interval=WATCH_EVERY, name="campaigns:watch")


async def watch_campaigns(context: CareContext) -> None:
    """Every few seconds: live campaigns without a job or a sender get one."""
    d, app = context.bot_data.deps, context.application
    for campaign in d.campaigns.campaigns.live():
        if sender_running(app, campaign.id):
            continue
        if context.job_queue and context.job_queue.get_jobs_by_name(_job_name(campaign.id)):
            continue
        schedule_campaign(app, campaign)


def _job_name(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


def schedule_campaign(app: AnyApp, campaign: Campaign, when: datetime | None = None) -> None:
    """The campaign's job at ``when`` (default: now; a sender takes it from there)."""
    d: Deps = app.bot_data.deps
    due = when or d.clock.now()
    run_at(app.job_queue, d.clock, _job_name(campaign.id), campaign_due, due, campaign.id)


def follow_status(app: AnyApp, campaign: Campaign) -> None:
    """After an action taken in this process (/campaigns, the dashboard): the campaign's job
    now, or when its send window opens, not at the next watch (which is for the CLI's)."""
    if campaign.status == CampaignStatus.SCHEDULED and campaign.opens_at is not None:
        schedule_campaign(app, campaign, campaign.opens_at)
    elif campaign.status == CampaignStatus.RUNNING:
        schedule_campaign(app, campaign)


async def campaign_due(context: CareContext) -> None:
    """A campaign's moment came: plan its ledger (window opened) and/or send what is due."""
    assert context.job is not None
    await advance_campaign(context.application, int(context.job.data))  # type: ignore[call-overload]


async def advance_campaign(app: AnyApp, campaign_id: int) -> asyncio.Task[None] | None:
    """Plan the campaign if its send window opened, then make sure its sender runs;
    the sender task, if one is running."""
    d: Deps = app.bot_data.deps
    campaign = d.campaigns.campaigns.get(campaign_id)
    if campaign is None:
        return None
    now = d.clock.now()
    if campaign.status == CampaignStatus.SCHEDULED:
        if campaign.opens_at is not None and now < campaign.opens_at:
            schedule_campaign(app, campaign, campaign.opens_at)
            return None
        senders: dict[int, asyncio.Task[Any]] = app.bot_data.campaign_senders
        planner = asyncio.current_task()
        if sender_running(app, campaign.id) or planner is None:
            return None  # being planned by an earlier run of this job
        senders[campaign.id] = planner
        try:
            model = await suggestion_model(app, fresh=True)
            count = await off_loop(
                database_path(d), lambda db: write_plan(db, d.config, campaign, now, model=model)
            )
        finally:
            del senders[campaign.id]
        eligible = count.eligible
        excluded = {str(k): v for k, v in count.excluded.items()}
        moved = d.campaigns.campaigns.move(
            campaign.id,
            CampaignStatus.SCHEDULED,
            CampaignStatus.RUNNING,
            now,
            audience_size=eligible,
            excluded=excluded,
            started_at=now,
        )
        if not moved:
            return None  # paused or cancelled meanwhile (or planned by a concurrent run)
        logger.info("campaign %s planned: %d recipients", campaign.name, eligible)
    elif campaign.status != CampaignStatus.RUNNING:
        return None
    return ensure_sender(app, campaign.id)


def ensure_sender(app: AnyApp, campaign_id: int) -> asyncio.Task[None] | None:
    senders: dict[int, asyncio.Task[None]] = app.bot_data.campaign_senders
    if app.running and not sender_running(app, campaign_id):
        senders[campaign_id] = app.create_task(
            send_campaign(app, campaign_id), name=f"campaign-sender:{campaign_id}"
        )
    return senders.get(campaign_id)


async def send_campaign(app: AnyApp, campaign_id: int) -> None:
    """Send every due reminder, batch by batch, while the campaign is running."""
    d: Deps = app.bot_data.deps
    stores, gate = d.campaigns, asyncio.Semaphore(IN_FLIGHT)
    # Rows are claimed at the send rate, just before their request: a claimed row never
    # waits in the rate limiter's queue, so a crash leaves only requests already on the
    # wire "uncertain", not a backlog of rows that were never sent.
    pacer = AsyncLimiter(1, 1 / d.config.campaigns.messages_per_second)
    sending = Sending(app, d, d.config.campaigns.settings())
    while app.running:
        campaign = stores.campaigns.get(campaign_id)
        if campaign is None or campaign.status != CampaignStatus.RUNNING:
            return
        now = d.clock.now()
        batch = stores.ledger.due(campaign_id, now, BATCH)
        if not batch:
            await _finish_or_wait(app, campaign)
            return
        not_this_year = stores.audience.said_not_this_year(campaign.spec.occasion, campaign.year)

        async def one(row: Delivery, said_not_this_year: bool) -> None:
            async with gate:
                await pacer.acquire()
                if app.running:
                    await sending.deliver(row, said_not_this_year)

        await asyncio.gather(*(one(row, row.customer_id in not_this_year) for row in batch))


async def _finish_or_wait(app: AnyApp, campaign: Campaign) -> None:
    d: Deps = app.bot_data.deps
    ledger, now = d.campaigns.ledger, d.clock.now()
    later = ledger.next_due(campaign.id)
    if later is not None:
        schedule_campaign(app, campaign, later)
        return
    if ledger.open_count(campaign.id) == 0 and d.campaigns.campaigns.move(
        campaign.id, CampaignStatus.RUNNING, CampaignStatus.DONE, now, finished_at=now
    ):
        logger.info("campaign %s done: %s", campaign.name, ledger.counts(campaign.id))


class Sending:
    """What one sender reuses for every reminder: the rules and the buttons' labels."""

    def __init__(self, app: AnyApp, d: Deps, settings: CampaignSettings) -> None:
        self.app, self.d, self.settings = app, d, settings
        self._labels: dict[str, list[str]] = {}

    def buttons(self, row: Delivery) -> InlineKeyboardMarkup:
        keys = (T.BTN_REMINDER_MORE, T.BTN_REMINDER_SKIP, T.BTN_REMINDER_STOP)
        if row.language not in self._labels:
            self._labels[row.language] = [self.d.texts.render(k, row.language) for k in keys]
        more, skip, stop = self._labels[row.language]
        return inline_keyboard(
            [
                [(more, f"cm:{row.id}:more")],
                [(skip, f"cm:{row.id}:skip"), (stop, f"cm:{row.id}:stop")],
            ]
        )

    async def deliver(self, row: Delivery, said_not_this_year: bool) -> None:
        """One reminder: re-check the recipient, claim the row, send, record the outcome."""
        d, ledger = self.d, self.d.campaigns.ledger
        who = d.campaigns.audience.candidate(row.customer_id)
        if who is None:
            ledger.skip(row.id, "customer deleted")
            return
        reason = exclusion(who, d.clock.now(), self.settings, said_not_this_year)
        if reason is not None:
            ledger.skip(row.id, reason.value)
            return
        if not ledger.claim(row.id):
            return  # taken by another sender: never twice
        try:
            message = await self.app.bot.send_message(
                row.chat_id,
                row.text,
                parse_mode=ParseMode.HTML,
                reply_markup=self.buttons(row),
                rate_limit_args={"bulk": True, "once": True},  # a timeout: uncertain, below
            )
        except Forbidden:
            d.desk.customers.update_settings(row.customer_id, d.clock.now(), blocked=True)
            ledger.failed(row.id, "blocked the bot")
        except RetryAfter as exc:  # still flooded after the limiter's retries: later, same row
            pause = timedelta(seconds=retry_after_seconds(exc))
            ledger.release(row.id, d.clock.now() + pause, "429 flood control")
        except TimedOut:
            ledger.uncertain(row.id, "timed out (may have arrived)")
        except BadRequest as exc:
            ledger.failed(row.id, f"rejected: {exc.message}")
        except NetworkError as exc:
            if row.attempts + 1 >= MAX_ATTEMPTS:
                ledger.failed(row.id, f"network: {exc.message}")
            else:
                later = d.clock.now() + RETRY_AFTER_ERROR
                ledger.release(row.id, later, f"network: {exc.message}")
        except TelegramError as exc:
            ledger.failed(row.id, f"refused: {exc.message}")
        else:
            ledger.sent(row.id, message.message_id, d.clock.now())


# ------------------------------------------------------------------ the reminder's buttons


async def reminder_pressed(update: Update, context: CareContext) -> None:
    """Show me / Not this year / Stop reminders: only on the customer's own reminder."""
    query = update.callback_query
    assert query is not None
    d, customer = deps(context), customer_of(context)
    match = REMINDER_BUTTON.match(query.data or "")
    row = d.campaigns.ledger.of_customer(int(match.group(1)), customer.id) if match else None
    if match is None or row is None or row.status != DeliveryStatus.SENT:
        await query.answer(label(context, T.REMINDER_NOT_YOURS), show_alert=True)
        return
    await query.answer()
    now, action = d.clock.now(), match.group(2)
    if action == "more":
        d.campaigns.ledger.click(row.id, now)
        await show_more(update, context, row)
    elif action == "skip":
        d.campaigns.ledger.respond(row.id, "not_this_year", now)
        campaign = d.campaigns.campaigns.get(row.campaign_id)
        await reply(update, context, T.REMINDER_SKIPPED, occasion=_occasion_label(d, campaign))
    elif action == "stop":
        rows = [
            [
                (label(context, T.BTN_REMINDER_STOP_YES), f"cm:{row.id}:stopyes"),
                (label(context, T.BTN_REMINDER_STOP_NO), f"cm:{row.id}:stopno"),
            ]
        ]
        await reply(update, context, T.REMINDER_STOP_CONFIRM, markup=inline_keyboard(rows))
    elif action == "stopyes":
        d.services.customers.set_reminders(customer, enabled=False)
        d.campaigns.ledger.respond(row.id, "stop", now)
        await _replace_confirmation(update, context, T.REMINDER_STOPPED)
    else:
        await _replace_confirmation(update, context, T.REMINDER_KEPT)


async def _replace_confirmation(update: Update, context: CareContext, key: T) -> None:
    query = update.callback_query
    assert query is not None
    await edit(query, context, key)


def _occasion_label(d: Deps, campaign: Campaign | None) -> str:
    if campaign is None:
        return ""
    return calendar_of(d.campaigns.campaigns.db).label(campaign.spec.occasion)


async def show_more(update: Update, context: CareContext, row: Delivery) -> None:
    """The next suggestions for this customer (not the ones already shown), and the shop."""
    d = deps(context)
    campaign = d.campaigns.campaigns.get(row.campaign_id)
    count = campaign.spec.suggestions.more if campaign else 3
    model = await suggestion_model(context.application)
    lines = purchase_lines(d.campaigns.campaigns.db, [row.customer_id]).get(row.customer_id, [])
    picks = model.suggest(history_from_lines(lines, ()), count, exclude=row.suggested)
    d.campaigns.ledger.add_suggested(row.id, [p.id for p in picks])
    url = d.config.shop.url
    markup = (
        InlineKeyboardMarkup([[InlineKeyboardButton(label(context, T.BTN_SHOP), url=url)]])
        if url
        else None
    )
    currency = d.config.shop.currency
    await reply(
        update,
        context,
        T.REMINDER_MORE,
        markup=markup,
        suggestions=[{"name": p.name, "price": p.price, "currency": currency} for p in picks],
        shop_url=url,
    )


# A backstop: the model is rebuilt when ``purchases_version`` changes, and at least this often.
MODEL_FRESH_FOR = timedelta(hours=1)
# A button press or a preview never waits for a rebuild (tens of seconds over a million
# customers): it gets the model in hand, and a rebuild starts in the background, at most this
# often while orders keep coming in.
MODEL_REFRESH_AFTER = timedelta(minutes=15)


async def suggestion_model(app: AnyApp, *, fresh: bool = False) -> SuggestionModel:
    """The co-purchase model for planning, "Show me" and the previews (one copy in memory).

    ``fresh`` (planning): rebuilt first when purchases or the catalogue changed. Otherwise the
    model in hand is returned at once and, if it is out of date, rebuilt in the background.
    The first caller of all waits for the first build."""
    data: BotData = app.bot_data
    cached = data.suggestion_model
    if cached is not None and not fresh:
        if _out_of_date(data, cached, MODEL_REFRESH_AFTER) and data.suggestion_refresh is None:
            data.suggestion_refresh = asyncio.create_task(_refresh_in_background(data))
        return cached.model
    return (await _rebuilt_if_out_of_date(data, timedelta(0))).model


def _out_of_date(data: BotData, cached: CachedModel, min_age: timedelta) -> bool:
    age = data.deps.clock.now() - cached.built_at
    if age > MODEL_FRESH_FOR:
        return True
    return age >= min_age and cached.version != purchases_version(data.deps.campaigns.campaigns.db)


async def _rebuilt_if_out_of_date(data: BotData, min_age: timedelta) -> CachedModel:
    d = data.deps
    async with data.suggestion_model_lock:  # one build in flight, shared by its waiters
        cached = data.suggestion_model
        if cached is None or _out_of_date(data, cached, min_age):
            now, version = d.clock.now(), purchases_version(d.campaigns.campaigns.db)
            model = await off_loop(database_path(d), load_model)
            data.suggestion_model = cached = CachedModel(now, version, model)
        return cached


async def _refresh_in_background(data: BotData) -> None:
    try:
        await _rebuilt_if_out_of_date(data, MODEL_REFRESH_AFTER)
    except Exception:  # the model in hand stays; the next caller tries again
        logger.exception("rebuilding the suggestion model failed")
    finally:
        data.suggestion_refresh = None


# ------------------------------------------------------------------ /campaigns for admins


def is_admin(d: Deps, user_id: int | None) -> bool:
    return user_id is not None and user_id in d.config.staff.admins


async def campaigns_command(update: Update, context: CareContext) -> None:
    """/campaigns: each campaign with its status and the buttons that apply."""
    d = deps(context)
    user = update.effective_user
    if not is_admin(d, user.id if user else None):
        await reply(update, context, T.ADMIN_ONLY)
        return
    campaigns = d.campaigns.campaigns.all()[:10]
    rows = [
        [(label(context, _ACTION_LABELS[a]), f"ca:{c.id}:{a}") for a in _actions_for(c)]
        for c in campaigns
    ]
    counts = {c.id: d.campaigns.ledger.counts(c.id) for c in campaigns}
    await reply(
        update,
        context,
        T.CAMPAIGNS_LIST,
        markup=inline_keyboard([r for r in rows if r]) if any(rows) else None,
        campaigns=campaigns,
        counts=counts,
    )


_ACTION_LABELS = {
    "preview": T.BTN_CAMPAIGN_PREVIEW,
    "start": T.BTN_CAMPAIGN_START,
    "pause": T.BTN_CAMPAIGN_PAUSE,
    "resume": T.BTN_CAMPAIGN_RESUME,
}


def allowed_actions(campaign: Campaign) -> list[str]:
    """The actions that apply to the campaign now, by ``next_status``'s own rule (these
    buttons and the dashboard's)."""
    planned = campaign.audience_size is not None
    allowed = []
    for action in ACTIONS:
        try:
            next_status(campaign, action, planned=planned)
        except CampaignError:
            continue
        allowed.append(action)
    return allowed


def _actions_for(campaign: Campaign) -> list[str]:
    """Preview until it sends; no Cancel button in a chat (the CLI and the dashboard)."""
    waiting = campaign.status in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED)
    return ["preview"] * waiting + [a for a in allowed_actions(campaign) if a in _ACTION_LABELS]


async def campaign_button(update: Update, context: CareContext) -> None:
    """An admin's tap on Preview / Start / Pause / Resume (checked again: who pressed it)."""
    query = update.callback_query
    assert query is not None
    d = deps(context)
    match = ADMIN_BUTTON.match(query.data or "")
    if not is_admin(d, query.from_user.id) or match is None:
        await query.answer(label(context, T.ADMIN_ONLY_SHORT), show_alert=True)
        return
    campaign = d.campaigns.campaigns.get(int(match.group(1)))
    if campaign is None:
        await query.answer()
        return
    action = match.group(2)
    if action == "preview":
        await query.answer()
        now = d.clock.now()
        model = await suggestion_model(context.application)  # not rebuilt at every press
        result = await off_loop(
            database_path(d),
            lambda db: preview(db, d.config, campaign.spec, campaign.year, now, model=model),
        )
        await reply(update, context, T.CAMPAIGN_PREVIEW, campaign=campaign, preview=result)
        return
    now = d.clock.now()
    try:  # starting renders the templates for real customers: off the loop
        changed = await off_loop(
            database_path(d), lambda db: apply_action(db, d.config, campaign, action, now)
        )
    except (CampaignError, TemplateRejected) as exc:
        await query.answer(str(exc), show_alert=True)
        return
    done = label(context, T.CAMPAIGN_ACTION_DONE, name=changed.name, status=changed.status.value)
    await query.answer(done)
    follow_status(context.application, changed)


def register(app: AnyApp) -> None:
    app.add_handler(CustomerButton(reminder_pressed, pattern=r"^cm:"))
    app.add_handler(CustomerButton(campaign_button, pattern=r"^ca:"))
    app.add_handler(
        CommandHandler("campaigns", campaigns_command, filters=filters.ChatType.PRIVATE)
    )
