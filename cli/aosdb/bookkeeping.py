"""What has been applied: the aosdb_migrations schema.

applied_migrations holds one row per versioned migration; it is written in the
same transaction as the migration itself, so a crash at any instant leaves both
or neither. repeatable_migrations holds the checksum each repeatable file was
last applied with. Earlier aosdb releases recorded versioned migrations through
yoyo (aosdb_migrations._yoyo_migration); those records are imported once and
yoyo's tables are left as they are.
"""

from __future__ import annotations

import psycopg

SCHEMA = "aosdb_migrations"
_CREATE = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
COMMENT ON SCHEMA {SCHEMA} IS 'aosdb migration bookkeeping: applied versioned migrations and repeatable files.';
CREATE TABLE IF NOT EXISTS {SCHEMA}.applied_migrations (
    migration_id text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user
);
COMMENT ON TABLE {SCHEMA}.applied_migrations IS
    'One row per applied versioned migration, written in the migration''s own transaction.';
CREATE TABLE IF NOT EXISTS {SCHEMA}.repeatable_migrations (
    path text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE {SCHEMA}.repeatable_migrations IS
    'The checksum each repeatable file (sql/functions, sql/views) was last applied with.';
"""
_IMPORT_YOYO = f"""
INSERT INTO {SCHEMA}.applied_migrations (migration_id, applied_at)
SELECT migration_id, applied_at_utc AT TIME ZONE 'UTC' FROM {SCHEMA}._yoyo_migration
ON CONFLICT (migration_id) DO NOTHING"""


def ensure(conn: psycopg.Connection) -> None:
    """Create the bookkeeping tables when missing (the caller holds the runner lock), importing yoyo's records."""
    with conn.transaction():
        fresh = not exists(conn)
        conn.execute(_CREATE)
        if fresh and _has(conn, "_yoyo_migration"):
            conn.execute(_IMPORT_YOYO)


def _has(conn: psycopg.Connection, table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.{table}",)).fetchone()[0]


def exists(conn: psycopg.Connection) -> bool:
    return _has(conn, "applied_migrations")


def applied(conn: psycopg.Connection) -> dict[str, str]:
    """migration id -> when it was applied; read-only, and empty when nothing was ever recorded."""
    if exists(conn):
        query = f"SELECT migration_id, applied_at::text FROM {SCHEMA}.applied_migrations"
    elif _has(conn, "_yoyo_migration"):
        query = f"SELECT migration_id, applied_at_utc::text FROM {SCHEMA}._yoyo_migration"
    else:
        return {}
    return dict(conn.execute(query).fetchall())


def repeatables(conn: psycopg.Connection) -> dict[str, tuple[str, str]]:
    """repeatable path -> (checksum, applied_at); read-only."""
    if not _has(conn, "repeatable_migrations"):
        return {}
    rows = conn.execute(f"SELECT path, checksum, applied_at::text FROM {SCHEMA}.repeatable_migrations").fetchall()
    return {path: (checksum, ts) for path, checksum, ts in rows}


def record(conn: psycopg.Connection, migration_id: str) -> None:
    conn.execute(f"INSERT INTO {SCHEMA}.applied_migrations (migration_id) VALUES (%s)", (migration_id,))


def forget(conn: psycopg.Connection, migration_id: str) -> None:
    """A rolled-back migration; every repeatable file is then marked pending (it may depend on what went)."""
    conn.execute(f"DELETE FROM {SCHEMA}.applied_migrations WHERE migration_id = %s", (migration_id,))
    conn.execute(f"DELETE FROM {SCHEMA}.repeatable_migrations")


def record_repeatable(conn: psycopg.Connection, path: str, checksum: str) -> None:
    conn.execute(
        f"""INSERT INTO {SCHEMA}.repeatable_migrations (path, checksum) VALUES (%s, %s)
            ON CONFLICT (path) DO UPDATE SET checksum = excluded.checksum, applied_at = now()""",
        (path, checksum),
    )
