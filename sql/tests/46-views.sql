-- The analytics views (README.md, Analytics views for BI tools) after a refresh match their base tables:
-- activity.v_runs_o2 one row per run with its trace and step figures;
-- incidents.v_incidents_o2 one row per incident with topic, timeline and
-- evidence figures, recurrence_count (earlier incidents of the same tenant and
-- category in the previous 30 days) and time_to_resolution_ms. Both have the
-- unique index REFRESH ... CONCURRENTLY needs and refresh concurrently inside
-- a transaction; both are stale until refreshed; every column is commented.
-- Each has two tenant-filtered views: *_tenant, a security barrier for the
-- tenant BI logins, and *_api, a security barrier too, ordered like the list
-- index, so that a facade's first page of a tenant with thousands of rows
-- is an ordered index scan (no sort of the tenant's rows). The facades that
-- read the links of policies.proposal_incidents read them through its indexes
-- too: a proposal's incidents through proposal_incidents_proposal_idx, an
-- incident's proposal through the primary key.
BEGIN;

SELECT aos.register_tenant(t) FROM (VALUES ('t1'), ('t2')) AS v (t);

-- ------------------------------------------------------------ runs
-- r-steps: three traces (one without steps), five steps, two failures, three
-- retries, 150 tokens. r-bare: no trace. t2 reuses the run_id and trace_id
-- with figures of its own. r-fail and r-fail2 fail (incidents).
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, input_tokens, output_tokens,
                           estimated_cost_usd, created_at, started_at, completed_at, duration_ms)
VALUES
    ('t1', 'r-steps', 'agent-a', 'succeeded', NULL, 100, 50, 0.25, '2024-09-01 00:00:00+00', '2024-09-01 00:00:01+00',
     '2024-09-01 00:00:31+00', 30000),
    ('t1', 'r-bare', 'agent-b', 'running', NULL, 0, 0, 0, '2024-09-01 01:00:00+00', '2024-09-01 01:00:01+00', NULL, NULL),
    ('t1', 'r-fail', 'agent-a', 'failed', 'EXECUTION_TIMEOUT', 10, 5, 0, '2024-09-01 02:00:00+00', NULL, NULL, NULL),
    ('t1', 'r-fail2', 'agent-a', 'failed', 'STEP_FAILURE', 1, 1, 0, '2024-09-01 03:00:00+00', NULL, NULL, NULL),
    ('t2', 'r-steps', 'agent-z', 'succeeded', NULL, 7, 3, 0, '2024-09-01 00:00:00+00', NULL, NULL, NULL);
INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id) VALUES
    ('t1', 'tr-a', 'r-steps'), ('t1', 'tr-b', 'r-steps'), ('t1', 'tr-c', 'r-steps'), ('t2', 'tr-a', 'r-steps');
INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, retry_count, cost_usd) VALUES
    ('t1', 'tr-a', 0, 'search', 'success', 0, 0.01),
    ('t1', 'tr-a', 1, 'fetch', 'failure', 2, 0.02),
    ('t1', 'tr-a', 2, 'fetch', 'retry', 1, 0.03),
    ('t1', 'tr-b', 0, 'shell', 'failure', 0, 0),
    ('t1', 'tr-b', 1, 'shell', 'skipped', 0, 0),
    ('t2', 'tr-a', 0, 'search', 'failure', 9, 0);

-- ------------------------------------------------------------ incidents
CREATE TEMP TABLE names (name text PRIMARY KEY, tenant_id text, id uuid) ON COMMIT DROP;
GRANT SELECT ON names TO PUBLIC;
INSERT INTO names SELECT substr(source_run_id, 3), tenant_id, id FROM incidents.incidents;

-- Incidents inserted directly with their own times: system causes, which the
-- engines do not turn into anything (and medium or low, so no proposal).
INSERT INTO names VALUES
    ('res', 't1', '00000000-0000-0000-0000-000000000e01'),
    ('quiet', 't1', '00000000-0000-0000-0000-000000000e02'),
    ('A', 't1', '00000000-0000-0000-0000-00000000000a'),
    ('B', 't1', '00000000-0000-0000-0000-00000000000b'),
    ('C', 't1', '00000000-0000-0000-0000-00000000000c'),
    ('D', 't1', '00000000-0000-0000-0000-00000000000d'),
    ('E', 't1', '00000000-0000-0000-0000-00000000000e'),
    ('F', 't1', '00000000-0000-0000-0000-00000000000f'),
    ('G', 't1', '00000000-0000-0000-0000-000000000010'),
    ('RL1', 't1', '00000000-0000-0000-0000-000000000011'),
    ('RL2', 't1', '00000000-0000-0000-0000-000000000012'),
    ('T2A', 't2', '00000000-0000-0000-0000-000000000021'),
    ('T2B', 't2', '00000000-0000-0000-0000-000000000022');
