-- Keys are immutable (0013). The engines pair a statement's old and new rows
-- on their keys, so an UPDATE that also changed a key would reach no engine.
-- For aos_worker and aos_scenario each such UPDATE is refused by the column
-- grants (42501), and so is writing runs.policy_violation, the PolicyEngine's
-- column. Even the owner meets the key guard (42501, naming the column). The
-- engines still work: a failed run opens its incident, a violating run is
-- flagged by the PolicyEngine.
BEGIN;

SELECT aos.register_tenant(t) FROM (VALUES ('k1'), ('k2')) AS v (t);

SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES
    ('k1', 'live-1', 'agent-a', 'running'),
    ('k1', 'live-2', 'agent-a', 'running'),
    ('k1', 'chatty', 'agent-a', 'running'),
    ('k1', 'done-1', 'agent-a', 'succeeded');
INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id) VALUES ('k1', 'tr-1', 'live-1');
INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status)
VALUES ('k1', 'tr-1', 0, 'search', 'success');
RESET ROLE;

-- The reproductions, each refused for both writing roles.
CREATE TEMP TABLE refused (what text, sql text) ON COMMIT DROP;
INSERT INTO refused VALUES
    ('fail a run under a new id (no incident, no event)',
     $$UPDATE activity.runs SET status = 'failed', id = gen_random_uuid() WHERE tenant_id = 'k1' AND run_id = 'live-1'$$),
    ('move a completed run back to running under a new id',
     $$UPDATE activity.runs SET status = 'running', id = gen_random_uuid() WHERE tenant_id = 'k1' AND run_id = 'done-1'$$),
    ('finish a 99,999-token run under a new id (past dg-002)',
     $$UPDATE activity.runs SET status = 'succeeded', input_tokens = 99999, id = gen_random_uuid()
       WHERE tenant_id = 'k1' AND run_id = 'chatty'$$),
    ('move a run to another tenant',
     $$UPDATE activity.runs SET tenant_id = 'k2', status = 'failed' WHERE tenant_id = 'k1' AND run_id = 'live-1'$$),
    ('rename a run (run_id)',
     $$UPDATE activity.runs SET run_id = 'renamed' WHERE tenant_id = 'k1' AND run_id = 'live-1'$$),
    ('change a trace''s id', $$UPDATE activity.aos_traces SET id = gen_random_uuid() WHERE trace_id = 'tr-1'$$),
    ('rename a trace (trace_id)', $$UPDATE activity.aos_traces SET trace_id = 'tr-x' WHERE trace_id = 'tr-1'$$),
    ('move a trace to another run', $$UPDATE activity.aos_traces SET run_id = 'live-2' WHERE trace_id = 'tr-1'$$),
    ('move a trace to another tenant', $$UPDATE activity.aos_traces SET tenant_id = 'k2' WHERE trace_id = 'tr-1'$$),
    ('forge policy_violation on insert',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, policy_violation)
       VALUES ('k1', 'forged', 'agent-a', 'succeeded', TRUE)$$),
    ('clear policy_violation on update',
     $$UPDATE activity.runs SET policy_violation = FALSE WHERE tenant_id = 'k1' AND run_id = 'live-1'$$);

SELECT plan(
    (SELECT count(*)::int FROM refused) * 2
    + 14   -- nothing moved
    + 9    -- the key guard, for the owner
    + 7    -- the engines still work
);

-- The grants stop them before row-level security or any trigger is reached.
SELECT throws_ok(
    format('SELECT aosdb_test.as_role(%L, %L, ''k1'')', r.role_name, f.sql), '42501',
    format('permission denied for table %s', CASE WHEN f.sql LIKE '%aos_traces%' THEN 'aos_traces' ELSE 'runs' END),
    format('%s cannot %s (42501)', r.role_name, f.what)
)
FROM refused AS f CROSS JOIN (VALUES ('aos_worker'), ('aos_scenario')) AS r (role_name)
ORDER BY r.role_name, f.what;

-- ---------------------------------------------------------- nothing moved
SELECT is(
    (SELECT array_agg(run_id || ':' || status || ':' || policy_violation ORDER BY run_id)
     FROM activity.runs WHERE tenant_id = 'k1'),
    '{chatty:running:false,done-1:succeeded:false,live-1:running:false,live-2:running:false}',
    'the runs of k1 are as inserted: no status, key or flag changed'
);
SELECT is((SELECT count(*)::int FROM activity.runs WHERE tenant_id = 'k2'), 0, 'no run reached k2');
SELECT is((SELECT count(*)::int FROM activity.runs WHERE run_id IN ('forged', 'renamed')), 0,
          'no forged or renamed run exists');
SELECT is((SELECT count(*)::int FROM activity.aos_traces WHERE tenant_id = 'k1' AND trace_id = 'tr-1'
           AND run_id = 'live-1'), 1, 'the trace kept its keys');
SELECT is((SELECT count(*)::int FROM incidents.incidents WHERE tenant_id IN ('k1', 'k2')), 0, 'no incident yet');
SELECT is((SELECT count(*)::int FROM policies.prevention_records WHERE tenant_id IN ('k1', 'k2')), 0,
          'no prevention record yet');
SELECT is((SELECT count(*)::int FROM aos.events WHERE tenant_id IN ('k1', 'k2')), 0, 'no event yet');

-- The grants say the same, column by column.
SELECT ok(NOT has_column_privilege(r, 'activity.runs', c, 'UPDATE'),
          format('%s may not update activity.runs.%s', r, c))
FROM (VALUES ('aos_worker'), ('aos_scenario')) AS v (r), unnest(ARRAY['tenant_id', 'id', 'run_id']) AS c
ORDER BY r, c;
SELECT ok(NOT has_column_privilege('aos_scenario', 'activity.runs', 'policy_violation', 'INSERT')
          AND NOT has_column_privilege('aos_worker', 'activity.runs', 'policy_violation', 'INSERT'),
          'neither aos_worker nor aos_scenario may insert activity.runs.policy_violation');

