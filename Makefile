# One command per gate, the same for people and CI.
#   make demo   — set up everything and start the demo (gateway + mock Ollama + a key)
#   make test   — set up everything and run every gate: format, lint, types, tests
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& echo $$p && break; done)
# Python code the gates check (bench/ joins when present).
CODE := src tests $(wildcard bench)

.PHONY: setup system-deps demo test format format-check lint typecheck pytest docs bench clean

$(BIN)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

setup: $(BIN)/.installed

# Debian packages the browser and proxy tests use (installed when we are root).
system-deps:
	@bash scripts/system-deps.sh

demo: setup
	$(BIN)/neuronetz-gateway demo

format:
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

format-check: setup
	$(BIN)/ruff format --check $(CODE)

lint: setup
	$(BIN)/ruff check $(CODE)

typecheck: setup
	$(BIN)/mypy src

pytest: setup system-deps
	$(BIN)/pytest -q $(PYTEST_ARGS)

test: format-check lint typecheck pytest

docs: setup
	$(BIN)/mkdocs build --strict

bench: setup
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache site
