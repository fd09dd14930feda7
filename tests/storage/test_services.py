"""Services over real storage: deep links, FAQ answers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.clock import FixedClock
from bot.config import Config
from bot.models import TelegramIdentity
from bot.services import LinkOutcome, Services
from carebot.loading import DEMO_FAQ, import_faq
from carebot.runtime import services_over
from storage.repositories import Repositories

ANN = TelegramIdentity(1001, "Ann")
MALLORY = TelegramIdentity(666, "Mallory")


@pytest.fixture
def services(config: Config, repos: Repositories, clock: FixedClock) -> Services:
    return services_over(config, repos, clock)


def test_deep_link_binds_once_and_expires(
    services: Services, repos: Repositories, clock: FixedClock
) -> None:
    shop_id = repos.customers.create_shop_customer("12361", first_name="Ann", now=clock.now())
    token, _ = services.links.issue(shop_id)
    assert len(token) == 32
    assert services.links.redeem(token, ANN, 1001).outcome == LinkOutcome.LINKED
    assert services.links.redeem(token, ANN, 1001).outcome == LinkOutcome.ALREADY_LINKED
    assert services.links.redeem(token, MALLORY, 666).outcome == LinkOutcome.USED
    late, _ = services.links.issue(shop_id)
    clock.advance(timedelta(hours=73))
    assert services.links.redeem(late, ANN, 1001).outcome == LinkOutcome.EXPIRED
    assert services.links.redeem("x" * 40, ANN, 1001).outcome == LinkOutcome.INVALID
    assert services.links.redeem("bad token!", ANN, 1001).outcome == LinkOutcome.INVALID


def test_a_forwarded_link_cannot_move_an_account(
    services: Services, repos: Repositories, clock: FixedClock
) -> None:
    shop_id = repos.customers.create_shop_customer("12361", first_name="Ann", now=clock.now())
    first, _ = services.links.issue(shop_id)
    services.links.redeem(first, ANN, 1001)
    second, _ = services.links.issue(shop_id)
    assert services.links.redeem(second, MALLORY, 666).outcome == LinkOutcome.OTHER_ACCOUNT
    bound = repos.customers.get(shop_id)
    assert bound is not None
    assert bound.telegram_user_id == 1001


def test_faq_answers_in_the_customers_language(
    services: Services, repos: Repositories, clock: FixedClock
) -> None:
    assert import_faq(repos, DEMO_FAQ, clock).problems == []
    english_question_chinese_customer = services.faq.best_answer("how much is shipping?", "zh")
    assert english_question_chinese_customer is not None
    assert english_question_chinese_customer.entry.slug == "shipping-cost"
    assert english_question_chinese_customer.entry.lang == "zh"
    returns = services.faq.best_answer("怎么退货", "en")
    assert returns is not None
    assert returns.entry.slug == "returns"
    assert services.faq.best_answer("hello there", "en") is None
    assert services.faq.best_answer("quantum chromodynamics", "en") is None


def test_timezone_names_are_validated(services: Services) -> None:
    customer = services.customers.seen(ANN, 1001)
    assert services.customers.set_timezone(customer, "asia/shanghai") == "Asia/Shanghai"
    assert services.customers.set_timezone(customer, "Mars/Base") is None
    assert services.customers.reload(customer).timezone == "Asia/Shanghai"


def test_a_second_shop_link_never_deletes_or_swaps_the_first_account(
    services: Services, repos: Repositories, clock: FixedClock
) -> None:
    ann_id = repos.customers.create_shop_customer("12361", first_name="Ann", now=clock.now())
    claire_id = repos.customers.create_shop_customer("12651", first_name="Claire", now=clock.now())
    ann_link, _ = services.links.issue(ann_id)
    claire_link, _ = services.links.issue(claire_id)
    assert services.links.redeem(ann_link, ANN, 1001).outcome == LinkOutcome.LINKED
    result = services.links.redeem(claire_link, ANN, 1001)
    assert result.outcome == LinkOutcome.TELEGRAM_IN_USE
    assert result.customer is None
    assert repos.customers.by_external_id("12361") is not None
    claire = repos.customers.get(claire_id)
    assert claire is not None
    assert claire.telegram_user_id is None
    # the refused link was not used up: Claire's own Telegram account can still use it
    claire_tg = TelegramIdentity(2002, "Claire")
    assert services.links.redeem(claire_link, claire_tg, 2002).outcome == LinkOutcome.LINKED
