"""`aosdb migrate`, `rollback` and `migrations`: versioned files, then repeatable ones.

Versioned files (sql/migrations) run once each, in order. A transactional one
runs in one transaction together with its row in aosdb_migrations.applied_migrations,
so a crash at any instant leaves both or neither. A non-transactional one
(CREATE INDEX CONCURRENTLY) runs statement by statement; an index it leaves
INVALID is dropped, it is recorded only once every index it names is valid,
and running it again after a crash finishes it.

Repeatable files (sql/functions, then sql/views, in name order) are applied when
their checksum changed, each in its own short transaction with its checksum, so
that locks on busy tables (a trigger on activity.runs) are held for one file
only. Materialized views are rebuilt beside the live ones and swapped in
(view_swap.py).

One `aosdb migrate` at a time per database: a session advisory lock, which the
server releases when the session ends, so a killed run never leaves a stale
lock behind. Every session sets lock_timeout and statement_timeout; a wait that
runs out names the sessions that blocked it. The preflight (privileges.py)
checks the migrating user's privileges before anything is written.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

import psycopg
from psycopg import sql

from aosdb import bookkeeping, view_swap
from aosdb.errors import AosdbError
from aosdb.migration_files import (RepeatableFile, Versioned, checksum, repeatable_files, split_statements,
                                   versioned_migrations)
from aosdb.migration_session import (BlockerWatch, Timeouts, failure, fault_point,
                                     open_session)

# Serialises `aosdb migrate` and `aosdb rollback` runs on one database.
RUNNER_LOCK_KEY = 7_401_001
# How long (seconds) a second run waits for the first before giving up and naming it.
RUNNER_LOCK_WAIT_ENV = "AOSDB_MIGRATE_LOCK_WAIT"
RUNNER_LOCK_WAIT = 120.0

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class Output:
    """Where the runner's messages go: server notices, warnings (the CLI prints them on stderr)."""

    notice: Say = _quiet
    warning: Say = _quiet


