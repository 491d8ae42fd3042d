"""Incident storms against a real server: exact counts for one statement of thousands of failures.

A storm of failed runs of one tenant and code is N incidents and N detected events, but one
pending proposal that counts them (policies.proposal_incidents links each incident to it), the
rate limit (dg-003) throttling exactly the runs after the 100th in statement order, and one
failure-spike freeze (dg-004) for the whole window. The windowed guardrails decide a multi-row
INSERT exactly as the same runs inserted one statement at a time: a differential test proves it
on sequences whose windows differ. The last test drives migration 0010 over proposals left by the
engine of earlier releases (one pending proposal per incident) and checks how it merged them.

Every test works on a migrated clone of its own, so every count is exact.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

import psycopg
import pytest
from conftest import REPO_ROOT, query, scalar

TENANT = "storm"
CODE = "EXECUTION_TIMEOUT"
TIMEOUT_RULE = {"rule_type": "error_code", "conditions": {"error_codes": [CODE]}, "enforcement": "warn"}
CRASH_RULE = {"rule_type": "error_code", "conditions": {"error_codes": ["AGENT_CRASH"]}, "enforcement": "block"}
DG004_CONFIG = {"min_runs": 10, "window_seconds": 60, "max_failure_rate": 0.5}


# ---- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def db(migrated_dsn: str) -> str:
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        conn.execute("SELECT aos.register_tenant(%s)", (TENANT,))
    return migrated_dsn


def register(dsn: str, *tenants: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for tenant in tenants:
            conn.execute("SELECT aos.register_tenant(%s)", (tenant,))


class Run(NamedTuple):
    run_id: str
    status: str  # succeeded, failed or a live status
    created_at: datetime | None = None  # None: the default, now() of the inserting transaction


INSERT_ONE = ("INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, created_at)"
              " VALUES (%s, %s, 'agent-a', %s, CASE WHEN %s = 'failed' THEN %s END, coalesce(%s, now()))")


def insert_one_by_one(conn: psycopg.Connection, tenant: str, runs: Sequence[Run]) -> None:
    """One INSERT statement per run, in order."""
    for run in runs:
        conn.execute(INSERT_ONE, (tenant, run.run_id, run.status, run.status, CODE, run.created_at))


def insert_in_one_statement(conn: psycopg.Connection, tenant: str, runs: Sequence[Run]) -> None:
    """All runs in ONE multi-row INSERT, in the same order."""
    conn.execute(
        "INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, created_at)"
        " SELECT %s, v.run_id, 'agent-a', v.status, CASE WHEN v.status = 'failed' THEN %s END,"
        "        coalesce(v.created_at, now())"
        " FROM unnest(%s::text[], %s::text[], %s::timestamptz[]) WITH ORDINALITY AS v (run_id, status, created_at, ord)"
        " ORDER BY v.ord",
        (tenant, CODE, [r.run_id for r in runs], [r.status for r in runs], [r.created_at for r in runs]))


def records(dsn: str, tenant: str, guardrail: str | None = None) -> list[tuple]:
    """(run_id, guardrail_id, outcome, details) of the tenant's prevention records, sorted."""
    return query(dsn, """
        SELECT run_id, guardrail_id, outcome, details FROM policies.prevention_records
        WHERE tenant_id = %s AND (%s::text IS NULL OR guardrail_id = %s) ORDER BY run_id, guardrail_id""",
        (tenant, guardrail, guardrail))


def flagged(dsn: str, tenant: str) -> set[str]:
    return {r[0] for r in query(dsn, "SELECT run_id FROM activity.runs WHERE tenant_id = %s AND policy_violation",
                                (tenant,))}


def freeze_of(dsn: str, tenant: str) -> list[tuple[str, int, int]]:
    """(run_id, runs, failed) of each dg-004 record of the tenant."""
    return [(r[0], r[3]["runs"], r[3]["failed"]) for r in records(dsn, tenant, "dg-004")]


