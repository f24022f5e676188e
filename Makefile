# ordergate: `make run` serves on $PORT (default 8080); `make test` runs every check.
# Both set up .venv on first use (and again when setup.cfg changes).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_FLAGS ?= --quiet --disable-pip-version-check

.PHONY: run test lint bench profile check record mutate clean

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

# The performance table (see the README's Performance section); BENCH_QUICK=1 for a smoke run.
bench: $(VENV)/.test-deps
	$(BIN)/python -m bench.suite

# Where a served signal's time goes: py-spy samples the server under load (PROFILE_SECONDS=10).
profile: $(VENV)/.test-deps
	$(BIN)/python -m pip install $(PIP_FLAGS) py-spy==0.4.3
	$(BIN)/python -m bench.profile

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

# Mutation testing over the money path (the modules are listed under [mutmut] in setup.cfg): mutmut changes
# one line at a time and reruns the tests that reach it; every change some test notices is "killed".
#   make mutate                                         every money-path module (about two hours on 2 cores)
#   make mutate MUTATE=ordergate/stages/precision.py    one module (minutes: a pass of the suite, then its changes)
# Prints killed/timeout/survived per module, the score, and each survivor as file:line with its change
# (also in mutants/report.txt); fails while anything survives. `.venv/bin/mutmut show NAME` shows one.
MUTATE ?=
mutate: $(VENV)/.test-deps
	rm -rf mutants
	$(BIN)/mutmut run $(if $(MUTATE),'$(subst /,.,$(basename $(MUTATE))).*')
	$(BIN)/python scripts/mutate_report.py --output mutants/report.txt $(MUTATE)

clean:
	rm -rf $(VENV) build *.egg-info mutants
