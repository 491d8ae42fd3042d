-- api.incident and api.incident_evidence (/rpc/incident and /rpc/incident_evidence):
-- the detail is the incident as it is now with its counts; the
-- evidence is exactly {incident_id, incident, source_run, evidence[],
-- timeline[] (oldest first), proposals_triggered[], proposal}, read from the
-- base tables (current without a refresh): proposal is the proposal the
-- incident is linked to (the one it triggered, or the pending one of its rule
-- it joined), null when none; another tenant's id and an unknown one are
-- PT404, no tenant 28000.
BEGIN;

SELECT aos.register_tenant(t) FROM (VALUES ('t1'), ('t2')) AS v (t);

-- Failures an hour apart (t2 reuses r-timeout with its own agent). Engines fire:
-- r-timeout (high) gets an incident and a pending proposal, r-budget (medium)
-- an incident only, r-same-1..8 (CANCELLED, low) an incident each.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, error_message, created_at)
SELECT t, r, a, 'failed', c, m, ts
FROM (VALUES
    ('t1', 'r-timeout', 'agent-a', 'EXECUTION_TIMEOUT', 'step 3 exceeded 300s', '2024-07-01 10:00:00+00'::timestamptz),
    ('t1', 'r-budget', 'agent-b', 'BUDGET_EXCEEDED', NULL, '2024-07-01 11:00:00+00'),
    ('t2', 'r-timeout', 'agent-z', 'EXECUTION_TIMEOUT', NULL, '2024-07-01 10:00:00+00')
) AS v (t, r, a, c, m, ts)
UNION ALL
SELECT 't1', 'r-same-' || i, 'agent-c', 'failed', 'CANCELLED', NULL, '2024-07-02 00:00:00+00'::timestamptz + i * INTERVAL '1 hour'
FROM generate_series(1, 8) AS i;

CREATE TEMP TABLE names (name text PRIMARY KEY, tenant_id text, id uuid) ON COMMIT DROP;
GRANT SELECT ON names TO PUBLIC;
INSERT INTO names SELECT CASE tenant_id WHEN 't1' THEN '' ELSE 't2 ' END || substr(source_run_id, 3), tenant_id, id
FROM incidents.incidents;

-- A second timeout of t1, later: its incident joins the pending proposal the
-- first one opened (one pending proposal per rule), t1's and not t2's.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, created_at)
VALUES ('t1', 'r-timeout-2', 'agent-a', 'failed', 'EXECUTION_TIMEOUT', '2024-07-01 12:00:00+00');
INSERT INTO names SELECT 'timeout-2', tenant_id, id FROM incidents.incidents
WHERE tenant_id = 't1' AND source_run_id = 'r-timeout-2';

-- A system incident (no source run), inserted directly with its timeline
-- written out of order: resolved first, detected last.
INSERT INTO names VALUES ('sys', 't1', '00000000-0000-0000-0000-000000000005');
INSERT INTO incidents.incidents (tenant_id, id, title, severity, lifecycle_state, category, error_code, cause_type,
                                 created_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by,
                                 resolution_method, resolution_notes)
VALUES ('t1', '00000000-0000-0000-0000-000000000005', 'disk full on worker 7', 'medium', 'resolved',
        'resource_exhaustion', 'RESOURCE_EXHAUSTION', 'system', '2024-07-03 00:00:00+00', '2024-07-03 01:00:00+00', 'bob',
        '2024-07-03 03:00:00+00', 'bob', 'manual', 'disk cleaned');
INSERT INTO incidents.incident_events (tenant_id, incident_id, event_type, actor, created_at) VALUES
    ('t1', '00000000-0000-0000-0000-000000000005', 'resolved', 'bob', '2024-07-03 03:00:00+00'),
    ('t1', '00000000-0000-0000-0000-000000000005', 'acknowledged', 'bob', '2024-07-03 01:00:00+00'),
    ('t1', '00000000-0000-0000-0000-000000000005', 'detected', 'monitor', '2024-07-03 00:00:00+00');

REFRESH MATERIALIZED VIEW activity.v_runs_o2;
REFRESH MATERIALIZED VIEW incidents.v_incidents_o2;

