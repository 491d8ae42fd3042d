"""migrate, rollback, migrations and status of the versioned migrations against a real server."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import reported, REPO_ROOT, assert_one_error_line, clean_env, dbname_of, query, scalar, schema_dump
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

MIGRATIONS = REPO_ROOT / "sql" / "migrations"
VERSIONED = sorted(p.stem for p in MIGRATIONS.glob("*.sql") if not p.name.endswith(".rollback.sql"))
# Repeatable files, in the order migrate applies them: functions/ then views/, by name.
REPEATABLES = [f"{d}/{p.name}" for d in ("functions", "views") for p in sorted((MIGRATIONS.parent / d).glob("*.sql"))]
APPLIED_OUTPUT = [f"applied   {mid}" for mid in VERSIONED] + [f"applied   {r} (repeatable)" for r in REPEATABLES]
DOMAIN_SCHEMAS = ("aos", "activity", "incidents", "policies", "api", "api_private")
CONTRACT_ROLES = ("aos_owner", "aos_worker", "aos_incident_engine", "aos_proposal_engine",
                  "aos_policy_engine", "aos_operator", "aos_api", "aos_bi", "aos_scenario",
                  "aos_maintenance")


BOOKKEEPING = {
    "applied": "SELECT migration_id, applied_at, applied_by FROM aosdb_migrations.applied_migrations ORDER BY 1",
    "repeatable": "SELECT path, checksum, applied_at FROM aosdb_migrations.repeatable_migrations ORDER BY 1",
}


def bookkeeping(dsn: str) -> dict[str, list[tuple]]:
    """Everything the versioned and the repeatable phases record, as comparable rows."""
    return {name: query(dsn, statement) for name, statement in BOOKKEEPING.items()}


def applied_ids(dsn: str, order: str = "migration_id") -> list[str]:
    rows = query(dsn, f"SELECT migration_id FROM aosdb_migrations.applied_migrations ORDER BY {order}")
    return [r[0] for r in rows]


def present_schemas(dsn: str) -> set[str]:
    rows = query(dsn, "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", (list(DOMAIN_SCHEMAS),))
    return {r[0] for r in rows}


def regclass(dsn: str, name: str):
    return scalar(dsn, "SELECT to_regclass(%s)::text", (name,))


def test_the_project_has_versioned_migrations_with_rollbacks() -> None:
    assert VERSIONED[0] == "0001_roles" and len(VERSIONED) >= 6
    for mid in VERSIONED:
        assert (MIGRATIONS / f"{mid}.rollback.sql").exists(), mid


def test_migrate_applies_every_migration_in_order_then_is_up_to_date(invoke, fresh_dsn: str) -> None:
    first = invoke("migrate", "--dsn", fresh_dsn)
    assert first.returncode == 0, str(first)
    lines = first.stdout.splitlines()
    assert [line for line in lines if line.startswith("applied")] == APPLIED_OUTPUT, str(first)
    # Everything else is a server notice, naming the file that raised it.
    others = [line for line in lines if not line.startswith("applied")]
    assert all(line.startswith("notice: ") for line in others), str(first)
    assert applied_ids(fresh_dsn) == VERSIONED
    assert applied_ids(fresh_dsn, order="applied_at, migration_id") == VERSIONED  # applied in id order
    assert present_schemas(fresh_dsn) == set(DOMAIN_SCHEMAS)

    before_dump, before_books = schema_dump(fresh_dsn), bookkeeping(fresh_dsn)
    second = invoke("migrate", "--dsn", fresh_dsn)
    assert second.returncode == 0, str(second)
    assert second.stdout.strip() == "database is up to date", str(second)
    assert bookkeeping(fresh_dsn) == before_books
    assert schema_dump(fresh_dsn) == before_dump


def test_migrations_lists_every_versioned_migration_as_applied(invoke, migrated_dsn: str) -> None:
    result = invoke("migrations", "--dsn", migrated_dsn)
    assert result.returncode == 0, str(result)
    lines = [line.split() for line in result.stdout.splitlines() if line.startswith("versioned")]
    assert [fields[1] for fields in lines] == VERSIONED, str(result)
    assert all(fields[2] == "applied" for fields in lines), str(result)


def test_migrations_on_an_empty_database_lists_them_pending(invoke, fresh_dsn: str) -> None:
    result = invoke("migrations", "--dsn", fresh_dsn)
    assert result.returncode == 0, str(result)
    lines = [line.split() for line in result.stdout.splitlines() if line.startswith("versioned")]
    assert [(f[1], f[2]) for f in lines] == [(mid, "pending") for mid in VERSIONED], str(result)


def test_dsn_comes_from_option_then_aosdb_dsn_then_database_url(run_cli, new_database) -> None:
    by_option, by_aosdb_dsn, by_database_url = new_database(), new_database(), new_database()

    def migrated(dsn: str) -> bool:
        return scalar(dsn, "SELECT to_regnamespace('activity') IS NOT NULL")

    both = {"AOSDB_DSN": by_aosdb_dsn, "DATABASE_URL": by_database_url}
    result = run_cli("migrate", "--dsn", by_option, env=both)
    assert result.returncode == 0, str(result)
    assert [migrated(d) for d in (by_option, by_aosdb_dsn, by_database_url)] == [True, False, False]

    result = run_cli("migrate", env=both)
    assert result.returncode == 0, str(result)
    assert [migrated(d) for d in (by_aosdb_dsn, by_database_url)] == [True, False]

    result = run_cli("migrate", env={"DATABASE_URL": by_database_url})
    assert result.returncode == 0, str(result)
    assert migrated(by_database_url)
    # The output names what it applied.
    assert "applied   0001_roles" in result.stdout, str(result)


def test_concurrent_migrates_on_a_fresh_database_all_succeed(new_database) -> None:
    """Several deploys migrating at once: every run exits 0 and each migration is applied exactly once.

    Races are timing-dependent, so a few rounds of four concurrent runs are tried."""
    for _ in range(4):
        dsn = new_database()
        procs = [
            subprocess.Popen([sys.executable, "-m", "aosdb", "migrate"], env=clean_env(AOSDB_DSN=dsn),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(4)
        ]  # fmt: skip
        outputs = [(p.wait(timeout=120), *p.communicate()) for p in procs]
        report = "\n".join(f"exit {rc}\n{out}{err}" for rc, out, err in outputs)
        assert all(rc == 0 for rc, _, _ in outputs), report
        applied = sorted(line.split()[1] for _, out, _ in outputs for line in out.splitlines()
                         if line.startswith("applied") and not line.endswith("(repeatable)"))
        assert applied == VERSIONED, report
        assert applied_ids(dsn) == VERSIONED


@pytest.fixture
def dba_dsn(pg_server: str) -> Iterator[str]:
    """A database owned by a non-superuser DBA role (LOGIN CREATEROLE), and that role's DSN."""
    role, password = f"aosdb_pytest_dba_{secrets.token_hex(3)}", secrets.token_urlsafe(16)
    dbname = f"aosdb_pytest_dba_{secrets.token_hex(4)}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname), sql.Identifier(role)))
    params = conninfo_to_dict(pg_server)
    params.update(user=role, password=password, dbname=dbname)
    try:
        yield make_conninfo(**params)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_a_non_superuser_dba_migrates_and_aos_owner_owns_everything(invoke, dba_dsn: str) -> None:
    result = invoke("migrate", "--dsn", dba_dsn)
    assert result.returncode == 0, str(result)
    dba = conninfo_to_dict(dba_dsn)["user"]
    owners = query(dba_dsn, """
        SELECT DISTINCT owner FROM (
            SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = ANY(%(s)s)
            UNION ALL SELECT c.relowner::regrole::text FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(%(s)s)
            UNION ALL SELECT p.proowner::regrole::text FROM pg_proc p
                JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ANY(%(s)s)
        ) AS o(owner)""", {"s": list(DOMAIN_SCHEMAS)})
    assert {"aos_owner"} <= {o for (o,) in owners} <= set(CONTRACT_ROLES), owners
    assert dba not in {o for (o,) in owners}
    undone = invoke("rollback", "--all", "--yes", "--dsn", dba_dsn)
    assert undone.returncode == 0, str(undone)
    assert present_schemas(dba_dsn) == set()


