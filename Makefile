# aosdb: `make run` for the guided tour, `make test` for every test suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
AOSDB := $(VENV)/bin/aosdb
PYTEST := $(VENV)/bin/pytest
# Debian packages: the PostgreSQL 15 server and the test and lint tools.
APT_PACKAGES := postgresql-15 postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl postgresql-15-plpgsql-check

.PHONY: help setup system-packages run test pgtap pytest lint bench db-start db-stop clean

help:
	@echo "make run    set up, start the embedded database, migrate, show what exists, run the demo"
	@echo "make test   set up, then pg_prove, pytest, lint, the SDSR scenarios and the contract check"
	@echo "make setup  install missing Debian packages and the .venv (idempotent)"
	@echo "make lint   sqlfluff, squawk and plpgsql_check"
	@echo "make bench  engines against bare tables, server-bound (pgbench): ratios per workload and client count"

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

db-start: setup
	$(AOSDB) db start

db-stop:
	@test -x $(AOSDB) && $(AOSDB) db stop || true

run: db-start
	$(AOSDB) migrate
	$(AOSDB) status
	$(AOSDB) demo

# Every suite runs even when an earlier one fails; the exit status says whether all passed.
test: db-start
	@status=0; \
	echo "== pg_prove (aosdb test)"; $(AOSDB) test || status=1; \
	echo "== pytest"; $(PYTEST) -q || status=1; \
	echo "== lint (aosdb lint)"; $(AOSDB) lint || status=1; \
	url=$$($(AOSDB) db url); ci="$${url%/aosdb}/aosdb_ci"; \
	echo "== SDSR scenarios (aosdb scenario run scenarios/, in a fresh database aosdb_ci)"; \
	{ psql -q "$$url" -c 'DROP DATABASE IF EXISTS aosdb_ci WITH (FORCE)' -c 'CREATE DATABASE aosdb_ci' \
	  && $(AOSDB) migrate --dsn "$$ci" >/dev/null && $(AOSDB) scenario run scenarios/ --dsn "$$ci"; } || status=1; \
	echo "== contract check (aosdb check . --dsn aosdb_ci)"; $(AOSDB) check . --dsn "$$ci" || status=1; \
	exit $$status

pgtap: db-start
	$(AOSDB) test

pytest: setup
	$(PYTEST) -q

lint: db-start
	$(AOSDB) lint

bench: db-start
	$(VENV)/bin/python bench/engines.py

clean: db-stop
	rm -rf .aosdb
