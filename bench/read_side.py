"""Read-side benchmark: the detail and evidence facades must answer in under 1 ms (p95, the
database's own time) at 1M runs, 50k incidents and 5M steps.

    .venv/bin/python bench/read_side.py [--dsn DSN] [--runs N] [--tenants N] [--incidents N]
                                        [--storm N] [--calls N] [--plans] [--keep | --reuse DB]

Loads a synthetic data set into a throwaway database (default 1,000,000 runs over
200 tenants, one trace and 5 steps a run, 50,000 failed runs each with its
incident, evidence, timeline, proposals and outbox events), consistent by
construction and checked afterwards, then VACUUM ANALYZE and `aosdb refresh`.
The load writes as the owner with the engines switched off (it states their
effects directly); they are back on before anything is measured.

The proposals are those the PolicyProposalEngine would have opened. A tenant has
at most one pending proposal per rule (an error_code rule listing the incident's
code: warn for high, block for critical) and every high or critical incident is
linked to exactly one proposal (policies.proposal_incidents). Per tenant and rule
the incidents fall, in created_at order, into review windows of 3 to 10 days
(fixed per tenant and rule); each window's incidents share one proposal, opened
by its first incident. A window that has ended was reviewed between its last
incident and the next window's first: approved (its rule then active, and
retired before the next such failure, which it would otherwise have prevented)
or rejected; the window that is still open is the pending proposal. A storm
makes one proposal far bigger than the 50 links a detail lists: the last
--storm runs of tenant rt0001 (default 1,000, at most half its runs) all fail
with AGENT_CRASH, besides the --incidents failed runs spread over every tenant.

Then, as aos_api with a tenant set, it calls each detail and evidence facade for
random ids of that tenant (the storm's tenant is always one of them), and the
first page of each list (unfiltered and with one filter), --calls times each,
and prints per facade:
  client  round trip from Python (prepared statement, the jsonb fetched as text,
          so Python's JSON parsing is not counted), p50/p95/p99 in ms, and its p95
          over the p95 of a `SELECT 1` round trip measured in the same run (the
          client and network overhead every call pays);
  server  the database's own time for the same calls: clock_timestamp() around
          each call inside one PL/pgSQL loop, p50/p95/p99 in ms.
The detail and evidence facades are measured for plain ids and for ids with
proposal links: runs and incidents linked to a proposal (proposals_linked, the
incident's shared proposal), pending proposals (their linked incidents) and the
storm's proposal (the newest 50 of its links, and the count of all).
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
# Failure codes cycled over the failed runs: 4 of 10 are high or critical (linked to a proposal).
CODES = ("EXECUTION_TIMEOUT", "AGENT_CRASH", "STEP_FAILURE", "SKILL_ERROR", "BUDGET_EXCEEDED",
         "RATE_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTION", "RETRY_EXHAUSTED", "CANCELLED", "MANUAL_STOP")
# The storm: the last --storm runs of the first tenant fail with this (critical) code.
STORM_TENANT = "rt0001"
STORM_CODE = "AGENT_CRASH"
# The most links api.policy_proposal lists; a proposal with more is the storm's.
LINKS_LISTED = 50
# Tables the load writes; their user triggers (the engines, the outbox wake-up) are off meanwhile.
LOADED = ("activity.runs", "activity.aos_traces", "activity.aos_trace_steps", "incidents.incidents",
          "incidents.incident_events", "incidents.incident_evidence", "policies.policy_proposals",
          "policies.proposal_incidents", "policies.policy_rules", "policies.prevention_records", "aos.events")


# ---- the data set ------------------------------------------------------------------------------

# The proposed rule of an incident (aliased i), as the PolicyProposalEngine writes it.
RULE_OF = """jsonb_build_object('rule_type', 'error_code',
        'conditions', jsonb_build_object('error_codes', jsonb_build_array({0}.error_code)),
        'enforcement', CASE {0}.severity WHEN 'critical' THEN 'block' ELSE 'warn' END)"""

# The high and critical incidents (hc) and their review windows (grp), one row per future proposal.
# Per tenant and rule (code and severity) the windows are `days` long (3 to 10, fixed by a hash of
# tenant and code), counted back from the newest incident: window 0 is still open (its proposal
# pending), window b ended at anchor - b * days. A window's first incident (created_at, then run id
# and id as the engine orders a statement's incidents) opened its proposal.
WINDOWS = """
hc AS (
    SELECT i.tenant_id, i.id, i.source_run_id, i.severity, i.error_code, i.created_at,
        floor(extract(EPOCH FROM a.at - i.created_at) / (w.days * 86400))::integer AS window_no,
        a.at - floor(extract(EPOCH FROM a.at - i.created_at) / (w.days * 86400)) * w.days * 86400 * INTERVAL '1 s'
            AS window_end
    FROM incidents.incidents AS i
    CROSS JOIN (SELECT max(x.created_at) AS at FROM incidents.incidents AS x) AS a
    CROSS JOIN LATERAL (SELECT 3 + (hashtext(i.tenant_id || '/' || i.error_code) & 7) AS days) AS w
    WHERE i.severity IN ('high', 'critical')
),
grp AS (
    SELECT h.tenant_id, h.error_code, h.severity, h.window_no, min(h.window_end) AS window_end,
        (array_agg(h.id ORDER BY h.created_at, h.source_run_id COLLATE "C", h.id))[1] AS first_id,
        count(*) AS incidents, min(h.created_at) AS first_seen, max(h.created_at) AS last_seen
    FROM hc AS h
    GROUP BY h.tenant_id, h.error_code, h.severity, h.window_no
)"""


def _load_statements(runs: int, tenants: int, incidents: int, storm: int) -> list[tuple[str, str]]:
    """(label, SQL) in load order. Run g (1..runs) is the n-th run of tenant rtNNNN (t = (g-1) % tenants,
    n = (g-1) / tenants); runs are spread over the last 30 days in g order; every k-th run of each
    tenant fails (offset by tenant), so every tenant has its share of the incidents, and the last
    `storm` runs of the first tenant fail with STORM_CODE. h is a multiplicative hash of g that
    picks lifecycle states and reviews independently of the code."""
    k = max(1, runs // incidents)
    last_n = (runs - 1) // tenants  # the first tenant's last n
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
    CASE WHEN x.storm THEN '{STORM_CODE}' WHEN x.failed THEN ({codes})[(x.n / {k} + x.t) % 10 + 1] END,
    CASE WHEN x.failed OR x.storm THEN 'bench failure of run-' || g END,
    200 + g % 3000, 50 + g % 800, ((250 + g % 3800) * 0.000002)::numeric(12, 6),
    x.created_at, x.created_at,
    CASE WHEN y.status <> 'running' THEN x.created_at + (500 + (g * 7919) % 60000) * INTERVAL '1 ms' END,
    CASE WHEN y.status <> 'running' THEN 500 + (g * 7919) % 60000 END,
    NOT (x.failed OR x.storm) AND (x.h / 1009) % 100 = 7
FROM generate_series(1::bigint, {runs}) AS g
CROSS JOIN LATERAL (SELECT
    (g - 1) % {tenants} AS t, (g - 1) / {tenants} AS n, (g * 2654435761) % 4294967296 AS h,
    ((g - 1) / {tenants}) % {k} = ((g - 1) % {tenants}) % {k} AS failed,
    (g - 1) % {tenants} = 0 AND (g - 1) / {tenants} > {last_n - storm} AS storm,
    now() - INTERVAL '30 days' + g * (INTERVAL '30 days' / {runs}) AS created_at) AS x
CROSS JOIN LATERAL (SELECT CASE WHEN x.failed OR x.storm THEN 'failed'
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
        # What the PolicyProposalEngine would have made of the high and critical incidents: one
        # proposal per review window, opened by its first incident (same transaction, same time),
        # counting the window's incidents. An ended window was reviewed a third of the way from its
        # last incident to the next window's first (or at its end when none followed); half the
        # reviews approve.
        ("policy_proposals", f"""
