-- api.activity_run and api.activity_run_evidence (/rpc/activity_run
-- and /rpc/activity_run_evidence): the detail is the run as it is now with
-- its traces (oldest first) and its analytics row; the evidence is exactly
-- {run_id, run, incidents_caused[], proposals_triggered[], proposals_linked[],
-- prevention_records[], traces_linked[]}, read from the base tables (current
-- without a refresh), empty arrays when nothing happened; proposals_linked
-- holds the proposals the run's incidents are linked to (the shared proposal of
-- a storm too), oldest first; another tenant's run_id and an unknown one are
-- PT404, no tenant 28000.
BEGIN;

SELECT aos.register_tenant(t) FROM (VALUES ('t1'), ('t2')) AS v (t);

-- An operator rule that prevents AGENT_CRASH failures of t1.
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT set_config('test.rule_id',
    policies.create_rule('no crashes', 'error_code', '{"error_codes": ["AGENT_CRASH"]}', 'block')::text, TRUE);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

-- Runs an hour apart. Engines fire:
--   r-fail       EXECUTION_TIMEOUT (high): incident, pending proposal; 20000 tokens: dg-002 blocked
--   r-ok         succeeded, nothing else
--   r-prevented  AGENT_CRASH, listed by the rule: prevention record, no incident
--   r-medium     BUDGET_EXCEEDED (medium): incident, no proposal
-- t2 reuses the run_id r-fail (its own failure, incident and proposal) and has x-only.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, input_tokens, created_at) VALUES
    ('t1', 'r-fail', 'agent-a', 'running', NULL, 20000, '2024-03-01 10:00:00+00'),
    ('t1', 'r-ok', 'agent-a', 'succeeded', NULL, 10, '2024-03-01 11:00:00+00'),
    ('t1', 'r-prevented', 'agent-b', 'failed', 'AGENT_CRASH', 10, '2024-03-01 12:00:00+00'),
    ('t1', 'r-medium', 'agent-b', 'failed', 'BUDGET_EXCEEDED', 10, '2024-03-01 13:00:00+00'),
    ('t2', 'r-fail', 'agent-z', 'failed', 'EXECUTION_TIMEOUT', 10, '2024-03-01 10:30:00+00'),
    ('t2', 'x-only', 'agent-z', 'succeeded', NULL, 10, '2024-03-01 10:40:00+00');
-- Two traces of r-fail, the later one recorded first; steps on both.
INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id, status, started_at) VALUES
    ('t1', 'tr-b', 'r-fail', 'failed', '2024-03-01 10:05:00+00'),
    ('t1', 'tr-a', 'r-fail', 'completed', '2024-03-01 10:01:00+00'),
    ('t2', 'tr-a', 'r-fail', 'failed', '2024-03-01 10:31:00+00');
INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, retry_count) VALUES
    ('t1', 'tr-a', 0, 'search', 'success', 0),
    ('t1', 'tr-a', 1, 'fetch', 'retry', 2),
    ('t1', 'tr-b', 0, 'shell', 'failure', 0),
    ('t2', 'tr-a', 0, 'search', 'failure', 5);
UPDATE activity.runs SET status = 'failed', error_code = 'EXECUTION_TIMEOUT'
WHERE tenant_id = 't1' AND run_id = 'r-fail';

-- r-again fails with EXECUTION_TIMEOUT too: its incident joins the pending
-- proposal r-fail triggered (one pending proposal per rule). A critical system
-- incident names r-again as its source as well: it triggers a proposal of its
-- own, dated before the shared one, so "oldest first" is not insertion order.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, input_tokens, created_at)
VALUES ('t1', 'r-again', 'agent-a', 'failed', 'EXECUTION_TIMEOUT', 10, '2024-03-01 13:30:00+00');
INSERT INTO incidents.incidents (tenant_id, title, severity, category, error_code, cause_type, source_run_id)
VALUES ('t1', 'skill registry down', 'critical', 'execution_failure', 'SKILL_ERROR', 'system', 'r-again');
UPDATE policies.policy_proposals SET created_at = '2024-03-01 00:00:00+00'
WHERE tenant_id = 't1' AND triggering_run_id = 'r-again';

REFRESH MATERIALIZED VIEW activity.v_runs_o2;
REFRESH MATERIALIZED VIEW incidents.v_incidents_o2;

