"""The one wiring point: storage, services, the PTB Application, jobs and the web server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlite_utils import Database
from telegram import BotCommand, BotCommandScopeAllPrivateChats, Update
from telegram.ext import Application, ApplicationBuilder

from bot.clock import Clock, SystemClock
from bot.config import SUPPORTED_LANGUAGES, Config, resolve_database_path
from bot.services import Services
from bot.survey_settings import apply_saved_settings
from bot.texts import BOT_COMMANDS, Texts
from carebot.dashboard.app import Dashboard
from carebot.rate_limiter import CareRateLimiter
from carebot.web import build_web_app, webhook_path
from handlers import register_all
from handlers.campaigns import start_campaigns
from handlers.context import CONTEXT_TYPES, BotData, CareContext, Deps, StaffChat
from handlers.desk_jobs import start_desk
from handlers.surveys import schedule_survey, start_surveys
from storage.campaigns import CampaignStores
from storage.dashboard import DashboardStores
from storage.database import off_loop, open_database
from storage.ingest import OrderEvent
from storage.repositories import Repositories
from storage.segments import recompute_segments
from storage.tickets import DeskStores

logger = logging.getLogger("carebot")

CareApplication = Application[Any, CareContext, Any, Any, BotData, Any]
# Long-poll length for getUpdates: long enough to be cheap, short enough to stop promptly.
POLL_TIMEOUT_SECONDS = 10


@dataclass
class CareBot:
    config: Config
    db: Database
    repos: Repositories
    deps: Deps
    application: CareApplication

    def handling_updates(self) -> bool:
        """Whether an update waits in the queue or is being handled (tests wait on it)."""
        app = self.application
        return not app.update_queue.empty() or app.update_processor.current_concurrent_updates > 0

    @asynccontextmanager
    async def running(self) -> AsyncIterator[CareBot]:
        """Start receiving updates (polling or webhook) and serving HTTP; stop cleanly on exit."""
        app = self.application
        runner: web.AppRunner | None = None
        async with app:
            await publish_commands(self)
            schedule_maintenance(self)
            await app.start()
            try:
                await start_desk(app)
                await start_surveys(app)
                await start_campaigns(app)
                if self.config.telegram.mode == "webhook":
                    await app.bot.set_webhook(
                        self.config.telegram.webhook_url,
                        secret_token=self.config.telegram.webhook_secret,
                        allowed_updates=Update.ALL_TYPES,
                    )
                else:
                    assert app.updater is not None
                    await app.updater.start_polling(
                        poll_interval=0.0,
                        timeout=POLL_TIMEOUT_SECONDS,
                        allowed_updates=Update.ALL_TYPES,
                    )
                if self.config.web_server_needed:
                    runner = await start_web(self)
                logger.info(
                    "carebot is running (%s mode) as @%s",
                    self.config.telegram.mode,
                    app.bot.username,
                )
                yield self
            finally:
                if runner is not None:
                    await runner.cleanup()
                if app.updater is not None and app.updater.running:
                    await app.updater.stop()
                await app.stop()
        self.db.close()


def build_application(
    config: Config,
    *,
    clock: Clock | None = None,
    bot_api_url: str | None = None,
    token: str | None = None,
) -> CareBot:
    """Create storage, services and the PTB Application with every handler registered.

    ``bot_api_url``/``token`` override the config (the sandbox passes its own).
    """
    clock = clock or SystemClock()
    db = open_database(resolve_database_path(config))
    repos = Repositories.over(db)
    desk = DeskStores.over(db)
    services = services_over(config, repos, clock, desk)
    texts = Texts(config.shop.default_language)
    deps = Deps(
        config=config,
        services=services,
        texts=texts,
        log=repos.messages,
        clock=clock,
        desk=desk,
        staff_chat=StaffChat(config.staff.chat_id),
        campaigns=CampaignStores.over(db),
        dashboard=DashboardStores.over(db),
    )
    # Survey settings saved on the dashboard win over config.toml.
    apply_saved_settings(services.surveys, config.surveys, deps.dashboard.settings)
    builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder()
        .token(token or config.telegram.token)
        .context_types(CONTEXT_TYPES)
        .read_timeout(config.telegram.read_timeout)
        .rate_limiter(
            CareRateLimiter(
                bulk_per_second=config.campaigns.messages_per_second,
                max_retries=config.telegram.max_retries,
            )
        )
    )
    api_url = bot_api_url or config.telegram.base_url
    if api_url:
        builder = builder.base_url(api_url).base_file_url(api_url.replace("/bot", "/file/bot"))
    if config.telegram.mode == "webhook":
        builder = builder.updater(None)  # updates arrive through our own aiohttp route
    application: CareApplication = builder.build()
    application.bot_data.deps = deps
    register_all(application, texts)
    return CareBot(config, db, repos, deps, application)


def services_over(
    config: Config, repos: Repositories, clock: Clock, desk: DeskStores | None = None
) -> Services:
    desk = desk or DeskStores.over(repos.db)
    return Services.build(
        config,
        clock,
        customers=repos.customers,
        orders=repos.orders,
        faq=repos.faq,
        link_tokens=repos.link_tokens,
        tickets=desk.tickets,
        surveys=desk.surveys,
    )


async def publish_commands(bot: CareBot) -> None:
    """setMyCommands for private chats in every language (and the default language unscoped)."""
    texts, scope = bot.deps.texts, BotCommandScopeAllPrivateChats()
    for lang in (None, *SUPPORTED_LANGUAGES):
        commands = [
            BotCommand(name, texts.render(key, lang or texts.default_language))
            for name, key in BOT_COMMANDS.items()
        ]
        await bot.application.bot.set_my_commands(commands, scope=scope, language_code=lang)


async def purge_link_tokens(context: CareContext) -> None:
    """Hourly: forget deep-link tokens that expired unused, and ended dashboard sessions."""
    deps = context.bot_data.deps
    removed = deps.services.links.purge_expired()
    if removed:
        logger.info("purged %d expired link tokens", removed)
    idle = timedelta(minutes=deps.config.web.idle_minutes)
    deps.dashboard.sessions.purge_expired(deps.clock.now(), idle)


def schedule_maintenance(bot: CareBot) -> None:
    queue = bot.application.job_queue
    if queue is None:  # pragma: no cover - the job-queue extra is a hard dependency
        return
    queue.run_repeating(
        purge_link_tokens,
        interval=timedelta(hours=1),
        first=timedelta(minutes=1),
        name="maintenance:purge-link-tokens",
    )


# Order events arrive in bursts (a shop syncing its backlog): recompute segments once, at
# most this long after the first change of a burst, instead of after every order. (Not
# re-armed by later changes, so a steady stream still gets recomputed every 30 s.)
SEGMENTS_DEBOUNCE = timedelta(seconds=30)
SEGMENTS_JOB = "segments:recompute"


def schedule_segments_recompute(bot: CareBot) -> None:
    """Make sure a segment recompute is pending (one job, whatever the number of changes)."""
    queue = bot.application.job_queue
    if queue is None:  # pragma: no cover - the job-queue extra is a hard dependency
        return
    if any(not job.removed for job in queue.get_jobs_by_name(SEGMENTS_JOB)):
        return
    queue.run_once(recompute_segments_job, when=SEGMENTS_DEBOUNCE, name=SEGMENTS_JOB)


async def recompute_segments_job(context: CareContext) -> None:
    """Recompute RFM segments off the event loop, on a connection of its own."""
    deps = context.bot_data.deps
    path = resolve_database_path(deps.config)
    stats = await off_loop(path, lambda db: recompute_segments(db, deps.clock.now()))
    customers = stats.customers
    logger.info("segments recomputed for %d customers", customers)


def order_changed(bot: CareBot, event: OrderEvent | None) -> None:
    """After the ingest API changed an order: segments later; a survey after delivery."""
    schedule_segments_recompute(bot)
    customer_id = bot.repos.orders.customer_of(event.order_id) if event else None
    if event is None or customer_id is None:
        return
    survey = bot.deps.services.surveys.plan_purchase(
        customer_id, event.order_id, event.status.value, event.at, bot.deps.clock.now()
    )
    if survey is not None:
        schedule_survey(bot.application.job_queue, bot.deps, survey)


def dashboard_for(bot: CareBot) -> Dashboard:
    return Dashboard(
        deps=bot.deps,
        repos=bot.repos,
        application=bot.application,
        db_path=resolve_database_path(bot.config),
    )


async def start_web(bot: CareBot) -> web.AppRunner:
    web_app = build_web_app(
        bot.config,
        bot.application,
        bot.repos,
        on_orders_changed=lambda event: order_changed(bot, event),
        dashboard=dashboard_for(bot) if bot.config.web.dashboard else None,
    )
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, bot.config.web.host, bot.config.web.port)
    await site.start()
    where = f"http://{bot.config.web.host}:{bot.config.web.port}"
    if bot.config.telegram.mode == "webhook":
        where += webhook_path(bot.config)
    logger.info("web server listening on %s", where)
    return runner
