-- Operator actions on incidents (README.md, How an operator acts): acknowledge (active -> acked),
-- resolve (active or acked -> resolved) and add_evidence, each with its
-- timeline event and outbox event; wrong transitions 55000, invalid input
-- 22023, another tenant's incident P0002, no tenant 28000, roles without the
-- verbs 42501, and every rejected call writes nothing.
BEGIN;

SELECT aos.register_tenant(t) FROM (VALUES ('t1'), ('t2')) AS v (t);

-- One failed run, hence one incident, per story.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
SELECT t, r, 'agent-a', 'failed', 'BUDGET_EXCEEDED'
FROM (VALUES ('t1', 'r-ack'), ('t1', 'r-resolve'), ('t1', 'r-evidence'), ('t1', 'r-acked'), ('t1', 'r-resolved'),
             ('t1', 'r-synthetic'), ('t2', 'r-other')) AS v (t, r);
UPDATE activity.runs SET is_synthetic = TRUE, synthetic_scenario_id = 'SDSR-T-035'
WHERE tenant_id = 't1' AND run_id = 'r-synthetic';

-- The incidents by name, readable by every role the test plays.
CREATE TEMP TABLE inc (name text PRIMARY KEY, id uuid) ON COMMIT DROP;
GRANT SELECT ON inc TO PUBLIC;
INSERT INTO inc
SELECT substr(source_run_id, 3), id FROM incidents.incidents WHERE source_run_id LIKE 'r-%';
UPDATE incidents.incidents SET is_synthetic = TRUE, synthetic_scenario_id = 'SDSR-T-035'
WHERE id = (SELECT id FROM inc WHERE name = 'synthetic');

CREATE TEMP TABLE rejected (
    n serial, who name NOT NULL, tenant text, sql text NOT NULL, errcode text NOT NULL, description text NOT NULL
);
GRANT SELECT ON rejected TO PUBLIC;

