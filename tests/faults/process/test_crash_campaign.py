"""A campaign's sender killed with SIGKILL while requests are on the wire, then started
again: the ledger tells the truth about every reminder, and nobody gets one twice.

(tests/e2e/test_campaigns.py kills it while Telegram applies the requests in flight but
never answers: there every reminder arrives exactly once.)"""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from carebot.cli import main
from carebot.sandbox import SandboxUser
from handlers.campaigns import IN_FLIGHT
from storage.database import open_database
from storage.repositories import Repositories
from tests.e2e.test_campaigns import FLASH, bind_on_telegram
from tests.faults.process.conftest import CrashSite, until

RECIPIENTS = 30


def cli(site: CrashSite, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(site.bot.config), *args])
    assert result.exit_code == 0, result.output
    return result.output


def prepare_flash_sale(site: CrashSite, tmp_path: Path) -> set[int]:
    """RECIPIENTS customers on Telegram and a started campaign due now; their chat ids."""
    repos = Repositories.over(open_database(site.database))
    customers = [r["id"] for r in repos.db.query(f"SELECT id FROM customers LIMIT {RECIPIENTS}")]
    bind_on_telegram(repos, customers, site.sandbox)
    chats = {
        r["telegram_user_id"]
        for r in repos.db.query(
            "SELECT telegram_user_id FROM customers WHERE telegram_user_id IS NOT NULL"
        )
    }
    repos.db.close()
    for chat in chats:
        site.sandbox.add_user(SandboxUser(id=chat, first_name="Customer"))
    site.write_config('[campaigns]\nmessages_per_second = 10\nquiet_hours = "03:00-03:01"\n')
    # the occasion two days from today (the bot runs on the real clock), the campaign two
    # days before it: due now
    in_two_days = datetime.now(UTC) + timedelta(days=2)
    cli(site, "occasions", "add", "flash", in_two_days.strftime("%m-%d"))
    spec = tmp_path / "flash.toml"
    spec.write_text(FLASH, encoding="utf-8")
    cli(site, "campaign", "create", str(spec))
    cli(site, "campaign", "start", "flash-sale")
    return chats


def ledger(database: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(database)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM campaign_deliveries")]
    finally:
        db.close()


async def test_killed_with_reminders_on_the_wire_none_is_sent_twice_and_each_gap_is_counted(
    site: CrashSite, tmp_path: Path
) -> None:
    chats = prepare_flash_sale(site, tmp_path)

    def received() -> Counter[int]:
        """Reminders each chat got (successful sendMessage calls)."""
        return Counter(
            c["params"]["chat_id"]
            for c in site.sandbox.calls("sendMessage")
            if c["ok"] and "flash sale" in c["params"]["text"]
        )

    await site.bot.start()
    await until(lambda: sum(received().values()) >= 8, limit=60)
    # The connection dies under the next requests: they never reach Telegram, and the
    # process is killed while two of them are waiting for an answer.
    site.sandbox.set_fault("timeout", methods="sendMessage", delay=60)
    await until(lambda: sum(1 for c in site.sandbox.calls("sendMessage") if c.get("fault")) >= 2)
    await site.bot.kill()
    site.sandbox.clear_faults()
    assert sum(received().values()) < len(chats)  # killed in the middle

    await site.bot.start()
    settled = ("sent", "uncertain", "failed", "skipped")
    await until(lambda: all(r["status"] in settled for r in ledger(site.database)), limit=60)
    await site.sandbox.wait_idle(quiet=1.0, timeout=10)  # anything doubled would show up now
    await site.bot.stop()

    got = received()
    assert max(got.values()) == 1  # nobody twice
    rows = {r["chat_id"]: r for r in ledger(site.database)}
    assert set(rows) == chats
    sent = {chat for chat, r in rows.items() if r["status"] == "sent"}
    uncertain = {chat for chat, r in rows.items() if r["status"] == "uncertain"}
    assert sent | uncertain == chats  # every reminder accounted for, none silently skipped
    assert set(got) == sent  # "sent" is exactly what arrived...
    for chat in sent:  # ...as the very message Telegram stored
        [message] = [m for m in site.sandbox.sent(chat) if "flash sale" in m["plain_text"]]
        assert rows[chat]["message_id"] == message["message_id"]
    # what was on the wire at the kill never arrived, and the report says so
    assert 2 <= len(uncertain) <= IN_FLIGHT
    assert f"uncertain: {len(uncertain)}" in cli(site, "campaign", "report", "flash-sale")
