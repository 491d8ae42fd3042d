"""`aosdb status`: what exists in the database, for a human."""

from __future__ import annotations

from aosdb.config import describe_dsn
from aosdb.db import connect

DOMAIN_SCHEMAS = ("aos", "activity", "incidents", "policies", "api")
CONTRACT_ROLES = ("aos_owner", "aos_worker", "aos_incident_engine", "aos_proposal_engine",
                  "aos_policy_engine", "aos_operator", "aos_api", "aos_bi", "aos_scenario", "aos_bi_tenant")


def render(dsn: str) -> str:
    lines = [f"database  {describe_dsn(dsn)}"]
    with connect(dsn) as conn:
        tables = conn.execute(
            """SELECT n.nspname, c.relname, c.relkind, c.relrowsecurity
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm')
               ORDER BY array_position(%s, n.nspname::text), c.relname""",
            (list(DOMAIN_SCHEMAS), list(DOMAIN_SCHEMAS)),
        ).fetchall()
        present = {row[0] for row in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", (list(DOMAIN_SCHEMAS),))}
        lines.append("schemas   " + (", ".join(s for s in DOMAIN_SCHEMAS if s in present) or "(none: run aosdb migrate)"))
        lines.append("tables")
        for schema, name, kind, rls in tables:
            kind_word = {"r": "table", "p": "table", "v": "view", "m": "materialized view"}[kind]
            if kind == "v":  # a tenant-filtered view has rows only for a reader with a tenant
                lines.append(f"  {schema + '.' + name:<36} {kind_word}")
                continue
            count = conn.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone()[0]
            flags = " rls" if rls else ""
            lines.append(f"  {schema + '.' + name:<36} {kind_word:<18} {count:>8} rows{flags}")
        roles = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)",
                                            (list(CONTRACT_ROLES),))}
        lines.append("roles     " + ", ".join(r if r in roles else f"{r} (missing)" for r in CONTRACT_ROLES))
        has_meta = conn.execute("SELECT to_regclass('aosdb_migrations._yoyo_migration') IS NOT NULL").fetchone()[0]
        applied = []
        if has_meta:
            applied = [r[0] for r in conn.execute(
                "SELECT migration_id FROM aosdb_migrations._yoyo_migration ORDER BY applied_at_utc")]
        lines.append("migrations " + (", ".join(applied) if applied else "(none applied)"))
    return "\n".join(lines)
