-- Value bounds (0014 and the worker API): a value the database cannot process
-- later is refused when it arrives. Through the worker API every such value
-- raises 22023 (a trace_id collision 23505, a step after finish_run 55000)
-- with a one-line message naming the field, and writes nothing; by plain SQL
-- a named CHECK refuses it, or for a worker's timestamps the clock-window
-- trigger (23514 <table>_<column>_window). The largest accepted values still go through
-- the PolicyEngine and a refresh of activity.v_runs_o2.
BEGIN;

SELECT aos.register_tenant(t) FROM (VALUES ('t1'), ('t2')) AS v (t);

-- The fixture: a live run, a completed one, and a run whose run_id another
-- run will try to take as its trace_id.
SET LOCAL ROLE aos_worker;
SELECT activity.start_run('t1', 'r-live', 'agent-a', NULL);
SELECT activity.start_run('t1', 'r-done', 'agent-a', NULL);
SELECT activity.finish_run('t1', 'r-done', 'succeeded');
SELECT activity.start_run('t1', 'victim', 'agent-a', NULL);
SELECT activity.start_run('t1', 'r-traced', 'agent-a', NULL, '{"trace_id": "tr-a"}');
RESET ROLE;

-- Refused calls: the SQL, the SQLSTATE, a pattern its one-line message must match.
CREATE TEMP TABLE refused (n serial, sql text NOT NULL, errcode text NOT NULL, pattern text NOT NULL, why text NOT NULL);
GRANT SELECT ON refused TO PUBLIC;
INSERT INTO refused (sql, errcode, pattern, why) VALUES
    -- tokens: 9e18 + 9e18 overflowed a bigint in the PolicyEngine and the view
    ($$SELECT activity.finish_run('t1', 'r-live', 'succeeded',
        '{"input_tokens": 9000000000000000000, "output_tokens": 9000000000000000000}')$$,
     '22023', '^input_tokens must be at most 1000000000000', '9e18 input and output tokens'),
    ($$SELECT activity.finish_run('t1', 'r-live', 'succeeded', '{"output_tokens": 1000000000001}')$$,
     '22023', '^output_tokens must be at most', 'output_tokens one over 10^12'),
    ($$SELECT activity.finish_run('t1', 'r-live', 'succeeded', '{"input_tokens": 1e19}')$$,
     '22023', '^input_tokens must be at most', '1e19 input tokens (was 22003 from the bigint cast)'),
    ($$SELECT activity.finish_run('t1', 'r-live', 'succeeded', '{"attempts": 3000000000}')$$,
     '22023', '^attempts must be at most 1000000', '3e9 attempts (was 22003 from the integer cast)'),
    ($$SELECT activity.finish_run('t1', 'r-live', 'succeeded', '{"duration_ms": 1e14}')$$,
     '22023', '^duration_ms must be at most', 'a duration over 10^13 ms'),
    ($$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "retry", "retry_count": 10000000}')$$,
     '22023', '^retry_count must be at most', 'a retry_count over 10^6'),
    -- timestamps: every later finish_run of such a run failed
    ($$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"started_at": "infinity"}')$$,
     '22023', '^started_at must be within 1 day of now', 'started_at infinity'),
    ($$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"started_at": "-infinity"}')$$,
     '22023', '^started_at must be within', 'started_at -infinity'),
    ($$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"started_at": "4713-01-01 00:00:00+00 BC"}')$$,
     '22023', '^started_at must be within', 'started_at in 4713 BC'),
    ($$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"started_at": "2999-01-01T00:00:00Z"}')$$,
     '22023', '^started_at must be within', 'started_at in 2999'),
    ($$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"started_at": "294277-01-01"}')$$,
     '22023', '^started_at must be a timestamp', 'started_at past what timestamptz holds (was 22008)'),
    ($$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"started_at": "yesterday-ish"}')$$,
     '22023', '^started_at must be a timestamp', 'started_at that is no timestamp (was 22007)'),
    ($$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"started_at": 1700000000}')$$,
     '22023', '^started_at must be a timestamp string', 'started_at as a number'),
    ($$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL,
        format('{"started_at": "%s"}', now() - interval '25 hours')::jsonb)$$,
     '22023', '^started_at must be within 1 day of now', 'started_at 25 hours ago, outside the default window'),
    ($$SELECT activity.finish_run('t1', 'r-live', 'succeeded', '{"completed_at": "infinity"}')$$,
     '22023', '^completed_at must be within', 'completed_at infinity'),
    ($$SELECT activity.finish_run('t1', 'r-live', 'succeeded',
        format('{"completed_at": "%s"}', now() - interval '1 hour')::jsonb)$$,
     '22023', '^completed_at .* is before the run''s started_at', 'completed_at before started_at (was 23514)'),
    ($$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "occurred_at": "2999-01-01"}')$$,
     '22023', '^occurred_at must be within', 'occurred_at in 2999'),
    -- costs: numeric(12, 6) rounded the rest away, or overflowed with 22003
    ($$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "cost_usd": 0.0000004}')$$,
     '22023', '^cost_usd has more than 6 decimals', 'a step cost below a micro-dollar (was stored as 0)'),
    ($$SELECT activity.finish_run('t1', 'r-live', 'succeeded', '{"estimated_cost_usd": 1.0000015}')$$,
     '22023', '^estimated_cost_usd has more than 6 decimals', 'a run cost with 7 decimals (was rounded)'),
    ($$SELECT activity.finish_run('t1', 'r-live', 'succeeded', '{"estimated_cost_usd": 1000000}')$$,
     '22023', '^estimated_cost_usd must be at most 999999.999999', 'a run cost of 10^6 USD (was 22003)'),
    -- trace ids share the run ids' namespace: a run's default trace is its run_id
    ($$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"trace_id": "victim"}')$$,
     '23505', '^trace_id victim is the run_id of another run', 'start_run with another run''s run_id as trace_id'),
    ($$SELECT activity.record_step('t1', 'r-live', '{"trace_id": "victim", "skill_name": "s", "status": "success"}')$$,
     '23505', '^trace_id victim is the run_id of another run', 'record_step with another run''s run_id as trace_id'),
    ($$SELECT activity.start_run('t1', 'tr-a', 'agent-a', NULL)$$,
     '23505', '^run_id tr-a is already the trace_id of a trace of run r-traced', 'a run_id that is another run''s trace_id'),
    ($$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"trace_id": "tr-a"}')$$,
     '23505', '^trace_id tr-a is already used by run r-traced', 'a trace_id already used'),
    -- a step after finish_run would never be evaluated
    ($$SELECT activity.record_step('t1', 'r-done', '{"skill_name": "shell_exec", "status": "success"}')$$,
     '55000', '^run r-done is succeeded already: a step recorded now would never be evaluated',
     'record_step on a completed run'),
    -- the window setting itself
    ($$SELECT set_config('aos.timestamp_window', 'a while', TRUE),
              activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"started_at": "2026-01-01"}')$$,
     '22023', '^aos.timestamp_window must be an interval', 'an aos.timestamp_window that is no interval');

