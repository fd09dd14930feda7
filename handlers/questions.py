"""Free-text questions answered from the FAQ, "did this help?", complaints and handoffs.

Buttons carry the id of the customer's question message, so "Talk to a person" under an
answer hands over that question, looked up in the customer's own chat log.
"""

from __future__ import annotations

import re
from typing import Any

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.texts import T
from handlers.common import (
    PRIVATE_MESSAGES,
    chat_id_of,
    clear_buttons,
    customer_of,
    deps,
    inline_keyboard,
    label,
    local_zone,
    reply,
    state_of,
)
from handlers.context import CareContext
from handlers.settings import timezone_typed

FAQ_FEEDBACK = re.compile(r"^faq:(\d{1,9}):([yn]):(\d{1,10})$")
PERSON = re.compile(r"^person:(no_match|not_helpful):(\d{1,10})$")


def person_button(context: CareContext, reason: str, question_id: int) -> Any:
    return inline_keyboard([[(label(context, T.BTN_PERSON), f"person:{reason}:{question_id}")]])


async def on_text(update: Update, context: CareContext) -> None:
    """Route free text: a pending complaint or timezone, otherwise a question for the FAQ."""
    awaiting = state_of(context).awaiting
    if awaiting == "timezone":
        await timezone_typed(update, context)
    elif awaiting == "complaint":
        await complaint_described(update, context)
    else:
        await answer_question(update, context)


async def answer_question(update: Update, context: CareContext) -> None:
    """Answer from the FAQ with "Did this help?", or offer a person when nothing fits."""
    d, customer, message = deps(context), customer_of(context), update.effective_message
    assert message is not None
    language = d.services.customers.language_of(customer)
    match = d.services.faq.best_answer(message.text or "", language)
    if match is None:
        markup = person_button(context, "no_match", message.message_id)
        await reply(update, context, T.FAQ_NO_MATCH, markup=markup)
        return
    entry, question_id = match.entry, message.message_id
    feedback = inline_keyboard(
        [
            [
                (label(context, T.BTN_HELPED_YES), f"faq:{entry.id}:y:{question_id}"),
                (label(context, T.BTN_HELPED_NO), f"faq:{entry.id}:n:{question_id}"),
            ]
        ]
    )
    await reply(
        update, context, T.FAQ_ANSWER, markup=feedback, question=entry.question, answer=entry.answer
    )


async def faq_feedback(update: Update, context: CareContext) -> None:
    """Record whether an answer helped (once per answer); "No" offers a person."""
    query = update.callback_query
    assert query is not None
    d, match = deps(context), FAQ_FEEDBACK.match(query.data or "")
    entry = d.services.faq.entry(int(match.group(1))) if match else None
    await query.answer()
    if match is None or entry is None or query.message is None:
        return
    helpful = match.group(2) == "y"
    first_vote = d.services.faq.feedback(
        customer_of(context), entry, helpful=helpful, message_id=query.message.message_id
    )
    await clear_buttons(query)
    if not first_vote:
        return
    if helpful:
        await reply(update, context, T.FAQ_THANKS)
    else:
        markup = person_button(context, "not_helpful", int(match.group(3)))
        await reply(update, context, T.FAQ_NOT_HELPFUL, markup=markup)


async def ask_prompt(update: Update, context: CareContext) -> None:
    """Menu "Ask a question": invite free text."""
    await reply(update, context, T.ASK_PROMPT)


async def complaint_start(update: Update, context: CareContext) -> None:
    """Menu "Complaint": the next message is the description passed to the team."""
    state_of(context).awaiting = "complaint"
    await reply(update, context, T.COMPLAINT_PROMPT)


async def complaint_described(update: Update, context: CareContext) -> None:
    """The customer described their problem: record it for the team."""
    state_of(context).awaiting = None
    text = update.effective_message.text if update.effective_message else None
    await hand_off(update, context, "complaint", text)


async def person_requested(update: Update, context: CareContext) -> None:
    """/person, the menu button, or "Talk to a person" under an answer."""
    query, reason, question = update.callback_query, "menu", None
    if query is not None:
        await query.answer()
        match = PERSON.match(query.data or "")
        if match is None:
            return
        reason = match.group(1)
        question = deps(context).log.incoming_text(chat_id_of(update), int(match.group(2)))
        await clear_buttons(query)
    await hand_off(update, context, reason, question)


async def hand_off(update: Update, context: CareContext, reason: str, text: str | None) -> None:
    d = deps(context)
    shop = d.config.shop
    handoff = d.services.handoffs.request(customer_of(context), reason, text)
    zone = local_zone(context)
    await reply(
        update,
        context,
        T.HANDOFF_RECORDED,
        request_id=handoff.request_id,
        open_now=handoff.open_now,
        next_opening=handoff.next_opening.astimezone(zone) if handoff.next_opening else None,
        local_timezone=zone.key,
        hours=shop.support_hours.summary(),
        timezone=shop.timezone,
    )


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app.add_handler(CommandHandler("person", person_requested, filters=PRIVATE_MESSAGES))
    app.add_handler(CallbackQueryHandler(faq_feedback, pattern=r"^faq:"))
    app.add_handler(CallbackQueryHandler(person_requested, pattern=r"^person:"))


def register_free_text(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Registered last: any text that no menu button or command claimed."""
    app.add_handler(MessageHandler(PRIVATE_MESSAGES & filters.TEXT & ~filters.COMMAND, on_text))
