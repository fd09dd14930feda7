"""Hypothesis strategies for hostile input, shared by the property tests."""

from __future__ import annotations

from hypothesis import strategies as st

# Characters that break naive handling: markup and MarkdownV2 specials, bidi overrides,
# zero-width and joiners, control characters (NUL included), astral emoji and CJK.
NASTY = (
    "<>&\"'`*_[]()~>#+-=|{}.!\\"
    "\u202e\u202d\u2066\u2069\u200b\u200c\u200d\u2060\ufeff"
    "\x00\x01\x07\x08\x1b\x7f\u0085\u2028\u2029\r\n\t"
    "😀👍🏽👨‍👩‍👧𝕏𐍈中文ع"
)
FRAGMENTS = (
    "<b>",
    "</b>",
    "<i>x</i>",
    '<a href="tg://user?id=1">',
    "<script>",
    "&amp;",
    "&lt;",
    "&#0;",
    "&",
    "*bold*",
    "_it_",
    "[x](http://e.com)",
    "||spoiler||",
    "```",
    "{{ 7*7 }}",
    "{% for %}",
    "%s%n",
    "'; DROP TABLE customers; --",
    "how long does delivery take?",
    "怎么退货",
    "refund",
    "536012",
    "\u202eevil",
)

nasty_chars = st.sampled_from(NASTY)
any_char = st.characters(exclude_categories=("Cs",)) | nasty_chars


def any_text(min_size: int = 0, max_size: int = 300) -> st.SearchStrategy[str]:
    """Any Unicode (no lone surrogates: they cannot be UTF-8), markup and odd characters."""
    pieces = st.lists(any_char | st.sampled_from(FRAGMENTS), min_size=min_size, max_size=40)
    return pieces.map(lambda parts: "".join(parts)[:max_size])


def stretched(text: str, length: int) -> str:
    """``text`` repeated to ``length`` characters: a long text without generating every
    character (slow, and it finds nothing more), and with a short repr in failure reports."""
    return (text * (length // max(1, len(text)) + 1))[:length] if text else "x" * length


hostile_name = st.one_of(
    st.sampled_from(["<b>Ann</b>", "Tom & Jerry", "a<b", "*_[`", "\u202eevil", "&lt;x&gt;"]),
    any_text(min_size=1, max_size=64),
).filter(lambda name: bool(name.strip()))

# Callback data the bot's own buttons use, then forged: other ids, wrong shapes, too long.
CALLBACK_PREFIXES = (
    "order:",
    "cpl:o:",
    "cpl:c:",
    "cpl:",
    "faq:",
    "person:no_match:",
    "person:not_helpful:",
    "sv:",
    "nps:",
    "tk:",
    "cm:",
    "ca:",
    "set:",
    "lang:",
    "tz:",
    "",
)


def callback_data() -> st.SearchStrategy[str]:
    number = st.integers(0, 10**15).map(str) | st.integers(-5, 60).map(str)
    suffix = st.one_of(
        number,
        st.tuples(
            number, st.sampled_from(["", ":y:", ":n:", ":1", ":5", ":claim", ":resolve"])
        ).map("".join),
        st.sampled_from(["send", "cancel", "damaged", "lang", "tz", "rem", "ord", "stop", "more"]),
        any_text(max_size=80),
        st.binary(max_size=80).map(lambda raw: raw.decode("latin-1")),
    )
    return st.builds(lambda prefix, rest: prefix + rest, st.sampled_from(CALLBACK_PREFIXES), suffix)
