"""The bot's aiohttp app: Telegram webhook, health check, ingest API and the dashboard."""

from __future__ import annotations

import hmac
import json
import logging
from urllib.parse import urlparse

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.config import Config
from carebot.api import ON_ORDERS_CHANGED, OrdersChanged, no_orders_changed_callback, register_api
from carebot.dashboard import register_dashboard
from carebot.dashboard.app import Dashboard
from carebot.dashboard.auth import dashboard_guard
from storage.repositories import Repositories

logger = logging.getLogger("carebot.web")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
PTB_APP = web.AppKey("ptb_app", Application)
CONFIG = web.AppKey("config", Config)


def webhook_path(config: Config) -> str:
    return urlparse(config.telegram.webhook_url).path or "/telegram/webhook"


async def telegram_webhook(request: web.Request) -> web.Response:
    """Accept an update from Telegram only with the configured secret-token header."""
    config = request.app[CONFIG]
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), config.telegram.webhook_secret.encode()):
        logger.warning("webhook request without a valid secret token from %s", request.remote)
        return web.json_response({"ok": False, "error": "forbidden"}, status=403)
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return web.json_response({"ok": False, "error": "body is not JSON"}, status=400)
    app = request.app[PTB_APP]
    update = None
    if isinstance(data, dict) and isinstance(data.get("update_id"), int):
        try:
            update = Update.de_json(data, app.bot)
        except (KeyError, TypeError, ValueError):
            update = None
    if update is None:
        return web.json_response({"ok": False, "error": "not an update"}, status=400)
    await app.update_queue.put(update)
    return web.json_response({"ok": True})


async def healthz(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    return web.json_response({"status": "ok", "mode": config.telegram.mode})


def build_web_app(
    config: Config,
    application: Application,  # type: ignore[type-arg]
    repos: Repositories,
    *,
    on_orders_changed: OrdersChanged | None = None,
    dashboard: Dashboard | None = None,
) -> web.Application:
    """The web app; ``on_orders_changed`` is called after the ingest API changed orders;
    the dashboard is served at /admin when given."""
    app = web.Application(
        client_max_size=1024 * 1024, middlewares=[dashboard_guard] if dashboard else []
    )
    app[CONFIG] = config
    app[PTB_APP] = application
    app[ON_ORDERS_CHANGED] = on_orders_changed or no_orders_changed_callback
    app.router.add_get("/healthz", healthz)
    if config.telegram.mode == "webhook":
        app.router.add_post(webhook_path(config), telegram_webhook)
    if config.api.enabled:
        register_api(app, config, application, repos)
    if dashboard is not None:
        register_dashboard(app, dashboard)
    return app
