"""Versioned migrations (yoyo) and repeatable definitions applied by checksum.

Versioned files live in sql/migrations/NNNN_name.sql with NNNN_name.rollback.sql;
yoyo records them in the aosdb_migrations schema. Repeatable files
(sql/functions/*.sql, then sql/views/*.sql, each in name order) are applied
after them, in one transaction, and only when their checksum changed:
Flyway's repeatable-migration semantics.
"""

from __future__ import annotations

import hashlib
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict

from aosdb.config import sql_dir
from aosdb.db import connect, error_line
from aosdb.errors import AosdbError

META_SCHEMA = "aosdb_migrations"
REPEATABLE_DIRS = ("functions", "views")
# Serialises concurrent `aosdb migrate` runs on one database.
_LOCK_KEY = 7_401_001
# Serialises the creation of the bookkeeping tables (ours and yoyo's): CREATE ... IF NOT EXISTS races.
_SETUP_LOCK_KEY = 7_401_002


@dataclass
class Versioned:
    id: str
    applied_at: str | None


@dataclass
class Repeatable:
    path: str  # relative to sql/, e.g. functions/incident_engine.sql
    checksum: str
    applied_checksum: str | None
    applied_at: str | None

    @property
    def state(self) -> str:
        if self.applied_checksum is None:
            return "pending"
        return "applied" if self.applied_checksum == self.checksum else "changed"


def _ensure_meta(dsn: str) -> None:
    with connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {META_SCHEMA}")
        conn.execute(f"COMMENT ON SCHEMA {META_SCHEMA} IS 'aosdb migration bookkeeping (yoyo and repeatable files).'")
        conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {META_SCHEMA}.repeatable_migrations (
                    path text PRIMARY KEY,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())"""
        )


def _yoyo_uri(dsn: str) -> str:
    """yoyo's URI form of a libpq DSN: every parameter as a query argument, so
    socket paths and odd passwords survive."""
    params = {k: v for k, v in conninfo_to_dict(dsn).items() if v is not None}
    params["schema"] = META_SCHEMA
    return "postgresql+psycopg:///?" + urlencode(params)


@contextmanager
def _backend(dsn: str) -> Iterator:
    from yoyo import get_backend

    with connect(dsn, autocommit=True) as guard:
        guard.execute("SELECT pg_advisory_lock(%s)", (_SETUP_LOCK_KEY,))  # released when guard closes
        _ensure_meta(dsn)
        try:
            backend = get_backend(_yoyo_uri(dsn))
        except psycopg.Error as exc:
            raise AosdbError(error_line(exc)) from None
    try:
        yield backend
    finally:
        backend.connection.close()


def _versioned_migrations():
    from yoyo import read_migrations

    return read_migrations(str(sql_dir() / "migrations"))


def _repeatable_files() -> list[Path]:
    root = sql_dir()
    return [p for d in REPEATABLE_DIRS for p in sorted((root / d).glob("*.sql"))]


def _checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run_yoyo(label, action, *args):
    """Run a yoyo call, turning a failing migration into one readable line that names it."""
    warnings.simplefilter("ignore")  # yoyo warns about nested transactions on psycopg 3
    try:
        return action(*args)
    except psycopg.Error as exc:
        raise AosdbError(f"migration {label} failed: {error_line(exc)}") from None


def migrate(dsn: str) -> tuple[list[str], list[str]]:
    """Apply pending versioned migrations, then changed repeatables. Returns what was applied."""
    migrations = _versioned_migrations()
    with _backend(dsn) as backend, backend.lock():
        pending = backend.to_apply(migrations)
        for migration in pending:
            _run_yoyo(migration.id, backend.apply_one, migration)
        _run_yoyo("post-apply", backend.run_post_apply, pending)
    applied = [m.id for m in pending]
    return applied, _apply_repeatables(dsn)


def _apply_repeatables(dsn: str) -> list[str]:
    root = sql_dir()
    applied: list[str] = []
    with connect(dsn) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        known = dict(conn.execute(f"SELECT path, checksum FROM {META_SCHEMA}.repeatable_migrations").fetchall())
        for path in _repeatable_files():
            rel = str(path.relative_to(root))
            checksum = _checksum(path)
            if known.get(rel) == checksum:
                continue
            # Objects belong to aos_owner, whoever runs the migration.
            conn.execute("SET LOCAL ROLE aos_owner")
            try:
                conn.execute(path.read_text(encoding="utf-8"))
            except psycopg.Error as exc:
                raise AosdbError(f"{rel}: {error_line(exc)}") from None
            conn.execute("RESET ROLE")
            conn.execute(
                f"""INSERT INTO {META_SCHEMA}.repeatable_migrations (path, checksum) VALUES (%s, %s)
                    ON CONFLICT (path) DO UPDATE SET checksum = excluded.checksum, applied_at = now()""",
                (rel, checksum),
            )
            applied.append(rel)
        conn.commit()
    return applied


def rollback(dsn: str, count: int | None = 1) -> list[str]:
    """Undo the last `count` versioned migrations (None: all of them).

    Repeatable definitions depend on the versioned schema, so every one of them
    is marked pending: the next `migrate` re-applies them all.
    """
    if count is not None and count < 1:
        raise AosdbError("--count must be at least 1")
    migrations = _versioned_migrations()
    with _backend(dsn) as backend, backend.lock():
        to_undo = list(backend.to_rollback(migrations))
        if count is not None:
            to_undo = to_undo[:count]
        subset = migrations.__class__(to_undo, migrations.post_apply)
        for migration in subset:
            _run_yoyo(f"{migration.id} (rollback)", backend.rollback_one, migration)
    if to_undo:
        with connect(dsn) as conn:
            conn.execute(f"DELETE FROM {META_SCHEMA}.repeatable_migrations")
            conn.commit()
    return [m.id for m in to_undo]


def status(dsn: str) -> tuple[list[Versioned], list[Repeatable]]:
    """Every versioned and repeatable migration with whether (and when) it was applied."""
    migrations = _versioned_migrations()
    with _backend(dsn) as backend:
        backend.ensure_internal_schema_updated()
    with connect(dsn) as conn:
        applied_at = {
            mid: str(ts)
            for mid, ts in conn.execute(
                f"SELECT migration_id, applied_at_utc FROM {META_SCHEMA}._yoyo_migration"
            ).fetchall()
        }
        rows = conn.execute(f"SELECT path, checksum, applied_at FROM {META_SCHEMA}.repeatable_migrations").fetchall()
    known = {path: (checksum, str(ts)) for path, checksum, ts in rows}
    root = sql_dir()
    versioned = [Versioned(m.id, applied_at.get(m.id)) for m in migrations]
    repeatables = []
    for path in _repeatable_files():
        rel = str(path.relative_to(root))
        checksum, ts = known.get(rel, (None, None))
        repeatables.append(Repeatable(rel, _checksum(path), checksum, ts))
    return versioned, repeatables
