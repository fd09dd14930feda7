"""Canned staff replies: short texts with variables, written by staff and admins.

They are templates written by people other than the developers, so they run in Jinja2's
sandbox (no attribute tricks reach Python internals) and only see the variables below.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

CANNED_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_CANNED_LENGTH = 3000
# What a canned reply may use, e.g. "Hello {{ name }}, your order {{ order }}..."
CANNED_VARIABLES = ("name", "full_name", "order", "ticket", "shop", "agent")


class CannedError(ValueError):
    """A canned reply that cannot be used, with a reason staff can act on."""


@cache
def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def check_canned(name: str, body: str) -> None:
    """Raise CannedError if the name or the text would not work when used."""
    if not CANNED_NAME.match(name):
        raise CannedError(f"{name!r}: use a lowercase name like thanks or refund_sent")
    if not body.strip():
        raise CannedError("the text is empty")
    if len(body) > MAX_CANNED_LENGTH:
        raise CannedError(f"the text is longer than {MAX_CANNED_LENGTH} characters")
    render_canned(body, dict.fromkeys(CANNED_VARIABLES, "x"))


def render_canned(body: str, values: Mapping[str, str]) -> str:
    try:
        return _environment().from_string(body).render(**values).strip()
    except TemplateError as exc:
        known = ", ".join(CANNED_VARIABLES)
        raise CannedError(f"{exc.message or exc} (variables: {known})") from None


def merged_canned(configured: Mapping[str, str], written: Mapping[str, str]) -> dict[str, str]:
    """Config replies are the defaults; ones staff wrote with /canned add take precedence."""
    return dict(sorted({**configured, **written}.items()))
