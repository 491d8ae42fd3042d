-- IncidentEngine (README.md, The propagation chain): a run that reaches failed, by INSERT or
-- UPDATE, through the worker API or plain SQL, one row or many, gets exactly
-- one incident (active, llm_run, both run links, severity and category from
-- its failure class) and one 'detected' timeline event. Runs of any other
-- status get none; re-delivering the failure never adds a second; the
-- synthetic marks travel with it.
BEGIN;

SELECT aos.register_tenant('t1');

-- ------------------------------------------------ the ways a run can fail
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
VALUES ('t1', 'path-insert', 'agent-a', 'failed', 'EXECUTION_TIMEOUT');
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code) VALUES
    ('t1', 'path-multi-1', 'agent-a', 'failed', 'EXECUTION_TIMEOUT'),
    ('t1', 'path-multi-2', 'agent-b', 'failed', 'EXECUTION_TIMEOUT'),
    ('t1', 'path-multi-ok', 'agent-b', 'succeeded', NULL),
    ('t1', 'path-multi-3', 'agent-c', 'failed', 'EXECUTION_TIMEOUT');
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES
    ('t1', 'path-update', 'agent-a', 'running'),
    ('t1', 'path-update-multi-1', 'agent-a', 'running'),
    ('t1', 'path-update-multi-2', 'agent-a', 'retry'),
    ('t1', 'path-update-queued', 'agent-a', 'queued');
UPDATE activity.runs SET status = 'failed', error_code = 'EXECUTION_TIMEOUT'
WHERE tenant_id = 't1' AND run_id IN ('path-update', 'path-update-queued');
UPDATE activity.runs SET status = 'failed', error_code = 'EXECUTION_TIMEOUT'
WHERE tenant_id = 't1' AND run_id IN ('path-update-multi-1', 'path-update-multi-2');
COPY activity.runs (tenant_id, run_id, agent_id, status, error_code) FROM STDIN;
t1	path-copy-1	agent-a	failed	EXECUTION_TIMEOUT
t1	path-copy-ok	agent-a	succeeded	\N
t1	path-copy-2	agent-b	failed	EXECUTION_TIMEOUT
\.
-- Upserts, as a worker re-sending its report would: one new row, one update.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t1', 'path-upsert-update', 'agent-a', 'running');
INSERT INTO activity.runs AS r (tenant_id, run_id, agent_id, status, error_code) VALUES
    ('t1', 'path-upsert-update', 'agent-a', 'failed', 'EXECUTION_TIMEOUT'),
    ('t1', 'path-upsert-insert', 'agent-a', 'failed', 'EXECUTION_TIMEOUT')
ON CONFLICT (tenant_id, run_id) DO UPDATE SET status = excluded.status, error_code = excluded.error_code;
SELECT activity.start_run('t1', 'path-api', 'agent-a', 'index the docs');
SELECT activity.finish_run('t1', 'path-api', 'failed', '{"error_code": "EXECUTION_TIMEOUT"}');
RESET ROLE;
-- The owner writing plain SQL fires the same engine.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
VALUES ('t1', 'path-owner', 'agent-a', 'failed', 'EXECUTION_TIMEOUT');

CREATE TEMP TABLE paths (run_id text, how text) ON COMMIT DROP;
INSERT INTO paths VALUES
    ('path-insert', 'a single-row INSERT as failed'),
    ('path-multi-1', 'a multi-row INSERT (first failed row)'),
    ('path-multi-2', 'a multi-row INSERT (second failed row)'),
    ('path-multi-3', 'a multi-row INSERT (failed row after a succeeded one)'),
    ('path-update', 'an UPDATE running -> failed'),
    ('path-update-queued', 'an UPDATE queued -> failed'),
    ('path-update-multi-1', 'a multi-row UPDATE running -> failed'),
    ('path-update-multi-2', 'a multi-row UPDATE retry -> failed'),
    ('path-api', 'start_run then finish_run failed'),
    ('path-upsert-insert', 'an INSERT ... ON CONFLICT DO UPDATE that inserts a failed run'),
    ('path-upsert-update', 'an INSERT ... ON CONFLICT DO UPDATE that moves a running run to failed'),
    ('path-copy-1', 'a bulk COPY (first failed row)'),
    ('path-copy-2', 'a bulk COPY (failed row after a succeeded one)'),
    ('path-owner', 'a plain INSERT by the owner');

