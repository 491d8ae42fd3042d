-- The WorkerRunner API (README.md, How a worker reports runs): activity.start_run, record_step and
-- finish_run. What each writes, what each rejects (22023 invalid input, P0002
-- unknown run, 55000 wrong transition, 23505/23503 key violations) and that a
-- rejected call writes nothing; who may call it (aos_worker, aos_scenario
-- within its tenant, not aos_operator); a completed run is final even for
-- plain SQL (activity.tg_runs__check_transition).
BEGIN;

SELECT aos.register_tenant(t) FROM (VALUES ('t1'), ('t2')) AS v (t);
-- r-timed reports fixed times in 2030: widen the worker's window around now for them.
SELECT set_config('aos.timestamp_window', '10 years', TRUE);

-- Calls that must be rejected: who calls, with which tenant, the SQLSTATE.
-- aosdb_test.rejections() runs each one and checks right after it that every
-- table holds exactly what it held before the call.
CREATE TEMP TABLE rejected (
    n serial, who name NOT NULL, tenant text, sql text NOT NULL, errcode text NOT NULL, description text NOT NULL
);
GRANT SELECT ON rejected TO PUBLIC;

INSERT INTO rejected (who, tenant, sql, errcode, description) VALUES
    -- start_run
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"colour": "red"}')$$, '22023',
     'start_run rejects an unknown option key (22023)'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '["status"]')$$, '22023',
     'start_run rejects options that are not a JSON object (22023)'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, NULL)$$, '22023',
     'start_run rejects null options (22023)'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"status": "succeeded"}')$$,
     '22023', 'start_run rejects a terminal start status (22023)'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"status": "paused"}')$$,
     '22023', 'start_run rejects an unknown status (22023)'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', '  ', 'agent-a', NULL)$$, '22023',
     'start_run rejects a blank run_id (22023)'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', NULL, 'agent-a', NULL)$$, '22023',
     'start_run rejects a null run_id (22023)'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', '', NULL)$$, '22023',
     'start_run rejects a blank agent_id (22023)'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', NULL, NULL)$$, '22023',
     'start_run rejects a null agent_id (22023)'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"attempts": -1}')$$, '22023',
     'start_run rejects negative attempts (22023)'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"attempts": 1.5}')$$, '22023',
     'start_run rejects fractional attempts instead of rounding them (22023)'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "retry_count": 0.5}')$$,
     '22023', 'record_step rejects a fractional retry_count (22023)'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'succeeded', '{"input_tokens": 10.25}')$$, '22023',
     'finish_run rejects fractional tokens (22023)'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-live', 'agent-a', NULL)$$, '23505',
     'start_run rejects a run_id already used in the tenant (23505)'),
    ('aos_worker', NULL, $$SELECT activity.start_run('nope', 'r-new', 'agent-a', NULL)$$, '23503',
     'start_run rejects an unknown tenant (23503)'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"trace_id": "tr-live"}')$$,
     '23505', 'start_run with a trace_id already used writes neither run nor trace (23505)'),
    -- record_step
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"status": "success"}')$$, '22023',
     'record_step rejects a step without skill_name (22023)'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": " ", "status": "success"}')$$,
     '22023', 'record_step rejects a blank skill_name (22023)'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "search"}')$$, '22023',
     'record_step rejects a step without status (22023)'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "search", "status": "ok"}')$$,
     '22023', 'record_step rejects an unknown step status (22023)'),
    ('aos_worker', NULL,
     $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "search", "status": "success", "params": [1]}')$$,
     '22023', 'record_step rejects params that are an array (22023)'),
    ('aos_worker', NULL,
     $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "search", "status": "success", "params": "q"}')$$,
     '22023', 'record_step rejects params that are a string (22023)'),
    ('aos_worker', NULL,
     $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "search", "status": "success", "cost_usd": -0.01}')$$,
     '22023', 'record_step rejects a negative cost_usd (22023)'),
    ('aos_worker', NULL,
     $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "search", "status": "success", "duration_ms": -1}')$$,
     '22023', 'record_step rejects a negative duration_ms (22023)'),
    ('aos_worker', NULL,
     $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "search", "status": "retry", "retry_count": -1}')$$,
     '22023', 'record_step rejects a negative retry_count (22023)'),
    ('aos_worker', NULL,
     $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "search", "status": "success", "cost_usd": "1"}')$$,
     '22023', 'record_step rejects a cost_usd that is not a number (22023)'),
    ('aos_worker', NULL,
     $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "search", "status": "success", "colour": "red"}')$$,
     '22023', 'record_step rejects an unknown step key (22023)'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '[]')$$, '22023',
     'record_step rejects a step that is not a JSON object (22023)'),
    ('aos_worker', NULL,
     $$SELECT activity.record_step('t1', 'r-other', '{"trace_id": "tr-live", "skill_name": "s", "status": "success"}')$$,
     '22023', 'record_step rejects a trace_id that belongs to another run (22023)'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-nope', '{"skill_name": "search", "status": "success"}')$$,
     'P0002', 'record_step rejects an unknown run (P0002)'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t2', 'r-live', '{"skill_name": "search", "status": "success"}')$$,
     'P0002', 'record_step does not find a run of another tenant (P0002)'),
    -- finish_run
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'running')$$, '22023',
     'finish_run rejects the non-terminal status running (22023)'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'queued')$$, '22023',
     'finish_run rejects the non-terminal status queued (22023)'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'retry')$$, '22023',
     'finish_run rejects the non-terminal status retry (22023)'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', NULL)$$, '22023',
     'finish_run rejects a null status (22023)'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'done')$$, '22023',
     'finish_run rejects an unknown status (22023)'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'succeeded', '{"input_tokens": -1}')$$, '22023',
     'finish_run rejects negative input_tokens (22023)'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'succeeded', '{"output_tokens": -1}')$$, '22023',
     'finish_run rejects negative output_tokens (22023)'),
    ('aos_worker', NULL,
     $$SELECT activity.finish_run('t1', 'r-live', 'failed', '{"estimated_cost_usd": -0.000001}')$$, '22023',
     'finish_run rejects a negative estimated_cost_usd, and the failure it reports opens no incident (22023)'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'succeeded', '{"input_tokens": "many"}')$$,
     '22023', 'finish_run rejects tokens that are not a number (22023)'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'succeeded', '{"colour": "red"}')$$, '22023',
     'finish_run rejects an unknown outcome key (22023)'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'succeeded', '[]')$$, '22023',
     'finish_run rejects an outcome that is not a JSON object (22023)'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-nope', 'succeeded')$$, 'P0002',
     'finish_run rejects an unknown run (P0002)'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t2', 'r-live', 'succeeded')$$, 'P0002',
     'finish_run does not find a run of another tenant (P0002)'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-failed', 'succeeded')$$, '55000',
     'finish_run rejects another terminal status for a failed run (55000)'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-done', 'aborted')$$, '55000',
     'finish_run rejects another terminal status for a succeeded run (55000)'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-failed', 'failed', '{"input_tokens": -5}')$$, '22023',
     'finish_run rejects negative tokens even when it re-delivers the same final status (22023)'),
    -- a completed run is final for plain SQL too
    ('aos_worker', NULL, $$UPDATE activity.runs SET status = 'succeeded' WHERE tenant_id = 't1' AND run_id = 'r-failed'$$,
     '55000', 'a direct UPDATE of a failed run to succeeded raises 55000'),
    ('aos_worker', NULL, $$UPDATE activity.runs SET status = 'running' WHERE tenant_id = 't1' AND run_id = 'r-done'$$,
     '55000', 'a direct UPDATE of a succeeded run back to running raises 55000'),
    ('aos_worker', NULL, $$UPDATE activity.runs SET status = 'failed' WHERE tenant_id = 't1' AND run_id IN ('r-done', 'r-live')$$,
     '55000', 'a bulk UPDATE that moves one completed run raises 55000 for the whole statement'),
    -- who may call the API
    ('aos_operator', 't1', $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL)$$, '42501',
     'aos_operator cannot call start_run (42501)'),
    ('aos_operator', 't1', $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success"}')$$,
     '42501', 'aos_operator cannot call record_step (42501)'),
    ('aos_operator', 't1', $$SELECT activity.finish_run('t1', 'r-live', 'succeeded')$$, '42501',
     'aos_operator cannot call finish_run (42501)'),
    ('aos_api', 't1', $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL)$$, '42501',
     'aos_api cannot call start_run (42501)'),
    ('aos_scenario', 't1', $$SELECT activity.start_run('t2', 'r-new', 'agent-a', NULL)$$, '42501',
     'aos_scenario with tenant t1 cannot start a run for t2 (row-level security, 42501)'),
    ('aos_scenario', 't1', $$SELECT activity.record_step('t2', 'r-t2', '{"skill_name": "s", "status": "success"}')$$,
     'P0002', 'aos_scenario with tenant t1 does not find a run of t2 for record_step (P0002)'),
    ('aos_scenario', 't1', $$SELECT activity.finish_run('t2', 'r-t2', 'failed')$$, 'P0002',
     'aos_scenario with tenant t1 does not find a run of t2 for finish_run (P0002)'),
    ('aos_scenario', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL)$$, '28000',
     'aos_scenario with no tenant set cannot start a run (28000)');

