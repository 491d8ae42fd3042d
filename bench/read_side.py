"""Read-side benchmark (SPEC section 11, third bar): the evidence facades answer in
under 1 ms (p95) at 1M runs, 50k incidents, 5M steps.

    .venv/bin/python bench/read_side.py [--dsn DSN] [--runs N] [--tenants N] [--incidents N]
                                        [--calls N] [--plans] [--keep | --reuse DB]

Loads a synthetic data set into a throwaway database (default 1,000,000 runs over
200 tenants, one trace and 5 steps a run, 50,000 failed runs each with its
incident, a proposal for every high or critical one, evidence, timeline and
outbox events), consistent by construction and checked afterwards, then
VACUUM ANALYZE and `aosdb refresh`. The load writes as the owner with the
engines switched off (it states their effects directly); they are back on
before anything is measured.

Then, as aos_api with a tenant set, it calls each detail and evidence facade for
random ids of that tenant, and the first page of each list (unfiltered and with
one filter), --calls times each, and prints per facade:
  client  round trip from Python (prepared statement, the jsonb fetched as text,
          so Python's JSON parsing is not counted), p50/p95/p99 in ms, and its p95
          over the p95 of a `SELECT 1` round trip measured in the same run (the
          client and network overhead every call pays);
  server  the database's own time for the same calls: clock_timestamp() around
          each call inside one PL/pgSQL loop, p50/p95/p99 in ms.
The 1 ms bar is judged on the server column. --plans prints EXPLAIN (ANALYZE,
BUFFERS) of the queries the detail and evidence facades run and of each list's
first page, written out with literal parameters and run as aos_api (so row-level
security applies), then a summary of their scans.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))

import psycopg  # noqa: E402
from psycopg.conninfo import conninfo_to_dict  # noqa: E402

from aosdb import migrations  # noqa: E402
from aosdb.config import resolve_dsn, with_dbname  # noqa: E402
from aosdb.db import throwaway_database  # noqa: E402
from aosdb.refresh import refresh  # noqa: E402

BAR_MS = 1.0
STEPS_PER_RUN = 5
# Failure codes cycled over the failed runs: 4 of 10 are high or critical (a proposal each).
CODES = ("EXECUTION_TIMEOUT", "AGENT_CRASH", "STEP_FAILURE", "SKILL_ERROR", "BUDGET_EXCEEDED",
         "RATE_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTION", "RETRY_EXHAUSTED", "CANCELLED", "MANUAL_STOP")
# Tables the load writes; their user triggers (the engines, the outbox publisher) are off meanwhile.
LOADED = ("activity.runs", "activity.aos_traces", "activity.aos_trace_steps", "incidents.incidents",
          "incidents.incident_events", "incidents.incident_evidence", "policies.policy_proposals",
          "policies.policy_rules", "policies.prevention_records", "aos.events")


# ---- the data set ------------------------------------------------------------------------------


def _load_statements(runs: int, tenants: int, incidents: int) -> list[tuple[str, str]]:
    """(label, SQL) in load order. Run g (1..runs) is the n-th run of tenant rtNNNN (t = (g-1) % tenants,
    n = (g-1) / tenants); runs are spread over the last 30 days in g order; every k-th run of each
    tenant fails (offset by tenant), so every tenant has its share of the incidents. h is a
    multiplicative hash of g that picks lifecycle states and reviews independently of the code."""
    k = max(1, runs // incidents)
    codes = "ARRAY[" + ", ".join(f"'{c}'" for c in CODES) + "]"
    # Of a run id ('run-' || g): g, its hash, and its failure ordinal (which cycles the codes).
    g_of = "substr({}.run_id, 5)::bigint"
    h_of = "((" + g_of + " * 2654435761) % 4294967296)"
    return [
        ("tenants", f"""
INSERT INTO aos.tenants (tenant_id, name)
SELECT 'rt' || lpad(t::text, 4, '0'), 'bench tenant ' || t FROM generate_series(1, {tenants}) AS t"""),
        ("runs", f"""
INSERT INTO activity.runs (tenant_id, run_id, agent_id, goal, status, error_code, error_message, input_tokens,
    output_tokens, estimated_cost_usd, created_at, started_at, completed_at, duration_ms, policy_violation)
SELECT 'rt' || lpad((x.t + 1)::text, 4, '0'), 'run-' || g, 'agent-' || g % 25, 'bench goal ' || g % 1000, y.status,
    CASE WHEN x.failed THEN ({codes})[(x.n / {k} + x.t) % 10 + 1] END,
    CASE WHEN x.failed THEN 'bench failure of run-' || g END,
    200 + g % 3000, 50 + g % 800, ((250 + g % 3800) * 0.000002)::numeric(12, 6),
    x.created_at, x.created_at,
    CASE WHEN y.status <> 'running' THEN x.created_at + (500 + (g * 7919) % 60000) * INTERVAL '1 ms' END,
    CASE WHEN y.status <> 'running' THEN 500 + (g * 7919) % 60000 END,
    NOT x.failed AND (x.h / 1009) % 100 = 7
