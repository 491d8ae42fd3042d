-- runs.state and aos_trace_steps.level are stored generated columns that
-- compute their documented values for every status, follow status changes, and
-- cannot be written directly.
BEGIN;

CREATE TEMP TABLE expected_run_states (status text, state text) ON COMMIT DROP;
INSERT INTO expected_run_states VALUES
    ('queued', 'live'), ('running', 'live'), ('retry', 'live'),
    ('succeeded', 'completed'), ('failed', 'completed'), ('halted', 'completed'), ('aborted', 'completed');

CREATE TEMP TABLE expected_step_levels (status text, level text) ON COMMIT DROP;
INSERT INTO expected_step_levels VALUES
    ('success', 'info'), ('failure', 'error'), ('retry', 'warn'), ('skipped', 'info');

SELECT plan(
    2
    + (SELECT count(*)::int FROM expected_run_states)
    + (SELECT count(*)::int FROM expected_step_levels)
    + 4
);

SELECT is(
    (SELECT a.attgenerated::text FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = format('%I.%I', s, t)::regclass AND a.attname = c),
    's',
    format('%s.%s.%s is a stored generated column', s, t, c)
)
FROM (VALUES ('activity', 'runs', 'state'), ('activity', 'aos_trace_steps', 'level')) AS g (s, t, c);

INSERT INTO aos.tenants (tenant_id, name) VALUES ('t-gen', 'generated columns test');
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status)
SELECT 't-gen', 'run-' || status, 'agent', status FROM expected_run_states;
INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id) VALUES ('t-gen', 'trace-1', 'run-running');
INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status)
SELECT 't-gen', 'trace-1', row_number() OVER (ORDER BY status), 'skill', status FROM expected_step_levels;

SELECT is(
    (SELECT r.state FROM activity.runs AS r WHERE r.tenant_id = 't-gen' AND r.run_id = 'run-' || e.status),
    e.state,
    format('a run with status %s has state %s', e.status, e.state)
)
FROM expected_run_states AS e ORDER BY e.status;

SELECT is(
    (SELECT s.level FROM activity.aos_trace_steps AS s WHERE s.tenant_id = 't-gen' AND s.status = e.status),
    e.level,
    format('a step with status %s has level %s', e.status, e.level)
)
FROM expected_step_levels AS e ORDER BY e.status;

UPDATE activity.runs SET status = 'failed' WHERE tenant_id = 't-gen' AND run_id = 'run-queued';
SELECT is(
    (SELECT state FROM activity.runs WHERE tenant_id = 't-gen' AND run_id = 'run-queued'),
    'completed',
    'runs.state follows an update of status (queued -> failed gives completed)'
);

SELECT throws_ok(
    $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, state)
      VALUES ('t-gen', 'run-x', 'agent', 'queued', 'completed')$$,
    '428C9', NULL,
    'runs.state cannot be inserted (generated always)'
);
SELECT throws_ok(
    $$UPDATE activity.runs SET state = 'completed' WHERE tenant_id = 't-gen'$$,
    '428C9', NULL,
    'runs.state cannot be updated (generated always)'
);
SELECT throws_ok(
    $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, level)
      VALUES ('t-gen', 'trace-1', 99, 'skill', 'success', 'error')$$,
    '428C9', NULL,
    'aos_trace_steps.level cannot be inserted (generated always)'
);

SELECT * FROM finish();
ROLLBACK;
