"""Templates against hostile input.

* Admin campaign templates built from sandbox-escape and resource-hog pieces (attribute
  tricks, ``format``, huge ranges and repeats, macros and recursion, imports) mixed with
  good pieces: either refused with readable problems, or rendered into valid Telegram HTML
  within the limits, never leaking Python internals and never raising anything else.
* Customer and product names with markup: every message template of the bot, in every
  language, stays valid Telegram HTML and shows the name literally; so does a campaign
  template printing the name.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from bot.campaign_templates import SAMPLE_VARIABLES, TemplateRejected, compile_template
from bot.config import SUPPORTED_LANGUAGES
from bot.models import Customer, OrderItem
from bot.telegram_html import parse_html, utf16_length
from bot.texts import TELEGRAM_TEXT_LIMIT, T, Texts
from handlers.common import fit
from tests.property.strategies import any_text, hostile_name
from tests.unit.test_texts import ORDER, SAMPLE

PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

ESCAPES = (
    "{{ customer.__class__ }}",
    "{{ customer.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__base__ }}",
    "{{ customer.first_name.__class__ }}",
    "{{ range.__globals__ }}",
    "{{ self }}",
    "{{ lipsum.__globals__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ config }}",
    "{{ customer|attr('__class__') }}",
    "{{ customer['__class__'] }}",
    "{{ customer.first_name.format(customer) }}",
    "{{ '{0.__class__}'.format(customer) }}",
    "{{ customer.first_name.format_map({}) }}",
    "{{ '%s' % customer }}",
    "{{ '%*d' % (10**9, 1) }}",
    "{{ 'a' * 10**9 }}",
    "{{ customer.first_name * 100000000 }}",
    "{{ 9**9**9 }}",
    "{% for i in range(10**9) %}x{% endfor %}",
    "{% for i in range(1000000000) %}{{ i }}{% endfor %}",
    "{% for a in suggestions %}{% for b in suggestions %}{% for c in suggestions %}x"
    "{% endfor %}{% endfor %}{% endfor %}",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "{% macro m(n) %}{{ m(n) ~ m(n) }}{% endmacro %}",
    "{% for s in suggestions recursive %}{{ loop(suggestions) }}{% endfor %}",
    "{% include 'x.html' %}",
    "{% import 'os' as os %}",
    "{% extends 'base' %}",
    "{% set x %}{% for i in range(100) %}{{ x }}{% endfor %}{% endset %}",
    "{% filter upper %}{{ customer.name }}{% endfilter %}",
    "{% autoescape false %}{{ customer.name }}{% endautoescape %}",
    "{{ customer.name|safe }}",
    "{{ suggestions }}",
    "{{ suggestions|join(attribute='__class__') }}",
    "{{ loop.__class__ }}",
    "{% set s = customer.first_name %}{% for i in range(100) %}{% set s = s ~ s %}{% endfor %}"
    "{{ s }}",
    "{{ customer.mro }}",
    "{{ (customer.first_name|list).pop() }}",
    "{{ customer.first_name.__len__() }}",
    "{{ [].append(1) }}",
    "{{",
    "{% for %}",
    "<b>",
    "</i>",
    '<a href="javascript:alert(1)">x</a>',
)
GOOD = (
    "Hi {{ customer.first_name }}! ",
    "{{ occasion.label }} is on {{ occasion.date.strftime('%d %B') }}. ",
    "{% for s in suggestions %}• {{ s.name|title }} {{ s.price_text }}\n{% endfor %}",
    "<b>{{ shop.name }}</b> ",
    "{{ customer.name|upper }}",
)
templates = st.lists(
    st.sampled_from(ESCAPES) | st.sampled_from(GOOD) | any_text(max_size=30), min_size=1, max_size=5
).map("".join)
# What printing a Python object (rather than a value) would look like in a message.
INTERNALS = ("<class", "object at 0x", "function", "built-in", "__", "Undefined", "<module")


@PROPERTY_SETTINGS
@given(source=templates)
@example(source="{{ '{0.__class__}'.format(customer) }}")
@example(source="{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}")
@example(source="{% for i in range(10**9) %}x{% endfor %}")
def test_hostile_admin_templates_are_refused_or_bounded(source: str) -> None:
    message = render_or_problems(source, SAMPLE_VARIABLES)
    event("refused" if isinstance(message, list) else "rendered")
    if isinstance(message, list):
        assert message
        assert all(isinstance(p, str) and p.strip() for p in message)
        return
    parsed = parse_html(message)
    assert parsed.problem is None
    assert 0 < parsed.visible_length <= TELEGRAM_TEXT_LIMIT
    leaked = [word for word in INTERNALS if word in parsed.text and word not in source]
    assert not leaked, f"{source!r} printed {parsed.text!r}"


def render_or_problems(source: str, variables: dict[str, Any]) -> str | list[str]:
    """The message, or the problems it was refused for (at saving or at rendering)."""
    try:
        return compile_template(source, language="en").render(variables)
    except TemplateRejected as refused:
        return refused.problems


GREETING = "Hi {{ customer.first_name }}, <b>{{ shop.name }}</b>!"


@PROPERTY_SETTINGS
@given(name=hostile_name)
def test_a_markup_name_shows_literally_in_a_campaign_message(name: str) -> None:
    customer = {**SAMPLE_VARIABLES["customer"], "first_name": name}
    html = render_or_problems(GREETING, {**SAMPLE_VARIABLES, "customer": customer})
    assert isinstance(html, str), html
    parsed = parse_html(html)
    assert parsed.problem is None
    assert name.strip() in parsed.text


TEXTS = Texts("en")
HTML_KEYS = [key for key in T if key.value.endswith(".html")]
# A marker to find which templates print the customer's name and the product names.
MARKER = "Zq9Marker"


def hostile_sample(name: str, product: str) -> dict[str, Any]:
    order = dataclasses.replace(ORDER, items=(OrderItem("21844", product, 6, 2.95),))
    customer = dataclasses.replace(SAMPLE["customer"], first_name=name)
    assert isinstance(customer, Customer)
    return {
        **SAMPLE,
        "name": name,
        "question": product,
        "comment": product,
        "customer": customer,
        "order": order,
        "orders": [order],
        "items": list(order.items),
    }


def shows(key: T, lang: str, field: str) -> bool:
    """Whether the template prints ``field`` (a name, or a product name) at all."""
    values = hostile_sample(MARKER, "product") if field == "name" else hostile_sample("Ann", MARKER)
    return MARKER in parse_html(TEXTS.render(key, lang, **values)).text


PRINTS = {
    (key, lang, field): shows(key, lang, field)
    for key in HTML_KEYS
    for lang in SUPPORTED_LANGUAGES
    for field in ("name", "product")
}


@PROPERTY_SETTINGS
@given(name=hostile_name, product=hostile_name)
def test_markup_in_names_never_breaks_a_bot_message(name: str, product: str) -> None:
    values = hostile_sample(name, product)
    for key in HTML_KEYS:
        for lang in SUPPORTED_LANGUAGES:
            text, parse_mode = fit(TEXTS.render(key, lang, **values))
            visible = parse_html(text).text if parse_mode else text
            assert parse_mode is None or parse_html(text).problem is None, (key, lang)
            assert utf16_length(visible) <= TELEGRAM_TEXT_LIMIT
            for field, value in (("name", name), ("product", product)):
                if PRINTS[key, lang, field]:
                    assert " ".join(value.split()) in " ".join(visible.split()), (key, lang, field)