# ---- rollback ------------------------------------------------------------------------------------


def test_migrate_rollback_all_migrate_gives_the_same_schema(invoke, migrated_dsn: str) -> None:
    """The round trip CI must prove: apply -> rollback -> apply gives an identical pg_dump --schema-only."""
    before = schema_dump(migrated_dsn)
    assert "CREATE TABLE activity.runs" in before
    assert "ALTER DEFAULT PRIVILEGES FOR ROLE aos_owner" in before  # 0001_roles is part of the comparison

    undone = invoke("rollback", "--all", "--yes", "--dsn", migrated_dsn)
    assert undone.returncode == 0, str(undone)
    assert reported(undone.stdout) == [f"rolled back {mid}" for mid in reversed(VERSIONED)], str(undone)
    assert present_schemas(migrated_dsn) == set()
    assert applied_ids(migrated_dsn) == []

    again = invoke("migrate", "--dsn", migrated_dsn)
    assert again.returncode == 0, str(again)
    assert reported(again.stdout) == APPLIED_OUTPUT, str(again)
    after = schema_dump(migrated_dsn)
    assert after == before


LAST_MIGRATION_UNDONE = {
    "0011_engine_indexes": ("SELECT to_regclass('aos.events_seq_brin') IS NULL", True),
    "0012_api_views_and_temp": ("SELECT has_database_privilege('public', current_database(), 'TEMPORARY')", True),
    "0013_immutable_keys": ("SELECT has_table_privilege('aos_worker', 'activity.runs', 'UPDATE') "
                            "AND to_regprocedure('aos.tg_immutable_keys()') IS NULL", True),
    "0014_value_bounds": ("SELECT count(*) = 0 FROM pg_constraint WHERE conname = 'runs_input_tokens_max'", True),
    "0015_trusted_tenants": ("SELECT to_regprocedure('aos.login_tenant()') IS NULL AND NOT EXISTS (SELECT FROM "
                             "pg_attribute WHERE attrelid = 'aos.bi_logins'::regclass AND attname = 'login_oid')", True),
    "0016_cost_precision": ("SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                            "WHERE attrelid = 'activity.runs'::regclass AND attname = 'estimated_cost_usd'",
                            "numeric(12,6)"),
    "0017_api_postgrest": ("SELECT to_regnamespace('api_private') IS NULL AND to_regclass('aos.api_endpoints') IS NULL "
                           "AND NOT EXISTS (SELECT FROM aos.contract_facades WHERE endpoint LIKE '/rpc/%')", True),
    "0018_operations": ("SELECT to_regprocedure('aos.refresh_analytics(interval)') IS NULL AND to_regprocedure("
                        "'aos.prune_outbox(interval)') IS NULL AND NOT has_table_privilege('aos_maintenance', "
                        "'aos.view_refreshes', 'SELECT')", True),
    "0019_data_lifecycle": ("SELECT to_regprocedure('aos.offboard_tenant(text)') IS NULL AND NOT EXISTS (SELECT FROM "
                            "pg_proc WHERE proname IN ('prune_runs', '_prune_runs_batch', '_offboard_tenant'))", True),
}


