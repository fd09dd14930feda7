"""Customer-facing services: identity and settings, FAQ, orders, account links, tickets."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from zoneinfo import available_timezones

from bot.clock import Clock
from bot.config import SUPPORTED_LANGUAGES, Config, is_place_timezone
from bot.models import Customer, FaqEntry, FaqMatch, Order, TelegramIdentity
from bot.ports import CustomerStore, FaqStore, LinkTokenStore, OrderStore
from bot.search_terms import coverage, search_terms
from bot.surveys import SurveyService, SurveyStore
from bot.texts import language_from_telegram
from bot.tickets import TicketService, TicketStore

RECENT_ORDERS = 5
# An answer is offered only when it covers enough of what was asked; below this the
# customer is offered a person instead of a wrong answer.
MIN_FAQ_COVERAGE = 0.5


class CustomerService:
    def __init__(self, store: CustomerStore, clock: Clock, default_language: str) -> None:
        self.store = store
        self.clock = clock
        self.default_language = default_language

    def seen(self, who: TelegramIdentity, chat_id: int) -> Customer:
        """The customer behind a Telegram user, created on first contact."""
        language = language_from_telegram(who.language_code, self.default_language)
        return self.store.touch_from_telegram(who, chat_id, language, self.clock.now())

    def reload(self, customer: Customer) -> Customer:
        """The customer as stored now (after a settings change)."""
        return self.store.get(customer.id) or customer

    def language_of(self, customer: Customer | None) -> str:
        if customer and customer.language in SUPPORTED_LANGUAGES:
            return customer.language
        return self.default_language

    def set_language(self, customer: Customer, language: str) -> bool:
        if language not in SUPPORTED_LANGUAGES:
            return False
        self.store.update_settings(customer.id, self.clock.now(), language=language)
        return True

    def set_timezone(self, customer: Customer, name: str) -> str | None:
        """Store a valid IANA zone (case-insensitive); returns its canonical name or None."""
        zone = canonical_timezone(name)
        if zone:
            self.store.update_settings(customer.id, self.clock.now(), timezone=zone)
        return zone

    def set_reminders(self, customer: Customer, *, enabled: bool) -> None:
        self.store.update_settings(customer.id, self.clock.now(), reminders_opt_out=not enabled)

    def stop_unasked_messages(self, customer: Customer) -> None:
        """/stop: no reminders, offers or satisfaction surveys (service messages still come)."""
        self.store.update_settings(
            customer.id, self.clock.now(), reminders_opt_out=True, surveys_opt_out=True
        )

    def set_order_updates(self, customer: Customer, *, enabled: bool) -> None:
        self.store.update_settings(customer.id, self.clock.now(), order_updates_opt_out=not enabled)

    def mark_blocked(self, customer: Customer) -> None:
        self.store.update_settings(customer.id, self.clock.now(), blocked=True)


@cache
def _zones_by_lower_name() -> dict[str, str]:
    # available_timezones() walks the tz database on disk: once per process is enough
    return {z.lower(): z for z in available_timezones()}


def canonical_timezone(name: str) -> str | None:
    name = name.strip().replace(" ", "_")
    if not name or len(name) > 64:
        return None
    zone = _zones_by_lower_name().get(name.lower())
    return zone if zone is not None and is_place_timezone(zone) else None


class FaqService:
    def __init__(self, store: FaqStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def best_answer(self, question: str, language: str) -> FaqMatch | None:
        """The entry that best answers the question, in the customer's language if it has one."""
        terms = search_terms(question)
        scored = [
            FaqMatch(c.entry, coverage(terms, set(c.terms))) for c in self.store.search(terms)
        ]
        good = [m for m in scored if m.coverage >= MIN_FAQ_COVERAGE]
        if not good:
            return None
        # rank order from the index breaks ties between equally covering entries
        best = max(good, key=lambda m: m.coverage)
        if best.entry.lang == language:
            return best
        translated = self.store.get(best.entry.slug, language)
        return FaqMatch(translated or best.entry, best.coverage)

    def entry(self, entry_id: int) -> FaqEntry | None:
        return self.store.get_by_id(entry_id)

    def feedback(
        self, customer: Customer, entry: FaqEntry, *, helpful: bool, message_id: int | None
    ) -> bool:
        """Record the vote on one answer; False if that answer was already rated."""
        return self.store.record_feedback(
            customer.id, entry.slug, helpful, message_id, self.clock.now()
        )