INSERT INTO incidents.incidents (tenant_id, id, title, severity, category, error_code, cause_type, created_at)
SELECT n.tenant_id, n.id, 'incident ' || n.name, 'medium', v.category, v.code, 'system', v.t
FROM (VALUES
    -- resource_exhaustion of t1, over more than 30 days (D and E at the same instant)
    ('A', 'resource_exhaustion', 'RESOURCE_EXHAUSTION', '2024-01-01 00:00:00+00'::timestamptz),
    ('B', 'resource_exhaustion', 'RESOURCE_EXHAUSTION', '2024-01-10 00:00:00+00'),
    ('C', 'resource_exhaustion', 'RESOURCE_EXHAUSTION', '2024-01-25 00:00:00+00'),
    ('D', 'resource_exhaustion', 'RESOURCE_EXHAUSTION', '2024-02-05 00:00:00+00'),
    ('E', 'resource_exhaustion', 'RESOURCE_EXHAUSTION', '2024-02-05 00:00:00+00'),
    ('F', 'resource_exhaustion', 'RESOURCE_EXHAUSTION', '2024-03-20 00:00:00+00'),
    ('G', 'resource_exhaustion', 'RESOURCE_EXHAUSTION', '2024-04-18 00:00:00+00'),
    -- another category of t1, inside the same weeks
    ('RL1', 'rate_limit', 'RATE_LIMIT_EXCEEDED', '2024-01-05 00:00:00+00'),
    ('RL2', 'rate_limit', 'RATE_LIMIT_EXCEEDED', '2024-01-20 00:00:00+00'),
    -- the same category in another tenant, inside the same weeks
    ('T2A', 'resource_exhaustion', 'RESOURCE_EXHAUSTION', '2024-01-09 00:00:00+00'),
    ('T2B', 'resource_exhaustion', 'RESOURCE_EXHAUSTION', '2024-01-24 00:00:00+00'),
    -- no timeline, no evidence; 31 days after res, of the same category
    ('quiet', 'manual', 'MANUAL_STOP', '2024-02-01 00:00:00+00')
) AS v (name, category, code, t)
JOIN names AS n ON n.name = v.name;
-- res: resolved 1.5 s after detection, with its timeline and one piece of evidence.
INSERT INTO incidents.incidents (tenant_id, id, title, severity, lifecycle_state, category, error_code, cause_type,
                                 created_at, resolved_at, resolved_by, resolution_method)
VALUES ('t1', '00000000-0000-0000-0000-000000000e01', 'incident res', 'low', 'resolved', 'manual', 'MANUAL_STOP',
        'human', '2024-01-01 00:00:00+00', '2024-01-01 00:00:01.5+00', 'bob', 'manual');
INSERT INTO incidents.incident_events (tenant_id, incident_id, event_type, actor, created_at) VALUES
    ('t1', '00000000-0000-0000-0000-000000000e01', 'detected', 'monitor', '2024-01-01 00:00:00+00'),
    ('t1', '00000000-0000-0000-0000-000000000e01', 'resolved', 'bob', '2024-01-01 00:00:01.5+00');
INSERT INTO incidents.incident_evidence (tenant_id, incident_id, evidence_type, recovery_executed, created_at) VALUES
    ('t1', '00000000-0000-0000-0000-000000000e01', 'log', FALSE, '2024-01-01 00:00:01+00');

-- The operator: two pieces of evidence (one an executed recovery) and an
-- acknowledgement for r-fail's incident; r-fail2's is resolved at once.
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT incidents.add_evidence((SELECT id FROM names WHERE name = 'fail'), 'log', '{"line": "timeout"}');
SELECT incidents.add_evidence((SELECT id FROM names WHERE name = 'fail'), 'action', '{"action": "restart"}', TRUE);
SELECT incidents.acknowledge((SELECT id FROM names WHERE name = 'fail'), 'alice');
SELECT incidents.resolve((SELECT id FROM names WHERE name = 'fail2'), 'alice', 'auto');
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

REFRESH MATERIALIZED VIEW activity.v_runs_o2;
REFRESH MATERIALIZED VIEW incidents.v_incidents_o2;

-- What the views must hold, recomputed from the base tables by definition.
CREATE TEMP VIEW expected_runs AS
SELECT r.tenant_id, r.run_id, r.agent_id, r.status, r.state, r.started_at, r.completed_at, r.duration_ms,
       r.input_tokens, r.output_tokens, r.input_tokens + r.output_tokens AS total_tokens, r.estimated_cost_usd,
       (SELECT count(*) FROM activity.aos_traces AS t WHERE t.tenant_id = r.tenant_id AND t.run_id = r.run_id)
           AS trace_count,
       s.step_count, s.error_step_count, s.retry_count,
       r.policy_violation, r.is_synthetic, r.synthetic_scenario_id
FROM activity.runs AS r
CROSS JOIN LATERAL (
    SELECT count(*) AS step_count, count(*) FILTER (WHERE st.status = 'failure') AS error_step_count,
           coalesce(sum(st.retry_count), 0)::bigint AS retry_count
    FROM activity.aos_trace_steps AS st
    WHERE st.tenant_id = r.tenant_id
      AND st.trace_id IN (SELECT t.trace_id FROM activity.aos_traces AS t
                          WHERE t.tenant_id = r.tenant_id AND t.run_id = r.run_id)
) AS s;
CREATE TEMP VIEW actual_runs AS
SELECT tenant_id, run_id, agent_id, status, state, started_at, completed_at, duration_ms, input_tokens, output_tokens,
       total_tokens, estimated_cost_usd, trace_count::bigint, step_count::bigint, error_step_count::bigint,
       retry_count::bigint, policy_violation, is_synthetic, synthetic_scenario_id
