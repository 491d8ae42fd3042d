"""The engines under real concurrent sessions.

Each session is a thread with its own psycopg connection, on a migrated clone per test (exact
counts). Writers that hit a deadlock (40P01) or a serialization failure (40001) retry their
transaction and count it; races on one row are made real by a Barrier and, where a row lock can
hold them, by a gate transaction that keeps the row locked until every session is waiting on it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
import pytest
from psycopg import errors
from psycopg.types.json import Jsonb

TENANT = "t1"
WRITERS = 8
RUNS_PER_WRITER = 25
JOIN_TIMEOUT = 60.0

# What a run of the plan ends as: an error code (failed) or None (succeeded).
CODES = ["EXECUTION_TIMEOUT", "AGENT_CRASH", "BUDGET_EXCEEDED", None, "EXECUTION_TIMEOUT", "AGENT_CRASH", None]
SEVERITY = {"EXECUTION_TIMEOUT": "high", "AGENT_CRASH": "critical", "BUDGET_EXCEEDED": "medium"}
RETRYABLE = (errors.DeadlockDetected, errors.SerializationFailure)


# ---- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def db(migrated_dsn: str) -> str:
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        conn.execute("SELECT aos.register_tenant(%s)", (TENANT,))
    return migrated_dsn


def scalar(dsn: str, sql: str, params=None):
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, params).fetchone()[0]


def rows(dsn: str, sql: str, params=None) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def run_threads(count: int, target: Callable[[int], object]) -> list:
    """Runs target(i) in `count` threads; returns their results (or the exception each raised)."""
    results: list = [None] * count
    finished = [False] * count

    def body(i: int) -> None:
        try:
            results[i] = target(i)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            results[i] = exc
        finished[i] = True

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + JOIN_TIMEOUT
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert all(finished), f"sessions still running after {JOIN_TIMEOUT}s: {[i for i, f in enumerate(finished) if not f]}"
    return results


def wait_for_lock_waiters(dsn: str, app_prefix: str, count: int, timeout: float = 15.0) -> None:
    """Until `count` sessions whose application_name starts with app_prefix wait on a lock."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s AND wait_event_type = 'Lock'",
                (app_prefix + "%",),
            ).fetchone()[0]
            if waiting == count:
                return
            time.sleep(0.02)
    raise AssertionError(f"only {waiting} of {count} sessions ended up waiting on the gate")


def connect(dsn: str, app: str, autocommit: bool = True) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=autocommit, application_name=app)


def as_operator(conn: psycopg.Connection, tenant: str = TENANT) -> psycopg.Connection:
    conn.execute("SET ROLE aos_operator")
    conn.execute("SELECT set_config('aos.tenant_id', %s, false)", (tenant,))
    return conn


def failed_run_with_proposal(dsn: str, run_id: str, code: str = "EXECUTION_TIMEOUT") -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)"
                     " VALUES (%s, %s, 'agent-a', 'failed', %s)", (TENANT, run_id, code))
        return str(conn.execute("SELECT id FROM policies.policy_proposals WHERE tenant_id = %s AND triggering_run_id = %s",
                                (TENANT, run_id)).fetchone()[0])


def outcome(exc_or_value) -> str:
    """'ok' for a value, the SQLSTATE for a database error; anything else is re-raised."""
    if isinstance(exc_or_value, psycopg.Error):
        return exc_or_value.sqlstate
    if isinstance(exc_or_value, BaseException):
        raise exc_or_value
    return "ok"


# ---- 5. 8 concurrent writers ----------------------------------------------------------------------


@dataclass
class Writer:
    """One writer's plan: run ids with their final error code (None: succeeded)."""

    index: int
    plan: list[tuple[str, str | None]] = field(default_factory=list)
    retries: int = 0
    transactions: int = 0
    began: float = 0.0
    ended: float = 0.0

    def __post_init__(self) -> None:
        self.plan = [(f"w{self.index}-r{i:02d}", CODES[(self.index + i) % len(CODES)]) for i in range(RUNS_PER_WRITER)]


def _with_retry(conn: psycopg.Connection, writer: Writer | Storm, work: Callable[[], None]) -> None:
    for _attempt in range(20):
        try:
            with conn.transaction():
                work()
            writer.transactions += 1
            return
        except RETRYABLE:
            writer.retries += 1
    raise AssertionError(f"writer {writer.index}: 20 retries were not enough")


