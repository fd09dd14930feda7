"""Reading import files (CSV or JSON Lines, optionally gzipped) and running imports."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.config import Config
from bot.importing import (
    UNREADABLE,
    ColumnMap,
    ImportSummary,
    Problem,
    ProductRow,
    import_rows,
    parse_product,
    product_columns,
)
from storage.imports import ImportRunLog, OrderImportWriter, ProductCatalogWriter
from storage.repositories import Repositories

Row = Mapping[str, str | None]


class ImportFileError(Exception):
    """The file as a whole cannot be imported (missing, wrong format, missing columns)."""


@dataclass
class OpenedFile:
    """A text stream over the file plus the raw byte position, for a progress bar."""

    raw: IO[bytes]
    text: io.TextIOWrapper
    size: int
    format: str

    def position(self) -> int:
        return self.raw.tell()

    def close(self) -> None:
        self.text.close()
        self.raw.close()


def open_import_file(path: Path) -> OpenedFile:
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot open: {exc.strerror}") from None
    size = path.stat().st_size
    name = path.name.lower()
    stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw)) if name.endswith(".gz") else raw
    base = name.removesuffix(".gz")
    fmt = "jsonl" if base.endswith((".jsonl", ".ndjson", ".json")) else "csv"
    # utf-8-sig drops a spreadsheet's byte-order mark; bad bytes become U+FFFD, not a crash
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    return OpenedFile(raw, text, size, fmt)


def numbered_rows(opened: OpenedFile, cols: ColumnMap) -> Iterator[tuple[int, Row]]:
    """(line number where the row starts, row); a CSV header is line 1."""
    if opened.format == "jsonl":
        yield from _jsonl_rows(opened.text, cols)
        return
    lines = _LineCounter(opened.text)
    reader = csv.DictReader(lines)
    missing = cols.missing(reader.fieldnames or [])
    if missing:
        raise ImportFileError(
            f"missing column(s) {', '.join(missing)} (found: {', '.join(reader.fieldnames or [])})"
            "; map them with --map field=Column"
        )
    while True:
        lines.row_start = None
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield lines.row_start or lines.count, {UNREADABLE: f"not readable as CSV ({exc})"}
        else:
            yield lines.row_start or lines.count, row


class _LineCounter:
    """Feeds the csv reader and remembers on which physical line each row starts.

    The csv module skips blank lines and lets quoted fields span lines, so its own line
    count cannot give a row's first line.
    """

    def __init__(self, text: Iterable[str]) -> None:
        self.lines = iter(text)
        self.count = 0
        self.row_start: int | None = None

    def __iter__(self) -> _LineCounter:
        return self

    def __next__(self) -> str:
        line = next(self.lines)
        self.count += 1
        if self.row_start is None and line.strip():
            self.row_start = self.count
        return line


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _jsonl_rows(text: io.TextIOWrapper, cols: ColumnMap) -> Iterator[tuple[int, Row]]:
    checked = False
    for number, raw_line in enumerate(text, start=1):
        if not raw_line.strip():
            continue
        try:
            data: Any = json.loads(raw_line, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)[:80]
            yield number, {UNREADABLE: f"not valid JSON ({reason})"}
            continue
        if not isinstance(data, dict):
            yield number, {UNREADABLE: "not a JSON object"}
            continue
        if not checked:
            missing = cols.missing(data)
            if missing:
                raise ImportFileError(
                    f"line {number}: missing field(s) {', '.join(missing)} (found: "
                    f"{', '.join(data)}); map them with --map field=name"
                )
            checked = True
        yield number, {k: None if v is None else str(v) for k, v in data.items()}


def run_order_import(
    repos: Repositories,
    path: Path,
    *,
    config: Config,
    cols: ColumnMap,
    profile: str,
    clock: Clock,
    on_progress: Callable[[int], None] | None = None,
    on_problem: Callable[[Problem], None] | None = None,
) -> tuple[ImportSummary, int]:
    """Import one file; returns the summary and the file size in bytes."""
    opened = open_import_file(path)
    runs = ImportRunLog(repos.db)
    run_id = runs.start(str(path), profile, clock.now())
    try:
        last = 0

        def progress(_line: int) -> None:
            nonlocal last
            position = opened.position()
            if on_progress and position != last:
                on_progress(position - last)
                last = position

        writer = OrderImportWriter(
            repos.db,
            rules=config.catalog.rules,
            currency=config.shop.currency,
            source="import",
            now=clock.now(),
        )
        with writer:
            summary = import_rows(
                numbered_rows(opened, cols),
                cols,
                ZoneInfo(config.shop.timezone),
                writer,
                on_line=progress,
                on_problem=on_problem,
            )
    finally:
        opened.close()
    runs.finish(run_id, summary, clock.now())
    return summary, opened.size


@dataclass
class ProductImport:
    created: int
    updated: int
    problems: list[str]


def run_product_import(repos: Repositories, path: Path, clock: Clock) -> ProductImport:
    """Load a product catalog (CSV: sku, name, category, price); bad rows are listed."""
    opened = open_import_file(path)
    problems: list[str] = []
    good: list[ProductRow] = []
    try:
        reader = csv.DictReader(opened.text)
        try:
            cols = product_columns(reader.fieldnames or [])
        except ValueError as exc:
            raise ImportFileError(str(exc)) from None
        line = 1
        for row in reader:
            try:
                good.append(parse_product(row, cols))
            except ValueError as exc:
                problems.append(f"line {line + 1}: {exc}")
            line = reader.line_num
    finally:
        opened.close()
    created, updated = ProductCatalogWriter(repos.db, clock.now()).upsert(good)
    return ProductImport(created, updated, problems)