CREATE TEMP TABLE got (k text PRIMARY KEY, v jsonb) ON COMMIT DROP;
GRANT ALL ON got TO PUBLIC;

-- The JSON of the base rows, as the owner sees them.
CREATE FUNCTION pg_temp.run_json(p_tenant text, p_run_id text) RETURNS jsonb
LANGUAGE sql STABLE AS $fn$
    SELECT to_jsonb(r) FROM activity.runs AS r WHERE r.tenant_id = p_tenant AND r.run_id = p_run_id
$fn$;
CREATE FUNCTION pg_temp.traces_json(p_tenant text, p_run_id text) RETURNS jsonb
LANGUAGE sql STABLE AS $fn$
    SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY t.started_at), '[]') FROM activity.aos_traces AS t
    WHERE t.tenant_id = p_tenant AND t.run_id = p_run_id
$fn$;

CREATE TEMP TABLE rejected (n serial, tenant text, sql text, errcode text, description text) ON COMMIT DROP;
GRANT SELECT ON rejected TO PUBLIC;
INSERT INTO rejected (tenant, sql, errcode, description) VALUES
    ('t1', $$SELECT api.activity_run('x-only')$$, 'PT404', 'detail of a run of another tenant: not found (PT404)'),
    ('t1', $$SELECT api.activity_run_evidence('x-only')$$, 'PT404',
     'evidence of a run of another tenant: not found (PT404)'),
    ('t1', $$SELECT api.activity_run('no-such-run')$$, 'PT404', 'detail of a run_id that does not exist: PT404'),
    ('t1', $$SELECT api.activity_run_evidence('no-such-run')$$, 'PT404',
     'evidence of a run_id that does not exist: PT404'),
    ('t1', $$SELECT api.activity_run(NULL)$$, 'PT404', 'detail of a null run_id: PT404'),
    ('t1', $$SELECT api.activity_run_evidence(NULL)$$, 'PT404', 'evidence of a null run_id: PT404'),
    ('t2', $$SELECT api.activity_run('r-ok')$$, 'PT404', 'and the other way round: t2 cannot see t1''s r-ok (PT404)'),
    (NULL, $$SELECT api.activity_run('r-fail')$$, '28000', 'detail with no tenant set raises 28000'),
    (NULL, $$SELECT api.activity_run_evidence('r-fail')$$, '28000', 'evidence with no tenant set raises 28000');

SELECT plan(
    8           -- detail
    + 18        -- evidence
    + 3         -- current without a refresh
    + (SELECT count(*)::int FROM rejected)
);

-- ------------------------------------------------------------ capture as aos_api
SET LOCAL ROLE aos_api;
SELECT set_config('aos.tenant_id', 't1', TRUE);
INSERT INTO got VALUES
    ('run r-fail', api.activity_run('r-fail')),
    ('run r-ok', api.activity_run('r-ok')),
    ('evidence r-fail', api.activity_run_evidence('r-fail')),
    ('evidence r-ok', api.activity_run_evidence('r-ok')),
    ('evidence r-prevented', api.activity_run_evidence('r-prevented')),
    ('evidence r-medium', api.activity_run_evidence('r-medium')),
    ('evidence r-again', api.activity_run_evidence('r-again'));
SELECT set_config('aos.tenant_id', 't2', TRUE);
INSERT INTO got VALUES ('evidence t2 r-fail', api.activity_run_evidence('r-fail'));
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