SELECT plan(
    6      -- start_run
    + 7    -- record_step
    + 10   -- finish_run
    + 6    -- aos_worker by plain SQL, aos_scenario within its tenant
    + (SELECT count(*)::int * 2 FROM rejected)
);

-- ---------------------------------------------------------------- start_run
SET LOCAL ROLE aos_worker;
SELECT set_config('test.r_live', activity.start_run('t1', 'r-live', 'agent-a', 'summarise the logs')::text, TRUE);
SELECT set_config('test.r_queued',
    activity.start_run('t1', 'r-queued', 'agent-a', NULL, '{"status": "queued", "attempts": 2}')::text, TRUE);
SELECT activity.start_run('t1', 'r-timed', 'agent-a', NULL,
    '{"started_at": "2030-01-01T12:00:00Z", "trace_id": "tr-timed", "is_synthetic": true,
      "synthetic_scenario_id": "SDSR-T-030"}');
RESET ROLE;

SELECT is(
    current_setting('test.r_live'),
    (SELECT id::text FROM activity.runs WHERE tenant_id = 't1' AND run_id = 'r-live'),
    'start_run returns the uuid of the run it created'
);
SELECT results_eq(
    $$SELECT agent_id, goal, status, state, attempts, started_at = now(), completed_at, policy_violation
      FROM activity.runs WHERE tenant_id = 't1' AND run_id = 'r-live'$$,
    $$VALUES ('agent-a', 'summarise the logs', 'running', 'live', 1, TRUE, NULL::timestamptz, FALSE)$$,
    'start_run records a running, live run started now'
);
SELECT results_eq(
    $$SELECT id::text, status, state, attempts, started_at FROM activity.runs WHERE tenant_id = 't1' AND run_id = 'r-queued'$$,
    format('VALUES (%L, %L, %L, 2, NULL::timestamptz)', current_setting('test.r_queued'), 'queued', 'live'),
    'start_run with {"status": "queued"} records a queued run, not started yet, with the given attempts'
);
SELECT results_eq(
    $$SELECT started_at, is_synthetic, synthetic_scenario_id FROM activity.runs WHERE tenant_id = 't1' AND run_id = 'r-timed'$$,
    $$VALUES ('2030-01-01 12:00:00+00'::timestamptz, TRUE, 'SDSR-T-030')$$,
    'start_run takes started_at and the synthetic marks from its options'
);
SELECT results_eq(
    $$SELECT trace_id, run_id, status, is_synthetic, synthetic_scenario_id FROM activity.aos_traces
      WHERE tenant_id = 't1' AND run_id = 'r-timed'$$,
    $$VALUES ('tr-timed', 'r-timed', 'running', TRUE, 'SDSR-T-030')$$,
    'start_run with a trace_id opens that trace, running, with the run''s synthetic marks'
);
SELECT is_empty(
    $$SELECT FROM activity.aos_traces WHERE tenant_id = 't1' AND run_id IN ('r-live', 'r-queued')$$,
    'start_run without a trace_id opens no trace'
);