def test_rollback_undoes_only_the_last_migration(invoke, migrated_dsn: str) -> None:
    result = invoke("rollback", "--dsn", migrated_dsn)
    assert result.returncode == 0, str(result)
    assert reported(result.stdout) == [f"rolled back {VERSIONED[-1]}"], str(result)
    assert applied_ids(migrated_dsn) == VERSIONED[:-1]
    # What the last migration's rollback takes away, whichever migration is last.
    probe = LAST_MIGRATION_UNDONE.get(VERSIONED[-1])
    assert probe is not None, f"add what rolling back {VERSIONED[-1]} undoes to LAST_MIGRATION_UNDONE"
    statement, expected = probe
    assert scalar(migrated_dsn, statement) == expected, (VERSIONED[-1], statement)
    assert regclass(migrated_dsn, "aos.events_seq_brin") is not None  # 0011 stays
    listed = invoke("migrations", "--dsn", migrated_dsn)
    states = {f[1]: f[2] for f in map(str.split, listed.stdout.splitlines()) if f and f[0] == "versioned"}
    assert states == {**{mid: "applied" for mid in VERSIONED[:-1]}, VERSIONED[-1]: "pending"}, str(listed)


def test_rollback_count_undoes_the_last_ones(invoke, migrated_dsn: str) -> None:
    count = len(VERSIONED) - VERSIONED.index("0010_engines_at_scale")  # back to 0009, whatever came later
    result = invoke("rollback", "--count", str(count), "--dsn", migrated_dsn)
    assert result.returncode == 0, str(result)
    assert reported(result.stdout) == [f"rolled back {mid}" for mid in reversed(VERSIONED[-count:])], str(result)
    assert applied_ids(migrated_dsn) == VERSIONED[:-count]
    assert regclass(migrated_dsn, "policies.proposal_incidents") is None  # 0010_engines_at_scale
    assert regclass(migrated_dsn, "activity.runs_tenant_status_created_at_idx") is not None  # 0009 stays