class _Runner:
    """One migrating session (holding the runner lock) and a watcher naming whoever blocks it."""

    def __init__(self, dsn: str, timeouts: Timeouts, out: Output):
        self.dsn, self.timeouts, self.out = dsn, timeouts, out
        self._label: str | None = None
        self._skipped = 0  # the current file's IF [NOT] EXISTS no-ops, told as one line at its end
        self.conn = open_session(dsn, timeouts, autocommit=True)
        self.conn.add_notice_handler(self._relay)
        self.watch: BlockerWatch | None = None

    def __enter__(self) -> _Runner:
        return self

    def __exit__(self, *exc) -> None:
        if self.watch is not None:
            self.watch.close()
        self.conn.close()

    @property
    def label(self) -> str | None:
        """The file whose statements run now (None: the runner's own bookkeeping)."""
        return self._label

    @label.setter
    def label(self, value: str | None) -> None:
        if self._skipped and self._label is not None:
            self.out.notice(f"notice: {self._label}: {self._skipped} statement(s) with IF [NOT] EXISTS had "
                            "nothing to do (skipped)")
        self._label, self._skipped = value, 0

    def _relay(self, diag: psycopg.errors.Diagnostic) -> None:
        """Server NOTICEs and WARNINGs raised by a migration file reach the output, naming the file.

        The notices of IF [NOT] EXISTS statements that had nothing to do ("... does not exist,
        skipping") are counted instead, one line per file: on a fresh install they are dozens."""
        if self.label is None:
            return  # the runner's own bookkeeping statements
        severity = (diag.severity_nonlocalized or diag.severity or "NOTICE").upper()
        if severity == "NOTICE" and diag.sqlstate in ("00000", "42P07", "42710", "42P06") \
                and (diag.message_primary or "").endswith(", skipping"):
            self._skipped += 1
            return
        # The detail names the objects of "drop cascades to N other objects": worth a DBA's eye.
        detail = "; ".join(line.strip() for line in (diag.message_detail or "").splitlines() if line.strip())
        message = f"{self.label}: {diag.message_primary}" + (f" ({detail})" if detail else "")
        if severity == "WARNING":
            self.out.warning(message)
        else:
            self.out.notice(f"{severity.lower()}: {message}")

    def preflight(self) -> None:
        from aosdb import privileges

        result = privileges.preflight(self.conn)
        for warning in result.warnings:
            self.out.warning(warning)
        result.raise_if_missing()

    def lock(self) -> None:
        """The runner lock; a run that waited RUNNER_LOCK_WAIT seconds names the session holding it.

        It polls pg_try_advisory_lock rather than waiting in pg_advisory_lock: a waiting statement
        keeps its snapshot, and CREATE INDEX CONCURRENTLY in the run holding the lock would wait for it.
        """
        wait = float(os.environ.get(RUNNER_LOCK_WAIT_ENV) or RUNNER_LOCK_WAIT)
        deadline = time.monotonic() + wait
        while not self.conn.execute("SELECT pg_try_advisory_lock(%s)", (RUNNER_LOCK_KEY,)).fetchone()[0]:
            if time.monotonic() >= deadline:
                raise AosdbError(self._lock_holder_message(wait))
            time.sleep(0.2)
        self.watch = BlockerWatch(self.dsn)
        self.watch.watch(self.conn.info.backend_pid)

    def _lock_holder_message(self, wait: float) -> str:
        rows = self.conn.execute(
            """SELECT a.pid, a.usename::text, a.application_name, a.client_addr::text,
                      to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'), a.state
               FROM pg_catalog.pg_locks AS l JOIN pg_catalog.pg_stat_activity AS a USING (pid)
               WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = %s
                 AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())""",
            (RUNNER_LOCK_KEY,)).fetchall()
        who = "; ".join(f"pid {pid}, user {user}, application {app!r}, from {addr or 'local socket'}, "
                        f"connected since {since}, {state}" for pid, user, app, addr, since, state in rows)
        return (f"another aosdb migrate or rollback holds this database's migration lock ({who or 'it just ended'}); "
                f"gave up after {wait:g} s. The lock goes with its session: if that process was killed "
                f"and its session lingers, end it with SELECT pg_terminate_backend(pid)")

    # ---- versioned ---------------------------------------------------------------------------

    def apply_versioned(self, migration: Versioned) -> None:
        if migration.transactional:
            self._in_transaction(f"migration {migration.id}", migration.id, migration.text(),
                                 lambda: bookkeeping.record(self.conn, migration.id))
        else:
            self._non_transactional(migration, migration.text(),
                                    lambda: bookkeeping.record(self.conn, migration.id))

    def rollback_versioned(self, migration: Versioned) -> None:
        text = migration.rollback_text()
        if migration.transactional:
            self._in_transaction(f"rollback of {migration.id}", migration.id, text,
                                 lambda: bookkeeping.forget(self.conn, migration.id))
        else:
            self._non_transactional(migration, text, lambda: bookkeeping.forget(self.conn, migration.id),
                                    label=f"rollback of {migration.id}")

    def _in_transaction(self, label: str, point: str, text: str, record: Callable[[], None]) -> None:
        self.label = label
        try:
            with self.conn.transaction():
                fault_point(f"before:{point}")
                self.conn.execute(text)
                fault_point(f"executed:{point}")
                self.conn.execute("RESET ROLE")
                record()
                fault_point(f"recorded:{point}")
            fault_point(f"committed:{point}")
        except psycopg.Error as exc:
            raise failure(label, exc, self.watch, self.timeouts,
                          "It was rolled back: nothing of it was applied or recorded") from None
        finally:
            self.label = None

    def _non_transactional(self, migration: Versioned, text: str, record: Callable[[], None],
                           label: str | None = None) -> None:
        label = label or f"migration {migration.id}"
        indexes = migration.concurrent_indexes(text)
        built = [i for i in indexes if i.creates]
        self.label = label
        try:
            # What a crash or a timeout left INVALID goes first, so that IF NOT EXISTS builds it again.
            self._drop_invalid(built)
            for number, statement in enumerate(split_statements(text), start=1):
                fault_point(f"statement{number}:{migration.id}")
                self.conn.execute(statement)
            self._restore_session()
            invalid = self._drop_invalid(built)
            missing = [f"{i.schema}.{i.name}" for i in built if not self._index_state(i.schema, i.name)[0]]
            left = [f"{i.schema}.{i.name}" for i in indexes if not i.creates and self._index_state(i.schema, i.name)[0]]
            if invalid or missing or left:
                raise AosdbError(
                    f"{label}: not recorded: " + "; ".join(filter(None, [
                        invalid and f"index {', '.join(invalid)} was left INVALID and was dropped",
                        missing and f"index {', '.join(missing)} was not built",
                        left and f"index {', '.join(left)} still exists"]))
                    + ". Run aosdb migrate again")
            fault_point(f"executed:{migration.id}")
            with self.conn.transaction():
                record()
            fault_point(f"committed:{migration.id}")
        except psycopg.Error as exc:
            self._restore_session()
            raise failure(label, exc, self.watch, self.timeouts,
                          f"It is not recorded{self._clean_up_after(built)}; running aosdb migrate again finishes it"
                          ) from None
        finally:
            self.label = None
            self._restore_session()

    def _restore_session(self) -> None:
        """A non-transactional file sets session-level settings and role: back to the runner's own."""
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            return
        self.conn.execute("RESET ROLE")
        self.conn.execute("SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
                          (self.timeouts.lock, self.timeouts.statement))

    def _index_state(self, schema: str, name: str) -> tuple[bool, bool]:
        """(exists, valid)."""
        row = self.conn.execute(
            """SELECT i.indisvalid FROM pg_catalog.pg_class AS c
               JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
               JOIN pg_catalog.pg_index AS i ON i.indexrelid = c.oid
               WHERE n.nspname = %s AND c.relname = %s""", (schema, name)).fetchone()
        return (row is not None, bool(row and row[0]))

    def _drop_invalid(self, indexes) -> list[str]:
        dropped = []
        for index in indexes:
            exists, valid = self._index_state(index.schema, index.name)
            if exists and not valid:
                self.conn.execute("SET ROLE aos_owner")
                self.conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}.{}").format(
                    sql.Identifier(index.schema), sql.Identifier(index.name)))
                self.conn.execute("RESET ROLE")
                dropped.append(f"{index.schema}.{index.name}")
        return dropped

    def _clean_up_after(self, built) -> str:
        """After a failed build: drop the INVALID index it left, or say that the next run will."""
        invalid = [f"{i.schema}.{i.name}" for i in built if self._index_state(i.schema, i.name) == (True, False)]
        if not invalid:
            return ""
        try:
            self._drop_invalid(built)
        except psycopg.Error as exc:
            self._restore_session()
            return (f"; the INVALID index {', '.join(invalid)} it left could not be dropped now "
                    f"({exc.diag.message_primary}): the next aosdb migrate drops it and builds it again")
        return f"; the INVALID index {', '.join(invalid)} it left was dropped"

    # ---- repeatable --------------------------------------------------------------------------

    def apply_file(self, file: RepeatableFile) -> None:
        """A function file, or a view file without a materialized view: one transaction with its checksum."""
        text = file.text()

        def record() -> None:
            bookkeeping.record_repeatable(self.conn, file.rel, checksum(text))

        # Objects belong to aos_owner, whoever runs the migration.
        self._in_transaction(file.rel, file.rel, "SET LOCAL ROLE aos_owner;\n" + text, record)

    def apply_view_file(self, file: RepeatableFile, view: view_swap.ViewFile, recreate_dependents: bool) -> None:
        text = file.text()
        self.label = file.rel
        try:
            try:
                view_swap.build(self.conn, view)
            except psycopg.Error as exc:
                raise failure(f"{file.rel} (building {view.qualified} beside the live one)", exc, self.watch,
                              self.timeouts, "The live view is unchanged") from None
            fault_point(f"built:{file.rel}")
            try:
                with self.conn.transaction():
                    view_swap.swap(self.conn, view, recreate_dependents,
                                   lambda: bookkeeping.record_repeatable(self.conn, file.rel, checksum(text)))
                    fault_point(f"recorded:{file.rel}")
            except psycopg.Error as exc:
                raise failure(f"{file.rel} (swapping in the new {view.qualified})", exc, self.watch, self.timeouts,
                              "The live view is unchanged") from None
        finally:
            self.label = None