-- -------------------------------------------------------------- record_step
SET LOCAL ROLE aos_worker;
SELECT is(
    activity.record_step('t1', 'r-live', '{"skill_name": "search", "status": "success", "params": {"q": "logs"},
                                           "cost_usd": 0.25, "duration_ms": 120}'),
    0, 'record_step returns 0 for the first step of a run'
);
SELECT is(
    activity.record_step('t1', 'r-live', '{"skill_name": "fetch", "status": "retry", "retry_count": 2}'),
    1, 'record_step returns 1 for the second step'
);
SELECT is(
    activity.record_step('t1', 'r-live', '{"skill_name": "parse", "status": "failure", "outcome_code": "E_PARSE"}'),
    2, 'record_step returns 2 for the third step'
);
SELECT is(
    activity.record_step('t1', 'r-live', '{"trace_id": "tr-live", "skill_name": "search", "status": "skipped"}'),
    0, 'record_step numbers the steps of another trace of the same run from 0'
);
SELECT activity.record_step('t1', 'r-timed', '{"trace_id": "tr-timed", "skill_name": "search", "status": "success"}');
RESET ROLE;

SELECT results_eq(
    $$SELECT trace_id, status FROM activity.aos_traces WHERE tenant_id = 't1' AND run_id = 'r-live' ORDER BY trace_id$$,
    $$VALUES ('r-live', 'running'), ('tr-live', 'running')$$,
    'record_step creates the trace on first use; trace_id defaults to the run_id'
);
SELECT results_eq(
    $$SELECT step_index, skill_name, status, outcome_code, params, cost_usd, duration_ms, retry_count, level
      FROM activity.aos_trace_steps WHERE tenant_id = 't1' AND trace_id = 'r-live' ORDER BY step_index$$,
    $$VALUES (0, 'search', 'success', NULL, '{"q": "logs"}'::jsonb, 0.25::numeric, 120::bigint, 0, 'info'),
             (1, 'fetch', 'retry', NULL, '{}', 0, NULL, 2, 'warn'),
             (2, 'parse', 'failure', 'E_PARSE', '{}', 0, NULL, 0, 'error')$$,
    'record_step stores each step as given, with defaults for what it omits'
);
SELECT results_eq(
    $$SELECT s.step_index, s.is_synthetic, s.synthetic_scenario_id FROM activity.aos_trace_steps AS s
      WHERE s.tenant_id = 't1' AND s.trace_id = 'tr-timed'$$,
    $$VALUES (0, TRUE, 'SDSR-T-030')$$,
    'record_step appends to the trace start_run opened and copies the run''s synthetic marks to the step'
);

