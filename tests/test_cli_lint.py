"""`aosdb lint`: sqlfluff and squawk on the migrations, plpgsql_check on every PL/pgSQL function."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO_ROOT, query

MIGRATIONS = REPO_ROOT / "sql" / "migrations"
N_FORWARD = len([p for p in MIGRATIONS.glob("*.sql") if not p.name.endswith(".rollback.sql")])
N_ROLLBACK = len(list(MIGRATIONS.glob("*.rollback.sql")))

MISSING_COLUMN = """CREATE OR REPLACE FUNCTION aos.lint_probe_missing_column() RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RETURN (SELECT count(t.no_such_column) FROM aos.tenants AS t);
END
$fn$;
"""

# Timeouts set like the real migrations, so the index is the one thing squawk objects to.
INDEX_WITHOUT_CONCURRENTLY = """-- depends: {last}
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;
CREATE INDEX runs_lint_probe_idx ON activity.runs (agent_id);
RESET ROLE;
"""


def has_plpgsql_check(admin_dsn: str) -> bool:
    return bool(query(admin_dsn, "SELECT 1 FROM pg_available_extensions WHERE name = 'plpgsql_check'"))


@pytest.fixture(scope="module")
def needs_plpgsql_check(pg_server: str) -> None:
    if not has_plpgsql_check(pg_server):
        pytest.skip("plpgsql_check is not installed on the test server")


def lint_databases(admin_dsn: str) -> set[str]:
    return {r[0] for r in query(admin_dsn, r"SELECT datname FROM pg_database WHERE datname LIKE 'aosdb\_lint\_%'")}


@pytest.mark.usefixtures("needs_plpgsql_check")
def test_the_project_lints_clean(run_cli, pg_server: str) -> None:
    before = lint_databases(pg_server)
    result = run_cli("lint", env={"AOSDB_DSN": pg_server})
    assert result.returncode == 0, str(result)
    lines = result.stdout.splitlines()
    assert f"sqlfluff: clean ({N_FORWARD + N_ROLLBACK} files)" in lines, str(result)
    assert f"squawk: clean ({N_FORWARD} migrations)" in lines, str(result)
    assert f"squawk: clean ({N_ROLLBACK} rollbacks)" in lines, str(result)
    assert any(re.fullmatch(r"plpgsql_check: clean \(\d+ functions\)", line) for line in lines), str(result)
    assert lines[-1] == "lint: 4 passed, 0 failed", str(result)
    assert lint_databases(pg_server) == before


@pytest.mark.usefixtures("needs_plpgsql_check")
def test_plpgsql_check_finds_a_missing_column(run_cli, pg_server: str, project_tree: Path) -> None:
    (project_tree / "sql" / "functions" / "lint_probe.sql").write_text(MISSING_COLUMN)
    before = lint_databases(pg_server)
    result = run_cli("lint", env={"AOSDB_DSN": pg_server, "AOSDB_ROOT": str(project_tree)})
    assert result.returncode == 1, str(result)
    problems = [line for line in result.stdout.splitlines() if line.startswith("aos.lint_probe_missing_column()")]
    assert problems and any("no_such_column" in line and "error" in line for line in problems), str(result)
    assert re.search(r"^plpgsql_check: \d+ problems", result.stdout, re.MULTILINE), str(result)
    # The migrations themselves are still clean: only plpgsql_check failed.
    assert f"squawk: clean ({N_FORWARD} migrations)" in result.stdout, str(result)
    assert result.stdout.splitlines()[-1] == "lint: 3 passed, 1 failed", str(result)
    assert lint_databases(pg_server) == before


@pytest.mark.usefixtures("needs_plpgsql_check")
def test_squawk_flags_an_index_built_without_concurrently(run_cli, pg_server: str, project_tree: Path) -> None:
    last = max(p.stem for p in MIGRATIONS.glob("*.sql") if not p.name.endswith(".rollback.sql"))
    migrations = project_tree / "sql" / "migrations"
    (migrations / "0099_lint_probe.sql").write_text(INDEX_WITHOUT_CONCURRENTLY.format(last=last))
    (migrations / "0099_lint_probe.rollback.sql").write_text(
        "SET LOCAL ROLE aos_owner;\nDROP INDEX activity.runs_lint_probe_idx;\nRESET ROLE;\n"
    )
    result = run_cli("lint", env={"AOSDB_DSN": pg_server, "AOSDB_ROOT": str(project_tree)})
    assert result.returncode == 1, str(result)
    assert f"squawk: violations found ({N_FORWARD + 1} migrations)" in result.stdout, str(result)
    assert "0099_lint_probe.sql" in result.stdout and "require-concurrent-index-creation" in result.stdout, str(result)
    assert "Traceback" not in result.stderr, str(result)


def test_a_server_without_plpgsql_check_skips_that_linter(run_cli, server_of) -> None:
    """plpgsql_check is a C extension built per server: a server without it skips the linter, exit 0."""
    server = server_of(18)
    if has_plpgsql_check(server):
        pytest.skip("this PostgreSQL 18 server has plpgsql_check")
    before = lint_databases(server)
    result = run_cli("lint", env={"AOSDB_DSN": server})
    assert result.returncode == 0, str(result)
    lines = result.stdout.splitlines()
    skipped = [line for line in lines if line.startswith("plpgsql_check: skipped")]
    assert skipped and "postgresql-18-plpgsql-check" in skipped[0], str(result)
    assert f"squawk: clean ({N_FORWARD} migrations)" in lines, str(result)
    assert lines[-1] == "lint: 3 passed, 0 failed, 1 skipped", str(result)
    # Skipped before anything was created.
    assert lint_databases(server) == before
