"""Canned staff replies: short texts with variables, written by staff and admins.

They are written by people other than the developers, so they may hold nothing but text and
``{{ variable }}`` placeholders (checked on the parsed template: no loops, filters,
attribute access or arithmetic, so a reply cannot reach Python internals or make the bot
build a huge string), and they render in Jinja2's sandbox as a second fence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache

from jinja2 import StrictUndefined, TemplateError, nodes
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
    known = ", ".join(CANNED_VARIABLES)
    try:
        tree = _environment().parse(body)
        _only_placeholders(tree)
        return _environment().from_string(body).render(**values).strip()
    except TemplateError as exc:
        raise CannedError(f"{exc.message or exc} (variables: {known})") from None


_ALLOWED_NODES = (nodes.Template, nodes.Output, nodes.TemplateData)


def _only_placeholders(tree: nodes.Template) -> None:
    for node in tree.find_all(nodes.Node):
        if isinstance(node, nodes.Name) and node.name in CANNED_VARIABLES:
            continue
        if isinstance(node, nodes.Name):
            raise CannedError(f"unknown variable {node.name!r} (use {', '.join(CANNED_VARIABLES)})")
        if not isinstance(node, _ALLOWED_NODES):
            raise CannedError("only text and {{ variable }} placeholders are allowed")


def merged_canned(configured: Mapping[str, str], written: Mapping[str, str]) -> dict[str, str]:
    """Config replies are the defaults; ones staff wrote with /canned add take precedence."""
    return dict(sorted({**configured, **written}.items()))
