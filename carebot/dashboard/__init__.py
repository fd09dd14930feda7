"""The admin and staff dashboard at /admin: server-rendered pages over the bot's services."""

from __future__ import annotations

from aiohttp import web

from carebot.dashboard import (
    auth,
    campaigns,
    content,
    customers,
    overview,
    staff,
    surveys,
    tickets,
)
from carebot.dashboard.app import DASHBOARD, Dashboard, Routes

PAGES = (auth, overview, tickets, customers, surveys, campaigns, content, staff)


def register_dashboard(app: web.Application, dashboard: Dashboard) -> None:
    """Every dashboard route on ``app`` (whose middlewares include ``auth.dashboard_guard``)."""
    app[DASHBOARD] = dashboard
    routes = Routes(app)
    routes.static()
    for page in PAGES:
        page.register(routes)