def db_now(dsn: str) -> datetime:
    """The server's clock, to whole seconds."""
    return scalar(dsn, "SELECT date_trunc('second', now())")


# ---- 1. one statement, one storm ------------------------------------------------------------------


@pytest.mark.parametrize("n", [300, 2000])
def test_one_insert_of_a_storm_is_n_incidents_and_one_proposal(db: str, n: int) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SET ROLE aos_worker")
        conn.execute(
            "INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)"
            " SELECT %s, format('r%%s', lpad(g::text, 5, '0')), 'agent-a', 'failed', %s"
            " FROM generate_series(1, %s) AS g ORDER BY g", (TENANT, CODE, n))
    run_ids = [f"r{i:05d}" for i in range(1, n + 1)]

    # N incidents, one per failed run, each with one detected timeline event.
    assert scalar(db, "SELECT count(*) FROM incidents.incidents") == n
    assert scalar(db, "SELECT count(DISTINCT source_run_id) FROM incidents.incidents WHERE severity = 'high'"
                      " AND error_code = %s", (CODE,)) == n
    assert query(db, """
        SELECT i.id FROM incidents.incidents AS i
        LEFT JOIN incidents.incident_events AS e
            ON e.tenant_id = i.tenant_id AND e.incident_id = i.id AND e.event_type = 'detected'
        GROUP BY i.id HAVING count(e.id) <> 1""") == []
    assert scalar(db, "SELECT count(*) FROM incidents.incident_events WHERE event_type = 'detected'") == n

    # Exactly one pending proposal, counting every incident, last seen when they were detected,
    # triggered by the first incident of the statement.
    proposals = query(db, """
        SELECT id, status, incident_count, last_seen_at, triggering_run_id, triggering_incident_id, proposed_rule
        FROM policies.policy_proposals""")
    assert len(proposals) == 1, proposals
    proposal_id, status, count, last_seen_at, trigger_run, trigger_incident, rule = proposals[0]
    assert (status, count, rule) == ("pending", n, TIMEOUT_RULE)
    assert last_seen_at == scalar(db, "SELECT max(created_at) FROM incidents.incidents")
    assert trigger_run == run_ids[0]
    assert trigger_incident == scalar(db, "SELECT id FROM incidents.incidents WHERE source_run_id = %s", (run_ids[0],))

    # One link per incident, all to that proposal, the triggering incident among them.
    assert query(db, """
        SELECT count(*), count(DISTINCT l.incident_id), count(*) FILTER (WHERE l.proposal_id = %s),
               count(*) FILTER (WHERE l.incident_id = %s)
        FROM policies.proposal_incidents AS l
        INNER JOIN incidents.incidents AS i ON i.tenant_id = l.tenant_id AND i.id = l.incident_id""",
                 (proposal_id, trigger_incident)) == [(n, n, n, 1)]

    # dg-003 throttles exactly the runs after the 100th; dg-004 freezes the storm once, at its 10th run.
    throttled = records(db, TENANT, "dg-003")
    assert [r[0] for r in throttled] == run_ids[100:]
    assert {r[2] for r in throttled} == {"throttled"}
    assert freeze_of(db, TENANT) == [(run_ids[9], 10, 10)]
    assert [r[2] for r in records(db, TENANT, "dg-004")] == ["frozen"]
    assert scalar(db, "SELECT count(*) FROM policies.prevention_records") == n - 100 + 1
    assert flagged(db, TENANT) == {*run_ids[100:], run_ids[9]}

    # The outbox: one event per effect, each record's prevention_recorded naming it.
    assert dict(query(db, "SELECT event, count(*) FROM aos.events GROUP BY event")) == {
        "run_failed": n, "incident_created": n, "proposal_created": 1, "prevention_recorded": n - 100 + 1}
    assert query(db, "SELECT subject_id FROM aos.events WHERE event = 'proposal_created'") == [(str(proposal_id),)]
    assert scalar(db, """
        SELECT count(*) FROM policies.prevention_records AS p
        INNER JOIN aos.events AS e ON e.event = 'prevention_recorded' AND e.subject_id = p.id::text""") == n - 100 + 1