FROM generate_series(1::bigint, {runs}) AS g
CROSS JOIN LATERAL (SELECT
    (g - 1) % {tenants} AS t, (g - 1) / {tenants} AS n, (g * 2654435761) % 4294967296 AS h,
    ((g - 1) / {tenants}) % {k} = ((g - 1) % {tenants}) % {k} AS failed,
    now() - INTERVAL '30 days' + g * (INTERVAL '30 days' / {runs}) AS created_at) AS x
CROSS JOIN LATERAL (SELECT CASE WHEN x.failed THEN 'failed'
                                WHEN (x.h / 1009) % 100 <> 7 AND (x.h / 1013) % 100 = 1 THEN 'running'
                                ELSE 'succeeded' END AS status) AS y"""),
        ("traces", """
INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id, status, started_at, completed_at)
SELECT r.tenant_id, 'tr-' || substr(r.run_id, 5), r.run_id,
    CASE r.status WHEN 'failed' THEN 'failed' WHEN 'running' THEN 'running' ELSE 'completed' END,
    r.started_at, r.completed_at
FROM activity.runs AS r"""),
        ("steps", f"""
INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, outcome_code, cost_usd,
    duration_ms, retry_count, occurred_at)
SELECT r.tenant_id, 'tr-' || substr(r.run_id, 5), s,
    (ARRAY['search', 'browse', 'summarize', 'code', 'email'])[(substr(r.run_id, 5)::bigint + s) % 5 + 1],
    CASE WHEN r.status = 'failed' AND s = {STEPS_PER_RUN - 1} THEN 'failure'
         WHEN (substr(r.run_id, 5)::bigint + s) % 13 = 0 THEN 'retry' ELSE 'success' END,
    CASE WHEN r.status = 'failed' AND s = {STEPS_PER_RUN - 1} THEN r.error_code END,
    0.0001 * (s + 1), 100 + s * 37, ((substr(r.run_id, 5)::bigint + s) % 13 = 0)::int,
    r.started_at + s * INTERVAL '1 s'
FROM activity.runs AS r CROSS JOIN generate_series(0, {STEPS_PER_RUN - 1}) AS s"""),
        # What the IncidentEngine would have made of each failed run; a mix of lifecycle states.
        ("incidents", f"""
INSERT INTO incidents.incidents (tenant_id, source_run_id, llm_run_id, title, severity, lifecycle_state, category,
    error_code, error_message, cause_type, created_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by,
    resolution_method, resolution_notes)
SELECT r.tenant_id, r.run_id, r.id, fc.category || ': ' || r.error_code || ' in ' || r.run_id, fc.severity,
    st.state, fc.category, r.error_code, r.error_message, 'llm_run', r.completed_at,
    CASE WHEN st.state <> 'active' THEN r.completed_at + INTERVAL '1 min' END,
    CASE WHEN st.state <> 'active' THEN 'oncall' END,
    CASE WHEN st.state = 'resolved' THEN r.completed_at + INTERVAL '5 min' END,
    CASE WHEN st.state = 'resolved' THEN 'oncall' END,
    CASE WHEN st.state = 'resolved' THEN 'manual' END,
    CASE WHEN st.state = 'resolved' THEN 'restarted the agent' END
FROM activity.runs AS r
JOIN incidents.failure_classes AS fc ON fc.error_code = r.error_code
CROSS JOIN LATERAL (SELECT CASE WHEN {h_of.format("r")} / 7 % 10 < 6 THEN 'active'
                                WHEN {h_of.format("r")} / 7 % 10 < 8 THEN 'acked' ELSE 'resolved' END AS state) AS st
WHERE r.status = 'failed'"""),
        ("incident_events", """
INSERT INTO incidents.incident_events (tenant_id, incident_id, event_type, actor, details, created_at)
SELECT i.tenant_id, i.id, e.event_type, e.actor, jsonb_build_object('source_run_id', i.source_run_id), e.at
FROM incidents.incidents AS i
CROSS JOIN LATERAL (VALUES
    ('detected', 'incident_engine', i.created_at),
    ('evidence_added', 'collector', i.created_at + INTERVAL '1 s'),
    ('evidence_added', 'collector', i.created_at + INTERVAL '2 s'),
    ('acknowledged', i.acknowledged_by, i.acknowledged_at),
    ('resolved', i.resolved_by, i.resolved_at)) AS e (event_type, actor, at)
WHERE e.at IS NOT NULL"""),
        ("incident_evidence", """
INSERT INTO incidents.incident_evidence (tenant_id, incident_id, evidence_type, run_id, recovery_executed, payload,
    created_at)
SELECT i.tenant_id, i.id, e.evidence_type, i.source_run_id, e.recovery, e.payload, e.at
FROM incidents.incidents AS i
CROSS JOIN LATERAL (VALUES
    ('log', FALSE, jsonb_build_object('line', i.error_message), i.created_at + INTERVAL '1 s'),
    ('trace', i.lifecycle_state = 'resolved', jsonb_build_object('trace_id', 'tr-' || substr(i.source_run_id, 5)),
     i.created_at + INTERVAL '2 s')) AS e (evidence_type, recovery, payload, at)"""),
        # What the PolicyProposalEngine would have made of each high or critical incident; some reviewed.
        ("policy_proposals", f"""