def test_0015_rekeys_bi_logins_by_role_oid_and_drops_rows_of_dropped_roles(invoke, migrated_dsn: str) -> None:
    count = len(VERSIONED) - VERSIONED.index("0015_trusted_tenants")  # back to 0014, whatever came later
    assert invoke("rollback", "--count", str(count), "--dsn", migrated_dsn).returncode == 0
    kept, gone = f"aos_t15_kept_{secrets.token_hex(4)}", f"aos_t15_gone_{secrets.token_hex(4)}"
    query(migrated_dsn, f"CREATE ROLE {kept}; CREATE ROLE {gone}")
    try:
        query(migrated_dsn, "SELECT aos.register_tenant('t15')")
        query(migrated_dsn, "INSERT INTO aos.bi_logins (login, tenant_id) VALUES (%s, 't15'), (%s, 't15')", (kept, gone))
        query(migrated_dsn, f"DROP ROLE {gone}")  # keyed by name, its row outlives it
        result = invoke("migrate", "--dsn", migrated_dsn)
        assert result.returncode == 0, str(result)
        assert any(gone in line and "no such role" in line for line in result.stdout.splitlines()), str(result)
        assert query(migrated_dsn, "SELECT login::text, login_oid FROM aos.bi_logins") == [
            (kept, scalar(migrated_dsn, "SELECT %s::regrole::oid", (kept,)))]
    finally:
        query(migrated_dsn, f"DROP ROLE IF EXISTS {kept}; DROP ROLE IF EXISTS {gone}")


def test_rollback_on_an_empty_database_has_nothing_to_do(invoke, fresh_dsn: str) -> None:
    result = invoke("rollback", "--dsn", fresh_dsn)
    assert result.returncode == 0, str(result)
    assert result.stdout.strip() == "nothing to roll back", str(result)


@pytest.mark.parametrize("count", ["0", "-1"])
def test_rollback_count_below_one_is_one_clear_error(run_cli, migrated_dsn: str, count: str) -> None:
    result = run_cli("rollback", "--count", count, env={"AOSDB_DSN": migrated_dsn})
    assert_one_error_line(result, "--count")
    assert applied_ids(migrated_dsn) == VERSIONED