-- ---------------------------------------------------------------- finish_run
SET LOCAL ROLE aos_worker;
SELECT activity.finish_run('t1', 'r-timed', 'succeeded',
    '{"input_tokens": 1200, "output_tokens": 300, "estimated_cost_usd": 0.042, "completed_at": "2030-01-01T12:00:02.5Z"}');
SELECT activity.start_run('t1', 'r-failed', 'agent-b', NULL);
SELECT activity.record_step('t1', 'r-failed', '{"skill_name": "search", "status": "failure"}');
SELECT activity.finish_run('t1', 'r-failed', 'failed',
    '{"error_code": "EXECUTION_TIMEOUT", "error_message": "step 0 exceeded 300s", "attempts": 3, "duration_ms": 777}');
SELECT activity.start_run('t1', 'r-halted', 'agent-b', NULL, '{"trace_id": "tr-halted"}');
SELECT activity.finish_run('t1', 'r-halted', 'halted');
SELECT activity.finish_run('t1', 'r-queued', 'aborted');
SELECT activity.start_run('t1', 'r-done', 'agent-b', NULL);
SELECT activity.finish_run('t1', 'r-done', 'succeeded');
SELECT activity.start_run('t1', 'r-other', 'agent-b', NULL);
RESET ROLE;

SELECT results_eq(
    $$SELECT status, state, input_tokens, output_tokens, estimated_cost_usd, completed_at, duration_ms
      FROM activity.runs WHERE tenant_id = 't1' AND run_id = 'r-timed'$$,
    $$VALUES ('succeeded', 'completed', 1200::bigint, 300::bigint, 0.042::numeric,
              '2030-01-01 12:00:02.5+00'::timestamptz, 2500::bigint)$$,
    'finish_run sets status, outcome, completed_at and the duration since started_at'
);
SELECT results_eq(
    $$SELECT status, state, error_code, error_message, attempts, completed_at = now(), duration_ms
      FROM activity.runs WHERE tenant_id = 't1' AND run_id = 'r-failed'$$,
    $$VALUES ('failed', 'completed', 'EXECUTION_TIMEOUT', 'step 0 exceeded 300s', 3, TRUE, 777::bigint)$$,
    'finish_run failed records error code, message, attempts, completed_at now and an explicit duration_ms'
);
SELECT results_eq(
    $$SELECT status, state, started_at, completed_at = now(), duration_ms FROM activity.runs
      WHERE tenant_id = 't1' AND run_id = 'r-queued'$$,
    $$VALUES ('aborted', 'completed', NULL::timestamptz, TRUE, NULL::bigint)$$,
    'finish_run can abort a queued run, which has no duration'
);
SELECT results_eq(
    $$SELECT t.run_id, t.trace_id, t.status, t.completed_at FROM activity.aos_traces AS t
      WHERE t.tenant_id = 't1' AND t.run_id IN ('r-timed', 'r-failed', 'r-halted') ORDER BY t.run_id, t.trace_id$$,
    $$VALUES ('r-failed', 'r-failed', 'failed', now()),
             ('r-halted', 'tr-halted', 'aborted', now()),
             ('r-timed', 'tr-timed', 'completed', '2030-01-01 12:00:02.5+00'::timestamptz)$$,
    'finish_run closes the run''s running traces: completed, failed, or aborted for halted'
);
SELECT results_eq(
    $$SELECT status FROM activity.aos_traces WHERE tenant_id = 't1' AND run_id = 'r-live' ORDER BY trace_id$$,
    $$VALUES ('running'), ('running')$$,
    'finish_run leaves the traces of other runs running'
);
SELECT results_eq(
    $$SELECT count(*)::int FROM incidents.incidents WHERE tenant_id = 't1' AND source_run_id = 'r-failed'$$,
    $$VALUES (1)$$,
    'finish_run failed opens one incident'
);

