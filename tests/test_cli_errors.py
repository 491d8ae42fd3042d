"""Expected failures: one line on stderr, non-zero exit, no traceback, never a password."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from conftest import assert_one_error_line, free_port
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

PASSWORD = "Kiwi-Zebra-7f3q-Secret"
COMMANDS = [["migrate"], ["rollback"], ["migrations"], ["status"], ["test"]]


def assert_password_hidden(result, password: str = PASSWORD) -> None:
    assert password not in result.stdout + result.stderr, str(result)


@pytest.fixture
def login_role(pg_server: str) -> Iterator[str]:
    """A LOGIN role on the test server whose real password is not PASSWORD."""
    name = f"aosdb_pytest_login_{secrets.token_hex(3)}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(secrets.token_urlsafe(16))))
    yield name
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.mark.parametrize("command", [*COMMANDS, ["lint"]], ids=lambda c: c[0])
def test_closed_port_is_one_line_without_the_password(run_cli, command: list[str]) -> None:
    port = free_port()
    dsn = f"postgresql://someone:{PASSWORD}@127.0.0.1:{port}/somedb"
    result = run_cli(*command, env={"AOSDB_DSN": dsn})
    assert_one_error_line(result, "aosdb: cannot connect to", str(port))
    assert_password_hidden(result)


def test_closed_port_names_the_reason(run_cli) -> None:
    """The line says why (connection refused), not just libpq's follow-up hint, and has no tab in it."""
    port = free_port()
    result = run_cli("migrate", "--dsn", f"host=127.0.0.1 port={port} user=someone password={PASSWORD} dbname=somedb")
    line = assert_one_error_line(result, "aosdb: cannot connect to someone@127.0.0.1:")
    assert "refused" in line.lower(), line
    assert "\t" not in line, repr(line)
    assert_password_hidden(result)


@pytest.mark.parametrize("form", ["url", "keywords"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_wrong_password_is_one_line_without_the_password(run_cli, pg_server: str, login_role: str,
                                                          form: str, command: list[str]) -> None:
    server = conninfo_to_dict(pg_server)
    host, port = server.get("host", "127.0.0.1"), server.get("port", "5432")
    if form == "url":
        dsn = f"postgresql://{login_role}:{PASSWORD}@{host}:{port}/postgres"
    else:
        dsn = f"host={host} port={port} user={login_role} password='{PASSWORD}' dbname=postgres"
    try:
        psycopg.connect(dsn).close()
    except psycopg.OperationalError:
        pass
    else:
        pytest.skip("the test server does not check passwords")
    result = run_cli(*command, env={"AOSDB_DSN": dsn})
    line = assert_one_error_line(result, "aosdb: cannot connect to", login_role)
    assert "password authentication failed" in line, line
    assert_password_hidden(result)


def test_malformed_dsn_is_one_line(run_cli) -> None:
    result = run_cli("migrate", "--dsn", f"not-a-dsn {PASSWORD}")
    assert_one_error_line(result)
    assert_password_hidden(result)


def test_invalid_port_in_dsn_is_one_line(run_cli) -> None:
    result = run_cli("status", env={"DATABASE_URL": f"postgresql://someone:{PASSWORD}@127.0.0.1:notaport/db"})
    assert_one_error_line(result, "notaport")
    assert_password_hidden(result)


def test_database_errors_do_not_leak_the_password(run_cli, migrated_dsn: str, project_tree) -> None:
    """A failing migration reported through a DSN that carries a password."""
    (project_tree / "sql" / "migrations" / "0099_fail.sql").write_text("-- depends: 0006_contract\nSELECT 1 / 0;\n")
    (project_tree / "sql" / "migrations" / "0099_fail.rollback.sql").write_text("SELECT 1;\n")
    result = run_cli("migrate", env={"AOSDB_DSN": migrated_dsn, "AOSDB_ROOT": str(project_tree)})
    assert_one_error_line(result, "SQLSTATE 22012")
    server_password = conninfo_to_dict(migrated_dsn).get("password")
    if server_password:
        assert_password_hidden(result, server_password)


def test_missing_sql_tree_is_one_line(run_cli, tmp_path, fresh_dsn: str) -> None:
    result = run_cli("migrate", env={"AOSDB_DSN": fresh_dsn, "AOSDB_ROOT": str(tmp_path)})
    assert_one_error_line(result, "AOSDB_ROOT")


# Every command that needs the schema says, in one line, that the database is not migrated.
NEEDS_THE_SCHEMA = [["demo", "--yes"], ["refresh"], ["watch", "--limit", "1"], ["docs"], ["check", "."],
                    ["scenario", "run", "scenarios/"], ["prune-events", "--older-than", "30 days"],
                    ["schedule", "refresh", "--every", "1min"], ["schedule", "prune", "--every", "1d"]]


@pytest.mark.parametrize("command", NEEDS_THE_SCHEMA, ids=lambda c: c[0])
def test_an_unmigrated_database_is_one_line_naming_migrate(invoke, fresh_dsn: str, command: list[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(conftest_root())
    result = invoke(*command, env={"AOSDB_DSN": fresh_dsn})
    line = assert_one_error_line(result, "aosdb migrate")
    assert "not migrated" in line or "run `aosdb migrate` first" in line, line


def conftest_root():
    from conftest import REPO_ROOT

    return REPO_ROOT