# ---- a broken versioned migration ---------------------------------------------------------------


BROKEN = """-- depends: {last}
-- A valid statement, then one that fails: the migration must leave nothing behind.
SET LOCAL ROLE aos_owner;
CREATE TABLE aos.broken_probe (id integer);
ALTER TABLE aos.no_such_table ADD COLUMN x integer;
"""


@pytest.fixture
def broken_tree(project_tree: Path) -> Path:
    migrations = project_tree / "sql" / "migrations"
    (migrations / "0099_broken.sql").write_text(BROKEN.format(last=VERSIONED[-1]))
    (migrations / "0099_broken.rollback.sql").write_text("DROP TABLE aos.broken_probe;\n")
    return project_tree


def test_broken_migration_fails_cleanly_and_leaves_nothing(run_cli, migrated_dsn: str, broken_tree: Path) -> None:
    result = run_cli("migrate", env={"AOSDB_DSN": migrated_dsn, "AOSDB_ROOT": str(broken_tree)})
    line = assert_one_error_line(result, "SQLSTATE 42P01")
    assert "no_such_table" in line
    assert regclass(migrated_dsn, "aos.broken_probe") is None
    assert "0099_broken" not in applied_ids(migrated_dsn)
    assert applied_ids(migrated_dsn) == VERSIONED
    # Still pending, and a second attempt fails the same way (nothing half-applied in between).
    again = run_cli("migrate", env={"AOSDB_DSN": migrated_dsn, "AOSDB_ROOT": str(broken_tree)})
    assert_one_error_line(again, "SQLSTATE 42P01")


def test_broken_migration_error_names_the_migration(run_cli, migrated_dsn: str, broken_tree: Path) -> None:
    """Among several pending migrations a DBA must learn which one failed."""
    result = run_cli("migrate", env={"AOSDB_DSN": migrated_dsn, "AOSDB_ROOT": str(broken_tree)})
    assert_one_error_line(result, "0099_broken")


# ---- status and help ---------------------------------------------------------------------------


def test_status_lists_schemas_tables_roles_and_migrations(invoke, migrated_dsn: str) -> None:
    result = invoke("status", "--dsn", migrated_dsn)
    assert result.returncode == 0, str(result)
    out = result.stdout
    lines = out.splitlines()
    assert lines[0].startswith("database") and lines[0].endswith(f"/{dbname_of(migrated_dsn)}"), out
    assert "schemas   " + ", ".join(DOMAIN_SCHEMAS) in lines, out
    runs = [line for line in lines if line.strip().startswith("activity.runs ")]
    assert len(runs) == 1 and runs[0].rstrip().endswith("rls") and "table" in runs[0], out
    for table in ("aos.tenants", "incidents.incidents", "policies.policy_rules"):
        assert any(line.strip().startswith(table + " ") for line in lines), f"{table} missing\n{out}"
    roles = next(line for line in lines if line.startswith("roles"))
    for role in CONTRACT_ROLES:
        assert role in roles, out
    assert "missing" not in roles, out
    migrations_line = next(line for line in lines if line.startswith("migrations"))
    assert migrations_line.split(None, 1)[1].split(", ") == VERSIONED, out
    password = conninfo_to_dict(migrated_dsn).get("password")
    assert not password or password not in out


def test_status_of_an_empty_database(invoke, fresh_dsn: str) -> None:
    result = invoke("status", "--dsn", fresh_dsn)
    assert result.returncode == 0, str(result)
    assert "(none: run aosdb migrate)" in result.stdout and "(none applied)" in result.stdout, str(result)


@pytest.mark.parametrize(
    "command",
    [["db", "start"], ["db", "stop"], ["db", "status"], ["db", "url"], ["migrate"], ["rollback"],
     ["migrations"], ["status"], ["test"], ["lint"]],
)
def test_every_command_has_help_with_an_example(invoke, command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.returncode == 0, str(result)
    assert "Example" in result.stdout, str(result)
