"""The outbox aos.events, the wake-up NOTIFY aos_events, `aosdb watch` and `aosdb prune-events`.

Real connections and real commits on a migrated clone per test (exact counts). Writers append to
the outbox inside their own transactions and never wait for each other; readers take batches
bounded by snapshots (aos.tick_events, aos.events_after), so the tests compare what `aosdb watch`
prints with the committed outbox rows: every committed event exactly once, none of a rolled-back
transaction, whatever the commit order. A listener connection proves that the wake-up arrives
at commit only, is empty and coalesced. `aosdb watch` runs as a real subprocess. Every wait is
bounded and every watcher is killed in a finally.
"""

from __future__ import annotations

import json
import os
import queue
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from conftest import assert_one_error_line, clean_env
from psycopg.conninfo import make_conninfo

# How long a notification or a watcher line may take to show up (the watcher polls every second).
ARRIVAL_TIMEOUT = 10.0
# How long we listen to prove that nothing arrives: longer than the watcher's poll interval, so
# a silent watcher has read the outbox again at least once meanwhile.
SILENCE = 1.3

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


def seqs_of_tx(conn: psycopg.Connection, tx_id: str) -> list[int]:
    return [r[0] for r in conn.execute("SELECT seq FROM aos.events WHERE tx_id = %s::xid8 ORDER BY seq", (tx_id,))]


def brief(events: list[dict]) -> list[tuple]:
    """What identifies an event: (seq, event, tenant_id, id)."""
    return [(e["seq"], e["event"], e["tenant_id"], e["id"]) for e in events]