FROM activity.v_runs_o2;

CREATE TEMP VIEW expected_incidents AS
SELECT i.tenant_id, i.id AS incident_id, i.severity, i.lifecycle_state,
       CASE i.lifecycle_state WHEN 'resolved' THEN 'resolved' ELSE 'active' END AS topic,
       i.category, i.error_code, i.cause_type, i.title, i.source_run_id, i.created_at AS first_seen_at,
       greatest(i.created_at, (SELECT max(e.created_at) FROM incidents.incident_events AS e
                               WHERE e.tenant_id = i.tenant_id AND e.incident_id = i.id)) AS last_seen_at,
       (SELECT count(*) FROM incidents.incident_events AS e
        WHERE e.tenant_id = i.tenant_id AND e.incident_id = i.id) AS event_count,
       (SELECT count(*) FROM incidents.incident_evidence AS e
        WHERE e.tenant_id = i.tenant_id AND e.incident_id = i.id) AS evidence_count,
       EXISTS (SELECT FROM incidents.incident_evidence AS e
               WHERE e.tenant_id = i.tenant_id AND e.incident_id = i.id AND e.recovery_executed) AS recovery_attempted,
       (SELECT count(*) FROM incidents.incidents AS j
        WHERE j.tenant_id = i.tenant_id AND j.category = i.category
          AND j.created_at < i.created_at AND j.created_at >= i.created_at - INTERVAL '30 days') AS recurrence_count,
       round(extract(EPOCH FROM i.resolved_at - i.created_at) * 1000)::bigint AS time_to_resolution_ms,
       i.resolved_at, i.resolved_by, i.resolution_method, i.is_synthetic, i.synthetic_scenario_id
FROM incidents.incidents AS i;
CREATE TEMP VIEW actual_incidents AS
SELECT tenant_id, incident_id, severity, lifecycle_state, topic, category, error_code, cause_type, title, source_run_id,
       first_seen_at, last_seen_at, event_count::bigint, evidence_count::bigint, recovery_attempted,
       recurrence_count::bigint, time_to_resolution_ms::bigint, resolved_at, resolved_by, resolution_method,
       is_synthetic, synthetic_scenario_id
FROM incidents.v_incidents_o2;

CREATE TEMP TABLE views (
    mv regclass, tenant_view regclass, api_view regclass, base regclass, key_column name, spec_columns text[]
) ON COMMIT DROP;
INSERT INTO views VALUES
    ('activity.v_runs_o2', 'activity.v_runs_o2_tenant', 'activity.v_runs_o2_api', 'activity.runs', 'run_id',
     ARRAY['run_id', 'tenant_id', 'agent_id', 'status', 'state', 'started_at', 'completed_at', 'duration_ms',
           'input_tokens', 'output_tokens', 'total_tokens', 'estimated_cost_usd', 'step_count', 'error_step_count',
           'retry_count', 'policy_violation', 'is_synthetic', 'synthetic_scenario_id']),
    ('incidents.v_incidents_o2', 'incidents.v_incidents_o2_tenant', 'incidents.v_incidents_o2_api',
     'incidents.incidents', 'incident_id',
     ARRAY['incident_id', 'tenant_id', 'severity', 'lifecycle_state', 'topic', 'category', 'error_code', 'cause_type',
           'title', 'source_run_id', 'first_seen_at', 'last_seen_at', 'event_count', 'evidence_count',
           'recovery_attempted', 'recurrence_count', 'time_to_resolution_ms', 'resolved_at', 'resolved_by',
           'resolution_method', 'is_synthetic', 'synthetic_scenario_id']);

SELECT plan(
    2 * 4       -- per view: documented columns, comments, unique index, one row per base row
    + 2 * 2     -- per view: which tenant view is a security barrier; the api view's rows
    + 4         -- runs: figures
    + 7         -- incidents: figures
    + 2         -- match their definition
    + 8         -- stale until refreshed; REFRESH CONCURRENTLY
    + 2 * 3     -- per view: a large tenant's first page is an ordered index scan, without a sort, and right
    + 2 * 2     -- linked incidents and an incident's proposal: through their indexes, no sequential scan
    + 1         -- api.policy_proposal plans each call
    + 1         -- a storm's proposal lists its newest 50 incidents
);

-- ------------------------------------------------------------ per view
SELECT is_empty(
    format($$SELECT c FROM unnest(%L::text[]) AS c
             WHERE NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = %L::regclass AND attname = c
                               AND attnum > 0 AND NOT attisdropped)$$, spec_columns, mv),
    format('%s has every documented column', mv)
)
FROM views ORDER BY mv::text;

