"""Text for the ticket commands: ticket lines, one ticket in full, the ticket report."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.reports import DurationStats, TicketReport, format_duration
from bot.tickets import Actor, RelayRecord, Ticket, TicketEvent, TicketStatus
from storage.reports import CustomerLabel

FINISHED = (TicketStatus.RESOLVED, TicketStatus.CLOSED)
ARROWS = {"from_customer": "←", "to_customer": "→", "note": "·"}


def local(moment: datetime | None, tz: ZoneInfo) -> str:
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M}" if moment else "-"


def short_time(moment: datetime, tz: ZoneInfo, now: datetime) -> str:
    """ "14:00" today (in the shop's timezone), "Tue 24 Nov 14:00" on another day."""
    at = moment.astimezone(tz)
    return f"{at:%H:%M}" if at.date() == now.astimezone(tz).date() else f"{at:%a %d %b %H:%M}"


def topic(ticket: Ticket) -> str:
    return f"{ticket.kind.value}/{ticket.category}" if ticket.category else ticket.kind.value


def sla_state(ticket: Ticket, tz: ZoneInfo, now: datetime) -> str:
    """ "BREACHED first response", "due 14:00" (the next running target), "met" or "-"."""
    breached = [
        name
        for name, at in (
            ("first response", ticket.first_response_breached_at),
            ("resolution", ticket.resolution_breached_at),
        )
        if at is not None
    ]
    if breached:
        return "BREACHED " + " and ".join(breached)
    due = ticket.next_due()
    if due is not None:
        overdue = " (overdue)" if due <= now else ""
        return f"due {short_time(due, tz, now)}{overdue}"
    return "met" if ticket.status in FINISHED else "-"


def ticket_lines(
    tickets: Sequence[Ticket], customers: dict[int, CustomerLabel], tz: ZoneInfo, now: datetime
) -> list[str]:
    rows = [
        (
            f"#{t.id}",
            t.status.value,
            t.priority.value,
            topic(t),
            str(customers.get(t.customer_id, f"customer {t.customer_id}")),
            local(t.created_at, tz),
            t.assignee_name or "unassigned",
            f"SLA: {sla_state(t, tz, now)}",
        )
        for t in tickets
    ]
    if not rows:
        return []
    # Columns padded to their widest cell; the SLA state last, unpadded.
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]) for r in rows
    ]


def target_state(
    done_at: datetime | None, due: datetime | None, breached_at: datetime | None, tz: ZoneInfo
) -> str:
    if breached_at is not None:
        return f"BREACHED at {local(breached_at, tz)}"
    if due is None:
        return "no target"
    if done_at is None:
        return f"due {local(due, tz)}"
    return f"met (due {local(due, tz)})" if done_at <= due else f"missed (due {local(due, tz)})"


def ticket_details(
    ticket: Ticket,
    customer: CustomerLabel | None,
    order: str | None,
    events: Sequence[TicketEvent],
    messages: Sequence[RelayRecord],
    tz: ZoneInfo,
) -> list[str]:
    t = ticket
    fields = [
        ("customer", str(customer) if customer else f"customer {t.customer_id}"),
        ("order", order or "-"),
        ("subject", t.subject or "-"),
        ("assignee", t.assignee_name or "unassigned"),
        ("created", f"{local(t.created_at, tz)} (via {t.source})"),
        (
            "first response",
            f"{local(t.first_response_at, tz)}  "
            + target_state(
                t.first_response_at, t.first_response_due, t.first_response_breached_at, tz
            ),
        ),
        (
            "resolved",
            f"{local(t.resolved_at, tz)}  "
            + target_state(t.resolved_at, t.resolution_due, t.resolution_breached_at, tz),
        ),
    ]
    if t.closed_at is not None:
        fields.append(("closed", local(t.closed_at, tz)))
    if t.satisfaction is not None:
        fields.append(("satisfaction", f"{t.satisfaction}/5"))
    lines = [f"Ticket #{t.id}  {topic(t)}  {t.status.value}  priority {t.priority.value}"]
    lines += [f"  {name + ':':<16}{value}" for name, value in fields]
    lines.append(f"Timeline (times in {tz.key}):")
    lines += [f"  {event_line(e, tz)}" for e in events]
    lines.append("Conversation (← from the customer, → to the customer, · internal note):")
    lines += [f"  {message_line(m, tz)}" for m in messages] or ["  no messages"]
    return lines


