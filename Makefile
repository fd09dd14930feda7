# Quick start: `make demo` (try the bot) and `make test` (every test and check).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian's Chromium for the browser tests (tests/browser): Playwright drives it, and never
# downloads a browser of its own. CJK and emoji fonts, or Chinese text and the bot's emoji show
# as boxes in screenshots.
CHROMIUM := /usr/bin/chromium

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# As root, or through sudo for a user.
AS_ROOT := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(CHROMIUM):
	$(AS_ROOT) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(AS_ROOT) apt-get install -y -qq --no-install-recommends \
		chromium fonts-wqy-microhei fonts-noto-color-emoji >/dev/null

## Install, load the demo shop and start the bot (Telegram with a token, else the terminal sandbox).
demo: $(STAMP)
	$(BIN)/carebot demo

## Install (Python packages, and Chromium for the browser tests) and run every test, ruff and mypy.
test: $(STAMP) $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

## Benchmarks (not part of `make test`).
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