WITH {WINDOWS},
hist AS (
    SELECT g.*, lead(g.first_seen) OVER (
        PARTITION BY g.tenant_id, g.error_code, g.severity ORDER BY g.window_no DESC) AS next_seen
    FROM grp AS g
)
INSERT INTO policies.policy_proposals (tenant_id, triggering_incident_id, triggering_run_id, proposal_name,
    proposal_type, rationale, proposed_rule, status, incident_count, last_seen_at, created_at, reviewed_at,
    reviewed_by, review_notes)
SELECT i.tenant_id, i.id, i.source_run_id, format('%s: %s', pt.proposal_type, i.error_code), pt.proposal_type,
    format('%s incident %s: run %s failed with %s. A rule listing %s would prevent it next time.',
           initcap(i.severity), i.id, i.source_run_id, i.error_code, i.error_code),
    {RULE_OF.format("i")},
    st.status, h.incidents, h.last_seen, i.created_at,
    CASE WHEN st.status <> 'pending' THEN coalesce(
        h.last_seen + extract(EPOCH FROM h.next_seen - h.last_seen) / 3 * INTERVAL '1 s', h.window_end) END,
    CASE WHEN st.status <> 'pending' THEN 'reviewer' END,
    CASE WHEN st.status <> 'pending' THEN 'bench review' END
