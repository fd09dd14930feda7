"""Product categories from keyword rules (shops' exports rarely carry a category)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Gift-ware defaults, tried in order: the first category with a keyword in the description
# wins ("CHRISTMAS MUG" is seasonal before kitchen). Keywords match whole words.
DEFAULT_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "seasonal",
        (
            "CHRISTMAS",
            "XMAS",
            "EASTER",
            "HALLOWEEN",
            "ADVENT",
            "VALENTINE",
            "SANTA",
            "REINDEER",
            "SNOWFLAKE",
            "BAUBLE",
        ),
    ),
    (
        "cards-and-wrap",
        (
            "CARD",
            "CARDS",
            "WRAP",
            "GIFT TAPE",
            "ENVELOPE",
            "ENVELOPES",
            "TISSUE",
            "TISSUES",
            "RIBBON",
            "RIBBONS",
            "PAPER",
        ),
    ),
    (
        "kitchen",
        (
            "MUG",
            "MUGS",
            "TEA",
            "CAKE",
            "CAKES",
            "LUNCH",
            "BOWL",
            "BOWLS",
            "PLATE",
            "PLATES",
            "CUP",
            "CUPS",
            "JAR",
            "JARS",
            "TIN",
            "TINS",
            "BAKING",
            "CUTLERY",
            "SPOON",
            "SPOONS",
            "APRON",
            "NAPKINS",
            "BOTTLE",
            "EGG",
            "TEAPOT",
            "COFFEE",
            "KITCHEN",
            "JUG",
            "GLASS",
            "TUMBLER",
            "SNACK",
            "CHOPSTICKS",
            "TRAY",
        ),
    ),
    (
        "home-decor",
        (
            "CANDLE",
            "CANDLES",
            "HOLDER",
            "LANTERN",
            "FRAME",
            "CLOCK",
            "CUSHION",
            "DOORMAT",
            "VASE",
            "LIGHT",
            "LIGHTS",
            "SIGN",
            "HEART",
            "HEARTS",
            "MIRROR",
            "HOOK",
            "HOOKS",
            "HANGER",
            "DECORATION",
            "HANGING",
            "GARLAND",
            "BUNTING",
            "WALL",
            "ORNAMENT",
            "T-LIGHT",
            "CHANDELIER",
            "MAGNETS",
            "HOME",
        ),
    ),
    (
        "storage",
        (
            "BOX",
            "BOXES",
            "DRAWER",
            "KNOB",
            "RACK",
            "BASKET",
            "STORAGE",
            "CABINET",
            "CRATE",
            "SHELF",
        ),
    ),
    ("bags", ("BAG", "BAGS", "JUMBO", "SHOPPER", "PURSE", "TOTE", "UMBRELLA")),
    (
        "stationery",
        (
            "PEN",
            "PENS",
            "PENCIL",
            "PENCILS",
            "NOTEBOOK",
            "STICKER",
            "STICKERS",
            "ERASER",
            "CALENDAR",
            "DIARY",
            "JOURNAL",
            "NOTE",
            "PAD",
        ),
    ),
    (
        "toys-and-games",
        (
            "TOY",
            "TOYS",
            "GAME",
            "GAMES",
            "DOMINOES",
            "PUZZLE",
            "DOLL",
            "DOLLY",
            "SPACEBOY",
            "PLAYHOUSE",
            "SKIPPING",
            "KIT",
            "PARTY",
            "BALLOON",
            "BALLOONS",
            "CRAYONS",
            "JIGSAW",
        ),
    ),
    ("garden", ("GARDEN", "PLANT", "WATERING", "BIRD", "FLOWER", "FLOWERS", "POT", "POTS")),
    ("jewellery", ("NECKLACE", "BRACELET", "EARRINGS", "RING", "BROOCH", "HAIR", "CLIP", "CLIPS")),
)
DEFAULT_CATEGORY = "other"

# Stock codes that are not products: postage, fees, manual adjustments, samples, tests.
FEE_CODES = frozenset(
    {
        "POST",
        "DOT",
        "C2",
        "M",
        "D",
        "S",
        "B",
        "CRUK",
        "PADS",
        "ADJUST",
        "ADJUST2",
        "BANK CHARGES",
        "AMAZONFEE",
        "TEST001",
        "TEST002",
    }
)
FEE_PREFIXES = ("GIFT_", "DCGS")


def is_fee_code(sku: str) -> bool:
    """Postage, fees and adjustments: kept on orders, never products."""
    code = sku.strip().upper()
    return code in FEE_CODES or code.startswith(FEE_PREFIXES)


@dataclass(frozen=True)
class CategoryRules:
    rules: tuple[tuple[str, re.Pattern[str]], ...]
    default: str = DEFAULT_CATEGORY

    @classmethod
    def from_keywords(
        cls, rules: tuple[tuple[str, tuple[str, ...]], ...], default: str = DEFAULT_CATEGORY
    ) -> CategoryRules:
        compiled = tuple(
            (name, re.compile(r"\b(?:" + "|".join(re.escape(k.upper()) for k in words) + r")\b"))
            for name, words in rules
            if words
        )
        return cls(compiled, default)

    @classmethod
    def defaults(cls) -> CategoryRules:
        return cls.from_keywords(DEFAULT_RULES)

    def categorise(self, description: str) -> str:
        text = description.upper()
        for name, pattern in self.rules:
            if pattern.search(text):
                return name
        return self.default


def parse_category_rules(table: Mapping[str, Any], default: str) -> CategoryRules:
    """``{kitchen = ["MUG", "TEA"], ...}`` in order; an empty table means the defaults."""
    if not table:
        return CategoryRules.from_keywords(DEFAULT_RULES, default)
    rules = []
    for name, words in table.items():
        if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
            raise ValueError(f'{name} must be a list of keywords, like ["MUG", "TEA"]')
        rules.append((name, tuple(w.strip() for w in words)))
    return CategoryRules.from_keywords(tuple(rules), default)