def _write(dsn: str, writer: Writer, barrier: threading.Barrier) -> Writer:
    """Even writers insert runs as already failed/succeeded (plain SQL as aos_worker); odd writers go
    through the worker API (start_run, finish_run: running -> failed by UPDATE). The first 15 runs are
    single-run transactions, the last 10 two multi-row statements of 5 runs."""
    with connect(dsn, f"writer-{writer.index}") as conn:
        conn.execute("SET ROLE aos_worker")
        singles, batches = writer.plan[:15], [writer.plan[15:20], writer.plan[20:25]]
        barrier.wait(timeout=30)
        writer.began = time.monotonic()
        insert = ("INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, error_message)"
                  " VALUES (%s, %s, 'agent-a', %s, %s, %s)")

        def status(code: str | None) -> str:
            return "succeeded" if code is None else "failed"

        for run_id, code in singles:
            if writer.index % 2 == 0:
                _with_retry(conn, writer, lambda: conn.execute(
                    insert, (TENANT, run_id, status(code), code, code and f"{code}: boom")))
            else:
                def via_api(run_id=run_id, code=code) -> None:
                    conn.execute("SELECT activity.start_run(%s, %s, 'agent-a', 'goal')", (TENANT, run_id))
                    outcome_json = "{}" if code is None else f'{{"error_code": "{code}"}}'
                    conn.execute("SELECT activity.finish_run(%s, %s, %s, %s::jsonb)",
                                 (TENANT, run_id, status(code), outcome_json))
                _with_retry(conn, writer, via_api)
        for batch in batches:
            if writer.index % 2 == 0:
                # One multi-row INSERT: the engines see all five in one statement.
                values = ", ".join(["(%s, %s, 'agent-a', %s, %s, %s)"] * len(batch))
                params = [p for run_id, code in batch for p in (TENANT, run_id, status(code), code, None)]
                _with_retry(conn, writer, lambda: conn.execute(
                    "INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, error_message)"
                    f" VALUES {values}", params))
            else:
                # Insert five running runs, then finish them with one multi-row UPDATE.
                def start_then_update(batch=batch) -> None:
                    for run_id, _code in batch:
                        conn.execute("INSERT INTO activity.runs (tenant_id, run_id, agent_id, status)"
                                     " VALUES (%s, %s, 'agent-a', 'running')", (TENANT, run_id))
                    conn.execute(
                        "UPDATE activity.runs AS r SET status = v.status, error_code = v.code"
                        " FROM (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]) AS t (run_id, status, code)) AS v"
                        " WHERE r.tenant_id = %s AND r.run_id = v.run_id",
                        ([b[0] for b in batch], [status(b[1]) for b in batch], [b[1] for b in batch], TENANT))
                _with_retry(conn, writer, start_then_update)
        writer.ended = time.monotonic()
    return writer


