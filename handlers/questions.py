"""Free-text questions answered from the FAQ, with "did this help?".

Buttons carry the id of the customer's question message, so "Talk to a person" under an
answer hands over that question, looked up in the customer's own chat log.
"""

from __future__ import annotations

import re
from typing import Any

from telegram import Update
from telegram.ext import Application, MessageHandler, filters

from bot.texts import T
from handlers.buttons import CustomerButton
from handlers.common import (
    PRIVATE_MESSAGES,
    clear_buttons,
    customer_of,
    deps,
    inline_keyboard,
    label,
    reply,
    state_of,
)
from handlers.context import CareContext
from handlers.settings import timezone_typed
from handlers.surveys import survey_comment
from handlers.tickets import into_ticket

FAQ_FEEDBACK = re.compile(r"^faq:(\d{1,9}):([yn]):(\d{1,10})$")


def person_button(context: CareContext, reason: str, question_id: int) -> Any:
    return inline_keyboard([[(label(context, T.BTN_PERSON), f"person:{reason}:{question_id}")]])


async def on_text(update: Update, context: CareContext) -> None:
    """Route free text: a typed timezone, a survey's "what went wrong?", a complaint being
    written or an open ticket (for staff), otherwise a question for the FAQ."""
    if state_of(context).awaiting == "timezone":
        await timezone_typed(update, context)
    elif await survey_comment(update, context):
        return
    elif not await into_ticket(update, context):
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


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app.add_handler(CustomerButton(faq_feedback, pattern=r"^faq:"))


def register_free_text(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Registered last: any text that no menu button or command claimed."""
    app.add_handler(MessageHandler(PRIVATE_MESSAGES & filters.TEXT & ~filters.COMMAND, on_text))
