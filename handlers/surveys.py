"""Satisfaction surveys in the chat: invitations sent by jobs, one-tap answers, follow-ups,
and service recovery (a low score becomes a ticket at once).

Each invitation is a row with its due time; a job per invitation (``survey:<id>``) sends it
when the courtesy rules allow, and all jobs are rebuilt from the database at start (due
ones go out then, once: an invitation is claimed before it is sent).
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

from telegram import Bot, Update
from telegram.error import Forbidden, TelegramError, TimedOut
from telegram.ext import Application, JobQueue

from bot.surveys import AnswerOutcome, Decision, Survey, SurveyKind
from bot.texts import T
from bot.tickets import Actor, TicketKind
from handlers.buttons import CustomerButton
from handlers.common import (
    Outgoing,
    clear_buttons,
    customer_of,
    deps,
    edit,
    inline_keyboard,
    label,
    reply,
    run_at,
    send_text,
)
from handlers.context import CareContext, Deps
from handlers.desk import desk_of

logger = logging.getLogger("carebot.surveys")
SCORE = re.compile(r"^sv:(\d{1,12}):([1-5])$")
NPS = re.compile(r"^nps:(\d{1,12}):(\d{1,2})$")
# How long after a low score the customer's next text is taken as "what went wrong".
COMMENT_WINDOW = timedelta(days=1)


def schedule_survey(queue: JobQueue[Any] | None, d: Deps, survey: Survey) -> None:
    run_at(queue, d.clock, f"survey:{survey.id}", send_survey, survey.due_at, survey.id)


async def send_survey(context: CareContext) -> None:
    """An invitation came due: send it, wait for the customer's morning, or skip it."""
    d = context.bot_data.deps
    assert context.job is not None
    survey_id = context.job.data
    assert isinstance(survey_id, int)
    await deliver_survey(context.bot, context.job_queue, d, survey_id)


async def deliver_survey(bot: Bot, queue: JobQueue[Any] | None, d: Deps, survey_id: int) -> None:
    store, now = d.desk.surveys, d.clock.now()
    survey = store.get(survey_id)
    who = store.recipient(survey.customer_id) if survey else None
    if survey is None or who is None:
        return
    verdict = d.services.surveys.verdict(survey, who, now)
    if verdict.decision == Decision.SKIP:
        store.skip(survey.id, verdict.reason or "skipped")
        return
    if verdict.decision == Decision.WAIT:
        assert verdict.at is not None
        store.reschedule(survey.id, verdict.at)
        rescheduled = store.get(survey.id)
        if rescheduled is not None:
            schedule_survey(queue, d, rescheduled)
        return
    if not store.claim(survey.id):
        return  # another run took it: never twice
    customer = d.desk.customers.get(survey.customer_id)
    assert customer is not None
    assert customer.telegram_user_id is not None  # checked by the verdict (has_chat)
    lang = d.services.customers.language_of(customer)
    key, values = question(d, survey)
    buttons = inline_keyboard([[(str(n), f"sv:{survey.id}:{n}") for n in range(1, 6)]])
    try:
        sent = await send_text(
            bot,
            d,
            Outgoing(customer.telegram_user_id, lang, customer.id, once=True),
            key,
            markup=buttons,
            **values,
        )
    except TelegramError as exc:
        if isinstance(exc, Forbidden):
            d.desk.customers.update_settings(customer.id, now, blocked=True)
        # A timeout may have delivered it: never sent again either way (claimed once).
        outcome = "timed out, may have arrived" if isinstance(exc, TimedOut) else "not delivered"
        store.failed(survey.id, f"{outcome}: {exc}")
        logger.warning("survey %s not delivered: %s", survey.id, exc)
        return
    store.sent(survey.id, sent.chat_id, sent.message_id, now, d.services.surveys.expires(now))


def question(d: Deps, survey: Survey) -> tuple[T, dict[str, Any]]:
    if survey.kind == SurveyKind.SUPPORT:
        return T.SURVEY_SUPPORT, {"ticket_id": survey.ticket_id}
    order = (
        d.desk.orders.get_for_customer(survey.order_id, survey.customer_id)
        if survey.order_id
        else None
    )
    return T.SURVEY_PURCHASE, {"order_number": order.external_id if order else ""}