def counts(dsn: str) -> tuple[int, int]:
    """(events, ticks) in the outbox."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM aos.events), (SELECT count(*) FROM aos.event_ticks)").fetchone()


def failures_in_outbox(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM aos.events WHERE event = 'run_failed'").fetchone()[0]


def tick(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT aos.tick_events()").fetchone()[0]


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

    def take(self, count: int, timeout: float = ARRIVAL_TIMEOUT) -> list[psycopg.Notify]:
        """Exactly `count` notifications (bounded wait), then proof that no extra one follows."""
        got = list(self.conn.notifies(timeout=timeout, stop_after=count)) if count else []
        got += list(self.conn.notifies(timeout=0.3))
        assert len(got) == count, f"expected {count} notifications, got {len(got)}: {got}"
        return got

    def drain(self, quiet: float = 0.5, timeout: float = ARRIVAL_TIMEOUT) -> list[psycopg.Notify]:
        """Every notification until none came for `quiet` seconds (at most `timeout` in all)."""
        got: list[psycopg.Notify] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            more = list(self.conn.notifies(timeout=min(quiet, max(0.0, deadline - time.monotonic()))))
            if not more:
                return got
            got += more
        raise AssertionError(f"notifications still arriving after {timeout}s: {len(got)}")

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


def assert_wake_ups(notes: list[psycopg.Notify]) -> None:
    """A wake-up names the channel and nothing else: no tenant, no id, no seq."""
    for note in notes:
        assert note.channel == "aos_events", note
        assert note.payload == "", f"a wake-up carries a payload: {note.payload!r}"


def action(dsn: str, do):
    """Run `do()` (which commits) and return the outbox rows it appended; when do() returns a
    value, (rows, value). Sequential commits: what is new after it is exactly its rows."""
    before = max_seq(dsn)
    result = do()
    rows = outbox(dsn, before)
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
        self._stderr: str | None = None

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_ready(self, timeout: float = ARRIVAL_TIMEOUT) -> None:
        """Until the watcher has listened and finished a read of the outbox (its session idles after it)."""
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"watch exited early: {self.stderr()}"
                ready = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state = 'idle'"
                    " AND query LIKE '%%aos.events_after(%%'", (self.app,)).fetchone()[0]  # fmt: skip
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
                raise AssertionError(f"got {len(got)} of {count} lines in {timeout}s: {got[-3:]}") from None
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

    def stop(self) -> list[dict]:
        """Kill it now and return the lines it had printed completely (a killed writer may leave half a line)."""
        self.kill()
        printed = []
        while True:
            line = self.lines.get_nowait() if not self.lines.empty() else None
            if line is None:
                break
            if line.endswith("\n"):
                printed.append(json.loads(line))
        self.seen += printed
        return printed

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        if self._stderr is None:
            self._stderr = self.proc.stderr.read()
        return self._stderr

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._reader.join(10)  # it ends at EOF, before the pipes are closed under it
        self.stderr()
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
    """Watch lines equal outbox rows field by field, in this order."""
    assert brief(lines) == brief(rows)
    for line, row in zip(lines, rows):
        assert line["payload"] == row["payload"], (line, row)
        assert line["created_at"] == row["created_at"].isoformat(), (line, row)


def assert_exactly(lines: list[dict], rows: list[dict]) -> None:
    """Watch lines are the outbox rows, each exactly once, in whatever order (delivery order)."""
    printed = Counter(e["seq"] for e in lines)
    duplicated = sorted(seq for seq, n in printed.items() if n > 1)
    assert not duplicated, f"printed more than once: {duplicated[:20]}"
    committed = {r["seq"] for r in rows}
    missing, extra = sorted(committed - set(printed)), sorted(set(printed) - committed)
    assert not missing and not extra, f"missing {len(missing)}: {missing[:20]}; extra {len(extra)}: {extra[:20]}"
    by_seq = {r["seq"]: r for r in rows}
    assert_lines_are(lines, [by_seq[e["seq"]] for e in lines])


# ---- 1. the wake-up: at commit, never on rollback, empty, coalesced ---------------------------------


def test_notify_arrives_after_commit_only_and_is_empty(db: str, listener: Listener) -> None:
    with psycopg.connect(db) as writer:  # one explicit transaction
        insert_run(writer, "t1", "r-commit", "failed", "EXECUTION_TIMEOUT")
        insert_run(writer, "t1", "r-commit-2", "failed", "BUDGET_EXCEEDED")
        assert listener.silent() == [], "a notification escaped an open transaction"
        writer.commit()
        # One transaction, one wake-up, however many events and statements it wrote.
        notes = listener.take(1)
    assert_wake_ups(notes)
    rows = outbox(db)
    assert [r["event"] for r in rows] == [
        "run_failed", "incident_created", "proposal_created", "run_failed", "incident_created"]
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
    assert counts(db)[0] == 0
    with psycopg.connect(db, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM incidents.incidents").fetchone()[0] == 0
    # The rolled-back claims of the wake-up did not use it up: the next commit is heard.
    fail_run(db, "t1", "r-after")
    assert_wake_ups(listener.take(1))
    assert [r["id"] for r in outbox(db) if r["event"] == "run_failed"] == ["r-after"]


def test_wake_ups_are_coalesced_by_event_wakeup(db: str, listener: Listener) -> None:
    # 40 quick commits from one session: the first of each min_interval (100 ms) notifies.
    with psycopg.connect(db, autocommit=True) as writer:
        for i in range(40):
            insert_run(writer, "t1", f"quick-{i}", "failed", "BUDGET_EXCEEDED")
    notes = listener.drain()
    assert_wake_ups(notes)
    assert 1 <= len(notes) < 40, f"{len(notes)} wake-ups for 40 commits"
    assert failures_in_outbox(db) == 40, "a commit without a wake-up still wrote its events"

    with psycopg.connect(db, autocommit=True) as admin:
        # No interval: every commit notifies, one wake-up each.
        admin.execute("UPDATE aos.event_wakeup SET min_interval = '0'")
        for i in range(4):
            fail_run(db, "t2", f"each-{i}", "BUDGET_EXCEEDED")
            assert_wake_ups(listener.take(1))
        # A long interval: the one just sent covers every later commit.
        admin.execute("UPDATE aos.event_wakeup SET min_interval = '1 hour'")
        for i in range(3):
            fail_run(db, "t2", f"quiet-{i}", "BUDGET_EXCEEDED")
        assert listener.silent(0.5) == []
    assert failures_in_outbox(db) == 40 + 4 + 3


def test_every_wake_up_of_engine_activity_is_empty_and_the_outbox_is_read_under_rls(
        db: str, listener: Listener) -> None:
    """Whatever wrote the events (the engines on a failed run, the worker API, each operator
    action), the wake-up names no tenant, id or seq: LISTEN needs no privilege. The listener then
    reads the outbox, and row-level security shows a tenant's reader its own events only."""
    with psycopg.connect(db, autocommit=True) as admin:
        admin.execute("UPDATE aos.event_wakeup SET min_interval = '0'")  # one wake-up per commit
    fail_run(db, "t2", "r-other", "EXECUTION_TIMEOUT")  # t2's events, which t1's reader must not see
    assert_wake_ups(listener.take(1))

    def worker_api() -> None:
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("SET ROLE aos_worker")
            conn.execute("SELECT activity.start_run('t1', 'r-api', 'agent-a', 'goal')")
            conn.execute("""SELECT activity.finish_run('t1', 'r-api', 'failed', '{"error_code": "AGENT_CRASH"}')""")

    def verb(sql: str, *params):
        def run() -> None:
            with operator(db, "t1") as conn:
                conn.execute(sql, params)
        return run

    def ids() -> tuple[str, str, str]:
        with psycopg.connect(db, autocommit=True) as conn:
            return conn.execute(
                """SELECT i.id::text, p.id::text, (SELECT id::text FROM policies.policy_proposals
                                                  WHERE triggering_run_id = 'r-api')
                   FROM incidents.incidents AS i JOIN policies.policy_proposals AS p
                     ON p.tenant_id = i.tenant_id AND p.triggering_incident_id = i.id
                   WHERE i.tenant_id = 't1' AND i.source_run_id = 'r-fail'""").fetchone()

    steps = [("a failed run", lambda: fail_run(db, "t1", "r-fail", "EXECUTION_TIMEOUT")),
             ("a failure through the worker API", worker_api)]
    for what, do in steps:
        rows = action(db, do)
        assert rows, what
        assert_wake_ups(listener.take(1))
    incident_id, proposal_id, other_proposal = ids()
    actions = [
        ("approve", verb("SELECT policies.approve_proposal(%s, 'alice')", proposal_id)),
        ("reject", verb("SELECT policies.reject_proposal(%s, 'bob')", other_proposal)),
        ("acknowledge", verb("SELECT incidents.acknowledge(%s, 'carol')", incident_id)),
        ("add evidence", verb("""SELECT incidents.add_evidence(%s, 'log', '{"line": 1}')""", incident_id)),
        ("resolve", verb("SELECT incidents.resolve(%s, 'carol', 'manual', 'fixed')", incident_id)),
        ("create a rule", verb("SELECT policies.create_rule('cap', 'max_value', %s, 'warn')",
                                '{"metric": "input_tokens", "max": 10}')),
        ("a prevented failure", lambda: fail_run(db, "t1", "r-prevented", "EXECUTION_TIMEOUT")),
    ]
    for what, do in actions:
        rows = action(db, do)
        assert rows, f"{what} appended no event"
        assert_wake_ups(listener.take(1))

    # A tenant's reader of the outbox (a role of this transaction only) sees its tenant's events.
    with psycopg.connect(db) as conn:
        reader = f"aos_test_outbox_{uuid.uuid4().hex[:8]}"
        conn.execute(f"CREATE ROLE {reader}")
        conn.execute(f"GRANT USAGE ON SCHEMA aos TO {reader}")
        conn.execute(f"GRANT SELECT ON aos.events TO {reader}")
        conn.execute(f"SET LOCAL ROLE {reader}")
        seen = {}
        for tenant in ("t1", "t2"):
            conn.execute("SELECT set_config('aos.tenant_id', %s, true)", (tenant,))
            seen[tenant] = conn.execute(
                "SELECT array_agg(DISTINCT tenant_id), count(*) FROM aos.events").fetchone()
        conn.rollback()
    everything = outbox(db)
    assert seen["t1"] == (["t1"], sum(r["tenant_id"] == "t1" for r in everything)), seen
    assert seen["t2"] == (["t2"], sum(r["tenant_id"] == "t2" for r in everything)), seen