def test_eight_concurrent_writers_of_one_tenant(db: str, record_property) -> None:
    writers = [Writer(i) for i in range(WRITERS)]
    barrier = threading.Barrier(WRITERS)
    started = time.monotonic()
    results = run_threads(WRITERS, lambda i: _write(db, writers[i], barrier))
    elapsed = time.monotonic() - started
    for result in results:
        if isinstance(result, BaseException):
            raise result
    assert all(w.transactions == 15 + 2 for w in writers), [w.transactions for w in writers]
    assert max(w.began for w in writers) < min(w.ended for w in writers), "the writers did not overlap"
    retries = sum(w.retries for w in writers)
    record_property("writer_retries", retries)
    print(f"\n8 writers, {WRITERS * RUNS_PER_WRITER} runs in {elapsed:.2f}s, retries: {retries}"
          f" ({[w.retries for w in writers]})")

    plan = {run_id: code for w in writers for run_id, code in w.plan}
    failed = {run_id: code for run_id, code in plan.items() if code is not None}
    expected_by_severity = {s: sum(1 for c in failed.values() if SEVERITY[c] == s) for s in ("high", "critical", "medium")}
    assert all(expected_by_severity.values()) and len(failed) < len(plan)  # the plan really is a mix

    # Every run is there with its final status, and nothing was prevented (no rule exists).
    assert dict(rows(db, "SELECT run_id, status FROM activity.runs")) == {
        r: ("succeeded" if c is None else "failed") for r, c in plan.items()}
    assert scalar(db, "SELECT count(*) FROM policies.prevention_records WHERE outcome = 'prevented'") == 0

    # Exactly one incident per failed run, none for a success, with the failure's severity.
    incidents = rows(db, "SELECT source_run_id, severity, error_code, cause_type, lifecycle_state FROM incidents.incidents")
    assert len(incidents) == len(failed)
    assert {i[0]: (i[1], i[2]) for i in incidents} == {r: (SEVERITY[c], c) for r, c in failed.items()}
    assert {(i[3], i[4]) for i in incidents} == {("llm_run", "active")}

    # No orphans: every incident's source run exists, failed, and is the run it names by uuid.
    assert scalar(db, """
        SELECT count(*) FROM incidents.incidents AS i
        LEFT JOIN activity.runs AS r ON r.tenant_id = i.tenant_id AND r.run_id = i.source_run_id AND r.id = i.llm_run_id
        WHERE r.run_id IS NULL OR r.status <> 'failed'""") == 0

    # One pending proposal per proposed rule (the high code's warn rule, the critical code's block
    # rule), none for medium; every high or critical incident is linked to exactly one proposal,
    # the one of its code, and each proposal counts its links.
    high_or_critical = expected_by_severity["high"] + expected_by_severity["critical"]
    assert rows(db, """
        SELECT proposed_rule ->> 'enforcement', proposed_rule #>> '{conditions,error_codes,0}', status, incident_count
        FROM policies.policy_proposals ORDER BY 1""") == [
        ("block", "AGENT_CRASH", "pending", expected_by_severity["critical"]),
        ("warn", "EXECUTION_TIMEOUT", "pending", expected_by_severity["high"])]
    assert scalar(db, "SELECT sum(incident_count) FROM policies.policy_proposals") == high_or_critical
    assert rows(db, """
        SELECT i.severity, count(l.proposal_id) FROM incidents.incidents AS i
        LEFT JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id
        GROUP BY i.tenant_id, i.id, i.severity
        HAVING count(l.proposal_id) <> CASE WHEN i.severity IN ('high', 'critical') THEN 1 ELSE 0 END
    """) == []
    assert scalar(db, """
        SELECT count(*) FROM policies.proposal_incidents AS l
        INNER JOIN incidents.incidents AS i ON i.tenant_id = l.tenant_id AND i.id = l.incident_id
        INNER JOIN policies.policy_proposals AS p ON p.tenant_id = l.tenant_id AND p.id = l.proposal_id
        WHERE i.error_code <> p.proposed_rule #>> '{conditions,error_codes,0}'""") == 0
    # Each proposal counts its links, its triggering incident among them; no orphan proposal.
    assert rows(db, """
        SELECT p.id FROM policies.policy_proposals AS p
        LEFT JOIN policies.proposal_incidents AS l ON l.tenant_id = p.tenant_id AND l.proposal_id = p.id
        GROUP BY p.tenant_id, p.id
        HAVING count(l.incident_id) <> p.incident_count
            OR count(*) FILTER (WHERE l.incident_id = p.triggering_incident_id) <> 1""") == []
    assert scalar(db, """
        SELECT count(*) FROM policies.policy_proposals AS p
        LEFT JOIN incidents.incidents AS i ON i.tenant_id = p.tenant_id AND i.id = p.triggering_incident_id
        WHERE i.id IS NULL OR i.source_run_id <> p.triggering_run_id""") == 0

    # One detected timeline event per incident.
    assert rows(db, """
        SELECT i.id, count(e.id) FROM incidents.incidents AS i
        LEFT JOIN incidents.incident_events AS e
            ON e.tenant_id = i.tenant_id AND e.incident_id = i.id AND e.event_type = 'detected'
        GROUP BY i.id HAVING count(e.id) <> 1""") == []
    assert scalar(db, "SELECT count(*) FROM incidents.incident_events") == len(failed)

    # The outbox: one run_failed per failed run, one incident_created per incident, one
    # proposal_created per proposal, and nothing else (no rule, no action).
    assert dict(rows(db, "SELECT event, count(*) FROM aos.events WHERE event <> 'prevention_recorded' GROUP BY event")) == {
        "run_failed": len(failed), "incident_created": len(failed),
        "proposal_created": 2}
    assert sorted(r[0] for r in rows(db, "SELECT subject_id FROM aos.events WHERE event = 'run_failed'")) == sorted(failed)
    assert scalar(db, """
        SELECT count(*) FROM aos.events AS e
        LEFT JOIN incidents.incidents AS i ON i.tenant_id = e.tenant_id AND i.id::text = e.subject_id
        WHERE e.event = 'incident_created' AND i.id IS NULL""") == 0
    assert scalar(db, "SELECT count(DISTINCT subject_id) = count(*) FROM aos.events WHERE event = 'incident_created'")
    # Guardrail records (rate limit, failure spike) are allowed; each has its event, once.
    assert scalar(db, "SELECT count(*) FROM aos.events WHERE event = 'prevention_recorded'") == scalar(
        db, "SELECT count(*) FROM policies.prevention_records")


# ---- 6. concurrent reviews of one proposal ------------------------------------------------------


