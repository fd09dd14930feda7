"""Reminder-campaign messages written by shop admins: Jinja2 templates, checked and sandboxed.

An admin writes one template per language (``en``, ``zh``, ...); a customer gets the variant
for their language (``zh-hans`` tries ``zh-hans``, then ``zh``), else the shop's default
language. A blank variant counts as absent. The output is sent with parse mode HTML: admins
may write Telegram's HTML subset literally (``<b>``, ``<a href="...">``; see
``bot.telegram_html``), while every variable is HTML-escaped, so a customer called
``<b>Ann</b> & co`` shows exactly that and cannot break the message. ``None`` prints as
nothing. Blocks do not leave blank lines (``trim_blocks``/``lstrip_blocks``). An inline
``if`` needs an ``else`` (``{{ 'VIP ' if customer.key_customer else '' }}``): without one,
``StrictUndefined`` makes it an error when false.

Variables (the caller builds them; any of them may be a dict or a dataclass instance, and
only keys, resp. public dataclass fields, can be read)::

    customer                first_name: str, last_name: str, name: str, language: str,
                            country: str, segment: str, key_customer: bool, orders: int,
                            last_purchase: date | None
    occasion                name: str, label: str, date: date, days_left: int, year: int
    last_occasion_purchase  None, or date: date, year: int,
                            items: list[str] (product names), total: float (amount spent)
    suggestions             list of name: str, price: float, price_text: str ("£12.50"),
                            category: str, url: str (may be "")
    shop                    name: str, url: str, currency: str

Example: ``Hi {{ customer.first_name }}, {{ occasion.label }} is in {{ occasion.days_left }}
days.{% for s in suggestions %}\\n• {{ s.name }} {{ s.price_text }}{% endfor %}``.
``SAMPLE_VARIABLES`` is a complete fake set.

What a template may use (checked on the parsed template when it is saved, in every branch,
whether or not a sample reaches it; each problem names its line). A template is at most
``MAX_SOURCE_CHARS`` characters.

* Names: the variables above, names bound by ``{% for %}``, ``{% set x = ... %}`` and
  ``{% with %}``, ``loop`` inside a loop, and ``range``. Fields are checked against the list
  above (``customer.nam`` is refused and the known fields are listed).
* Statements: ``if``/``elif``/``else``, ``for`` (nested at most 2 deep, not ``recursive``;
  over a list variable, ``range(...)`` or a literal list of at most 100 items), ``set x =``,
  ``with``, ``raw``. Not ``include``/``import``/``extends``/``block``/``macro``/``call``
  (no reuse or recursion), not ``{% set x %}...{% endset %}``/``{% filter %}`` (they buffer
  output unboundedly), not ``{% autoescape %}`` (it would let data inject markup).
* Filters: ``FILTERS`` (``map`` only as ``map(attribute='field')``; ``join`` without
  ``attribute``; ``money`` formats an amount as elsewhere in the bot:
  ``{{ last_occasion_purchase.total|money(shop.currency) }}`` is "£38.50"). Not ``safe``,
  ``attr`` or ``format`` (ways around the escaping or the sandbox). Tests: ``TESTS``.
* Calls: ``range(...)`` with constant whole numbers, at most ``MAX_RANGE`` of them; the text
  methods in ``METHODS`` (``strftime`` on dates, with a constant format of at most 64
  characters). Nothing else is callable, no ``*args``/``**kwargs``.
* Attributes and items: never a name starting with ``_`` nor ``mro``, ``format``,
  ``format_map``, ``func_globals``, ``f_globals``, ``gi_frame``, ``cr_frame``... (the ways
  out of a sandbox); dates offer ``year``, ``month``, ``day``; ``loop`` the usual fields.
* Operators: no ``**``; no ``%`` with text on the left (refused here when the text is a
  literal, while rendering otherwise): printf formatting can ask for a billion-character
  field width, ``'%*d' % (10**9, 1)``, and ``%r`` prints internals; ``%`` stays for numbers,
  ``loop.index % 2``. ``'text' * n`` only if the result stays within ``MAX_VALUE_CHARS``.
* Printing a whole record or list (``{{ suggestions }}``) is refused: print a field, loop,
  or ``|join``.

When rendering, Jinja2's immutable sandbox stays in force with stricter rules that repeat
the ones above (attribute lookups, callables and filters are allow-listed again, so data
that reaches a path the static check could not see is still safe), and ``StrictUndefined``
makes a missing variable or field an error naming it. No single value may grow past
``MAX_VALUE_CHARS`` (``*``, ``+``, ``~`` and ``join`` check the size before building it; ``*``
does not repeat lists; whole numbers may not pass ``MAX_NUMBER_BITS`` bits by ``*``), and
output is streamed and abandoned once it passes ``MAX_RENDER_CHARS``. Each step is thus
cheap, but a template could take very many (``{% if s|upper %}`` 300 times in two loops of
100, on a 20,000-character ``s``, takes about 40 s), so rendering also stops after
``MAX_RENDER_SECONDS`` (a normal message takes some 30 µs): the hooks and every loop
iteration look at the clock. The finished message
must be valid Telegram HTML, non-blank, and at most 4096 characters as Telegram counts them
(``bot.telegram_html``).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from types import BuiltinMethodType, MethodType, TracebackType
from typing import Any, Final, cast

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.runtime import Context, LoopContext, Undefined, markup_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.tests import TESTS as JINJA_TESTS
from jinja2.visitor import NodeTransformer
from markupsafe import Markup, escape, soft_str

from bot.telegram_html import MESSAGE_LIMIT, parse_html
from bot.texts import money

MAX_SOURCE_CHARS: Final = 10_000
MAX_VALUE_CHARS: Final = 20_000
MAX_RENDER_CHARS: Final = 20_000
MAX_RANGE: Final = 100
MAX_LOOP_DEPTH: Final = 2
MAX_LIST_ITEMS: Final = 1_000
MAX_NUMBER_BITS: Final = 128
MAX_RENDER_SECONDS: Final = 1.0
_MAX_DATE_FORMAT: Final = 64
_RENDER_BATCH: Final = 64

VARIABLE_NAMES: Final = ("customer", "occasion", "last_occasion_purchase", "suggestions", "shop")
# Text methods a template may call; all return new text no longer than a fixed multiple.
METHODS: Final = (
    "upper",
    "lower",
    "title",
    "capitalize",
    "strip",
    "lstrip",
    "rstrip",
    "startswith",
    "endswith",
    "strftime",
)
_TEXT_METHODS: Final = frozenset(METHODS) - {"strftime"}
FILTERS: Final = (
    "upper",
    "lower",
    "title",
    "capitalize",
    "trim",
    "truncate",
    "striptags",
    "wordcount",
    "urlencode",
    "escape",
    "e",
    "default",
    "d",
    "length",
    "count",
    "first",
    "last",
    "reverse",
    "round",
    "int",
    "float",
    "abs",
    "map",
    "join",
    "money",
)
TESTS: Final = (
    "defined",
    "undefined",
    "none",
    "number",
    "string",
    "odd",
    "even",
    "divisibleby",
    "in",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
)
_DATE_ATTRIBUTES: Final = frozenset({"year", "month", "day", "strftime"})
_LOOP_ATTRIBUTES: Final = frozenset(
    {"index", "index0", "revindex", "revindex0", "first", "last", "length"}
    | {"previtem", "nextitem", "depth", "depth0"}
)
_TEXT_FILTERS: Final = frozenset(
    {"upper", "lower", "title", "capitalize", "trim", "truncate", "striptags"}
    | {"wordcount", "urlencode", "escape", "e"}
)
# Attribute names used to climb out of a sandbox (besides everything starting with "_").
_FORBIDDEN_ATTRIBUTES: Final = frozenset(
    {"mro", "format", "format_map", "func_globals", "func_code", "f_globals", "f_locals"}
    | {"f_back", "f_builtins", "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame"}
    | {"tb_frame", "tb_next", "co_code"}
)
_WHY_REFUSED: Final = {
    "attr": "the attr filter is not allowed (it reaches Python attributes); write x.field",
    "format": "the format filter is not allowed (str.format reaches Python internals); use ~",
    "safe": "the safe filter is not allowed: it would let customer data inject HTML",
}


# --- variables --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scalar:
    kind: str  # "text", "number", "yes/no", "date"


@dataclass(frozen=True)
class _Record:
    label: str
    fields: Mapping[str, _Shape]


@dataclass(frozen=True)
class _ListOf:
    item: _Shape | None


@dataclass(frozen=True)
class _Loop:
    pass


_Shape = _Scalar | _Record | _ListOf | _Loop
_TEXT, _NUMBER, _YES_NO, _DATE = (
    _Scalar("text"),
    _Scalar("number"),
    _Scalar("yes/no"),
    _Scalar("date"),
)

_SCHEMA: Final[Mapping[str, _Record]] = {
    "customer": _Record(
        "customer",
        {
            "first_name": _TEXT,
            "last_name": _TEXT,
            "name": _TEXT,
            "language": _TEXT,
            "country": _TEXT,
            "segment": _TEXT,
            "key_customer": _YES_NO,
            "orders": _NUMBER,
            "last_purchase": _DATE,
        },
    ),
    "occasion": _Record(
        "occasion",
        {"name": _TEXT, "label": _TEXT, "date": _DATE, "days_left": _NUMBER, "year": _NUMBER},
    ),
    "last_occasion_purchase": _Record(
        "last_occasion_purchase",
        {"date": _DATE, "year": _NUMBER, "items": _ListOf(_TEXT), "total": _NUMBER},
    ),
    "suggestions": _Record(
        "suggestion",
        {
            "name": _TEXT,
            "price": _NUMBER,
            "price_text": _TEXT,
            "category": _TEXT,
            "url": _TEXT,
        },
    ),
    "shop": _Record("shop", {"name": _TEXT, "url": _TEXT, "currency": _TEXT}),
}
_TOP_LEVEL: Final[Mapping[str, _Shape]] = {
    **_SCHEMA,
    "suggestions": _ListOf(_SCHEMA["suggestions"]),
}
VARIABLE_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    name: tuple(record.fields) for name, record in _SCHEMA.items()
}

SAMPLE_VARIABLES: Final[dict[str, Any]] = {
    "customer": {
        "first_name": "Ann",
        "last_name": "Lee",
        "name": "Ann Lee",
        "language": "en",
        "country": "GB",
        "segment": "regular",
        "key_customer": True,
        "orders": 7,
        "last_purchase": date(2025, 2, 14),
    },
    "occasion": {
        "name": "mothers_day",
        "label": "Mother's Day",
        "date": date(2025, 3, 30),
        "days_left": 14,
        "year": 2025,
    },
    "last_occasion_purchase": {
        "date": date(2024, 3, 7),
        "year": 2024,
        "items": ["Spring tulips", "Greeting card"],
        "total": 38.5,
    },
    "suggestions": [
        {
            "name": "Rose bouquet",
            "price": 29.5,
            "price_text": "£29.50",
            "category": "flowers",
            "url": "https://bloom.example/p/roses",
        },
        {
            "name": "Lavender candle",
            "price": 12.5,
            "price_text": "£12.50",
            "category": "gifts",
            "url": "https://bloom.example/p/candle",
        },
        {
            "name": "Chocolate box",
            "price": 9.0,
            "price_text": "£9.00",
            "category": "sweets",
            "url": "",
        },
    ],
    "shop": {"name": "Bloom & Co", "url": "https://bloom.example", "currency": "GBP"},
}


# --- public API ---------------------------------------------------------------------------


class TemplateRejected(ValueError):
    """A template that cannot be used; ``problems`` holds one readable sentence each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class TemplateProblem:
    """One problem found by ``validate``; ``sample`` is None for problems of the template."""

    language: str
    sample: str | None
    message: str

    def __str__(self) -> str:
        where = self.language if self.sample is None else f"{self.language}, {self.sample}"
        return f"{where}: {self.message}"


