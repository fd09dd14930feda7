"""Reading import files (CSV or JSON Lines, optionally gzipped) and running imports."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterator, Mapping
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
    """(line number, row) pairs; the header is line 1 of a CSV."""
    if opened.format == "jsonl":
        yield from _jsonl_rows(opened.text)
        return
    reader = csv.DictReader(opened.text)
    missing = cols.missing(reader.fieldnames or [])
    if missing:
        raise ImportFileError(
            f"missing column(s) {', '.join(missing)} (found: {', '.join(reader.fieldnames or [])})"
            "; map them with --map field=Column"
        )
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield line + 1, {UNREADABLE: f"not readable as CSV ({exc})"}
        else:
            yield line + 1, row
        line = reader.line_num


def _jsonl_rows(text: io.TextIOWrapper) -> Iterator[tuple[int, Row]]:
    for number, raw_line in enumerate(text, start=1):
        if not raw_line.strip():
            continue
        try:
            data: Any = json.loads(raw_line)
        except json.JSONDecodeError as exc:
            yield number, {UNREADABLE: f"not valid JSON ({exc.msg})"}
            continue
        if not isinstance(data, dict):
            yield number, {UNREADABLE: "not a JSON object"}
            continue
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
