"""Turn free text (English or Chinese) into search terms for the FAQ index.

SQLite's FTS5 ``unicode61`` tokenizer keeps a run of Chinese characters as one token, so
"怎么退货" would never match "退货". We index and query Chinese as overlapping character
bigrams (the usual approach for CJK full-text search without a dictionary) and everything
else as lower-cased words with English stop words removed.
"""

from __future__ import annotations

import re
import unicodedata

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+", re.UNICODE)
_IS_CJK = re.compile(rf"[{_CJK}]")

# Words that say nothing about what the customer wants; removing them keeps a question
# like "how do I ..." from matching every FAQ entry.
STOP_WORDS = frozenset(
    """a about an and are as at be can could do does for from get got has have hello hey hi how
    i if in is it its me my of on or please the there this to was we what which who
    why will with would you your yours our us thanks thank ok okay""".split()  # noqa: SIM905
)
# Chinese function words split a run of characters before bigrams are made, so that
# "怎么退货" yields just "退货" rather than noise like "么退".
_CJK_STOP = re.compile(
    "怎么样|为什么|能不能|怎么|什么|可以|一下|请问|你们|我们|您好|你好|谢谢|如何|是否|我想|想要"
    "|[的了吗呢吧啊么我你您是请想要呀哦嗯]"
)


def search_terms(text: str) -> list[str]:
    """Distinct meaningful terms of ``text``, in order of appearance."""
    text = unicodedata.normalize("NFKC", text).lower()
    terms: list[str] = []
    for token in _TOKEN.findall(text):
        if _IS_CJK.match(token):
            terms.extend(_cjk_terms(token))
        elif token not in STOP_WORDS and (len(token) > 1 or token.isdigit()):
            terms.append(token)
    return list(dict.fromkeys(terms))


def _cjk_terms(run: str) -> list[str]:
    terms: list[str] = []
    for piece in _CJK_STOP.split(run):
        if len(piece) == 1:
            terms.append(piece)
        else:
            terms.extend(piece[i : i + 2] for i in range(len(piece) - 1))
    return terms


def index_text(text: str) -> str:
    """The text as stored in the FTS index: its terms separated by spaces."""
    return " ".join(search_terms(text))


def fts_query(terms: list[str]) -> str:
    """An FTS5 MATCH expression that ORs the quoted terms (quotes stop operator injection)."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def coverage(query_terms: list[str], entry_terms: set[str]) -> float:
    """Share of the query's terms that the entry contains (prefix match for English stems)."""
    if not query_terms:
        return 0.0
    hits = sum(1 for t in query_terms if t in entry_terms or _stem_hit(t, entry_terms))
    return hits / len(query_terms)


def _stem_hit(term: str, entry_terms: set[str]) -> bool:
    # "refunds" / "refund", "delivered" / "delivery": compare a shared stem of 5+ letters
    if _IS_CJK.match(term) or len(term) < 5:
        return False
    stem = term[:5]
    return any(e.startswith(stem) for e in entry_terms)
