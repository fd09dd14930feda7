"""What a staff member does to a ticket: claim, resolve, priority, canned replies.

The staff chat (commands and card buttons, ``handlers.staff``) and the web dashboard both
call these, so an action has the same effects wherever it is taken: the card redrawn, the
SLA job rescheduled, the customer told, the after-support survey planned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.canned import CannedError, merged_canned, render_canned
from bot.sla import Priority
from bot.texts import T
from bot.tickets import Actor, Ticket, TicketStatus
from handlers.context import Deps
from handlers.desk import Desk
from handlers.surveys import schedule_survey


def canned_replies(d: Deps) -> dict[str, str]:
    """Every canned reply by name: the config's, overridden by the ones staff wrote."""
    return merged_canned(d.config.tickets.canned.as_dict(), d.desk.canned.all())


class UnknownCanned(CannedError):
    """No canned reply has that name."""


@dataclass(frozen=True)
class TicketWork:
    """One staff member acting on tickets through the desk."""

    desk: Desk
    staff: Actor

    @property
    def d(self) -> Deps:
        return self.desk.d

    def now(self) -> datetime:
        return self.d.clock.now()

    async def claim(self, ticket: Ticket) -> Ticket | None:
        """Take the ticket; None if it is closed."""
        if ticket.status == TicketStatus.CLOSED:
            return None
        claimed = self.d.services.tickets.claim(ticket, self.staff, self.now())
        await self.desk.refresh(claimed)
        return claimed

    async def resolve(self, ticket: Ticket) -> Ticket | None:
        """Resolve an active ticket: the customer is told, staff see who resolved it, and the
        after-support survey is planned. None if it was not active."""
        now = self.now()
        resolved = self.d.services.tickets.resolve(ticket, self.staff, now)
        if resolved is None:
            return None
        await self.desk.tell_customer(
            resolved, T.TICKET_RESOLVED, reopen_days=self.d.config.tickets.reopen_days
        )
        await self.desk.note(resolved, T.STAFF_RESOLVED, staff=self.staff)
        await self.desk.refresh(resolved, rename=True)
        self.desk.track(resolved)
        survey = self.d.services.surveys.plan_support(
            resolved.customer_id, resolved.id, self.staff.id, self.staff.name, now
        )
        if survey is not None:  # how did we do? (sent when the courtesy rules allow)
            schedule_survey(self.desk.queue, self.d, survey)
        return resolved

    async def shift_priority(self, ticket: Ticket, steps: int) -> Ticket:
        changed = self.d.services.tickets.shift_priority(ticket, steps, self.staff, self.now())
        return await self._priority_changed(ticket, changed)

    async def set_priority(self, ticket: Ticket, priority: Priority) -> Ticket:
        changed = self.d.services.tickets.set_priority(ticket, priority, self.staff, self.now())
        return await self._priority_changed(ticket, changed)

    async def _priority_changed(self, before: Ticket, changed: Ticket) -> Ticket:
        if changed.priority != before.priority:
            await self.desk.refresh(changed)
            self.desk.track(changed)  # SLA targets still running moved
        return changed

    def canned_text(self, ticket: Ticket, name: str) -> str:
        """The canned reply ``name`` filled in for this ticket (plain text).

        Raises UnknownCanned, or CannedError if the stored text cannot be rendered.
        """
        body = canned_replies(self.d).get(name.lower())
        if body is None:
            raise UnknownCanned(name)
        return render_canned(body, self.canned_values(ticket))

    def canned_values(self, ticket: Ticket) -> dict[str, str]:
        customer = self.d.desk.customers.get(ticket.customer_id)
        order = self.desk.order_of(ticket)
        first = customer.first_name if customer else ""
        last = customer.last_name if customer and customer.last_name else ""
        return {
            "name": first,
            "full_name": f"{first} {last}".strip(),
            "order": order.external_id if order else "",
            "ticket": str(ticket.id),
            "shop": self.d.config.shop.name,
            "agent": self.staff.name,
        }