class CompiledTemplate:
    """A checked template; render it as often as needed."""

    def __init__(self, template: Template, language: str) -> None:
        self._template = template
        self.language = language

    def render(self, variables: Mapping[str, Any]) -> str:
        """The message for these variables; raises TemplateRejected if it cannot be sent."""
        pieces: list[str] = []
        size = 0
        deadline = time.monotonic() + MAX_RENDER_SECONDS
        budget = _DEADLINE.set(deadline)
        stream = cast(Generator[str, None, None], self._template.generate(variables))
        try:
            # Read in batches (a message is some 30 pieces; looking at each one in Python
            # cost a tenth of the rendering): no piece is over MAX_VALUE_CHARS, so a batch
            # overshoots the size limit by a bounded amount before it is refused, and every
            # loop iteration yields "" so a long loop still meets the clock.
            while batch := list(itertools.islice(stream, _RENDER_BATCH)):
                size += sum(map(len, batch))
                if size > MAX_RENDER_CHARS:
                    raise _grew_too_long()
                pieces += batch
                if time.monotonic() > deadline:
                    raise _too_slow()
        except TemplateRejected:
            raise
        except Exception as exc:  # anything a template does wrong is the template's problem
            raise TemplateRejected([_runtime_problem(exc)]) from None
        finally:
            stream.close()
            _DEADLINE.reset(budget)
        html = "".join(pieces).strip()
        parsed = parse_html(html)
        if parsed.problem is not None:
            raise TemplateRejected([f"the message is not valid Telegram HTML: {parsed.problem}"])
        if not parsed.text.strip():
            raise TemplateRejected(["the message is empty"])
        length = parsed.visible_length
        if length > MESSAGE_LIMIT:
            raise TemplateRejected(
                [
                    f"the message is {length:,} characters long; Telegram allows "
                    f"{MESSAGE_LIMIT:,} (counted after HTML, the way Telegram counts)"
                ]
            )
        return html