-- After the refresh, the operator works on the timeout incident: two pieces
-- of evidence (the second a recovery that was executed), an acknowledgement;
-- and acknowledges and resolves each r-same incident.
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT incidents.add_evidence((SELECT id FROM names WHERE name = 'timeout'), 'log', '{"line": "step 3: timeout"}');
SELECT incidents.add_evidence((SELECT id FROM names WHERE name = 'timeout'), 'action', '{"action": "restart"}', TRUE);
SELECT incidents.acknowledge((SELECT id FROM names WHERE name = 'timeout'), 'alice');
SELECT incidents.acknowledge(id, 'alice') FROM names WHERE name LIKE 'same-%' ORDER BY name;
SELECT incidents.resolve(id, 'alice') FROM names WHERE name LIKE 'same-%' ORDER BY name;
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

CREATE TEMP TABLE got (k text PRIMARY KEY, v jsonb) ON COMMIT DROP;
GRANT ALL ON got TO PUBLIC;

CREATE FUNCTION pg_temp.incident_json(p_name text) RETURNS jsonb
LANGUAGE sql STABLE AS $fn$
    SELECT to_jsonb(i) FROM incidents.incidents AS i JOIN names AS n ON n.tenant_id = i.tenant_id AND n.id = i.id
    WHERE n.name = p_name
$fn$;

CREATE TEMP TABLE rejected (n serial, tenant text, sql text, errcode text, description text) ON COMMIT DROP;
GRANT SELECT ON rejected TO PUBLIC;
INSERT INTO rejected (tenant, sql, errcode, description) VALUES
    ('t1', $$SELECT api.incident((SELECT id FROM names WHERE name = 't2 timeout'))$$, 'PT404',
     'detail of an incident of another tenant: not found (PT404)'),
    ('t1', $$SELECT api.incident_evidence((SELECT id FROM names WHERE name = 't2 timeout'))$$, 'PT404',
     'evidence of an incident of another tenant: not found (PT404)'),
    ('t2', $$SELECT api.incident((SELECT id FROM names WHERE name = 'timeout'))$$, 'PT404',
     'and the other way round: t2 cannot see t1''s incident (PT404)'),
    ('t1', $$SELECT api.incident('00000000-0000-0000-0000-0000000000ff')$$, 'PT404',
     'detail of an id that does not exist: PT404'),
    ('t1', $$SELECT api.incident_evidence('00000000-0000-0000-0000-0000000000ff')$$, 'PT404',
     'evidence of an id that does not exist: PT404'),
    ('t1', $$SELECT api.incident(NULL)$$, 'PT404', 'detail of a null id: PT404'),
    ('t1', $$SELECT api.incident_evidence(NULL)$$, 'PT404', 'evidence of a null id: PT404'),
    (NULL, $$SELECT api.incident((SELECT id FROM names WHERE name = 'timeout'))$$, '28000',
     'detail with no tenant set raises 28000'),
    (NULL, $$SELECT api.incident_evidence((SELECT id FROM names WHERE name = 'timeout'))$$, '28000',
     'evidence with no tenant set raises 28000');

SELECT plan(
    5           -- detail
    + 15        -- evidence
    + 1         -- timeline of one transaction
    + 2         -- t2
    + 2         -- after a review
    + (SELECT count(*)::int FROM rejected)
);

-- ------------------------------------------------------------ capture as aos_api
SET LOCAL ROLE aos_api;
SELECT set_config('aos.tenant_id', 't1', TRUE);
INSERT INTO got SELECT 'incident ' || name, api.incident(id) FROM names WHERE tenant_id = 't1';
INSERT INTO got SELECT 'evidence ' || name, api.incident_evidence(id) FROM names WHERE tenant_id = 't1';
SELECT set_config('aos.tenant_id', 't2', TRUE);
INSERT INTO got SELECT 'evidence ' || name, api.incident_evidence(id) FROM names WHERE tenant_id = 't2';
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

