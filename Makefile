# Vigil: the README's commands. Every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vigil-installed
export VIGIL_HOME ?= $(CURDIR)/data
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export GX_ANALYTICS_ENABLED := false
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup run serve test test-fast bench airflow lint clean

setup: $(STAMP)

# Re-installs only when the dependency set changes. torch first, by itself, so pip takes the
# CPU wheel on this machine's disk instead of a CUDA build.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade 'pip>=25'
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[spark,dev]'
	@touch $(STAMP)
	@echo "setup: installed into $(VENV)"

run: setup
	$(BIN)/vigil pipeline

# The scoring service on 127.0.0.1:8700 (after `make run`: the champion and the online store).
serve: setup
	$(BIN)/vigil serve

# Four workers on two cores: the slow tests mostly wait (Airflow schedulers, servers, subprocesses),
# so the suite is wait-bound; see docs/benchmarks.md#test-suite for two vs four workers.
test: setup
	$(BIN)/python -m pytest -q -n 4 --dist loadfile --durations=25

# Everything that needs no dbt, Spark, Airflow or browser run and is not slow or fault injection.
test-fast: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile \
		-m "not slow and not dbt and not spark and not airflow and not browser and not faults"

bench: setup
	$(BIN)/python -m bench

airflow: setup
	$(BIN)/python -m vigil.orchestration.ui

# Every check runs, so one run lists every problem; the target fails if any check failed.
lint: setup
	@status=0; \
	$(BIN)/ruff check vigil training dags tests bench sim || status=1; \
	$(BIN)/lint-imports --no-cache || status=1; \
	$(BIN)/python tests/support/check_dag_imports.py || status=1; \
	$(BIN)/python tests/support/check_test_names.py || status=1; \
	exit $$status

clean:
	rm -rf $(VIGIL_HOME)
