"""Reading FAQ files (``carebot faq import faq.toml``): good entries load, bad ones are named.

Format::

    [[entry]]
    slug = "delivery-time"
    [entry.en]
    question = "How long does delivery take?"
    keywords = "delivery shipping arrive"      # optional, extra words customers use
    answer = "Orders leave our warehouse ..."
    [entry.zh]
    question = "..."
    answer = "..."
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import SUPPORTED_LANGUAGES
from bot.models import FaqEntry

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
MAX_ANSWER = 3500  # leaves room for the question heading inside Telegram's 4096 characters


@dataclass
class FaqFile:
    entries: list[FaqEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def parse_faq_file(path: Path) -> FaqFile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return FaqFile(problems=[f"{path}: cannot read: {exc}"])
    except tomllib.TOMLDecodeError as exc:
        return FaqFile(problems=[f"{path}: not valid TOML: {exc}"])
    return parse_faq_data(data, str(path))


class FaqProblem(ValueError):
    """What is wrong with one language of an entry, naming the field at fault ("slug",
    "lang", "question", "keywords" or "answer"; "entry" when it is not even a table)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field_name = field_name


def check_slug(slug: object) -> str:
    if not isinstance(slug, str) or not _SLUG.match(slug):
        raise FaqProblem("slug", "slug must be lower-case letters, digits and dashes")
    return slug


def faq_entry(slug: object, lang: str, raw: object) -> FaqEntry:
    """One language of an entry (``raw``: question, answer, optional keywords), checked by
    the rules a FAQ file is read with. Raises FaqProblem."""
    slug = check_slug(slug)
    if lang not in SUPPORTED_LANGUAGES:
        raise FaqProblem("lang", f"language must be one of {', '.join(SUPPORTED_LANGUAGES)}")
    if not isinstance(raw, dict):
        raise FaqProblem("entry", "must be a table")
    question, answer, keywords = raw.get("question"), raw.get("answer"), raw.get("keywords", "")
    if not isinstance(question, str) or not question.strip():
        raise FaqProblem("question", "question is missing")
    if not isinstance(answer, str) or not answer.strip():
        raise FaqProblem("answer", "answer is missing")
    if len(answer) > MAX_ANSWER:
        raise FaqProblem("answer", f"answer is longer than {MAX_ANSWER} characters")
    if not isinstance(keywords, str):
        raise FaqProblem("keywords", "keywords must be a string")
    return FaqEntry(
        id=0,
        slug=slug,
        lang=lang,
        question=question.strip(),
        answer=answer.strip(),
        keywords=keywords.strip(),
    )


def parse_faq_data(data: dict[str, object], source: str) -> FaqFile:
    result = FaqFile()
    raw_entries = data.get("entry", [])
    if not isinstance(raw_entries, list):
        result.problems.append(f"{source}: expected [[entry]] tables")
        return result
    seen: set[str] = set()
    for number, raw in enumerate(raw_entries, start=1):
        where = f"{source}: entry {number}"
        if not isinstance(raw, dict):
            result.problems.append(f"{where}: not a table")
            continue
        try:
            slug = check_slug(raw.get("slug"))
        except FaqProblem as problem:
            result.problems.append(f"{where}: {problem}")
            continue
        where = f"{where} ({slug})"
        if slug in seen:
            result.problems.append(f"{where}: duplicate slug, first one kept")
            continue
        seen.add(slug)
        unknown = set(raw) - {"slug", *SUPPORTED_LANGUAGES}
        if unknown:
            result.problems.append(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        for lang in SUPPORTED_LANGUAGES:
            if lang in raw:
                try:
                    result.entries.append(faq_entry(slug, lang, raw[lang]))
                except FaqProblem as problem:
                    result.problems.append(f"{where}: [{lang}] {problem}")
    return result
