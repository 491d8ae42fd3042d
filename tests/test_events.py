"""SPEC 7: the outbox aos.events, NOTIFY aos_events and `aosdb watch`.

Real connections and real commits on a migrated clone per test (exact counts): a listener
connection proves that notifications arrive at commit and never on rollback, every engine effect
and operator action is checked against the outbox row it appended, and `aosdb watch` runs as a
real subprocess (replay with --since, following, --tenant, out-of-order commits). Every wait is
bounded and every watcher is killed in a finally.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from conftest import assert_one_error_line, clean_env
from psycopg.conninfo import make_conninfo

# How long a notification or a watcher line may take to show up (the watcher's own poll is 5 s).
ARRIVAL_TIMEOUT = 10.0
# How long we listen to prove that nothing arrives.
SILENCE = 1.0

EVENT_KEYS = {"seq", "created_at", "event", "tenant_id", "id", "payload"}


# ---- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def db(migrated_dsn: str) -> str:
    """A migrated clone with tenants t1 and t2 registered (registering appends no event)."""
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        conn.execute("SELECT aos.register_tenant('t1'), aos.register_tenant('t2')")
    return migrated_dsn


def insert_run(conn: psycopg.Connection, tenant: str, run_id: str, status: str = "failed",
               error_code: str | None = "EXECUTION_TIMEOUT") -> None:
    conn.execute(
        "INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code) VALUES (%s, %s, 'agent-a', %s, %s)",
        (tenant, run_id, status, error_code),
    )


def fail_run(dsn: str, tenant: str, run_id: str, error_code: str = "EXECUTION_TIMEOUT") -> None:
    """One committed transaction that inserts a failed run."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        insert_run(conn, tenant, run_id, "failed", error_code)


def outbox(dsn: str, after: int = 0, tenant: str | None = None) -> list[dict]:
    """The outbox rows with seq > after (in seq order), shaped like a watch line."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT seq, created_at, event, tenant_id, subject_id, payload FROM aos.events"
            " WHERE seq > %s AND (%s::text IS NULL OR tenant_id = %s::text) ORDER BY seq",
            (after, tenant, tenant),
        ).fetchall()
    return [{"seq": s, "created_at": c, "event": e, "tenant_id": t, "id": i, "payload": p}
            for s, c, e, t, i, p in rows]


def max_seq(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT coalesce(max(seq), 0) FROM aos.events").fetchone()[0]


def rows_of_tx(dsn: str, tx_id: str) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT seq FROM aos.events WHERE tx_id = %s::xid8 ORDER BY seq", (tx_id,)).fetchall()


def brief(events: list[dict]) -> list[tuple]:
    """What identifies an event: (seq, event, tenant_id, id)."""
    return [(e["seq"], e["event"], e["tenant_id"], e["id"]) for e in events]


@contextmanager
def operator(dsn: str, tenant: str) -> Iterator[psycopg.Connection]:
    """An autocommit session as aos_operator for one tenant."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE aos_operator")
        conn.execute("SELECT set_config('aos.tenant_id', %s, false)", (tenant,))
        yield conn


class Listener:
    """LISTEN aos_events on an autocommit connection of its own."""

    def __init__(self, dsn: str):
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute("LISTEN aos_events")

    def take(self, count: int, timeout: float = ARRIVAL_TIMEOUT) -> list[dict]:
        """Exactly `count` notifications (bounded wait), then proof that no extra one follows."""
        got = [json.loads(n.payload) for n in self.conn.notifies(timeout=timeout, stop_after=count)] if count else []
        got += [json.loads(n.payload) for n in self.conn.notifies(timeout=0.3)]
        assert len(got) == count, f"expected {count} notifications, got {len(got)}: {got}"
        for n in self.conn.notifies(timeout=0.01):  # nothing left behind in the backlog
            raise AssertionError(f"unexpected notification {n.payload}")
        return got

    def silent(self, seconds: float = SILENCE) -> list[str]:
        return [n.payload for n in self.conn.notifies(timeout=seconds)]

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def listener(db: str) -> Iterator[Listener]:
    lst = Listener(db)
    try:
        yield lst
    finally:
        lst.close()


