"""`carebot report surveys` on a real database file (a shop in Berlin, UTC+1 in November)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.config import load_config, resolve_database_path
from bot.models import OrderStatus
from carebot.cli import main
from storage.database import open_database
from storage.repositories import NewOrderItem, Repositories
from storage.surveys import SurveyRepository
from tests.storage.test_survey_report import Sender, make_surveys


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    """A shop in Berlin with the surveys of ``make_surveys``."""
    path = tmp_path / "carebot.toml"
    path.write_text(
        '[database]\npath = "shop.db"\n[shop]\nname = "Demo Gifts"\ntimezone = "Europe/Berlin"\n',
        encoding="utf-8",
    )
    config = load_config(path, env={})
    repos = Repositories.over(open_database(resolve_database_path(config)))
    make_surveys(repos, config)
    repos.db.close()
    return str(path)


def run(config_file: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--config", config_file, *args])
    return result.exit_code, result.stdout, result.stderr


TWO_WEEKS = ("--since", "2026-11-23", "--until", "2026-12-07")
SMALL = "  (small sample: {} under 30 is not reliable)"
HEADER = (
    "                  sent  answered  response  avg score    CSAT"
    "    1    2    3    4    5    NPS  NPS answers"
)
FOOTER = [
    "(response: answered / sent; avg score and 1-5: of the answers; CSAT: share of 4 and 5)",
    "(NPS: % of 9-10 minus % of 0-6 among NPS answers)",
]
TOTAL = (
    "total               10         8     80.0%       3.50   62.5%"
    "    1    1    1    3    2    +33            3" + SMALL.format("8 answers;")
)


def test_report_surveys_overall(config_file: str) -> None:
    code, out, _ = run(config_file, "report", "surveys", *TWO_WEEKS)
    assert code == 0
    assert out.splitlines() == [
        "Surveys sent 2026-11-23 to 2026-12-06 (Europe/Berlin): 10",
        "",
        HEADER,
        TOTAL,
        *FOOTER,
    ]


def test_report_surveys_by_category(config_file: str) -> None:
    code, out, _ = run(config_file, "report", "surveys", *TWO_WEEKS, "--by", "category")
    assert code == 0
    assert out.splitlines() == [
        "Surveys sent 2026-11-23 to 2026-12-06 (Europe/Berlin): 10",
        "",
        "category" + HEADER[8:],
        "cards                3         2     66.7%       3.50   50.0%"
        "    0    0    1    1    0   +100            1" + SMALL.format("2 answers;"),
        "inquiry              2         1     50.0%       4.00  100.0%"
        "    0    0    0    1    0      -            0" + SMALL.format("1 answer;"),
        "mugs                 2         2    100.0%       4.50  100.0%"
        "    0    0    0    1    1      0            2" + SMALL.format("2 answers;"),
        "damaged              1         1    100.0%       5.00  100.0%"
        "    0    0    0    0    1      -            0" + SMALL.format("1 answer;"),
        "late                 1         1    100.0%       1.00    0.0%"
        "    1    0    0    0    0      -            0" + SMALL.format("1 answer;"),
        "uncategorised        1         1    100.0%       2.00    0.0%"
        "    0    1    0    0    0      -            0" + SMALL.format("1 answer;"),
        TOTAL,
        *FOOTER,
    ]


def test_report_surveys_by_week_in_the_shop_timezone(config_file: str) -> None:
    code, out, _ = run(config_file, "report", "surveys", *TWO_WEEKS, "--by", "week")
    assert code == 0
    assert out.splitlines()[2:6] == [
        "week" + HEADER[4:],
        "2026-W48             6         6    100.0%       3.83   66.7%"
        "    0    1    1    2    2   +100            2" + SMALL.format("6 answers;"),
        "2026-W49             4         2     50.0%       2.50   50.0%"
        "    1    0    0    1    0   -100            1" + SMALL.format("2 answers;"),
        TOTAL,
    ]


def test_report_surveys_by_staff(config_file: str) -> None:
    code, out, _ = run(config_file, "report", "surveys", *TWO_WEEKS, "--by", "staff")
    assert code == 0
    assert out.splitlines()[2:7] == [
        "staff" + HEADER[5:],
        "-                    6         5     83.3%       3.60   60.0%"
        "    0    1    1    2    1    +33            3" + SMALL.format("5 answers;"),
        "Bob                  2         2    100.0%       3.00   50.0%"
        "    1    0    0    0    1      -            0" + SMALL.format("2 answers;"),
        "Carol                2         1     50.0%       4.00  100.0%"
        "    0    0    0    1    0      -            0" + SMALL.format("1 answer;"),
        TOTAL,
    ]


def test_report_surveys_of_one_kind_to_csv(config_file: str, tmp_path: Path) -> None:
    target = tmp_path / "support.csv"
    code, out, _ = run(
        config_file,
        "report",
        "surveys",
        "--since",
        "2026-11-23",
        "--kind",
        "support",
        "--by",
        "category",
        "--csv",
        str(target),
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Support surveys sent since 2026-11-23 (Europe/Berlin): 4"
    assert [line.split()[0] for line in lines[3:7]] == ["inquiry", "damaged", "late", "total"]
    assert lines[-1] == f"Written to {target}."
    with target.open(newline="", encoding="utf-8") as written:
        assert list(csv.reader(written)) == [
            [
                "category",
                "sent",
                "answered",
                "response_rate_pct",
                "average_score",
                "csat_pct",
                "score_1",
                "score_2",
                "score_3",
                "score_4",
                "score_5",
                "nps",
                "nps_answers",
                "promoters",
                "detractors",
                "small_sample",
            ],
            ["inquiry", "2", "1", "50.00", "4.000", "100.00", *"00010", "", "0", "0", "0", "yes"],
            ["damaged", "1", "1", "100.00", "5.000", "100.00", *"00001", "", "0", "0", "0", "yes"],
            ["late", "1", "1", "100.00", "1.000", "0.00", *"10000", "", "0", "0", "0", "yes"],
            ["total", "4", "3", "75.00", "3.333", "66.67", *"10011", "", "0", "0", "0", "yes"],
        ]


def test_report_surveys_csv_with_nps_and_without_groups(config_file: str, tmp_path: Path) -> None:
    target = tmp_path / "all.csv"
    code, _, _ = run(config_file, "report", "surveys", *TWO_WEEKS, "--csv", str(target))
    assert code == 0
    assert target.read_text(encoding="utf-8").splitlines() == [
        "group,sent,answered,response_rate_pct,average_score,csat_pct,score_1,score_2,score_3,"
        "score_4,score_5,nps,nps_answers,promoters,detractors,small_sample",
        "total,10,8,80.00,3.500,62.50,1,1,1,3,2,33.33,3,2,1,yes",
    ]


def test_thirty_answers_are_not_a_small_sample(config_file: str) -> None:
    config = load_config(Path(config_file), env={})
    repos = Repositories.over(open_database(resolve_database_path(config)))
    sent = datetime(2027, 1, 4, 9, tzinfo=UTC)  # Monday of ISO week 1
    customer = repos.customers.create_shop_customer("C99", first_name="Gus", now=sent)
    sender = Sender(SurveyRepository(repos.db))
    for n in range(31):
        order = repos.orders.save_order(
            external_id=f"2{n:03d}",
            customer_id=customer,
            status=OrderStatus.DELIVERED,
            placed_at=sent - timedelta(days=5),
            currency="GBP",
            items=[NewOrderItem("MUG-RED", "Red mug", 1, 8.5)],
            now=sent,
        )
        # 30 answered (20 fives, 10 twos) and one not.
        score = None if n == 30 else 5 if n < 20 else 2
        sender.send(customer, sent + timedelta(hours=n), order_id=order, score=score)
    repos.db.close()
    code, out, _ = run(config_file, "report", "surveys", "--since", "2027-01-01", "--by", "week")
    assert code == 0
    assert out.splitlines()[:5] == [
        "Surveys sent since 2027-01-01 (Europe/Berlin): 31",
        "",
        "week" + HEADER[4:],
        "2027-W01            31        30     96.8%       4.00   66.7%"
        "    0   10    0    0   20      -            0",
        "total               31        30     96.8%       4.00   66.7%"
        "    0   10    0    0   20      -            0",
    ]


def test_report_surveys_for_a_period_without_surveys(config_file: str) -> None:
    code, out, _ = run(config_file, "report", "surveys", "--since", "2026-12-07")
    assert (code, out) == (0, "No surveys sent since 2026-12-07 (Europe/Berlin).\n")
    code, out, _ = run(
        config_file, "report", "surveys", "--since", "2026-12-03", "--kind", "purchase"
    )
    assert (code, out) == (0, "No purchase surveys sent since 2026-12-03 (Europe/Berlin).\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-11-31"], "Invalid value for '--since': '2026-11-31' does not match"),
        (["--since", "last week"], "Invalid value for '--since'"),
        (["--until", "2026-11-30"], "Missing option '--since'"),
        (
            ["--since", "2026-11-23", "--until", "2026-11-22"],
            "Invalid value for '--until': must be a later day than --since",
        ),
        (["--since", "2026-11-23", "--by", "day"], "Invalid value for '--by'"),
        (["--since", "2026-11-23", "--kind", "delivery"], "Invalid value for '--kind'"),
    ],
)
def test_report_surveys_bad_options(config_file: str, args: list[str], message: str) -> None:
    code, out, err = run(config_file, "report", "surveys", *args)
    assert code == 2
    assert out == ""
    assert message in err


def test_report_surveys_csv_that_cannot_be_written(config_file: str, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "out.csv"
    code, _, err = run(config_file, "report", "surveys", *TWO_WEEKS, "--csv", str(target))
    assert code == 2
    assert err == f"carebot: error: cannot write {target}: No such file or directory\n"
