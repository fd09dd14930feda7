"""Synthetic purchase history in the retail export shape, for scale tests and benchmarks.

Deterministic (seeded) and with the real data's mess in similar proportions: cancellations
(C invoices, negative quantities), lines without a customer id, postage lines, exact
duplicate lines and blank-padded descriptions.
"""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta
from pathlib import Path

from bot.importing import RETAIL_HEADER as HEADER

_WORDS = (
    "RETRO SPOT",
    "VINTAGE",
    "PINK",
    "RED",
    "HEART",
    "CHRISTMAS",
    "UNION JACK",
    "PAISLEY",
    "WOODLAND",
    "DOLLY GIRL",
    "SPACEBOY",
    "REGENCY",
    "ROSE",
    "FAIRY CAKE",
    "BIRD",
)
_THINGS = (
    "MUG",
    "LUNCH BAG",
    "CAKE STAND",
    "T-LIGHT HOLDER",
    "CARD",
    "WRAP",
    "DOORMAT",
    "NOTEBOOK",
    "LANTERN",
    "JUMBO BAG",
    "TEACUP",
    "CUSHION COVER",
    "BUNTING",
    "CLOCK",
)
_COUNTRIES = ("United Kingdom", "France", "Germany", "Netherlands", "Spain", "Belgium", "EIRE")


def write_history(path: Path, lines: int, *, customers: int | None = None, seed: int = 7) -> Path:
    """Write ``lines`` order lines (plus a header) to ``path``; about 20 lines per invoice."""
    rng = random.Random(seed)
    customers = customers or max(10, lines // 10)
    products = [
        (
            f"{20000 + n}",
            f"{rng.choice(_WORDS)} {rng.choice(_THINGS)}",
            round(rng.uniform(0.4, 15), 2),
        )
        for n in range(min(5000, max(50, lines // 200)))
    ]
    start = datetime(2021, 1, 1, 8, 0)
    written = 0
    invoice = 600000
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        while written < lines:
            invoice += 1
            cancel = rng.random() < 0.02
            number = f"C{invoice}" if cancel else str(invoice)
            customer = "" if rng.random() < 0.02 else str(10000 + rng.randrange(customers))
            country = _COUNTRIES[int(customer or 0) % len(_COUNTRIES)]
            when = (start + timedelta(minutes=invoice * 7 % 1_000_000)).strftime(
                "%Y-%m-%d %H:%M:%S"
            )
            size = min(lines - written, 1 if cancel else rng.randint(5, 35))
            for i in range(size):
                sku, name, price = rng.choice(products)
                qty = rng.choice((1, 2, 3, 4, 6, 12, 24))
                if i == size - 1 and not cancel and rng.random() < 0.3:
                    sku, name, price, qty = "POST", "POSTAGE", 18.0, 1
                padded = name + "  " if rng.random() < 0.05 else name
                row = [number, sku, padded, -qty if cancel else qty, when, price, customer, country]
                writer.writerow(row)
                written += 1
                if written < lines and rng.random() < 0.005:
                    writer.writerow(row)  # an exact duplicate line, as real exports have
                    written += 1
    return path