FROM hist AS h
JOIN incidents.incidents AS i ON i.tenant_id = h.tenant_id AND i.id = h.first_id
LEFT JOIN incidents.failure_classes AS fc ON fc.error_code = i.error_code
CROSS JOIN LATERAL (SELECT coalesce(fc.proposal_type, 'failure_pattern_policy') AS proposal_type,
                           i.source_run_id AS run_id) AS pt
CROSS JOIN LATERAL (SELECT CASE WHEN h.window_no = 0 THEN 'pending'
                                WHEN {h_of.format("pt")} / 131 % 2 = 0 THEN 'approved'
                                ELSE 'rejected' END AS status) AS st"""),
        # Every high or critical incident linked to its window's proposal, when it was detected.
        ("proposal_incidents", f"""
WITH {WINDOWS}
INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id, linked_at)
SELECT h.tenant_id, h.id, p.id, h.created_at
FROM hc AS h
JOIN grp AS g ON g.tenant_id = h.tenant_id AND g.error_code = h.error_code AND g.severity = h.severity
    AND g.window_no = h.window_no
JOIN policies.policy_proposals AS p ON p.tenant_id = g.tenant_id AND p.triggering_incident_id = g.first_id"""),
        # The rule of each approval (as the PolicyEngine names it), in the approving transaction. One
        # followed by another proposal of its rule was retired before that proposal's first failure,
        # which it would otherwise have prevented (no incident); the last stays active.
        ("policy_rules", """
INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement, status, source,
    source_proposal_id, created_at, retired_at, retired_by)
SELECT p.tenant_id, p.proposal_name, p.proposed_rule ->> 'rule_type', p.proposed_rule -> 'conditions',
    p.proposed_rule ->> 'enforcement', CASE WHEN p.next_at IS NULL THEN 'active' ELSE 'retired' END, 'proposal', p.id,
    p.reviewed_at, p.reviewed_at + extract(EPOCH FROM p.next_at - p.last_seen_at) / 3 * INTERVAL '1 s',
    CASE WHEN p.next_at IS NOT NULL THEN 'reviewer' END
FROM (
    SELECT x.*, lead(x.created_at) OVER (PARTITION BY x.tenant_id, x.proposed_rule ORDER BY x.created_at) AS next_at
    FROM policies.policy_proposals AS x
) AS p
WHERE p.status = 'approved'"""),
        ("prevention_records", """
INSERT INTO policies.prevention_records (tenant_id, run_id, guardrail_id, outcome, details, created_at)
SELECT r.tenant_id, r.run_id, 'dg-002', 'blocked',
    jsonb_build_object('total_tokens', r.input_tokens + r.output_tokens), r.completed_at
FROM activity.runs AS r
WHERE r.policy_violation"""),
        # The outbox as the engines and the reviews would have written it, with their payloads, in
        # time order (seq is drawn in insert order; `ord` orders one transaction's events). tx_id
        # takes its default: the loading transaction wrote them all, so they are one outbox batch.
        ("events", """