def _race_reviews(db: str, proposal_id: str, verbs: list[str]) -> list:
    """Each verb in its own operator session; all wait on a gate that holds the proposal's row lock,
    so every session is inside the action when the gate opens."""
    tag = f"review-{uuid.uuid4().hex[:8]}-"
    barrier = threading.Barrier(len(verbs) + 1)
    gate = connect(db, "gate", autocommit=False)
    try:
        gate.execute("SELECT FROM policies.policy_proposals WHERE id = %s FOR UPDATE", (proposal_id,))

        def review(i: int):
            with connect(db, f"{tag}{i}") as conn:
                as_operator(conn)
                barrier.wait(timeout=30)
                if verbs[i] == "approve":
                    return conn.execute("SELECT policies.approve_proposal(%s, %s)", (proposal_id, f"op{i}")).fetchone()[0]
                conn.execute("SELECT policies.reject_proposal(%s, %s)", (proposal_id, f"op{i}"))
                return "rejected"

        results: list = []
        runner = threading.Thread(target=lambda: results.extend(run_threads(len(verbs), review)), daemon=True)
        runner.start()
        barrier.wait(timeout=30)
        wait_for_lock_waiters(db, tag, len(verbs))
        gate.commit()
        runner.join(JOIN_TIMEOUT)
        assert len(results) == len(verbs), "the reviews did not finish"
        return results
    finally:
        gate.close()


def test_eight_concurrent_approvals_make_one_rule(db: str) -> None:
    proposal_id = failed_run_with_proposal(db, "r-approve")
    results = _race_reviews(db, proposal_id, ["approve"] * 8)
    outcomes = [outcome(r) for r in results]
    assert sorted(outcomes) == ["55000"] * 7 + ["ok"], outcomes
    rule_id = next(r for r in results if not isinstance(r, BaseException))
    assert rows(db, "SELECT id FROM policies.policy_rules WHERE source_proposal_id = %s", (proposal_id,)) == [(rule_id,)]
    assert scalar(db, "SELECT count(*) FROM policies.policy_rules") == 1
    assert rows(db, "SELECT status, source, rule_type, enforcement FROM policies.policy_rules") == [
        ("active", "proposal", "error_code", "warn")]
    assert scalar(db, "SELECT status FROM policies.policy_proposals WHERE id = %s", (proposal_id,)) == "approved"
    for result in results:
        if isinstance(result, psycopg.Error):
            assert "already approved" in result.diag.message_primary, result.diag.message_primary
    assert dict(rows(db, "SELECT event, count(*) FROM aos.events WHERE event IN"
                         " ('proposal_approved', 'proposal_rejected', 'rule_created') GROUP BY event")) == {
        "proposal_approved": 1, "rule_created": 1}


def test_concurrent_approve_and_reject_one_verdict_wins(db: str) -> None:
    proposal_id = failed_run_with_proposal(db, "r-mixed")
    verbs = ["approve", "reject"] * 4
    results = _race_reviews(db, proposal_id, verbs)
    outcomes = [outcome(r) for r in results]
    assert sorted(outcomes) == ["55000"] * 7 + ["ok"], outcomes
    winner = verbs[outcomes.index("ok")]
    status = scalar(db, "SELECT status FROM policies.policy_proposals WHERE id = %s", (proposal_id,))
    rules = scalar(db, "SELECT count(*) FROM policies.policy_rules WHERE source_proposal_id = %s", (proposal_id,))
    events = dict(rows(db, "SELECT event, count(*) FROM aos.events WHERE event IN"
                           " ('proposal_approved', 'proposal_rejected', 'rule_created') GROUP BY event"))
    if winner == "approve":
        assert (status, rules, events) == ("approved", 1, {"proposal_approved": 1, "rule_created": 1})
    else:
        assert (status, rules, events) == ("rejected", 0, {"proposal_rejected": 1})
    assert scalar(db, "SELECT count(*) FROM policies.policy_rules") == rules


# ---- 7. re-delivery under concurrency -----------------------------------------------------------


def _race_on_run(db: str, run_id: str, statements: list[tuple[str, tuple]], roles: list[str | None]) -> list:
    """Each statement in its own session, all held by a gate that locks the run's row."""
    tag = f"redeliver-{uuid.uuid4().hex[:8]}-"
    barrier = threading.Barrier(len(statements) + 1)
    gate = connect(db, "gate", autocommit=False)
    try:
        gate.execute("SELECT FROM activity.runs WHERE tenant_id = %s AND run_id = %s FOR UPDATE", (TENANT, run_id))

        def deliver(i: int):
            with connect(db, f"{tag}{i}") as conn:
                if roles[i]:
                    conn.execute(f"SET ROLE {roles[i]}")
                barrier.wait(timeout=30)
                conn.execute(*statements[i])
                return "ok"

        results: list = []
        runner = threading.Thread(target=lambda: results.extend(run_threads(len(statements), deliver)), daemon=True)
        runner.start()
        barrier.wait(timeout=30)
        wait_for_lock_waiters(db, tag, len(statements))
        gate.commit()
        runner.join(JOIN_TIMEOUT)
        assert len(results) == len(statements), "the sessions did not finish"
        return results
    finally:
        gate.close()