SELECT set_config('test.before', aosdb_test.state(), TRUE);
SET LOCAL ROLE aos_worker;
SELECT lives_ok(
    $$SELECT activity.finish_run('t1', 'r-failed', 'failed', '{"error_code": "AGENT_CRASH"}')$$,
    'finish_run with the final status the run already has is accepted'
);
RESET ROLE;
SELECT is(aosdb_test.state(), current_setting('test.before'),
    'finish_run re-delivering the final status writes nothing: no second incident, no change to the run');
SELECT results_eq(
    $$SELECT count(*)::int FROM incidents.incidents WHERE tenant_id = 't1' AND source_run_id = 'r-failed'$$,
    $$VALUES (1)$$,
    'the failed run still has exactly one incident after the re-delivery'
);
SET LOCAL ROLE aos_worker;
SELECT lives_ok(
    $$UPDATE activity.runs SET status = 'failed', error_message = 'again' WHERE tenant_id = 't1' AND run_id = 'r-failed'$$,
    'a direct UPDATE that keeps a completed run''s status is allowed'
);
RESET ROLE;

-- ------------------------------------------- plain SQL and the other callers
SET LOCAL ROLE aos_worker;
SELECT lives_ok(
    $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t2', 'r-t2', 'agent-a', 'running')$$,
    'aos_worker can insert a run of any tenant directly'
);
RESET ROLE;

SET LOCAL ROLE aos_scenario;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT lives_ok(
    $$SELECT activity.start_run('t1', 'r-sc', 'agent-s', NULL)$$,
    'aos_scenario with tenant t1 can start a run of t1'
);
SELECT is(
    activity.record_step('t1', 'r-sc', '{"skill_name": "search", "status": "success"}'),
    0, 'aos_scenario with tenant t1 can record a step of its run'
);
SELECT lives_ok(
    $$SELECT activity.finish_run('t1', 'r-sc', 'failed', '{"error_code": "AGENT_CRASH"}')$$,
    'aos_scenario with tenant t1 can finish its run'
);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;
SELECT results_eq(
    $$SELECT r.status, t.status, i.severity FROM activity.runs AS r
      JOIN activity.aos_traces AS t ON t.tenant_id = r.tenant_id AND t.run_id = r.run_id
      JOIN incidents.incidents AS i ON i.tenant_id = r.tenant_id AND i.source_run_id = r.run_id
      WHERE r.tenant_id = 't1' AND r.run_id = 'r-sc'$$,
    $$VALUES ('failed', 'failed', 'critical')$$,
    'the scenario runner''s run, trace and incident exist as the worker''s would'
);
SELECT results_eq(
    $$SELECT count(*)::int FROM activity.runs WHERE tenant_id = 't2'$$,
    $$VALUES (1)$$,
    'tenant t2 holds only the run the worker inserted'
);

-- -------------------------------------------------- rejected calls, one by one
SELECT * FROM aosdb_test.rejections();

SELECT * FROM finish();
ROLLBACK;
