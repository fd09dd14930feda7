"""A few days of real activity in the sandbox, so that pages (and their screenshots) show
figures and charts instead of "No data yet". Done before anyone logs in to the browser: the
clock moves days ahead, past any session's expiry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.tickets import Breach
from tests.e2e.conftest import ANN, WEI
from tests.e2e.test_surveys import invited
from tests.e2e.test_tickets import MARIA
from tests.web.conftest import Site
from tests.web.test_overview import sent_campaign
from tests.web.test_surveys import settings_form

WEI_COMMENT = "<b>Box</b> crushed & two mugs broke"


@dataclass(frozen=True)
class Activity:
    complaint: int  # Ann's ticket: answered by Maria in the topic, resolved, rated 5
    recovery: int  # Wei's low order rating: open, past its first-response target
    campaign: int  # a running Christmas campaign sent to both, clicked by Ann


async def busy_shop(site: Site) -> Activity:
    """The overview's web test scenario: a complaint answered and resolved, surveys (CSAT and
    NPS) answered, a breached recovery ticket, a campaign sent."""
    desk, clock, care = site.desk, site.clock, site.desk.care
    setup = await site.signed_in("setup", "admin")
    await setup.get("/admin/surveys/settings")
    await setup.post("/admin/surveys/settings", settings_form(nps_percent="100"))
    await desk.say(ANN, "/start")
    await desk.say(WEI, "/start")

    opened = await desk.complaint(ANN, "The mugs arrived broken")
    assert "ticket #1" in opened
    clock.advance(timedelta(minutes=30))
    thread = desk.topic()
    await desk.staff_says(MARIA, "So sorry! A replacement is on its way.", thread_id=thread)
    after = await desk.staff_says(MARIA, "/resolve", thread_id=thread)
    await desk.sandbox.wait_idle(quiet=0.3, timeout=10)
    await desk.press(ANN, desk.sent_to(ANN.id, after)[-1], "5")

    await desk.press(WEI, await invited(desk, clock, WEI), "1")
    await desk.say(WEI, WEI_COMMENT)
    [recovery] = care.db.query("SELECT id FROM tickets WHERE source = 'low_satisfaction'")
    care.deps.desk.tickets.record_breach(recovery["id"], Breach.FIRST_RESPONSE, clock.now())

    [nps_question] = await desk.press(ANN, await invited(desk, clock, ANN), "4")
    await desk.press(ANN, nps_question, "9")
    return Activity(complaint=1, recovery=recovery["id"], campaign=sent_campaign(site))