def _effects_of(db: str, run_id: str) -> tuple:
    return (
        scalar(db, "SELECT count(*) FROM incidents.incidents WHERE source_run_id = %s", (run_id,)),
        scalar(db, "SELECT count(*) FROM policies.policy_proposals WHERE triggering_run_id = %s", (run_id,)),
        scalar(db, "SELECT count(*) FROM incidents.incident_events WHERE details ->> 'run_id' = %s", (run_id,)),
        scalar(db, "SELECT count(*) FROM aos.events WHERE event = 'run_failed' AND subject_id = %s", (run_id,)),
    )


def test_concurrent_redelivery_of_a_failed_run(db: str) -> None:
    failed_run_with_proposal(db, "r-again")
    assert _effects_of(db, "r-again") == (1, 1, 1, 1)
    update = ("UPDATE activity.runs SET error_message = coalesce(error_message, '') || '', status = 'failed'"
              " WHERE tenant_id = %s AND run_id = %s", (TENANT, "r-again"))
    finish = ("SELECT activity.finish_run(%s, %s, 'failed', '{\"error_code\": \"EXECUTION_TIMEOUT\"}')",
              (TENANT, "r-again"))
    results = _race_on_run(db, "r-again", [update, finish] * 4, [None, "aos_worker"] * 4)
    assert [outcome(r) for r in results] == ["ok"] * 8
    assert _effects_of(db, "r-again") == (1, 1, 1, 1)
    assert scalar(db, "SELECT count(*) FROM aos.events") == 3


def test_concurrent_first_delivery_of_one_failure(db: str) -> None:
    """8 sessions report the same live run as failed at once: the first makes it fail, the others are
    re-deliveries; one incident, one proposal."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT activity.start_run(%s, 'r-live', 'agent-a', 'goal')", (TENANT,))
    update = ("UPDATE activity.runs SET status = 'failed', error_code = 'AGENT_CRASH'"
              " WHERE tenant_id = %s AND run_id = %s", (TENANT, "r-live"))
    finish = ("SELECT activity.finish_run(%s, %s, 'failed', '{\"error_code\": \"AGENT_CRASH\"}')", (TENANT, "r-live"))
    results = _race_on_run(db, "r-live", [finish, update] * 4, ["aos_worker", None] * 4)
    assert [outcome(r) for r in results] == ["ok"] * 8
    assert _effects_of(db, "r-live") == (1, 1, 1, 1)
    assert rows(db, "SELECT severity FROM incidents.incidents") == [("critical",)]


def test_concurrent_conflicting_reports_of_one_run(db: str) -> None:
    """Half say failed, half say succeeded: the first wins, the others with another status get 55000;
    an incident exists exactly when failed won."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT activity.start_run(%s, 'r-split', 'agent-a', 'goal')", (TENANT,))
    statuses = ["failed", "succeeded"] * 4
    statements = [("SELECT activity.finish_run(%s, 'r-split', %s, %s::jsonb)",
                   (TENANT, s, '{"error_code": "EXECUTION_TIMEOUT"}' if s == "failed" else "{}")) for s in statuses]
    results = _race_on_run(db, "r-split", statements, ["aos_worker"] * 8)
    final = scalar(db, "SELECT status FROM activity.runs WHERE run_id = 'r-split'")
    outcomes = [outcome(r) for r in results]
    assert outcomes == ["ok" if s == final else "55000" for s in statuses], (final, outcomes)
    assert _effects_of(db, "r-split") == ((1, 1, 1, 1) if final == "failed" else (0, 0, 0, 0))


def test_concurrent_duplicate_inserts_of_one_failed_run(db: str) -> None:
    """8 sessions insert the same failed run with ON CONFLICT DO NOTHING at once: one row, one incident."""
    barrier = threading.Barrier(8)

    def insert(i: int):
        with connect(db, f"dup-{i}") as conn:
            conn.execute("SET ROLE aos_worker")
            barrier.wait(timeout=30)
            return conn.execute(
                "INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)"
                " VALUES (%s, 'r-dup', 'agent-a', 'failed', 'EXECUTION_TIMEOUT') ON CONFLICT DO NOTHING", (TENANT,)
            ).rowcount

    results = run_threads(8, insert)
    assert sorted(results) == [0] * 7 + [1], results
    assert _effects_of(db, "r-dup") == (1, 1, 1, 1)


# ---- 8. concurrent storms of one tenant and code ------------------------------------------------

TIMEOUT_RULE = {"rule_type": "error_code", "conditions": {"error_codes": ["EXECUTION_TIMEOUT"]}, "enforcement": "warn"}
CRASH_RULE = {"rule_type": "error_code", "conditions": {"error_codes": ["AGENT_CRASH"]}, "enforcement": "block"}
STORM_SESSIONS = 6
STORM_TRANSACTIONS = 4
STORM_BATCH = 10
# While a proposal is reviewed: how many sessions keep failing, how many runs per transaction, how
# many transactions each still commits once the review is in, and how long they wait for it.
REVIEW_SESSIONS = 4
REVIEW_BATCH = 5
AFTER_REVIEW = 3
REVIEW_TIMEOUT = 30.0


