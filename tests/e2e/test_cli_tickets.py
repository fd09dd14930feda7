"""`carebot tickets list|show` and `carebot report tickets` on a real database file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.clock import FixedClock
from bot.config import load_config, resolve_database_path
from carebot.cli import main
from storage.database import open_database
from storage.repositories import Repositories
from tests.storage.test_ticket_report import END, make_tickets


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    """A shop with the demo support hours and the tickets of ``make_tickets``."""
    path = tmp_path / "carebot.toml"
    path.write_text(
        '[database]\npath = "shop.db"\n'
        '[shop]\nname = "Demo Gifts"\ntimezone = "Europe/London"\n'
        'support_hours = { mon = "09:00-18:00", sat = "10:00-14:00" }\n',
        encoding="utf-8",
    )
    config = load_config(path, env={})
    repos = Repositories.over(open_database(resolve_database_path(config)))
    make_tickets(repos, config)
    repos.db.close()
    return str(path)


def run(config_file: str, *args: str, now: datetime = END) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, ["--config", config_file, *args], obj={"clock": FixedClock(now)}
    )
    return result.exit_code, result.stdout, result.stderr


def test_tickets_list_shows_active_tickets_newest_first(config_file: str) -> None:
    code, out, _ = run(config_file, "tickets", "list")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["#5", "#4", "#3"]  # newest first
    dan, eve, cat = (" ".join(line.split()) for line in lines)
    assert eve == (
        "#4 open high inquiry Eve (C5) 2026-11-23 12:00 unassigned "
        "SLA: BREACHED first response and resolution"
    )
    assert dan == (
        "#5 answered normal complaint/damaged Dan (C4) 2026-11-23 17:30 Bob "
        "SLA: due Mon 07 Dec 15:30"
    )
    assert cat == (
        "#3 answered normal complaint/late Cat (C3) 2026-11-23 11:00 Bob "
        "SLA: BREACHED first response"
    )


@pytest.mark.parametrize(
    ("now", "sla"),
    [
        (datetime(2026, 12, 7, 10, tzinfo=UTC), "SLA: due 15:30"),  # the same day: time only
        (datetime(2026, 12, 7, 16, tzinfo=UTC), "SLA: due 15:30 (overdue)"),  # not yet marked
    ],
)
def test_tickets_list_due_times_relative_to_now(config_file: str, now: datetime, sla: str) -> None:
    code, out, _ = run(config_file, "tickets", "list", now=now)
    assert code == 0
    assert out.splitlines()[0].startswith("#5 ")
    assert out.splitlines()[0].endswith(sla)


def test_tickets_list_filters_and_limits(config_file: str) -> None:
    code, out, _ = run(config_file, "tickets", "list", "--status", "resolved")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["#2", "#1"]
    assert all(line.endswith("SLA: met") for line in out.splitlines())
    assert "Ann Peeters (C1)" in out
    code, out, _ = run(config_file, "tickets", "list", "--status", "all", "--limit", "2")
    assert [line.split()[0] for line in out.splitlines()] == ["#5", "#4"]
    code, out, _ = run(config_file, "tickets", "list", "--status", "reopened")
    assert (code, out) == (0, "No reopened tickets.\n")
    code, _, err = run(config_file, "tickets", "list", "--status", "pending")
    assert code == 2
    assert "Invalid value for '--status'" in err


def test_tickets_show_has_header_timeline_and_conversation(config_file: str) -> None:
    code, out, _ = run(config_file, "tickets", "show", "1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Ticket #1  complaint/damaged  resolved  priority normal"
    header = "\n".join(lines[1:9])
    assert "customer:       Ann Peeters (C1)" in header
    assert "order:          536365" in header
    assert "created:        2026-11-23 10:00 (via complaint)" in header
    assert "first response: 2026-11-23 10:30  met (due 2026-11-23 14:00)" in header
    assert "resolved:       2026-11-23 12:00  met (due 2026-12-05 13:00)" in header
    timeline = out.split("Timeline (times in Europe/London):\n")[1].split("Conversation")[0]
    assert [" ".join(line.split()) for line in timeline.splitlines()] == [
        "2026-11-23 10:00 customer created -> open",
        "2026-11-23 10:30 Bob staff_replied open -> answered",
        "2026-11-23 12:00 Bob resolved answered -> resolved",
    ]
    conversation = out.split("internal note):\n")[1].splitlines()
    assert [" ".join(line.split()) for line in conversation] == [
        "2026-11-23 10:00 ← customer text My mug arrived broken",
        "2026-11-23 10:30 → Bob text Sorry! A new one is on its way.",
        "2026-11-23 11:00 · Bob text replacement sent with DPD",
        "2026-11-23 12:00 → Bob text Anything else? "
        "[NOT DELIVERED: Forbidden: bot was blocked by the user]",
    ]


def test_tickets_show_breaches(config_file: str) -> None:
    code, out, _ = run(config_file, "tickets", "show", "4")
    assert code == 0
    assert "first response: -  BREACHED at 2026-11-23 14:00" in out
    assert "resolved:       -  BREACHED at 2026-11-28 12:00" in out
    assert "system          sla_breach        first_response" in out
    assert "  no messages" in out


def test_tickets_show_unknown_ticket(config_file: str) -> None:
    code, out, err = run(config_file, "tickets", "show", "999")
    assert code == 2
    assert out == ""
    assert err == "carebot: error: no ticket #999\n"


def test_report_tickets(config_file: str) -> None:
    code, out, _ = run(
        config_file, "report", "tickets", "--since", "2026-11-23", "--until", "2026-11-30"
    )
    assert code == 0
    assert out == REPORT


REPORT = """\
Tickets created 2026-11-23 to 2026-11-29 (Europe/London): 5
  by status:    open 1, answered 2, resolved 2, reopened 0, closed 0
  by kind:      complaint 3, inquiry 2
  by category:  damaged 2, inquiry 2, late 1

                 tickets      business time           wall clock
                              median        p90      median        p90
First response         4      1h 00m     6h 00m      3h 30m     4d 17h
Resolution             2      5h 15m     8h 30m      2d 13h      5d 0h
(business time: support hours only; p90: nearest rank)

SLA breaches: first response 2, resolution 1

Staff            first answered  median first response  resolved
Bob                           3                 1h 00m         1
Carol                         1                 1h 00m         1
(median first response in business time)
"""


def test_report_tickets_for_a_period_without_tickets(config_file: str) -> None:
    code, out, _ = run(config_file, "report", "tickets", "--since", "2026-11-24")
    assert (code, out) == (0, "No tickets created since 2026-11-24 (Europe/London).\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-11-31"], "Invalid value for '--since': '2026-11-31' does not match"),
        (["--since", "yesterday"], "Invalid value for '--since'"),
        (["--until", "2026-11-30"], "Missing option '--since'"),
        (
            ["--since", "2026-11-23", "--until", "2026-11-23"],
            "Invalid value for '--until': must be a later day than --since",
        ),
    ],
)
def test_report_tickets_bad_dates(config_file: str, args: list[str], message: str) -> None:
    code, out, err = run(config_file, "report", "tickets", *args)
    assert code == 2
    assert out == ""
    assert message in err
