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
        slug = raw.get("slug")
        if not isinstance(slug, str) or not _SLUG.match(slug):
            result.problems.append(f"{where}: slug must be lower-case letters, digits and dashes")
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
                entry = _translation(raw[lang], slug, lang, where, result.problems)
                if entry:
                    result.entries.append(entry)
    return result


def _translation(
    raw: object, slug: str, lang: str, where: str, problems: list[str]
) -> FaqEntry | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: [{lang}] must be a table")
        return None
    question, answer, keywords = raw.get("question"), raw.get("answer"), raw.get("keywords", "")
    if not isinstance(question, str) or not question.strip():
        problems.append(f"{where}: [{lang}] question is missing")
        return None
    if not isinstance(answer, str) or not answer.strip():
        problems.append(f"{where}: [{lang}] answer is missing")
        return None
    if len(answer) > MAX_ANSWER:
        problems.append(f"{where}: [{lang}] answer is longer than {MAX_ANSWER} characters")
        return None
    if not isinstance(keywords, str):
        problems.append(f"{where}: [{lang}] keywords must be a string")
        return None
    return FaqEntry(
        id=0,
        slug=slug,
        lang=lang,
        question=question.strip(),
        answer=answer.strip(),
        keywords=keywords.strip(),
    )