SELECT is_empty(
    format($$SELECT v::regclass, a.attname FROM unnest(ARRAY[%L::regclass, %L::regclass, %L::regclass]) AS v
             JOIN pg_attribute AS a ON a.attrelid = v AND a.attnum > 0 AND NOT a.attisdropped
             WHERE coalesce(col_description(v, a.attnum), '') = ''
             UNION ALL
             SELECT v::regclass, NULL FROM unnest(ARRAY[%L::regclass, %L::regclass, %L::regclass]) AS v
             WHERE coalesce(obj_description(v, 'pg_class'), '') = ''$$,
           mv, tenant_view, api_view, mv, tenant_view, api_view),
    format('%s, %s and %s and each of their columns have a COMMENT (BI tools show them)', mv, tenant_view, api_view)
)
FROM views ORDER BY mv::text;

-- Both tenant-filtered views keep their filter ahead of any function a reader puts
-- in its query (security barrier): aos_api can create functions in pg_temp too.
SELECT results_eq(
    format($$SELECT c.oid::regclass::text, coalesce('security_barrier=true' = ANY (c.reloptions), FALSE)
             FROM pg_class AS c WHERE c.oid IN (%L::regclass, %L::regclass) ORDER BY 1$$, tenant_view, api_view),
    format($$VALUES (%L, TRUE), (%L, TRUE)$$, api_view, tenant_view),
    format('%s and %s are security_barrier views', tenant_view, api_view)
)
FROM views ORDER BY mv::text;

-- With tenant t1 set, the api view shows exactly t1's rows of the analytics view, every column.
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT bag_eq(
    format('SELECT * FROM %s', api_view),
    format($$SELECT * FROM %s WHERE tenant_id = 't1'$$, mv),
    format('with tenant t1 set, %s shows exactly the rows of t1 in %s', api_view, mv)
)
FROM views ORDER BY mv::text;
SELECT set_config('aos.tenant_id', '', TRUE);

SELECT is(
    (SELECT array_agg(a.attname::text COLLATE "C" ORDER BY k.n)
     FROM pg_index AS i
     CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k (attnum, n)
     JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = views.mv AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
     GROUP BY i.indexrelid),
    ARRAY['tenant_id', key_column::text] COLLATE "C",
    format('%s has a unique index on (tenant_id, %s), on plain columns, without WHERE: what REFRESH CONCURRENTLY needs',
           mv, key_column)
)
FROM views ORDER BY mv::text;

SELECT bag_eq(
    format('SELECT tenant_id, %I FROM %s', key_column, mv),
    format('SELECT tenant_id, %s FROM %s', CASE key_column WHEN 'run_id' THEN 'run_id' ELSE 'id' END, base),
    format('%s has one row per row of %s, of every tenant', mv, base)
)
FROM views ORDER BY mv::text;

-- ------------------------------------------------------------ runs: figures
SELECT results_eq(
    $$SELECT run_id, trace_count::int, step_count::int, error_step_count::int, retry_count::int, total_tokens::int
      FROM activity.v_runs_o2 WHERE tenant_id = 't1' ORDER BY run_id$$,
    $$VALUES ('r-bare', 0, 0, 0, 0, 0), ('r-fail', 0, 0, 0, 0, 15), ('r-fail2', 0, 0, 0, 0, 2),
             ('r-steps', 3, 5, 2, 3, 150)$$,
    'trace_count, step_count, error_step_count (failures), retry_count (sum of retries) and total_tokens per run; 0 without traces'
);
SELECT results_eq(
    $$SELECT trace_count::int, step_count::int, error_step_count::int, retry_count::int, total_tokens::int
      FROM activity.v_runs_o2 WHERE tenant_id = 't2' AND run_id = 'r-steps'$$,
    $$VALUES (1, 1, 1, 9, 10)$$,
    't2''s r-steps counts its own trace tr-a only: run_id and trace_id are per tenant'
);
SELECT results_eq(
    $$SELECT state, duration_ms::int, estimated_cost_usd, started_at, completed_at FROM activity.v_runs_o2
      WHERE tenant_id = 't1' AND run_id = 'r-steps'$$,
    $$VALUES ('completed', 30000, 0.25::numeric(12, 6), '2024-09-01 00:00:01+00'::timestamptz,
              '2024-09-01 00:00:31+00'::timestamptz)$$,
    'the run''s own columns are copied as they are'
);
SELECT results_eq(
    $$SELECT run_id, status, state FROM activity.v_runs_o2 WHERE tenant_id = 't1' AND run_id IN ('r-bare', 'r-fail')
      ORDER BY run_id$$,
    $$VALUES ('r-bare', 'running', 'live'), ('r-fail', 'failed', 'completed')$$,
    'status and state of a live and of a completed run'
);