-- ------------------------------------------------------------ detail
SELECT is(
    (SELECT aosdb_test.keys(v) FROM got WHERE k = 'run r-fail'),
    (SELECT array_agg(c ORDER BY c) FROM (
        SELECT attname::text FROM pg_attribute
        WHERE attrelid = 'activity.runs'::regclass AND attnum > 0 AND NOT attisdropped
        UNION ALL VALUES ('traces'), ('analytics')) AS a (c)),
    'the detail is every column of the run plus traces and analytics'
);
SELECT is(
    (SELECT v - 'traces' - 'analytics' FROM got WHERE k = 'run r-fail'),
    pg_temp.run_json('t1', 'r-fail'),
    'the detail holds the run row as it is in activity.runs'
);
SELECT is(
    (SELECT v ->> 'agent_id' FROM got WHERE k = 'run r-fail'),
    'agent-a',
    'r-fail of t1 is t1''s run, not the r-fail of t2 (agent-z)'
);
SELECT is(
    (SELECT v -> 'traces' FROM got WHERE k = 'run r-fail'),
    pg_temp.traces_json('t1', 'r-fail'),
    'traces are the rows of activity.aos_traces of the run'
);
SELECT is(
    (SELECT jsonb_path_query_array(v, '$.traces[*].trace_id') FROM got WHERE k = 'run r-fail'),
    '["tr-a", "tr-b"]'::jsonb,
    'traces are oldest first (tr-a started before tr-b, though recorded after it); t2''s tr-a is not among them'
);
SELECT is(
    (SELECT v -> 'analytics' FROM got WHERE k = 'run r-fail'),
    (SELECT to_jsonb(w) - 'tenant_id' - 'run_id' FROM activity.v_runs_o2 AS w
     WHERE w.tenant_id = 't1' AND w.run_id = 'r-fail'),
    'analytics is the run''s row of activity.v_runs_o2'
);
SELECT is(
    (SELECT jsonb_build_object('trace_count', v #> '{analytics,trace_count}', 'step_count', v #> '{analytics,step_count}',
                               'error_step_count', v #> '{analytics,error_step_count}',
                               'retry_count', v #> '{analytics,retry_count}',
                               'total_tokens', v #> '{analytics,total_tokens}')
     FROM got WHERE k = 'run r-fail'),
    '{"trace_count": 2, "step_count": 3, "error_step_count": 1, "retry_count": 2, "total_tokens": 20000}'::jsonb,
    'analytics counts the run''s own traces and steps only (not t2''s tr-a)'
);
SELECT is(
    (SELECT v -> 'traces' FROM got WHERE k = 'run r-ok'),
    '[]'::jsonb,
    'a run without traces has traces [] (an empty array, not null)'
);

-- ------------------------------------------------------------ evidence
SELECT is(
    (SELECT aosdb_test.keys(v) FROM got WHERE k = 'evidence r-fail'),
    ARRAY['incidents_caused', 'prevention_records', 'proposals_linked', 'proposals_triggered', 'run', 'run_id',
          'traces_linked'],
    'the evidence is {run_id, run, incidents_caused, proposals_triggered, proposals_linked, prevention_records, '
    'traces_linked}'
);
SELECT is(
    (SELECT v - 'incidents_caused' - 'proposals_triggered' - 'proposals_linked' - 'prevention_records' - 'traces_linked'
     FROM got WHERE k = 'evidence r-fail'),
    jsonb_build_object('run_id', 'r-fail', 'run', pg_temp.run_json('t1', 'r-fail')),
    'run_id is the id asked for, run the run row'
);
SELECT is(
    (SELECT v -> 'incidents_caused' FROM got WHERE k = 'evidence r-fail'),
    (SELECT jsonb_agg(to_jsonb(i)) FROM incidents.incidents AS i WHERE i.tenant_id = 't1' AND i.source_run_id = 'r-fail'),
    'incidents_caused holds the incident row the failure caused'
);
SELECT is(
    (SELECT jsonb_path_query_array(v, '$.incidents_caused[*] ? (@.tenant_id == "t1").severity')
     FROM got WHERE k = 'evidence r-fail'),
    '["high"]'::jsonb,
    'incidents_caused: exactly one incident, t1''s, severity high (t2''s incident of its own r-fail is not there)'
);
SELECT is(
    (SELECT v -> 'proposals_triggered' FROM got WHERE k = 'evidence r-fail'),
    (SELECT jsonb_agg(to_jsonb(p)) FROM policies.policy_proposals AS p
     WHERE p.tenant_id = 't1' AND p.triggering_run_id = 'r-fail'),
    'proposals_triggered holds the proposal row the failure triggered'
);
SELECT is(
    (SELECT jsonb_build_object(
                'statuses', jsonb_path_query_array(v, '$.proposals_triggered[*].status'),
                'incident', v #> '{proposals_triggered,0,triggering_incident_id}' = v #> '{incidents_caused,0,id}')
     FROM got WHERE k = 'evidence r-fail'),
    '{"statuses": ["pending"], "incident": true}'::jsonb,
    'proposals_triggered: one pending proposal, triggered by the incident in incidents_caused'
);
SELECT is(
    (SELECT v -> 'proposals_linked' FROM got WHERE k = 'evidence r-fail'),
    (SELECT v -> 'proposals_triggered' FROM got WHERE k = 'evidence r-fail'),
    'proposals_linked of r-fail: the proposal its incident triggered (the trigger is linked too)'
);
SELECT is(
    (SELECT v -> 'prevention_records' FROM got WHERE k = 'evidence r-fail'),
    (SELECT jsonb_agg(to_jsonb(p)) FROM policies.prevention_records AS p WHERE p.tenant_id = 't1' AND p.run_id = 'r-fail'),
    'prevention_records holds the prevention record rows of the run'
);
SELECT is(
    (SELECT jsonb_path_query_array(v, '$.prevention_records[*].guardrail_id')
            || jsonb_path_query_array(v, '$.prevention_records[*].outcome')
     FROM got WHERE k = 'evidence r-fail'),
    '["dg-002", "blocked"]'::jsonb,
    'prevention_records: dg-002 blocked the 20000-token run'
);
SELECT is(
    (SELECT v -> 'traces_linked' FROM got WHERE k = 'evidence r-fail'),
    (SELECT v -> 'traces' FROM got WHERE k = 'run r-fail'),
    'traces_linked holds the run''s traces, oldest first, as the detail does'
);
SELECT is(
    (SELECT v - 'run' FROM got WHERE k = 'evidence r-ok'),
    '{"run_id": "r-ok", "incidents_caused": [], "proposals_triggered": [], "proposals_linked": [],
      "prevention_records": [], "traces_linked": []}'::jsonb,
    'a run that caused nothing has five empty arrays (not nulls)'
);
SELECT is(
    (SELECT jsonb_build_object(
                'incidents', v -> 'incidents_caused', 'proposals', v -> 'proposals_triggered',
                'linked', v -> 'proposals_linked',
                'prevention', jsonb_path_query_array(v, '$.prevention_records[*].outcome'),
                'rule', v #>> '{prevention_records,0,policy_rule_id}' = current_setting('test.rule_id'))
     FROM got WHERE k = 'evidence r-prevented'),
    '{"incidents": [], "proposals": [], "linked": [], "prevention": ["prevented"], "rule": true}'::jsonb,
    'a prevented failure: no incident, no proposal triggered or linked, one prevented record of the rule'
);
SELECT is(
    (SELECT jsonb_build_object(
                'incidents', jsonb_path_query_array(v, '$.incidents_caused[*].severity'),
                'proposals', v -> 'proposals_triggered', 'linked', v -> 'proposals_linked')
     FROM got WHERE k = 'evidence r-medium'),
    '{"incidents": ["medium"], "proposals": [], "linked": []}'::jsonb,
    'a medium failure: one incident, no proposal triggered or linked'
);
SELECT is(
    (SELECT v -> 'proposals_linked' FROM got WHERE k = 'evidence r-again'),
    (SELECT jsonb_agg(to_jsonb(p) ORDER BY p.created_at) FROM policies.policy_proposals AS p
     WHERE p.tenant_id = 't1' AND p.id IN (
         SELECT l.proposal_id FROM policies.proposal_incidents AS l
         JOIN incidents.incidents AS i ON i.tenant_id = l.tenant_id AND i.id = l.incident_id
         WHERE i.tenant_id = 't1' AND i.source_run_id = 'r-again')),
    'proposals_linked holds the rows of the proposals the run''s incidents are linked to'
);
SELECT is(
    (SELECT jsonb_build_object(
                'incidents', jsonb_array_length(v -> 'incidents_caused'),
                'triggered', jsonb_path_query_array(v, '$.proposals_triggered[*].id'),
                'linked', jsonb_path_query_array(v, '$.proposals_linked[*].id'))
     FROM got WHERE k = 'evidence r-again'),
    jsonb_build_object(
        'incidents', 2,
        'triggered', (SELECT jsonb_agg(p.id) FROM policies.policy_proposals AS p
                      WHERE p.tenant_id = 't1' AND p.triggering_run_id = 'r-again'),
        'linked', (SELECT jsonb_agg(p.id ORDER BY p.triggering_run_id) FROM policies.policy_proposals AS p
                   WHERE p.tenant_id = 't1' AND p.triggering_run_id IN ('r-again', 'r-fail'))),
    'a run whose timeout joined r-fail''s proposal: proposals_triggered holds only the proposal it triggered, '
    'proposals_linked that one and the shared one, oldest first (the older one was opened later)'
);
SELECT is(
    (SELECT jsonb_build_object(
                'statuses', jsonb_path_query_array(v, '$.proposals_linked[*].status'),
                'counts', jsonb_path_query_array(v, '$.proposals_linked[*].incident_count'),
                'rules', jsonb_path_query_array(v, '$.proposals_linked[*].proposed_rule.conditions.error_codes[0]'))
     FROM got WHERE k = 'evidence r-again'),
    '{"statuses": ["pending", "pending"], "counts": [1, 2], "rules": ["SKILL_ERROR", "EXECUTION_TIMEOUT"]}'::jsonb,
    'the shared EXECUTION_TIMEOUT proposal counts both failures; the SKILL_ERROR one its own incident'
);
SELECT is(
    (SELECT count(*)::int FROM policies.policy_proposals AS p
     WHERE p.tenant_id = 't1' AND p.status = 'pending' AND p.proposed_rule #>> '{conditions,error_codes,0}' = 'EXECUTION_TIMEOUT'),
    1,
    'two EXECUTION_TIMEOUT failures of t1 made one pending proposal, not two'
);
SELECT is(
    (SELECT jsonb_build_object(
                'run', v #>> '{run,agent_id}',
                'incidents', jsonb_path_query_array(v, '$.incidents_caused[*].tenant_id'),
                'proposals', jsonb_path_query_array(v, '$.proposals_triggered[*].tenant_id'),
                'linked', jsonb_path_query_array(v, '$.proposals_linked[*].tenant_id'),
                'counts', jsonb_path_query_array(v, '$.proposals_linked[*].incident_count'),
                'traces', jsonb_path_query_array(v, '$.traces_linked[*].tenant_id'))
     FROM got WHERE k = 'evidence t2 r-fail'),
    '{"run": "agent-z", "incidents": ["t2"], "proposals": ["t2"], "linked": ["t2"], "counts": [1],
      "traces": ["t2"]}'::jsonb,
    't2 asking for r-fail gets its own run and effects only'
);

-- ------------------------------------------------------------ current, no refresh
-- Detail and evidence read the base tables: what just happened shows at once.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, created_at)
VALUES ('t1', 'r-late', 'agent-a', 'failed', 'STEP_FAILURE', '2024-03-01 14:00:00+00');
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT policies.approve_proposal(
    (SELECT (v #>> '{proposals_triggered,0,id}')::uuid FROM got WHERE k = 'evidence r-fail'), 'alice');
RESET ROLE;
SET LOCAL ROLE aos_api;
INSERT INTO got VALUES
    ('run r-late', api.activity_run('r-late')),
    ('evidence r-late', api.activity_run_evidence('r-late')),
    ('evidence r-fail approved', api.activity_run_evidence('r-fail'));
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

SELECT is(
    (SELECT jsonb_build_object('status', v -> 'status', 'analytics', v -> 'analytics') FROM got WHERE k = 'run r-late'),
    '{"status": "failed", "analytics": null}'::jsonb,
    'the detail of a run recorded after the last refresh: the run, with analytics null until the refresh'
);
SELECT is(
    (SELECT jsonb_build_object(
                'incidents', jsonb_path_query_array(v, '$.incidents_caused[*].error_code'),
                'proposals', jsonb_path_query_array(v, '$.proposals_triggered[*].status'),
                'linked', jsonb_path_query_array(v, '$.proposals_linked[*].status'))
     FROM got WHERE k = 'evidence r-late'),
    '{"incidents": ["STEP_FAILURE"], "proposals": ["pending"], "linked": ["pending"]}'::jsonb,
    'the evidence of that run shows its incident and proposal at once'
);
SELECT is(
    (SELECT jsonb_path_query_array(v, '$.proposals_triggered[*].status')
            || jsonb_path_query_array(v, '$.proposals_linked[*].status')
     FROM got WHERE k = 'evidence r-fail approved'),
    '["approved", "approved"]'::jsonb,
    'the evidence shows an approval at once, in proposals_triggered and proposals_linked'
);

-- ------------------------------------------------------------ rejected calls
SELECT * FROM aosdb_test.api_rejections();

SELECT * FROM finish();
ROLLBACK;