-- ------------------------------------------------------------ detail
SELECT is(
    (SELECT aosdb_test.keys(v) FROM got WHERE k = 'incident timeout'),
    (SELECT array_agg(c ORDER BY c) FROM (
        SELECT attname::text FROM pg_attribute
        WHERE attrelid = 'incidents.incidents'::regclass AND attnum > 0 AND NOT attisdropped
        UNION ALL VALUES ('event_count'), ('evidence_count'), ('recurrence_count')) AS a (c)),
    'the detail is every column of the incident plus event_count, evidence_count and recurrence_count'
);
SELECT is(
    (SELECT v - 'event_count' - 'evidence_count' - 'recurrence_count' FROM got WHERE k = 'incident timeout'),
    pg_temp.incident_json('timeout'),
    'the detail holds the incident row as it is in incidents.incidents'
);
SELECT is(
    (SELECT jsonb_build_object('state', v -> 'lifecycle_state', 'by', v -> 'acknowledged_by',
                               'event_count', v -> 'event_count', 'evidence_count', v -> 'evidence_count')
     FROM got WHERE k = 'incident timeout'),
    '{"state": "acked", "by": "alice", "event_count": 4, "evidence_count": 2}'::jsonb,
    'the detail is current: the acknowledgement and the counts made after the last refresh show at once'
);
SELECT is(
    (SELECT v -> 'recurrence_count' FROM got WHERE k = 'incident timeout'),
    (SELECT to_jsonb(w.recurrence_count) FROM incidents.v_incidents_o2 AS w
     WHERE w.incident_id = (SELECT id FROM names WHERE name = 'timeout')),
    'recurrence_count comes from the analytics view'
);
SELECT is(
    (SELECT jsonb_build_object('state', v -> 'lifecycle_state', 'event_count', v -> 'event_count',
                               'evidence_count', v -> 'evidence_count')
     FROM got WHERE k = 'incident sys'),
    '{"state": "resolved", "event_count": 3, "evidence_count": 0}'::jsonb,
    'the detail of an incident without evidence counts 0 pieces of evidence'
);

