"""`aosdb status`: what exists in the database, for a human."""

from __future__ import annotations

import psycopg

from aosdb.config import describe_dsn
from aosdb.db import connect

# The schemas the migrations create: shown (as missing) before there is a database to ask.
DOMAIN_SCHEMAS = ("aos", "activity", "incidents", "policies", "api", "api_private")


def applied_migrations(conn: psycopg.Connection) -> list[str]:
    """Ids of the applied versioned migrations, in id order: aosdb_migrations.applied_migrations,
    else the table yoyo kept before it (older releases), else none."""
    for table, column in (("applied_migrations", "migration_id"), ("_yoyo_migration", "migration_id")):
        if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"aosdb_migrations.{table}",)).fetchone()[0]:
            return [r[0] for r in conn.execute(f"SELECT {column} FROM aosdb_migrations.{table} ORDER BY 1")]
    return []


def contract_roles(conn: psycopg.Connection) -> dict[str, bool] | None:
    """The roles the contract (aos.contract_roles) names, in name order, and whether each exists;
    None before the migrations made the contract, or when the connecting user cannot read it."""
    readable = conn.execute("SELECT CASE WHEN to_regclass('aos.contract_roles') IS NOT NULL "
                            "THEN has_table_privilege('aos.contract_roles', 'SELECT') ELSE false END").fetchone()[0]
    if not readable:
        return None
    return dict(conn.execute("SELECT c.role_name, r.oid IS NOT NULL FROM aos.contract_roles AS c "
                             "LEFT JOIN pg_catalog.pg_roles AS r ON r.rolname = c.role_name "
                             "ORDER BY c.role_name").fetchall())


def _rows(conn: psycopg.Connection, schema: str, name: str, reltuples: float, exact: bool) -> str:
    """count(*) with --exact; else the planner's estimate, free on a table of any size."""
    if exact:
        return str(conn.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone()[0])
    if reltuples < 0:  # never vacuumed nor analyzed: no estimate yet
        return "~?"
    return f"~{round(reltuples)}"


def render(dsn: str, exact: bool = False) -> str:
    return inspect(dsn, exact)[0]


def inspect(dsn: str, exact: bool = False) -> tuple[str, list[str]]:
    """The report, and the warnings about what works but degrades (for stderr)."""
    from aosdb.privileges import BYPASSRLS_WARNING, WORKER

    lines = [f"database  {describe_dsn(dsn)}"]
    warnings: list[str] = []
    with connect(dsn) as conn:
        tables = conn.execute(
            """SELECT n.nspname, c.relname, c.relkind, c.relrowsecurity, c.reltuples
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm')
               ORDER BY array_position(%s, n.nspname::text), c.relname""",
            (list(DOMAIN_SCHEMAS), list(DOMAIN_SCHEMAS)),
        ).fetchall()
        present = {row[0] for row in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", (list(DOMAIN_SCHEMAS),))}
        lines.append("schemas   " + (", ".join(s for s in DOMAIN_SCHEMAS if s in present) or "(none: run aosdb migrate)"))
        lines.append("tables    " + ("rows counted (--exact)" if exact else
                                     "rows estimated from the statistics (~? never analyzed; --exact counts them)"))
        for schema, name, kind, rls, reltuples in tables:
            kind_word = {"r": "table", "p": "table", "v": "view", "m": "materialized view"}[kind]
            if kind == "v":  # a tenant-filtered view has rows only for a reader with a tenant
                lines.append(f"  {schema + '.' + name:<36} {kind_word}")
                continue
            count = _rows(conn, schema, name, reltuples, exact)
            flags = " rls" if rls else ""
            lines.append(f"  {schema + '.' + name:<36} {kind_word:<18} {count:>9} rows{flags}")
        roles = contract_roles(conn)
        if roles is None:
            lines.append("roles     (aos.contract_roles cannot be read: run aosdb migrate, or connect as its owner)")
        else:
            lines.append("roles     " + ", ".join(r if exists else f"{r} (missing)" for r, exists in roles.items()))
        worker = conn.execute("SELECT rolbypassrls FROM pg_roles WHERE rolname = %s", (WORKER,)).fetchone()
        if worker is not None and not worker[0]:
            warnings.append(BYPASSRLS_WARNING)
        applied = applied_migrations(conn)
        lines.append("migrations " + (", ".join(applied) if applied else "(none applied)"))
    return "\n".join(lines), warnings
