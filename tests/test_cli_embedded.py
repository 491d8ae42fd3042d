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
from conftest import assert_one_error_line, cli_subprocess, discard_cluster, free_port, server_bin

from aosdb import pgbin
from aosdb.cluster import EmbeddedCluster

pytestmark = pytest.mark.skipif(server_bin() is None, reason="no PostgreSQL server binaries")


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


def test_aosdb_home_runs_a_cluster_of_another_version_next_to_the_default(run_cli, tmp_path: Path) -> None:
    """AOSDB_HOME and AOSDB_PG_BIN: a second cluster, of another major version, in its own directory;
    that cluster keeps to its version afterwards."""
    default_bin = server_bin()
    other_bin = next((b for m in (18, 16) if (b := pgbin.bin_for_major(m)) and b != default_bin), None)
    if default_bin is None or other_bin is None or pgbin.major_version(other_bin) == pgbin.major_version(default_bin):
        pytest.skip("needs the server binaries of two major versions")
    home = tmp_path / "other-home"
    ports = free_port(), free_port()
    base = {"AOSDB_DSN": None, "DATABASE_URL": None, "AOSDB_PG_BIN": None}
    default_env = {**base, "AOSDB_PORT": str(ports[0])}
    other_env = {**base, "AOSDB_PORT": str(ports[1]), "AOSDB_HOME": str(home), "AOSDB_PG_BIN": str(other_bin)}
    try:
        assert run_cli("db", "start", cwd=tmp_path, env=default_env).returncode == 0
        started = run_cli("db", "start", cwd=tmp_path, env=other_env)
        assert started.returncode == 0 and f"127.0.0.1:{ports[1]}" in started.stdout, str(started)
        assert (home / "state.json").is_file() and (tmp_path / ".aosdb" / "state.json").is_file()
        versions = []
        for env in (default_env, other_env):
            dsn = run_cli("db", "url", cwd=tmp_path, env=env).stdout.strip()
            with psycopg.connect(dsn, connect_timeout=10) as conn:
                versions.append(conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()[0])
        assert versions == [pgbin.major_version(default_bin), pgbin.major_version(other_bin)]
        # Stopped, AOSDB_HOME's cluster refuses the other version's binaries in one line...
        assert run_cli("db", "stop", cwd=tmp_path, env=other_env).returncode == 0
        wrong = run_cli("db", "start", cwd=tmp_path, env={**other_env, "AOSDB_PG_BIN": str(default_bin)})
        assert_one_error_line(wrong, f"created by PostgreSQL {versions[1]}", "AOSDB_PG_BIN")
        # ...and without AOSDB_PG_BIN starts again with the binaries that created it.
        again = run_cli("db", "start", cwd=tmp_path, env={**other_env, "AOSDB_PG_BIN": None})
        assert again.returncode == 0 and "started" in again.stdout, str(again)
    finally:
        discard_cluster(EmbeddedCluster(workdir=tmp_path, port=ports[0]), tmp_path)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AOSDB_HOME", str(home))
            discard_cluster(EmbeddedCluster(port=ports[1]), tmp_path)
