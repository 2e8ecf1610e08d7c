# autosettle: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## a short demo day: fast settlement cycle and a cashier paying every few seconds
	$(BIN)/autosettle db upgrade
	$(BIN)/autosettle demo seed --once
	AUTOSETTLE_DEMO_TRAFFIC_INTERVAL_S=$${AUTOSETTLE_DEMO_TRAFFIC_INTERVAL_S:-3} \
	AUTOSETTLE_INTRADAY_INTERVAL_S=$${AUTOSETTLE_INTRADAY_INTERVAL_S:-60} \
	AUTOSETTLE_SCHEDULER_TICK_S=$${AUTOSETTLE_SCHEDULER_TICK_S:-5} \
	$(BIN)/autosettle serve

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench || true
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