INSERT INTO rejected (who, tenant, sql, errcode, description) VALUES
    -- transitions
    ('aos_operator', 't1', $$SELECT incidents.acknowledge((SELECT id FROM inc WHERE name = 'acked'), 'bob')$$, '55000',
     'acknowledging an acked incident raises 55000'),
    ('aos_operator', 't1', $$SELECT incidents.acknowledge((SELECT id FROM inc WHERE name = 'resolved'), 'bob')$$, '55000',
     'acknowledging a resolved incident raises 55000'),
    ('aos_operator', 't1', $$SELECT incidents.resolve((SELECT id FROM inc WHERE name = 'resolved'), 'bob')$$, '55000',
     'resolving a resolved incident raises 55000'),
    -- invalid input
    ('aos_operator', 't1', $$SELECT incidents.acknowledge((SELECT id FROM inc WHERE name = 'evidence'), '')$$, '22023',
     'acknowledge with an empty actor raises 22023'),
    ('aos_operator', 't1', $$SELECT incidents.acknowledge((SELECT id FROM inc WHERE name = 'evidence'), '   ')$$, '22023',
     'acknowledge with a blank actor raises 22023'),
    ('aos_operator', 't1', $$SELECT incidents.acknowledge((SELECT id FROM inc WHERE name = 'evidence'), NULL)$$, '22023',
     'acknowledge with a null actor raises 22023'),
    ('aos_operator', 't1', $$SELECT incidents.resolve((SELECT id FROM inc WHERE name = 'evidence'), ' ')$$, '22023',
     'resolve with a blank actor raises 22023'),
    ('aos_operator', 't1', $$SELECT incidents.resolve((SELECT id FROM inc WHERE name = 'evidence'), 'bob', 'magic')$$, '22023',
     'resolve with an unknown method raises 22023'),
    ('aos_operator', 't1', $$SELECT incidents.resolve((SELECT id FROM inc WHERE name = 'evidence'), 'bob', 'MANUAL')$$, '22023',
     'resolve with a method in the wrong case raises 22023'),
    ('aos_operator', 't1', $$SELECT incidents.resolve((SELECT id FROM inc WHERE name = 'evidence'), 'bob', NULL)$$, '22023',
     'resolve with a null method raises 22023'),
    ('aos_operator', 't1', $$SELECT incidents.add_evidence((SELECT id FROM inc WHERE name = 'evidence'), 'screenshot', '{}')$$,
     '22023', 'add_evidence with an unknown type raises 22023'),
    ('aos_operator', 't1', $$SELECT incidents.add_evidence((SELECT id FROM inc WHERE name = 'evidence'), NULL, '{}')$$,
     '22023', 'add_evidence with a null type raises 22023'),
    ('aos_operator', 't1', $$SELECT incidents.add_evidence((SELECT id FROM inc WHERE name = 'evidence'), 'log', '["line"]')$$,
     '22023', 'add_evidence with a payload that is an array raises 22023'),
    ('aos_operator', 't1', $$SELECT incidents.add_evidence((SELECT id FROM inc WHERE name = 'evidence'), 'log', '"line"')$$,
     '22023', 'add_evidence with a payload that is a string raises 22023'),
    ('aos_operator', 't1', $$SELECT incidents.add_evidence((SELECT id FROM inc WHERE name = 'evidence'), 'log', NULL)$$,
     '22023', 'add_evidence with a null payload raises 22023'),
    -- not found
    ('aos_operator', 't1', $$SELECT incidents.acknowledge((SELECT id FROM inc WHERE name = 'other'), 'bob')$$, 'P0002',
     'acknowledge of another tenant''s incident: not found (P0002)'),
    ('aos_operator', 't1', $$SELECT incidents.resolve((SELECT id FROM inc WHERE name = 'other'), 'bob')$$, 'P0002',
     'resolve of another tenant''s incident: not found (P0002)'),
    ('aos_operator', 't1', $$SELECT incidents.add_evidence((SELECT id FROM inc WHERE name = 'other'), 'log', '{}')$$,
     'P0002', 'add_evidence to another tenant''s incident: not found (P0002)'),
    ('aos_operator', 't1', $$SELECT incidents.acknowledge('00000000-0000-0000-0000-000000000000', 'bob')$$, 'P0002',
     'acknowledge of an id that does not exist: not found (P0002)'),
    ('aos_operator', 't1', $$SELECT incidents.resolve(NULL, 'bob')$$, 'P0002',
     'resolve of a null id: not found (P0002)'),
    -- no tenant
    ('aos_operator', NULL, $$SELECT incidents.acknowledge((SELECT id FROM inc WHERE name = 'evidence'), 'bob')$$, '28000',
     'acknowledge with no tenant set raises 28000'),
    ('aos_operator', NULL, $$SELECT incidents.resolve((SELECT id FROM inc WHERE name = 'evidence'), 'bob')$$, '28000',
     'resolve with no tenant set raises 28000'),
    ('aos_operator', NULL, $$SELECT incidents.add_evidence((SELECT id FROM inc WHERE name = 'evidence'), 'log', '{}')$$,
     '28000', 'add_evidence with no tenant set raises 28000'),
    -- roles without the verbs
    ('aos_worker', 't1', $$SELECT incidents.acknowledge((SELECT id FROM inc WHERE name = 'evidence'), 'bob')$$, '42501',
     'aos_worker cannot acknowledge (42501)'),
    ('aos_worker', 't1', $$SELECT incidents.resolve((SELECT id FROM inc WHERE name = 'evidence'), 'bob')$$, '42501',
     'aos_worker cannot resolve (42501)'),
    ('aos_worker', 't1', $$SELECT incidents.add_evidence((SELECT id FROM inc WHERE name = 'evidence'), 'log', '{}')$$,
     '42501', 'aos_worker cannot add evidence (42501)'),
    ('aos_api', 't1', $$SELECT incidents.acknowledge((SELECT id FROM inc WHERE name = 'evidence'), 'bob')$$, '42501',
     'aos_api cannot acknowledge (42501)'),
    ('aos_api', 't1', $$SELECT incidents.resolve((SELECT id FROM inc WHERE name = 'evidence'), 'bob')$$, '42501',
     'aos_api cannot resolve (42501)'),
    ('aos_api', 't1', $$SELECT incidents.add_evidence((SELECT id FROM inc WHERE name = 'evidence'), 'log', '{}')$$,
     '42501', 'aos_api cannot add evidence (42501)'),
    ('aos_bi', 't1', $$SELECT incidents.acknowledge((SELECT id FROM inc WHERE name = 'evidence'), 'bob')$$, '42501',
     'aos_bi cannot acknowledge (42501)'),
    ('aos_operator', 't1', $$SELECT incidents._lock_incident((SELECT id FROM inc WHERE name = 'evidence'))$$, '42501',
     'aos_operator cannot call the internal helper incidents._lock_incident (42501)'),
    ('aos_operator', 't1',
     $$UPDATE incidents.incidents SET lifecycle_state = 'resolved', resolved_at = now(), resolved_by = 'x',
       resolution_method = 'manual'$$,
     '42501', 'aos_operator cannot bypass the verbs with a direct UPDATE (42501)');

-- Prepare the incidents the rejections use: one acked, one resolved.
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT incidents.acknowledge((SELECT id FROM inc WHERE name = 'acked'), 'carol');
SELECT incidents.resolve((SELECT id FROM inc WHERE name = 'resolved'), 'carol');
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

