"""Every text a person reads comes from ``templates/messages/<lang>/<key>.<html|txt>``.

``.html`` templates are Telegram messages (parse mode HTML, autoescaped so a customer's
name cannot inject markup); ``.txt`` templates are plain labels (buttons, commands).
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

import templates
from bot.config import SUPPORTED_LANGUAGES

MESSAGES_DIR = Path(templates.__file__).parent / "messages"
TELEGRAM_TEXT_LIMIT = 4096


class T(StrEnum):
    """Message keys; the value is the template's file name."""

    # messages (HTML)
    WELCOME = "welcome.html"
    HELP = "help.html"
    ASK_PROMPT = "ask_prompt.html"
    FAQ_ANSWER = "faq_answer.html"
    FAQ_THANKS = "faq_thanks.html"
    FAQ_NO_MATCH = "faq_no_match.html"
    FAQ_NOT_HELPFUL = "faq_not_helpful.html"
    COMPLAINT_CHOOSE_ORDER = "complaint_choose_order.html"
    COMPLAINT_CHOOSE_CATEGORY = "complaint_choose_category.html"
    COMPLAINT_DESCRIBE = "complaint_describe.html"
    COMPLAINT_ADDED = "complaint_added.html"
    COMPLAINT_CANCELLED = "complaint_cancelled.html"
    FORM_EXPIRED = "form_expired.html"
    TICKET_OPENED = "ticket_opened.html"
    TICKET_CONTINUES = "ticket_continues.html"
    TICKET_REOPENED = "ticket_reopened.html"
    TICKET_RESOLVED = "ticket_resolved.html"
    STATUS_LIST = "status_list.html"
    STATUS_NONE = "status_none.html"
    BANNED_NOTICE = "banned_notice.html"
    UNBANNED_NOTICE = "unbanned_notice.html"
    STAFF_ONLY = "staff_only.html"
    SURVEY_PURCHASE = "survey_purchase.html"
    SURVEY_SUPPORT = "survey_support.html"
    SURVEY_ANSWERED = "survey_answered.html"
    SURVEY_ASK_COMMENT = "survey_ask_comment.html"
    SURVEY_ASK_NPS = "survey_ask_nps.html"
    SURVEY_THANKS = "survey_thanks.html"
    SURVEY_RECOVERY = "survey_recovery.html"
    SURVEY_CLOSED = "survey_closed.txt"
    SURVEY_ALREADY = "survey_already.txt"
    STAFF_CSAT = "staff_csat.html"
    STAFF_LOW_SATISFACTION = "staff_low_satisfaction.txt"
    # staff chat (rendered in [staff] language)
    STAFF_CARD = "staff_card.html"
    STAFF_TOPIC_TITLE = "staff_topic_title.txt"
    STAFF_TOPIC_RECREATED = "staff_topic_recreated.html"
    STAFF_RELAY_FAILED = "staff_relay_failed.html"
    STAFF_REPLY_SIGNED = "staff_reply_signed.html"
    STAFF_BREACH = "staff_breach.html"
    STAFF_ADMIN_BREACH = "staff_admin_breach.html"
    STAFF_NOTE_SAVED = "staff_note_saved.html"
    STAFF_NOT_STAFF = "staff_not_staff.txt"
    STAFF_NOT_IN_TICKET = "staff_not_in_ticket.html"
    STAFF_USAGE = "staff_usage.html"
    STAFF_CANNED_LIST = "staff_canned_list.html"
    STAFF_CANNED_MISSING = "staff_canned_missing.html"
    STAFF_CANNED_SAVED = "staff_canned_saved.html"
    STAFF_CANNED_DELETED = "staff_canned_deleted.html"
    STAFF_CANNED_INVALID = "staff_canned_invalid.html"
    STAFF_BANNED = "staff_banned.html"
    STAFF_UNBANNED = "staff_unbanned.html"
    STAFF_RESOLVED = "staff_resolved.html"
    STAFF_REOPENED = "staff_reopened.html"
    STAFF_PERSON_ASKED = "staff_person_asked.html"
    STAFF_TICKET_DONE = "staff_ticket_done.html"
    STAFF_ACTION_DONE = "staff_action_done.txt"
    STAFF_WEB_REPLY = "staff_web_reply.html"
    STAFF_WEB_NOTE = "staff_web_note.html"
    ORDERS_NOT_LINKED = "orders_not_linked.html"
    ORDERS_NONE = "orders_none.html"
    ORDERS_LIST = "orders_list.html"
    ORDER_DETAIL = "order_detail.html"
    ORDER_NOT_FOUND = "order_not_found.html"
    ORDER_SHIPPED = "order_shipped.html"
    ORDER_DELIVERED = "order_delivered.html"
    SETTINGS = "settings.html"
    LANGUAGE_PROMPT = "language_prompt.html"
    LANGUAGE_CHANGED = "language_changed.html"
    TIMEZONE_PROMPT = "timezone_prompt.html"
    TIMEZONE_CHANGED = "timezone_changed.html"
    TIMEZONE_INVALID = "timezone_invalid.html"
    REMINDERS_OFF = "reminders_off.html"
    REMINDER_MORE = "reminder_more.html"
    REMINDER_SKIPPED = "reminder_skipped.html"
    REMINDER_STOP_CONFIRM = "reminder_stop_confirm.html"
    REMINDER_STOPPED = "reminder_stopped.html"
    REMINDER_KEPT = "reminder_kept.html"
    REMINDER_NOT_YOURS = "reminder_not_yours.txt"
    ADMIN_ONLY = "admin_only.html"
    ADMIN_ONLY_SHORT = "admin_only_short.txt"
    DASHBOARD_LINK = "dashboard_link.html"
    DASHBOARD_OFF = "dashboard_off.html"
    CAMPAIGNS_LIST = "campaigns_list.html"
    CAMPAIGN_PREVIEW = "campaign_preview.html"
    CAMPAIGN_ACTION_DONE = "campaign_action_done.txt"
    LINK_SUCCESS = "link_success.html"
    LINK_INVALID = "link_invalid.html"
    LINK_EXPIRED = "link_expired.html"
    LINK_USED = "link_used.html"
    LINK_OTHER_ACCOUNT = "link_other_account.html"
    LINK_TELEGRAM_IN_USE = "link_telegram_in_use.html"
    UNSUPPORTED_MEDIA = "unsupported_media.html"
    UNKNOWN_COMMAND = "unknown_command.html"
    GROUP_PRIVATE_ONLY = "group_private_only.html"
    ERROR = "error.html"
    ERROR_NOT_STORED = "error_not_stored.html"
    # labels (plain text)
    LANGUAGE_NAME = "language_name.txt"
    BTN_ASK = "btn_ask.txt"
    BTN_ORDERS = "btn_orders.txt"
    BTN_COMPLAINT = "btn_complaint.txt"
    BTN_PERSON = "btn_person.txt"
    BTN_SETTINGS = "btn_settings.txt"
    BTN_HELPED_YES = "btn_helped_yes.txt"
    BTN_HELPED_NO = "btn_helped_no.txt"
    BTN_ORDER = "btn_order.txt"
    BTN_LANGUAGE = "btn_language.txt"
    BTN_TIMEZONE = "btn_timezone.txt"
    BTN_TIMEZONE_OTHER = "btn_timezone_other.txt"
    BTN_REMINDERS_TOGGLE = "btn_reminders_toggle.txt"
    BTN_ORDER_UPDATES_TOGGLE = "btn_order_updates_toggle.txt"
    BTN_REMINDER_MORE = "btn_reminder_more.txt"
    BTN_REMINDER_SKIP = "btn_reminder_skip.txt"
    BTN_REMINDER_STOP = "btn_reminder_stop.txt"
    BTN_REMINDER_STOP_YES = "btn_reminder_stop_yes.txt"
    BTN_REMINDER_STOP_NO = "btn_reminder_stop_no.txt"
    BTN_SHOP = "btn_shop.txt"
    BTN_CAMPAIGN_PREVIEW = "btn_campaign_preview.txt"
    BTN_CAMPAIGN_START = "btn_campaign_start.txt"
    BTN_CAMPAIGN_PAUSE = "btn_campaign_pause.txt"
    BTN_CAMPAIGN_RESUME = "btn_campaign_resume.txt"
    CMD_START = "cmd_start.txt"
    CMD_HELP = "cmd_help.txt"
    CMD_ORDERS = "cmd_orders.txt"
    CMD_PERSON = "cmd_person.txt"
    CMD_SETTINGS = "cmd_settings.txt"
    CMD_STOP = "cmd_stop.txt"
    CMD_STATUS = "cmd_status.txt"
    CMD_COMPLAINT = "cmd_complaint.txt"
    BTN_NOT_ABOUT_ORDER = "btn_not_about_order.txt"
    BTN_SEND = "btn_send.txt"
    BTN_CANCEL = "btn_cancel.txt"
    BTN_CLAIM = "btn_claim.txt"
    BTN_RESOLVE = "btn_resolve.txt"
    BTN_PRIORITY_UP = "btn_priority_up.txt"
    BTN_PRIORITY_DOWN = "btn_priority_down.txt"
    CATEGORY_NAME = "category_name.txt"