async def score_pressed(update: Update, context: CareContext) -> None:
    """A tap on 1-5: recorded once, for the customer's own survey; then one follow-up."""
    query = update.callback_query
    assert query is not None
    d, customer = deps(context), customer_of(context)
    match = SCORE.match(query.data or "")
    if match is None:
        await query.answer()
        return
    survey_id, score = int(match.group(1)), int(match.group(2))
    answer = d.services.surveys.answer(survey_id, customer.id, score, d.clock.now())
    if answer.outcome != AnswerOutcome.RECORDED or answer.survey is None:
        await refuse(update, context, answer.outcome)
        return
    await query.answer()
    survey = answer.survey
    key, values = question(d, survey)
    await edit(query, context, T.SURVEY_ANSWERED, question_key=key.value, score=score, **values)
    if survey.kind == SurveyKind.SUPPORT:
        await credit_support(context, survey, score)
    if answer.recover:
        await open_recovery(update, context, survey, comment=None)
    elif answer.followup == "comment":
        await reply(update, context, T.SURVEY_ASK_COMMENT)
    elif answer.followup == "nps":
        rows = [
            [(str(n), f"nps:{survey.id}:{n}") for n in range(0, 6)],
            [(str(n), f"nps:{survey.id}:{n}") for n in range(6, 11)],
        ]
        await reply(update, context, T.SURVEY_ASK_NPS, markup=inline_keyboard(rows))


async def refuse(update: Update, context: CareContext, outcome: AnswerOutcome) -> None:
    query = update.callback_query
    assert query is not None
    if outcome == AnswerOutcome.ALREADY:
        await query.answer(label(context, T.SURVEY_ALREADY), show_alert=True)
    elif outcome == AnswerOutcome.CLOSED:
        await query.answer(label(context, T.SURVEY_CLOSED), show_alert=True)
        await clear_buttons(query)
    else:  # someone else's survey, or a forged button
        await query.answer(label(context, T.SURVEY_CLOSED), show_alert=True)


async def nps_pressed(update: Update, context: CareContext) -> None:
    query = update.callback_query
    assert query is not None
    d, customer = deps(context), customer_of(context)
    match = NPS.match(query.data or "")
    answer = (
        d.services.surveys.nps(int(match.group(1)), customer.id, int(match.group(2)), d.clock.now())
        if match
        else None
    )
    if answer is None or answer.outcome != AnswerOutcome.RECORDED:
        await refuse(update, context, answer.outcome if answer else AnswerOutcome.NOT_YOURS)
        return
    await query.answer()
    await clear_buttons(query)
    await reply(update, context, T.SURVEY_THANKS)


async def credit_support(context: CareContext, survey: Survey, score: int) -> None:
    """A support CSAT answer goes on the ticket and is shown in its topic."""
    d = deps(context)
    if survey.ticket_id is None:
        return
    ticket = d.desk.tickets.update(
        survey.ticket_id,
        actor=Actor("customer", survey.customer_id),
        now=d.clock.now(),
        event="csat",
        changes={"satisfaction": score},
        detail=f"{score}/5 for {survey.staff_name or 'the team'}",
    )
    await desk_of(context).note(ticket, T.STAFF_CSAT, score=score, staff_name=survey.staff_name)


async def survey_comment(update: Update, context: CareContext) -> bool:
    """The customer's text after "what went wrong?": stored with the survey; a complaint-like
    comment opens a recovery ticket. False if no survey is waiting for a comment."""
    d, customer, message = deps(context), customer_of(context), update.effective_message
    assert message is not None
    now = d.clock.now()
    survey = d.desk.surveys.awaiting_comment(customer.id, now - COMMENT_WINDOW)
    if survey is None or not message.text:
        return False
    recover = d.services.surveys.comment(survey, message.text, now)
    if survey.recovery_ticket_id is not None:
        return False  # also goes into the recovery ticket, through the ticket route
    if recover:
        await open_recovery(update, context, survey, comment=message.text)
    else:
        await reply(update, context, T.SURVEY_THANKS)
    return True


async def open_recovery(
    update: Update, context: CareContext, survey: Survey, *, comment: str | None
) -> None:
    """Service recovery: a "low satisfaction" ticket, posted for staff at once."""
    d, now = deps(context), deps(context).clock.now()
    key, values = question(d, survey)
    subject = d.texts.render(
        T.STAFF_LOW_SATISFACTION,
        d.config.staff_language,
        score=survey.score,
        comment=comment,
        question_key=key.value,
        **values,
    )
    opened = d.services.tickets.open(
        survey.customer_id,
        TicketKind.COMPLAINT,
        "low_satisfaction",
        now,
        order_id=survey.order_id,
        subject=subject,
    )
    d.desk.surveys.set_recovery(survey.id, opened.ticket.id)
    await reply(update, context, T.SURVEY_RECOVERY, ticket=opened.ticket)
    desk = desk_of(context)
    desk.track(await desk.post(opened.ticket))


async def start_surveys(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """At start: every planned invitation gets its job back (overdue ones run at once)."""
    d: Deps = app.bot_data.deps
    for survey in d.desk.surveys.scheduled():
        schedule_survey(app.job_queue, d, survey)


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    app.add_handler(CustomerButton(score_pressed, pattern=r"^sv:"))
    app.add_handler(CustomerButton(nps_pressed, pattern=r"^nps:"))
