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


@contextmanager
def connect(dsn: str, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    conn = connect_raw(dsn, autocommit=autocommit)
    try:
        yield conn
    except psycopg.Error as exc:
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