# ---- 2. every effect and action appends its outbox rows ------------------------------------------


def test_every_effect_and_action_appends_its_outbox_rows(db: str) -> None:
    # A failed timeout run: run_failed, incident_created, proposal_created, in seq order.
    rows = action(db, lambda: fail_run(db, "t1", "r-timeout", "EXECUTION_TIMEOUT"))
    assert [r["event"] for r in rows] == ["run_failed", "incident_created", "proposal_created"]
    with psycopg.connect(db, autocommit=True) as conn:
        incident_id, severity = conn.execute(
            "SELECT id::text, severity FROM incidents.incidents WHERE source_run_id = 'r-timeout'").fetchone()
        proposal_id = conn.execute(
            "SELECT id::text FROM policies.policy_proposals WHERE triggering_run_id = 'r-timeout'").fetchone()[0]
    assert severity == "high"
    assert rows[0]["id"] == "r-timeout" and rows[0]["payload"]["run_id"] == "r-timeout"
    assert rows[1]["id"] == incident_id and rows[1]["payload"]["incident_id"] == incident_id
    assert rows[2]["id"] == proposal_id and rows[2]["payload"]["incident_id"] == incident_id

    # The same failure again joins the pending proposal: its count grows, and no proposal_created.
    rows = action(db, lambda: fail_run(db, "t1", "r-timeout-2", "EXECUTION_TIMEOUT"))
    assert [r["event"] for r in rows] == ["run_failed", "incident_created"]
    with psycopg.connect(db, autocommit=True) as conn:
        assert conn.execute("SELECT incident_count FROM policies.policy_proposals WHERE id = %s",
                            (proposal_id,)).fetchone()[0] == 2

    # Through the worker API (running -> failed by UPDATE) the same three events.
    def via_api() -> None:
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("SET ROLE aos_worker")
            conn.execute("SELECT activity.start_run('t1', 'r-api', 'agent-a', 'goal')")
            conn.execute("""SELECT activity.finish_run('t1', 'r-api', 'failed', '{"error_code": "AGENT_CRASH"}')""")

    rows = action(db, via_api)
    assert [r["event"] for r in rows] == ["run_failed", "incident_created", "proposal_created"]

    # A medium failure: run_failed and incident_created, no proposal.
    rows = action(db, lambda: fail_run(db, "t1", "r-budget", "BUDGET_EXCEEDED"))
    assert [r["event"] for r in rows] == ["run_failed", "incident_created"]
    # A success appends nothing.
    assert action(db, lambda: _succeed(db, "r-ok")) == []

    # Approving: proposal_approved then rule_created.
    def approve():
        with operator(db, "t1") as conn:
            return conn.execute("SELECT policies.approve_proposal(%s, 'alice')", (proposal_id,)).fetchone()[0]

    rows, rule_id = action(db, approve)
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

    assert [(r["event"], r["id"]) for r in action(db, reject)] == [("proposal_rejected", other_proposal)]

    # Acknowledge, evidence, resolve.
    def incident_verb(sql: str):
        def run() -> None:
            with operator(db, "t1") as conn:
                conn.execute(sql, (incident_id,))
        return run

    rows = action(db, incident_verb("SELECT incidents.acknowledge(%s, 'carol')"))
    assert [(r["event"], r["id"]) for r in rows] == [("incident_acknowledged", incident_id)]
    rows = action(db, incident_verb("""SELECT incidents.add_evidence(%s, 'log', '{"line": 1}')"""))
    assert [(r["event"], r["id"]) for r in rows] == [("evidence_added", incident_id)]
    rows = action(db, incident_verb("SELECT incidents.resolve(%s, 'carol', 'manual', 'fixed')"))
    assert [(r["event"], r["id"]) for r in rows] == [("incident_resolved", incident_id)]
    assert rows[0]["payload"]["method"] == "manual"

    # A prevented failure: the approved rule lists EXECUTION_TIMEOUT.
    rows = action(db, lambda: fail_run(db, "t1", "r-prevented", "EXECUTION_TIMEOUT"))
    events = [r["event"] for r in rows]
    assert events == ["prevention_recorded", "run_failed"], events
    assert rows[0]["payload"]["outcome"] == "prevented" and rows[0]["payload"]["run_id"] == "r-prevented"
    assert rows[0]["payload"]["policy_rule_id"] == str(rule_id)
    assert rows[1]["payload"]["prevented"] is True

    # Manual rules and retiring: rule_created, rule_retired.
    def create_rule():
        with operator(db, "t1") as conn:
            return conn.execute(
                """SELECT policies.create_rule('cap', 'max_value', '{"metric": "input_tokens", "max": 10}', 'warn')"""
            ).fetchone()[0]

    rows, manual_rule = action(db, create_rule)
    assert [(r["event"], r["id"]) for r in rows] == [("rule_created", str(manual_rule))]

    def retire():
        with operator(db, "t1") as conn:
            conn.execute("SELECT policies.retire_rule(%s, 'dave')", (manual_rule,))

    assert [(r["event"], r["id"]) for r in action(db, retire)] == [("rule_retired", str(manual_rule))]

    # A failed action writes nothing.
    before = max_seq(db)
    with operator(db, "t1") as conn, pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        conn.execute("SELECT policies.approve_proposal(%s, 'alice')", (proposal_id,))
    assert max_seq(db) == before

    # Each seq once over the whole outbox, and every event belongs to t1.
    everything = outbox(db)
    # failures 3 + 2 + 3 + 2, approve 2, reject 1, incident verbs 3, prevented 2, rule 1, retire 1
    assert len(everything) == 3 + 2 + 3 + 2 + 2 + 1 + 3 + 2 + 1 + 1
    assert len({r["seq"] for r in everything}) == len(everything)
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
    assert result.stderr == "", str(result)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    for line in lines:
        assert set(line) == EVENT_KEYS, line
    # Sequential commits: delivery order is seq order here.
    assert_lines_are(lines, expected)

    # --since 0 is the whole outbox, and the DSN may come from AOSDB_DSN.
    result = run_cli("watch", "--since", "0", "--limit", str(len(everything)), env={"AOSDB_DSN": db}, timeout=30)
    assert result.returncode == 0, str(result)
    assert result.stderr == "", "--since 0 on an outbox nobody pruned warns of nothing"
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
    assert_exactly(w.seen, outbox(db, last_seen))


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
    w.silent()
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
    w.silent()  # the past is not replayed, not even at the next poll
    fail_run(db, "t2", "new-1", "BUDGET_EXCEEDED")
    fail_run(db, "t1", "new-2", "AGENT_CRASH")
    new = outbox(db, before)
    assert len(new) == 5
    assert_lines_are(w.take(5), new)
    assert w.wait_exit() == 0, w.stderr()