-- ------------------------------------------------------------ incidents: figures
SELECT results_eq(
    $$SELECT n.name, v.lifecycle_state, v.topic FROM incidents.v_incidents_o2 AS v JOIN names AS n ON n.id = v.incident_id
      WHERE n.name IN ('quiet', 'fail', 'fail2', 'res') ORDER BY n.name$$,
    $$VALUES ('fail', 'acked', 'active'), ('fail2', 'resolved', 'resolved'), ('quiet', 'active', 'active'),
             ('res', 'resolved', 'resolved')$$,
    'topic is active for active and acked incidents, resolved for resolved ones'
);
SELECT results_eq(
    $$SELECT n.name, v.event_count::int, v.evidence_count::int, v.recovery_attempted
      FROM incidents.v_incidents_o2 AS v JOIN names AS n ON n.id = v.incident_id
      WHERE n.name IN ('quiet', 'fail', 'res') ORDER BY n.name$$,
    $$VALUES ('fail', 4, 2, TRUE), ('quiet', 0, 0, FALSE), ('res', 2, 1, FALSE)$$,
    'event_count, evidence_count, recovery_attempted (some evidence records an executed recovery)'
);
SELECT results_eq(
    $$SELECT n.name, v.first_seen_at, v.last_seen_at FROM incidents.v_incidents_o2 AS v
      JOIN names AS n ON n.id = v.incident_id WHERE n.name IN ('quiet', 'res') ORDER BY n.name$$,
    $$VALUES ('quiet', '2024-02-01 00:00:00+00'::timestamptz, '2024-02-01 00:00:00+00'::timestamptz),
             ('res', '2024-01-01 00:00:00+00', '2024-01-01 00:00:01.5+00')$$,
    'last_seen_at is the latest timeline event; with no event, the detection time'
);
SELECT results_eq(
    $$SELECT n.name, v.time_to_resolution_ms FROM incidents.v_incidents_o2 AS v JOIN names AS n ON n.id = v.incident_id
      WHERE n.name IN ('res', 'fail2', 'fail') ORDER BY n.name$$,
    $$VALUES ('fail', NULL::bigint), ('fail2', 0::bigint), ('res', 1500::bigint)$$,
    'time_to_resolution_ms: 1500 for a resolution 1.5 s after detection, null while open'
);
SELECT results_eq(
    $$SELECT n.name, v.recurrence_count::int FROM incidents.v_incidents_o2 AS v JOIN names AS n ON n.id = v.incident_id
      WHERE n.name IN ('A', 'B', 'C', 'D', 'E', 'F', 'G') ORDER BY n.name$$,
    $$VALUES ('A', 0), ('B', 1), ('C', 2), ('D', 2), ('E', 2), ('F', 0), ('G', 1)$$,
    'recurrence_count: earlier incidents of the category in the 30 days before (B: A; C: A, B; D and E: B, C, not '
    'A 35 days back nor each other; F: none in 44 days; G: F 29 days back)'
);
SELECT results_eq(
    $$SELECT n.name, v.recurrence_count::int FROM incidents.v_incidents_o2 AS v JOIN names AS n ON n.id = v.incident_id
      WHERE n.name IN ('RL1', 'RL2', 'T2A', 'T2B', 'quiet') ORDER BY n.name$$,
    $$VALUES ('RL1', 0), ('RL2', 1), ('T2A', 0), ('T2B', 1), ('quiet', 0)$$,
    'recurrence_count counts the same tenant and category only (rate_limit and t2''s incidents stay apart; '
    'quiet: res is 31 days back)'
);
SELECT results_eq(
    $$SELECT n.name, v.recurrence_count::int FROM incidents.v_incidents_o2 AS v JOIN names AS n ON n.id = v.incident_id
      WHERE n.name IN ('fail', 'fail2') ORDER BY n.name$$,
    $$VALUES ('fail', 0), ('fail2', 0)$$,
    'incidents detected at the same instant are not earlier than each other'
);

-- ------------------------------------------------------------ match their definition
SELECT bag_eq('SELECT * FROM actual_runs', 'SELECT * FROM expected_runs',
              'every row of activity.v_runs_o2 equals its definition over runs, traces and steps');
SELECT bag_eq('SELECT * FROM actual_incidents', 'SELECT * FROM expected_incidents',
              'every row of incidents.v_incidents_o2 equals its definition over incidents, events and evidence');

-- ------------------------------------------------------------ stale until refreshed
-- A new failure (a run, an incident) and an acknowledgement after the refresh.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, created_at)
VALUES ('t1', 'r-late', 'agent-a', 'failed', 'AGENT_CRASH', '2024-09-02 00:00:00+00');
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT incidents.acknowledge((SELECT id FROM names WHERE name = 'quiet'), 'alice');
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

SELECT is_empty(
    $$SELECT FROM activity.v_runs_o2 WHERE tenant_id = 't1' AND run_id = 'r-late'$$,
    'a run recorded after the refresh is not in activity.v_runs_o2 yet'
);
SELECT results_eq(
    $$SELECT (SELECT count(*)::int FROM incidents.v_incidents_o2 WHERE source_run_id = 'r-late'),
             (SELECT lifecycle_state FROM incidents.v_incidents_o2 WHERE incident_id = (SELECT id FROM names WHERE name = 'quiet'))$$,
    $$VALUES (0, 'active')$$,
    'its incident is not in incidents.v_incidents_o2 yet, and the acknowledgement does not show'
);

SELECT lives_ok('REFRESH MATERIALIZED VIEW CONCURRENTLY activity.v_runs_o2',
                'REFRESH MATERIALIZED VIEW CONCURRENTLY activity.v_runs_o2 works, inside a transaction');
SELECT lives_ok('REFRESH MATERIALIZED VIEW CONCURRENTLY incidents.v_incidents_o2',
                'REFRESH MATERIALIZED VIEW CONCURRENTLY incidents.v_incidents_o2 works, inside a transaction');

