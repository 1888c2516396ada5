# ServiceScore — two commands on a fresh clone: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DBT := $(VENV)/bin/dbt
export SERVICESCORE_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(SERVICESCORE_DATA_DIR)/dagster_home
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: setup manifest run test test-fast ui lint sqlfluff demo clean bench browser docs

## setup: create or refresh .venv with the pinned dependencies, prepare the dbt manifest, install chromium
setup: $(STAMP) manifest browser

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

manifest: $(STAMP)
	cd dbt_project && ../$(DBT) parse --quiet --profiles-dir . --target-path target

## browser: Debian's chromium for the UI test (tests/test_ui_browser.py); idempotent, never fails the set-up
browser:
	@scripts/install_browser.sh

## docs: the dbt docs site (project + warehouse catalog) under $(SERVICESCORE_DATA_DIR)/reports/dbt_docs
docs: setup
	cd dbt_project && ../$(PY) -m ingestion.organisation ../$(DBT) docs generate --static --quiet --profiles-dir . \
		--target-path $(SERVICESCORE_DATA_DIR)/reports/dbt_docs --log-path $(SERVICESCORE_DATA_DIR)/reports/dbt_docs/logs
	@echo "dbt docs: $(SERVICESCORE_DATA_DIR)/reports/dbt_docs/static_index.html (one file, open it in a browser)"

## run: generate demo data if the landing folder is empty and materialize the whole graph once
run: setup
	$(PY) -m orchestration.cli run

## TEST_WORKERS: pytest-xdist workers of `make test` (files are spread over them, a file stays in one worker)
TEST_WORKERS ?= 2
## test: the whole test suite (dbt builds inside it), ruff's lint and ruff's formatting, sqlfluff on the dbt models
test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) --no-print-directory sqlfluff
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile

## test-fast: the unit tier and ruff: every test marked neither `dbt` nor `slow` (pyproject.toml), so no dbt and no
## pipeline run (tests/conftest.py fails a test of this tier that starts one)
test-fast: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) --no-print-directory sqlfluff
	$(VENV)/bin/pytest -m "not dbt and not slow"

## ui: the Dagster UI on the same code location (workspace.yaml), http://127.0.0.1:3000
ui: setup
	mkdir -p $(DAGSTER_HOME)
	$(PY) -c "from orchestration.cli import prepare_home; from ingestion.paths import DataDir; prepare_home(DataDir.from_env())"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) --no-print-directory sqlfluff

## sqlfluff: lint the dbt models (rules in dbt_project/.sqlfluff, skipped files in dbt_project/.sqlfluffignore). The
## dbt templater compiles each model as dbt does, against an empty throw-away warehouse and target folder, so the
## result never depends on data/ and never waits for a running pipeline's lock; the clock is fixed because no
## rule depends on it. `sqlfluff fix` with the same environment rewrites what it can.
SQLFLUFF_ENV = SERVICESCORE_DATA_DIR="$$tmp" DBT_TARGET_PATH="$$tmp/target" DBT_LOG_PATH="$$tmp/logs" \
	SERVICESCORE_DBT_TIMEZONE=Asia/Shanghai SERVICESCORE_DBT_WORKDAY_START=09:00 SERVICESCORE_DBT_WORKDAY_END=18:00
sqlfluff: $(STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cd dbt_project && \
		$(SQLFLUFF_ENV) ../$(VENV)/bin/sqlfluff lint models --processes 2

demo: setup
	$(PY) -m orchestration.cli demo

## external-pwc / external-servicenow: map a real export (../shared/external, or $SERVICESCORE_EXTERNAL_DIR) and run
## the whole pipeline on it into data/external/<export>: load, dbt, checks, publication (docs/bring_your_own_data.md)
.PHONY: external-pwc external-servicenow
external-pwc: setup
	$(PY) -m orchestration.export_pipeline pwc

external-servicenow: setup
	$(PY) -m orchestration.export_pipeline servicenow

clean:
	rm -rf $(SERVICESCORE_DATA_DIR)

## bench: full pipeline from empty, nightly run with one new day and the raw-DuckDB floor (benchmarks/floor.sql)
## on the same landing files; `make bench TIER=L REPEAT=3`; writes $(SERVICESCORE_DATA_DIR)/bench/<tier>/bench.{json,md}
TIER ?= M
REPEAT ?= 1
bench: setup
	$(PY) benchmarks/run.py --tier $(TIER) --repeat $(REPEAT) --root $(SERVICESCORE_DATA_DIR)/bench