def assert_notified(notes: list[dict], rows: list[dict]) -> None:
    """One notification per outbox row, carrying its seq, event, tenant_id and id.

    Not necessarily in seq order: an engine fired by another engine's statement (the proposal of
    an incident) notifies before the statement that caused it does; seq is the order."""
    for note in notes:
        assert {"seq", "event", "tenant_id", "id"} <= note.keys(), note
    got = sorted((n["seq"], n["event"], n["tenant_id"], n["id"]) for n in notes)
    assert got == brief(rows)


def action(dsn: str, listener: Listener, do):
    """Run `do()` (which commits) and return the outbox rows it appended, checked against the
    notifications; when do() returns a value, (rows, value)."""
    before = max_seq(dsn)
    result = do()
    rows = outbox(dsn, before)
    assert_notified(listener.take(len(rows)), rows)
    return rows if result is None else (rows, result)


# ---- `aosdb watch` as a subprocess ---------------------------------------------------------------


class Watcher:
    """`python -m aosdb watch ...` running in the background; its stdout lines in a queue."""

    def __init__(self, dsn: str, *args: str, cwd: Path):
        self.app = f"aosdb-watch-{uuid.uuid4().hex[:10]}"
        self.admin_dsn = dsn
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aosdb", "watch", "--dsn", make_conninfo(dsn, application_name=self.app), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=cwd,
            env=clean_env(PYTHONUNBUFFERED="1"),
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.seen: list[dict] = []

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_ready(self, timeout: float = ARRIVAL_TIMEOUT) -> None:
        """Until the watcher has listened and finished its first read of the outbox (its session idles after it)."""
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"watch exited early: {self.stderr()}"
                ready = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state = 'idle'"
                    " AND query LIKE '%%FROM aos.events%%WHERE seq >%%'", (self.app,)).fetchone()[0]  # fmt: skip
                if ready:
                    return
                time.sleep(0.05)
        raise AssertionError(f"watch not ready after {timeout}s: {self.stderr()}")

    def take(self, count: int, timeout: float = ARRIVAL_TIMEOUT) -> list[dict]:
        """The next `count` lines, each a JSON event (bounded wait)."""
        got: list[dict] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"got {len(got)} of {count} lines in {timeout}s: {got}") from None
            if line is None:
                raise AssertionError(f"watch ended after {len(got)} of {count} lines: {self.stderr()}")
            event = json.loads(line)
            assert set(event) == EVENT_KEYS, event
            got.append(event)
        self.seen += got
        return got

    def silent(self, seconds: float = SILENCE) -> None:
        try:
            line = self.lines.get(timeout=seconds)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected output: {line!r} {self.stderr() if line is None else ''}")

    def wait_exit(self, timeout: float = ARRIVAL_TIMEOUT) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout)
        return rc

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def watcher(db: str, tmp_path: Path) -> Iterator:
    """watcher(*args) starts `aosdb watch --dsn <db> *args`; all of them are killed afterwards."""
    started: list[Watcher] = []

    def start(*args: str) -> Watcher:
        w = Watcher(db, *args, cwd=tmp_path)
        started.append(w)
        return w

    try:
        yield start
    finally:
        for w in started:
            w.kill()


def assert_lines_are(lines: list[dict], rows: list[dict]) -> None:
    """Watch lines equal outbox rows field by field."""
    assert brief(lines) == brief(rows)
    for line, row in zip(lines, rows):
        assert line["payload"] == row["payload"], (line, row)
        assert line["created_at"] == row["created_at"].isoformat(), (line, row)


# ---- 1. NOTIFY at commit, never on rollback ------------------------------------------------------


def test_notify_arrives_after_commit_only(db: str, listener: Listener) -> None:
    with psycopg.connect(db) as writer:  # one explicit transaction
        insert_run(writer, "t1", "r-commit", "failed", "EXECUTION_TIMEOUT")
        insert_run(writer, "t1", "r-commit-2", "failed", "BUDGET_EXCEEDED")
        assert listener.silent() == [], "a notification escaped an open transaction"
        writer.commit()
        rows = outbox(db)
        assert [r["event"] for r in rows] == [
            "run_failed", "incident_created", "proposal_created", "run_failed", "incident_created"]
        notes = listener.take(len(rows))
    assert_notified(notes, rows)
    assert {r["tenant_id"] for r in rows} == {"t1"}
    assert rows[0]["id"] == "r-commit" and rows[3]["id"] == "r-commit-2"