# The main menu, in display order; its labels are how reply-keyboard presses are recognised.
MENU_BUTTONS = (T.BTN_ASK, T.BTN_ORDERS, T.BTN_COMPLAINT, T.BTN_PERSON, T.BTN_SETTINGS)
BOT_COMMANDS = {
    "start": T.CMD_START,
    "help": T.CMD_HELP,
    "orders": T.CMD_ORDERS,
    "complaint": T.CMD_COMPLAINT,
    "person": T.CMD_PERSON,
    "status": T.CMD_STATUS,
    "settings": T.CMD_SETTINGS,
    "stop": T.CMD_STOP,
}

_CURRENCY_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$", "CNY": "¥", "JPY": "¥"}


def money(amount: float, currency: str) -> str:
    symbol = _CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{amount:,.2f}" if symbol else f"{amount:,.2f} {currency}"


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(MESSAGES_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # The templates ship with the package and never change while the bot runs: no stat()
        # of the template file at every render.
        auto_reload=False,
    )
    env.filters["money"] = money
    return env


@cache
def _render_fixed(key: T, lang: str) -> str:
    """Texts without variables (button labels, most prompts) are rendered once per language."""
    return _environment().get_template(f"{lang}/{key.value}").render().strip()


@lru_cache(maxsize=1024)
def _render_strings(key: T, lang: str, values: tuple[tuple[str, str], ...]) -> str:
    """Texts whose values are all plain strings (an FAQ answer, a name) are rendered once per
    set of values: templates are pure, and the same FAQ answers are sent again and again."""
    return _environment().get_template(f"{lang}/{key.value}").render(values).strip()