SELECT results_eq(
    $$SELECT status, error_code FROM activity.v_runs_o2 WHERE tenant_id = 't1' AND run_id = 'r-late'$$,
    $$VALUES ('failed', 'AGENT_CRASH')$$,
    'after the refresh the run is there'
);
SELECT results_eq(
    $$SELECT (SELECT severity FROM incidents.v_incidents_o2 WHERE source_run_id = 'r-late'),
             (SELECT lifecycle_state FROM incidents.v_incidents_o2 WHERE incident_id = (SELECT id FROM names WHERE name = 'quiet'))$$,
    $$VALUES ('critical', 'acked')$$,
    'and so are its incident and the acknowledgement'
);
SELECT bag_eq('SELECT * FROM actual_runs', 'SELECT * FROM expected_runs',
              'after the concurrent refresh activity.v_runs_o2 still equals its definition');
SELECT bag_eq('SELECT * FROM actual_incidents', 'SELECT * FROM expected_incidents',
              'after the concurrent refresh incidents.v_incidents_o2 still equals its definition');

-- ------------------------------------------------------------ a large tenant's first page
-- t-big: 5000 runs (one in seven failed) and 5000 incidents (one in four
-- critical), beside t-other's 1000 of each, inserted directly with the user
-- triggers (the engines) off: what is measured is the read path only.
SELECT aos.register_tenant(t) FROM (VALUES ('t-big'), ('t-other')) AS v (t);
ALTER TABLE activity.runs DISABLE TRIGGER USER;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, created_at)
SELECT v.t, format('big-%s', g), format('agent-%s', g % 5),
       (ARRAY['queued', 'running', 'succeeded', 'failed', 'retry', 'halted', 'aborted'])[1 + g % 7],
       '2024-06-01 00:00:00+00'::timestamptz + g * INTERVAL '1 minute'
FROM (VALUES ('t-big', 5000), ('t-other', 1000)) AS v (t, n)
CROSS JOIN LATERAL generate_series(1, v.n) AS g;
ALTER TABLE activity.runs ENABLE TRIGGER USER;
ALTER TABLE incidents.incidents DISABLE TRIGGER USER;
INSERT INTO incidents.incidents (tenant_id, title, severity, category, error_code, cause_type, created_at)
SELECT v.t, format('incident big-%s', g), (ARRAY['low', 'medium', 'high', 'critical'])[1 + g % 4], 'manual',
       'MANUAL_STOP', 'system', '2024-06-01 00:00:00+00'::timestamptz + g * INTERVAL '1 minute'
FROM (VALUES ('t-big', 5000), ('t-other', 1000)) AS v (t, n)
CROSS JOIN LATERAL generate_series(1, v.n) AS g;
ALTER TABLE incidents.incidents ENABLE TRIGGER USER;
REFRESH MATERIALIZED VIEW activity.v_runs_o2;
REFRESH MATERIALIZED VIEW incidents.v_incidents_o2;
ANALYZE activity.v_runs_o2;
ANALYZE incidents.v_incidents_o2;

-- The plan of p_sql as aos_api with tenant t-big set (the role switch is undone
-- on error with the failed subtransaction, and on success explicitly).
CREATE FUNCTION pg_temp.api_plan(p_sql text) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
    v_plan json;
BEGIN
    PERFORM set_config('role', 'aos_api', TRUE);
    PERFORM set_config('aos.tenant_id', 't-big', TRUE);
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || p_sql INTO v_plan;
    PERFORM set_config('aos.tenant_id', '', TRUE);
    PERFORM set_config('role', 'none', TRUE);
    RETURN v_plan::jsonb -> 0 -> 'Plan';
END
$fn$;

-- Every node of a plan, with whether it lies under a Limit.
CREATE FUNCTION pg_temp.plan_nodes(p_plan jsonb) RETURNS TABLE (node jsonb, under_limit boolean)
LANGUAGE sql AS $fn$
    WITH RECURSIVE n (node, under_limit) AS (
        SELECT p_plan, FALSE
        UNION ALL
        SELECT c.node, n.under_limit OR n.node ->> 'Node Type' = 'Limit'
        FROM n CROSS JOIN LATERAL jsonb_array_elements(coalesce(n.node -> 'Plans', '[]')) AS c (node)
    )
    SELECT node, under_limit FROM n
$fn$;

-- The top node and the scans under it ("Limit: Index Scan using ... on ..."),
-- and every sort anywhere in the plan.
CREATE FUNCTION pg_temp.first_page_scans(p_plan jsonb) RETURNS text
LANGUAGE sql AS $fn$
    SELECT (p_plan ->> 'Node Type') || ': ' || coalesce(string_agg(
        (n.node ->> 'Node Type') || coalesce(' using ' || (n.node ->> 'Index Name'), '')
        || coalesce(' on ' || (n.node ->> 'Relation Name'), ''), ', ' ORDER BY n.node::text), 'no scan')
    FROM pg_temp.plan_nodes(p_plan) AS n
    WHERE n.under_limit AND n.node ->> 'Node Type' LIKE '%Scan'