-- ------------------------------------------------- the key guard (owner)
SET LOCAL ROLE aos_owner;
INSERT INTO incidents.incidents (tenant_id, source_run_id, title, severity, category)
VALUES ('k1', 'live-2', 'manual', 'low', 'manual');
INSERT INTO policies.policy_proposals (tenant_id, triggering_run_id, proposal_name, proposal_type, proposed_rule)
VALUES ('k1', 'live-2', 'proposal', 'retry_policy',
        '{"rule_type": "error_code", "conditions": {"error_codes": ["STEP_FAILURE"]}, "enforcement": "warn"}');
INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement)
VALUES ('k1', 'manual', 'error_code', '{"error_codes": ["STEP_FAILURE"]}', 'warn');

SELECT throws_ok(sql, '42501', message, format('even the owner cannot %s (42501: %s)', what, message))
FROM (VALUES
    ('change a run''s id', $$UPDATE activity.runs SET id = gen_random_uuid() WHERE run_id = 'live-1'$$,
     'activity.runs.id is a key and cannot be updated'),
    ('move a run to another tenant', $$UPDATE activity.runs SET tenant_id = 'k2' WHERE run_id = 'done-1'$$,
     'activity.runs.tenant_id is a key and cannot be updated'),
    ('rename a run', $$UPDATE activity.runs SET run_id = 'renamed', status = 'failed' WHERE run_id = 'chatty'$$,
     'activity.runs.run_id is a key and cannot be updated'),
    ('rename a trace', $$UPDATE activity.aos_traces SET trace_id = 'tr-x' WHERE trace_id = 'tr-1'$$,
     'activity.aos_traces.trace_id is a key and cannot be updated'),
    ('renumber a step', $$UPDATE activity.aos_trace_steps SET step_index = 7 WHERE trace_id = 'tr-1'$$,
     'activity.aos_trace_steps.step_index is a key and cannot be updated'),
    ('point an incident at another run',
     $$UPDATE incidents.incidents SET source_run_id = 'live-1' WHERE tenant_id = 'k1'$$,
     'incidents.incidents.source_run_id is a key and cannot be updated'),
    ('point a proposal at another run',
     $$UPDATE policies.policy_proposals SET triggering_run_id = 'live-1' WHERE tenant_id = 'k1'$$,
     'policies.policy_proposals.triggering_run_id is a key and cannot be updated'),
    ('move a rule to another tenant', $$UPDATE policies.policy_rules SET tenant_id = 'k2' WHERE tenant_id = 'k1'$$,
     'policies.policy_rules.tenant_id is a key and cannot be updated')
) AS g (what, sql, message)
ORDER BY message;
SELECT lives_ok(
    $$UPDATE activity.runs SET id = id, tenant_id = tenant_id, run_id = run_id, goal = 'kept' WHERE run_id = 'live-1'$$,
    'an UPDATE that sets a key to its own value passes the guard'
);
-- Leave k1 as it was for the engines below.
DELETE FROM policies.policy_rules WHERE tenant_id = 'k1';
DELETE FROM policies.policy_proposals WHERE tenant_id = 'k1';
DELETE FROM incidents.incidents WHERE tenant_id = 'k1';
RESET ROLE;

-- ------------------------------------------------ the engines still work
-- A failed run, by plain UPDATE as the worker: its incident and events.
SELECT lives_ok(
    $$SELECT aosdb_test.as_role('aos_worker', 'UPDATE activity.runs SET status = ''failed'', error_code = ''AGENT_CRASH''
      WHERE tenant_id = ''k1'' AND run_id = ''live-1''', 'k1')$$,
    'aos_worker can fail a run by UPDATE'
);
SELECT is(
    (SELECT count(*)::int FROM incidents.incidents WHERE tenant_id = 'k1' AND source_run_id = 'live-1'), 1,
    'the failed run opened its incident'
);
SELECT is(
    (SELECT array_agg(event ORDER BY event) FROM aos.events
     WHERE tenant_id = 'k1' AND event IN ('run_failed', 'incident_created')),
    '{incident_created,run_failed}', 'and published run_failed and incident_created'
);
-- The 99,999-token run, finished by the scenario runner: the PolicyEngine flags it.
SELECT lives_ok(
    $$SELECT aosdb_test.as_role('aos_scenario', 'UPDATE activity.runs SET status = ''succeeded'', input_tokens = 99999
      WHERE tenant_id = ''k1'' AND run_id = ''chatty''', 'k1')$$,
    'aos_scenario can finish a run by UPDATE'
);
SELECT is(
    (SELECT policy_violation FROM activity.runs WHERE tenant_id = 'k1' AND run_id = 'chatty'), TRUE,
    'the PolicyEngine set policy_violation on the violating run (dg-002)'
);
SELECT is(
    (SELECT array_agg(guardrail_id) FROM policies.prevention_records WHERE tenant_id = 'k1' AND run_id = 'chatty'),
    '{dg-002}', 'with its prevention record'
);
-- And on insert: a violating run the worker cannot flag itself is flagged.
SELECT aosdb_test.as_role('aos_worker', $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, input_tokens)
    VALUES ('k1', 'chatty-2', 'agent-a', 'succeeded', 20000)$$, 'k1');
SELECT is(
    (SELECT policy_violation FROM activity.runs WHERE tenant_id = 'k1' AND run_id = 'chatty-2'), TRUE,
    'the PolicyEngine set policy_violation on a violating run inserted by aos_worker'
);

SELECT * FROM finish();
ROLLBACK;