def test_two_codes_in_one_statement_open_two_proposals(db: str) -> None:
    """High and critical codes interleaved in one INSERT: one pending proposal per rule (warn for
    the high code, block for the critical one); a medium code opens none."""
    codes = ["EXECUTION_TIMEOUT", "AGENT_CRASH", "BUDGET_EXCEEDED"]
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)"
            " SELECT %s, format('r%%s', lpad(g::text, 3, '0')), 'agent-a', 'failed', (%s::text[])[1 + g %% 3]"
            " FROM generate_series(1, 60) AS g ORDER BY g", (TENANT, codes))
    assert dict(query(db, "SELECT error_code, count(*) FROM incidents.incidents GROUP BY 1")) == {c: 20 for c in codes}
    proposals = query(db, """
        SELECT p.proposed_rule, p.status, p.incident_count, count(l.incident_id),
               count(l.incident_id) FILTER (WHERE i.error_code = p.proposed_rule #>> '{conditions,error_codes,0}'),
               p.triggering_run_id
        FROM policies.policy_proposals AS p
        LEFT JOIN policies.proposal_incidents AS l ON l.tenant_id = p.tenant_id AND l.proposal_id = p.id
        LEFT JOIN incidents.incidents AS i ON i.tenant_id = l.tenant_id AND i.id = l.incident_id
        GROUP BY p.tenant_id, p.id ORDER BY p.proposed_rule ->> 'enforcement'""")
    # g = 1 is AGENT_CRASH (1 + 1 % 3 = 2), g = 3 the first EXECUTION_TIMEOUT.
    assert proposals == [(CRASH_RULE, "pending", 20, 20, 20, "r001"), (TIMEOUT_RULE, "pending", 20, 20, 20, "r003")]
    # The medium incidents are linked to nothing.
    assert scalar(db, """
        SELECT count(*) FROM incidents.incidents AS i
        INNER JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id
        WHERE i.severity = 'medium'""") == 0
    assert scalar(db, "SELECT count(*) FROM aos.events WHERE event = 'proposal_created'") == 2


# ---- 2. dg-004, failure spike, one run per statement ------------------------------------------------


def _runs(spec: str, start: datetime | None = None, step: float = 0.0, first: int = 1) -> list[Run]:
    """'FFS...' as runs r01, r02, ... (F failed, S succeeded); explicit created_at start + i*step when given."""
    return [Run(f"r{first + i:02d}", "failed" if c == "F" else "succeeded",
                None if start is None else start + timedelta(seconds=i * step))
            for i, c in enumerate(spec)]


@pytest.mark.parametrize(("spec", "expected"), [
    ("FFFFFFSSSS", [("r10", 10, 6)]),   # 6 failures then 4 successes: the 4th success
    ("SSSSFFFFFF", [("r10", 10, 6)]),   # 4 successes then 6 failures: the 6th failure
    ("SSSSSFFFFFF", [("r11", 11, 6)]),  # 5 successes then 6 failures: the 11th run, 6 of 11
    ("SSSSSFFFFF", []),                 # 5 of 10 is not more than half
    ("FFFFFFFFF", []),                  # fewer than 10 runs
    ("FFFFFFFFFF" + "F" * 10, [("r10", 10, 10)]),  # the spike goes on: frozen once per window
    ("SFSFSFSFSFSF" + "F" * 6, [("r13", 13, 7)]),  # half of 10 and of 12 is not more: 7 of 13 is
], ids=["failures-then-successes", "successes-then-failures", "five-successes-then-six-failures",
        "half-is-not-more", "nine-runs", "one-freeze-per-window", "alternating-then-failures"])