@pytest.mark.parametrize("args", [("--since", "-1"), ("--since", "-5", "--tenant", "t1")])
def test_watch_rejects_a_negative_since(db: str, run_cli, args) -> None:
    result = run_cli("watch", *args, "--dsn", db, timeout=30)
    assert_one_error_line(result, "--since")
    assert result.stdout == ""


# ---- 4. commits out of seq order -----------------------------------------------------------------


def test_watch_prints_a_late_commit_once_live_and_after_a_resume(db: str, watcher) -> None:
    """S1 draws the smaller seqs and stays open while S2 commits: S2's events are printed at once,
    S1's when it commits, each exactly once, by the running watch and by a watch resumed from the
    last seq printed before S1 committed."""
    w = watcher()
    w.wait_ready()
    with psycopg.connect(db) as s1:
        insert_run(s1, "t1", "r1", "failed", "EXECUTION_TIMEOUT")
        s1_tx = s1.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
        r1_seqs = seqs_of_tx(s1, s1_tx)
        assert len(r1_seqs) == 3
        fail_run(db, "t2", "r2", "BUDGET_EXCEEDED")
        s2_rows = outbox(db)  # S1's rows are invisible here
        assert len(s2_rows) == 2 and min(r["seq"] for r in s2_rows) > max(r1_seqs)
        # Printed while S1 is still open.
        assert_lines_are(w.take(2), s2_rows)
        last_printed = w.seen[-1]["seq"]
        w.silent()
        insert_run(s1, "t1", "r3", "failed", "EXECUTION_TIMEOUT")  # joins the proposal r1 opened
        s1.commit()
    with psycopg.connect(db, autocommit=True) as conn:
        s1_seqs = set(seqs_of_tx(conn, s1_tx))
    s1_rows = [r for r in outbox(db) if r["seq"] in s1_seqs]
    assert [r["event"] for r in s1_rows] == [
        "run_failed", "incident_created", "proposal_created", "run_failed", "incident_created"]
    assert min(r["seq"] for r in s1_rows) < last_printed, "S1 did not draw seqs below the ones printed"
    assert_exactly(w.take(5), s1_rows)
    w.silent()
    assert_exactly(w.seen, outbox(db))

    resumed = watcher("--since", str(last_printed))
    assert_exactly(resumed.take(5), s1_rows)
    resumed.silent()


