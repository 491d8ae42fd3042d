"""The connections a migration runs on: bounded waits, server messages shown, blockers named.

Every session `aosdb migrate` opens sets lock_timeout and statement_timeout, so
that no phase queues writers behind it for longer than the lock timeout. While a
statement runs, a watcher on a second connection samples pg_blocking_pids() of
the migrating backend, so that a timeout can say who held the lock.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass

import psycopg

from aosdb.db import error_line
from aosdb.errors import AosdbError

APPLICATION_NAME = "aosdb migrate"

# SQLSTATEs of a bounded wait that ran out.
LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"


@dataclass(frozen=True)
class Timeouts:
    lock: str = "5s"
    statement: str = "10min"


def fault_point(point: str) -> None:
    """Fault injection for the tests: AOSDB_FAULT_KILL=<point> kills this process there, as kill -9 would."""
    if os.environ.get("AOSDB_FAULT_KILL") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def open_session(dsn: str, timeouts: Timeouts, autocommit: bool = False) -> psycopg.Connection:
    from aosdb.db import connect_raw

    conn = connect_raw(dsn, autocommit=True)
    try:
        conn.execute("SELECT set_config('application_name', %s, false), set_config('lock_timeout', %s, false), "
                     "set_config('statement_timeout', %s, false)", (APPLICATION_NAME, timeouts.lock, timeouts.statement))
    except psycopg.Error as exc:
        conn.close()
        raise AosdbError(f"--lock-timeout {timeouts.lock!r} or --statement-timeout {timeouts.statement!r} is not "
                         f"a PostgreSQL interval: {error_line(exc)}") from None
    conn.autocommit = autocommit
    return conn


@dataclass
class Blocker:
    pid: int
    user: str | None
    application: str | None
    state: str | None
    xact_start: str | None
    query_start: str | None
    query: str | None

    def describe(self) -> str:
        parts = [f"pid {self.pid}", f"user {self.user}"]
        if self.application:
            parts.append(f"application {self.application!r}")
        if self.state:
            parts.append(self.state)
        if self.xact_start:
            parts.append(f"transaction since {self.xact_start}")
        if self.query_start:
            parts.append(f"query since {self.query_start}")
        if self.query:
            parts.append(f"query {self.query!r}")
        return ", ".join(parts)


_BLOCKERS = """
SELECT a.pid, a.usename::text, nullif(a.application_name, ''), a.state,
       to_char(a.xact_start, 'YYYY-MM-DD HH24:MI:SS TZ'), to_char(a.query_start, 'YYYY-MM-DD HH24:MI:SS TZ'),
       left(regexp_replace(a.query, '\\s+', ' ', 'g'), 80)
FROM pg_catalog.pg_stat_activity AS a
WHERE a.pid = ANY (pg_catalog.pg_blocking_pids(%s))
ORDER BY a.pid"""


class BlockerWatch:
    """Samples, every 100 ms, which sessions block the watched backend; keeps the last ones seen."""

    def __init__(self, dsn: str):
        from aosdb.db import connect_raw

        self._conn = connect_raw(dsn, autocommit=True)
        self._conn.execute("SET application_name = 'aosdb migrate (watch)'")
        self._target: int | None = None
        self._seen: list[Blocker] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def watch(self, pid: int) -> None:
        with self._lock:
            self._target, self._seen = pid, []

    def blockers(self) -> list[Blocker]:
        with self._lock:
            return list(self._seen)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                target = self._target
            if target is None:
                continue
            try:
                rows = self._conn.execute(_BLOCKERS, (target,)).fetchall()
            except psycopg.Error:
                return
            if rows:
                with self._lock:
                    if self._target == target:
                        self._seen = [Blocker(*row) for row in rows]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._conn.close()


def failure(label: str, exc: psycopg.Error, watch: BlockerWatch | None, timeouts: Timeouts,
            consequence: str) -> AosdbError:
    """One line for a failed step and what it left; a timeout names the sessions that held the lock."""
    line = error_line(exc)
    sqlstate = exc.diag.sqlstate
    if sqlstate in (LOCK_NOT_AVAILABLE, QUERY_CANCELED) and watch is not None:
        blockers = watch.blockers()
        limit = f"lock_timeout {timeouts.lock}" if sqlstate == LOCK_NOT_AVAILABLE else f"statement_timeout {timeouts.statement}"
        if blockers:
            who = "; ".join(b.describe() for b in blockers)
            return AosdbError(f"{label}: gave up after {limit}, blocked by {who}. {consequence}; "
                              f"run aosdb migrate again once they finish, or end them with pg_terminate_backend(pid) "
                              f"| {line}")
        return AosdbError(f"{label}: gave up after {limit}. {consequence} | {line}")
    return AosdbError(f"{label} failed: {line}. {consequence}")