@dataclass
class Storm:
    """One storm session: its committed transactions (run ids, and when they ran against the review)."""

    index: int
    retries: int = 0
    transactions: int = 0
    committed: list[tuple[list[str], bool, bool]] = field(default_factory=list)  # (runs, began after, ended before)


def _insert_failures(conn: psycopg.Connection, run_ids: list[str], code: str) -> None:
    """One multi-row INSERT of failed runs."""
    conn.execute("INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)"
                 " SELECT %s, r, 'agent-a', 'failed', %s FROM unnest(%s::text[]) WITH ORDINALITY AS u (r, o) ORDER BY o",
                 (TENANT, code, run_ids))


def _links_are_consistent(db: str) -> None:
    """Every high or critical incident is linked exactly once; every proposal counts its links."""
    assert rows(db, """
        SELECT i.id FROM incidents.incidents AS i
        LEFT JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id
        GROUP BY i.tenant_id, i.id HAVING count(l.proposal_id) <> 1""") == []
    assert rows(db, """
        SELECT p.id, p.incident_count, count(l.incident_id) FROM policies.policy_proposals AS p
        LEFT JOIN policies.proposal_incidents AS l ON l.tenant_id = p.tenant_id AND l.proposal_id = p.id
        GROUP BY p.tenant_id, p.id HAVING count(l.incident_id) <> p.incident_count""") == []
    assert scalar(db, "SELECT count(*) FROM aos.events WHERE event = 'proposal_created'") == scalar(
        db, "SELECT count(*) FROM policies.policy_proposals")


def _proposal_of_each_run(db: str) -> dict[str, str]:
    """run_id -> the proposal its incident is linked to."""
    return dict(rows(db, """
        SELECT i.source_run_id, l.proposal_id::text FROM incidents.incidents AS i
        INNER JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id"""))


def test_concurrent_storms_of_one_tenant_and_code_share_one_proposal(db: str) -> None:
    """6 sessions fail runs of one tenant and code at once, several transactions each: the first
    transactions all wait on a gate (the tenant row, which every new run's foreign key locks) so that
    they open the proposal at the same moment. One pending proposal counts every incident."""
    tag = f"storm-{uuid.uuid4().hex[:8]}-"
    barrier = threading.Barrier(STORM_SESSIONS + 1)
    storms = [Storm(i) for i in range(STORM_SESSIONS)]

    def storm(i: int) -> Storm:
        with connect(db, f"{tag}{i}") as conn:
            conn.execute("SET ROLE aos_worker")
            barrier.wait(timeout=30)
            for t in range(STORM_TRANSACTIONS):
                run_ids = [f"s{i}-{t}-{k:02d}" for k in range(STORM_BATCH)]
                _with_retry(conn, storms[i],
                            lambda run_ids=run_ids: _insert_failures(conn, run_ids, "EXECUTION_TIMEOUT"))
                storms[i].committed.append((run_ids, False, False))
        return storms[i]

    gate = connect(db, "gate", autocommit=False)
    try:
        gate.execute("SELECT FROM aos.tenants WHERE tenant_id = %s FOR UPDATE", (TENANT,))
        results: list = []
        runner = threading.Thread(target=lambda: results.extend(run_threads(STORM_SESSIONS, storm)), daemon=True)
        runner.start()
        barrier.wait(timeout=30)
        wait_for_lock_waiters(db, tag, STORM_SESSIONS)
        gate.commit()
        runner.join(JOIN_TIMEOUT)
    finally:
        gate.close()
    assert len(results) == STORM_SESSIONS, "the storm sessions did not finish"
    for result in results:
        if isinstance(result, BaseException):
            raise result
    assert [s.transactions for s in storms] == [STORM_TRANSACTIONS] * STORM_SESSIONS
    print(f"\n{STORM_SESSIONS} storm sessions, retries: {[s.retries for s in storms]}")

    total = STORM_SESSIONS * STORM_TRANSACTIONS * STORM_BATCH
    assert scalar(db, "SELECT count(*) FROM incidents.incidents") == total
    proposals = rows(db, "SELECT id, status, incident_count, proposed_rule FROM policies.policy_proposals")
    assert [p[1:] for p in proposals] == [("pending", total, TIMEOUT_RULE)], proposals
    assert scalar(db, "SELECT count(*) FROM policies.proposal_incidents WHERE proposal_id = %s",
                  (proposals[0][0],)) == total
    _links_are_consistent(db)
    assert scalar(db, "SELECT count(*) FROM aos.events WHERE event = 'proposal_created'") == 1