INSERT INTO policies.policy_proposals (tenant_id, triggering_incident_id, triggering_run_id, proposal_name,
    proposal_type, rationale, proposed_rule, status, created_at, reviewed_at, reviewed_by, review_notes)
SELECT i.tenant_id, i.id, i.source_run_id, fc.proposal_type || ' for ' || i.error_code, fc.proposal_type,
    'Incident ' || i.id || ' (' || i.severity || ')',
    jsonb_build_object('rule_type', 'error_code', 'conditions', jsonb_build_object('error_codes',
        jsonb_build_array(i.error_code)), 'enforcement', CASE i.severity WHEN 'critical' THEN 'block' ELSE 'warn' END),
    st.status, i.created_at,
    CASE WHEN st.status <> 'pending' THEN i.created_at + INTERVAL '1 h' END,
    CASE WHEN st.status <> 'pending' THEN 'reviewer' END,
    CASE WHEN st.status <> 'pending' THEN 'bench review' END
FROM incidents.incidents AS i
JOIN incidents.failure_classes AS fc ON fc.error_code = i.error_code
CROSS JOIN LATERAL (SELECT i.source_run_id AS run_id) AS x
CROSS JOIN LATERAL (SELECT CASE WHEN {h_of.format("x")} / 131 % 10 = 1 THEN 'approved'
                                WHEN {h_of.format("x")} / 131 % 10 = 3 THEN 'rejected'
                                ELSE 'pending' END AS status) AS st
WHERE i.severity IN ('high', 'critical')"""),
        ("policy_rules", """
INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement, source, source_proposal_id,
    created_at)
SELECT p.tenant_id, 'rule from ' || p.proposal_name || ' ' || p.id, 'error_code', p.proposed_rule -> 'conditions',
    p.proposed_rule ->> 'enforcement', 'proposal', p.id, p.reviewed_at
FROM policies.policy_proposals AS p
WHERE p.status = 'approved'"""),
        ("prevention_records", """
INSERT INTO policies.prevention_records (tenant_id, run_id, guardrail_id, outcome, details, created_at)
SELECT r.tenant_id, r.run_id, 'dg-002', 'blocked',
    jsonb_build_object('total_tokens', r.input_tokens + r.output_tokens), r.completed_at
FROM activity.runs AS r
WHERE r.policy_violation"""),
        ("events", """
