"""Loading shop data files into storage: the demo shop and FAQ files."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from bot.clock import Clock
from bot.config import Config, config_from_dict
from bot.faq_file import parse_faq_file
from bot.importing import RETAIL_PROFILE
from bot.models import TelegramIdentity
from carebot.importer import run_order_import
from storage.repositories import Repositories
from storage.segments import recompute_segments

DEMO_DIR = Path(__file__).parent / "demo"
DEMO_SHOP = DEMO_DIR / "shop.toml"
DEMO_FAQ = DEMO_DIR / "faq.toml"
DEMO_HISTORY = DEMO_DIR / "online_retail_ii_sample.csv.gz"


def demo_config(directory: Path, **telegram: object) -> Config:
    """A complete config for the demo shop with its database in ``directory`` (tests, bench)."""
    return config_from_dict(
        {
            "database": {"path": str(directory / "carebot.db")},
            "shop": {
                "name": "Demo Gifts",
                "timezone": "Europe/London",
                "contact": "help@demo.example",
                "support_hours": {"mon": "09:00-18:00", "sat": "10:00-14:00"},
            },
            "telegram": telegram,
        },
        source=str(directory / "carebot.toml"),
    )


@dataclass(frozen=True)
class FaqImport:
    loaded: int
    problems: list[str]


def import_faq(repos: Repositories, path: Path, clock: Clock) -> FaqImport:
    """Load good entries, report bad ones; entries are replaced by (slug, language)."""
    parsed = parse_faq_file(path)
    loaded = repos.faq.upsert(parsed.entries, clock.now()) if parsed.entries else 0
    return FaqImport(loaded, parsed.problems)


@dataclass(frozen=True)
class DemoShop:
    customers: int
    orders: int
    faq_entries: int
    telegram_users: dict[int, str]  # sandbox user id -> customer first name


def load_demo_shop(repos: Repositories, config: Config, clock: Clock) -> DemoShop:
    """Import the demo purchase history, name and bind the demo customers, load the FAQ.

    Running it again changes nothing (the import is idempotent).
    """
    run_order_import(
        repos, DEMO_HISTORY, config=config, cols=RETAIL_PROFILE, profile="retail", clock=clock
    )
    data = tomllib.loads(DEMO_SHOP.read_text(encoding="utf-8"))
    now = clock.now()
    telegram_users: dict[int, str] = {}
    for c in data["customer"]:
        customer_id = repos.customers.create_shop_customer(
            c["external_id"],
            first_name=c["first_name"],
            last_name=c.get("last_name"),
            country=c.get("country"),
            language=c.get("language"),
            now=now,
        )
        if "telegram_user_id" in c:
            user_id = int(c["telegram_user_id"])
            who = TelegramIdentity(user_id, c["first_name"], c.get("last_name"))
            repos.customers.bind_telegram(customer_id, who, user_id, now)
            telegram_users[user_id] = c["first_name"]
    faq = import_faq(repos, DEMO_FAQ, clock)
    recompute_segments(repos.db, now)
    return DemoShop(repos.customers.count(), repos.orders.count(), faq.loaded, telegram_users)
