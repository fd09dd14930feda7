"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright through
its `executable_path`; nothing is downloaded at test time), served by tests/web's harness: the
bot running against the Bot API sandbox, its web app on a local port.

One browser for the whole run; each test gets a fresh context (its own cookies) and page. The
browser lives on pytest-asyncio's session event loop, so browser tests and the fixtures they use
run on that loop too: every test module here sets ``pytestmark = BROWSER``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Page,
    Response,
    ViewportSize,
    async_playwright,
    expect,
)

from bot.clock import FixedClock
from storage.dashboard import Role
from tests.e2e.test_tickets import desk_config, open_desk
from tests.web.conftest import PASSWORD, Site, serve_dashboard

BROWSER = pytest.mark.asyncio(loop_scope="session")

CHROMIUM = Path("/usr/bin/chromium")
# As root in a closed network: no sandbox, no GPU, and none of Chromium's own connections
# (update checks, sync, field trials), which this machine refuses by the dozen.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
# A page that takes longer than this to show an element is a failure, not a slow machine.
TIMEOUT_MS = 5_000


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; missing, the browser tests fail (they are part of the test command)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: the browser tests need Debian's package "
            "(`make test` installs it; by hand: apt-get install -y chromium)",
            pytrace=False,
        )
    return CHROMIUM


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        # launch() gives Chromium a new, empty user-data dir of its own and removes it on close.
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_FLAGS
        )
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="session")
async def site(tmp_path: Path, clock: FixedClock, demo_database: Path) -> AsyncIterator[Site]:
    """tests/web's `site`, started on the browser's event loop."""
    async for desk in open_desk(demo_database, desk_config(tmp_path), clock):
        async for harness in serve_dashboard(desk, clock):
            yield harness


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser, site: Site) -> AsyncIterator[Page]:
    """A fresh tab with no cookies. Fails the test if a page reports a script error or a CSP
    refusal, or a stylesheet, script or fetch() answers with an error status."""
    context = await browser.new_context(viewport=VIEWPORT, base_url=site.url)
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    tab = await context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    tab.on("console", lambda message: _note_console_error(message, problems))
    tab.on("response", lambda response: _note_missing_resource(response, problems))
    yield tab
    await context.close()
    assert not problems, "the browser reported:\n" + "\n".join(problems)


def _note_console_error(message: ConsoleMessage, problems: list[str]) -> None:
    # Statuses are judged in _note_missing_resource: a page that answers a wrong form with 4xx
    # does so on purpose, and Chromium logs that as an error too.
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        problems.append(f"console: {message.text} ({message.location.get('url', '')})")


def _note_missing_resource(response: Response, problems: list[str]) -> None:
    """A stylesheet, script or fetch() that failed (the dashboard has no favicon)."""
    request = response.request
    if response.status < 400 or request.is_navigation_request():
        return
    if not request.url.endswith("/favicon.ico"):
        problems.append(f"{request.method} {request.url}: {response.status}")


async def login(page: Page, site: Site, username: str, password: str = PASSWORD) -> None:
    """Open the login page, fill in the form and submit it, as a person would."""
    await page.goto(f"{site.url}/admin/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_load_state()


async def signed_in(page: Page, site: Site, username: str = "alex", role: Role = "admin") -> Page:
    """A new account of this role, logged in through the form; the page is on the overview."""
    site.account(username, role, display_name=username.title())
    await login(page, site, username)
    await expect(page).to_have_url(f"{site.url}/admin")
    return page


@pytest_asyncio.fixture(loop_scope="session")
async def admin_page(page: Page, site: Site) -> Page:
    return await signed_in(page, site, "alex", "admin")


@pytest_asyncio.fixture(loop_scope="session")
async def staff_page(page: Page, site: Site) -> Page:
    return await signed_in(page, site, "maria", "staff")


async def shot(page: Page, name: str) -> Path:
    """A full-page screenshot at var/screenshots/<name>.png, for people to look at."""
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