INSERT INTO aos.events (created_at, event, tenant_id, subject_id, payload)
SELECT e.created_at, e.event, e.tenant_id, e.subject_id, e.payload FROM (
    SELECT r.completed_at AS created_at, 'run_failed' AS event, r.tenant_id, r.run_id AS subject_id,
        jsonb_build_object('run_id', r.run_id, 'error_code', r.error_code) AS payload
    FROM activity.runs AS r WHERE r.status = 'failed'
    UNION ALL
    SELECT i.created_at, 'incident_created', i.tenant_id, i.id::text,
        jsonb_build_object('incident_id', i.id, 'run_id', i.source_run_id, 'severity', i.severity)
    FROM incidents.incidents AS i
    UNION ALL
    SELECT p.created_at, 'proposal_created', p.tenant_id, p.id::text,
        jsonb_build_object('proposal_id', p.id, 'incident_id', p.triggering_incident_id)
    FROM policies.policy_proposals AS p
    UNION ALL
    SELECT pr.created_at, 'prevention_recorded', pr.tenant_id, pr.id::text,
        jsonb_build_object('run_id', pr.run_id, 'guardrail_id', pr.guardrail_id)
    FROM policies.prevention_records AS pr
) AS e
ORDER BY e.created_at"""),
    ]


# Every count must be 0: links resolve within the tenant, and the effects are exactly those the
# engines would have produced.
CONSISTENCY = {
    "trace without its run": """SELECT count(*) FROM activity.aos_traces AS t WHERE NOT EXISTS (
        SELECT FROM activity.runs AS r WHERE r.tenant_id = t.tenant_id AND r.run_id = t.run_id)""",
    "step without its trace": """SELECT count(*) FROM activity.aos_trace_steps AS s WHERE NOT EXISTS (
        SELECT FROM activity.aos_traces AS t WHERE t.tenant_id = s.tenant_id AND t.trace_id = s.trace_id)""",
    "incident without its run (both keys)": """SELECT count(*) FROM incidents.incidents AS i WHERE NOT EXISTS (
        SELECT FROM activity.runs AS r
        WHERE r.tenant_id = i.tenant_id AND r.run_id = i.source_run_id AND r.id = i.llm_run_id AND r.status = 'failed')""",
    "failed run without one incident": """SELECT count(*) FROM activity.runs AS r WHERE r.status = 'failed'
        AND (SELECT count(*) FROM incidents.incidents AS i
             WHERE i.tenant_id = r.tenant_id AND i.source_run_id = r.run_id) <> 1""",
    "timeline/evidence row without its incident": """SELECT
        (SELECT count(*) FROM incidents.incident_events AS e WHERE NOT EXISTS (
            SELECT FROM incidents.incidents AS i WHERE i.tenant_id = e.tenant_id AND i.id = e.incident_id))
      + (SELECT count(*) FROM incidents.incident_evidence AS e WHERE NOT EXISTS (
            SELECT FROM incidents.incidents AS i WHERE i.tenant_id = e.tenant_id AND i.id = e.incident_id))""",
    "high/critical incident without one proposal (or a proposal for another)": """SELECT
        (SELECT count(*) FROM incidents.incidents AS i
         WHERE (i.severity IN ('high', 'critical')) <> EXISTS (
             SELECT FROM policies.policy_proposals AS p
             WHERE p.tenant_id = i.tenant_id AND p.triggering_incident_id = i.id
               AND p.triggering_run_id = i.source_run_id))
      + (SELECT count(*) FROM policies.policy_proposals AS p WHERE NOT EXISTS (
            SELECT FROM incidents.incidents AS i WHERE i.tenant_id = p.tenant_id AND i.id = p.triggering_incident_id))""",
    "approved proposal without one rule (or a rule without it)": """SELECT
        (SELECT count(*) FROM policies.policy_proposals AS p WHERE p.status = 'approved' AND NOT EXISTS (
            SELECT FROM policies.policy_rules AS r WHERE r.tenant_id = p.tenant_id AND r.source_proposal_id = p.id))
      + (SELECT count(*) FROM policies.policy_rules AS r WHERE NOT EXISTS (
            SELECT FROM policies.policy_proposals AS p
            WHERE p.tenant_id = r.tenant_id AND p.id = r.source_proposal_id AND p.status = 'approved'))""",
    "prevention record without a violating run": """SELECT count(*) FROM policies.prevention_records AS pr
        WHERE NOT EXISTS (SELECT FROM activity.runs AS r
                          WHERE r.tenant_id = pr.tenant_id AND r.run_id = pr.run_id AND r.policy_violation)""",
}


def load(dsn: str, runs: int, tenants: int, incidents: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SET work_mem = '256MB'")
        # The engines would turn the failed runs into incidents and proposals one statement at a
        # time; the load states those effects itself, so they are switched off while it runs. A
        # superuser also skips the foreign-key triggers (replica mode); the checks below prove the
        # links instead.
        if superuser:
            conn.execute("SET session_replication_role = replica")
        else:
            for table in LOADED:
                conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        try:
            for label, statement in _load_statements(runs, tenants, incidents):
                started = time.perf_counter()
                count = conn.execute(statement).rowcount
                print(f"  loaded {label:<20} {count:>10} rows in {time.perf_counter() - started:6.1f} s", flush=True)
        finally:
            if superuser:
                conn.execute("RESET session_replication_role")
            else:
                for table in LOADED:
                    conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        started = time.perf_counter()
        bad = {name: conn.execute(q).fetchone()[0] for name, q in CONSISTENCY.items()}
        broken = {name: n for name, n in bad.items() if n}
        if broken:
            raise SystemExit(f"inconsistent data set: {broken}")
        print(f"  consistency: {len(bad)} checks, 0 violations ({time.perf_counter() - started:.1f} s)", flush=True)
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        print(f"  VACUUM ANALYZE in {time.perf_counter() - started:.1f} s", flush=True)
    for view, ms, rows in refresh(dsn):
        print(f"  refreshed {view:<26} {rows:>9} rows in {ms / 1000:6.1f} s (CONCURRENTLY)", flush=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # The views' visibility maps and statistics, as a nightly VACUUM would leave them.
        conn.execute("VACUUM ANALYZE activity.v_runs_o2, incidents.v_incidents_o2")


def sizes(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("""SELECT
            (SELECT count(*) FROM activity.runs), (SELECT count(*) FROM activity.aos_trace_steps),
            (SELECT count(*) FROM incidents.incidents), (SELECT count(*) FROM policies.policy_proposals),
            (SELECT count(DISTINCT tenant_id) FROM activity.runs), pg_size_pretty(pg_database_size(current_database())),
            current_setting('shared_buffers'), current_setting('server_version')""").fetchone()
    return (f"{row[0]:,} runs, {row[1]:,} steps, {row[2]:,} incidents, {row[3]:,} proposals, {row[4]} tenants; "
            f"database {row[5]}, shared_buffers {row[6]}, PostgreSQL {row[7]}")


# ---- what is measured ------------------------------------------------------------------------------

# (label, the call, the kind of id it takes or None). %s is the id in the client's call and
# v_arg in the server-side loop. Those that take an id are the detail and evidence facades the
# bar is about; the lists' first pages are measured against the same 1 ms for reference.
FACADES = (
    ("api.activity_run", "api.activity_run(%s)", "run"),
    ("api.activity_run_evidence", "api.activity_run_evidence(%s)", "run"),
    ("api.activity_run_evidence (failed run)", "api.activity_run_evidence(%s)", "failed_run"),
    ("api.incident", "api.incident(%s::uuid)", "incident"),
    ("api.incident_evidence", "api.incident_evidence(%s::uuid)", "incident"),
    ("api.policy_proposal", "api.policy_proposal(%s::uuid)", "proposal"),
    ("api.activity_runs page 1", "api.activity_runs('{}', 50, 0)", None),
    ("api.activity_runs status=failed", """api.activity_runs('{"status": "failed"}', 50, 0)""", None),
    ("api.incidents page 1", "api.incidents('{}', 50, 0)", None),
    ("api.incidents severity=high", """api.incidents('{"severity": "high"}', 50, 0)""", None),
    ("api.policy_proposals page 1", "api.policy_proposals('{}', 50, 0)", None),
    ("api.policy_proposals status=pending", """api.policy_proposals('{"status": "pending"}', 50, 0)""", None),
)
WARMUP = 100


def pick_tenants(dsn: str, count: int, rng: random.Random) -> dict[str, dict[str, list[str]]]:
    """For `count` random tenants: their run ids, failed run ids, incident ids and proposal ids."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        tenants = [t for (t,) in conn.execute("SELECT tenant_id FROM aos.tenants ORDER BY tenant_id")]
        ids = {}
        for tenant in rng.sample(tenants, min(count, len(tenants))):
            ids[tenant] = {
                "run": [r for (r,) in conn.execute("SELECT run_id FROM activity.runs WHERE tenant_id = %s", (tenant,))],
                "failed_run": [r for (r,) in conn.execute(
                    "SELECT run_id FROM activity.runs WHERE tenant_id = %s AND status = 'failed'", (tenant,))],
                "incident": [str(i) for (i,) in conn.execute(
                    "SELECT id FROM incidents.incidents WHERE tenant_id = %s", (tenant,))],
                "proposal": [str(i) for (i,) in conn.execute(
                    "SELECT id FROM policies.policy_proposals WHERE tenant_id = %s", (tenant,))],
            }
    return ids


