"""`aosdb test`: pg_prove over sql/tests in a fresh, migrated, throwaway database.

Both tools are checked before anything is created: pg_prove on PATH, pgTAP in the server.
The helpers the tests share (sql/test_helpers/*.sql, the schema aosdb_test) are installed once
in that database, after the migrations and pgTAP; they are no tests, so pg_prove never sees them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import psycopg
from psycopg.conninfo import conninfo_to_dict

from aosdb import migrations
from aosdb.config import sql_dir
from aosdb.db import connect, error_line, throwaway_database
from aosdb.errors import AosdbError

PG_PROVE_PACKAGE = "libtap-parser-sourcehandler-pgtap-perl"
# Debian installs a server's extensions here; any other server is a wheel or a build of its own.
_DEBIAN_SHARE = "/usr/share/postgresql/"

_LIBPQ_ENV = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD",
              "dbname": "PGDATABASE", "sslmode": "PGSSLMODE"}


def libpq_env(dsn: str) -> dict[str, str]:
    """The environment that points psql-based tools (pg_prove, pg_dump) at dsn."""
    env = dict(os.environ)
    for key, value in conninfo_to_dict(dsn).items():
        if key in _LIBPQ_ENV and value is not None:
            env[_LIBPQ_ENV[key]] = str(value)
    return env


def _pgtap_missing(dsn: str) -> str | None:
    """None when the server can CREATE EXTENSION pgtap, else the one-line reason with the install hint."""
    with connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pgtap'").fetchone():
            return None
        major = conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()[0]
        try:
            # Superuser only; it names the server's real share directory, wherever it was installed.
            row = conn.execute("SELECT setting FROM pg_config WHERE name = 'SHAREDIR'").fetchone()
            sharedir = row[0] if row else None
        except psycopg.Error:
            sharedir = None
    missing = f"pgTAP is not available in this PostgreSQL {major} server"
    if sharedir is None or sharedir.startswith(_DEBIAN_SHARE):
        return f"{missing}: install the Debian package postgresql-{major}-pgtap (make setup)"
    return (f"{missing}: copy pgTAP's files (pgtap.control, pgtap--*.sql, e.g. from the Debian package "
            f"postgresql-15-pgtap) into {sharedir}/extension")


def install_helpers(dsn: str) -> None:
    """Run every sql/test_helpers/*.sql in name order, each in one transaction; none is a test."""
    helpers = sql_dir() / "test_helpers"
    files = sorted(helpers.glob("*.sql")) if helpers.is_dir() else []
    with connect(dsn, autocommit=True) as conn:
        for path in files:
            try:
                with conn.transaction():
                    conn.execute(path.read_text())
            except psycopg.Error as exc:
                raise AosdbError(f"test helpers {path.name}: {error_line(exc)}") from None


def run_pgtap(dsn: str, keep: bool = False) -> int:
    pg_prove = shutil.which("pg_prove")
    if not pg_prove:
        raise AosdbError(f"pg_prove not found: run `make setup` (Debian package {PG_PROVE_PACKAGE})")
    missing = _pgtap_missing(dsn)
    if missing:
        raise AosdbError(missing)
    tests = sql_dir() / "tests"
    with throwaway_database(dsn, "aosdb_test", keep=keep) as test_dsn:
        migrations.migrate(test_dsn)
        with connect(test_dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pgtap")
        install_helpers(test_dsn)
        if keep:
            print(f"keeping test database {conninfo_to_dict(test_dsn)['dbname']}", file=sys.stderr)
        cmd = [pg_prove, "--ext", ".sql", "--recurse", "--shuffle", "--failures", str(tests)]
        return subprocess.run(cmd, env=libpq_env(test_dsn), check=False).returncode