-- --------------------------------------------------- failure classification
-- Explicit code first (kept even when unknown), else the
-- first code by priority found in the upper-cased message, else UNKNOWN.
CREATE TEMP TABLE classes (
    run_id text, error_code text, error_message text,
    want_code text, want_severity text, want_category text, why text
) ON COMMIT DROP;
GRANT SELECT ON classes TO PUBLIC;
INSERT INTO classes VALUES
    ('c-timeout', 'EXECUTION_TIMEOUT', NULL, 'EXECUTION_TIMEOUT', 'high', 'execution_failure', 'explicit EXECUTION_TIMEOUT'),
    ('c-crash', 'AGENT_CRASH', NULL, 'AGENT_CRASH', 'critical', 'execution_failure', 'explicit AGENT_CRASH'),
    ('c-step', 'STEP_FAILURE', NULL, 'STEP_FAILURE', 'high', 'execution_failure', 'explicit STEP_FAILURE'),
    ('c-skill', 'SKILL_ERROR', NULL, 'SKILL_ERROR', 'high', 'execution_failure', 'explicit SKILL_ERROR'),
    ('c-budget', 'BUDGET_EXCEEDED', NULL, 'BUDGET_EXCEEDED', 'medium', 'budget_exceeded', 'explicit BUDGET_EXCEEDED'),
    ('c-rate', 'RATE_LIMIT_EXCEEDED', NULL, 'RATE_LIMIT_EXCEEDED', 'medium', 'rate_limit', 'explicit RATE_LIMIT_EXCEEDED'),
    ('c-resource', 'RESOURCE_EXHAUSTION', NULL, 'RESOURCE_EXHAUSTION', 'medium', 'resource_exhaustion',
     'explicit RESOURCE_EXHAUSTION'),
    ('c-retry', 'RETRY_EXHAUSTED', NULL, 'RETRY_EXHAUSTED', 'medium', 'execution_failure', 'explicit RETRY_EXHAUSTED'),
    ('c-cancel', 'CANCELLED', NULL, 'CANCELLED', 'low', 'manual', 'explicit CANCELLED'),
    ('c-stop', 'MANUAL_STOP', NULL, 'MANUAL_STOP', 'low', 'manual', 'explicit MANUAL_STOP'),
    ('c-unknown', 'UNKNOWN', NULL, 'UNKNOWN', 'medium', 'execution_failure', 'explicit UNKNOWN'),
    ('m-none', NULL, NULL, 'UNKNOWN', 'medium', 'execution_failure', 'no code and no message: UNKNOWN'),
    ('m-nocode', NULL, 'the model returned garbage', 'UNKNOWN', 'medium', 'execution_failure',
     'no code and no known code in the message: UNKNOWN'),
    ('m-timeout', NULL, 'EXECUTION_TIMEOUT: step 3 exceeded 300s', 'EXECUTION_TIMEOUT', 'high', 'execution_failure',
     'no code, EXECUTION_TIMEOUT in the message'),
    ('m-lower', NULL, 'worker saw agent_crash at step 2', 'AGENT_CRASH', 'critical', 'execution_failure',
     'no code, agent_crash in lower case in the message (the message is upper-cased)'),
    ('m-budget', NULL, 'stopped: Budget_Exceeded', 'BUDGET_EXCEEDED', 'medium', 'budget_exceeded',
     'no code, BUDGET_EXCEEDED in mixed case in the message'),
    ('m-two', NULL, 'AGENT_CRASH after EXECUTION_TIMEOUT', 'EXECUTION_TIMEOUT', 'high', 'execution_failure',
     'two codes in the message: EXECUTION_TIMEOUT has priority over AGENT_CRASH though it comes second'),
    ('m-two-b', NULL, 'budget_exceeded, then step_failure', 'STEP_FAILURE', 'high', 'execution_failure',
     'two codes in the message: STEP_FAILURE has priority over BUDGET_EXCEEDED'),
    ('x-unknown', 'QUOTA_MELTDOWN', 'EXECUTION_TIMEOUT in message', 'QUOTA_MELTDOWN', 'medium', 'execution_failure',
     'an unknown explicit code is kept (not replaced by the message''s code) and classified as UNKNOWN');

SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, error_message)
SELECT 't1', run_id, 'agent-c', 'failed', error_code, error_message FROM classes;
RESET ROLE;