-- ------------------------------------------------------------ evidence
SELECT is(
    (SELECT aosdb_test.keys(v) FROM got WHERE k = 'evidence timeout'),
    ARRAY['evidence', 'incident', 'incident_id', 'proposal', 'proposals_triggered', 'source_run', 'timeline'],
    'the evidence is {incident_id, incident, source_run, evidence, timeline, proposals_triggered, proposal}'
);
SELECT is(
    (SELECT v - 'source_run' - 'evidence' - 'timeline' - 'proposals_triggered' - 'proposal'
     FROM got WHERE k = 'evidence timeout'),
    jsonb_build_object('incident_id', (SELECT id FROM names WHERE name = 'timeout'),
                       'incident', pg_temp.incident_json('timeout')),
    'incident_id is the id asked for, incident the incident row'
);
SELECT is(
    (SELECT v -> 'source_run' FROM got WHERE k = 'evidence timeout'),
    (SELECT to_jsonb(r) FROM activity.runs AS r WHERE r.tenant_id = 't1' AND r.run_id = 'r-timeout'),
    'source_run is the row of the run that caused it'
);
SELECT is(
    (SELECT v #>> '{source_run,agent_id}' FROM got WHERE k = 'evidence timeout'),
    'agent-a',
    'source_run is t1''s r-timeout, not t2''s run of the same run_id'
);
SELECT is(
    (SELECT v -> 'evidence' FROM got WHERE k = 'evidence timeout'),
    (SELECT jsonb_agg(to_jsonb(e) ORDER BY e.created_at) FROM incidents.incident_evidence AS e
     WHERE e.incident_id = (SELECT id FROM names WHERE name = 'timeout')),
    'evidence holds the incident_evidence rows of the incident'
);
SELECT is(
    (SELECT jsonb_path_query_array(v, '$.evidence[*].evidence_type') || jsonb_path_query_array(v, '$.evidence[*].recovery_executed')
     FROM got WHERE k = 'evidence timeout'),
    '["log", "action", false, true]'::jsonb,
    'evidence is oldest first: the log, then the executed recovery'
);
SELECT is(
    (SELECT v -> 'timeline' FROM got WHERE k = 'evidence timeout'),
    (SELECT jsonb_agg(to_jsonb(e) ORDER BY e.created_at) FROM incidents.incident_events AS e
     WHERE e.incident_id = (SELECT id FROM names WHERE name = 'timeout')),
    'timeline holds the incident_events rows of the incident'
);
SELECT is(
    (SELECT jsonb_path_query_array(v, '$.timeline[*].event_type') FROM got WHERE k = 'evidence timeout'),
    '["detected", "evidence_added", "evidence_added", "acknowledged"]'::jsonb,
    'timeline is oldest first: detected, the two pieces of evidence, acknowledged'
);
SELECT is(
    (SELECT v -> 'proposals_triggered' FROM got WHERE k = 'evidence timeout'),
    (SELECT jsonb_agg(to_jsonb(p)) FROM policies.policy_proposals AS p
     WHERE p.triggering_incident_id = (SELECT id FROM names WHERE name = 'timeout')),
    'proposals_triggered holds the proposal row the incident triggered'
);
SELECT is(
    (SELECT jsonb_path_query_array(v, '$.proposals_triggered[*].status')
            || jsonb_path_query_array(v, '$.proposals_triggered[*].triggering_incident_id')
     FROM got WHERE k = 'evidence timeout'),
    jsonb_build_array('pending', (SELECT id FROM names WHERE name = 'timeout')),
    'proposals_triggered: one pending proposal, triggered by this incident'
);
SELECT is(
    (SELECT v -> 'proposal' FROM got WHERE k = 'evidence timeout'),
    (SELECT v #> '{proposals_triggered,0}' FROM got WHERE k = 'evidence timeout'),
    'proposal of the incident that triggered it: that proposal (the trigger is linked to it too)'
);
SELECT is(
    (SELECT v -> 'proposal' FROM got WHERE k = 'evidence timeout-2'),
    (SELECT to_jsonb(p) FROM policies.policy_proposals AS p
     JOIN policies.proposal_incidents AS l ON l.tenant_id = p.tenant_id AND l.proposal_id = p.id
     WHERE l.tenant_id = 't1' AND l.incident_id = (SELECT id FROM names WHERE name = 'timeout-2')),
    'proposal is the row of the proposal the incident is linked to, as it is in policies.policy_proposals'
);
SELECT is(
    (SELECT jsonb_build_object('triggered', v -> 'proposals_triggered', 'proposal', v #> '{proposal,id}',
                               'count', v #> '{proposal,incident_count}',
                               'trigger', v #> '{proposal,triggering_incident_id}', 'status', v #> '{proposal,status}')
     FROM got WHERE k = 'evidence timeout-2'),
    jsonb_build_object('triggered', '[]'::jsonb,
                       'proposal', (SELECT v #> '{proposals_triggered,0,id}' FROM got WHERE k = 'evidence timeout'),
                       'count', 2, 'trigger', (SELECT id FROM names WHERE name = 'timeout'), 'status', 'pending'),
    'an incident that joined the pending proposal of its rule triggered none (proposals_triggered []), and proposal '
    'names the shared one: triggered by the first timeout, counting both'
);
SELECT is(
    (SELECT jsonb_build_object('source_run', v -> 'source_run', 'evidence', v -> 'evidence',
                               'proposals_triggered', v -> 'proposals_triggered', 'proposal', v -> 'proposal',
                               'timeline', jsonb_path_query_array(v, '$.timeline[*].event_type'))
     FROM got WHERE k = 'evidence sys'),
    '{"source_run": null, "evidence": [], "proposals_triggered": [], "proposal": null,
      "timeline": ["detected", "acknowledged", "resolved"]}'::jsonb,
    'a system incident: source_run and proposal null, empty arrays, and a timeline in time order though it was '
    'written backwards'
);
SELECT is(
    (SELECT jsonb_build_object('run', v #>> '{source_run,run_id}', 'proposals_triggered', v -> 'proposals_triggered',
                               'proposal', v -> 'proposal')
     FROM got WHERE k = 'evidence budget'),
    '{"run": "r-budget", "proposals_triggered": [], "proposal": null}'::jsonb,
    'a medium incident is linked to no proposal: proposals_triggered [], proposal null'
);

-- ------------------------------------------------------------ one transaction
-- A scenario (or any caller) that detects, acknowledges and resolves in one
-- transaction shares one now(): the timeline must still list the events in the
-- order they happened (eight incidents, so a random order cannot pass by luck).
SELECT is(
    (SELECT jsonb_agg(jsonb_path_query_array(v, '$.timeline[*].event_type') ORDER BY k)
     FROM got WHERE k LIKE 'evidence same-%'),
    (SELECT jsonb_agg('["detected", "acknowledged", "resolved"]'::jsonb) FROM generate_series(1, 8)),
    'events written in one transaction are listed in the order they happened'
);

-- ------------------------------------------------------------ t2
SELECT is(
    (SELECT jsonb_build_object('run', v #>> '{source_run,agent_id}',
                               'proposals', jsonb_path_query_array(v, '$.proposals_triggered[*].tenant_id'),
                               'proposal', jsonb_build_array(v #> '{proposal,tenant_id}', v #> '{proposal,incident_count}'),
                               'timeline', jsonb_path_query_array(v, '$.timeline[*].tenant_id'))
     FROM got WHERE k = 'evidence t2 timeout'),
    '{"run": "agent-z", "proposals": ["t2"], "proposal": ["t2", 1], "timeline": ["t2"]}'::jsonb,
    't2 gets its own incident''s evidence: its run, its proposal (same rule as t1''s, counting t2''s incident only), '
    'its timeline'
);
SELECT is(
    (SELECT count(*)::int FROM got WHERE k LIKE 'evidence %'
        AND EXISTS (SELECT FROM jsonb_path_query(v, 'lax $.**.tenant_id') AS t WHERE t #>> '{}' <> 't1')
        AND k <> 'evidence t2 timeout'),
    0,
    'no evidence t1 received holds a row of another tenant'
);

-- ------------------------------------------------------------ after a review
-- The operator rejects the shared timeout proposal; the next timeout opens a
-- new pending proposal. Evidence is current: the earlier incidents stay linked
-- to the rejected proposal, the new one names its own.
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT policies.reject_proposal((SELECT (v #>> '{proposal,id}')::uuid FROM got WHERE k = 'evidence timeout'), 'alice',
                                'not yet');
RESET ROLE;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, created_at)
VALUES ('t1', 'r-timeout-3', 'agent-a', 'failed', 'EXECUTION_TIMEOUT', '2024-07-01 13:00:00+00');
INSERT INTO names SELECT 'timeout-3', tenant_id, id FROM incidents.incidents
WHERE tenant_id = 't1' AND source_run_id = 'r-timeout-3';
SET LOCAL ROLE aos_api;
INSERT INTO got SELECT 'reviewed ' || name, api.incident_evidence(id) FROM names WHERE name IN ('timeout-2', 'timeout-3');
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

SELECT is(
    (SELECT jsonb_build_object('status', v #> '{proposal,status}', 'proposal', v #> '{proposal,id}',
                               'count', v #> '{proposal,incident_count}')
     FROM got WHERE k = 'reviewed timeout-2'),
    jsonb_build_object('status', 'rejected',
                       'proposal', (SELECT v #> '{proposal,id}' FROM got WHERE k = 'evidence timeout'), 'count', 2),
    'after the rejection, an incident of the storm still names the proposal, now rejected'
);
SELECT is(
    (SELECT jsonb_build_object('status', v #> '{proposal,status}', 'count', v #> '{proposal,incident_count}',
                               'triggered', v #> '{proposals_triggered,0,id}' = v #> '{proposal,id}',
                               'new', v #> '{proposal,id}' <> (SELECT v #> '{proposal,id}' FROM got
                                                               WHERE k = 'evidence timeout'))
     FROM got WHERE k = 'reviewed timeout-3'),
    '{"status": "pending", "count": 1, "triggered": true, "new": true}'::jsonb,
    'the next timeout after the rejection triggered a new pending proposal, and proposal names it'
);

-- ------------------------------------------------------------ rejected calls
SELECT * FROM aosdb_test.api_rejections();

SELECT * FROM finish();
ROLLBACK;
