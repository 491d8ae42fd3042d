-- Append-only data, on real rows: trace steps (SPEC 3.2), incident events and
-- evidence (SPEC 3.3) cannot be updated or deleted by the roles that write
-- them, and runs and traces are never deleted. Only the owner could.
BEGIN;

CREATE FUNCTION pg_temp.as_role(p_role name, p_sql text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM set_config('role', p_role, TRUE);
    PERFORM set_config('aos.tenant_id', 't1', TRUE);
    EXECUTE p_sql;
    PERFORM set_config('role', 'none', TRUE);
END
$fn$;

INSERT INTO aos.tenants (tenant_id, name) VALUES ('t1', 'Tenant one');
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t1', 'r1', 'agent', 'failed');
INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id) VALUES ('t1', 'tr1', 'r1');
INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status)
VALUES ('t1', 'tr1', 0, 'search', 'failure');
INSERT INTO incidents.incidents (tenant_id, id, source_run_id, title, severity, category)
VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', 'r1', 'incident', 'high', 'execution_failure');
INSERT INTO incidents.incident_events (tenant_id, incident_id, event_type, actor)
VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', 'detected', 'IncidentEngine');
INSERT INTO incidents.incident_evidence (tenant_id, incident_id, evidence_type)
VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', 'log');

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
    ('aos_incident_engine', 'DELETE FROM incidents.incidents', 'delete an incident');

SELECT plan((SELECT count(*)::int FROM denied) + 2);

SELECT throws_ok(format('SELECT pg_temp.as_role(%L, %L)', role_name, sql), '42501', NULL,
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

-- The writers can still append.
SELECT lives_ok(
    $$SELECT pg_temp.as_role('aos_worker', 'INSERT INTO activity.aos_trace_steps
        (tenant_id, trace_id, step_index, skill_name, status) VALUES (''t1'', ''tr1'', 1, ''search'', ''retry'')')$$,
    'aos_worker can append a trace step'
);

SELECT * FROM finish();
ROLLBACK;