def test_failure_spike_single_row_statements(db: str, spec: str, expected: list) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        insert_one_by_one(conn, TENANT, _runs(spec))
    assert freeze_of(db, TENANT) == expected
    assert {r[0] for r in records(db, TENANT)} == {e[0] for e in expected}  # nothing but the freeze
    assert flagged(db, TENANT) == {e[0] for e in expected}
    assert scalar(db, "SELECT count(*) FROM aos.events WHERE event = 'prevention_recorded'") == len(expected)


def test_failure_spike_freezes_again_in_a_later_window(db: str) -> None:
    """Runs with explicit created_at in the past: a spike, more failures within 60 s of its freeze
    (no new freeze), then a second spike more than 60 s after the first freeze (frozen again)."""
    t0 = db_now(db) - timedelta(minutes=10)
    spike = _runs("F" * 10, t0, 1.0)                                  # t0 .. t0+9 s: frozen at r10
    within = _runs("F" * 5, t0 + timedelta(seconds=30), 1.0, 11)      # t0+30 .. t0+34 s: window holds r10
    later = _runs("F" * 12, t0 + timedelta(seconds=100), 1.0, 16)     # t0+100 s ..: window (t0+40, ...]
    with psycopg.connect(db, autocommit=True) as conn:
        insert_one_by_one(conn, TENANT, spike + within)
        assert freeze_of(db, TENANT) == [("r10", 10, 10)]
        insert_one_by_one(conn, TENANT, later)
    # r25 is the 10th failure of the new window (r16..r25); r11..r15 are older than 60 s by then.
    assert freeze_of(db, TENANT) == [("r10", 10, 10), ("r25", 10, 10)]
    assert flagged(db, TENANT) == {"r10", "r25"}


# ---- 3. one multi-row INSERT decides what single-row INSERTs decide --------------------------------


def _spread(seed: int) -> list[tuple[str, float]]:
    """Three bursts over three minutes, whole seconds (so several runs share a created_at), with
    failure rates that make the windows differ: a crowded failing minute, a calm one, a failing one."""
    rnd = random.Random(seed)
    out: list[tuple[str, float]] = []
    for count, lo, hi, fail in ((150, 0, 40, 0.6), (60, 70, 110, 0.3), (50, 120, 180, 0.7)):
        out += [("failed" if rnd.random() < fail else "succeeded", float(rnd.randint(lo, hi))) for _ in range(count)]
    return sorted(out, key=lambda r: r[1])  # stable: statement order is created_at order


def _same_time(spec: str) -> list[tuple[str, float]]:
    return [("failed" if c == "F" else "succeeded", 0.0) for c in spec]