INSERT INTO aos.events (created_at, event, tenant_id, subject_id, payload)
SELECT e.created_at, e.event, e.tenant_id, e.subject_id, e.payload FROM (
    SELECT r.completed_at AS created_at, 1 AS ord, 'run_failed' AS event, r.tenant_id, r.run_id AS subject_id,
        jsonb_build_object('run_id', r.run_id, 'id', r.id, 'error_code', r.error_code, 'prevented', FALSE,
                           'is_synthetic', r.is_synthetic) AS payload
    FROM activity.runs AS r WHERE r.status = 'failed'
    UNION ALL
    SELECT i.created_at, 2, 'incident_created', i.tenant_id, i.id::text,
        jsonb_build_object('incident_id', i.id, 'run_id', i.source_run_id, 'severity', i.severity,
                           'error_code', i.error_code, 'is_synthetic', i.is_synthetic)
    FROM incidents.incidents AS i
    UNION ALL
    SELECT p.created_at, 3, 'proposal_created', p.tenant_id, p.id::text,
        jsonb_build_object('proposal_id', p.id, 'incident_id', p.triggering_incident_id,
                           'run_id', p.triggering_run_id, 'proposal_type', p.proposal_type,
                           'is_synthetic', p.is_synthetic)
    FROM policies.policy_proposals AS p
    UNION ALL
    SELECT p.reviewed_at, 1, 'proposal_' || p.status, p.tenant_id, p.id::text,
        jsonb_build_object('proposal_id', p.id, 'reviewed_by', p.reviewed_by, 'incident_id', p.triggering_incident_id,
                           'is_synthetic', p.is_synthetic)
    FROM policies.policy_proposals AS p WHERE p.status <> 'pending'
    UNION ALL
    SELECT ru.created_at, 2, 'rule_created', ru.tenant_id, ru.id::text,
        jsonb_build_object('rule_id', ru.id, 'proposal_id', ru.source_proposal_id, 'rule_type', ru.rule_type,
                           'enforcement', ru.enforcement, 'is_synthetic', ru.is_synthetic)
    FROM policies.policy_rules AS ru
    UNION ALL
    SELECT ru.retired_at, 1, 'rule_retired', ru.tenant_id, ru.id::text,
        jsonb_build_object('rule_id', ru.id, 'actor', ru.retired_by, 'is_synthetic', ru.is_synthetic)
    FROM policies.policy_rules AS ru WHERE ru.status = 'retired'
    UNION ALL
    SELECT pr.created_at, 0, 'prevention_recorded', pr.tenant_id, pr.id::text,
        jsonb_build_object('prevention_record_id', pr.id, 'run_id', pr.run_id, 'policy_rule_id', pr.policy_rule_id,
                           'guardrail_id', pr.guardrail_id, 'outcome', pr.outcome, 'is_synthetic', pr.is_synthetic)
    FROM policies.prevention_records AS pr
) AS e
ORDER BY e.created_at, e.ord"""),
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
    # The link's primary key is (tenant_id, incident_id): at most one per incident.
    "high/critical incident without a link (or another incident with one)": """SELECT count(*)
        FROM incidents.incidents AS i
        WHERE (i.severity IN ('high', 'critical')) <> EXISTS (
            SELECT FROM policies.proposal_incidents AS l WHERE l.tenant_id = i.tenant_id AND l.incident_id = i.id)""",
    "link without its incident and a proposal of the incident's rule": f"""SELECT count(*)
        FROM policies.proposal_incidents AS l WHERE NOT EXISTS (
            SELECT FROM incidents.incidents AS i
            JOIN policies.policy_proposals AS p ON p.tenant_id = i.tenant_id AND p.id = l.proposal_id
            WHERE i.tenant_id = l.tenant_id AND i.id = l.incident_id AND p.proposed_rule = {RULE_OF.format("i")})""",
    "proposal whose incident_count or last_seen_at is not its links'": """SELECT count(*)
        FROM policies.policy_proposals AS p
        LEFT JOIN (
            SELECT l.tenant_id, l.proposal_id, count(*) AS n, max(i.created_at) AS last_seen
            FROM policies.proposal_incidents AS l
            JOIN incidents.incidents AS i ON i.tenant_id = l.tenant_id AND i.id = l.incident_id
            GROUP BY l.tenant_id, l.proposal_id
        ) AS c ON c.tenant_id = p.tenant_id AND c.proposal_id = p.id
        WHERE c.n IS DISTINCT FROM p.incident_count OR c.last_seen IS DISTINCT FROM p.last_seen_at""",
    "proposal not opened by its first linked incident": """SELECT count(*) FROM policies.policy_proposals AS p
        WHERE NOT EXISTS (
            SELECT FROM policies.proposal_incidents AS l
            JOIN incidents.incidents AS i ON i.tenant_id = l.tenant_id AND i.id = l.incident_id
            WHERE l.tenant_id = p.tenant_id AND l.proposal_id = p.id AND l.incident_id = p.triggering_incident_id
              AND i.source_run_id = p.triggering_run_id AND i.created_at = p.created_at)
        OR EXISTS (
            SELECT FROM policies.proposal_incidents AS l
            JOIN incidents.incidents AS i ON i.tenant_id = l.tenant_id AND i.id = l.incident_id
            WHERE l.tenant_id = p.tenant_id AND l.proposal_id = p.id AND i.created_at < p.created_at)""",
    "incident linked to a proposal already reviewed": """SELECT count(*) FROM policies.proposal_incidents AS l
        JOIN incidents.incidents AS i ON i.tenant_id = l.tenant_id AND i.id = l.incident_id
        JOIN policies.policy_proposals AS p ON p.tenant_id = l.tenant_id AND p.id = l.proposal_id
        WHERE p.status <> 'pending' AND i.created_at > p.reviewed_at""",
    "proposal opened while one of its rule was pending": """SELECT count(*) FROM (
            SELECT x.status, x.reviewed_at, x.last_seen_at,
                lead(x.created_at) OVER (PARTITION BY x.tenant_id, x.proposed_rule ORDER BY x.created_at) AS next_at
            FROM policies.policy_proposals AS x
        ) AS p
        WHERE p.next_at IS NOT NULL
          AND NOT (p.status <> 'pending' AND p.reviewed_at >= p.last_seen_at AND p.reviewed_at < p.next_at)""",
    "two pending proposals of one rule": """SELECT count(*) FROM (
            SELECT FROM policies.policy_proposals AS p WHERE p.status = 'pending'
            GROUP BY p.tenant_id, p.proposed_rule HAVING count(*) > 1) AS d""",
    "approved proposal without one rule (or a rule without it)": """SELECT
        (SELECT count(*) FROM policies.policy_proposals AS p WHERE p.status = 'approved' AND (
            SELECT count(*) FROM policies.policy_rules AS r
            WHERE r.tenant_id = p.tenant_id AND r.source_proposal_id = p.id) <> 1)
      + (SELECT count(*) FROM policies.policy_rules AS r WHERE NOT EXISTS (
            SELECT FROM policies.policy_proposals AS p
            WHERE p.tenant_id = r.tenant_id AND p.id = r.source_proposal_id AND p.status = 'approved'
              AND r.conditions = p.proposed_rule -> 'conditions'
              AND r.enforcement = p.proposed_rule ->> 'enforcement'))""",
    "incident a rule active at the time would have prevented": """SELECT count(*) FROM incidents.incidents AS i
        JOIN policies.policy_rules AS r ON r.tenant_id = i.tenant_id AND r.conditions -> 'error_codes' ? i.error_code
        WHERE r.created_at <= i.created_at AND (r.retired_at IS NULL OR r.retired_at > i.created_at)""",
    "proposal without one proposal_created event": """SELECT count(*) FROM policies.policy_proposals AS p
        LEFT JOIN (SELECT e.tenant_id, e.subject_id, count(*) AS n FROM aos.events AS e
                   WHERE e.event = 'proposal_created' GROUP BY e.tenant_id, e.subject_id) AS e
            ON e.tenant_id = p.tenant_id AND e.subject_id = p.id::text
        WHERE e.n IS DISTINCT FROM 1""",
    "prevention record without a violating run": """SELECT count(*) FROM policies.prevention_records AS pr
        WHERE NOT EXISTS (SELECT FROM activity.runs AS r
                          WHERE r.tenant_id = pr.tenant_id AND r.run_id = pr.run_id AND r.policy_violation)""",
}


def load(dsn: str, runs: int, tenants: int, incidents: int, storm: int) -> None:
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
            for label, statement in _load_statements(runs, tenants, incidents, storm):
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
            (SELECT count(*) FROM policies.policy_proposals WHERE status = 'pending'),
            (SELECT count(*) FROM policies.proposal_incidents),
            (SELECT max(incident_count) FROM policies.policy_proposals),
            (SELECT count(DISTINCT tenant_id) FROM activity.runs), pg_size_pretty(pg_database_size(current_database())),
            current_setting('shared_buffers'), current_setting('server_version')""").fetchone()
    return (f"{row[0]:,} runs, {row[1]:,} steps, {row[2]:,} incidents, {row[3]:,} proposals ({row[4]:,} pending, "
            f"{row[5]:,} links, at most {row[6] or 0:,} on one), {row[7]} tenants; "
            f"database {row[8]}, shared_buffers {row[9]}, PostgreSQL {row[10]}")