def compile_template(source: str, *, language: str = "") -> CompiledTemplate:
    """Check ``source`` (see the module docstring) and compile it; raises TemplateRejected."""
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateRejected(
            [f"the template is {len(source):,} characters long; the limit is {MAX_SOURCE_CHARS:,}"]
        )
    environment = _environment()
    try:
        tree = environment.parse(source)
        problems = _Checker().check(tree)
        if problems:
            raise TemplateRejected(problems)
        tree = _Rewrite().visit(tree)
        tree.set_environment(environment)
        template = environment.from_string(tree)
    except TemplateRejected:
        raise
    except TemplateSyntaxError as exc:
        raise TemplateRejected([f"line {exc.lineno}: {exc.message}"]) from None
    except RecursionError:
        raise TemplateRejected(["the template is nested too deeply"]) from None
    except Exception as exc:
        raise TemplateRejected([f"the template cannot be read: {exc}"]) from None
    return CompiledTemplate(template, language)


class TemplateSet:
    """The language variants of one campaign's message, with fallback to the default."""

    def __init__(self, templates: Mapping[str, CompiledTemplate], default_language: str) -> None:
        self._templates = {_language_key(k): v for k, v in templates.items()}
        self.default_language = _language_key(default_language)
        if self.default_language not in self._templates:
            raise TemplateRejected([_missing_default(default_language)])

    @classmethod
    def compile(cls, sources: Mapping[str, str], *, default_language: str) -> TemplateSet:
        """Compile every non-blank variant; raises TemplateRejected listing all problems."""
        compiled: dict[str, CompiledTemplate] = {}
        problems: list[str] = []
        for language, source in _present(sources).items():
            try:
                compiled[language] = compile_template(source, language=language)
            except TemplateRejected as exc:
                problems.extend(f"{language}: {problem}" for problem in exc.problems)
        if _language_key(default_language) not in {_language_key(k) for k in _present(sources)}:
            problems.insert(0, _missing_default(default_language))
        if problems:
            raise TemplateRejected(problems)
        return cls(compiled, default_language)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self._templates)

    def template_for(self, language: str | None) -> CompiledTemplate:
        """The variant for ``language`` ("zh-hans" falls back to "zh"), else the default's."""
        if language:
            key = _language_key(language)
            for candidate in (key, key.split("-")[0]):
                if candidate in self._templates:
                    return self._templates[candidate]
        return self._templates[self.default_language]

    def render(self, language: str | None, variables: Mapping[str, Any]) -> str:
        return self.template_for(language).render(variables)


