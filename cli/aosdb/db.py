"""Connections with errors turned into one readable line."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import psycopg

from aosdb.config import describe_dsn, redact
from aosdb.errors import AosdbError


def error_line(exc: psycopg.Error) -> str:
    """SQLSTATE, message and constraint of a database error, on one line."""
    diag = exc.diag
    parts = [diag.message_primary or str(exc).strip().splitlines()[0]]
    if diag.constraint_name:
        parts.append(f"constraint {diag.constraint_name}")
    if diag.sqlstate:
        parts.append(f"SQLSTATE {diag.sqlstate}")
    return redact(" | ".join(parts))


def connect_raw(dsn: str, autocommit: bool = False) -> psycopg.Connection:
    """A connection the caller closes; failing to connect is one readable line."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        # libpq's message spans lines (the cause, then a hint): keep all of it, on one line.
        reason = redact(" ".join(part.strip() for part in str(exc).splitlines() if part.strip()) or "connection failed")
        raise AosdbError(f"cannot connect to {describe_dsn(dsn)}: {reason}") from None
    except psycopg.ProgrammingError as exc:  # the DSN itself does not parse
        raise AosdbError(f"invalid DSN: {redact(str(exc).strip())}") from None


# A relation, function or schema that does not exist: on a database without aosdb's schemas,
# the answer is to migrate it, not to read PostgreSQL's message.
_MISSING_OBJECT = ("42P01", "42883", "3F000")


def is_migrated(dsn: str) -> bool:
    """Whether the database holds aosdb's schemas (a fresh connection: the caller's may be aborted)."""
    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            return conn.execute("SELECT to_regnamespace('aos') IS NOT NULL AND to_regnamespace('activity') IS NOT NULL"
                                " AND to_regclass('aos.contract_tables') IS NOT NULL").fetchone()[0]
    except psycopg.Error:
        return True  # cannot tell: keep the server's own message


def not_migrated(dsn: str) -> AosdbError:
    return AosdbError(f"the database {describe_dsn(dsn)} is not migrated: run `aosdb migrate` first", exit_code=2)


@contextmanager
def connect(dsn: str, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    conn = connect_raw(dsn, autocommit=autocommit)
    try:
        yield conn
    except psycopg.Error as exc:
        if exc.sqlstate in _MISSING_OBJECT and not is_migrated(dsn):
            raise not_migrated(dsn) from None
        raise AosdbError(error_line(exc)) from None
    finally:
        conn.close()


@contextmanager
def throwaway_database(dsn: str, prefix: str, keep: bool = False) -> Iterator[str]:
    """A new, empty database on the same server; dropped afterwards unless keep."""
    import secrets

    from aosdb.config import with_dbname

    name = f"{prefix}_{secrets.token_hex(4)}"
    with connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_dbname(dsn, name)
    finally:
        if not keep:
            with connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