$fn$;
CREATE FUNCTION pg_temp.sorts(p_plan jsonb) RETURNS text[]
LANGUAGE sql AS $fn$
    SELECT coalesce(array_agg(n.node ->> 'Node Type'), '{}') FROM pg_temp.plan_nodes(p_plan) AS n
    WHERE n.node ->> 'Node Type' IN ('Sort', 'Incremental Sort')
$fn$;

-- The facades' first-page statement for one filter (plan_cache_mode
-- force_custom_plan: the unused filters fold away), over their api views,
-- which return their rows in page order (no ORDER BY at the facade's level).
CREATE TEMP TABLE first_pages (mv regclass, idx text, sql text) ON COMMIT DROP;
INSERT INTO first_pages VALUES
    ('activity.v_runs_o2', 'v_runs_o2_tenant_created_at_idx',
     $$SELECT * FROM activity.v_runs_o2_api AS r
       WHERE r.tenant_id = aos.current_tenant() AND r.status = 'failed' LIMIT 50$$),
    ('incidents.v_incidents_o2', 'v_incidents_o2_tenant_first_seen_idx',
     $$SELECT * FROM incidents.v_incidents_o2_api AS i
       WHERE i.tenant_id = aos.current_tenant() AND i.severity = 'critical' LIMIT 50$$);

SELECT is(
    pg_temp.first_page_scans(pg_temp.api_plan(sql)),
    format('Limit: Index Scan using %s on %s', idx, split_part(mv::text, '.', 2)),
    format('a first page of t-big''s thousands of rows in %s, as aos_api through the api view, is an Index Scan '
           'using %s under the Limit', mv, idx)
)
FROM first_pages ORDER BY mv::text;

SELECT is(
    pg_temp.sorts(pg_temp.api_plan(sql)),
    '{}'::text[],
    format('and it sorts nothing: the rows of %s come off the index in page order', mv)
)
FROM first_pages ORDER BY mv::text;

-- The facades serve that page right: the newest 50 of t-big's, out of all its matching rows.
SET LOCAL ROLE aos_api;
SELECT set_config('aos.tenant_id', 't-big', TRUE);
SELECT is(
    ARRAY(SELECT x ->> 'run_id' FROM jsonb_array_elements(api.activity_runs(status => 'failed') -> 'items') AS x)
    || (api.activity_runs(status => 'failed') ->> 'total'),
    ARRAY(SELECT format('big-%s', g) FROM generate_series(5000, 1, -1) AS g WHERE g % 7 = 3 LIMIT 50)
    || (SELECT count(*)::text FROM generate_series(1, 5000) AS g WHERE g % 7 = 3),
    'api.activity_runs(status => failed) of t-big: its 50 newest failed runs of 714, newest first'
);
SELECT is(
    ARRAY(SELECT x ->> 'title' FROM jsonb_array_elements(api.incidents(severity => 'critical') -> 'items') AS x)
    || (api.incidents(severity => 'critical') ->> 'total'),
    ARRAY(SELECT format('incident big-%s', g) FROM generate_series(5000, 1, -1) AS g WHERE g % 4 = 3 LIMIT 50)
    || (SELECT count(*)::text FROM generate_series(1, 5000) AS g WHERE g % 4 = 3),
    'api.incidents(severity => critical) of t-big: its 50 newest critical incidents of 1250, newest first'
);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

-- ------------------------------------------------------------ links of a proposal
-- t-big also has 1000 proposals (inserted by hand, no incident of their own):
-- "cap 1" is linked to 20 of its incidents, "cap 2" to 3000 (a storm).
INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule, created_at)
SELECT 't-big', format('cap %s', g), 'cost_cap_policy',
       jsonb_build_object('rule_type', 'max_value', 'conditions', jsonb_build_object('metric', 'input_tokens', 'max', g),
                          'enforcement', 'warn'),
       '2024-06-01 00:00:00+00'::timestamptz + g * INTERVAL '1 minute'
FROM generate_series(1, 1000) AS g;
-- Each link made when its incident was detected, as the engine makes them.
INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id, linked_at)
SELECT 't-big', i.id, p.id, i.created_at
FROM (SELECT x.id, x.created_at, row_number() OVER (ORDER BY x.created_at) AS n FROM incidents.incidents AS x
      WHERE x.tenant_id = 't-big') AS i
JOIN policies.policy_proposals AS p
  ON p.tenant_id = 't-big' AND p.proposal_name = CASE WHEN i.n <= 20 THEN 'cap 1' ELSE 'cap 2' END
WHERE i.n <= 3020;
ANALYZE incidents.incidents;
ANALYZE policies.policy_proposals;
ANALYZE policies.proposal_incidents;

-- The index names and the sequential scans of a plan.
CREATE FUNCTION pg_temp.indexes(p_plan jsonb) RETURNS text[]
LANGUAGE sql AS $fn$
    SELECT coalesce(array_agg(DISTINCT n.node ->> 'Index Name' ORDER BY n.node ->> 'Index Name'), '{}')
    FROM pg_temp.plan_nodes(p_plan) AS n WHERE n.node ? 'Index Name'
$fn$;
CREATE FUNCTION pg_temp.seq_scans(p_plan jsonb) RETURNS text[]
LANGUAGE sql AS $fn$
    SELECT coalesce(array_agg(n.node ->> 'Relation Name' ORDER BY n.node ->> 'Relation Name'), '{}')
    FROM pg_temp.plan_nodes(p_plan) AS n WHERE n.node ->> 'Node Type' = 'Seq Scan'