def validate(
    sources: Mapping[str, str],
    samples: Sequence[Mapping[str, Any]],
    *,
    default_language: str,
) -> list[TemplateProblem]:
    """Check every variant and render it for every sample (``SAMPLE_VARIABLES`` if none).

    Each sample is a real customer's variables; a problem names the sample by number and,
    when it has one, the customer's name.
    """
    problems: list[TemplateProblem] = []
    present = _present(sources)
    if _language_key(default_language) not in {_language_key(k) for k in present}:
        problems.append(TemplateProblem(default_language, None, _missing_default(default_language)))
    compiled: dict[str, CompiledTemplate] = {}
    for language, source in present.items():
        try:
            compiled[language] = compile_template(source, language=language)
        except TemplateRejected as exc:
            problems.extend(TemplateProblem(language, None, p) for p in exc.problems)
    for index, sample in enumerate(samples or [SAMPLE_VARIABLES]):
        for language, template in compiled.items():
            try:
                template.render(sample)
            except TemplateRejected as exc:
                label = _sample_label(index, sample)
                problems.extend(TemplateProblem(language, label, p) for p in exc.problems)
    return problems


# --- helpers for the public API ------------------------------------------------------------


def _present(sources: Mapping[str, str]) -> dict[str, str]:
    return {language: source for language, source in sources.items() if source.strip()}


def _language_key(language: str) -> str:
    return language.strip().lower().replace("_", "-")


def _missing_default(default_language: str) -> str:
    return f"there is no template for the default language {default_language!r}"


def _sample_label(index: int, sample: Mapping[str, Any]) -> str:
    customer = sample.get("customer")
    name = customer.get("name") if isinstance(customer, Mapping) else getattr(customer, "name", "")
    return (
        f"sample {index + 1} ({name})" if isinstance(name, str) and name else f"sample {index + 1}"
    )


def _runtime_problem(exc: Exception) -> str:
    message = exc.message if isinstance(exc, TemplateError) else None
    text = message or f"{type(exc).__name__}: {exc}"
    line = _template_line(exc.__traceback__)
    return f"line {line}: {text}" if line is not None else text


