"""The dependency rule from the design notes, checked on the source."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SQL = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+TABLE)\b",
    re.DOTALL,
)


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        (
            "bot",
            {"telegram", "sqlite_utils", "sqlite3", "aiohttp", "handlers", "storage", "carebot"},
        ),
        ("storage", {"telegram", "aiohttp", "handlers", "carebot"}),
        ("handlers", {"sqlite_utils", "sqlite3", "aiohttp", "carebot"}),
    ],
)
def test_layers_import_only_what_they_may(package: str, forbidden: set[str]) -> None:
    for path in (ROOT / package).rglob("*.py"):
        wrong = imported_modules(path) & forbidden
        assert not wrong, f"{path.relative_to(ROOT)} imports {', '.join(sorted(wrong))}"


def test_sql_lives_in_storage() -> None:
    for package in ("bot", "handlers", "carebot"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    assert not SQL.search(node.value), f"SQL in {path.relative_to(ROOT)}"
