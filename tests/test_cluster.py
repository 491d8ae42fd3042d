"""The embedded cluster against a real PostgreSQL server (no mocks).

One cluster per module on a free port, so a developer's cluster on 55432 is never touched.
The tests in this module run in order: the first one initializes the shared cluster.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import server_bin

from aosdb.cluster import DB_NAME, STATE_FILE, SUPERUSER, EmbeddedCluster, redact
from aosdb.errors import AosdbError

pytestmark = pytest.mark.skipif(server_bin() is None, reason="no PostgreSQL server binaries")

AS_ROOT = os.geteuid() == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def password_of(cluster: EmbeddedCluster) -> str:
    return cluster.dsn().split(":")[2].split("@")[0]


def discard(cluster: EmbeddedCluster, workdir: Path) -> None:
    """Stop the cluster and remove a /var/tmp fallback base, which pytest would not clean."""
    cluster.stop()
    data_dir = cluster.status().data_dir
    if not data_dir.is_relative_to(workdir):
        shutil.rmtree(data_dir.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cluster")


@pytest.fixture(scope="module")
def cluster(workdir: Path) -> Iterator[EmbeddedCluster]:
    embedded = EmbeddedCluster(workdir=workdir, port=free_port())
    yield embedded
    discard(embedded, workdir)


def test_first_start_initializes_and_second_start_is_harmless(cluster: EmbeddedCluster) -> None:
    assert not cluster.status().initialized
    assert cluster.start() is True
    assert cluster.status().initialized
    assert cluster.start() is False


def test_status_of_running_cluster(cluster: EmbeddedCluster) -> None:
    status = cluster.status()
    assert status.running and status.initialized
    assert status.port == cluster.port
    assert isinstance(status.pid, int)


def test_dsn_connects_to_app_database(cluster: EmbeddedCluster) -> None:
    with psycopg.connect(cluster.dsn()) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (DB_NAME,)
    assert cluster.ensure_running() == cluster.dsn()


def test_listens_on_loopback_only_with_private_socket_dir(cluster: EmbeddedCluster, workdir: Path) -> None:
    socket_dir = cluster.status().socket_dir
    with psycopg.connect(cluster.dsn()) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW unix_socket_directories").fetchone() == (str(socket_dir),)
    assert (workdir / ".aosdb" / "run").resolve() == socket_dir
    assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700


def test_layout_for_the_current_user(cluster: EmbeddedCluster, workdir: Path) -> None:
    home = workdir / ".aosdb"
    data_dir = cluster.status().data_dir
    if AS_ROOT:
        # pytest's temp root is 0700, closed to postgres: data lives in the /var/tmp fallback.
        assert (home / "data").is_symlink() and (home / "data").resolve() == data_dir
        assert data_dir.parent.name.startswith("aosdb-") and data_dir.parent.parent == Path("/var/tmp")
        assert stat.S_IMODE(data_dir.parent.stat().st_mode) == 0o700
        assert data_dir.owner() == SUPERUSER
    else:
        assert data_dir == home / "data" and not data_dir.is_symlink()
        assert data_dir.stat().st_uid == os.geteuid()
    assert (home / "server.log").exists()


def test_state_file_is_private(cluster: EmbeddedCluster, workdir: Path) -> None:
    state_file = workdir / ".aosdb" / STATE_FILE
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    assert password_of(cluster) in state_file.read_text()


def test_stop_then_start_keeps_data(cluster: EmbeddedCluster) -> None:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
    assert cluster.stop() is True
    assert cluster.stop() is False
    assert not cluster.status().running
    assert cluster.status().pid is None
    assert cluster.start() is True
    with psycopg.connect(cluster.dsn()) as conn:
        assert conn.execute("SELECT v FROM kept").fetchone() == (42,)


def test_port_in_use_is_one_clear_error(cluster: EmbeddedCluster) -> None:
    cluster.stop()
    with socket.socket() as squatter:
        # The stopped server's connections may linger in TIME_WAIT on this port.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", cluster.port))
        squatter.listen()
        with pytest.raises(AosdbError) as caught:
            cluster.start()
    message = str(caught.value)
    assert str(cluster.port) in message and "AOSDB_PORT" in message
    assert "\n" not in message
    assert password_of(cluster) not in message
    assert cluster.start() is True


def test_failed_start_reports_the_server_log(cluster: EmbeddedCluster) -> None:
    cluster.stop()
    conf = cluster.status().data_dir / "postgresql.conf"
    original = conf.read_text()
    conf.write_text(original + "\nshared_buffers = 'lots'\n")
    try:
        with pytest.raises(AosdbError) as caught:
            cluster.start()
    finally:
        conf.write_text(original)
    message = str(caught.value)
    assert "configuration file" in message and "\n" not in message
    assert password_of(cluster) not in message
    assert cluster.start() is True


def test_stale_pidfile_does_not_block_start(cluster: EmbeddedCluster) -> None:
    cluster.stop()
    data_dir = cluster.status().data_dir
    dead = subprocess.Popen(["true"])
    dead.wait()
    pidfile = data_dir / "postmaster.pid"
    pidfile.write_text(f"{dead.pid}\n{data_dir}\n0\n{cluster.port}\n\n127.0.0.1\n0 0\nready\n")
    owner = data_dir.stat()
    os.chown(pidfile, owner.st_uid, owner.st_gid)  # the server must be able to replace it
    assert not cluster.status().running
    assert cluster.start() is True
    assert cluster.status().pid != dead.pid


def test_never_initialized_cluster(tmp_path: Path) -> None:
    fresh = EmbeddedCluster(workdir=tmp_path, port=free_port())
    status = fresh.status()
    assert not status.running and not status.initialized and status.pid is None
    assert fresh.stop() is False
    with pytest.raises(AosdbError):
        fresh.dsn()
    assert not (tmp_path / ".aosdb").exists()


def test_port_comes_from_argument_then_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AOSDB_PORT", "54999")
    assert EmbeddedCluster(workdir=tmp_path).port == 54999
    assert EmbeddedCluster(workdir=tmp_path, port=54998).port == 54998
    monkeypatch.setenv("AOSDB_PORT", "not-a-port")
    with pytest.raises(AosdbError, match="AOSDB_PORT"):
        EmbeddedCluster(workdir=tmp_path)


@pytest.mark.skipif(not AS_ROOT, reason="the in-place layout for root needs a workdir postgres can traverse")
def test_root_keeps_data_in_place_when_postgres_can_traverse() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="aosdb-test-", dir="/tmp"))
    workdir.chmod(0o755)
    embedded = EmbeddedCluster(workdir=workdir, port=free_port())
    try:
        assert embedded.start() is True
        status = embedded.status()
        assert status.data_dir == workdir / ".aosdb" / "data" and not status.data_dir.is_symlink()
        assert status.data_dir.owner() == SUPERUSER and status.socket_dir.owner() == SUPERUSER
        with psycopg.connect(embedded.dsn()) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (DB_NAME,)
    finally:
        discard(embedded, workdir)
        shutil.rmtree(workdir, ignore_errors=True)


def test_redact_hides_the_secret() -> None:
    assert redact("password=s3cret failed", "s3cret") == "password=******** failed"
    assert redact("nothing to hide", None) == "nothing to hide"


def _fake_bin(directory: Path, initdb_fails: bool, with_postgres: bool = True) -> Path:
    """Server binaries that only say their version; initdb fails when asked to."""
    directory.mkdir(parents=True)
    directory.chmod(0o755)
    for name in ("pg_ctl", "initdb", "postgres"):
        if name == "postgres" and not with_postgres:
            continue
        body = ('echo "initdb: fake failure" >&2; exit 1' if name == "initdb" and initdb_fails
                else f'echo "{name} (PostgreSQL) 15.8"')
        (directory / name).write_text(f"#!/bin/sh\n{body}\n")
        (directory / name).chmod(0o755)
    return directory


def test_a_failed_first_start_leaves_nothing_half_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Where the postgres OS user can run it, so root runs it in place.
    bin_dir = _fake_bin(Path(tempfile.mkdtemp(prefix="aosdb-pytest-fakebin-", dir="/var/tmp")) / "bin", True)
    monkeypatch.setenv("AOSDB_PG_BIN", str(bin_dir))
    try:
        fresh = EmbeddedCluster(workdir=tmp_path, port=free_port())
        with pytest.raises(AosdbError, match="initdb failed .*initdb: fake failure") as err:
            fresh.start()
        assert "\n" not in str(err.value)
        assert not (tmp_path / ".aosdb").exists()
    finally:
        shutil.rmtree(bin_dir.parent, ignore_errors=True)


def test_binaries_without_postgres_are_one_line_and_make_nothing(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = _fake_bin(tmp_path / "pg" / "tools", False, with_postgres=False)
    monkeypatch.setenv("AOSDB_PG_BIN", str(bin_dir))
    fresh = EmbeddedCluster(workdir=tmp_path / "work", port=free_port())
    with pytest.raises(AosdbError, match="holds no pg_ctl, initdb and postgres") as err:
        fresh.start()
    assert "\n" not in str(err.value)
    assert not (tmp_path / "work").exists() or not (tmp_path / "work" / ".aosdb").exists()