def test_rollback_notifies_nothing_and_leaves_no_event(db: str, listener: Listener) -> None:
    with psycopg.connect(db) as writer:
        insert_run(writer, "t1", "r-rolled-back", "failed", "AGENT_CRASH")
        # The engines did run inside the transaction...
        inside = writer.execute("SELECT count(*) FROM aos.events WHERE payload ->> 'run_id' = 'r-rolled-back'").fetchone()[0]
        assert inside == 3
        writer.rollback()
    assert listener.silent() == []
    assert outbox(db) == []
    # ...and a failing statement takes its events with it too.
    with psycopg.connect(db) as writer:
        insert_run(writer, "t1", "r-dup", "failed", "AGENT_CRASH")
        with pytest.raises(psycopg.errors.UniqueViolation):
            insert_run(writer, "t1", "r-dup", "failed", "AGENT_CRASH")
        writer.rollback()
    assert listener.silent() == []
    with psycopg.connect(db, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM aos.events").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM incidents.incidents").fetchone()[0] == 0
    # The listener still works: the next commit is heard.
    fail_run(db, "t1", "r-after")
    assert_notified(listener.take(3), outbox(db))


# ---- 2. every effect and action appends and notifies ------------------------------------------


def test_every_effect_and_action_appends_and_notifies(db: str, listener: Listener) -> None:
    # A failed timeout run: run_failed, incident_created, proposal_created, in seq order.
    rows = action(db, listener, lambda: fail_run(db, "t1", "r-timeout", "EXECUTION_TIMEOUT"))
    assert [r["event"] for r in rows] == ["run_failed", "incident_created", "proposal_created"]
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    with psycopg.connect(db, autocommit=True) as conn:
        incident_id, severity = conn.execute(
            "SELECT id::text, severity FROM incidents.incidents WHERE source_run_id = 'r-timeout'").fetchone()
        proposal_id = conn.execute(
            "SELECT id::text FROM policies.policy_proposals WHERE triggering_run_id = 'r-timeout'").fetchone()[0]
    assert severity == "high"
    assert rows[0]["id"] == "r-timeout" and rows[0]["payload"]["run_id"] == "r-timeout"
    assert rows[1]["id"] == incident_id and rows[1]["payload"]["incident_id"] == incident_id
    assert rows[2]["id"] == proposal_id and rows[2]["payload"]["incident_id"] == incident_id

    # Through the worker API (running -> failed by UPDATE) the same three events.
    def via_api() -> None:
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("SET ROLE aos_worker")
            conn.execute("SELECT activity.start_run('t1', 'r-api', 'agent-a', 'goal')")
            conn.execute("""SELECT activity.finish_run('t1', 'r-api', 'failed', '{"error_code": "AGENT_CRASH"}')""")

    before = max_seq(db)
    via_api()
    rows_api = outbox(db, before)
    assert_notified(listener.take(3), rows_api)
    assert [r["event"] for r in rows_api] == ["run_failed", "incident_created", "proposal_created"]

    # A medium failure: run_failed and incident_created, no proposal.
    rows = action(db, listener, lambda: fail_run(db, "t1", "r-budget", "BUDGET_EXCEEDED"))
    assert [r["event"] for r in rows] == ["run_failed", "incident_created"]
    # A success appends nothing.
    assert action(db, listener, lambda: _succeed(db, "r-ok")) == []

    # Approving: proposal_approved then rule_created.
    def approve():
        with operator(db, "t1") as conn:
            return conn.execute("SELECT policies.approve_proposal(%s, 'alice')", (proposal_id,)).fetchone()[0]

    rows, rule_id = action(db, listener, approve)
    assert [r["event"] for r in rows] == ["proposal_approved", "rule_created"]
    assert rows[0]["id"] == proposal_id and rows[0]["payload"]["reviewed_by"] == "alice"
    assert rows[1]["id"] == str(rule_id) and rows[1]["payload"]["proposal_id"] == proposal_id

    # Rejecting the API run's proposal: proposal_rejected, no rule.
    with psycopg.connect(db, autocommit=True) as conn:
        other_proposal = conn.execute(
            "SELECT id::text FROM policies.policy_proposals WHERE triggering_run_id = 'r-api'").fetchone()[0]

    def reject():
        with operator(db, "t1") as conn:
            conn.execute("SELECT policies.reject_proposal(%s, 'bob')", (other_proposal,))

    assert [r["event"] for r in action(db, listener, reject)] == ["proposal_rejected"]

    # Acknowledge, evidence, resolve.
    def incident_verb(sql: str):
        def run() -> None:
            with operator(db, "t1") as conn:
                conn.execute(sql, (incident_id,))
        return run

    rows = action(db, listener, incident_verb("SELECT incidents.acknowledge(%s, 'carol')"))
    assert [(r["event"], r["id"]) for r in rows] == [("incident_acknowledged", incident_id)]
    rows = action(db, listener, incident_verb("""SELECT incidents.add_evidence(%s, 'log', '{"line": 1}')"""))
    assert [(r["event"], r["id"]) for r in rows] == [("evidence_added", incident_id)]
    rows = action(db, listener, incident_verb("SELECT incidents.resolve(%s, 'carol', 'manual', 'fixed')"))
    assert [(r["event"], r["id"]) for r in rows] == [("incident_resolved", incident_id)]
    assert rows[0]["payload"]["method"] == "manual"

    # A prevented failure: the approved rule lists EXECUTION_TIMEOUT.
    rows = action(db, listener, lambda: fail_run(db, "t1", "r-prevented", "EXECUTION_TIMEOUT"))
    events = [r["event"] for r in rows]
    assert "prevention_recorded" in events and "incident_created" not in events, events
    assert events == ["prevention_recorded", "run_failed"]
    assert rows[0]["payload"]["outcome"] == "prevented" and rows[0]["payload"]["run_id"] == "r-prevented"
    assert rows[0]["payload"]["policy_rule_id"] == str(rule_id)
    assert rows[1]["payload"]["prevented"] is True

    # Manual rules and retiring: rule_created, rule_retired.
    def create_rule():
        with operator(db, "t1") as conn:
            return conn.execute(
                """SELECT policies.create_rule('cap', 'max_value', '{"metric": "input_tokens", "max": 10}', 'warn')"""
            ).fetchone()[0]

    rows, manual_rule = action(db, listener, create_rule)
    assert [(r["event"], r["id"]) for r in rows] == [("rule_created", str(manual_rule))]

    def retire():
        with operator(db, "t1") as conn:
            conn.execute("SELECT policies.retire_rule(%s, 'dave')", (manual_rule,))

    assert [r["event"] for r in action(db, listener, retire)] == ["rule_retired"]

    # A failed action writes and notifies nothing.
    before = max_seq(db)
    with operator(db, "t1") as conn, pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        conn.execute("SELECT policies.approve_proposal(%s, 'alice')", (proposal_id,))
    assert listener.silent(0.5) == [] and max_seq(db) == before

    # Seq is strictly increasing over the whole outbox, and every event belongs to t1.
    everything = outbox(db)
    assert [r["seq"] for r in everything] == sorted({r["seq"] for r in everything})
    assert {r["tenant_id"] for r in everything} == {"t1"}