def actor_label(actor: Actor) -> str:
    if actor.kind == "staff":
        return actor.name or f"staff {actor.id}"
    return actor.kind


def event_line(event: TicketEvent, tz: ZoneInfo) -> str:
    change = ""
    if event.to_status:
        change = f"{event.from_status or ''} -> {event.to_status}".lstrip()
    parts = [local(event.at, tz), f"{actor_label(event.actor):<14}", f"{event.event:<16}", change]
    if event.detail:
        parts.append(f"({event.detail})" if change else event.detail)
    return "  ".join(p for p in parts if p).rstrip()


def message_line(message: RelayRecord, tz: ZoneInfo) -> str:
    author = message.author_name or (
        "customer" if message.direction == "from_customer" else "staff"
    )
    text = " ".join((message.text or "").split()) or "-"
    line = (
        f"{local(message.created_at, tz)}  {ARROWS.get(message.direction, '?')} "
        f"{author:<14} {message.kind:<8} {text}"
    )
    if message.relay_status == "pending":
        line += "  [not delivered yet]"
    elif message.relay_status == "failed":
        line += f"  [NOT DELIVERED: {message.relay_error or 'unknown error'}]"
    return line


def period_label(since: date, until: date | None) -> str:
    """The days [since, until) as people say them: the last day included."""
    if until is None:
        return f"since {since:%Y-%m-%d}"
    last = until - timedelta(days=1)
    if last == since:
        return f"on {since:%Y-%m-%d}"
    return f"{since:%Y-%m-%d} to {last:%Y-%m-%d}"


def report_lines(report: TicketReport, period: str, tz: ZoneInfo) -> list[str]:
    title = f"Tickets created {period} ({tz.key})"
    if report.empty:
        return [f"No tickets created {period} ({tz.key})."]

    def counts(values: dict[str, int]) -> str:
        return ", ".join(f"{name} {count}" for name, count in values.items())

    lines = [
        f"{title}: {report.total}",
        f"  by status:    {counts(report.by_status)}",
        f"  by kind:      {counts(report.by_kind)}",
        f"  by category:  {counts(report.by_topic)}",
        "",
        f"{'':<16}{'tickets':>8}  {'business time':^21}  {'wall clock':^21}".rstrip(),
        f"{'':<16}{'':>8}  {'median':>10} {'p90':>10}  {'median':>10} {'p90':>10}",
        duration_row("First response", report.first_response),
        duration_row("Resolution", report.resolution),
        "(business time: support hours only; p90: nearest rank)",
        "",
        f"SLA breaches: first response {report.first_response_breaches}, "
        f"resolution {report.resolution_breaches}",
    ]
    return lines + staff_lines(report)


def staff_lines(report: TicketReport) -> list[str]:
    if not report.staff:
        return []
    width = max(16, *(len(s.name) + 2 for s in report.staff))
    lines = [
        "",
        f"{'Staff':<{width}}{'first answered':>15}{'median first response':>23}{'resolved':>10}",
    ]
    lines += [
        f"{s.name:<{width}}{s.first_answered:>15}"
        f"{format_duration(s.median_first_response):>23}{s.resolved:>10}"
        for s in report.staff
    ]
    lines.append("(median first response in business time)")
    return lines


def duration_row(label: str, stats: DurationStats) -> str:
    values = (stats.business_median, stats.business_p90, stats.wall_median, stats.wall_p90)
    b_median, b_p90, w_median, w_p90 = (format_duration(v) for v in values)
    return f"{label:<16}{stats.count:>8}  {b_median:>10} {b_p90:>10}  {w_median:>10} {w_p90:>10}"
