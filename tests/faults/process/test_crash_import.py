"""``carebot import orders`` killed with SIGKILL after some batches committed, then run
again: the import completes, and nothing is stored twice."""

from __future__ import annotations

import asyncio
import csv
import sqlite3
from pathlib import Path

from storage.imports import BATCH_INVOICES
from tests.faults.process.conftest import CrashSite, until

INVOICES = 6 * BATCH_INVOICES
LINES_PER_INVOICE = 8
CUSTOMERS = 400
PRODUCTS = 250
HEADER = ("Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID")


def write_orders(path: Path) -> None:
    """A retail export of INVOICES orders (numbers, customers and products the demo shop
    does not have), each with distinct products."""
    with path.open("w", newline="", encoding="utf-8") as out:
        rows = csv.writer(out)
        rows.writerow(HEADER)
        for n in range(INVOICES):
            day = f"2010-{1 + n % 12:02d}-{1 + n % 28:02d} 10:{n % 60:02d}:00"
            for line in range(LINES_PER_INVOICE):
                sku = (n * 7 + line) % PRODUCTS
                customer = 90_000 + n % CUSTOMERS
                price = f"{1 + sku % 9}.25"
                rows.writerow(
                    (900_000 + n, f"TEST{sku}", f"TEST GIFT {sku}", 1 + line, day, price, customer)
                )


def counts(database: Path) -> dict[str, int]:
    db = sqlite3.connect(database)
    try:
        return {
            table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("orders", "order_items", "customers", "products", "order_events")
        }
    finally:
        db.close()


def imported_orders(database: Path) -> int:
    db = sqlite3.connect(database)
    try:
        return int(db.execute("SELECT COUNT(*) FROM orders WHERE source = 'import'").fetchone()[0])
    finally:
        db.close()


async def test_an_import_killed_mid_way_completes_on_the_second_run_without_duplicates(
    site: CrashSite, tmp_path: Path
) -> None:
    orders = tmp_path / "big.csv"
    write_orders(orders)
    before = counts(site.database)
    already = imported_orders(site.database)  # the demo shop's own history
    command = site.bot.command("import", "orders", str(orders))

    first = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        await until(lambda: imported_orders(site.database) >= already + BATCH_INVOICES, 60)
    finally:
        first.kill()
        await first.wait()
    cut = imported_orders(site.database) - already
    assert BATCH_INVOICES <= cut < INVOICES  # killed in the middle...
    assert cut % BATCH_INVOICES == 0  # ...and a half-written batch left nothing behind

    second = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    out, _ = await second.communicate()
    assert second.returncode == 0
    # the killed run is reported; what it committed is found unchanged, the rest is new
    assert f"An import of {orders} started" in out.decode()
    assert "did not finish" in out.decode()
    assert f"orders     {INVOICES - cut:,} new, 0 changed, {cut:,} unchanged" in out.decode()

    after = counts(site.database)
    assert after["orders"] - before["orders"] == INVOICES
    assert after["order_items"] - before["order_items"] == INVOICES * LINES_PER_INVOICE
    assert after["order_events"] - before["order_events"] == INVOICES
    assert after["customers"] - before["customers"] == CUSTOMERS
    assert after["products"] - before["products"] == PRODUCTS
