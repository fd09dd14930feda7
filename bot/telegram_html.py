"""Telegram's HTML parse mode, checked and measured without asking Telegram.

The rules follow Telegram's own parser (tdlib ``parse_html``), so a message that passes here is
not refused with "can't parse entities":

* Tags: ``b strong i em u ins s strike del code pre a tg-spoiler span blockquote``. Tag names
  are case-insensitive in a start tag, but an end tag must repeat the name in lower case
  (``</b>``; ``</>`` closes the innermost tag). Tags must nest properly and all be closed.
* Attributes: ``a href``, ``span class="tg-spoiler"`` (required), ``code class="language-…"``
  (inside ``pre``), ``blockquote expandable``. Telegram silently ignores other attributes;
  here they are reported, because whoever wrote them expected an effect.
* ``<`` always starts a tag: a literal one must be written ``&lt;``. ``>`` and ``&`` may appear
  literally.
* Entities: ``&lt; &gt; &amp; &quot;`` and numeric ones (``&#8364;``, ``&#x20AC;``); the ``;``
  is optional, as in Telegram. Any other ``&name;`` is shown literally by Telegram, so it is
  reported (``&nbsp;`` would appear as the six characters ``&nbsp;``). Numeric references to
  surrogates make Telegram refuse the message; ``&#0;`` or beyond U+10FFFF appear literally.
  Both are reported.
* Length: Telegram counts the visible text (after tags are removed and entities decoded) in
  UTF-16 code units, so an emoji such as 😀 counts 2. A message may hold at most
  ``MESSAGE_LIMIT`` (4096) of them, and must not be blank.

Custom emoji (``tg-emoji``) are not accepted: bots may only send them in special cases.
"""

from __future__ import annotations

import functools
import re
from typing import Final, NamedTuple

MESSAGE_LIMIT: Final = 4096

_TAGS: Final = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del"}
    | {"code", "pre", "a", "tg-spoiler", "span", "blockquote"}
)
_NAMED_ENTITIES: Final = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SPECIAL = re.compile(r"[<&]")
# Telegram's reading of "&...": "#x" hex digits, "#" decimal digits, or letters; ";" optional.
_ENTITY = re.compile(r"&(?:#x([0-9a-fA-F]*)|#([0-9]*)|([A-Za-z]*))(;?)")
_SPACE = " \t\n\r\f\v"
_NAME_TOKEN = re.compile(r"[A-Za-z0-9.-]*")


class ParsedHtml(NamedTuple):
    """What Telegram would show, and the first reason it would refuse or garble the message."""

    text: str
    problem: str | None

    @property
    def visible_length(self) -> int:
        return utf16_length(self.text)


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's limits and entity offsets."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le", "surrogatepass")) // 2


def parse_html(html: str) -> ParsedHtml:
    """Parse Telegram HTML; for invalid HTML the text is a best effort (bad tags dropped)."""
    return _parse_valid(html) or _Parser(html).run()


def check_html(html: str) -> str | None:
    """The first problem that makes Telegram refuse or garble this HTML, or None."""
    return parse_html(html).problem


def visible_length(html: str) -> int:
    """Length as Telegram counts it: after HTML parsing, in UTF-16 code units."""
    return parse_html(html).visible_length


def check_message(html: str, *, limit: int = MESSAGE_LIMIT) -> str | None:
    """Like ``check_html``, and also refuses a blank message or one over ``limit``."""
    parsed = parse_html(html)
    if parsed.problem is not None:
        return parsed.problem
    if not parsed.text.strip():
        return "the message is empty"
    length = parsed.visible_length
    if length > limit:
        return f"the message is {length:,} characters long; Telegram allows {limit:,}"
    return None


# The fast path, for valid HTML: regular expressions do the scanning, and tag sequences seen
# before are looked up instead of checked again.
_TAG = re.compile(r"<[^<>]*>")
_ENTITY_TOKEN = re.compile(r"&(?:#x[0-9a-fA-F]*|#[0-9]*|[A-Za-z]*);?")
_COMMON_ENTITIES: Final = {
    "&": "&",
    "&amp;": "&",
    "&lt;": "<",
    "&gt;": ">",
    "&quot;": '"',
    "&#34;": '"',
    "&#39;": "'",
}
_TAG_GAP = "\x00"  # stands for a removed tag while entities are decoded, so none spans one


