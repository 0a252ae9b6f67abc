# abm-stream. `make run` and `make test` are all a newcomer needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
PG_BIN := $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb))
PROMETHEUS_BIN := $(shell command -v promtool 2>/dev/null)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast lint format bench instructions valgrind postgres prometheus chromium schemas clean wrk

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## Create the virtualenv and install abm-stream with its dev tools

postgres: ## Install PostgreSQL's server binaries if missing (the tests start their own cluster)
ifeq ($(PG_BIN),)
	@echo "installing PostgreSQL (Debian package postgresql)"
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
endif

prometheus: ## Install Prometheus and promtool if missing (the tests check rules and scrape)
ifeq ($(PROMETHEUS_BIN),)
	@echo "installing Prometheus (Debian package prometheus)"
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
endif

run: install ## Start everything on the embedded defaults and simulate 50 accounts
	$(BIN)/abm up --simulate 50

chromium: ## Install Debian's Chromium if missing (the tag's browser test drives it)
	@test -x /usr/bin/chromium || { echo "installing Chromium (Debian package chromium)"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: install postgres prometheus chromium ## Run the whole suite on the real broker, PostgreSQL, Prometheus and Chromium
	$(BIN)/pytest

test-fast: install ## Unit tests only (no broker, no database)
	$(BIN)/pytest tests/unit

lint: install ## ruff, formatting, mypy (strict) and the JSON Schema drift check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/abm schemas --check

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schemas: install ## Re-export the event JSON Schemas after changing the models
	$(BIN)/abm schemas

wrk: ## Install the wrk HTTP load generator if missing (the API benchmark uses it)
	@command -v wrk >/dev/null || { $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
		$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

bench: install postgres wrk ## Throughput benchmarks; results go to docs/benchmarks.md
	$(BIN)/python -m bench

valgrind: ## Install valgrind if missing (make instructions counts with it)
	@command -v valgrind >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }

instructions: install valgrind ## The funnel core's instructions per event (REF=commit to compare with)
	$(BIN)/python -m bench.instructions $(if $(REF),--against $(REF))

clean: ## Remove the virtualenv and local state
	rm -rf $(VENV) var
