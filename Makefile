# ordergate: `make run` serves on $PORT (default 8080); `make test` runs every check.
# Both set up .venv on first use (and again when setup.cfg changes).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_FLAGS ?= --quiet --disable-pip-version-check

.PHONY: run test lint bench check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-deps: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(PIP_FLAGS) -e .
	touch $@

$(VENV)/.test-deps: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[test]'
	touch $(VENV)/.run-deps $@

run: $(VENV)/.run-deps
	$(BIN)/ordergate serve

check: $(VENV)/.run-deps
	$(BIN)/ordergate check

lint: $(VENV)/.test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy ordergate

test: lint
	$(BIN)/python -m pytest

bench: $(VENV)/.test-deps
	$(BIN)/python bench/bench_webhook.py

clean:
	rm -rf $(VENV) build *.egg-info
