"""`aosdb test`: pg_prove over sql/tests in a throwaway, migrated database that is dropped afterwards."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import query

pytestmark = pytest.mark.skipif(not shutil.which("pg_prove"), reason="pg_prove is not installed")

PASSING = """BEGIN;
SELECT plan(3);
SELECT has_schema('activity', 'the activity schema exists');
SELECT has_table('activity', 'runs', 'activity.runs exists');
SELECT has_role('aos_owner', 'the owner role exists');
SELECT * FROM finish();
ROLLBACK;
"""

FAILING = """BEGIN;
SELECT plan(2);
SELECT has_table('activity', 'runs', 'activity.runs exists');
SELECT is(1 + 1, 3, 'arithmetic is broken on purpose');
SELECT * FROM finish();
ROLLBACK;
"""


def throwaway_databases(admin_dsn: str) -> set[str]:
    return {r[0] for r in query(admin_dsn, r"SELECT datname FROM pg_database WHERE datname LIKE 'aosdb\_test\_%'")}


def test_passing_suite_exits_0_and_drops_its_database(run_cli, pg_server: str, project_tree: Path) -> None:
    (project_tree / "sql" / "tests" / "01-schema.sql").write_text(PASSING)
    before = throwaway_databases(pg_server)
    result = run_cli("test", env={"AOSDB_DSN": pg_server, "AOSDB_ROOT": str(project_tree)})
    assert result.returncode == 0, str(result)
    assert "All tests successful" in result.stdout and "Result: PASS" in result.stdout, str(result)
    assert throwaway_databases(pg_server) == before


def test_failing_suite_exits_non_zero_and_drops_its_database(run_cli, pg_server: str, project_tree: Path) -> None:
    (project_tree / "sql" / "tests" / "01-schema.sql").write_text(PASSING)
    (project_tree / "sql" / "tests" / "02-broken.sql").write_text(FAILING)
    before = throwaway_databases(pg_server)
    result = run_cli("test", env={"AOSDB_DSN": pg_server, "AOSDB_ROOT": str(project_tree)})
    assert result.returncode != 0, str(result)
    assert "Result: FAIL" in result.stdout, str(result)
    assert "02-broken.sql" in result.stdout, str(result)
    assert "arithmetic is broken on purpose" in result.stdout + result.stderr, str(result)
    assert "Traceback" not in result.stderr, str(result)
    assert throwaway_databases(pg_server) == before


def test_a_failing_migration_still_drops_the_throwaway_database(run_cli, pg_server: str, project_tree: Path) -> None:
    (project_tree / "sql" / "tests" / "01-schema.sql").write_text(PASSING)
    (project_tree / "sql" / "migrations" / "0099_fail.sql").write_text("-- depends: 0006_contract\nSELECT 1 / 0;\n")
    (project_tree / "sql" / "migrations" / "0099_fail.rollback.sql").write_text("SELECT 1;\n")
    before = throwaway_databases(pg_server)
    result = run_cli("test", env={"AOSDB_DSN": pg_server, "AOSDB_ROOT": str(project_tree)})
    assert result.returncode != 0, str(result)
    assert "Traceback" not in result.stderr and "SQLSTATE 22012" in result.stderr, str(result)
    assert throwaway_databases(pg_server) == before