def as_api(dsn: str) -> psycopg.Connection:
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("SET ROLE aos_api")
    return conn


def set_tenant(conn: psycopg.Connection, tenant: str) -> None:
    conn.execute("SELECT set_config('aos.tenant_id', %s, false)", (tenant,))


def client_times(conn: psycopg.Connection, call: str | None, kind: str | None,
                 ids: dict[str, dict[str, list[str]]], calls: int, rng: random.Random) -> list[float]:
    """Milliseconds per round trip of `SELECT <call>::text` (call None: SELECT 1), calls spread over the tenants."""
    statement = f"SELECT {call}::text" if call else "SELECT 1"
    samples: list[float] = []
    per_tenant = math.ceil(calls / len(ids))
    for tenant, pools in ids.items():
        set_tenant(conn, tenant)
        args = [(rng.choice(pools[kind]),) if kind else None for _ in range(per_tenant + WARMUP)]
        for i, arg in enumerate(args):
            started = time.perf_counter()
            conn.execute(statement, arg, prepare=True).fetchone()
            if i >= WARMUP:
                samples.append((time.perf_counter() - started) * 1000)
    return samples


def server_times(conn: psycopg.Connection, call: str | None, kind: str | None,
                 ids: dict[str, dict[str, list[str]]], calls: int, rng: random.Random) -> list[float]:
    """Milliseconds per call as the server sees it: one PL/pgSQL loop timing each call with clock_timestamp()."""
    body = (call or "1").replace("%s", "v_arg")
    conn.execute(f"""
CREATE OR REPLACE FUNCTION pg_temp.bench_loop(p_args text[]) RETURNS float8[]
LANGUAGE plpgsql AS $fn$
DECLARE
    v_arg text;
    v_started timestamptz;
    v_result text;
    v_ms float8[] := '{{}}';
BEGIN
    FOREACH v_arg IN ARRAY p_args LOOP
        v_started := clock_timestamp();
        v_result := ({body})::text;
        v_ms := v_ms || (extract(EPOCH FROM clock_timestamp() - v_started) * 1000)::float8;
    END LOOP;
    RETURN v_ms;
END
$fn$""")
    samples: list[float] = []
    per_tenant = math.ceil(calls / len(ids))
    for tenant, pools in ids.items():
        set_tenant(conn, tenant)
        args = [rng.choice(pools[kind]) if kind else "" for _ in range(per_tenant + WARMUP)]
        samples += conn.execute("SELECT pg_temp.bench_loop(%s)", (args,)).fetchone()[0][WARMUP:]
    return samples


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def stats(samples: list[float]) -> tuple[float, float, float]:
    return pct(samples, 0.50), pct(samples, 0.95), pct(samples, 0.99)


# ---- plans ---------------------------------------------------------------------------------------