SELECT plan(
    6       -- acknowledge
    + 7     -- resolve
    + 6     -- add_evidence
    + 3     -- aos_scenario may act too, synthetic marks
    + (SELECT count(*)::int * 2 FROM rejected)
);

-- ------------------------------------------------------------ acknowledge
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT lives_ok(
    $$SELECT incidents.acknowledge((SELECT id FROM inc WHERE name = 'ack'), 'alice')$$,
    'aos_operator acknowledges an active incident of its tenant'
);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

SELECT results_eq(
    $$SELECT lifecycle_state, acknowledged_at = now(), acknowledged_by, resolved_at
      FROM incidents.incidents WHERE id = (SELECT id FROM inc WHERE name = 'ack')$$,
    $$VALUES ('acked', TRUE, 'alice', NULL::timestamptz)$$,
    'acknowledge: active -> acked, with acknowledged_at and acknowledged_by'
);
SELECT results_eq(
    $$SELECT event_type, actor FROM incidents.incident_events
      WHERE incident_id = (SELECT id FROM inc WHERE name = 'ack') ORDER BY created_at, event_type DESC$$,
    $$VALUES ('detected', 'IncidentEngine'), ('acknowledged', 'alice')$$,
    'acknowledge appends an acknowledged event by the actor to the timeline'
);
SELECT results_eq(
    $$SELECT event, tenant_id, payload ->> 'incident_id', payload ->> 'actor' FROM aos.events
      WHERE subject_id = (SELECT id FROM inc WHERE name = 'ack')::text AND event <> 'incident_created'$$,
    $$SELECT 'incident_acknowledged', 't1', id::text, 'alice' FROM inc WHERE name = 'ack'$$,
    'acknowledge publishes incident_acknowledged with the incident and the actor'
);
SELECT results_eq(
    $$SELECT lifecycle_state, acknowledged_by FROM incidents.incidents WHERE tenant_id = 't2'$$,
    $$VALUES ('active', NULL::text)$$,
    'the other tenant''s incident is untouched'
);
SELECT results_eq(
    $$SELECT count(*)::int FROM incidents.incidents WHERE lifecycle_state = 'acked'$$,
    $$VALUES (2)$$,
    'only the two acknowledged incidents are acked'
);

-- ---------------------------------------------------------------- resolve
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT lives_ok(
    $$SELECT incidents.resolve((SELECT id FROM inc WHERE name = 'ack'), 'bob', 'rollback', 'reverted the deploy')$$,
    'aos_operator resolves an acked incident'
);
SELECT lives_ok(
    $$SELECT incidents.resolve((SELECT id FROM inc WHERE name = 'resolve'), 'bob')$$,
    'aos_operator resolves an active incident with the default method'
);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

SELECT results_eq(
    $$SELECT lifecycle_state, resolved_at = now(), resolved_by, resolution_method, resolution_notes,
             acknowledged_by
      FROM incidents.incidents WHERE id = (SELECT id FROM inc WHERE name = 'ack')$$,
    $$VALUES ('resolved', TRUE, 'bob', 'rollback', 'reverted the deploy', 'alice')$$,
    'resolve: acked -> resolved with resolver, method and notes; the acknowledgement is kept'
);
SELECT results_eq(
    $$SELECT lifecycle_state, resolved_by, resolution_method, resolution_notes, acknowledged_at
      FROM incidents.incidents WHERE id = (SELECT id FROM inc WHERE name = 'resolve')$$,
    $$VALUES ('resolved', 'bob', 'manual', NULL::text, NULL::timestamptz)$$,
    'resolve: active -> resolved directly, method manual by default, no notes'
);
SELECT results_eq(
    $$SELECT event_type, actor, details ->> 'method', details ->> 'notes' FROM incidents.incident_events
      WHERE incident_id = (SELECT id FROM inc WHERE name = 'ack') AND event_type = 'resolved'$$,
    $$VALUES ('resolved', 'bob', 'rollback', 'reverted the deploy')$$,
    'resolve appends a resolved event with method and notes to the timeline'
);
SELECT results_eq(
    $$SELECT i.name, e.event, e.payload ->> 'method', e.payload ->> 'actor'
      FROM aos.events AS e JOIN inc AS i ON e.subject_id = i.id::text
      WHERE e.event = 'incident_resolved' ORDER BY e.seq$$,
    $$VALUES ('resolved', 'incident_resolved', 'manual', 'carol'),
             ('ack', 'incident_resolved', 'rollback', 'bob'),
             ('resolve', 'incident_resolved', 'manual', 'bob')$$,
    'each resolve publishes one incident_resolved with its method and actor'
);
SELECT results_eq(
    $$SELECT count(*)::int FROM incidents.incident_events
      WHERE incident_id = (SELECT id FROM inc WHERE name = 'resolve')$$,
    $$VALUES (2)$$,
    'a directly resolved incident has two timeline events: detected, resolved'
);

