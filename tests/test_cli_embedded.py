"""`aosdb db start|stop|status|url` and the embedded default, through the CLI as a subprocess.

Each cluster lives in a temporary working directory on a free port (AOSDB_PORT), with AOSDB_DSN and
DATABASE_URL unset; the fixtures stop whatever was started. The tests of the lifecycle class run in
order on one cluster, as a user would type the commands.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import assert_one_error_line, cli_subprocess, discard_cluster, free_port

from aosdb.cluster import PG_BIN, EmbeddedCluster

pytestmark = pytest.mark.skipif(not (PG_BIN / "pg_ctl").exists(), reason=f"no PostgreSQL server binaries in {PG_BIN}")


class Embedded:
    """The CLI in one working directory with AOSDB_PORT set and no DSN in the environment."""

    def __init__(self, workdir: Path, port: int):
        self.workdir, self.port = workdir, port

    def __call__(self, *args: str):
        return cli_subprocess(*args, cwd=self.workdir,
                              env={"AOSDB_PORT": str(self.port), "AOSDB_DSN": None, "DATABASE_URL": None})


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    workdir = tmp_path_factory.mktemp("embedded")
    port = free_port()
    yield Embedded(workdir, port)
    discard_cluster(EmbeddedCluster(workdir=workdir, port=port), workdir)


class TestLifecycle:
    def test_status_before_first_start_exits_3(self, embedded: Embedded) -> None:
        result = embedded("db", "status")
        assert result.returncode == 3, str(result)
        assert "not initialised" in result.stdout, str(result)
        assert not (embedded.workdir / ".aosdb").exists()

    def test_start_creates_the_cluster_and_prints_the_port(self, embedded: Embedded) -> None:
        result = embedded("db", "start")
        assert result.returncode == 0, str(result)
        assert "started" in result.stdout and f"127.0.0.1:{embedded.port}" in result.stdout, str(result)
        assert (embedded.workdir / ".aosdb").is_dir()
        assert (embedded.workdir / ".aosdb" / "state.json").exists()

    def test_start_again_says_already_running(self, embedded: Embedded) -> None:
        result = embedded("db", "start")
        assert result.returncode == 0, str(result)
        assert "already running" in result.stdout and str(embedded.port) in result.stdout, str(result)

    def test_status_when_running_exits_0(self, embedded: Embedded) -> None:
        result = embedded("db", "status")
        assert result.returncode == 0, str(result)
        assert "running (pid" in result.stdout and f"127.0.0.1:{embedded.port}" in result.stdout, str(result)

    def test_url_prints_a_dsn_psycopg_connects_to(self, embedded: Embedded) -> None:
        result = embedded("db", "url")
        assert result.returncode == 0, str(result)
        dsn = result.stdout.strip()
        assert dsn.startswith("postgresql://") and "\n" not in dsn, str(result)
        assert f":{embedded.port}/" in dsn
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            assert conn.execute("SELECT current_database(), current_setting('port')").fetchone() == (
                "aosdb", str(embedded.port))

    def test_migrate_without_a_dsn_uses_the_embedded_cluster(self, embedded: Embedded) -> None:
        result = embedded("migrate")
        assert result.returncode == 0, str(result)
        assert "applied   0001_roles" in result.stdout, str(result)
        dsn = embedded("db", "url").stdout.strip()
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT to_regclass('activity.runs') IS NOT NULL").fetchone() == (True,)
        again = embedded("migrate")
        assert again.stdout.strip() == "database is up to date", str(again)
        status = embedded("status")
        assert status.returncode == 0 and f"127.0.0.1:{embedded.port}/aosdb" in status.stdout, str(status)

    def test_stop_twice_is_harmless(self, embedded: Embedded) -> None:
        first = embedded("db", "stop")
        assert first.returncode == 0 and "stopped" in first.stdout, str(first)
        second = embedded("db", "stop")
        assert second.returncode == 0 and "not running" in second.stdout, str(second)

    def test_status_when_stopped_exits_3(self, embedded: Embedded) -> None:
        result = embedded("db", "status")
        assert result.returncode == 3, str(result)
        assert "stopped" in result.stdout, str(result)

    def test_restart_keeps_the_migrated_database(self, embedded: Embedded) -> None:
        result = embedded("db", "start")
        assert result.returncode == 0 and "started" in result.stdout, str(result)
        again = embedded("migrate")
        assert again.returncode == 0 and again.stdout.strip() == "database is up to date", str(again)
        assert embedded("db", "stop").returncode == 0


def test_taken_port_is_one_line_naming_the_port_and_aosdb_port(run_cli, tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = {"AOSDB_PORT": str(port), "AOSDB_DSN": None, "DATABASE_URL": None}
        try:
            result = run_cli("db", "start", cwd=tmp_path, env=env)
            assert_one_error_line(result, str(port), "AOSDB_PORT")
            # A command that needs the embedded default fails the same way.
            migrate = run_cli("migrate", cwd=tmp_path, env=env)
            assert_one_error_line(migrate, str(port), "AOSDB_PORT")
        finally:
            discard_cluster(EmbeddedCluster(workdir=tmp_path, port=port), tmp_path)


def test_invalid_aosdb_port_is_one_line(run_cli, tmp_path: Path) -> None:
    result = run_cli("db", "start", cwd=tmp_path, env={"AOSDB_PORT": "not-a-port"})
    assert_one_error_line(result, "AOSDB_PORT")