def _facade_queries(tenant: str, run: str, failed_run: str, incident: str, proposal: str) -> list[tuple[str, str]]:
    """The statements inside the detail and evidence facades and the lists' first pages, as
    (where, SQL) with literal parameters (sql/functions/api_*.sql)."""
    t = f"'{tenant}'"
    q = {
        "run": f"'{run}'", "failed": f"'{failed_run}'", "inc": f"'{incident}'::uuid", "prop": f"'{proposal}'::uuid"}
    traces = ("SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY t.started_at, t.trace_id), '[]') "
              "FROM activity.aos_traces AS t WHERE t.tenant_id = {t} AND t.run_id = {r}")
    return [
        ("api._run (activity_run, activity_run_evidence)",
         f"SELECT to_jsonb(r) FROM activity.runs AS r WHERE r.tenant_id = {t} AND r.run_id = {q['run']}"),
        ("api._run_traces", traces.format(t=t, r=q["run"])),
        ("api.activity_run: analytics",
         f"SELECT to_jsonb(v) - 'tenant_id' - 'run_id' FROM activity.v_runs_o2_api AS v "
         f"WHERE v.tenant_id = {t} AND v.run_id = {q['run']}"),
        ("api.activity_run_evidence: incidents_caused",
         f"SELECT coalesce(jsonb_agg(to_jsonb(i) ORDER BY i.created_at, i.id), '[]') FROM incidents.incidents AS i "
         f"WHERE i.tenant_id = {t} AND i.source_run_id = {q['failed']}"),
        ("api.activity_run_evidence: proposals_triggered",
         f"SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.created_at, p.id), '[]') "
         f"FROM policies.policy_proposals AS p WHERE p.tenant_id = {t} AND p.triggering_run_id = {q['failed']}"),
        ("api.activity_run_evidence: prevention_records",
         f"SELECT coalesce(jsonb_agg(to_jsonb(pr) ORDER BY pr.created_at, pr.id), '[]') "
         f"FROM policies.prevention_records AS pr WHERE pr.tenant_id = {t} AND pr.run_id = {q['failed']}"),
        ("api._incident (incident, incident_evidence)",
         f"SELECT to_jsonb(i) FROM incidents.incidents AS i WHERE i.tenant_id = {t} AND i.id = {q['inc']}"),
        ("api.incident: event_count",
         f"SELECT count(*) FROM incidents.incident_events AS e WHERE e.tenant_id = {t} AND e.incident_id = {q['inc']}"),
        ("api.incident: evidence_count",
         f"SELECT count(*) FROM incidents.incident_evidence AS e "
         f"WHERE e.tenant_id = {t} AND e.incident_id = {q['inc']}"),
        ("api.incident: recurrence_count",
         f"SELECT v.recurrence_count FROM incidents.v_incidents_o2_api AS v "
         f"WHERE v.tenant_id = {t} AND v.incident_id = {q['inc']}"),
        ("api.incident_evidence: source_run",
         f"SELECT to_jsonb(r) FROM activity.runs AS r WHERE r.tenant_id = {t} AND r.run_id = "
         f"(SELECT i.source_run_id FROM incidents.incidents AS i WHERE i.tenant_id = {t} AND i.id = {q['inc']})"),
        ("api.incident_evidence: evidence",
         f"SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.created_at, e.id), '[]') "
         f"FROM incidents.incident_evidence AS e WHERE e.tenant_id = {t} AND e.incident_id = {q['inc']}"),
        ("api.incident_evidence: timeline",
         f"SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.created_at, e.id), '[]') "
         f"FROM incidents.incident_events AS e WHERE e.tenant_id = {t} AND e.incident_id = {q['inc']}"),
        ("api.incident_evidence: proposals_triggered",
         f"SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.created_at, p.id), '[]') "
         f"FROM policies.policy_proposals AS p WHERE p.tenant_id = {t} AND p.triggering_incident_id = {q['inc']}"),
        ("api.policy_proposal: proposal",
         f"SELECT * FROM policies.policy_proposals AS p WHERE p.tenant_id = {t} AND p.id = {q['prop']}"),
        ("api.policy_proposal: rule",
         f"SELECT to_jsonb(r) FROM policies.policy_rules AS r "
         f"WHERE r.tenant_id = {t} AND r.source_proposal_id = {q['prop']}"),
        ("api.policy_proposal: triggering_incident",
         f"SELECT to_jsonb(i) FROM incidents.incidents AS i WHERE i.tenant_id = {t} AND i.id = "
         f"(SELECT p.triggering_incident_id FROM policies.policy_proposals AS p "
         f"WHERE p.tenant_id = {t} AND p.id = {q['prop']})"),
        ("api.policy_proposal: triggering_run",
         f"SELECT to_jsonb(r) FROM activity.runs AS r WHERE r.tenant_id = {t} AND r.run_id = "
         f"(SELECT p.triggering_run_id FROM policies.policy_proposals AS p "
         f"WHERE p.tenant_id = {t} AND p.id = {q['prop']})"),
        # Lists: the filters a caller did not give are NULL, which the custom plan folds away.
        ("api.activity_runs page 1: items",
         f"SELECT jsonb_agg(to_jsonb(v) - 'tenant_id' ORDER BY v.created_at DESC, v.run_id DESC) FROM ("
         f"SELECT * FROM activity.v_runs_o2_api AS r WHERE r.tenant_id = {t} "
         f"ORDER BY r.created_at DESC, r.run_id DESC LIMIT 50 OFFSET 0) AS v"),
        ("api.activity_runs page 1: total",
         f"SELECT count(*) FROM activity.v_runs_o2_api AS r WHERE r.tenant_id = {t}"),
        ("api.activity_runs status=failed: items",
         f"SELECT jsonb_agg(to_jsonb(v) - 'tenant_id' ORDER BY v.created_at DESC, v.run_id DESC) FROM ("
         f"SELECT * FROM activity.v_runs_o2_api AS r WHERE r.tenant_id = {t} AND r.status = 'failed' "
         f"ORDER BY r.created_at DESC, r.run_id DESC LIMIT 50 OFFSET 0) AS v"),
        ("api.activity_runs status=failed: total",
         f"SELECT count(*) FROM activity.v_runs_o2_api AS r WHERE r.tenant_id = {t} AND r.status = 'failed'"),
        ("api.incidents page 1: items",
         f"SELECT jsonb_agg(to_jsonb(v) - 'tenant_id' ORDER BY v.first_seen_at DESC, v.incident_id DESC) FROM ("
         f"SELECT * FROM incidents.v_incidents_o2_api AS i WHERE i.tenant_id = {t} "
         f"ORDER BY i.first_seen_at DESC, i.incident_id DESC LIMIT 50 OFFSET 0) AS v"),
        ("api.incidents page 1: total",
         f"SELECT count(*) FROM incidents.v_incidents_o2_api AS i WHERE i.tenant_id = {t}"),
        ("api.policy_proposals page 1: items",
         f"SELECT jsonb_agg(to_jsonb(p) - 'tenant_id' || jsonb_build_object('rule_id', ("
         f"SELECT r.id FROM policies.policy_rules AS r WHERE r.tenant_id = p.tenant_id AND r.source_proposal_id = p.id))"
         f" ORDER BY p.created_at DESC, p.id DESC) FROM ("
         f"SELECT * FROM policies.policy_proposals AS x WHERE x.tenant_id = {t} "
         f"ORDER BY x.created_at DESC, x.id DESC LIMIT 50 OFFSET 0) AS p"),
        ("api.policy_proposals page 1: total",
         f"SELECT count(*) FROM policies.policy_proposals AS x WHERE x.tenant_id = {t}"),
        ("api.policy_proposals status=pending: items",
         f"SELECT jsonb_agg(to_jsonb(p) - 'tenant_id' ORDER BY p.created_at DESC, p.id DESC) FROM ("
         f"SELECT * FROM policies.policy_proposals AS x WHERE x.tenant_id = {t} AND x.status = 'pending' "
         f"ORDER BY x.created_at DESC, x.id DESC LIMIT 50 OFFSET 0) AS p"),
    ]