-- ----------------------------------------------------------- add_evidence
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT set_config('test.evidence_1', incidents.add_evidence((SELECT id FROM inc WHERE name = 'evidence'), 'log',
    '{"line": "timeout at step 3"}')::text, TRUE);
SELECT set_config('test.evidence_2', incidents.add_evidence((SELECT id FROM inc WHERE name = 'evidence'), 'action',
    '{"restarted": true}', TRUE)::text, TRUE);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

SELECT results_eq(
    $$SELECT id::text, evidence_type, run_id, recovery_executed, payload FROM incidents.incident_evidence
      WHERE incident_id = (SELECT id FROM inc WHERE name = 'evidence') ORDER BY recovery_executed$$,
    format($$VALUES (%L, 'log', 'r-evidence', FALSE, '{"line": "timeout at step 3"}'::jsonb),
                    (%L, 'action', 'r-evidence', TRUE, '{"restarted": true}')$$,
           current_setting('test.evidence_1'), current_setting('test.evidence_2')),
    'add_evidence returns the id of the evidence row it writes, linked to the incident''s source run'
);
SELECT results_eq(
    $$SELECT event_type, details ->> 'evidence_id', details ->> 'evidence_type' FROM incidents.incident_events
      WHERE incident_id = (SELECT id FROM inc WHERE name = 'evidence') AND event_type = 'evidence_added'
      ORDER BY details ->> 'evidence_type' DESC$$,
    format($$VALUES ('evidence_added', %L, 'log'), ('evidence_added', %L, 'action')$$,
           current_setting('test.evidence_1'), current_setting('test.evidence_2')),
    'add_evidence appends an evidence_added event per evidence to the timeline'
);
SELECT results_eq(
    $$SELECT count(*)::int FROM aos.events WHERE event = 'evidence_added'
      AND subject_id = (SELECT id FROM inc WHERE name = 'evidence')::text$$,
    $$VALUES (2)$$,
    'add_evidence publishes one outbox event per evidence'
);
SELECT results_eq(
    $$SELECT lifecycle_state FROM incidents.incidents WHERE id = (SELECT id FROM inc WHERE name = 'evidence')$$,
    $$VALUES ('active')$$,
    'adding evidence does not change the lifecycle state'
);
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT isnt(
    incidents.add_evidence((SELECT id FROM inc WHERE name = 'resolved'), 'postmortem', '{"doc": "pm-1"}'),
    NULL, 'evidence can still be added to a resolved incident (a postmortem)'
);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;
SELECT results_eq(
    $$SELECT evidence_type, run_id FROM incidents.incident_evidence WHERE tenant_id = 't1'
      AND incident_id = (SELECT id FROM inc WHERE name = 'resolved')$$,
    $$VALUES ('postmortem', 'r-resolved')$$,
    'the postmortem is stored against the resolved incident'
);

-- --------------------------------------------- the scenario runner acts too
SET LOCAL ROLE aos_scenario;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT lives_ok(
    $$SELECT incidents.acknowledge((SELECT id FROM inc WHERE name = 'synthetic'), 'sdsr')$$,
    'aos_scenario may acknowledge an incident of its tenant'
);
SELECT lives_ok(
    $$SELECT incidents.add_evidence((SELECT id FROM inc WHERE name = 'synthetic'), 'metric', '{"p95_ms": 900}')$$,
    'aos_scenario may add evidence to an incident of its tenant'
);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;
SELECT results_eq(
    $$SELECT 'event ' || event_type, is_synthetic, synthetic_scenario_id FROM incidents.incident_events
      WHERE incident_id = (SELECT id FROM inc WHERE name = 'synthetic') AND event_type <> 'detected'
      UNION ALL
      SELECT 'evidence ' || evidence_type, is_synthetic, synthetic_scenario_id FROM incidents.incident_evidence
      WHERE incident_id = (SELECT id FROM inc WHERE name = 'synthetic')
      ORDER BY 1$$,
    $$VALUES ('event acknowledged', TRUE, 'SDSR-T-035'), ('event evidence_added', TRUE, 'SDSR-T-035'),
             ('evidence metric', TRUE, 'SDSR-T-035')$$,
    'timeline events and evidence of a synthetic incident carry its synthetic marks'
);

-- ---------------------------------------------- rejected calls, one by one
SELECT * FROM aosdb_test.rejections();

SELECT * FROM finish();
ROLLBACK;