class OrderService:
    def __init__(self, store: OrderStore) -> None:
        self.store = store

    def recent(self, customer: Customer) -> list[Order]:
        return self.store.recent_for_customer(customer.id, RECENT_ORDERS)

    def detail(self, customer: Customer, order_id: int) -> Order | None:
        """The order only if it is this customer's: callback data is never trusted."""
        return self.store.get_for_customer(order_id, customer.id)


class LinkOutcome(StrEnum):
    LINKED = "linked"
    ALREADY_LINKED = "already_linked"
    INVALID = "invalid"
    EXPIRED = "expired"
    USED = "used"
    OTHER_ACCOUNT = "other_account"
    TELEGRAM_IN_USE = "telegram_in_use"


@dataclass(frozen=True)
class LinkResult:
    outcome: LinkOutcome
    customer: Customer | None = None


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_link_token(text: str) -> bool:
    return 20 <= len(text) <= 64 and all(c.isalnum() or c in "-_" for c in text)


class LinkService:
    """Deep links (t.me/bot?start=TOKEN) that bind a Telegram user to a shop customer.

    Tokens are 192 random bits, stored only as SHA-256 hashes, single use, and expire.
    """

    def __init__(
        self, tokens: LinkTokenStore, customers: CustomerStore, clock: Clock, ttl: timedelta
    ) -> None:
        self.tokens = tokens
        self.customers = customers
        self.clock = clock
        self.ttl = ttl

    def issue(self, customer_id: int) -> tuple[str, datetime]:
        token = secrets.token_urlsafe(24)
        now = self.clock.now()
        expires = now + self.ttl
        self.tokens.create(_hash_token(token), customer_id, now, expires)
        return token, expires

    def redeem(self, token: str, who: TelegramIdentity, chat_id: int) -> LinkResult:
        if not looks_like_link_token(token):
            return LinkResult(LinkOutcome.INVALID)
        token_hash = _hash_token(token)
        record = self.tokens.get(token_hash)
        if record is None:
            return LinkResult(LinkOutcome.INVALID)
        target = self.customers.get(record.customer_id)
        if target is None:
            return LinkResult(LinkOutcome.INVALID)
        if record.used_at is not None:
            if target.telegram_user_id == who.user_id:
                return LinkResult(LinkOutcome.ALREADY_LINKED, target)
            return LinkResult(LinkOutcome.USED)
        now = self.clock.now()
        if now >= record.expires_at:
            return LinkResult(LinkOutcome.EXPIRED)
        if target.telegram_user_id not in (None, who.user_id):
            # Never move a shop account to another Telegram user: a forwarded link must not
            # let someone else read this customer's orders.
            return LinkResult(LinkOutcome.OTHER_ACCOUNT)
        current = self.customers.by_telegram_user(who.user_id)
        if current is not None and current.is_linked and current.id != target.id:
            # This Telegram user already speaks for another shop account; switching silently
            # would hand them a second customer's orders.
            return LinkResult(LinkOutcome.TELEGRAM_IN_USE)
        if not self.tokens.claim_and_bind(token_hash, target.id, who, chat_id, now):
            return LinkResult(LinkOutcome.USED)
        return LinkResult(LinkOutcome.LINKED, self.customers.get(target.id))

    def purge_expired(self) -> int:
        return self.tokens.purge_expired(self.clock.now())


@dataclass(frozen=True)
class Services:
    customers: CustomerService
    faq: FaqService
    orders: OrderService
    links: LinkService
    tickets: TicketService
    surveys: SurveyService

    @classmethod
    def build(
        cls,
        config: Config,
        clock: Clock,
        *,
        customers: CustomerStore,
        orders: OrderStore,
        faq: FaqStore,
        link_tokens: LinkTokenStore,
        tickets: TicketStore,
        surveys: SurveyStore,
    ) -> Services:
        shop = config.shop
        return cls(
            customers=CustomerService(customers, clock, shop.default_language),
            faq=FaqService(faq, clock),
            orders=OrderService(orders),
            links=LinkService(
                link_tokens, customers, clock, timedelta(hours=config.links.token_ttl_hours)
            ),
            tickets=TicketService(tickets, config.sla_policy(), config.ticket_settings()),
            surveys=SurveyService(surveys, config.surveys.settings(), shop.timezone),
        )


# Offered as one-tap choices in Settings; any other IANA zone can be typed.
COMMON_TIMEZONES = (
    "Europe/London",
    "Europe/Paris",
    "Europe/Madrid",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Shanghai",
    "Asia/Singapore",
    "Australia/Sydney",
)