def _view_files() -> dict[str, view_swap.ViewFile | None]:
    return {f.rel: view_swap.parse_view_file(f.rel, f.text()) for f in repeatable_files() if f.is_view}


def _refuse_dropping_what_a_dba_built(conn: psycopg.Connection, pending: list[Versioned],
                                      views: dict[str, view_swap.ViewFile | None], undo: bool = False) -> None:
    """A pending migration that drops a view file's materialized view stops the run, before anything
    changes, when objects a DBA built depend on it: a plain DROP would lose indexes and grants silently."""
    for migration in pending:
        text = migration.rollback_text() if undo else migration.text()
        for dropped in migration.dropped_matviews(text):
            for view in views.values():
                if view is None or view.qualified != dropped:
                    continue
                deps = view_swap.find_dependents(conn, view)
                if not deps.empty():
                    raise AosdbError(
                        f"{'the rollback of ' if undo else ''}migration {migration.id} drops {view.qualified} "
                        f"(aosdb migrate builds it again from {view.rel}), and objects outside aosdb depend on it or grants aosdb does "
                        f"not make exist on it: {deps.describe()}. Nothing was changed. Drop them, run aosdb "
                        f"migrate, and create them again")


@dataclass
class Applied:
    versioned: list[str]
    repeatables: list[str]


