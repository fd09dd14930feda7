"""Canned replies are text with {{ variable }} placeholders, nothing more."""

from __future__ import annotations

import pytest

from bot.canned import CannedError, check_canned, merged_canned, render_canned

VALUES = {
    "name": "Ann",
    "full_name": "Ann Peeters",
    "order": "536012",
    "ticket": "42",
    "shop": "Demo Gifts",
    "agent": "Maria",
}


def test_placeholders_are_filled_in() -> None:
    body = "Hi {{ name }}, order {{order}} (ticket #{{ ticket }}) - {{ agent }}, {{ shop }}"
    assert render_canned(body, VALUES) == "Hi Ann, order 536012 (ticket #42) - Maria, Demo Gifts"


@pytest.mark.parametrize(
    "body",
    [
        "{{ name * 200000000 }}",  # would build a 200 MB string on the event loop
        "{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}",
        "{{ name.__class__.__mro__ }}",
        "{{ name|upper }}",
        "{{ cycler.__init__.__globals__ }}",
        "{% set x = 1 %}",
    ],
)
def test_anything_but_placeholders_is_refused(body: str) -> None:
    with pytest.raises(CannedError, match="only text and"):
        render_canned(body, VALUES)


def test_unknown_variables_and_bad_names_are_explained() -> None:
    with pytest.raises(CannedError, match="unknown variable 'email'"):
        check_canned("thanks", "Hi {{ email }}")
    with pytest.raises(CannedError, match="lowercase name"):
        check_canned("Thanks!", "Hi")
    with pytest.raises(CannedError, match="unexpected end of template"):
        check_canned("thanks", "Hi {{ name ")


def test_staff_written_replies_win_over_config_ones() -> None:
    merged = merged_canned({"thanks": "config", "refund": "r"}, {"thanks": "staff"})
    assert merged == {"refund": "r", "thanks": "staff"}