$fn$;

-- The facades' statements as their functions run them: with parameters ($1 the
-- tenant, $2 the id), under the generic plan a session keeps for every call.
CREATE FUNCTION pg_temp.generic_plan(p_sql text, p_id uuid) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
    v_plan json;
BEGIN
    EXECUTE 'PREPARE pgtap_link_read (text, uuid) AS ' || p_sql;
    PERFORM set_config('plan_cache_mode', 'force_generic_plan', TRUE);
    PERFORM set_config('role', 'aos_api', TRUE);
    PERFORM set_config('aos.tenant_id', 't-big', TRUE);
    EXECUTE format('EXPLAIN (FORMAT JSON) EXECUTE pgtap_link_read(%L, %L)', 't-big', p_id) INTO v_plan;
    PERFORM set_config('aos.tenant_id', '', TRUE);
    PERFORM set_config('role', 'none', TRUE);
    PERFORM set_config('plan_cache_mode', 'auto', TRUE);
    DEALLOCATE pgtap_link_read;
    RETURN v_plan::jsonb -> 0 -> 'Plan';
END
$fn$;
CREATE TEMP TABLE link_reads (n integer, indexes text[], sql text, id uuid, description text) ON COMMIT DROP;
INSERT INTO link_reads
SELECT 1, '{incidents_pkey,proposal_incidents_proposal_idx}'::text[],
       $$SELECT i.id, i.source_run_id, i.severity, i.lifecycle_state, i.error_code, i.created_at, l.linked_at
         FROM (
             SELECT k.incident_id, k.linked_at FROM policies.proposal_incidents AS k
             WHERE k.tenant_id = $1 AND k.proposal_id = $2
             ORDER BY k.linked_at DESC, k.incident_id DESC
             LIMIT 50
         ) AS l
         CROSS JOIN LATERAL (
             SELECT * FROM incidents.incidents AS x WHERE x.tenant_id = $1 AND x.id = l.incident_id OFFSET 0
         ) AS i$$,
       p.id,
       'api.policy_proposal''s incidents of the storm''s proposal (3000 links), among t-big''s 5000 incidents'
FROM policies.policy_proposals AS p WHERE p.tenant_id = 't-big' AND p.proposal_name = 'cap 2'
UNION ALL
(SELECT 2, '{policy_proposals_pkey,proposal_incidents_pkey}'::text[],
       $$SELECT to_jsonb(p)
         FROM policies.proposal_incidents AS l
         INNER JOIN policies.policy_proposals AS p ON p.tenant_id = l.tenant_id AND p.id = l.proposal_id
         WHERE l.tenant_id = $1 AND l.incident_id = $2$$,
       l.incident_id,
       'api.incident_evidence''s proposal of an incident of the storm, among t-big''s 1000 proposals'
FROM policies.proposal_incidents AS l
JOIN policies.policy_proposals AS p ON p.tenant_id = l.tenant_id AND p.id = l.proposal_id
WHERE l.tenant_id = 't-big' AND p.proposal_name = 'cap 2'
LIMIT 1);

SELECT is(
    pg_temp.indexes(pg_temp.generic_plan(sql, id)),
    indexes,
    format('%s reads through %s', description, array_to_string(indexes, ' and '))
)
FROM link_reads ORDER BY n;
SELECT is(
    pg_temp.seq_scans(pg_temp.generic_plan(sql, id)),
    '{}'::text[],
    format('%s scans no table sequentially', description)
)
FROM link_reads ORDER BY n;
-- Its statements read by key and the links newest first with a LIMIT, so one
-- generic plan serves a single link and a storm alike, and is made once per
-- session rather than at every call.
SELECT ok(
    'plan_cache_mode=force_generic_plan' = ANY (p.proconfig),
    'api.policy_proposal keeps one plan for every proposal (plan_cache_mode = force_generic_plan)'
)
FROM pg_proc AS p WHERE p.oid = 'api.policy_proposal(uuid)'::regprocedure;

SET LOCAL ROLE aos_api;
SELECT set_config('aos.tenant_id', 't-big', TRUE);
SELECT is(
    (SELECT jsonb_build_object('total', d -> 'incidents_total', 'listed', jsonb_array_length(d -> 'incidents'),
                               'first', d #>> '{incidents,0,created_at}', 'last', d #>> '{incidents,49,created_at}')
     FROM (SELECT api.policy_proposal(p.id) AS d FROM policies.policy_proposals AS p
           WHERE p.proposal_name = 'cap 2') AS x),
    jsonb_build_object('total', 3000, 'listed', 50,
                       'first', to_jsonb('2024-06-01 00:00:00+00'::timestamptz + 3020 * INTERVAL '1 minute') #>> '{}',
                       'last', to_jsonb('2024-06-01 00:00:00+00'::timestamptz + 2971 * INTERVAL '1 minute') #>> '{}'),
    'api.policy_proposal of the storm: incidents_total 3000, the newest 50 listed (incidents 3020 down to 2971)'
);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