-- ------------------------------------------------ statuses that are not failed
CREATE TEMP TABLE non_failures (run_id text, how text) ON COMMIT DROP;
GRANT SELECT ON non_failures TO PUBLIC;
INSERT INTO non_failures VALUES
    ('s-succeeded', 'inserted succeeded'), ('s-halted', 'inserted halted'), ('s-aborted', 'inserted aborted'),
    ('s-running', 'inserted running'), ('s-queued', 'inserted queued'), ('s-retry', 'inserted retry'),
    ('u-succeeded', 'updated running -> succeeded'), ('u-halted', 'updated running -> halted'),
    ('u-aborted', 'updated running -> aborted'), ('u-retry', 'updated running -> retry'),
    ('api-succeeded', 'finish_run succeeded'), ('api-halted', 'finish_run halted'),
    ('api-aborted', 'finish_run aborted');
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, error_message)
SELECT 't1', run_id, 'agent-d', substr(run_id, 3), 'AGENT_CRASH', 'AGENT_CRASH' FROM non_failures
WHERE run_id LIKE 's-%';
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
SELECT 't1', run_id, 'agent-d', 'running', 'AGENT_CRASH' FROM non_failures WHERE run_id LIKE 'u-%';
UPDATE activity.runs SET status = substr(run_id, 3) WHERE tenant_id = 't1' AND run_id LIKE 'u-%';
SELECT activity.start_run('t1', run_id, 'agent-d', NULL) FROM non_failures WHERE run_id LIKE 'api-%';
SELECT activity.finish_run('t1', run_id, substr(run_id, 5), '{"error_code": "AGENT_CRASH"}')
FROM non_failures WHERE run_id LIKE 'api-%';
RESET ROLE;

-- ------------------------------------------------------------- re-delivery
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code) VALUES
    ('t1', 'again-update', 'agent-e', 'failed', 'STEP_FAILURE');
UPDATE activity.runs SET status = 'failed' WHERE tenant_id = 't1' AND run_id = 'again-update';
UPDATE activity.runs SET status = 'failed', error_code = 'AGENT_CRASH', error_message = 'again'
WHERE tenant_id = 't1' AND run_id = 'again-update';
SELECT activity.start_run('t1', 'again-api', 'agent-e', NULL);
SELECT activity.finish_run('t1', 'again-api', 'failed', '{"error_code": "STEP_FAILURE"}');
SELECT activity.finish_run('t1', 'again-api', 'failed', '{"error_code": "STEP_FAILURE"}');
SELECT activity.finish_run('t1', 'again-api', 'failed');
RESET ROLE;

-- ------------------------------------------------------------- synthetic marks
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, is_synthetic, synthetic_scenario_id)
VALUES ('t1', 'synthetic', 'agent-f', 'failed', 'BUDGET_EXCEEDED', TRUE, 'SDSR-T-031');
RESET ROLE;

SELECT plan(
    (SELECT count(*)::int * 2 FROM paths)          -- the incident and its timeline, per path
    + (SELECT count(*)::int FROM classes)          -- classification
    + 1                                            -- title and message
    + (SELECT count(*)::int FROM non_failures)     -- no incident
    + 3                                            -- re-delivery
    + 2                                            -- synthetic marks
    + 1                                            -- totals
);

SELECT results_eq(
    format($$SELECT count(*)::int, min(i.lifecycle_state), min(i.cause_type), min(i.source_run_id),
                    bool_and(i.llm_run_id = r.id), min(i.severity), min(i.category), min(i.error_code)
             FROM activity.runs AS r JOIN incidents.incidents AS i
                 ON i.tenant_id = r.tenant_id AND i.source_run_id = r.run_id
             WHERE r.tenant_id = 't1' AND r.run_id = %L$$, p.run_id),
    format($$VALUES (1, 'active', 'llm_run', %L, TRUE, 'high', 'execution_failure', 'EXECUTION_TIMEOUT')$$, p.run_id),
    format('%s gives exactly one active llm_run incident linked to the run by run_id and id (%s)', p.how, p.run_id)
)
FROM paths AS p ORDER BY p.run_id;

SELECT results_eq(
    format($$SELECT e.event_type, e.actor, e.details ->> 'run_id', e.details ->> 'severity'
             FROM incidents.incidents AS i JOIN incidents.incident_events AS e
                 ON e.tenant_id = i.tenant_id AND e.incident_id = i.id
             WHERE i.tenant_id = 't1' AND i.source_run_id = %L$$, p.run_id),
    format($$VALUES ('detected', 'IncidentEngine', %L, 'high')$$, p.run_id),
    format('%s writes exactly one timeline event, detected, for the incident (%s)', p.how, p.run_id)
)
FROM paths AS p ORDER BY p.run_id;