class Texts:
    """Renders message templates in a language, falling back to the shop default."""

    def __init__(self, default_language: str) -> None:
        self.default_language = default_language

    def language(self, requested: str | None) -> str:
        return requested if requested in SUPPORTED_LANGUAGES else self.default_language

    def render(self, key: T, lang: str | None, **context: Any) -> str:
        if not context:
            return _render_fixed(key, self.language(lang))
        # exactly str: a Markup equal to a str would share its entry but render unescaped
        if all(type(value) is str for value in context.values()):
            return _render_strings(key, self.language(lang), tuple(context.items()))
        template = _environment().get_template(f"{self.language(lang)}/{key.value}")
        return template.render(**context).strip()

    def all_languages(self, key: T, **context: Any) -> dict[str, str]:
        return {lang: self.render(key, lang, **context) for lang in SUPPORTED_LANGUAGES}


def language_from_telegram(code: str | None, default: str) -> str:
    """Telegram's ``language_code`` (IETF tag such as "zh-hans" or "en-GB") to ours."""
    if not code:
        return default
    base = code.lower().replace("_", "-").split("-")[0]
    return base if base in SUPPORTED_LANGUAGES else default


def template_files(lang: str) -> set[str]:
    """Message templates of a language; files starting with "_" hold shared macros."""
    return {
        p.name
        for p in (MESSAGES_DIR / lang).iterdir()
        if p.suffix in {".html", ".txt"} and not p.name.startswith("_")
    }