-- Plain SQL: a named CHECK, or for a worker the clock-window trigger (which fires before the
-- CHECKs, so a worker's infinity is refused as outside the window), refuses what the API would.
CREATE TEMP TABLE refused_sql (n serial, sql text NOT NULL, constraint_name text NOT NULL, why text NOT NULL);
GRANT SELECT ON refused_sql TO PUBLIC;
INSERT INTO refused_sql (sql, constraint_name, why) VALUES
    ($$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, input_tokens, output_tokens)
       VALUES ('t1', 'r-sql', 'a', 'succeeded', 9000000000000000000, 9000000000000000000)$$,
     'runs_input_tokens_max', '9e18 tokens inserted directly'),
    ($$UPDATE activity.runs SET output_tokens = 9000000000000000000 WHERE tenant_id = 't1' AND run_id = 'r-live'$$,
     'runs_output_tokens_max', '9e18 output tokens by UPDATE'),
    ($$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, started_at)
       VALUES ('t1', 'r-sql', 'a', 'running', 'infinity')$$,
     'runs_started_at_window', 'started_at infinity inserted directly'),
    ($$UPDATE activity.runs SET started_at = '2999-01-01' WHERE tenant_id = 't1' AND run_id = 'r-live'$$,
     'runs_started_at_window', 'started_at 2999 by UPDATE'),
    ($$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, occurred_at)
       VALUES ('t1', 'tr-a', 9, 's', 'success', '-infinity')$$,
     'aos_trace_steps_occurred_at_window', 'occurred_at -infinity inserted directly'),
    -- the clock window (default 1 day), as the API keeps it
    ($$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, started_at)
       VALUES ('t1', 'r-sql', 'a', 'running', now() - interval '3 days')$$,
     'runs_started_at_window', 'started_at 3 days ago inserted directly'),
    ($$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, created_at)
       VALUES ('t1', 'r-sql', 'a', 'queued', now() + interval '2 days')$$,
     'runs_created_at_window', 'created_at 2 days ahead inserted directly'),
    ($$UPDATE activity.runs SET status = 'succeeded', completed_at = now() - interval '5 days'
       WHERE tenant_id = 't1' AND run_id = 'r-live'$$,
     'runs_completed_at_window', 'completed_at 5 days ago by UPDATE'),
    ($$INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id, started_at)
       VALUES ('t1', 'tr-sql', 'r-live', '2001-01-01 00:00:00+00')$$,
     'aos_traces_started_at_window', 'a trace started in 2001 inserted directly'),
    ($$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, occurred_at)
       VALUES ('t1', 'tr-a', 9, 's', 'success', now() - interval '2 days')$$,
     'aos_trace_steps_occurred_at_window', 'occurred_at 2 days ago inserted directly'),
    -- costs keep every digit or are refused (0016): numeric(12, 6) stored 0.0000004 as 0
    ($$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, estimated_cost_usd)
       VALUES ('t1', 'r-sql', 'a', 'queued', 0.0000004)$$,
     'runs_estimated_cost_usd_micro', 'a run cost below a micro-dollar inserted directly'),
    ($$UPDATE activity.runs SET estimated_cost_usd = 1000000 WHERE tenant_id = 't1' AND run_id = 'r-live'$$,
     'runs_estimated_cost_usd_max', 'a run cost of 10^6 USD by UPDATE'),
    ($$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, cost_usd)
       VALUES ('t1', 'tr-a', 9, 's', 'success', 0.0000001)$$,
     'aos_trace_steps_cost_usd_micro', 'a step cost below a micro-dollar inserted directly');