def _parse_valid(html: str) -> ParsedHtml | None:
    """The parse of ``html`` if it is plainly valid, else None (the full parser then explains)."""
    tags = _TAG.findall(html)
    if len(tags) != html.count("<") or not _tags_nest(tuple(tags)):
        return None
    if "&" not in html:
        return ParsedHtml(_TAG.sub("", html) if tags else html, None)
    if _TAG_GAP in html:
        return None
    text = _TAG.sub(_TAG_GAP, html) if tags else html
    if not all(entity in _COMMON_ENTITIES for entity in _ENTITY_TOKEN.findall(text)):
        return None
    text = _ENTITY_TOKEN.sub(_common_entity, text)
    return ParsedHtml(text.replace(_TAG_GAP, "") if tags else text, None)


def _common_entity(match: re.Match[str]) -> str:
    return _COMMON_ENTITIES[match.group()]


@functools.lru_cache(maxsize=4096)
def _tags_nest(tags: tuple[str, ...]) -> bool:
    open_tags: list[str] = []
    for token in tags:
        tag = _known_tag(token)
        if tag is None:
            return False
        if tag[0] != "/":
            open_tags.append(tag)
        elif not open_tags or (tag != "/" and open_tags.pop() != tag[1:]):
            return False
        elif tag == "/":  # "</>" closes the innermost tag
            open_tags.pop()
    return not open_tags


@functools.lru_cache(maxsize=1024)
def _known_tag(token: str) -> str | None:
    """The name of a valid start tag (<b ...> gives "b"), "/b" for </b>, None for a problem."""
    if token.startswith("</"):
        name = token[2:-1].rstrip(_SPACE)
        return None if any(ch in _SPACE for ch in name) else "/" + name
    parser = _Parser(token)
    end = parser.start_tag(0)
    if parser.problem or end != len(token) or not parser.open_tags:
        return None
    return parser.open_tags[-1]


