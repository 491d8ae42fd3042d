"""Repeatable files (sql/functions, then sql/views): applied by checksum, each in its own transaction, owned by aos_owner."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import reported, assert_one_error_line, query, scalar

FUNCTION = """CREATE OR REPLACE FUNCTION aos.pytest_answer() RETURNS integer
LANGUAGE sql IMMUTABLE
AS $fn$ SELECT {value} $fn$;
COMMENT ON FUNCTION aos.pytest_answer() IS 'Test probe.';
"""
BOOKS = "SELECT path, checksum, applied_at FROM aosdb_migrations.repeatable_migrations ORDER BY 1"
# The view depends on the function: applying views before functions would fail.
VIEW = """CREATE OR REPLACE VIEW aos.pytest_answer_view AS
SELECT aos.pytest_answer() AS answer;
"""


@pytest.fixture
def tree(project_tree: Path) -> Path:
    (project_tree / "sql" / "functions" / "a.sql").write_text(FUNCTION.format(value=42))
    (project_tree / "sql" / "views" / "b.sql").write_text(VIEW)
    return project_tree


@pytest.fixture
def cli(invoke, tree: Path, migrated_dsn: str):
    """The CLI pointed at the temporary tree and a migrated database."""

    def run(*args: str):
        return invoke(*args, "--dsn", migrated_dsn, env={"AOSDB_ROOT": str(tree)})

    return run


def repeatable_states(cli) -> dict[str, str]:
    result = cli("migrations")
    assert result.returncode == 0, str(result)
    return {f[1]: f[2] for f in map(str.split, result.stdout.splitlines()) if f and f[0] == "repeatable"}


def answer(dsn: str) -> int:
    return scalar(dsn, "SELECT answer FROM aos.pytest_answer_view")


def test_migrate_applies_functions_then_views_once(cli, migrated_dsn: str) -> None:
    assert repeatable_states(cli) == {"functions/a.sql": "pending", "views/b.sql": "pending"}

    first = cli("migrate")
    assert first.returncode == 0, str(first)
    assert reported(first.stdout) == [
        "applied   functions/a.sql (repeatable)",
        "applied   views/b.sql (repeatable)",
    ], str(first)
    assert answer(migrated_dsn) == 42
    assert repeatable_states(cli) == {"functions/a.sql": "applied", "views/b.sql": "applied"}

    second = cli("migrate")
    assert second.returncode == 0, str(second)
    assert second.stdout.strip() == "database is up to date", str(second)


def test_repeatable_objects_belong_to_aos_owner(cli, migrated_dsn: str) -> None:
    assert cli("migrate").returncode == 0
    function_owner = "SELECT proowner::regrole::text FROM pg_proc WHERE oid = 'aos.pytest_answer()'::regprocedure"
    view_owner = "SELECT relowner::regrole::text FROM pg_class WHERE oid = 'aos.pytest_answer_view'::regclass"
    assert scalar(migrated_dsn, function_owner) == "aos_owner"
    assert scalar(migrated_dsn, view_owner) == "aos_owner"


def test_an_edited_file_is_reapplied_alone(cli, tree: Path, migrated_dsn: str) -> None:
    assert cli("migrate").returncode == 0
    (tree / "sql" / "functions" / "a.sql").write_text(FUNCTION.format(value=43))
    assert repeatable_states(cli) == {"functions/a.sql": "changed", "views/b.sql": "applied"}

    result = cli("migrate")
    assert result.returncode == 0, str(result)
    assert reported(result.stdout) == ["applied   functions/a.sql (repeatable)"], str(result)
    assert answer(migrated_dsn) == 43
    assert repeatable_states(cli) == {"functions/a.sql": "applied", "views/b.sql": "applied"}
    assert cli("migrate").stdout.strip() == "database is up to date"


def test_a_failing_file_is_named_and_leaves_nothing_while_the_files_before_it_stay(
        run_cli, tree: Path, migrated_dsn: str) -> None:
    """Each file commits with its checksum: locks on busy tables are held for one file only."""
    env = {"AOSDB_DSN": migrated_dsn, "AOSDB_ROOT": str(tree)}
    assert run_cli("migrate", env=env).returncode == 0
    books_before = dict((path, checksum) for path, checksum, _ in query(migrated_dsn, BOOKS))

    (tree / "sql" / "functions" / "a.sql").write_text(FUNCTION.format(value=43))
    (tree / "sql" / "functions" / "m_new.sql").write_text(
        "CREATE OR REPLACE FUNCTION aos.pytest_new() RETURNS integer LANGUAGE sql AS $fn$ SELECT 1 $fn$;\n"
    )
    (tree / "sql" / "functions" / "z_broken.sql").write_text(
        "CREATE OR REPLACE FUNCTION aos.pytest_broken() RETURNS integer LANGUAGE sql AS $fn$ SELECT 1 $fn$;\n"
        "SELECT 1 / 0;\n"
    )
    result = run_cli("migrate", env=env)
    assert_one_error_line(result, "functions/z_broken.sql", "SQLSTATE 22012", "nothing of it was applied")

    assert answer(migrated_dsn) == 43
    assert scalar(migrated_dsn, "SELECT to_regprocedure('aos.pytest_new()')") is not None
    assert scalar(migrated_dsn, "SELECT to_regprocedure('aos.pytest_broken()')") is None
    books_after = dict((path, checksum) for path, checksum, _ in query(migrated_dsn, BOOKS))
    assert "functions/z_broken.sql" not in books_after
    assert books_after["functions/a.sql"] != books_before["functions/a.sql"]

    listed = run_cli("migrations", env=env)
    states = {f[1]: f[2] for f in map(str.split, listed.stdout.splitlines()) if f and f[0] == "repeatable"}
    assert states == {
        "functions/a.sql": "applied",
        "functions/m_new.sql": "applied",
        "functions/z_broken.sql": "pending",
        "views/b.sql": "applied",
    }, str(listed)


def test_rollback_marks_repeatables_pending_and_migrate_reapplies_them(cli, migrated_dsn: str) -> None:
    assert cli("migrate").returncode == 0
    undone = cli("rollback", "--all", "--yes")
    assert undone.returncode == 0, str(undone)
    assert scalar(migrated_dsn, "SELECT to_regnamespace('aos')") is None
    assert repeatable_states(cli) == {"functions/a.sql": "pending", "views/b.sql": "pending"}
    again = cli("migrate")
    assert again.returncode == 0, str(again)
    assert reported(again.stdout)[-2:] == [
        "applied   functions/a.sql (repeatable)",
        "applied   views/b.sql (repeatable)",
    ], str(again)
    assert answer(migrated_dsn) == 42