SEQUENCES = {
    # name: (status and created_at offset in seconds of each run, guardrails it must trigger)
    "all-failed": (_same_time("F" * 40), {"dg-004"}),
    "mixed": (_same_time("SFF" * 20), {"dg-004"}),
    "successes-first": (_same_time("S" * 5 + "F" * 20), {"dg-004"}),
    "failures-first": (_same_time("F" * 6 + "S" * 20), {"dg-004"}),
    "130-in-one-window": (_same_time("SSSF" * 20 + "SF" * 25), {"dg-003"}),
    "one-second-steps": ([("failed" if (i // 7) % 3 else "succeeded", float(i // 3)) for i in range(150)],
                         {"dg-003", "dg-004"}),
    "spread-over-three-minutes": (_spread(7), {"dg-003", "dg-004"}),
    "spread-over-three-minutes-2": (_spread(11), {"dg-003", "dg-004"}),
    # Live runs are recorded (the rate limit counts them) but not judged.
    "live-runs-in-the-statement": ([("succeeded" if i % 2 else "running", 0.0) for i in range(220)], {"dg-003"}),
    "live-runs-among-failures": ([("running" if i % 3 == 0 else "failed", 0.0) for i in range(60)], {"dg-004"}),
}


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_one_multi_row_insert_decides_as_single_row_inserts(db: str, name: str) -> None:
    """Tenant a gets the sequence one run per statement, tenant b the same runs (ids, statuses,
    created_at) in one INSERT: the same prevention records, details included, and the same flags."""
    sequence, guardrails = SEQUENCES[name]
    t0 = db_now(db) - timedelta(minutes=10)
    runs = [Run(f"r{i:03d}", status, t0 + timedelta(seconds=offset)) for i, (status, offset) in enumerate(sequence)]
    register(db, "a", "b")
    with psycopg.connect(db) as conn, conn.transaction():
        insert_one_by_one(conn, "a", runs)
    with psycopg.connect(db) as conn, conn.transaction():
        insert_in_one_statement(conn, "b", runs)
    single, bulk = records(db, "a"), records(db, "b")
    assert {r[1] for r in single} == guardrails  # the sequence really exercises its windows
    assert bulk == single
    assert flagged(db, "b") == flagged(db, "a") == {r[0] for r in single}


# ---- 4. migration 0010 merges the pending proposals of a storm --------------------------------------


def test_migration_0010_merges_the_pending_proposals_of_a_storm(invoke, migrated_dsn: str) -> None:
    """Before 0010 the engine opened one pending proposal per high or critical incident. Set that
    state up on a database rolled back to 0009 (real runs and incidents through the engines, the
    proposals inserted as that engine wrote them), migrate, and check the merge."""
    dsn = migrated_dsn
    # Every migration after 0009, however many later ones there are.
    after_0009 = [p for p in (REPO_ROOT / "sql" / "migrations").glob("*.sql")
                  if not p.name.endswith(".rollback.sql") and p.name > "0009_~"]
    undone = invoke("rollback", "--count", str(len(after_0009)), "--dsn", dsn)
    assert undone.returncode == 0, str(undone)
    assert scalar(dsn, "SELECT to_regclass('policies.proposal_incidents')") is None

    t0 = db_now(dsn) - timedelta(hours=1)
    # (tenant, run_id, code, proposal created_at offset in s, proposal status): the oldest pending
    # proposal of a group is not the first one inserted; an approved proposal of the same rule and
    # another tenant's pending proposal are not part of the group.
    plan = [
        ("m1", "t-1", "EXECUTION_TIMEOUT", 30, "pending"),
        ("m1", "t-2", "EXECUTION_TIMEOUT", 10, "pending"),   # the oldest: kept
        ("m1", "t-3", "EXECUTION_TIMEOUT", 20, "pending"),
        ("m1", "t-4", "EXECUTION_TIMEOUT", 40, "pending"),
        ("m1", "t-0", "EXECUTION_TIMEOUT", 5, "approved"),   # reviewed before: untouched
        ("m1", "c-1", "AGENT_CRASH", 50, "pending"),         # kept
        ("m1", "c-2", "AGENT_CRASH", 60, "pending"),
        ("m2", "t-1", "EXECUTION_TIMEOUT", 70, "pending"),   # alone in its tenant: untouched
    ]
    with psycopg.connect(dsn) as conn, conn.transaction():
        for tenant in ("m1", "m2"):
            conn.execute("SELECT aos.register_tenant(%s)", (tenant,))
        # The current PolicyProposalEngine needs 0010's table: the proposals are written below instead.
        conn.execute("ALTER TABLE incidents.incidents DISABLE TRIGGER _100_proposal_engine")
        for tenant, run_id, code, _offset, _status in plan:
            conn.execute("INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)"
                         " VALUES (%s, %s, 'agent-a', 'failed', %s)", (tenant, run_id, code))
        for tenant, run_id, code, offset, status in plan:
            enforcement = "block" if code == "AGENT_CRASH" else "warn"
            conn.execute("""
                INSERT INTO policies.policy_proposals (
                    tenant_id, triggering_incident_id, triggering_run_id, proposal_name, proposal_type, rationale,
                    proposed_rule, status, created_at, reviewed_at, reviewed_by)
                SELECT i.tenant_id, i.id, i.source_run_id, fc.proposal_type || ': ' || i.error_code, fc.proposal_type,
                       'one proposal per incident',
                       jsonb_build_object('rule_type', 'error_code',
                                          'conditions', jsonb_build_object('error_codes', jsonb_build_array(i.error_code)),
                                          'enforcement', %s::text),
                       %s, %s, CASE WHEN %s <> 'pending' THEN %s END, CASE WHEN %s <> 'pending' THEN 'alice' END
                FROM incidents.incidents AS i
                INNER JOIN incidents.failure_classes AS fc ON fc.error_code = i.error_code
                WHERE i.tenant_id = %s AND i.source_run_id = %s""",
                (enforcement, status, t0 + timedelta(seconds=offset), status, t0 + timedelta(seconds=offset + 1),
                 status, tenant, run_id))
        conn.execute("ALTER TABLE incidents.incidents ENABLE TRIGGER _100_proposal_engine")
    assert scalar(dsn, "SELECT count(*) FROM policies.policy_proposals WHERE status = 'pending'") == 7

    migrated = invoke("migrate", "--dsn", dsn)
    assert migrated.returncode == 0, str(migrated)

    by_run = {(r[0], r[1]): r[2:] for r in query(dsn, """
        SELECT tenant_id, triggering_run_id, id, status, incident_count, reviewed_by, review_notes, last_seen_at
        FROM policies.policy_proposals""")}
    keeper, crash_keeper = by_run[("m1", "t-2")][0], by_run[("m1", "c-1")][0]
    incidents_at = dict(query(dsn, "SELECT tenant_id || '/' || source_run_id, created_at FROM incidents.incidents"))

    def merged(into) -> tuple:
        return ("rejected", 1, "aosdb migration 0010", f"merged into proposal {into}: one pending proposal per rule")

    assert by_run[("m1", "t-2")][1:5] == ("pending", 4, None, None)
    assert by_run[("m1", "c-1")][1:5] == ("pending", 2, None, None)
    for run_id in ("t-1", "t-3", "t-4"):
        assert by_run[("m1", run_id)][1:5] == merged(keeper), run_id
    assert by_run[("m1", "c-2")][1:5] == merged(crash_keeper)
    assert by_run[("m1", "t-0")][1:4] == ("approved", 1, "alice")
    assert by_run[("m2", "t-1")][1:4] == ("pending", 1, None)
    # The kept proposal was last seen with the latest incident it now counts.
    assert by_run[("m1", "t-2")][5] == max(incidents_at[f"m1/{r}"] for r in ("t-1", "t-2", "t-3", "t-4"))

    # Every incident is linked exactly once: the group's to its kept proposal, the others to their own.
    links = query(dsn, """
        SELECT i.tenant_id, i.source_run_id, l.proposal_id, count(*) OVER (PARTITION BY i.tenant_id, i.id)
        FROM incidents.incidents AS i
        LEFT JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id""")
    assert len(links) == len(plan) and {r[3] for r in links} == {1}
    assert {(r[0], r[1]): r[2] for r in links} == {
        **{("m1", r): keeper for r in ("t-1", "t-2", "t-3", "t-4")},
        ("m1", "t-0"): by_run[("m1", "t-0")][0],
        **{("m1", r): crash_keeper for r in ("c-1", "c-2")},
        ("m2", "t-1"): by_run[("m2", "t-1")][0],
    }
    assert query(dsn, """
        SELECT p.id FROM policies.policy_proposals AS p
        LEFT JOIN policies.proposal_incidents AS l ON l.tenant_id = p.tenant_id AND l.proposal_id = p.id
        WHERE p.status <> 'rejected' GROUP BY p.tenant_id, p.id HAVING count(l.incident_id) <> p.incident_count""") == []

    # The engine carries on from the merged state: the next failure of the group joins the kept proposal.
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)"
                     " VALUES ('m1', 't-5', 'agent-a', 'failed', 'EXECUTION_TIMEOUT')")
    assert query(dsn, "SELECT id, incident_count FROM policies.policy_proposals"
                      " WHERE tenant_id = 'm1' AND status = 'pending' ORDER BY created_at") == [
        (keeper, 5), (crash_keeper, 2)]
