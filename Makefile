# Entry points of the project. `make run` and `make test` work on a fresh machine: they install what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_PY := $(CURDIR)/$(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: help install kafka-up kafka-down lint test run chaos bench audit

help:
	@echo "make run         validate the example claims end to end on a local Kafka broker"
	@echo "make test        install, start a throwaway broker, lint and run every test"
	@echo "make install     create .venv with the project (editable) and the dev tools"
	@echo "make kafka-up    start (or reuse) the local broker on KAFKA_PORT (default 9092)"
	@echo "make kafka-down  stop it"
	@echo "make lint        ruff and mypy --strict"
	@echo "make chaos       fault injection on a real broker (kill -9, broker restart/outage, rebalances, SIGTERM, claim history); reports/chaos.json"
	@echo "make bench       benchmarks on a real broker (BENCH_CLAIMS=<n> for a quicker run); reports/bench.json"
	@echo "make audit       pip-audit of constraints.txt (exit 3: no vulnerability source answered)"

# Reinstall when the dependency lists change; constraints.txt pins every version that CI and `make test` use.
$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

install: $(INSTALLED)

kafka-up: install
	@KAFKA_PYTHON=$(VENV_PY) scripts/kafka-local start

kafka-down:
	@KAFKA_PYTHON=$(VENV_PY) scripts/kafka-local stop

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy --strict worker schemas rules adapters

# scripts/test starts its own broker on a free port, runs lint and pytest, and stops the broker whatever happens.
test: install
	@scripts/test

run: install
	@scripts/run-demo

chaos: install
	@scripts/chaos

bench: install
	@scripts/bench

audit:
	@scripts/audit
