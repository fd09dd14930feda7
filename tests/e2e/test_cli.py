"""The carebot command as a shop owner uses it (real files, real processes' entry point)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from carebot.cli import main
from carebot.shell import run_shell
from tests.conftest import make_config

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "carebot.toml"
    path.write_text(
        f'[database]\npath = "shop.db"\n[shop]\nname = "Test Shop"\ntimezone = "Europe/Paris"\n'
        f'[telegram]\nusername = "test_shop_bot"\n{extra}',
        encoding="utf-8",
    )
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_config_error_is_one_line_naming_key_and_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'mode = "poll"\n')
    code, _, err = run("--config", str(path), "config", "check")
    assert code == 2
    assert err.strip().count("\n") == 0
    assert '[telegram] mode must be "polling" or "webhook"' in err
    assert str(path) in err
    assert "Traceback" not in err


def test_config_check_says_where_tickets_go(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    code, out, _ = run("--config", str(path), "config", "check")
    assert code == 0
    assert "staff chat: none yet (tickets are kept and posted once it is set)" in out


def test_run_without_token_points_to_the_shell(tmp_path: Path) -> None:
    code, _, err = run("--config", str(write_config(tmp_path)), "run")
    assert code == 2
    assert "[telegram] token is empty" in err
    assert "carebot shell" in err


def test_db_migrate_is_repeatable(tmp_path: Path) -> None:
    path = str(write_config(tmp_path))
    code, out, _ = run("--config", path, "db", "migrate")
    assert code == 0
    assert "applied 6 migration(s); 6 in total, none pending" in out
    assert (tmp_path / "shop.db").exists()
    code, out, _ = run("--config", path, "db", "migrate")
    assert "applied 0 migration(s); 6 in total, none pending" in out


def test_faq_import_keeps_good_entries_and_names_bad_ones(tmp_path: Path) -> None:
    faq = tmp_path / "faq.toml"
    faq.write_text(
        '[[entry]]\nslug = "hours"\n[entry.en]\nquestion = "When are you open?"\n'
        'answer = "Always."\n[entry.zh]\nquestion = "几点营业？"\n'
        '[[entry]]\nslug = "Bad Slug"\n[entry.en]\nquestion = "x"\nanswer = "y"\n',
        encoding="utf-8",
    )
    code, out, err = run("--config", str(write_config(tmp_path)), "faq", "import", str(faq))
    assert code == 0
    assert "1 FAQ entries loaded, 2 problem(s)." in out
    assert "entry 1 (hours): [zh] answer is missing" in err
    assert "entry 2: slug must be" in err


def test_a_database_error_in_any_command_is_one_line_naming_the_file(tmp_path: Path) -> None:
    from storage.database import open_database

    path = str(write_config(tmp_path))
    db = open_database(tmp_path / "shop.db")  # a trigger makes every FAQ write fail
    db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON faq_entries BEGIN SELECT RAISE(ABORT, 'no'); END"
    )
    db.conn.close()
    faq = tmp_path / "faq.toml"
    faq.write_text(
        '[[entry]]\nslug = "hours"\n[entry.en]\nquestion = "Open?"\nanswer = "Always."\n',
        encoding="utf-8",
    )
    code, _, err = run("--config", path, "faq", "import", str(faq))
    assert code == 2
    assert err.strip().count("\n") == 0
    assert f"database {tmp_path / 'shop.db'}: no" in err
    assert "Traceback" not in err


def test_customers_link_prints_a_deep_link(tmp_path: Path) -> None:
    path = str(write_config(tmp_path))
    code, _, err = run("--config", path, "customers", "link", "nobody")
    assert code == 2
    assert "no customer with external id 'nobody'" in err
    from storage.database import open_database

    db = open_database(tmp_path / "shop.db")
    db.execute(
        "INSERT INTO customers (external_id, first_name, created_at, updated_at) "
        "VALUES ('C1', 'Ann', 't', 't')"
    )
    db.close()
    code, out, _ = run("--config", path, "customers", "link", "C1")
    assert code == 0
    assert re.fullmatch(r"https://t\.me/test_shop_bot\?start=[A-Za-z0-9_-]{32}\n", out)


def test_every_cli_command_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    import click

    def walk(group: click.Group, prefix: str) -> list[str]:
        names = []
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                names += walk(command, f"{prefix}{name} ")
            else:
                names.append(f"{prefix}{name}")
        return names

    for command in walk(main, "carebot "):
        assert f"`{command}" in readme, f"README does not document {command}"


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return False


async def test_shell_runs_a_scripted_conversation(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    from bot.clock import SystemClock
    from carebot.loading import load_demo_shop
    from storage.database import open_database
    from storage.repositories import Repositories

    repos = Repositories.over(open_database(tmp_path / "carebot.db"))
    shop = load_demo_shop(repos, config, SystemClock())
    repos.db.close()
    script = FakeTty("how much is shipping\n1\n/orders\n1\n/quit\nnever read\n")
    out = FakeTty()
    await run_shell(config, user_id=None, known_users=shop.telegram_users, stdin=script, out=out)
    transcript = out.getvalue()
    assert "you are Ann (Telegram user 1001)" in transcript
    assert "bot: Hello, Ann!" in transcript
    assert "UK delivery is £4.95" in transcript
    assert "[1] 👍 Yes   [2] 👎 No" in transcript
    assert "Glad I could help!" in transcript
    assert "12 × DOLLY GIRL LUNCH BOX · £23.40" in transcript
    assert "never read" not in transcript


async def test_shell_shows_the_staff_side_of_a_ticket(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    script = FakeTty("/person\n!Sorry for the wait, how can I help?\n!/resolve\n/quit\n")
    out = FakeTty()
    await run_shell(config, user_id=1001, known_users={}, stdin=script, out=out)
    transcript = out.getvalue()
    assert "Your request is ticket #1" in transcript
    assert "[staff] #1 Question · open" in transcript  # the card in the sandbox staff chat
    assert "bot: Sorry for the wait, how can I help?" in transcript  # relayed to the customer
    assert "marked ticket #1 as resolved" in transcript
    assert "[staff] ✅ Resolved by Sam" in transcript


async def test_a_second_shell_session_over_the_same_database_is_answered(tmp_path: Path) -> None:
    """The sandbox is new each session but the database is not: ids must not start again,
    or the bot takes every update for one it already handled, and says nothing."""
    config = make_config(tmp_path)
    transcripts = []
    for _ in range(2):
        out = FakeTty()
        await run_shell(config, user_id=1001, known_users={}, stdin=FakeTty("/person\n"), out=out)
        transcripts.append(out.getvalue())
    assert "Your request is ticket #1" in transcripts[0]
    assert "Added to your open ticket #1" in transcripts[1]
    # the old topic is gone with the old sandbox: the ticket goes on in a new one
    assert "[staff] ♻️ The earlier topic of ticket #1 was deleted" in transcripts[1]


@pytest.mark.parametrize("command", ["run", "demo", "shell"])
def test_commands_have_help(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0
    assert "Usage:" in out


def test_unreachable_bot_api_is_one_line_without_the_token(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    token = "123456:SECRET-TOKEN-VALUE"
    path = write_config(
        tmp_path, f'token = "{token}"\nbase_url = "http://127.0.0.1:{closed_port}/bot"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "carebot", "--config", str(path), "run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "[telegram] cannot reach the Bot API" in result.stderr
    assert "Traceback" not in result.stderr
    assert token not in result.stderr + result.stdout
    assert "SECRET-TOKEN" not in result.stderr + result.stdout


def test_a_rejected_token_is_named_without_echoing_it(tmp_path: Path) -> None:
    from telegram.error import InvalidToken

    from bot.config import load_config
    from carebot.cli import telegram_failure

    config = load_config(write_config(tmp_path), env={})
    line = telegram_failure(config, InvalidToken("The token `123:abc` was rejected by the server."))
    assert line.endswith("[telegram] token was rejected by the Bot API (check it with @BotFather)")
    assert "123:abc" not in line


def test_import_orders_prints_a_summary_and_writes_every_problem(tmp_path: Path) -> None:
    path = str(write_config(tmp_path))
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,UK\n"
        "536365,POST,POSTAGE,1,2010-12-01 08:26:00,15,17850,UK\n"
        "536365,71053,WHITE METAL LANTERN,six,2010-12-01 08:26:00,3.39,17850,UK\n"
        "536366,22633,HAND WARMER UNION JACK,6,2010-12-01 08:28:00,1.85,,UK\n"
        "C536379,D,Discount,-1,2010-12-01 09:41:00,27.50,17850,UK\n",
        encoding="utf-8",
    )
    errors = tmp_path / "problems.csv"
    code, out, _ = run("--config", path, "import", "orders", str(orders), "--errors", str(errors))
    assert code == 0
    assert "Imported orders.csv: 5 lines" in out
    assert "orders     2 new, 0 changed, 0 unchanged; 1 of them returns/cancellations" in out
    assert "skipped    1 lines without a customer id, 0 duplicate lines" in out
    assert "fees       2 postage/fee/adjustment lines" in out
    assert "bad lines  1" in out
    assert "line 4: quantity 'six' is not a number" in out
    assert "segments   recomputed for 1 customers" in out
    assert errors.read_text(encoding="utf-8").splitlines() == [
        "line,problem",
        "4,quantity 'six' is not a number",
    ]
    code, out, _ = run("--config", path, "import", "orders", str(orders))
    assert "orders     0 new, 0 changed, 2 unchanged" in out
    code, _, err = run("--config", path, "import", "orders", str(orders), "--profile", "generic")
    assert code == 2
    assert "--profile generic needs --map" in err


def test_import_products_sets_categories_and_names_bad_rows(tmp_path: Path) -> None:
    path = str(write_config(tmp_path))
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("sku,name,category\n85123A,Heart holder,lighting\n,No sku,x\n", "utf-8")
    code, out, err = run("--config", path, "import", "products", str(catalog))
    assert code == 0
    assert "1 products created, 0 updated." in out
    assert "skipped: line 3: sku is empty" in err
    no_sku_column = tmp_path / "bad.csv"
    no_sku_column.write_text("title\nx\n", "utf-8")
    code, _, err = run("--config", path, "import", "products", str(no_sku_column))
    assert code == 2
    assert "missing column(s) for sku (found: title)" in err  # "title" is a name alias