def migrate(dsn: str, out: Output | None = None, timeouts: Timeouts | None = None,
            recreate_dependents: bool = False) -> Applied:
    """Apply pending versioned migrations, then changed repeatable files. Returns what was applied."""
    out, timeouts = out or Output(), timeouts or Timeouts()
    files = versioned_migrations()
    repeatables = repeatable_files()
    views = _view_files()
    with _Runner(dsn, timeouts, out) as run:
        run.preflight()
        run.lock()
        bookkeeping.ensure(run.conn)
        applied = bookkeeping.applied(run.conn)
        unknown = sorted(set(applied) - {m.id for m in files})
        if unknown:
            out.warning(f"this database has migrations this checkout does not know: {', '.join(unknown)} "
                        "(applied by a newer aosdb?)")
        pending = [m for m in files if m.id not in applied]
        known = bookkeeping.repeatables(run.conn)
        changed = [f for f in repeatables if known.get(f.rel, (None,))[0] != checksum(f.text())]
        # What a DBA built on a view to be rebuilt stops the run before anything changes.
        for file in changed:
            if views.get(file.rel):
                deps = view_swap.find_dependents(run.conn, views[file.rel])
                if not deps.empty() and (not recreate_dependents or deps.others):
                    raise view_swap.refuse(views[file.rel], deps)
        _refuse_dropping_what_a_dba_built(run.conn, pending, views)
        for migration in pending:
            run.apply_versioned(migration)
        # A view file whose materialized view is missing (a migration dropped it to change a column
        # it reads, or someone else did) is built again even when the file did not change.
        changed += [f for f in repeatables if f not in changed and views.get(f.rel)
                    and run.conn.execute("SELECT to_regclass(%s) IS NULL", (views[f.rel].qualified,)).fetchone()[0]]
        for file in changed:
            if views.get(file.rel):
                run.apply_view_file(file, views[file.rel], recreate_dependents)
            else:
                run.apply_file(file)
        if any(views.get(f.rel) for f in changed):
            view_swap.drop_staging_schema(run.conn)
    return Applied([m.id for m in pending], [f.rel for f in changed])


def rollback(dsn: str, count: int | None = 1, out: Output | None = None,
             timeouts: Timeouts | None = None) -> list[str]:
    """Undo the last `count` versioned migrations (None: all of them), newest first.

    Each one's rollback file and the removal of its record commit together. The
    repeatable files are then all marked pending: the next `migrate` re-applies them.
    """
    if count is not None and count < 1:
        raise AosdbError("--count must be at least 1")
    out, timeouts = out or Output(), timeouts or Timeouts()
    files = versioned_migrations()
    with _Runner(dsn, timeouts, out) as run:
        run.lock()
        if not bookkeeping.exists(run.conn) and not bookkeeping.applied(run.conn):
            return []
        bookkeeping.ensure(run.conn)
        applied = bookkeeping.applied(run.conn)
        to_undo = [m for m in reversed(files) if m.id in applied]
        if count is not None:
            to_undo = to_undo[:count]
        _refuse_dropping_what_a_dba_built(run.conn, to_undo, _view_files(), undo=True)
        for migration in to_undo:
            run.rollback_versioned(migration)
    return [m.id for m in to_undo]


@dataclass
class VersionedState:
    id: str
    applied_at: str | None


@dataclass
class RepeatableState:
    path: str  # relative to sql/, e.g. functions/incident_engine.sql
    checksum: str
    applied_checksum: str | None
    applied_at: str | None

    @property
    def state(self) -> str:
        if self.applied_checksum is None:
            return "pending"
        return "applied" if self.applied_checksum == self.checksum else "changed"


def status(dsn: str) -> tuple[list[VersionedState], list[RepeatableState]]:
    """Every versioned and repeatable migration with whether (and when) it was applied. Reads only."""
    from aosdb.db import connect

    with connect(dsn) as conn:
        conn.read_only = True
        applied = bookkeeping.applied(conn)
        known = bookkeeping.repeatables(conn)
    versioned = [VersionedState(m.id, applied.get(m.id)) for m in versioned_migrations()]
    repeatables = []
    for file in repeatable_files():
        applied_checksum, ts = known.get(file.rel, (None, None))
        repeatables.append(RepeatableState(file.rel, checksum(file.text()), applied_checksum, ts))
    return versioned, repeatables
