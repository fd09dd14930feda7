"""Campaign templates: admins write them, customers read them, nobody escapes the sandbox."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest

from bot import campaign_templates
from bot.campaign_templates import (
    MAX_RENDER_CHARS,
    SAMPLE_VARIABLES,
    VARIABLE_FIELDS,
    VARIABLE_NAMES,
    TemplateProblem,
    TemplateRejected,
    TemplateSet,
    compile_template,
    validate,
)
from bot.telegram_html import check_html, check_message, visible_length

GOOD = """Hi {{ customer.first_name }}, {{ occasion.label }} is in {{ occasion.days_left }} days!
{% if last_occasion_purchase %}
Last year you chose {{ last_occasion_purchase.items|join(', ') }}.
{% endif %}
{% for s in suggestions %}
• {% if s.url %}<a href="{{ s.url }}">{{ s.name }}</a>{% else %}{{ s.name }}{% endif %} \
<b>{{ s.price_text }}</b>
{% endfor %}
<i>{{ shop.name }}</i>"""


def variables(**customer: Any) -> dict[str, Any]:
    values = copy.deepcopy(SAMPLE_VARIABLES)
    values["customer"].update(customer)
    return values


def problems_of(source: str) -> list[str]:
    with pytest.raises(TemplateRejected) as caught:
        compile_template(source)
    return caught.value.problems


# --- rendering --------------------------------------------------------------------------


def test_a_good_template_renders_with_the_customers_markup_escaped() -> None:
    message = compile_template(GOOD).render(variables(first_name="<b>Ann</b> & co"))

    assert message == (
        "Hi &lt;b&gt;Ann&lt;/b&gt; &amp; co, Mother&#39;s Day is in 14 days!\n"
        "Last year you chose Spring tulips, Greeting card.\n"
        '• <a href="https://bloom.example/p/roses">Rose bouquet</a> <b>£29.50</b>\n'
        '• <a href="https://bloom.example/p/candle">Lavender candle</a> <b>£12.50</b>\n'
        "• Chocolate box <b>£9.00</b>\n"
        "<i>Bloom &amp; Co</i>"
    )
    assert check_html(message) is None


def test_text_filters_give_the_same_escaped_text_for_every_recipient() -> None:
    # The filters remember results for repeated names: plain text and escaped text (Markup)
    # that read the same must never share one (the plain one is escaped once more).
    template = compile_template("{{ customer.first_name|trim }} {{ customer.last_name|e|trim }}")
    names = {"first_name": "&lt;i&gt;", "last_name": "<i>"}
    expected = "&amp;lt;i&amp;gt; &lt;i&gt;"

    first = template.render(variables(**names))
    second = template.render(variables(**names))
    other = template.render(variables(first_name="Bob", last_name="Ray"))

    assert (first, second, other) == (expected, expected, "Bob Ray")


def test_a_markup_name_in_a_link_cannot_break_out_of_the_attribute() -> None:
    values = variables()
    values["suggestions"][0]["url"] = 'https://x.example/"><script>'

    message = compile_template(GOOD).render(values)

    assert 'href="https://x.example/&#34;&gt;&lt;script&gt;"' in message


def test_every_documented_variable_is_in_the_sample_and_renders() -> None:
    used = " ".join(
        f"{{{{ {name}.{field} }}}}"
        for name, fields in VARIABLE_FIELDS.items()
        if name != "suggestions"
        for field in fields
        if field != "items"
    )
    item_fields = " ".join(f"{{{{ s.{field} }}}}" for field in VARIABLE_FIELDS["suggestions"])
    source = used + " {% for s in suggestions %}" + item_fields + "{% endfor %}"

    message = compile_template(source).render(SAMPLE_VARIABLES)

    assert set(VARIABLE_NAMES) == set(SAMPLE_VARIABLES) == set(VARIABLE_FIELDS)
    assert "Lavender candle" in message
    assert "2025-03-30" in message


def test_dates_money_and_none_read_naturally() -> None:
    source = (
        "{{ occasion.date.strftime('%d %B') }} / {{ occasion.date.year }} / "
        "{{ last_occasion_purchase.total|money(shop.currency) }} / [{{ customer.last_purchase }}]"
    )

    message = compile_template(source).render(variables(last_purchase=None))

    assert message == "30 March / 2025 / £38.50 / []"


def test_dataclass_variables_show_public_fields_only() -> None:
    @dataclass
    class Customer:
        first_name: str
        _token: str = "secret"

    template = compile_template("{% for c in [customer] %}{{ c.first_name }}{% endfor %}")
    assert template.render({**SAMPLE_VARIABLES, "customer": Customer("Bo")}) == "Bo"

    # The loop hides what c is from the save-time check; rendering still refuses the rest.
    sneaky = compile_template("{% for c in [customer] %}{{ c.keys }}{% endfor %}")
    with pytest.raises(TemplateRejected, match="no 'keys'"):
        sneaky.render(SAMPLE_VARIABLES)


def test_the_customers_language_is_used_with_fallback_to_the_default() -> None:
    templates = TemplateSet.compile(
        {"en": "Hello {{ customer.first_name }}", "zh": "你好 {{ customer.first_name }}"},
        default_language="en",
    )

    assert templates.render("zh", SAMPLE_VARIABLES) == "你好 Ann"
    assert templates.render("zh-hans", SAMPLE_VARIABLES) == "你好 Ann"
    assert templates.render("fr", SAMPLE_VARIABLES) == "Hello Ann"
    assert templates.render(None, SAMPLE_VARIABLES) == "Hello Ann"


def test_a_template_set_needs_the_default_language_and_names_bad_variants() -> None:
    with pytest.raises(TemplateRejected, match="no template for the default language 'en'"):
        TemplateSet.compile({"zh": "你好", "en": "  "}, default_language="en")

    with pytest.raises(TemplateRejected) as caught:
        TemplateSet.compile({"en": "Hi", "zh": "{{ customer.nam }}"}, default_language="en")
    assert caught.value.problems == [
        "zh: line 1: customer has no 'nam' (it has: first_name, last_name, name, language, "
        "country, segment, key_customer, orders, last_purchase)"
    ]


def test_a_missing_variable_or_field_is_named() -> None:
    template = compile_template("Hi\n{{ shop.name }} {{ customer.first_name }}")

    without_shop = {k: v for k, v in SAMPLE_VARIABLES.items() if k != "shop"}
    with pytest.raises(TemplateRejected, match=r"^line 2: 'shop' is undefined$"):
        template.render(without_shop)

    no_first_name = variables()
    del no_first_name["customer"]["first_name"]
    with pytest.raises(TemplateRejected, match="line 2: there is no 'first_name'"):
        template.render(no_first_name)


def test_a_missing_field_used_as_text_is_named_too() -> None:
    template = compile_template("{{ occasion.label.upper() }} {{ occasion.label|lower }}")
    values = variables()
    del values["occasion"]["label"]

    with pytest.raises(TemplateRejected, match="there is no 'label' here"):
        template.render(values)


def test_reading_a_field_of_nothing_says_to_check_first() -> None:
    template = compile_template("{{ last_occasion_purchase.year }}")

    with pytest.raises(TemplateRejected, match=r"of nothing \(None\); check with \{% if"):
        template.render({**SAMPLE_VARIABLES, "last_occasion_purchase": None})


def test_a_message_over_telegrams_limit_names_its_length() -> None:
    source = (
        "{% for i in range(100) %}{{ shop.name }} loves {{ customer.first_name }}! 😀\n{% endfor %}"
    )

    with pytest.raises(TemplateRejected) as caught:
        compile_template(source).render(variables(first_name="Ann" * 10))

    # 100 lines of "Bloom & Co loves AnnAnn…Ann! " (49), the emoji (2 UTF-16 units) and a
    # newline, less the final newline.
    assert caught.value.problems == [
        "the message is 5,199 characters long; Telegram allows 4,096 "
        "(counted after HTML, the way Telegram counts)"
    ]


def test_length_is_counted_after_html_the_way_telegram_counts() -> None:
    entities = "<b>&amp;</b>" * 700  # 8,400 characters of HTML, 700 visible
    emoji = "😀" * 2100  # 2,100 characters, 4,200 UTF-16 code units
    fits = compile_template(entities)
    too_long = compile_template(emoji)

    assert fits.render(SAMPLE_VARIABLES) == entities
    with pytest.raises(TemplateRejected, match="4,200 characters long; Telegram allows 4,096"):
        too_long.render(SAMPLE_VARIABLES)


def test_rendering_stops_once_the_output_passes_the_cap() -> None:
    source = "{% for i in range(100) %}{% for j in range(100) %}-----{% endfor %}{% endfor %}"

    with pytest.raises(TemplateRejected, match=f"grew past {MAX_RENDER_CHARS:,} characters"):
        compile_template(source).render(SAMPLE_VARIABLES)


def test_rendering_stops_when_out_of_time(monkeypatch: pytest.MonkeyPatch) -> None:
    template = compile_template("{% for s in suggestions %}{{ s.name }}{% endfor %}")
    monkeypatch.setattr(campaign_templates, "MAX_RENDER_SECONDS", -1)

    with pytest.raises(TemplateRejected, match="rendering took longer than -1 s"):
        template.render(SAMPLE_VARIABLES)


def test_repeating_text_from_data_is_capped_without_building_it() -> None:
    template = compile_template("{{ customer.name * customer.orders }}")

    with pytest.raises(TemplateRejected, match="7,000,000,000 characters is too long"):
        template.render(variables(orders=10**9))


def test_growing_text_step_by_step_is_capped_too() -> None:
    doubling = "{% set a = customer.name * 2000 %}{% set b = a ~ a ~ a %}{% set c = b + b %}x"

    with pytest.raises(TemplateRejected, match="too long"):
        compile_template(doubling).render(SAMPLE_VARIABLES)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("<script>{{ customer.name }}</script>", "unsupported tag <script>"),
        ("<b>{{ customer.name }}", "<b> is never closed"),
        ("<b>{{ customer.name }}</i>", "</i> found where </b> was expected"),
        ("1 < 2", "write it as &lt;"),
        ("{{ customer.name }}&nbsp;", "unsupported entity &nbsp;"),
    ],
)
def test_invalid_telegram_html_is_refused(source: str, problem: str) -> None:
    with pytest.raises(TemplateRejected, match="not valid Telegram HTML") as caught:
        compile_template(source).render(SAMPLE_VARIABLES)
    assert problem in str(caught.value)


def test_an_empty_message_is_refused() -> None:
    template = compile_template("{% if customer.orders > 100 %}Thanks, big spender!{% endif %}")

    with pytest.raises(TemplateRejected, match="the message is empty"):
        template.render(SAMPLE_VARIABLES)


# --- refused when saved -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("{{ ''.__class__.__mro__ }}", "'__class__' is not allowed"),
        ("{{ x|attr('__class__') }}", "the attr filter is not allowed"),
        ("{{ customer.name|attr(customer.name) }}", "the attr filter is not allowed"),
        ("{{ '{0.__class__}'.format(customer) }}", "str.format is not allowed"),
        ("{{ customer.name|format(customer) }}", "the format filter is not allowed"),
        ("{{ customer.__init__.__globals__ }}", "'__init__' is not allowed"),
        ("{{ cycler.__init__.__globals__.os }}", "unknown variable 'cycler'"),
        ("{{ lipsum.__globals__ }}", "'__globals__' is not allowed"),
        ("{{ self._TemplateReference__context }}", "'_TemplateReference__context' is not"),
        ("{{ namespace.__init__ }}", "unknown variable 'namespace'"),
        ("{{ customer['__class__'] }}", "'__class__' is not allowed"),
        ("{{ customer.name.mro }}", "'mro' is not allowed"),
        ("{{ suggestions|map(attribute='__class__')|join }}", "is not allowed"),
        ("{% include 'x' %}", "{% include %} is not allowed"),
        ("{% import 'x' as x %}", "{% import %} is not allowed"),
        ("{% extends 'x' %}", "{% extends %} is not allowed"),
        ("{% macro m() %}x{% endmacro %}", "{% macro %} is not allowed"),
        ("{% set x %}{{ customer.name }}{% endset %}", "{% set x %}...{% endset %}"),
        ("{% autoescape false %}{{ customer.name }}{% endautoescape %}", "{% autoescape %}"),
        ("{{ customer.name|safe }}", "would let customer data inject HTML"),
        ("{{ 'a' * 100000000 }}", "100,000,000 characters"),
        ("{{ 9 ** 999999 }}", "the ** operator is not allowed"),
        ("{% for i in range(10**9) %}x{% endfor %}", "the ** operator is not allowed"),
        ("{% for i in range(1000) %}x{% endfor %}", "at most 100 numbers"),
        ("{% for i in range(customer.orders) %}x{% endfor %}", "literal whole numbers"),
        ("{% for c in customer.name %}x{% endfor %}", "a loop may only go over a list"),
        ("{{ '%s' % customer.name }}", "formatting text with % is not allowed"),
        ("{{ customer.name.replace('a', 'b') }}", "text has no 'replace'"),
        ("{{ customer.name|center(1000000) }}", "unknown filter 'center'"),
        ("{{ customer.name is callable }}", "unknown test 'callable'"),
        ("{{ suggestions }}", "prints a whole list"),
        ("{{ dict(a=1) }}", "unknown variable 'dict'"),
    ],
)
def test_sandbox_escapes_and_resource_hogs_are_refused_when_saved(
    source: str, problem: str
) -> None:
    problems = problems_of(source)

    assert any(problem in p for p in problems), problems
    assert all(p.startswith("line 1: ") for p in problems)


def test_escapes_are_refused_even_in_a_branch_no_sample_takes() -> None:
    source = "Hi {{ customer.first_name }}\n{% if customer.orders < 0 %}\n{{ lipsum.__globals__ }}"
    source += "{% endif %}"

    assert problems_of(source) == [
        "line 3: unknown variable 'lipsum' (known variables: customer, occasion, "
        "last_occasion_purchase, suggestions, shop)",
        "line 3: '__globals__' is not allowed (it reaches Python internals)",
    ]


def test_loops_nest_at_most_two_deep() -> None:
    two = "{% for s in suggestions %}{% for i in range(2) %}{{ s.name }}{% endfor %}{% endfor %}"
    three = (
        "{% for s in suggestions %}{% for i in range(2) %}\n"
        "{% for j in range(2) %}x{% endfor %}{% endfor %}{% endfor %}"
    )

    assert compile_template(two).render(SAMPLE_VARIABLES).startswith("Rose bouquetRose bouquet")
    assert problems_of(three) == ["line 2: loops may be nested at most 2 deep"]


def test_unknown_filters_and_fields_list_what_is_available() -> None:
    [unknown_filter] = problems_of("{{ customer.name|shout }}")
    [unknown_field] = problems_of("{% for s in suggestions %}{{ s.title }}{% endfor %}")

    assert "unknown filter 'shout' (allowed: upper, lower, title," in unknown_filter
    assert unknown_field == (
        "line 1: suggestion has no 'title' (it has: name, price, price_text, category, url)"
    )


def test_modulo_stays_for_numbers() -> None:
    source = "{% for s in suggestions %}{{ loop.index % 2 }}{% endfor %}"

    assert compile_template(source).render(SAMPLE_VARIABLES) == "101"


def test_text_formatting_with_percent_is_refused_when_rendering_too() -> None:
    template = compile_template("{% set pattern = customer.name %}{{ pattern % 3 }}")

    with pytest.raises(TemplateRejected, match="formatting text with % is not allowed"):
        template.render(variables(name="%999999999d"))


def test_a_syntax_error_names_its_line() -> None:
    assert problems_of("Hi\n{{ customer.name }") == ["line 2: unexpected '}'"]


# --- validation against real customers ----------------------------------------------------


def test_validate_renders_every_language_for_every_sample() -> None:
    sources = {
        "en": "Hi {{ customer.first_name }}, last year: {{ last_occasion_purchase.year }}",
        "zh": "你好 {{ customer.first_name }}",
    }
    regular = variables(name="Ann Lee")
    new_customer = {**variables(name="Bo Chen"), "last_occasion_purchase": None}
    long_name = variables(name="Cy Long", first_name="Cy" * 2100)

    problems = validate(sources, [regular, new_customer, long_name], default_language="en")

    assert problems == [
        TemplateProblem(
            "en",
            "sample 2 (Bo Chen)",
            "line 1: cannot read 'year' of nothing (None); check with {% if ... %} first",
        ),
        TemplateProblem(
            "en",
            "sample 3 (Cy Long)",
            "the message is 4,220 characters long; Telegram allows 4,096 "
            "(counted after HTML, the way Telegram counts)",
        ),
        TemplateProblem(
            "zh",
            "sample 3 (Cy Long)",
            "the message is 4,203 characters long; Telegram allows 4,096 "
            "(counted after HTML, the way Telegram counts)",
        ),
    ]
    assert str(problems[0]).startswith("en, sample 2 (Bo Chen): line 1:")


def test_validate_reports_save_time_problems_and_a_missing_default() -> None:
    problems = validate({"zh": "{{ customer.__class__ }}"}, [], default_language="en")

    assert problems == [
        TemplateProblem("en", None, "there is no template for the default language 'en'"),
        TemplateProblem(
            "zh", None, "line 1: '__class__' is not allowed (it reaches Python internals)"
        ),
    ]


def test_validate_without_samples_uses_the_sample_variables() -> None:
    assert validate({"en": GOOD}, [], default_language="en") == []


# --- Telegram HTML ------------------------------------------------------------------------


def test_visible_length_counts_text_after_tags_and_entities_in_utf16() -> None:
    assert visible_length('<a href="https://x.example/?a=1&amp;b=2">link</a>') == 4
    assert visible_length("<b>&lt;3</b> &#128512; 😀") == 2 + 1 + 2 + 1 + 2
    assert visible_length("AT&T &#34;x&#34;") == 4 + 1 + 3


@pytest.mark.parametrize(
    ("html", "problem"),
    [
        ("<b>bold <i>both</i></b> <tg-spoiler>s</tg-spoiler>", None),
        ('<span class="tg-spoiler">s</span> <blockquote expandable>q</blockquote>', None),
        ('<pre><code class="language-python">x = 1</code></pre>', None),
        ("<br>", "unsupported tag <br>"),
        ("<span>s</span>", '<span> must be <span class="tg-spoiler">'),
        ('<a href="x" target="_blank">l</a>', "<a> does not take the attribute 'target'"),
        ("<B>x</B>", "</B> found where </b> was expected"),
        ("</b>", "</b> closes nothing"),
        ("&#xD800;", "entity &#xD800; is half of a surrogate pair, not a character"),
    ],
)
def test_check_html_follows_telegram(html: str, problem: str | None) -> None:
    assert check_html(html) == problem


def test_check_message_adds_emptiness_and_length() -> None:
    assert check_message("<b> </b>") == "the message is empty"
    assert (
        check_message("x" * 4097) == "the message is 4,097 characters long; Telegram allows 4,096"
    )
    assert check_message("x" * 4096) is None
