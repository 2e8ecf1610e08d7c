# autosettle: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint bench mutation mutation-score install clean

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

# pytest runs in PYTEST_WORKERS processes (pytest-xdist; logical: one per CPU thread, 2 on CI;
# PYTEST_WORKERS=0: one process). --dist loadgroup hands tests to whichever worker is free,
# except a group (the browser tests) meant to stay on one: with pytest 9.2 the groups are not
# applied (pytest-xdist issue 1386), harmless. docs/testing.md: times and knobs.
PYTEST_WORKERS ?= logical
test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench || true
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# Mutation testing of src/autosettle/domain/ against tests/unit (config: [tool.mutmut] in
# pyproject.toml; docs/testing.md). Not part of `make test`: it takes minutes. Resumable;
# MUTANTS narrows it, e.g. make mutation MUTANTS='autosettle.domain.money.*'.
MUTATION_CHILDREN ?= 1
mutation: $(STAMP)
	$(BIN)/mutmut run --max-children $(MUTATION_CHILDREN) $(MUTANTS)
	@$(MAKE) --no-print-directory mutation-score

mutation-score: $(STAMP)  ## killed / survived / score per module of the last run
	@$(BIN)/mutmut results --all true | sed -E 's/^ +//; s/\.x[^.]*__mutmut_[0-9]+: /\t/' | \
	awk -F'\t' '$$2 != "not checked" && $$2 != "skipped" { n[$$1]++; \
	  if ($$2 == "killed" || $$2 == "timeout" || $$2 == "caught by type check") k[$$1]++ } \
	  END { for (m in n) printf "%-40s %5d mutants %5d killed %6.1f%%\n", m, n[m], k[m], \
	  100 * k[m] / n[m] | "sort" }'
	@$(BIN)/mutmut results | grep -v ': not checked$$' || true

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache mutants
