"""Country names as shops export them ("United Kingdom", "EIRE", "USA") to ISO 3166 codes.

Occasion dates differ by country, so every customer's country is read as a code. The names
come from the ``holidays`` package's registry (class names like ``UnitedKingdom``), plus the
spellings retail exports use that no registry knows.
"""

from __future__ import annotations

import re
from functools import cache

from holidays.registry import COUNTRIES

_ALIASES = {
    "eire": "IE",
    "usa": "US",
    "us": "US",
    "uk": "GB",
    "greatbritain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northernireland": "GB",
    "channelislands": "GB",
    "rsa": "ZA",
    "czechrepublic": "CZ",
    "korea": "KR",
    "southkorea": "KR",
    "hongkong": "HK",
    "westindies": "",
    "europeancommunity": "",
    "unspecified": "",
}


@cache
def _by_name() -> dict[str, str]:
    names = {cls.lower(): code for cls, code, *_ in COUNTRIES.values()}
    names.update({code.lower(): code for _, code, *_ in COUNTRIES.values()})
    names.update(_ALIASES)
    return names


@cache
def country_code(text: str | None) -> str | None:
    """The ISO code for a country name or code; None when unknown or deliberately vague."""
    if not text:
        return None
    key = re.sub(r"[^a-z]", "", text.lower())
    return _by_name().get(key) or None