SELECT plan(
    (SELECT count(*)::int * 3 FROM refused)
    + (SELECT count(*)::int * 2 FROM refused_sql)
    + 18
);

-- One call at a time as aos_worker: SQLSTATE, message, nothing written.
CREATE FUNCTION pg_temp.refusals() RETURNS SETOF text
LANGUAGE plpgsql AS $fn$
DECLARE
    c record;
    v_before text;
    v_outcome text;
BEGIN
    FOR c IN SELECT * FROM refused ORDER BY n LOOP
        v_before := aosdb_test.state();
        SET LOCAL ROLE aos_worker;
        RETURN NEXT throws_ok(c.sql, c.errcode, NULL, c.why || ': ' || c.errcode);
        v_outcome := aosdb_test.outcome_message(c.sql);
        RESET ROLE;
        PERFORM set_config('aos.timestamp_window', '', TRUE);
        -- The message alone, after 'SQLSTATE constraint: '; a second line would fail the match.
        v_outcome := substr(v_outcome, strpos(v_outcome, ': ') + 2);
        RETURN NEXT matches(CASE WHEN v_outcome LIKE E'%\n%' THEN 'two lines: ' || v_outcome ELSE v_outcome END,
                            c.pattern, c.why || ': one line naming the field');
        RETURN NEXT is(aosdb_test.state(), v_before, c.why || ': nothing written');
    END LOOP;
    FOR c IN SELECT * FROM refused_sql ORDER BY n LOOP
        v_before := aosdb_test.state();
        SET LOCAL ROLE aos_worker;
        v_outcome := aosdb_test.outcome_message(c.sql);
        RESET ROLE;
        RETURN NEXT is(split_part(v_outcome, ':', 1), '23514 ' || c.constraint_name, c.why || ': 23514 ' || c.constraint_name);
        RETURN NEXT is(aosdb_test.state(), v_before, c.why || ': nothing written');
    END LOOP;
END
$fn$;
SELECT * FROM pg_temp.refusals();