class _Parser:
    def __init__(self, html: str) -> None:
        self.html = html
        self.text: list[str] = []
        self.open_tags: list[str] = []
        self.problem: str | None = None

    def fail(self, problem: str) -> None:
        if self.problem is None:
            self.problem = problem

    def run(self) -> ParsedHtml:
        html, pos = self.html, 0
        while (found := _SPECIAL.search(html, pos)) is not None:
            start = found.start()
            self.text.append(html[pos:start])
            if html[start] == "&":
                pos = self.entity(start)
            elif html.startswith("</", start):
                pos = self.end_tag(start)
            else:
                pos = self.start_tag(start)
        self.text.append(html[pos:])
        if self.open_tags:
            self.fail(f"<{self.open_tags[-1]}> is never closed")
        return ParsedHtml("".join(self.text), self.problem)

    def entity(self, start: int) -> int:
        match = _ENTITY.match(self.html, start)
        assert match is not None  # the pattern matches any "&"
        hex_digits, decimal_digits, name, semicolon = match.groups()
        body_end = match.end() - len(semicolon)
        shown = self.html[start : match.end()]
        if name is not None:
            char = _NAMED_ENTITIES.get(name)
            if char is None and name and semicolon:
                self.fail(
                    f"unsupported entity {shown}: Telegram knows &lt; &gt; &amp; &quot; "
                    "and numeric ones like &#8364;"
                )
        else:
            digits = hex_digits if hex_digits is not None else decimal_digits
            code = int(digits, 16 if hex_digits is not None else 10) if digits else 0
            if 0xD800 <= code <= 0xDFFF:
                self.fail(f"entity {shown} is half of a surrogate pair, not a character")
            if code == 0 or code >= 0x10FFFF or body_end - start >= 10:
                char = None
                self.fail(f"entity {shown} is not a character Telegram accepts")
            else:
                char = chr(code)
        if char is None:
            self.text.append("&")
            return start + 1
        self.text.append(char)
        return match.end()

    def end_tag(self, start: int) -> int:
        html = self.html
        close = html.find(">", start)
        if close == -1:
            self.fail(f"unclosed end tag {html[start : start + 20]!r}")
            self.text.append("<")
            return start + 1
        name = html[start + 2 : close].rstrip(_SPACE)
        if any(ch in _SPACE for ch in name):
            self.fail(f"malformed end tag {html[start : close + 1]!r}")
        elif not self.open_tags:
            self.fail(f"</{name}> closes nothing")
        else:
            expected = self.open_tags.pop()
            if name and name != expected:
                self.fail(f"</{name}> found where </{expected}> was expected")
        return close + 1

    def start_tag(self, start: int) -> int:
        html, end = self.html, len(self.html)
        pos = start + 1
        while pos < end and html[pos] not in _SPACE and html[pos] != ">":
            pos += 1
        name = html[start + 1 : pos].lower()
        if not name or pos >= end:
            self.fail(
                f"a '<' that does not start a tag (near {html[start : start + 20]!r}); "
                "write it as &lt;"
            )
            self.text.append("<")
            return start + 1
        attributes, pos = self.attributes(name, pos)
        if name not in _TAGS:
            self.fail(f"unsupported tag <{name}>")
            return pos
        self.check_attributes(name, attributes)
        self.open_tags.append(name)
        return pos

    def attributes(self, tag: str, pos: int) -> tuple[dict[str, str | None], int]:
        """Read attributes up to and including ">"; returns them and the position after it."""
        html, end = self.html, len(self.html)
        found: dict[str, str | None] = {}
        while True:
            while pos < end and html[pos] in _SPACE:
                pos += 1
            if pos >= end:
                self.fail(f"<{tag}> is not closed with '>'")
                return found, end
            if html[pos] == ">":
                return found, pos + 1
            name_start = pos
            while pos < end and html[pos] not in _SPACE and html[pos] not in "=>":
                pos += 1
            name = html[name_start:pos]
            while pos < end and html[pos] in _SPACE:
                pos += 1
            if pos >= end or html[pos] != "=":
                found[name] = None
                continue
            pos += 1
            while pos < end and html[pos] in _SPACE:
                pos += 1
            if pos < end and html[pos] in "\"'":
                quote = html[pos]
                close = html.find(quote, pos + 1)
                if close == -1:
                    self.fail(f"the value of {name} in <{tag}> has no closing {quote}")
                    return found, end
                raw = html[pos + 1 : close]
                found[name] = _decode_attribute(raw) if "&" in raw else raw
                pos = close + 1
            else:
                token = _NAME_TOKEN.match(html, pos)
                assert token is not None  # the pattern matches the empty string
                found[name] = token.group().lower()
                pos = token.end()
                if pos < end and html[pos] not in _SPACE and html[pos] != ">":
                    self.fail(f"put the value of {name} in <{tag}> in quotes")

    def check_attributes(self, tag: str, attributes: dict[str, str | None]) -> None:
        for name, value in attributes.items():
            allowed = (
                (tag == "a" and name == "href" and value is not None)
                or (tag == "span" and name == "class")
                or (tag == "code" and name == "class" and (value or "").startswith("language-"))
                or (tag == "blockquote" and name == "expandable")
            )
            if not allowed:
                self.fail(f"<{tag}> does not take the attribute {name!r}")
        if tag == "span" and attributes.get("class") != "tg-spoiler":
            self.fail('<span> must be <span class="tg-spoiler">')
        if tag == "a" and "href" not in attributes:
            self.fail("<a> needs an href")


def _decode_attribute(raw: str) -> str:
    decoder = _Parser(raw)
    pos = 0
    while (found := raw.find("&", pos)) != -1:
        decoder.text.append(raw[pos:found])
        pos = decoder.entity(found)
    decoder.text.append(raw[pos:])
    return "".join(decoder.text)