def _template_line(tb: TracebackType | None) -> int | None:
    """The template line of the innermost template frame (Jinja rewrites tracebacks so)."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


# --- the static check ----------------------------------------------------------------------

_STATEMENT_NAMES: Final[Mapping[type[nodes.Node], str]] = {
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.Extends: "{% extends %}",
    nodes.Block: "{% block %}",
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.FilterBlock: "{% filter %} (use the filter on a value: {{ x|upper }})",
    nodes.AssignBlock: "{% set x %}...{% endset %} (use {% set x = ... %})",
    nodes.ScopedEvalContextModifier: "{% autoescape %} (variables are always escaped)",
    nodes.EvalContextModifier: "{% autoescape %} (variables are always escaped)",
}
_Scope = dict[str, _Shape | None]


class _Checker:
    """Walks the parsed template and lists what is not allowed, with line numbers."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def check(self, tree: nodes.Template) -> list[str]:
        self.statements(tree.body, {}, 0)
        return list(dict.fromkeys(self.problems))

    def report(self, node: nodes.Node, message: str) -> None:
        self.problems.append(f"line {node.lineno}: {message}")

    # statements

    def statements(self, body: Iterable[nodes.Node], scope: _Scope, depth: int) -> None:
        for node in body:
            self.statement(node, scope, depth)

    def statement(self, node: nodes.Node, scope: _Scope, depth: int) -> None:
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                if not isinstance(child, nodes.TemplateData):
                    self.expression(child, scope)
                    self.printable(child, scope)
        elif isinstance(node, nodes.If):
            self.expression(node.test, scope)
            self.statements(node.body, scope, depth)
            self.statements(node.elif_, scope, depth)
            self.statements(node.else_, scope, depth)
        elif isinstance(node, nodes.For):
            self.loop(node, scope, depth)
        elif isinstance(node, nodes.Assign):
            self.expression(node.node, scope)
            self.bind(node.target, self.shape(node.node, scope), scope)
        elif isinstance(node, nodes.Scope):  # what {% autoescape %} is wrapped in
            self.statements(node.body, scope, depth)
        elif isinstance(node, nodes.With):
            inner = dict(scope)
            for target, value in zip(node.targets, node.values, strict=True):
                self.expression(value, scope)
                self.bind(target, self.shape(value, scope), inner)
            self.statements(node.body, inner, depth)
        else:
            name = _STATEMENT_NAMES.get(type(node), f"{{% {type(node).__name__.lower()} %}}")
            self.report(node, f"{name} is not allowed in campaign templates")

    def loop(self, node: nodes.For, scope: _Scope, depth: int) -> None:
        if depth + 1 > MAX_LOOP_DEPTH:
            self.report(node, f"loops may be nested at most {MAX_LOOP_DEPTH} deep")
        if node.recursive:
            self.report(node, "recursive loops are not allowed")
        self.expression(node.iter, scope)
        source = self.shape(node.iter, scope)
        if not isinstance(source, _ListOf):
            self.report(
                node,
                "a loop may only go over a list (suggestions, last_occasion_purchase.items), "
                f"range(...) or a literal list of at most {MAX_RANGE} items",
            )
        inner = dict(scope)
        inner["loop"] = _Loop()
        self.bind(node.target, source.item if isinstance(source, _ListOf) else None, inner)
        if node.test is not None:
            self.expression(node.test, inner)
        self.statements(node.body, inner, depth + 1)
        self.statements(node.else_, scope, depth)

    def bind(self, target: nodes.Node, shape: _Shape | None, scope: _Scope) -> None:
        if isinstance(target, nodes.Name):
            scope[target.name] = shape
        elif isinstance(target, nodes.Tuple):
            for item in target.items:
                self.bind(item, None, scope)
        else:
            self.report(target, "only plain names can be assigned to")

    def printable(self, node: nodes.Expr, scope: _Scope) -> None:
        shape = self.shape(node, scope)
        if isinstance(shape, _ListOf):
            self.report(node, "this prints a whole list: loop over it or use |join(', ')")
        elif isinstance(shape, _Record):
            fields = ", ".join(shape.fields)
            self.report(node, f"this prints a whole {shape.label}: print a field ({fields})")

    # expressions

    def expression(self, node: nodes.Node, scope: _Scope) -> None:
        if isinstance(node, nodes.Const | nodes.TemplateData):
            return
        if isinstance(node, nodes.Name):
            self.name(node, scope)
        elif isinstance(node, nodes.Getattr):
            self.expression(node.node, scope)
            self.attribute(node, node.node, node.attr, scope)
        elif isinstance(node, nodes.Getitem):
            self.expression(node.node, scope)
            if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                self.attribute(node, node.node, node.arg.value, scope)
            else:
                self.expression(node.arg, scope)
        elif isinstance(node, nodes.Call):
            self.call(node, scope)
        elif isinstance(node, nodes.Filter):
            self.filter(node, scope)
        elif isinstance(node, nodes.Test):
            self.test(node, scope)
        elif isinstance(node, nodes.Pow):
            self.report(node, "the ** operator is not allowed")
        elif isinstance(node, nodes.BinExpr):
            self.binary(node, scope)
        elif isinstance(node, nodes.List | nodes.Tuple):
            if len(node.items) > MAX_RANGE:
                self.report(node, f"a literal list may have at most {MAX_RANGE} items")
            self.children(node, scope)
        elif isinstance(
            node,
            nodes.UnaryExpr
            | nodes.CondExpr
            | nodes.Compare
            | nodes.Operand
            | nodes.Concat
            | nodes.Dict
            | nodes.Pair
            | nodes.Keyword
            | nodes.Slice,
        ):
            self.children(node, scope)
        else:
            self.report(node, f"{type(node).__name__} expressions are not allowed")

    def children(self, node: nodes.Node, scope: _Scope) -> None:
        for child in node.iter_child_nodes():
            self.expression(child, scope)

    def name(self, node: nodes.Name, scope: _Scope) -> None:
        if node.name in scope or node.name in _TOP_LEVEL or node.name == "range":
            return
        known = ", ".join(VARIABLE_NAMES)
        self.report(node, f"unknown variable {node.name!r} (known variables: {known})")

    def attribute(self, node: nodes.Node, owner: nodes.Node, name: str, scope: _Scope) -> bool:
        """Report a forbidden or unknown attribute; True if ``owner.name`` is fine."""
        if name.startswith("_") or name in _FORBIDDEN_ATTRIBUTES:
            self.report(node, f"{name!r} is not allowed (it reaches Python internals)")
            return False
        shape = self.shape(owner, scope)
        allowed: Iterable[str] | None = None
        if isinstance(shape, _Record):
            allowed = shape.fields
            what = shape.label
        elif isinstance(shape, _Loop):
            allowed, what = sorted(_LOOP_ATTRIBUTES), "loop"
        elif shape == _TEXT:
            allowed, what = [m for m in METHODS if m in _TEXT_METHODS], "text"
        elif shape == _DATE:
            allowed, what = sorted(_DATE_ATTRIBUTES), "a date"
        elif shape is not None:
            allowed, what = [], f"a {'list' if isinstance(shape, _ListOf) else shape.kind}"
        if allowed is None or name in allowed:
            return True
        offer = f" (it has: {', '.join(allowed)})" if allowed else ""
        self.report(node, f"{what} has no {name!r}{offer}")
        return False

    def binary(self, node: nodes.BinExpr, scope: _Scope) -> None:
        self.expression(node.left, scope)
        self.expression(node.right, scope)
        left, right = _constant(node.left), _constant(node.right)
        if isinstance(node, nodes.Mod) and isinstance(left, str):
            self.report(node, "formatting text with % is not allowed; join text with ~")
        if isinstance(node, nodes.Mul):
            for repeated, times in ((left, right), (right, left)):
                if isinstance(repeated, str | list | tuple) and isinstance(times, int):
                    size = len(repeated) * times
                    if size > MAX_VALUE_CHARS:
                        self.report(
                            node,
                            f"repeating this {times:,} times makes {size:,} characters "
                            f"(the limit is {MAX_VALUE_CHARS:,})",
                        )

    def call(self, node: nodes.Call, scope: _Scope) -> None:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            self.report(node, "calls with *args or **kwargs are not allowed")
        for child in (*node.args, *node.kwargs):
            self.expression(child, scope)
        callee = node.node
        if isinstance(callee, nodes.Name) and callee.name == "range" and "range" not in scope:
            self.range_call(node)
        elif isinstance(callee, nodes.Getattr):
            self.expression(callee.node, scope)
            if callee.attr in ("format", "format_map"):
                self.report(node, "str.format is not allowed (it reaches Python internals); use ~")
            elif not self.attribute(callee, callee.node, callee.attr, scope):
                pass
            elif callee.attr not in METHODS:
                self.report(
                    node, f"calling .{callee.attr}() is not allowed (allowed: {_list(METHODS)})"
                )
            elif node.kwargs:
                self.report(node, f".{callee.attr}() takes no keyword arguments here")
            elif callee.attr == "strftime":
                fmt = _constant(node.args[0]) if len(node.args) == 1 else None
                if not isinstance(fmt, str) or len(fmt) > _MAX_DATE_FORMAT:
                    self.report(
                        node,
                        f".strftime() needs one literal format of at most {_MAX_DATE_FORMAT} "
                        "characters, e.g. .strftime('%d %B')",
                    )
        else:
            self.expression(callee, scope)
            self.report(node, f"only range(...) and the methods {_list(METHODS)} can be called")

    def range_call(self, node: nodes.Call) -> None:
        arguments = [_constant(arg) for arg in node.args]
        if node.kwargs or not 1 <= len(arguments) <= 3:
            self.report(node, "range() takes 1 to 3 numbers")
            return
        if not all(isinstance(a, int) and not isinstance(a, bool) for a in arguments):
            self.report(node, "range() needs literal whole numbers, e.g. range(3)")
            return
        try:
            count = len(range(*arguments))
        except (ValueError, OverflowError):
            count = MAX_RANGE + 1
        if count > MAX_RANGE:
            self.report(node, f"range() may produce at most {MAX_RANGE} numbers")

    def filter(self, node: nodes.Filter, scope: _Scope) -> None:
        if node.name not in FILTERS:
            message = _WHY_REFUSED.get(node.name)
            self.report(
                node, message or f"unknown filter {node.name!r} (allowed: {_list(FILTERS)})"
            )
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            self.report(node, "filters with *args or **kwargs are not allowed")
        if node.node is not None:
            self.expression(node.node, scope)
        for child in (*node.args, *node.kwargs):
            self.expression(child, scope)
        if node.name == "map":
            self.map_filter(node, scope)
        elif node.name == "join" and (node.kwargs or len(node.args) > 1):
            self.report(node, "join takes only a separator, e.g. |join(', ')")

    def map_filter(self, node: nodes.Filter, scope: _Scope) -> None:
        keywords = {keyword.key: keyword.value for keyword in _keywords(node.kwargs)}
        attribute = _constant(keywords["attribute"]) if "attribute" in keywords else None
        if node.args or not isinstance(attribute, str) or set(keywords) - {"attribute", "default"}:
            self.report(node, "map is only allowed as map(attribute='field')")
            return
        if attribute.startswith("_") or attribute in _FORBIDDEN_ATTRIBUTES or "." in attribute:
            self.report(node, f"map(attribute={attribute!r}) is not allowed")
            return
        source = self.shape(node.node, scope) if node.node is not None else None
        item = source.item if isinstance(source, _ListOf) else None
        if isinstance(item, _Record) and attribute not in item.fields:
            fields = ", ".join(item.fields)
            self.report(node, f"{item.label} has no {attribute!r} (it has: {fields})")

    def test(self, node: nodes.Test, scope: _Scope) -> None:
        if node.name not in TESTS:
            self.report(node, f"unknown test {node.name!r} (allowed: {_list(TESTS)})")
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            self.report(node, "tests with *args or **kwargs are not allowed")
        self.children(node, scope)

    # shapes: what the documented variables tell about an expression

    def shape(self, node: nodes.Node, scope: _Scope) -> _Shape | None:
        if isinstance(node, nodes.Name):
            return scope[node.name] if node.name in scope else _TOP_LEVEL.get(node.name)
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            owner = self.shape(node.node, scope)
            key = node.attr if isinstance(node, nodes.Getattr) else _constant(node.arg)
            if isinstance(owner, _Record) and isinstance(key, str):
                return owner.fields.get(key)
            if isinstance(owner, _Loop):
                return _NUMBER if key in ("index", "index0", "length") else None
            if isinstance(owner, _ListOf) and isinstance(node, nodes.Getitem):
                return owner if isinstance(node.arg, nodes.Slice) else owner.item
            return None
        if isinstance(node, nodes.Filter):
            source = self.shape(node.node, scope) if node.node is not None else None
            if node.name == "money":
                return _TEXT
            if node.name == "reverse":
                return source
            if node.name in ("first", "last") and isinstance(source, _ListOf):
                return source.item
            if node.name == "map" and isinstance(source, _ListOf):
                keywords = _keywords(node.kwargs)
                field = next((k.value for k in keywords if k.key == "attribute"), None)
                item = source.item
                if isinstance(item, _Record) and isinstance(field, nodes.Const):
                    return _ListOf(item.fields.get(str(field.value)))
                return _ListOf(None)
            return _TEXT if node.name in _TEXT_FILTERS or node.name == "join" else None
        if isinstance(node, nodes.Call):
            callee = node.node
            if isinstance(callee, nodes.Name) and callee.name == "range":
                return _ListOf(_NUMBER)
            return _TEXT if isinstance(callee, nodes.Getattr) else None
        if isinstance(node, nodes.List | nodes.Tuple):
            return _ListOf(None)
        if isinstance(node, nodes.Concat):
            return _TEXT
        if isinstance(node, nodes.Const):
            return _TEXT if isinstance(node.value, str) else None
        return None


