"""`aosdb test`: pg_prove over sql/tests in a fresh, migrated, throwaway database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from psycopg.conninfo import conninfo_to_dict

from aosdb import migrations
from aosdb.config import sql_dir
from aosdb.db import connect, throwaway_database
from aosdb.errors import AosdbError

_LIBPQ_ENV = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD",
              "dbname": "PGDATABASE", "sslmode": "PGSSLMODE"}


def libpq_env(dsn: str) -> dict[str, str]:
    """The environment that points psql-based tools (pg_prove, pg_dump) at dsn."""
    env = dict(os.environ)
    for key, value in conninfo_to_dict(dsn).items():
        if key in _LIBPQ_ENV and value is not None:
            env[_LIBPQ_ENV[key]] = str(value)
    return env


def run_pgtap(dsn: str, keep: bool = False) -> int:
    pg_prove = shutil.which("pg_prove")
    if not pg_prove:
        raise AosdbError("pg_prove not found: run `make setup` (Debian package libtap-parser-sourcehandler-pgtap-perl)")
    tests = sql_dir() / "tests"
    with throwaway_database(dsn, "aosdb_test", keep=keep) as test_dsn:
        migrations.migrate(test_dsn)
        with connect(test_dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pgtap")
        if keep:
            print(f"keeping test database {conninfo_to_dict(test_dsn)['dbname']}", file=sys.stderr)
        cmd = [pg_prove, "--ext", ".sql", "--recurse", "--shuffle", "--failures", str(tests)]
        return subprocess.run(cmd, env=libpq_env(test_dsn), check=False).returncode