def test_watch_a_transaction_open_across_several_reads(db: str, watcher) -> None:
    """A stays open while B, then C commit and the watcher reads each: A is printed once, after both."""
    w = watcher("--limit", "8")
    w.wait_ready()
    with psycopg.connect(db) as a:
        insert_run(a, "t1", "run-a", "failed", "EXECUTION_TIMEOUT")
        fail_run(db, "t1", "run-b", "BUDGET_EXCEEDED")
        w.take(2)
        fail_run(db, "t2", "run-c", "AGENT_CRASH")
        w.take(3)
        w.silent()
        a.commit()
    w.take(3)
    assert w.wait_exit() == 0, w.stderr()
    assert [e["id"] for e in w.seen if e["event"] == "run_failed"] == ["run-b", "run-c", "run-a"]
    assert_exactly(w.seen, outbox(db))


# ---- 5. exactness under many writers -------------------------------------------------------------

WRITERS = 8
# 8 s in CI; AOSDB_EVENTS_WRITE_SECONDS=60 for the minute-long run.
WRITE_SECONDS = float(os.environ.get("AOSDB_EVENTS_WRITE_SECONDS", "8"))
STORM_TENANTS = ("t1", "t2", "t3")
STORM_CODES = ("EXECUTION_TIMEOUT", "AGENT_CRASH", "BUDGET_EXCEEDED")


