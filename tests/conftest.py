"""Shared fixtures: one PostgreSQL server per run, a database per test, the CLI two ways.

- ``pg_server``: the admin DSN of the server every test uses. AOSDB_TEST_DSN when set,
  else a private embedded cluster on a free port, stopped at the end of the run.
  The developer's cluster (port 55432, the project's .aosdb/) is never touched.
- ``server_of``: server_of(15|16|18) is the admin DSN of a server of that major version, started
  once per run (15 is ``pg_server`` when it is a 15); skipped when that version's binaries are missing.
- ``fresh_dsn`` / ``new_database``: new empty databases, dropped WITH (FORCE) afterwards.
- ``migrated_dsn``: a clone (CREATE DATABASE ... TEMPLATE) of one database migrated once per run.
- ``run_cli``: ``python -m aosdb ...`` as a real subprocess with a controlled environment.
- ``invoke``: the Typer app in process through CliRunner, for the cheap cases.
- ``project_tree``: a temporary copy of the project (sql/migrations, .sqlfluff) for AOSDB_ROOT.

Plain helpers (query, scalar, schema_dump, assert_one_error_line, ...) are imported by the test
modules with ``from conftest import ...``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from typer.testing import CliRunner

from aosdb.cli import app
from aosdb import pgbin
from aosdb.cluster import EmbeddedCluster
from aosdb.errors import AosdbError
from aosdb.config import with_dbname

REPO_ROOT = Path(__file__).resolve().parents[1]
# What points the CLI (or libpq under it) at a database or a tree: never inherited by a test.
SCRUBBED_ENV = ("AOSDB_DSN", "DATABASE_URL", "AOSDB_ROOT", "AOSDB_PORT", "AOSDB_HOME",
                "PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSERVICE")


# ---- plain helpers ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dbname_of(dsn: str) -> str:
    return conninfo_to_dict(dsn)["dbname"]


def query(dsn: str, statement: str, params: Sequence | None = None) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def scalar(dsn: str, statement: str, params: Sequence | None = None):
    rows = query(dsn, statement, params)
    return rows[0][0] if rows else None


def server_bin() -> Path | None:
    """The server binaries the embedded clusters use (pgbin's choice), None when there are none."""
    try:
        return pgbin.find_bin()
    except AosdbError:
        return None


def schema_dump(dsn: str) -> str:
    """pg_dump --schema-only, without the \\restrict/\\unrestrict lines whose keys are random."""
    tools = server_bin()
    assert tools is not None, "no PostgreSQL binaries for pg_dump"
    proc = subprocess.run(
        [str(tools / "pg_dump"), "--schema-only", "--no-password", f"--dbname={dsn}"],
        capture_output=True, text=True, check=False, env=clean_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return "".join(
        line for line in proc.stdout.splitlines(keepends=True)
        if not line.startswith(("\\restrict", "\\unrestrict"))
    )  # fmt: skip


def clean_env(**overrides: str | None) -> dict[str, str]:
    """os.environ without anything that selects a database or a tree, plus overrides (None unsets)."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


class CliResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def reported(stdout: str) -> list[str]:
    """What a migrate or rollback reported, without the server notices it relays ("notice: <file>: ...")."""
    return [line for line in stdout.splitlines() if not line.startswith("notice: ")]


def assert_one_error_line(result: CliResult, *fragments: str) -> str:
    """An expected failure: non-zero exit, exactly one 'aosdb: ...' line on stderr, no traceback."""
    assert result.returncode != 0, str(result)
    assert "Traceback" not in result.stderr + result.stdout, str(result)
    assert len(result.stderr_lines) == 1, str(result)
    line = result.stderr_lines[0]
    assert line.startswith("aosdb: "), str(result)
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def cli_subprocess(
    *args: str,
    env: dict[str, str | None] | None = None,
    cwd: Path | None = None,
    timeout: float = 180,
) -> CliResult:
    proc = subprocess.run(
        [sys.executable, "-m", "aosdb", *args],
        env=clean_env(**(env or {})), cwd=cwd, capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def _create_database(admin_dsn: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            stmt += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(stmt)
    return with_dbname(admin_dsn, name)


def _drop_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def discard_cluster(cluster: EmbeddedCluster, workdir: Path) -> None:
    """Stop an embedded cluster and remove its /var/tmp fallback base, which pytest would not clean."""
    cluster.stop()
    data_dir = cluster.status().data_dir
    if not data_dir.resolve().is_relative_to(workdir.resolve()):
        shutil.rmtree(data_dir.resolve().parent, ignore_errors=True)


# ---- isolation ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _isolated_from_developer_setup(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test sees the developer's AOSDB_DSN/DATABASE_URL/AOSDB_ROOT, and an in-process CLI call
    that falls back to the embedded default lands in a temporary directory, never in the checkout."""
    for name in SCRUBBED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


# ---- the server and its databases ------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Admin DSN (database postgres) of the server for the whole run."""
    external = os.environ.get("AOSDB_TEST_DSN")
    if external:
        yield external
        return
    if server_bin() is None:
        pytest.skip(f"no PostgreSQL server binaries and no AOSDB_TEST_DSN: {pgbin.INSTALL_HINT}")
    workdir = tmp_path_factory.mktemp("pgserver")
    cluster = EmbeddedCluster(workdir=workdir, port=free_port())
    try:
        cluster.start()
        yield cluster.dsn("postgres")
    finally:
        discard_cluster(cluster, workdir)


def server_major(dsn: str) -> int:
    return int(scalar(dsn, "SELECT current_setting('server_version_num')::int / 10000"))


@pytest.fixture(scope="session")
def server_of(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[int], str]]:
    """Factory: server_of(major) is the admin DSN (database postgres) of a running server of that
    major version, started on first use and stopped at the end of the run. 15 is ``pg_server`` when
    that is a 15. Skips the test when the version's binaries are not installed."""
    started: dict[int, str] = {}
    clusters: list[tuple[EmbeddedCluster, Path]] = []

    def get(major: int) -> str:
        if major in started:
            return started[major]
        if major == 15:
            shared = request.getfixturevalue("pg_server")
            if server_major(shared) == 15:
                started[major] = shared
                return shared
        bin_dir = pgbin.bin_for_major(major)
        if bin_dir is None:
            pytest.skip(f"no PostgreSQL {major} server binaries: {pgbin.install_hint(major)}")
        workdir = tmp_path_factory.mktemp(f"pg{major}server")
        cluster = EmbeddedCluster(workdir=workdir, port=free_port(), bin_dir=bin_dir)
        clusters.append((cluster, workdir))
        cluster.start()
        started[major] = cluster.dsn("postgres")
        return started[major]

    try:
        yield get
    finally:
        for cluster, workdir in clusters:
            discard_cluster(cluster, workdir)


@pytest.fixture
def new_database(pg_server: str) -> Iterator[Callable[..., str]]:
    """Factory: new_database(template=None) creates a uniquely named database and returns its DSN."""
    created: list[str] = []

    def make(template: str | None = None) -> str:
        name = f"aosdb_pytest_{secrets.token_hex(4)}"
        created.append(name)
        return _create_database(pg_server, name, template)

    yield make
    for name in created:
        _drop_database(pg_server, name)


@pytest.fixture
def fresh_dsn(new_database: Callable[..., str]) -> str:
    """A new, empty database."""
    return new_database()


@pytest.fixture(scope="session")
def migrated_template(pg_server: str) -> Iterator[str]:
    """Name of a database migrated once (real project, through the CLI) to clone per test."""
    name = f"aosdb_pytest_tpl_{secrets.token_hex(4)}"
    dsn = _create_database(pg_server, name)
    try:
        result = cli_subprocess("migrate", env={"AOSDB_DSN": dsn})
        assert result.returncode == 0, str(result)
        yield name
    finally:
        _drop_database(pg_server, name)


@pytest.fixture
def migrated_dsn(new_database: Callable[..., str], migrated_template: str) -> str:
    """A fully migrated database (clone of the session template)."""
    return new_database(template=migrated_template)


# ---- the CLI -----------------------------------------------------------------------------------


@pytest.fixture
def run_cli(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., CliResult]:
    """run_cli(*args, env={...}, cwd=None) runs `python -m aosdb` in a clean environment.

    env entries are added to (None: removed from) os.environ minus SCRUBBED_ENV; cwd defaults to an
    empty temporary directory, so the embedded default never means the checkout's .aosdb/."""
    default_cwd = tmp_path_factory.mktemp("cli-cwd")

    def run(*args: str, env: dict[str, str | None] | None = None, cwd: Path | None = None,
            timeout: float = 180) -> CliResult:
        return cli_subprocess(*args, env=env, cwd=cwd or default_cwd, timeout=timeout)

    return run


@pytest.fixture
def invoke() -> Callable[..., CliResult]:
    """invoke(*args, env={...}) runs the Typer app in process (CliRunner); same result shape as run_cli."""
    runner = CliRunner()

    def run(*args: str, env: dict[str, str | None] | None = None) -> CliResult:
        result = runner.invoke(app, list(args), env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"unexpected exception: {result.exception!r}\n{result.output}") from result.exception
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def project_tree(tmp_path: Path) -> Path:
    """A copy of the project's sql/migrations (and .sqlfluff) with empty functions/, views/, tests/."""
    root = tmp_path / "project"
    shutil.copytree(REPO_ROOT / "sql" / "migrations", root / "sql" / "migrations")
    for sub in ("functions", "views", "tests"):
        (root / "sql" / sub).mkdir()
    shutil.copy(REPO_ROOT / ".sqlfluff", root / ".sqlfluff")
    return root
