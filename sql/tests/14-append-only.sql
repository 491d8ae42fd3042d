-- Append-only data, on real rows: trace steps, incident events and
-- evidence, the links of incidents to proposals (0010) and the
-- outbox cannot be updated or deleted by the roles that write them,
-- and runs and traces are never deleted. Only the owner could.
BEGIN;

-- The fixture fires no engine (a failed run would get its own incident, a
-- high incident its proposal): every row is the one inserted here.
INSERT INTO aos.tenants (tenant_id, name) VALUES ('t1', 'Tenant one');
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t1', 'r1', 'agent', 'running');
INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id) VALUES ('t1', 'tr1', 'r1');
INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status)
VALUES ('t1', 'tr1', 0, 'search', 'failure');
INSERT INTO incidents.incidents (tenant_id, id, source_run_id, title, severity, category)
VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', 'r1', 'incident', 'medium', 'execution_failure');
INSERT INTO incidents.incident_events (tenant_id, incident_id, event_type, actor)
VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', 'detected', 'IncidentEngine');
INSERT INTO incidents.incident_evidence (tenant_id, incident_id, evidence_type)
VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', 'log');
INSERT INTO policies.policy_proposals (tenant_id, id, proposal_name, proposal_type, proposed_rule)
VALUES ('t1', '00000000-0000-0000-0000-0000000000c1', 'proposal', 'retry_policy',
        '{"rule_type": "error_code", "conditions": {"error_codes": ["STEP_FAILURE"]}, "enforcement": "warn"}');
INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id)
VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000c1');
INSERT INTO aos.events (event, tenant_id, subject_id, payload)
VALUES ('incident_created', 't1', '00000000-0000-0000-0000-0000000000b1', '{"run_id": "r1"}');

CREATE TEMP TABLE denied (role_name name, sql text, what text) ON COMMIT DROP;
INSERT INTO denied VALUES
    ('aos_worker', $$UPDATE activity.aos_trace_steps SET status = 'success'$$, 'update a trace step'),
    ('aos_worker', 'DELETE FROM activity.aos_trace_steps', 'delete a trace step'),
    ('aos_worker', 'DELETE FROM activity.aos_traces', 'delete a trace'),
    ('aos_worker', 'DELETE FROM activity.runs', 'delete a run'),
    ('aos_worker', 'TRUNCATE activity.aos_trace_steps', 'truncate the trace steps'),
    ('aos_scenario', $$UPDATE activity.aos_trace_steps SET status = 'success'$$, 'update a trace step'),
    ('aos_scenario', 'DELETE FROM activity.aos_trace_steps', 'delete a trace step'),
    ('aos_scenario', 'DELETE FROM activity.aos_traces', 'delete a trace'),
    ('aos_scenario', 'DELETE FROM activity.runs', 'delete a run'),
    ('aos_policy_engine', $$UPDATE activity.aos_trace_steps SET status = 'success'$$, 'update a trace step'),
    ('aos_incident_engine', $$UPDATE incidents.incident_events SET actor = 'someone else'$$,
     'update an incident event'),
    ('aos_incident_engine', 'DELETE FROM incidents.incident_events', 'delete an incident event'),
    ('aos_incident_engine', $$UPDATE incidents.incident_evidence SET payload = '{"x": 1}'$$,
     'update incident evidence'),
    ('aos_incident_engine', 'DELETE FROM incidents.incident_evidence', 'delete incident evidence'),
    ('aos_incident_engine', 'DELETE FROM incidents.incidents', 'delete an incident'),
    ('aos_proposal_engine', $$UPDATE policies.proposal_incidents SET linked_at = now() - interval '1 day'$$,
     'update a proposal link'),
    ('aos_proposal_engine', 'DELETE FROM policies.proposal_incidents', 'delete a proposal link'),
    ('aos_incident_engine', $$UPDATE aos.events SET payload = '{"x": 1}'$$, 'update an outbox event'),
    ('aos_incident_engine', 'DELETE FROM aos.events', 'delete an outbox event'),
    ('aos_proposal_engine', $$UPDATE aos.events SET payload = '{"x": 1}'$$, 'update an outbox event'),
    ('aos_proposal_engine', 'DELETE FROM aos.events', 'delete an outbox event'),
    ('aos_policy_engine', $$UPDATE aos.events SET payload = '{"x": 1}'$$, 'update an outbox event'),
    ('aos_policy_engine', 'DELETE FROM aos.events', 'delete an outbox event');

SELECT plan((SELECT count(*)::int FROM denied) + 5);

SELECT throws_ok(format('SELECT aosdb_test.as_role(%L, %L)', role_name, sql), '42501', NULL,
                 format('%s cannot %s (42501)', role_name, what))
FROM denied ORDER BY role_name, what;

SELECT results_eq(
    $$
    SELECT (SELECT count(*) FROM activity.runs)::int, (SELECT count(*) FROM activity.aos_traces)::int,
           (SELECT string_agg(status, ',') FROM activity.aos_trace_steps),
           (SELECT string_agg(actor, ',') FROM incidents.incident_events),
           (SELECT string_agg(payload::text, ',') FROM incidents.incident_evidence),
           (SELECT count(*) FROM incidents.incidents)::int
    $$,
    $$ VALUES (1, 1, 'failure', 'IncidentEngine', '{}', 1) $$,
    'every row is still there, unchanged'
);
SELECT results_eq(
    'SELECT incident_id, proposal_id, linked_at = now() FROM policies.proposal_incidents',
    $$ VALUES ('00000000-0000-0000-0000-0000000000b1'::uuid, '00000000-0000-0000-0000-0000000000c1'::uuid, TRUE) $$,
    'the proposal link is still there, unchanged'
);
SELECT results_eq(
    'SELECT event, subject_id, payload FROM aos.events',
    $$ VALUES ('incident_created'::text, '00000000-0000-0000-0000-0000000000b1'::text, '{"run_id": "r1"}'::jsonb) $$,
    'the outbox event is still there, unchanged'
);

-- The writers can still append.
SELECT lives_ok(
    $$SELECT aosdb_test.as_role('aos_worker', 'INSERT INTO activity.aos_trace_steps
        (tenant_id, trace_id, step_index, skill_name, status) VALUES (''t1'', ''tr1'', 1, ''search'', ''retry'')')$$,
    'aos_worker can append a trace step'
);
SELECT lives_ok(
    $$SELECT aosdb_test.as_role('aos_incident_engine', 'INSERT INTO aos.events (event, tenant_id, subject_id)
        VALUES (''incident_acknowledged'', ''t1'', ''00000000-0000-0000-0000-0000000000b1'')')$$,
    'aos_incident_engine can append an outbox event'
);

SELECT * FROM finish();
ROLLBACK;