def _succeed(dsn: str, run_id: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        insert_run(conn, "t1", run_id, "succeeded", None)


# ---- 3. aosdb watch: replay, catch-up, tenant, start point, bad input ------------------------


def test_watch_since_replays_exactly_the_later_events(db: str, run_cli) -> None:
    for i, code in enumerate(["EXECUTION_TIMEOUT", "BUDGET_EXCEEDED", "AGENT_CRASH"]):
        fail_run(db, "t1", f"r{i}", code)
    everything = outbox(db)
    assert len(everything) == 8
    since = everything[3]["seq"]
    expected = outbox(db, since)
    result = run_cli("watch", "--since", str(since), "--limit", str(len(expected)), "--dsn", db, timeout=30)
    assert result.returncode == 0, str(result)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    for line in lines:
        assert set(line) == EVENT_KEYS, line
    assert_lines_are(lines, expected)
    assert min(line["seq"] for line in lines) > since

    # --since 0 is the whole outbox, and the DSN may come from AOSDB_DSN.
    result = run_cli("watch", "--since", "0", "--limit", str(len(everything)), env={"AOSDB_DSN": db}, timeout=30)
    assert result.returncode == 0, str(result)
    assert_lines_are([json.loads(line) for line in result.stdout.splitlines()], everything)


def test_watch_a_listener_that_was_away_loses_nothing(db: str, run_cli, watcher) -> None:
    fail_run(db, "t1", "r-first", "EXECUTION_TIMEOUT")
    # A first session sees two events, then goes away.
    result = run_cli("watch", "--since", "0", "--limit", "2", "--dsn", db, timeout=30)
    assert result.returncode == 0, str(result)
    last_seen = json.loads(result.stdout.splitlines()[-1])["seq"]
    # Committed while nobody listened.
    fail_run(db, "t1", "r-missed-1", "AGENT_CRASH")
    fail_run(db, "t2", "r-missed-2", "BUDGET_EXCEEDED")
    missed = outbox(db, last_seen)
    assert len(missed) == 1 + 3 + 2
    live_count = 3 + 2
    w = watcher("--since", str(last_seen), "--limit", str(len(missed) + live_count))
    assert_lines_are(w.take(len(missed)), missed)
    w.silent(0.3)
    # Then live ones while it follows.
    fail_run(db, "t2", "r-live-1", "EXECUTION_TIMEOUT")
    fail_run(db, "t1", "r-live-2", "BUDGET_EXCEEDED")
    w.take(live_count)
    assert w.wait_exit() == 0, w.stderr()
    seqs = [e["seq"] for e in w.seen]
    assert seqs == sorted(set(seqs)), "out of order or duplicated"
    assert_lines_are(w.seen, outbox(db, last_seen))


def test_watch_tenant_prints_only_that_tenant(db: str, watcher) -> None:
    fail_run(db, "t1", "a1", "EXECUTION_TIMEOUT")
    fail_run(db, "t2", "b1", "BUDGET_EXCEEDED")
    fail_run(db, "t1", "a2", "AGENT_CRASH")
    fail_run(db, "t2", "b2", "EXECUTION_TIMEOUT")
    replay = outbox(db, 0, "t2")
    assert len(replay) == 2 + 3
    w = watcher("--since", "0", "--tenant", "t2", "--limit", str(len(replay) + 2))
    assert_lines_are(w.take(len(replay)), replay)
    # Live: t1's events are skipped, t2's printed.
    fail_run(db, "t1", "a3", "EXECUTION_TIMEOUT")
    w.silent(0.5)
    fail_run(db, "t2", "b3", "BUDGET_EXCEEDED")
    w.take(2)
    assert w.wait_exit() == 0, w.stderr()
    assert {e["tenant_id"] for e in w.seen} == {"t2"}
    assert_lines_are(w.seen, outbox(db, 0, "t2"))


def test_watch_without_since_prints_only_new_events(db: str, watcher) -> None:
    fail_run(db, "t1", "old-1", "EXECUTION_TIMEOUT")
    fail_run(db, "t2", "old-2", "AGENT_CRASH")
    before = max_seq(db)
    w = watcher("--limit", "5")
    w.wait_ready()
    w.silent(0.5)  # the past is not replayed
    fail_run(db, "t2", "new-1", "BUDGET_EXCEEDED")
    fail_run(db, "t1", "new-2", "EXECUTION_TIMEOUT")
    new = outbox(db, before)
    assert len(new) == 5
    assert_lines_are(w.take(5), new)
    assert w.wait_exit() == 0, w.stderr()


@pytest.mark.parametrize("args", [("--since", "-1"), ("--since", "-5", "--tenant", "t1")])
def test_watch_rejects_a_negative_since(db: str, run_cli, args) -> None:
    result = run_cli("watch", *args, "--dsn", db, timeout=30)
    assert_one_error_line(result, "--since")
    assert result.stdout == ""


# ---- 4. out-of-order commits --------------------------------------------------------------------


def test_watch_prints_a_late_commit_with_smaller_seqs_once(db: str, watcher) -> None:
    w = watcher("--limit", "6")
    w.wait_ready()
    with psycopg.connect(db) as a:
        # A takes the smaller seqs and stays open.
        insert_run(a, "t1", "run-a", "failed", "AGENT_CRASH")
        a_seqs = [r[0] for r in a.execute("SELECT seq FROM aos.events ORDER BY seq").fetchall()]
        a_tx = a.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
        assert len(a_seqs) == 3
        # B commits after A took its seqs.
        fail_run(db, "t1", "run-b", "EXECUTION_TIMEOUT")
        b_rows = outbox(db)  # A's rows are invisible here
        assert len(b_rows) == 3 and min(r["seq"] for r in b_rows) > max(a_seqs)
        assert_lines_are(w.take(3), b_rows)
        w.silent(0.5)
        a.commit()
    a_seqs = [r[0] for r in rows_of_tx(db, a_tx)]
    a_rows = [r for r in outbox(db) if r["seq"] in a_seqs]
    assert len(a_rows) == 3 and [r["id"] for r in a_rows][0] == "run-a"
    assert_lines_are(w.take(3), a_rows)
    assert w.wait_exit() == 0, w.stderr()
    seqs = [e["seq"] for e in w.seen]
    assert len(seqs) == len(set(seqs)) == 6
    assert sorted(seqs) == [r["seq"] for r in outbox(db)]


def test_watch_out_of_order_across_the_poll_and_a_later_commit(db: str, watcher) -> None:
    """A stays open across two reads of the watcher (B, then C commit): printed once, after both."""
    w = watcher("--limit", "8")
    w.wait_ready()
    with psycopg.connect(db) as a:
        insert_run(a, "t1", "run-a", "failed", "EXECUTION_TIMEOUT")
        fail_run(db, "t1", "run-b", "BUDGET_EXCEEDED")
        w.take(2)
        fail_run(db, "t2", "run-c", "AGENT_CRASH")
        w.take(3)
        w.silent(0.3)
        a.commit()
    w.take(3)
    assert w.wait_exit() == 0, w.stderr()
    assert [e["id"] for e in w.seen if e["event"] == "run_failed"] == ["run-b", "run-c", "run-a"]
    seqs = [e["seq"] for e in w.seen]
    assert len(set(seqs)) == 8 and sorted(seqs) == [r["seq"] for r in outbox(db)]


def test_watch_resumed_after_an_out_of_order_commit_loses_nothing(db: str, run_cli, watcher) -> None:
    """SPEC 7, "a listener that was away loses nothing", with commits out of seq order.

    A session sees B's events (larger seqs) while A (smaller seqs) is still open, and goes away;
    A commits while nobody listens; the listener comes back with --since <last seen seq>. A's
    events have seqs below that point and were never printed: they must still be replayed."""
    with psycopg.connect(db) as a:
        insert_run(a, "t1", "run-a", "failed", "AGENT_CRASH")
        fail_run(db, "t1", "run-b", "EXECUTION_TIMEOUT")
        first = run_cli("watch", "--since", "0", "--limit", "3", "--dsn", db, timeout=30)
        assert first.returncode == 0, str(first)
        seen = [json.loads(line) for line in first.stdout.splitlines()]
        assert [e["id"] for e in seen if e["event"] == "run_failed"] == ["run-b"]
        a.commit()  # while nobody listens
    last_seen = seen[-1]["seq"]
    never_printed = [r for r in outbox(db) if r["seq"] not in {e["seq"] for e in seen}]
    assert [r["id"] for r in never_printed if r["event"] == "run_failed"] == ["run-a"]
    w = watcher("--since", str(last_seen), "--limit", str(len(never_printed) + 2))
    w.wait_ready()
    fail_run(db, "t2", "run-c", "BUDGET_EXCEEDED")  # something live, so the watcher reads again
    # Longer than the watcher's 5 s safety-net poll: what is missing now is lost for good.
    got = w.take(len(never_printed) + 2, timeout=6.5)
    assert sorted(e["seq"] for e in got) == sorted(r["seq"] for r in outbox(db) if r["seq"] not in
                                                   {e["seq"] for e in seen})