# ---- what is measured ------------------------------------------------------------------------------

# (label, the call, the kind of id it takes or None). %s is the id in the client's call and
# v_arg in the server-side loop. Those that take an id are the detail and evidence facades the
# bar is about; the lists' first pages are measured against the same 1 ms for reference. The
# kinds (pick_tenants): any run, failed run, incident or proposal of the tenant; a linked run or
# incident (high or critical: proposals_linked, the shared proposal); a pending proposal (all its
# window's links listed); a storm proposal (more links than the detail lists: the newest 50 and
# the count of all).
FACADES = (
    ("api.activity_run", "api.activity_run(%s)", "run"),
    ("api.activity_run_evidence", "api.activity_run_evidence(%s)", "run"),
    ("api.activity_run_evidence (failed run)", "api.activity_run_evidence(%s)", "failed_run"),
    ("api.activity_run_evidence (linked run)", "api.activity_run_evidence(%s)", "linked_run"),
    ("api.incident", "api.incident(%s::uuid)", "incident"),
    ("api.incident_evidence", "api.incident_evidence(%s::uuid)", "incident"),
    ("api.incident_evidence (linked)", "api.incident_evidence(%s::uuid)", "linked_incident"),
    ("api.policy_proposal", "api.policy_proposal(%s::uuid)", "proposal"),
    ("api.policy_proposal (pending)", "api.policy_proposal(%s::uuid)", "pending_proposal"),
    ("api.policy_proposal (storm)", "api.policy_proposal(%s::uuid)", "storm_proposal"),
    ("api.activity_runs page 1", "api.activity_runs()", None),
    ("api.activity_runs status=failed", "api.activity_runs(status => 'failed')", None),
    ("api.incidents page 1", "api.incidents()", None),
    ("api.incidents severity=high", "api.incidents(severity => 'high')", None),
    ("api.policy_proposals page 1", "api.policy_proposals()", None),
    ("api.policy_proposals status=pending", "api.policy_proposals(status => 'pending')", None),
)
WARMUP = 100


