"""Every page a role can reach, opened in Chromium: each shows its heading and marks its section
in the navigation, and none reports a script error, a CSP refusal or a missing stylesheet or
script (the page fixture fails the test on any of those)."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from storage.dashboard import Role
from tests.browser.conftest import BROWSER, signed_in
from tests.e2e.conftest import ANN
from tests.web.conftest import Site

pytestmark = BROWSER

# (path, its heading, the section it belongs to)
STAFF_PAGES = [
    ("/admin", "Overview", "Overview"),
    ("/admin/tickets", "Tickets", "Tickets"),
    ("/admin/tickets/1", "#1 complaint/damaged", "Tickets"),
    ("/admin/customers", "Customers", "Customers"),
    ("/admin/customers/{ann}", "Ann Peeters", "Customers"),
    ("/admin/surveys", "Surveys", "Surveys"),
    ("/admin/surveys/settings", "Survey settings", "Surveys"),
    ("/admin/canned", "Canned replies", "Canned replies"),
    ("/admin/canned/new", "New canned reply", "Canned replies"),
    ("/admin/account", "My account", None),
]
ADMIN_PAGES = [
    *STAFF_PAGES,
    ("/admin/campaigns", "Campaigns", "Campaigns"),
    ("/admin/campaigns/new", "New campaign", "Campaigns"),
    ("/admin/faq", "FAQ", "FAQ"),
    ("/admin/faq/new", "New FAQ entry", "FAQ"),
    ("/admin/staff", "Staff", "Staff"),
]


@pytest.mark.parametrize(
    ("role", "pages"), [("staff", STAFF_PAGES), ("admin", ADMIN_PAGES)], ids=["staff", "admin"]
)
async def test_every_page_opens_cleanly(
    page: Page, site: Site, role: Role, pages: list[tuple[str, str, str | None]]
) -> None:
    await site.desk.complaint(ANN, "The mugs arrived broken")
    ann = site.desk.care.repos.customers.by_telegram_user(ANN.id)
    assert ann is not None
    await signed_in(page, site, role, role)
    sections = page.get_by_role("navigation", name="Sections")
    for path, heading, section in pages:
        response = await page.goto(path.format(ann=ann.id))
        assert response is not None
        assert response.status == 200, path
        await expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
        current = sections.locator("[aria-current=page]")
        if section is None:
            await expect(current).to_have_count(0)
        else:
            await expect(current).to_have_text(section)