def _storm_during_review(db: str, code: str, verb: str) -> tuple[str, list[Storm], float]:
    """A proposal for `code`, then REVIEW_SESSIONS sessions failing runs of that code, one
    transaction after another, while an operator reviews the proposal (verb: approve or reject).
    Each session commits AFTER_REVIEW more transactions once the review is in, then stops. Returns
    the proposal, the sessions, and the most pending proposals of the rule seen at any one time."""
    proposal_id = failed_run_with_proposal(db, f"first-{code}", code)
    rule = TIMEOUT_RULE if code == "EXECUTION_TIMEOUT" else CRASH_RULE
    barrier = threading.Barrier(REVIEW_SESSIONS + 2)
    reviewing, reviewed = threading.Event(), threading.Event()
    storms = [Storm(i) for i in range(REVIEW_SESSIONS)]
    finished = [False] * REVIEW_SESSIONS
    most_pending = [0]

    def storm(i: int) -> Storm:
        try:
            with connect(db, f"review-storm-{i}") as conn:
                conn.execute("SET ROLE aos_worker")
                barrier.wait(timeout=30)
                deadline, after = time.monotonic() + REVIEW_TIMEOUT, 0
                for t in range(100_000):
                    if after >= AFTER_REVIEW or time.monotonic() > deadline:
                        break
                    began_after = reviewed.is_set()
                    run_ids = [f"{code[:2]}{i}-{t:04d}-{k}" for k in range(REVIEW_BATCH)]
                    _with_retry(conn, storms[i], lambda run_ids=run_ids: _insert_failures(conn, run_ids, code))
                    storms[i].committed.append((run_ids, began_after, not reviewing.is_set()))
                    after += began_after
            return storms[i]
        finally:
            finished[i] = True

    def watch(_i: int) -> int:
        """Samples how many pending proposals the rule has until the storm sessions are done."""
        with connect(db, "watch") as conn:
            barrier.wait(timeout=30)
            deadline = time.monotonic() + JOIN_TIMEOUT
            while not all(finished) and time.monotonic() < deadline:
                pending = conn.execute("SELECT count(*) FROM policies.policy_proposals"
                                       " WHERE tenant_id = %s AND proposed_rule = %s AND status = 'pending'",
                                       (TENANT, Jsonb(rule))).fetchone()[0]
                most_pending[0] = max(most_pending[0], pending)
                time.sleep(0.005)
        return most_pending[0]

    def session(i: int):
        return storm(i) if i < REVIEW_SESSIONS else watch(i)

    results: list = []
    runner = threading.Thread(target=lambda: results.extend(run_threads(REVIEW_SESSIONS + 1, session)), daemon=True)
    runner.start()
    barrier.wait(timeout=30)
    # Review once every session has committed a few transactions, so the review lands mid-storm.
    deadline = time.monotonic() + REVIEW_TIMEOUT
    while min(s.transactions for s in storms) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert min(s.transactions for s in storms) >= 2, "the storm did not get going"
    with connect(db, "reviewer") as conn:
        as_operator(conn)
        reviewing.set()
        conn.execute(f"SELECT policies.{verb}_proposal(%s, 'alice')", (proposal_id,))
        reviewed.set()
    runner.join(JOIN_TIMEOUT)
    assert len(results) == REVIEW_SESSIONS + 1, "the storm sessions did not finish"
    for result in results:
        if isinstance(result, BaseException):
            raise result
    assert all(sum(c[1] for c in s.committed) == AFTER_REVIEW for s in storms), "the storm stopped before the review"
    print(f"\nstorm during {verb}: transactions {[s.transactions for s in storms]},"
          f" retries {[s.retries for s in storms]}")
    return proposal_id, storms, most_pending[0]