# The ids of each kind of a tenant (%s).
POOLS = {
    "run": "SELECT run_id FROM activity.runs WHERE tenant_id = %s",
    "failed_run": "SELECT run_id FROM activity.runs WHERE tenant_id = %s AND status = 'failed'",
    "linked_run": """SELECT i.source_run_id FROM incidents.incidents AS i
        JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id
        WHERE i.tenant_id = %s""",
    "incident": "SELECT id::text FROM incidents.incidents WHERE tenant_id = %s",
    "linked_incident": "SELECT incident_id::text FROM policies.proposal_incidents WHERE tenant_id = %s",
    "proposal": "SELECT id::text FROM policies.policy_proposals WHERE tenant_id = %s",
    "pending_proposal": f"""SELECT id::text FROM policies.policy_proposals
        WHERE tenant_id = %s AND status = 'pending' AND incident_count <= {LINKS_LISTED}""",
    "storm_proposal": f"""SELECT id::text FROM policies.policy_proposals
        WHERE tenant_id = %s AND incident_count > {LINKS_LISTED}""",
}


def pick_tenants(dsn: str, count: int, rng: random.Random) -> dict[str, dict[str, list[str]]]:
    """For `count` tenants, the one with the most linked proposal (the storm's) first and random
    others: their ids of each kind (POOLS)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        tenants = [t for (t,) in conn.execute("SELECT tenant_id FROM aos.tenants ORDER BY tenant_id")]
        busiest = conn.execute("SELECT tenant_id FROM policies.policy_proposals "
                               "ORDER BY incident_count DESC, tenant_id LIMIT 1").fetchone()
        first = [busiest[0]] if busiest else []
        others = [t for t in tenants if t not in first]
        ids = {}
        for tenant in first + rng.sample(others, min(count - len(first), len(others))):
            ids[tenant] = {kind: [i for (i,) in conn.execute(sql, (tenant,))] for kind, sql in POOLS.items()}
    return ids


def with_ids(ids: dict[str, dict[str, list[str]]], kind: str | None) -> list[str]:
    """The tenants that have ids of this kind (all of them for a call that takes none)."""
    return [tenant for tenant, pools in ids.items() if kind is None or pools[kind]]


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
    tenants = with_ids(ids, kind)
    per_tenant = math.ceil(calls / len(tenants))
    for tenant in tenants:
        pools = ids[tenant]
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
    # aos_api may not create temporary objects (0012): the session user creates the loop, aos_api runs it.
    conn.execute("RESET ROLE")
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
    conn.execute("SET ROLE aos_api")
    samples: list[float] = []
    tenants = with_ids(ids, kind)
    per_tenant = math.ceil(calls / len(tenants))
    for tenant in tenants:
        pools = ids[tenant]
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
    (where, SQL) with literal parameters (sql/functions/api_*.sql). failed_run and incident are
    best linked to a proposal, and proposal one with many links."""
    t = f"'{tenant}'"
    q = {
        "run": f"'{run}'", "failed": f"'{failed_run}'", "inc": f"'{incident}'::uuid", "prop": f"'{proposal}'::uuid"}
    traces = ("SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY t.started_at, t.trace_id), '[]') "
              "FROM activity.aos_traces AS t WHERE t.tenant_id = {t} AND t.run_id = {r}")
    return [
        ("api_private.run (activity_run, activity_run_evidence)",
         f"SELECT to_jsonb(r) FROM activity.runs AS r WHERE r.tenant_id = {t} AND r.run_id = {q['run']}"),
        ("api_private.run_traces", traces.format(t=t, r=q["run"])),
        ("api.activity_run: analytics",
         f"SELECT to_jsonb(v) - 'tenant_id' - 'run_id' FROM activity.v_runs_o2_api AS v "
         f"WHERE v.tenant_id = {t} AND v.run_id = {q['run']}"),
        ("api.activity_run_evidence: incidents_caused",
         f"SELECT coalesce(jsonb_agg(to_jsonb(i) ORDER BY i.created_at, i.id), '[]') FROM incidents.incidents AS i "
         f"WHERE i.tenant_id = {t} AND i.source_run_id = {q['failed']}"),
        ("api.activity_run_evidence: proposals_triggered",
         f"SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.created_at, p.id), '[]') "
         f"FROM policies.policy_proposals AS p WHERE p.tenant_id = {t} AND p.triggering_run_id = {q['failed']}"),
        ("api.activity_run_evidence: proposals_linked",
         f"SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.created_at, p.id), '[]') FROM ("
         f"SELECT DISTINCT l.proposal_id FROM incidents.incidents AS i "
         f"INNER JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id "
         f"WHERE i.tenant_id = {t} AND i.source_run_id = {q['failed']}) AS x "
         f"INNER JOIN policies.policy_proposals AS p ON p.tenant_id = {t} AND p.id = x.proposal_id"),
        ("api.activity_run_evidence: prevention_records",
         f"SELECT coalesce(jsonb_agg(to_jsonb(pr) ORDER BY pr.created_at, pr.id), '[]') "
         f"FROM policies.prevention_records AS pr WHERE pr.tenant_id = {t} AND pr.run_id = {q['failed']}"),
        ("api_private.incident (incident, incident_evidence)",
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
        ("api.incident_evidence: proposal",
         f"SELECT to_jsonb(p) FROM policies.proposal_incidents AS l "
         f"INNER JOIN policies.policy_proposals AS p ON p.tenant_id = l.tenant_id AND p.id = l.proposal_id "
         f"WHERE l.tenant_id = {t} AND l.incident_id = {q['inc']}"),
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
        ("api.policy_proposal: incidents (newest 50 links)",
         f"SELECT coalesce(jsonb_agg(jsonb_build_object("
         f"'incident_id', i.id, 'source_run_id', i.source_run_id, 'severity', i.severity, "
         f"'lifecycle_state', i.lifecycle_state, 'error_code', i.error_code, 'created_at', i.created_at, "
         f"'linked_at', l.linked_at) ORDER BY l.linked_at DESC, l.incident_id DESC), '[]') FROM ("
         f"SELECT k.incident_id, k.linked_at FROM policies.proposal_incidents AS k "
         f"WHERE k.tenant_id = {t} AND k.proposal_id = {q['prop']} "
         f"ORDER BY k.linked_at DESC, k.incident_id DESC LIMIT {LINKS_LISTED}) AS l "
         f"CROSS JOIN LATERAL (SELECT * FROM incidents.incidents AS x "
         f"WHERE x.tenant_id = {t} AND x.id = l.incident_id OFFSET 0) AS i"),
        ("api.policy_proposal: incidents_total",
         f"SELECT count(*) FROM policies.proposal_incidents AS l "
         f"WHERE l.tenant_id = {t} AND l.proposal_id = {q['prop']}"),
        # Lists: the filters a caller did not give are NULL, which the custom plan folds away.
        ("api.activity_runs page 1: items",
         f"SELECT jsonb_agg(to_jsonb(v) - 'tenant_id' ORDER BY v.created_at DESC, v.run_id DESC) FROM ("
         f"SELECT * FROM activity.v_runs_o2_api AS r WHERE r.tenant_id = {t} "
         f"LIMIT 50 OFFSET 0) AS v"),
        ("api.activity_runs page 1: total",
         f"SELECT count(*) FROM activity.v_runs_o2_api AS r WHERE r.tenant_id = {t}"),
        ("api.activity_runs status=failed: items",
         f"SELECT jsonb_agg(to_jsonb(v) - 'tenant_id' ORDER BY v.created_at DESC, v.run_id DESC) FROM ("
         f"SELECT * FROM activity.v_runs_o2_api AS r WHERE r.tenant_id = {t} AND r.status = 'failed' "
         f"LIMIT 50 OFFSET 0) AS v"),
        ("api.activity_runs status=failed: total",
         f"SELECT count(*) FROM activity.v_runs_o2_api AS r WHERE r.tenant_id = {t} AND r.status = 'failed'"),
        ("api.incidents page 1: items",
         f"SELECT jsonb_agg(to_jsonb(v) - 'tenant_id' ORDER BY v.first_seen_at DESC, v.incident_id DESC) FROM ("
         f"SELECT * FROM incidents.v_incidents_o2_api AS i WHERE i.tenant_id = {t} "
         f"LIMIT 50 OFFSET 0) AS v"),
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
    tenant, pools = next(iter(ids.items()))  # the storm's tenant, when there is one
    pick = {kind: rng.choice(pool) for kind, pool in pools.items() if pool}

    def first(*kinds: str) -> str:
        return next(pick[k] for k in kinds if k in pick)

    run = first("run")
    failed = first("linked_run", "failed_run", "run")
    incident = first("linked_incident", "incident")
    proposal = first("storm_proposal", "pending_proposal", "proposal")
    with psycopg.connect(dsn, autocommit=True) as owner:
        big = {n for (n,) in owner.execute("SELECT relname FROM pg_class WHERE relkind IN ('r', 'm') "
                                            "AND reltuples > 10000")}
    summary = []
    with as_api(dsn) as conn:
        set_tenant(conn, tenant)
        queries = _facade_queries(tenant, run, failed, incident, proposal)
        calls = [(f"call {label} (cold)", "SELECT " + call.replace("%s", f"'{pick[kind]}'" if kind else "''"))
                 for label, call, kind in FACADES if kind is None or kind in pick]
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
    parser.add_argument("--incidents", type=int, default=50_000,
                        help="Failed runs over every tenant, each with one incident (the storm's come on top).")
    parser.add_argument("--storm", type=int, help=f"The last N runs of {STORM_TENANT} fail with {STORM_CODE}, all "
                        "linked to few proposals (default: 1000, at most half its runs; 0: no storm).")
    parser.add_argument("--calls", type=int, default=3000, help="Measured calls per facade (client and server each).")
    parser.add_argument("--sample-tenants", type=int, default=4, help="Tenants the calls are spread over.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--plans", action="store_true", help="Print EXPLAIN (ANALYZE, BUFFERS) of the facades' queries.")
    parser.add_argument("--keep", action="store_true", help="Keep the loaded database (its name is printed).")
    parser.add_argument("--reuse", metavar="DB", help="Measure a database an earlier --keep run loaded; no load.")
    args = parser.parse_args()
    if not (0 < args.incidents <= args.runs and 0 < args.tenants <= 9999 and args.calls > 0):
        parser.error("need 0 < --incidents <= --runs, 0 < --tenants <= 9999, --calls > 0")
    if args.storm is None:
        args.storm = min(1000, args.runs // args.tenants // 2)
    if args.storm < 0:
        parser.error("need --storm >= 0")
    server = resolve_dsn(args.dsn)
    rng = random.Random(args.seed)

    if args.reuse:
        measure(with_dbname(server, args.reuse), args, rng)
        return 0
    with throwaway_database(server, "aosdb_bench_read", keep=args.keep) as dsn:
        started = time.perf_counter()
        print(f"loading {args.runs:,} runs over {args.tenants} tenants, {args.incidents:,} incidents, "
              f"a storm of {args.storm:,} failed runs ...", flush=True)
        migrations.migrate(dsn)
        load(dsn, args.runs, args.tenants, args.incidents, args.storm)
        print(f"  ready in {time.perf_counter() - started:.0f} s", flush=True)
        measure(dsn, args, rng)
        if args.keep:
            print(f"\nkept database {conninfo_to_dict(dsn)['dbname']} (--reuse it)")
    return 0


def measure(dsn: str, args: argparse.Namespace, rng: random.Random) -> None:
    print(f"data set: {sizes(dsn)}", flush=True)
    ids = pick_tenants(dsn, args.sample_tenants, rng)
    print(f"calls: {args.calls} per facade over tenants {', '.join(ids)} (after {WARMUP} warm-up calls per tenant; "
          f"a kind of id a tenant lacks is called for the others)")
    for label, _, kind in FACADES:
        if kind and not with_ids(ids, kind):
            print(f"  skipped {label}: none of these tenants has such an id")
    rows = []
    with as_api(dsn) as conn:
        baseline = client_times(conn, None, None, ids, args.calls // 2, rng)
        for label, call, kind in FACADES:
            if kind and not with_ids(ids, kind):
                continue
            client = client_times(conn, call, kind, ids, args.calls, rng)
            server = server_times(conn, call, kind, ids, args.calls, rng)
            rows.append((label, kind, stats(client), stats(server)))
        baseline += client_times(conn, None, None, ids, args.calls // 2, rng)  # before and after: no drift favoured
        base_server = stats(server_times(conn, None, None, ids, args.calls, rng))
    base = stats(baseline)

    print(f"\n{'':<40} {'client round trip, ms':^26} {'':>9}  {'server, ms':^26}")
    print(f"{'facade':<40} {'p50':>8} {'p95':>8} {'p99':>8} {'p95/base':>9}  {'p50':>8} {'p95':>8} {'p99':>8}  "
          f"bar p95 < {BAR_MS:g} ms (server)")
    print(f"{'SELECT 1 (baseline)':<40} {base[0]:8.3f} {base[1]:8.3f} {base[2]:8.3f} {1:9.1f}  "
          f"{base_server[0]:8.3f} {base_server[1]:8.3f} {base_server[2]:8.3f}")
    for label, kind, client, server in rows:
        verdict = "ok" if server[1] < BAR_MS else ("MISS" if kind else "over (list)")
        print(f"{label:<40} {client[0]:8.3f} {client[1]:8.3f} {client[2]:8.3f} {client[1] / base[1]:9.1f}  "
              f"{server[0]:8.3f} {server[1]:8.3f} {server[2]:8.3f}  {verdict}")
    barred = [(server[1], label) for label, kind, _, server in rows if kind]
    worst, worst_label = max(barred)
    print(f"\nbar (detail and evidence facades, server p95 < {BAR_MS:g} ms): "
          f"{'met' if worst < BAR_MS else 'MISSED'}; slowest {worst_label} at {worst:.3f} ms")
    if args.plans:
        plans(dsn, ids, rng)


if __name__ == "__main__":
    sys.exit(main())
