"""The overview page (being built)."""

from __future__ import annotations

from aiohttp import web

from carebot.dashboard.app import Routes, render_page


async def overview(request: web.Request) -> web.StreamResponse:
    """The shop at a glance."""
    return render_page(request, "overview.html")


def register(routes: Routes) -> None:
    routes.get("", overview)
    routes.get("/", overview)