def _storm_writer(dsn: str, k: int, stop_at: float, rolled_back: list[str], errors: list[BaseException]) -> None:
    """Single-failure commits and multi-statement transactions that stay open a few ms; about one
    in five of those is rolled back on purpose. One tenant and code per transaction."""
    rng = random.Random(k)
    n = 0
    try:
        with psycopg.connect(dsn, options="-c statement_timeout=20s") as conn:
            while time.monotonic() < stop_at:
                n += 1
                tenant, code = rng.choice(STORM_TENANTS), rng.choice(STORM_CODES)
                if rng.random() < 0.5:
                    insert_run(conn, tenant, f"w{k}-{n}", "failed", code)
                    conn.commit()
                    continue
                run_ids = [f"w{k}-{n}-{j}" for j in range(rng.randint(2, 3))]
                for run_id in run_ids:
                    insert_run(conn, tenant, run_id, "failed", code)
                    time.sleep(rng.uniform(0.001, 0.005))
                if rng.random() < 0.2:
                    conn.rollback()
                    rolled_back.extend(run_ids)
                else:
                    conn.commit()
    except BaseException as exc:  # reported by the test
        errors.append(exc)


def test_watch_is_exact_under_many_writers_and_a_restart(db: str, watcher) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT aos.register_tenant('t3')")
    fail_run(db, "t1", "before-the-storm")
    start = max_seq(db)
    full = watcher("--since", str(start))
    half = watcher("--since", str(start))
    full.wait_ready()
    half.wait_ready()

    rolled_back: list[str] = []
    errors: list[BaseException] = []
    stop_at = time.monotonic() + WRITE_SECONDS
    threads = [threading.Thread(target=_storm_writer, args=(db, k, stop_at, rolled_back, errors), daemon=True)
               for k in range(WRITERS)]
    for t in threads:
        t.start()
    # Half-way, the second watcher goes away and comes back from the last seq it printed.
    time.sleep(WRITE_SECONDS / 2)
    first_half = half.stop()
    assert first_half, "the watcher printed nothing in the first half"
    rest = watcher("--since", str(first_half[-1]["seq"]))
    for t in threads:
        t.join(WRITE_SECONDS + 30)
    assert not any(t.is_alive() for t in threads), "a writer did not finish"
    assert not errors, errors

    committed = outbox(db, start)
    assert len({r["id"] for r in committed if r["event"] == "run_failed"}) >= 100, "too few commits to prove much"
    assert rolled_back, "no transaction was rolled back"
    assert not set(rolled_back) & {r["id"] for r in committed if r["event"] == "run_failed"}
    assert {r["event"] for r in committed} >= {"run_failed", "incident_created", "proposal_created"}

    assert_exactly(full.take(len(committed), timeout=30), committed)
    full.silent()
    second_half = rest.take(len(committed) - len(first_half), timeout=30)
    rest.silent()
    assert_exactly(first_half + second_half, committed)
    print(f"{WRITERS} writers for {WRITE_SECONDS:.0f} s: {len(committed)} committed events, each printed once by "
          f"both watchers; {len(rolled_back)} runs rolled back, none printed")


# ---- 6. settings change nothing; seqs are never renumbered ---------------------------------------

_ODD_SETTINGS = {
    "aos.events_publish_queued": "on",
    "aos.events_min_seq": "9223372036854775807",
    "aos.events_max_seq": "-1",
    "aos.events_last_seq": "0",
    "aos.events_publish": "off",
    "aos.events_channel": "elsewhere",
    "aos.events_renumber": "on",
}


def test_aos_settings_cannot_suppress_or_reorder_events(db: str, watcher) -> None:
    w = watcher("--limit", str(3 + 3 + 2))
    w.wait_ready()
    with psycopg.connect(db) as s:
        for name, value in _ODD_SETTINGS.items():  # for the session...
            s.execute("SELECT set_config(%s, %s, false)", (name, value))
        s.commit()
        for name, value in _ODD_SETTINGS.items():  # ...and, other values, for the transaction
            s.execute("SELECT set_config(%s, %s, true)", (name, "1" if value != "1" else "0"))
        insert_run(s, "t1", "odd-1", "failed", "EXECUTION_TIMEOUT")
        tx = s.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
        first = seqs_of_tx(s, tx)
        # Another transaction draws later seqs and commits first. It sends no wake-up (this open
        # transaction claimed it): the watcher's poll finds it.
        fail_run(db, "t2", "meanwhile", "AGENT_CRASH")
        meanwhile = outbox(db)
        assert len(meanwhile) == 3 and min(r["seq"] for r in meanwhile) > max(first)
        assert_lines_are(w.take(3), meanwhile)
        insert_run(s, "t1", "odd-2", "failed", "BUDGET_EXCEEDED")
        inside = seqs_of_tx(s, tx)
        assert inside[:3] == first and len(inside) == 5 and min(inside[3:]) > max(r["seq"] for r in meanwhile)
        s.commit()
    with psycopg.connect(db, autocommit=True) as conn:
        assert seqs_of_tx(conn, tx) == inside, "seqs changed at commit"
    everything = outbox(db)
    assert sorted(r["seq"] for r in everything) == sorted(inside + [r["seq"] for r in meanwhile])
    w.take(5)
    assert w.wait_exit() == 0, w.stderr()
    printed = w.seen
    assert_exactly(printed, everything)
    # Delivery order: the commit that came first is printed first, whatever its seqs.
    assert [e["id"] for e in printed if e["event"] == "run_failed"] == ["meanwhile", "odd-1", "odd-2"]