def test_approval_in_the_middle_of_a_storm(db: str) -> None:
    """Approval makes an error_code rule (warn, for a high code) that prevents later failures of
    that code: once it has committed, a failure gets no incident and no proposal."""
    proposal_id, storms, most_pending = _storm_during_review(db, "EXECUTION_TIMEOUT", "approve")
    assert most_pending <= 1
    assert scalar(db, "SELECT count(*) FROM policies.policy_proposals WHERE status = 'pending'") <= 1
    rule_id, rule_status, enforcement = rows(db, "SELECT id, status, enforcement FROM policies.policy_rules"
                                                 " WHERE source_proposal_id = %s", (proposal_id,))[0]
    assert (rule_status, enforcement) == ("active", "warn")
    assert rows(db, "SELECT id, status FROM policies.policy_proposals WHERE status <> 'pending'") == [
        (uuid.UUID(proposal_id), "approved")]

    outcome_of = dict(rows(db, """
        SELECT r.run_id,
               CASE WHEN i.id IS NOT NULL AND p.id IS NULL THEN 'incident'
                    WHEN i.id IS NULL AND p.id IS NOT NULL THEN 'prevented' ELSE 'both or neither' END
        FROM activity.runs AS r
        LEFT JOIN incidents.incidents AS i ON i.tenant_id = r.tenant_id AND i.source_run_id = r.run_id
        LEFT JOIN policies.prevention_records AS p
            ON p.tenant_id = r.tenant_id AND p.run_id = r.run_id AND p.outcome = 'prevented' AND p.policy_rule_id = %s
        WHERE r.status = 'failed'""", (rule_id,)))
    assert set(outcome_of.values()) <= {"incident", "prevented"}, outcome_of
    linked_to = _proposal_of_each_run(db)
    for s in storms:
        for run_ids, began_after, ended_before in s.committed:
            for run_id in run_ids:
                if began_after:  # the rule was committed before the transaction began
                    assert outcome_of[run_id] == "prevented", run_id
                if ended_before:  # committed before the review began: joined the reviewed proposal
                    assert linked_to.get(run_id) == proposal_id, run_id
    assert "prevented" in outcome_of.values() and "incident" in outcome_of.values()
    _links_are_consistent(db)
    assert scalar(db, "SELECT count(*) FROM aos.events WHERE event = 'rule_created'") == 1

    # Now that the storm is over, another failure of that code changes nothing but its record.
    before = rows(db, "SELECT id, status, incident_count FROM policies.policy_proposals ORDER BY id")
    with psycopg.connect(db, autocommit=True) as conn:
        _insert_failures(conn, ["after-the-storm"], "EXECUTION_TIMEOUT")
    assert rows(db, "SELECT outcome FROM policies.prevention_records WHERE run_id = 'after-the-storm'"
                    " AND policy_rule_id IS NOT NULL") == [("prevented",)]
    assert scalar(db, "SELECT count(*) FROM incidents.incidents WHERE source_run_id = 'after-the-storm'") == 0
    assert rows(db, "SELECT id, status, incident_count FROM policies.policy_proposals ORDER BY id") == before


def test_rejection_in_the_middle_of_a_storm_then_a_new_proposal(db: str) -> None:
    """Rejection creates no rule: failures go on making incidents, and once the proposal is
    rejected they gather on a new pending proposal of the same rule, never two at once. After a
    second rejection, the next failure opens a new proposal counting one incident."""
    proposal_id, storms, most_pending = _storm_during_review(db, "AGENT_CRASH", "reject")
    assert most_pending <= 1
    assert scalar(db, "SELECT count(*) FROM policies.policy_rules") == 0
    assert scalar(db, "SELECT count(*) FROM policies.prevention_records WHERE outcome = 'prevented'") == 0
    failed = [r for s in storms for run_ids, _a, _b in s.committed for r in run_ids]
    assert scalar(db, "SELECT count(*) FROM incidents.incidents") == len(failed) + 1
    linked_to = _proposal_of_each_run(db)
    for s in storms:
        for run_ids, began_after, ended_before in s.committed:
            for run_id in run_ids:
                if began_after:  # the rejection was committed: never linked to the rejected proposal
                    assert linked_to[run_id] != proposal_id, run_id
                if ended_before:
                    assert linked_to[run_id] == proposal_id, run_id
    # The sessions went on after the rejection: exactly one new pending proposal holds those incidents.
    pending = rows(db, "SELECT id::text, proposed_rule FROM policies.policy_proposals WHERE status = 'pending'")
    assert len(pending) == 1 and pending[0][0] != proposal_id and pending[0][1] == CRASH_RULE, pending
    assert rows(db, "SELECT id::text, status FROM policies.policy_proposals WHERE status <> 'pending'") == [
        (proposal_id, "rejected")]
    _links_are_consistent(db)

    # Reject that one too: the next failure of the code opens a third proposal, counting one incident.
    with connect(db, "reviewer") as conn:
        as_operator(conn).execute("SELECT policies.reject_proposal(%s, 'alice')", (pending[0][0],))
    with psycopg.connect(db, autocommit=True) as conn:
        _insert_failures(conn, ["after-the-storm"], "AGENT_CRASH")
    assert rows(db, """
        SELECT p.status, p.incident_count, p.triggering_run_id, count(l.incident_id) FROM policies.policy_proposals AS p
        LEFT JOIN policies.proposal_incidents AS l ON l.tenant_id = p.tenant_id AND l.proposal_id = p.id
        WHERE p.status = 'pending' GROUP BY p.tenant_id, p.id""") == [("pending", 1, "after-the-storm", 1)]
    assert scalar(db, "SELECT count(*) FROM policies.policy_proposals") == 3
    _links_are_consistent(db)