-- ------------------------------------------------ what the bounds still let in
SET LOCAL ROLE aos_worker;
SELECT lives_ok(
    $$SELECT activity.finish_run('t1', 'r-live', 'succeeded',
        '{"input_tokens": 1000000000000, "output_tokens": 1000000000000, "estimated_cost_usd": 999999.999999}')$$,
    'finish_run accepts 10^12 input and output tokens and the largest cost: the PolicyEngine evaluates them'
);
SELECT is(
    activity.record_step('t1', 'victim', '{"skill_name": "search", "status": "success", "cost_usd": 0.000001}'),
    0, 'the run whose run_id was refused as a trace_id still records steps on its own trace'
);
SELECT lives_ok(
    format($$SELECT activity.start_run('t1', 'r-early', 'agent-a', NULL, '{"started_at": "%s"}')$$,
           now() - interval '23 hours'),
    'started_at 23 hours ago is within the default window'
);
SELECT set_config('aos.timestamp_window', '30 years', TRUE);
SELECT lives_ok(
    $$SELECT activity.start_run('t1', 'r-2030', 'agent-a', NULL, '{"started_at": "2030-01-01T00:00:00Z"}')$$,
    'a wider aos.timestamp_window lets a fixed time years away in'
);
SELECT set_config('aos.timestamp_window', '', TRUE);
-- Plain SQL by a worker: the same window, widened the same way; a timestamp an UPDATE leaves alone
-- is not checked again.
SELECT set_config('aos.timestamp_window', '3 days', TRUE);
SELECT lives_ok(
    $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, started_at)
      VALUES ('t1', 'r-sql-old', 'agent-a', 'running', now() - interval '2 days')$$,
    'a worker that widened aos.timestamp_window inserts a run started 2 days ago'
);
SELECT set_config('aos.timestamp_window', '', TRUE);
SELECT lives_ok(
    $$UPDATE activity.runs SET status = 'succeeded', completed_at = now()
      WHERE tenant_id = 't1' AND run_id = 'r-sql-old'$$,
    'with the default window again, the worker completes that run: its started_at is not written, so not checked'
);
SELECT lives_ok(
    $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, cost_usd)
      VALUES ('t1', 'tr-a', 7, 'search', 'success', 0.000001)$$,
    'a worker inserts a step costing one micro-dollar directly'
);
RESET ROLE;
SELECT results_eq(
    $$SELECT estimated_cost_usd::text FROM activity.runs WHERE tenant_id = 't1' AND run_id = 'r-live'$$,
    $$VALUES ('999999.999999')$$,
    'the cost is stored with every digit'
);
-- The scenario runner injects fixed past times on purpose: the window is a worker's only.
SET LOCAL ROLE aos_scenario;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT lives_ok(
    $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, created_at)
      VALUES ('t1', 'r-scn-2024', 'agent-a', 'queued', '2024-09-01 00:00:00+00')$$,
    'the scenario runner inserts a run created in 2024'
);
RESET ROLE;
SELECT set_config('aos.tenant_id', '', TRUE);

SELECT results_eq(
    $$SELECT input_tokens, output_tokens, estimated_cost_usd FROM activity.runs WHERE tenant_id = 't1' AND run_id = 'r-live'$$,
    $$VALUES (1000000000000::bigint, 1000000000000::bigint, 999999.999999::numeric)$$,
    'the largest tokens and cost are stored as given'
);
SELECT results_eq(
    $$SELECT guardrail_id, outcome FROM policies.prevention_records WHERE tenant_id = 't1' AND run_id = 'r-live'
      AND guardrail_id IN ('dg-001', 'dg-002') ORDER BY guardrail_id$$,
    $$VALUES ('dg-001', 'blocked'), ('dg-002', 'blocked')$$,
    'the PolicyEngine sums 2 * 10^12 tokens without overflow: dg-002 (and dg-001, cost) record their violation'
);
SELECT results_eq(
    $$SELECT cost_usd FROM activity.aos_trace_steps WHERE tenant_id = 't1' AND trace_id = 'victim'$$,
    $$VALUES (0.000001::numeric)$$,
    'a cost of one micro-dollar is kept, not rounded to 0'
);
SELECT is_empty(
    $$SELECT FROM activity.aos_trace_steps WHERE tenant_id = 't1' AND trace_id = 'r-done'$$,
    'no step was stored for the completed run'
);

-- An incident with an infinite created_at (only the owner can write one):
-- its time to resolution is null, not an error for every tenant's refresh.
INSERT INTO incidents.incidents (tenant_id, title, severity, category, cause_type, created_at,
                                 lifecycle_state, resolved_at, resolved_by, resolution_method)
VALUES ('t2', 'old', 'low', 'manual', 'human', '-infinity', 'resolved', now(), 'ops', 'rollback');

-- Both views refresh with the largest values in them, CONCURRENTLY as `aosdb refresh` does.
SELECT lives_ok('REFRESH MATERIALIZED VIEW CONCURRENTLY activity.v_runs_o2', 'activity.v_runs_o2 refreshes');
SELECT lives_ok('REFRESH MATERIALIZED VIEW CONCURRENTLY incidents.v_incidents_o2', 'incidents.v_incidents_o2 refreshes');
SELECT results_eq(
    $$SELECT total_tokens, estimated_cost_usd FROM activity.v_runs_o2 WHERE tenant_id = 't1' AND run_id = 'r-live'$$,
    $$VALUES (2000000000000::numeric, 999999.999999::numeric)$$,
    'total_tokens is 2 * 10^12 in activity.v_runs_o2'
);
SELECT col_type_is('activity', 'v_runs_o2', 'total_tokens', 'numeric', 'total_tokens is numeric: no sum overflows');
SELECT results_eq(
    $$SELECT time_to_resolution_ms FROM incidents.v_incidents_o2 WHERE tenant_id = 't2' AND title = 'old'$$,
    $$VALUES (NULL::bigint)$$,
    'incidents.v_incidents_o2: an infinite created_at gives a null time_to_resolution_ms'
);

SELECT * FROM finish();
ROLLBACK;