def _scans(node: dict, out: list[str]) -> None:
    kind = node["Node Type"]
    if "Scan" in kind and "Relation Name" in node:
        name = node["Relation Name"]
        index = f" using {node['Index Name']}" if "Index Name" in node else ""
        out.append(f"{kind}{index} on {name} (rows {node.get('Actual Rows', '?')}"
                   f"{', removed ' + str(node['Rows Removed by Filter']) if node.get('Rows Removed by Filter') else ''})")
    for child in node.get("Plans", []):
        _scans(child, out)


def plans(dsn: str, ids: dict[str, dict[str, list[str]]], rng: random.Random) -> None:
    tenant, pools = next(iter(ids.items()))
    run, failed, incident, proposal = (rng.choice(pools[k]) for k in ("run", "failed_run", "incident", "proposal"))
    with psycopg.connect(dsn, autocommit=True) as owner:
        big = {n for (n,) in owner.execute("SELECT relname FROM pg_class WHERE relkind IN ('r', 'm') "
                                            "AND reltuples > 10000")}
    summary = []
    with as_api(dsn) as conn:
        set_tenant(conn, tenant)
        queries = _facade_queries(tenant, run, failed, incident, proposal)
        calls = [(f"call {label} (cold)", "SELECT " + call.replace("%s", "'" + (
            {"run": run, "failed_run": failed, "incident": incident, "proposal": proposal}[kind] if kind else "") + "'"))
                 for label, call, kind in FACADES]
        print(f"\n== plans (tenant {tenant}, run {run}, failed run {failed}, incident {incident}, proposal {proposal})")
        for where, statement in queries:
            text = "\n".join(r[0] for r in conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}"))
            print(f"\n-- {where}\n{statement}\n{text}")
        for where, statement in queries + calls:
            plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}").fetchone()[0][0]
            scans: list[str] = []
            _scans(plan["Plan"], scans)
            seq = [s for s in scans if s.startswith("Seq Scan") and s.split(" on ")[1].split(" (")[0] in big]
            buffers = plan["Plan"].get("Shared Hit Blocks", 0) + plan["Plan"].get("Shared Read Blocks", 0)
            summary.append((where, plan["Execution Time"], buffers, scans, seq, "JIT" in plan))
    print("\n== plans summary: execution time of the statement alone, buffers, scans (SEQ SCAN flags one on a table "
          "over 10k rows);\n   'call ... (cold)' is the facade's first call in the session (PL/pgSQL compile and "
          "planning included)")
    for where, ms, buffers, scans, seq, jit in summary:
        flag = " SEQ SCAN" if seq else ""
        print(f"{where:<52} {ms:7.3f} ms {buffers:>6} buf{' JIT' if jit else ''}{flag}")
        for scan in scans:
            print(f"    {scan}")