def _constant(node: nodes.Node) -> Any:
    """The value of a literal (numbers may be negated), else None; never evaluates more."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.Neg) and isinstance(node.node, nodes.Const):
        value = node.node.value
        return -value if isinstance(value, int | float) else None
    if isinstance(node, nodes.List | nodes.Tuple):
        values = [item.value for item in node.items if isinstance(item, nodes.Const)]
        return values if len(values) == len(node.items) else None
    return None


def _keywords(kwargs: Iterable[Any]) -> list[nodes.Keyword]:
    # Jinja annotates call keywords as Pair nodes; its parser builds Keyword nodes.
    return [keyword for keyword in kwargs if isinstance(keyword, nodes.Keyword)]


def _list(names: Iterable[str]) -> str:
    return ", ".join(name for name in names if name.isidentifier())


class _Rewrite(NodeTransformer):
    """Hooks for the render-time limits, added after the check (templates cannot name them)."""

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        """``a ~ b ~ c`` becomes a filter that checks the size before joining."""
        self.generic_visit(node)
        items = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(items, "_bounded_concat", [], [], None, None, lineno=node.lineno)

    def visit_For(self, node: nodes.For) -> nodes.Node:
        """Each iteration yields an empty piece, so ``render`` can watch the clock."""
        self.generic_visit(node)
        node.body.insert(0, nodes.Output([nodes.TemplateData("")], lineno=node.lineno))
        return node


# --- the render-time sandbox ---------------------------------------------------------------


_DEADLINE: ContextVar[float] = ContextVar("campaign_template_deadline", default=math.inf)


def _grew_too_long() -> TemplateRejected:
    return TemplateRejected([f"the message grew past {MAX_RENDER_CHARS:,} characters"])


def _too_slow() -> TemplateRejected:
    return TemplateRejected([f"rendering took longer than {MAX_RENDER_SECONDS:g} s"])


def _check_time() -> None:
    """Called by the hooks: no single step is slow, but a template could take very many."""
    if time.monotonic() > _DEADLINE.get():
        raise _too_slow()


def _too_long(size: int) -> SecurityError:
    return SecurityError(f"a value of {size:,} characters is too long (limit {MAX_VALUE_CHARS:,})")


def _bounded_range(*arguments: int) -> range:
    numbers = range(*arguments)
    try:
        too_many = len(numbers) > MAX_RANGE
    except OverflowError:
        too_many = True
    if too_many:
        raise SecurityError(f"range() may produce at most {MAX_RANGE} numbers")
    return numbers


_SCALARS: Final = (str, int, float, Decimal, date, Undefined, type(None))


def _require_scalar(value: Any, what: str) -> None:
    _check_time()
    if not isinstance(value, _SCALARS):
        raise SecurityError(f"{what} works on text and numbers, not on a {type(value).__name__}")


_PRINTABLE_FAST: Final = frozenset({str, Markup, int, float})


def _printable(value: Any) -> Any:
    """Jinja's ``finalize``: None prints as nothing; records and lists are refused."""
    if type(value) in _PRINTABLE_FAST:
        return value
    if value is None:
        return ""
    _require_scalar(value, "printing")
    return value


