"""Purchase-history import: rows in, invoices out, every bad line named by its number.

Pure logic over an ``InvoiceSink`` (storage implements it), so it is tested without files or
a database. Rows stream through: only the lines of the current invoice are held in memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.catalog import is_fee_code

DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M", "%d.%m.%Y %H:%M")
MAX_PROBLEMS_KEPT = 1000  # a summary lists the first ones; the count covers them all
UNREADABLE = "__unreadable__"  # a row the reader could not parse; the value says why
MAX_QUANTITY = 1_000_000  # per line; beyond it a value is a typo or an attack, not an order
MAX_UNIT_PRICE = 1_000_000


@dataclass(frozen=True)
class ColumnMap:
    """Which input column holds each field."""

    invoice: str
    sku: str
    description: str
    quantity: str
    date: str
    price: str
    customer: str
    country: str | None = None
    # Invoices starting with this are cancellations (the retail export's "C536379"); without
    # a prefix, an invoice of negative quantities is a return.
    cancel_prefix: str = ""
    # strptime format of the date column; None tries ISO-8601 and the retail export's forms.
    date_format: str | None = None

    def missing(self, header: Iterable[str]) -> list[str]:
        present = set(header)
        needed = [self.invoice, self.sku, self.description, self.quantity, self.date]
        needed += [self.price, self.customer]
        return [name for name in needed if name not in present]


RETAIL_PROFILE = ColumnMap(
    invoice="Invoice",
    sku="StockCode",
    description="Description",
    quantity="Quantity",
    date="InvoiceDate",
    price="Price",
    customer="Customer ID",
    country="Country",
    cancel_prefix="C",
)
_FIELDS = ("invoice", "sku", "description", "quantity", "date", "price", "customer", "country")
#: The header of a file in the retail profile, in its column order.
RETAIL_HEADER = tuple(getattr(RETAIL_PROFILE, name) for name in _FIELDS)


def parse_column_map(spec: str) -> ColumnMap:
    """``invoice=OrderNo,sku=SKU,...`` for the generic profile; unnamed fields keep retail names."""
    values: dict[str, str | None] = {f: getattr(RETAIL_PROFILE, f) for f in _FIELDS}
    values["cancel_prefix"] = ""
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, column = part.partition("=")
        if not sep or name.strip() not in _FIELDS or not column.strip():
            raise ValueError(
                f"bad column mapping {part!r}: use field=Column with fields {', '.join(_FIELDS)}"
            )
        values[name.strip()] = column.strip()
    return ColumnMap(**values)  # type: ignore[arg-type]


def with_date_format(cols: ColumnMap, date_format: str | None) -> ColumnMap:
    return replace(cols, date_format=date_format) if date_format else cols


@dataclass(frozen=True)
class Line:
    number: int
    invoice: str
    sku: str
    description: str
    quantity: int
    unit_price: Decimal
    placed_at: datetime
    customer: str
    country: str | None
    is_return: bool = False

    @property
    def is_fee(self) -> bool:
        return is_fee_code(self.sku)

    def key(self) -> tuple[str, str, int, Decimal]:
        """What makes two lines of one invoice the same line (a duplicate)."""
        return (self.sku, self.description, self.quantity, self.unit_price)


@dataclass(frozen=True)
class Problem:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class NoCustomer(Exception):
    """A line without a customer id: counted and skipped, not an error."""


def parse_line(row: Mapping[str, str | None], number: int, cols: ColumnMap, tz: ZoneInfo) -> Line:
    """One input row as a Line; raises ValueError (the reason) or NoCustomer."""

    def text(column: str | None) -> str:
        value = row.get(column) if column else None
        return (value or "").strip()

    customer = _customer_id(text(cols.customer))
    invoice = text(cols.invoice)
    if not invoice:
        raise ValueError("invoice number is empty")
    if not customer:
        raise NoCustomer
    sku = text(cols.sku)
    if not sku:
        raise ValueError("stock code is empty")
    quantity = _whole_number(text(cols.quantity), "quantity")
    price = _price(text(cols.price))
    if quantity == 0:
        raise ValueError("quantity is 0")
    prefix = cols.cancel_prefix
    is_return = invoice.upper().startswith(prefix) if prefix else quantity < 0
    if prefix and quantity < 0 and not is_return:
        raise ValueError(f"negative quantity {quantity} on a sale (invoice {invoice})")
    if prefix and quantity > 0 and is_return:
        raise ValueError(f"positive quantity {quantity} on a cancellation (invoice {invoice})")
    return Line(
        number=number,
        invoice=invoice,
        sku=sku,
        description=" ".join(text(cols.description).split()),
        quantity=quantity,
        unit_price=price,
        placed_at=_date(text(cols.date), tz, cols.date_format),
        customer=customer,
        country=text(cols.country) or None,
        is_return=is_return,
    )


def _customer_id(value: str) -> str:
    # Spreadsheet exports turn 12417 into "12417.0"
    return value[:-2] if value.endswith(".0") and value[:-2].isdigit() else value


def _decimal(value: str, name: str, limit: int) -> Decimal:
    """A finite number within ±limit (checked before any conversion that could be slow)."""
    try:
        number = Decimal(value)
        if not number.is_finite() or abs(number) > limit:
            raise ValueError(f"{name} {value!r} is not a number between -{limit} and {limit}")
    except ArithmeticError:
        raise ValueError(f"{name} {value!r} is not a number") from None
    return number


def _whole_number(value: str, name: str) -> int:
    number = _decimal(value, name, MAX_QUANTITY)
    if number != number.to_integral_value():
        raise ValueError(f"{name} {value!r} is not a whole number")
    return int(number)


_DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")


def _price(value: str) -> Decimal:
    if _DECIMAL_COMMA.match(value):
        value = value.replace(",", ".")
    price = _decimal(value, "price", MAX_UNIT_PRICE)
    if price < 0:
        raise ValueError(f"negative price {value}")
    return price


def _date(value: str, tz: ZoneInfo, date_format: str | None = None) -> datetime:
    if date_format:
        try:
            return datetime.strptime(value, date_format).replace(tzinfo=tz)
        except ValueError:
            raise ValueError(f"date {value!r} does not match {date_format}") from None
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"date {value!r} is not a date (expected 2010-12-01 08:26:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


@dataclass
class Invoice:
    """Consecutive lines of one invoice; lines are in file order."""

    number: str
    customer: str
    lines: list[Line] = field(default_factory=list)

    @property
    def is_return(self) -> bool:
        return bool(self.lines) and self.lines[0].is_return

    @property
    def placed_at(self) -> datetime:
        return min(line.placed_at for line in self.lines)

    @property
    def country(self) -> str | None:
        return next((line.country for line in self.lines if line.country), None)


@dataclass(frozen=True)
class InvoiceOutcome:
    created: bool
    changed: bool
    new_customer: bool
    new_products: int
    duplicates: tuple[int, ...] = ()  # line numbers repeated from earlier lines of the invoice
    rejected: str | None = None  # why none of these lines could be stored


class InvoiceSink(Protocol):
    def write_invoice(self, invoice: Invoice, *, seen_before: bool) -> InvoiceOutcome:
        """Store one invoice atomically; ``seen_before``: more lines of an invoice met earlier."""
        ...

    def finish(self) -> int:
        """Drop stored lines no part of this run accounted for (the file shrank an invoice);
        returns how many invoices reported unchanged were changed by that."""
        ...


@dataclass
class ImportSummary:
    lines: int = 0
    orders_created: int = 0
    orders_changed: int = 0
    orders_unchanged: int = 0
    parts_merged: int = 0  # an invoice's lines met again further down the file
    returns: int = 0
    customers_created: int = 0
    products_created: int = 0
    fee_lines: int = 0
    skipped_no_customer: int = 0
    duplicates: int = 0
    bad: int = 0
    problems: list[Problem] = field(default_factory=list)
    # every problem, as it is found (the list above keeps only the first ones)
    on_problem: Callable[[Problem], None] | None = field(default=None, repr=False)

    @property
    def invoices(self) -> int:
        return self.orders_created + self.orders_changed + self.orders_unchanged

    def problem(self, line: int, reason: str) -> None:
        """A bad line: counted, and listed (the first MAX_PROBLEMS_KEPT of everything)."""
        self.bad += 1
        self.listed(line, reason)

    def listed(self, line: int, reason: str) -> None:
        problem = Problem(line, reason)
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(problem)
        if self.on_problem:
            self.on_problem(problem)


def import_rows(
    rows: Iterable[tuple[int, Mapping[str, str | None]]],
    cols: ColumnMap,
    tz: ZoneInfo,
    sink: InvoiceSink,
    *,
    on_line: Callable[[int], None] | None = None,
    on_problem: Callable[[Problem], None] | None = None,
) -> ImportSummary:
    """Parse numbered rows, group consecutive lines into invoices, and write each one.

    A bad line is reported and skipped; the rest of its invoice is still imported.
    """
    summary = ImportSummary(on_problem=on_problem)
    written: set[str] = set()  # invoice numbers written in this run (to merge reappearances)
    for invoice in _invoices(rows, cols, tz, summary, on_line):
        seen_before = invoice.number in written
        outcome = sink.write_invoice(invoice, seen_before=seen_before)
        written.add(invoice.number)
        _count(summary, invoice, outcome, seen_before)
    trimmed = sink.finish()
    summary.orders_unchanged -= trimmed
    summary.orders_changed += trimmed
    return summary


def _invoices(
    rows: Iterable[tuple[int, Mapping[str, str | None]]],
    cols: ColumnMap,
    tz: ZoneInfo,
    summary: ImportSummary,
    on_line: Callable[[int], None] | None,
) -> Iterator[Invoice]:
    current: Invoice | None = None
    for number, row in rows:
        summary.lines += 1
        if on_line:
            on_line(number)
        if UNREADABLE in row:
            summary.problem(number, row[UNREADABLE] or "unreadable line")
            continue
        try:
            line = parse_line(row, number, cols, tz)
        except NoCustomer:
            summary.skipped_no_customer += 1
            continue
        except ValueError as exc:
            summary.problem(number, str(exc))
            continue
        if current is not None and current.number != line.invoice:
            yield current
            current = None
        if current is None:
            current = Invoice(line.invoice, line.customer)
        if line.customer != current.customer:
            summary.problem(
                number,
                f"customer {line.customer} differs from {current.customer} earlier in "
                f"invoice {line.invoice}",
            )
            continue
        if current.lines and line.is_return != current.is_return:
            summary.problem(number, f"sales and returns mixed in invoice {line.invoice}")
            continue
        current.lines.append(line)
    if current is not None:
        yield current


def _count(
    summary: ImportSummary, invoice: Invoice, outcome: InvoiceOutcome, seen_before: bool
) -> None:
    if outcome.rejected:
        for line in invoice.lines:
            summary.problem(line.number, outcome.rejected)
        return
    if seen_before:  # the order was counted with the invoice's first part
        summary.parts_merged += 1
    elif outcome.created:
        summary.orders_created += 1
    elif outcome.changed:
        summary.orders_changed += 1
    else:
        summary.orders_unchanged += 1
    if not seen_before:
        summary.returns += invoice.is_return
    summary.customers_created += outcome.new_customer
    summary.products_created += outcome.new_products
    summary.fee_lines += sum(1 for line in invoice.lines if line.is_fee)
    summary.duplicates += len(outcome.duplicates)
    for number in outcome.duplicates:
        summary.listed(number, f"duplicate of an earlier line of invoice {invoice.number}")


@dataclass(frozen=True)
class ProductRow:
    sku: str
    name: str
    category: str | None
    price: Decimal | None


PRODUCT_COLUMNS = {
    "sku": ("sku", "StockCode", "SKU"),
    "name": ("name", "Description", "Name", "title"),
    "category": ("category", "Category"),
    "price": ("price", "Price", "unit_price"),
}


def product_columns(header: Iterable[str]) -> dict[str, str]:
    """Which header column holds each product field (sku and name are required)."""
    present = list(header)
    found = {
        field_name: next((c for c in aliases if c in present), "")
        for field_name, aliases in PRODUCT_COLUMNS.items()
    }
    missing = [f for f in ("sku", "name") if not found[f]]
    if missing:
        raise ValueError(
            f"missing column(s) for {', '.join(missing)} (found: {', '.join(present)})"
        )
    return {k: v for k, v in found.items() if v}


def parse_product(row: Mapping[str, str | None], cols: Mapping[str, str]) -> ProductRow:
    def text(field_name: str) -> str:
        column = cols.get(field_name)
        return ((row.get(column) if column else None) or "").strip()

    sku, name = text("sku"), " ".join(text("name").split())
    if not sku:
        raise ValueError("sku is empty")
    if not name:
        raise ValueError("name is empty")
    price_text = text("price")
    return ProductRow(
        sku, name, text("category") or None, _price(price_text) if price_text else None
    )
