"""The dashboard served for real: the bot running against the Bot API sandbox (with a staff
forum), its web app on a free local port, and signed-in browser-like HTTP sessions."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, ClientSession, CookieJar, web

from bot.clock import FixedClock
from bot.passwords import hash_password
from carebot.dashboard.app import Dashboard
from carebot.runtime import dashboard_for
from carebot.web import build_web_app
from storage.dashboard import Account, Role
from tests.e2e.test_tickets import Desk, desk_config, open_desk

PASSWORD = "correct horse battery"
# Hashing is slow on purpose; tests hash the shared password once.
_HASHES: dict[str, str] = {}
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]*)"')


def password_hash(password: str = PASSWORD) -> str:
    if password not in _HASHES:
        _HASHES[password] = hash_password(password)
    return _HASHES[password]


@dataclass
class Page:
    status: int
    url: str
    text: str

    @property
    def csrf(self) -> str:
        found = CSRF_FIELD.search(self.text)
        return found.group(1) if found else ""


@dataclass
class Visitor:
    """One browser: its own cookie jar; follows redirects like a browser does."""

    http: ClientSession
    csrf: str = ""

    async def _page(self, response: ClientResponse) -> Page:
        page = Page(response.status, str(response.url), await response.text())
        self.csrf = page.csrf or self.csrf
        return page

    async def get(self, path: str, **kwargs: Any) -> Page:
        async with self.http.get(path, **kwargs) as response:
            return await self._page(response)

    async def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Page:
        """POST a form with the last CSRF token seen (pass csrf=None in data to leave it out)."""
        form = {"csrf": self.csrf, **(data or {})}
        form = {k: v for k, v in form.items() if v is not None}
        async with self.http.post(path, data=form, **kwargs) as response:
            return await self._page(response)

    async def login(self, username: str, password: str = PASSWORD) -> Page:
        await self.get("/admin/login")
        return await self.post("/admin/login", {"username": username, "password": password})


@dataclass
class Site:
    desk: Desk
    dashboard: Dashboard
    web_app: web.Application
    url: str
    clock: FixedClock
    _sessions: list[ClientSession] = field(default_factory=list)

    def account(
        self,
        username: str,
        role: Role = "staff",
        *,
        display_name: str | None = None,
        telegram_user_id: int | None = None,
        password: str = PASSWORD,
    ) -> Account:
        return self.dashboard.stores.accounts.create(
            username,
            display_name=display_name or username.title(),
            role=role,
            password_hash=password_hash(password),
            telegram_user_id=telegram_user_id,
            now=self.clock.now(),
        )

    def visitor(self) -> Visitor:
        http = ClientSession(base_url=self.url, cookie_jar=CookieJar(unsafe=True))
        self._sessions.append(http)
        return Visitor(http)

    async def signed_in(self, username: str, role: Role = "staff") -> Visitor:
        """A visitor logged in as a new account with this role."""
        self.account(username, role)
        visitor = self.visitor()
        page = await visitor.login(username)
        assert page.status == 200, page.text[:500]
        assert page.url.endswith("/admin")
        return visitor


async def serve_dashboard(desk: Desk, clock: FixedClock) -> AsyncIterator[Site]:
    dashboard = dashboard_for(desk.care)
    app = build_web_app(
        desk.care.config, desk.care.application, desk.care.repos, dashboard=dashboard
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    harness = Site(desk, dashboard, app, f"http://127.0.0.1:{port}", clock)
    try:
        yield harness
    finally:
        for http in harness._sessions:
            await http.close()
        await runner.cleanup()


@pytest.fixture
async def site(tmp_path: Path, clock: FixedClock, demo_database: Path) -> AsyncIterator[Site]:
    async for desk in open_desk(demo_database, desk_config(tmp_path), clock):
        async for harness in serve_dashboard(desk, clock):
            yield harness


@pytest.fixture
async def admin(site: Site) -> Visitor:
    return await site.signed_in("alex", "admin")


@pytest.fixture
async def staff(site: Site) -> Visitor:
    return await site.signed_in("maria", "staff")
