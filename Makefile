# ordergate: `make run` serves on $PORT (default 8080); `make test` runs every check.
# Both set up .venv on first use (and again when setup.cfg changes).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_FLAGS ?= --quiet --disable-pip-version-check

.PHONY: run test lint bench check record clean

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

# Re-record the exchange cassettes against Binance's real test endpoints. Spot testnet
# (testnet.binance.vision) and USD-M futures demo trading (demo.binance.com) have separate keys:
#   BINANCE_API_KEY=<spot testnet key> BINANCE_API_SECRET=... make record RECORD=spot
#   BINANCE_API_KEY=<demo key> BINANCE_API_SECRET=... make record RECORD=futures
# Keys, signatures and timestamps are scrubbed before anything is written.
RECORD ?= spot or futures
record: $(VENV)/.test-deps
	@test -n "$$BINANCE_API_KEY" -a -n "$$BINANCE_API_SECRET" || \
		{ echo "make record needs BINANCE_API_KEY and BINANCE_API_SECRET (testnet/demo keys)"; exit 2; }
	ORDERGATE_RECORD=1 $(BIN)/python -m pytest tests/brokers -m "vcr and recordable" -k "$(RECORD)" --record-mode=rewrite
	$(BIN)/python -m pytest tests/brokers/test_cassettes_clean.py

clean:
	rm -rf $(VENV) build *.egg-info