SELECT results_eq(
    format($$SELECT i.error_code, i.severity, i.category FROM incidents.incidents AS i
             WHERE i.tenant_id = 't1' AND i.source_run_id = %L$$, c.run_id),
    format('VALUES (%L, %L, %L)', c.want_code, c.want_severity, c.want_category),
    format('%s -> %s, %s, %s', c.why, c.want_code, c.want_severity, c.want_category)
)
FROM classes AS c ORDER BY c.run_id;

SELECT results_eq(
    $$SELECT title, error_message FROM incidents.incidents WHERE tenant_id = 't1' AND source_run_id = 'm-timeout'$$,
    $$VALUES ('EXECUTION_TIMEOUT: run m-timeout of agent agent-c failed', 'EXECUTION_TIMEOUT: step 3 exceeded 300s')$$,
    'the incident has a title naming code, run and agent, and the run''s error message'
);

SELECT is_empty(
    format($$SELECT FROM incidents.incidents WHERE tenant_id = 't1' AND source_run_id = %L$$, n.run_id),
    format('a run %s gets no incident, even with a failure code (%s)', n.how, n.run_id)
)
FROM non_failures AS n ORDER BY n.run_id;

SELECT results_eq(
    $$SELECT source_run_id, count(*)::int, min(error_code) FROM incidents.incidents
      WHERE tenant_id = 't1' AND source_run_id IN ('again-update', 'again-api')
      GROUP BY source_run_id ORDER BY source_run_id$$,
    $$VALUES ('again-api', 1, 'STEP_FAILURE'), ('again-update', 1, 'STEP_FAILURE')$$,
    'UPDATE failed -> failed and finish_run failed delivered three times leave exactly one incident, as first classified'
);
SELECT results_eq(
    $$SELECT count(*)::int FROM incidents.incident_events AS e
      JOIN incidents.incidents AS i ON i.tenant_id = e.tenant_id AND i.id = e.incident_id
      WHERE i.tenant_id = 't1' AND i.source_run_id IN ('again-update', 'again-api')$$,
    $$VALUES (2)$$,
    're-delivered failures add no timeline event'
);
SELECT results_eq(
    $$SELECT count(*)::int FROM aos.events WHERE tenant_id = 't1' AND event IN ('run_failed', 'incident_created')
      AND payload ->> 'run_id' IN ('again-update', 'again-api')$$,
    $$VALUES (4)$$,
    're-delivered failures publish no second run_failed or incident_created'
);

SELECT results_eq(
    $$SELECT i.is_synthetic, i.synthetic_scenario_id, i.severity FROM incidents.incidents AS i
      WHERE i.tenant_id = 't1' AND i.source_run_id = 'synthetic'$$,
    $$VALUES (TRUE, 'SDSR-T-031', 'medium')$$,
    'the incident of a synthetic run carries its synthetic marks'
);
SELECT results_eq(
    $$SELECT e.event_type, e.is_synthetic, e.synthetic_scenario_id FROM incidents.incident_events AS e
      JOIN incidents.incidents AS i ON i.tenant_id = e.tenant_id AND i.id = e.incident_id
      WHERE i.tenant_id = 't1' AND i.source_run_id = 'synthetic'$$,
    $$VALUES ('detected', TRUE, 'SDSR-T-031')$$,
    'the detected event of a synthetic incident carries the synthetic marks'
);

SELECT results_eq(
    $$SELECT (SELECT count(*)::int FROM activity.runs WHERE tenant_id = 't1' AND status = 'failed'),
             (SELECT count(*)::int FROM incidents.incidents WHERE tenant_id = 't1'),
             (SELECT count(DISTINCT source_run_id)::int FROM incidents.incidents WHERE tenant_id = 't1'),
             (SELECT count(*)::int FROM incidents.incident_events WHERE tenant_id = 't1')$$,
    $$SELECT n, n, n, n FROM (SELECT count(*)::int AS n FROM activity.runs WHERE tenant_id = 't1' AND status = 'failed') AS f$$,
    'in total: one incident per failed run, one failed run per incident, one timeline event each'
);

SELECT * FROM finish();
ROLLBACK;