# ---- main ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", help="Server to use (a throwaway database is created on it); default: the embedded one.")
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--incidents", type=int, default=50_000, help="Failed runs, each with one incident.")
    parser.add_argument("--calls", type=int, default=3000, help="Measured calls per facade (client and server each).")
    parser.add_argument("--sample-tenants", type=int, default=4, help="Tenants the calls are spread over.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--plans", action="store_true", help="Print EXPLAIN (ANALYZE, BUFFERS) of the facades' queries.")
    parser.add_argument("--keep", action="store_true", help="Keep the loaded database (its name is printed).")
    parser.add_argument("--reuse", metavar="DB", help="Measure a database an earlier --keep run loaded; no load.")
    args = parser.parse_args()
    if not (0 < args.incidents <= args.runs and 0 < args.tenants <= 9999 and args.calls > 0):
        parser.error("need 0 < --incidents <= --runs, 0 < --tenants <= 9999, --calls > 0")
    server = resolve_dsn(args.dsn)
    rng = random.Random(args.seed)

    if args.reuse:
        measure(with_dbname(server, args.reuse), args, rng)
        return 0
    with throwaway_database(server, "aosdb_bench_read", keep=args.keep) as dsn:
        started = time.perf_counter()
        print(f"loading {args.runs:,} runs over {args.tenants} tenants, {args.incidents:,} incidents ...", flush=True)
        migrations.migrate(dsn)
        load(dsn, args.runs, args.tenants, args.incidents)
        print(f"  ready in {time.perf_counter() - started:.0f} s", flush=True)
        measure(dsn, args, rng)
        if args.keep:
            print(f"\nkept database {conninfo_to_dict(dsn)['dbname']} (--reuse it)")
    return 0


def measure(dsn: str, args: argparse.Namespace, rng: random.Random) -> None:
    print(f"data set: {sizes(dsn)}", flush=True)
    ids = pick_tenants(dsn, args.sample_tenants, rng)
    print(f"calls: {args.calls} per facade over tenants {', '.join(ids)} (after {WARMUP} warm-up calls per tenant)")
    rows = []
    with as_api(dsn) as conn:
        baseline = client_times(conn, None, None, ids, args.calls // 2, rng)
        for label, call, kind in FACADES:
            client = client_times(conn, call, kind, ids, args.calls, rng)
            server = server_times(conn, call, kind, ids, args.calls, rng)
            rows.append((label, stats(client), stats(server)))
        baseline += client_times(conn, None, None, ids, args.calls // 2, rng)  # before and after: no drift favoured
        base_server = stats(server_times(conn, None, None, ids, args.calls, rng))
    base = stats(baseline)

    print(f"\n{'':<40} {'client round trip, ms':^26} {'':>9}  {'server, ms':^26}")
    print(f"{'facade':<40} {'p50':>8} {'p95':>8} {'p99':>8} {'p95/base':>9}  {'p50':>8} {'p95':>8} {'p99':>8}  "
          f"bar p95 < {BAR_MS:g} ms (server)")
    print(f"{'SELECT 1 (baseline)':<40} {base[0]:8.3f} {base[1]:8.3f} {base[2]:8.3f} {1:9.1f}  "
          f"{base_server[0]:8.3f} {base_server[1]:8.3f} {base_server[2]:8.3f}")
    for (label, client, server), (_, _, kind) in zip(rows, FACADES):
        verdict = "ok" if server[1] < BAR_MS else ("MISS" if kind else "over (list)")
        print(f"{label:<40} {client[0]:8.3f} {client[1]:8.3f} {client[2]:8.3f} {client[1] / base[1]:9.1f}  "
              f"{server[0]:8.3f} {server[1]:8.3f} {server[2]:8.3f}  {verdict}")
    barred = [(server[1], label) for (label, _, server), (_, _, kind) in zip(rows, FACADES) if kind]
    worst, worst_label = max(barred)
    print(f"\nbar (detail and evidence facades, server p95 < {BAR_MS:g} ms): "
          f"{'met' if worst < BAR_MS else 'MISSED'}; slowest {worst_label} at {worst:.3f} ms")
    if args.plans:
        plans(dsn, ids, rng)


if __name__ == "__main__":
    sys.exit(main())