# ---- 7. no cluster-wide lock ----------------------------------------------------------------------


def test_an_advisory_lock_does_not_delay_a_commit(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as holder, psycopg.connect(db) as xact_holder:
        # The key the publisher of old serialised commits on, and a few others, session and transaction wide.
        holder.execute("SELECT pg_advisory_lock(7401100), pg_advisory_lock(0), pg_advisory_lock(1)")
        holder.execute("SELECT pg_advisory_lock(7401, 100)")
        xact_holder.execute("SELECT pg_advisory_xact_lock(7401100 + 1), pg_advisory_xact_lock_shared(42)")
        with psycopg.connect(db, options="-c lock_timeout=3s -c statement_timeout=5s") as writer:
            started = time.monotonic()
            insert_run(writer, "t1", "while-locked", "failed", "EXECUTION_TIMEOUT")
            insert_run(writer, "t2", "while-locked-2", "failed", "AGENT_CRASH")
            writer.commit()
            elapsed = time.monotonic() - started
        assert elapsed < 3.0, f"the commit took {elapsed:.1f}s"
        xact_holder.rollback()
    assert {r["id"] for r in outbox(db) if r["event"] == "run_failed"} == {"while-locked", "while-locked-2"}


def test_writers_commit_inside_each_others_transactions_without_waiting(db: str) -> None:
    tenants = [f"c{i}" for i in range(8)]
    with psycopg.connect(db, autocommit=True) as admin:
        for tenant in tenants:
            admin.execute("SELECT aos.register_tenant(%s)", (tenant,))
    sessions = [psycopg.connect(db, options="-c lock_timeout=5s -c statement_timeout=10s") for _ in tenants]
    try:
        pids = [s.info.backend_pid for s in sessions]
        # All eight open at once, each with a failure written (the first draws the smallest seqs).
        for s, tenant in zip(sessions, tenants):
            insert_run(s, tenant, f"open-{tenant}", "failed", "EXECUTION_TIMEOUT")
        waits: list[tuple] = []
        done = threading.Event()

        def sample() -> None:
            with psycopg.connect(db, autocommit=True) as conn:
                while not done.is_set():
                    waits.extend(conn.execute(
                        "SELECT pid, wait_event_type, wait_event, query FROM pg_stat_activity"
                        " WHERE pid = ANY(%s) AND wait_event_type = 'Lock'", (pids,)).fetchall())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            # Commit in reverse order, all at once: each commits while the others are still open.
            committers = [threading.Thread(target=s.commit, daemon=True) for s in reversed(sessions)]
            started = time.monotonic()
            for t in committers:
                t.start()
            for t in committers:
                t.join(10)
            elapsed = time.monotonic() - started
            assert not any(t.is_alive() for t in committers), "a commit did not finish"
        finally:
            done.set()
            sampler.join(10)
        assert waits == [], f"writers waited on a lock while committing: {waits[:5]}"
        assert elapsed < 3.0, f"eight commits took {elapsed:.1f}s"
    finally:
        for s in sessions:
            s.close()
    rows = outbox(db)
    assert len(rows) == 8 * 3
    assert {r["id"] for r in rows if r["event"] == "run_failed"} == {f"open-{t}" for t in tenants}


# ---- 8. the ticker ---------------------------------------------------------------------------------


def test_tick_events_refuses_repeatable_read(db: str) -> None:
    fail_run(db, "t1", "r-tick")
    with psycopg.connect(db) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        with pytest.raises(psycopg.errors.InvalidTransactionState) as raised:
            conn.execute("SELECT aos.tick_events()")
        assert raised.value.sqlstate == "25000"
        conn.rollback()
        # At READ COMMITTED it closes a batch (a new tick, since an event was committed).
        first = conn.execute("SELECT aos.tick_events()").fetchone()[0]
        conn.commit()
        assert first >= 1
        again = conn.execute("SELECT aos.tick_events()").fetchone()[0]
        assert again == first, "a tick without new events is the one before"


# ---- 9. retention: aosdb prune-events --------------------------------------------------------------


def test_prune_events_before_a_seq_and_a_resume_from_a_pruned_seq(db: str, run_cli, watcher) -> None:
    # Three transactions, each closed by a tick of its own.
    ticks = []
    for tenant, run_id, code in [("t1", "p1", "EXECUTION_TIMEOUT"), ("t1", "p2", "BUDGET_EXCEEDED"),
                                 ("t2", "p3", "AGENT_CRASH")]:
        fail_run(db, tenant, run_id, code)
        ticks.append(tick(db))
    everything = outbox(db)
    assert len(everything) == 3 + 2 + 3 and len(set(ticks)) == 3
    oldest_kept = [r for r in everything if r["id"] == "p3"][0]["seq"]
    kept = outbox(db, oldest_kept - 1)
    assert len(kept) == 3

    result = run_cli("prune-events", "--before", str(oldest_kept), "--dsn", db, timeout=30)
    assert result.returncode == 0, str(result)
    # The first tick sees only pruned events; the second bounds the batch of the kept ones.
    assert result.stdout == "pruned 5 events and 1 ticks\n", str(result)
    assert outbox(db) == kept
    with psycopg.connect(db, autocommit=True) as conn:
        assert [r[0] for r in conn.execute("SELECT tick_id FROM aos.event_ticks ORDER BY tick_id")] == ticks[1:]

    # A listener that last printed a pruned seq is told so, then replays from the oldest kept.
    w = watcher("--since", str(everything[1]["seq"]), "--limit", "3")
    assert_lines_are(w.take(3), kept)
    assert w.wait_exit() == 0
    assert w.stderr() == f"aosdb: events up to seq {oldest_kept - 1} were pruned; replaying from seq {oldest_kept}\n"
    # One that last printed a kept seq is not warned.
    result = run_cli("watch", "--since", str(kept[0]["seq"]), "--limit", "2", "--dsn", db, timeout=30)
    assert result.returncode == 0 and result.stderr == "", str(result)
    assert_lines_are([json.loads(line) for line in result.stdout.splitlines()], kept[1:])


def test_prune_events_older_than(db: str, run_cli) -> None:
    for i in range(3):
        fail_run(db, "t1", f"old-{i}", "BUDGET_EXCEEDED")
    old = outbox(db)
    fail_run(db, "t2", "young", "BUDGET_EXCEEDED")
    young = outbox(db, old[-1]["seq"])
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("UPDATE aos.events SET created_at = now() - interval '2 days' WHERE seq <= %s", (old[-1]["seq"],))
        conn.execute("UPDATE aos.events SET created_at = now() - interval '3 hours' WHERE seq > %s", (old[-1]["seq"],))
    result = run_cli("prune-events", "--older-than", "1 day", "--dsn", db, timeout=30)
    assert result.returncode == 0, str(result)
    assert result.stdout == f"pruned {len(old)} events and 0 ticks\n", str(result)
    assert brief(outbox(db)) == brief(young)
    result = run_cli("prune-events", "--older-than", "2 hours", "--dsn", db, timeout=30)
    assert result.stdout == f"pruned {len(young)} events and 0 ticks\n", str(result)
    assert outbox(db) == []


@pytest.mark.parametrize(("args", "fragment", "code"), [
    ((), "exactly one of --before", 2),
    (("--before", "5", "--older-than", "1 day"), "exactly one of --before", 2),
    (("--older-than", "a fortnight"), "interval", 1),
    (("--older-than", "-1 day"), "must not be negative", 1),
    (("--before", "-3"), "must not be negative", 1),
], ids=["neither", "both", "bad-interval", "negative-interval", "negative-seq"])
def test_prune_events_rejects_bad_options_and_deletes_nothing(db: str, run_cli, args, fragment, code) -> None:
    fail_run(db, "t1", "keep-me", "BUDGET_EXCEEDED")
    tick(db)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("UPDATE aos.events SET created_at = now() - interval '30 days'")
    before = counts(db)
    result = run_cli("prune-events", *args, "--dsn", db, timeout=30)
    assert_one_error_line(result, fragment)
    assert result.returncode == code, str(result)
    assert result.stdout == ""
    assert counts(db) == before == (2, 1)