def _bounded_concat(items: Sequence[Any]) -> str:
    parts: list[str] = []
    size = 0
    for item in items:
        _require_scalar(item, "~")
        part = soft_str(item)
        size += len(part)
        if size > MAX_VALUE_CHARS:
            raise _too_long(size)
        parts.append(part)
    return markup_join(parts)


def _bounded_join(value: Iterable[Any], separator: str = "") -> str:
    """Jinja's join (autoescape aware), refusing a result longer than MAX_VALUE_CHARS."""
    _require_scalar(separator, "join's separator")
    parts: list[str] = []
    size = 0
    for item in value:
        _require_scalar(item, "join")
        part = item if isinstance(item, Markup) else str(item)
        size += len(part) + len(separator)
        if size > MAX_VALUE_CHARS + len(separator):
            raise _too_long(size)
        parts.append(part)
    if any(isinstance(part, Markup) for part in parts):
        return escape(separator).join(parts)
    return str(separator).join(parts)


def _money(amount: Any, currency: str) -> str:
    """``{{ total|money(shop.currency) }}``: "£38.50", as elsewhere in the bot."""
    if isinstance(amount, Undefined):
        return str(amount)  # raises, naming what is missing
    if not isinstance(amount, int | float | Decimal) or not isinstance(currency, str):
        raise SecurityError("money needs an amount and a currency, e.g. total|money(shop.currency)")
    return money(float(amount), currency)


def _guarded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` watching the clock and, for text filters, refusing records and lists
    (whose text form could be enormous)."""
    position = 1 if hasattr(original, "jinja_pass_arg") else 0
    text_only = name in _TEXT_FILTERS
    # A campaign applies the same filter to the same few names (product names, first names)
    # for every recipient: remembered per exact type (a Markup stays apart from its str).
    memo = (
        functools.lru_cache(maxsize=_MEMO_ENTRIES, typed=True)(original)
        if name in _MEMO_FILTERS
        else None
    )

    @functools.wraps(original)  # also copies Jinja's pass_environment/pass_context marker
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_time()
        if text_only:
            _require_scalar(args[position], f"the {name} filter")
        if memo is not None and _memo_worthy(args, kwargs):
            return memo(args[0])
        return original(*args, **kwargs)

    return guarded


# Text filters that depend on their arguments alone, remembered for short texts.
_MEMO_FILTERS: Final = frozenset({"upper", "lower", "title", "capitalize", "trim"})
_MEMO_ENTRIES: Final = 4096
_MEMO_MAX_CHARS: Final = 200


def _memo_worthy(args: Sequence[Any], kwargs: Mapping[str, Any]) -> bool:
    """A filter applied to one short plain text, nothing else (``trim('x')`` is not)."""
    if kwargs or len(args) != 1:
        return False
    value = args[0]
    return type(value) is str and len(value) <= _MEMO_MAX_CHARS


def _multiply(left: Any, right: Any) -> Any:
    for repeated, times in ((left, right), (right, left)):
        if isinstance(repeated, list | tuple) and isinstance(times, int):
            raise SecurityError("lists cannot be repeated with *")
        if isinstance(repeated, str) and isinstance(times, int):
            size = len(repeated) * times
            if size > MAX_VALUE_CHARS:
                raise _too_long(size)
    if (
        isinstance(left, int)
        and isinstance(right, int)
        and left.bit_length() + right.bit_length() > MAX_NUMBER_BITS
    ):
        raise SecurityError("the number is too large")
    return left * right


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > MAX_VALUE_CHARS:
            raise _too_long(len(left) + len(right))
    elif (
        isinstance(left, list | tuple)
        and isinstance(right, list | tuple)
        and len(left) + len(right) > MAX_LIST_ITEMS
    ):
        raise SecurityError(f"a list may have at most {MAX_LIST_ITEMS} items")
    return left + right


@functools.cache
def _public_fields(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls) if not f.name.startswith("_"))


def _callable_allowed(function: Any) -> bool:
    if function is _bounded_range:
        return True
    if not isinstance(function, BuiltinMethodType | MethodType):
        return False
    owner, name = function.__self__, function.__name__
    if isinstance(owner, str):
        return name in _TEXT_METHODS
    return isinstance(owner, date) and name == "strftime"


class _CampaignEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with allow-lists for names, lookups, calls and sizes."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            finalize=_printable,
            cache_size=0,
        )
        # No cycler, joiner, lipsum, namespace or dict: templates need none of them.
        self.globals = {"range": _bounded_range}
        own: dict[str, Callable[..., Any]] = {
            "join": _bounded_join,
            "money": _money,
            "_bounded_concat": _bounded_concat,  # what ~ is compiled to, see _Rewrite
        }
        self.filters = {
            name: _guarded_filter(name, JINJA_FILTERS[name]) for name in FILTERS if name not in own
        }
        self.filters.update(own)
        self.tests = {name: JINJA_TESTS[name] for name in TESTS}

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_time()
        if operator == "*":
            return _multiply(left, right)
        if operator == "+":
            return _add(left, right)
        if operator == "**":
            raise SecurityError("the ** operator is not allowed")
        if operator == "%" and isinstance(left, str):
            raise SecurityError("formatting text with % is not allowed; join text with ~")
        return self.binop_table[operator](left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:  # the common case first: rendering speed matters
            try:
                return obj[attribute]
            except KeyError:
                return self._no_field(obj, attribute, list(obj))
        if isinstance(obj, Undefined):  # keeps the name of what is missing in the error
            return obj
        if isinstance(obj, Mapping):
            if attribute in obj:
                return obj[attribute]
            return self._no_field(obj, attribute, list(obj))
        if attribute.startswith("_") or attribute in _FORBIDDEN_ATTRIBUTES:
            return self.unsafe_undefined(obj, attribute)
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            fields = _public_fields(type(obj))
            if attribute in fields:
                return getattr(obj, attribute)
            return self._no_field(obj, attribute, sorted(fields))
        allowed: Iterable[str] = ()
        if isinstance(obj, str):
            allowed = _TEXT_METHODS
        elif isinstance(obj, date):
            allowed = _DATE_ATTRIBUTES
        elif isinstance(obj, LoopContext):
            allowed = _LOOP_ATTRIBUTES
        if attribute in allowed:
            return getattr(obj, attribute)
        return self._no_field(obj, attribute, sorted(allowed))

    def getitem(self, obj: Any, argument: Any) -> Any:
        _check_time()  # slicing copies; attribute lookups (getattr) are cheap and not checked
        if isinstance(obj, Undefined):
            return obj
        if isinstance(argument, str):
            return self.getattr(obj, argument)
        if isinstance(obj, Mapping):
            try:
                return obj[argument]
            except (KeyError, TypeError):
                return self._no_field(obj, repr(argument), list(obj))
        if isinstance(obj, str | list | tuple) and isinstance(argument, int | slice):
            try:
                return obj[argument]
            except IndexError:
                return self.undefined(f"there is no item {argument} (it has {len(obj)})")
        return self.undefined(f"a {type(obj).__name__} cannot be indexed with {argument!r}")

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        if isinstance(obj, Undefined):
            return obj()  # raises, naming what is missing
        _check_time()
        if not _callable_allowed(obj):
            name = getattr(obj, "__name__", type(obj).__name__)
            raise SecurityError(f"calling {name} is not allowed")
        return context.call(obj, *args, **kwargs)

    def _no_field(self, obj: Any, attribute: str, fields: Iterable[str]) -> Undefined:
        if obj is None:
            hint = f"cannot read {attribute!r} of nothing (None); check with {{% if ... %}} first"
            return self.undefined(hint, obj=obj, name=attribute)
        known = ", ".join(str(f) for f in fields)
        where = "here" if isinstance(obj, Mapping) else f"on a {type(obj).__name__}"
        hint = f"there is no {attribute!r} {where}" + (f" (it has: {known})" if known else "")
        return self.undefined(hint, obj=obj, name=attribute)


@functools.cache
def _environment() -> _CampaignEnvironment:
    return _CampaignEnvironment()
