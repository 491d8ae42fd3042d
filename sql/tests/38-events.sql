-- The outbox (README.md, Following events): every engine effect and operator action appends one
-- aos.events row with its event name, tenant, subject and payload; seq is
-- drawn at insert, so within a transaction it follows causal order; what is
-- rolled back leaves no event. (Batches by snapshot: 39-outbox.sql. The
-- NOTIFY wake-up needs real commits and is tested from Python.)
BEGIN;

SELECT aos.register_tenant(t) FROM (VALUES ('t1'), ('t2')) AS v (t);

-- 1. A run fails: run_failed, incident_created, proposal_created.
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
VALUES ('t1', 'r1', 'agent-a', 'failed', 'EXECUTION_TIMEOUT');
RESET ROLE;
SELECT set_config('test.incident', (SELECT id::text FROM incidents.incidents WHERE tenant_id = 't1' AND source_run_id = 'r1'), TRUE);
SELECT set_config('test.proposal', (SELECT id::text FROM policies.policy_proposals WHERE tenant_id = 't1' AND triggering_run_id = 'r1'), TRUE);

-- 2. Operator actions: acknowledge, resolve, approve (rule_created).
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT incidents.acknowledge(current_setting('test.incident')::uuid, 'alice');
SELECT incidents.resolve(current_setting('test.incident')::uuid, 'alice', 'auto', 'self-healed');
SELECT set_config('test.rule', policies.approve_proposal(current_setting('test.proposal')::uuid, 'alice')::text, TRUE);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

-- 3. The same failure again: prevented (prevention_recorded, run_failed, no incident).
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
VALUES ('t1', 'r2', 'agent-a', 'failed', 'EXECUTION_TIMEOUT');
RESET ROLE;
SELECT set_config('test.prevention', (SELECT id::text FROM policies.prevention_records WHERE tenant_id = 't1' AND run_id = 'r2'), TRUE);

-- 4. A critical failure in t2, rejected there.
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
VALUES ('t2', 'r1', 'agent-b', 'failed', 'AGENT_CRASH');
RESET ROLE;
SELECT set_config('test.t2_proposal', (SELECT id::text FROM policies.policy_proposals WHERE tenant_id = 't2'), TRUE);
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't2', TRUE);
SELECT policies.reject_proposal(current_setting('test.t2_proposal')::uuid, 'bob', 'noise');
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

-- What each event must say: name, tenant, subject, payload keys, payload values.
CREATE TEMP TABLE expected (
    n int, event text, tenant_id text, subject_id text, keys text[], payload jsonb
) ON COMMIT DROP;
INSERT INTO expected VALUES
    (1, 'run_failed', 't1', 'r1', '{run_id,id,error_code,prevented,is_synthetic}',
     '{"run_id": "r1", "error_code": "EXECUTION_TIMEOUT", "prevented": false, "is_synthetic": false}'),
    (2, 'incident_created', 't1', current_setting('test.incident'), '{incident_id,run_id,severity,error_code,is_synthetic}',
     jsonb_build_object('incident_id', current_setting('test.incident'), 'run_id', 'r1', 'severity', 'high',
                        'error_code', 'EXECUTION_TIMEOUT')),
    (3, 'proposal_created', 't1', current_setting('test.proposal'), '{proposal_id,incident_id,run_id,proposal_type,is_synthetic}',
     jsonb_build_object('proposal_id', current_setting('test.proposal'), 'incident_id', current_setting('test.incident'),
                        'run_id', 'r1', 'proposal_type', 'timeout_policy')),
    (4, 'incident_acknowledged', 't1', current_setting('test.incident'), '{incident_id,actor,is_synthetic}',
     jsonb_build_object('incident_id', current_setting('test.incident'), 'actor', 'alice')),
    (5, 'incident_resolved', 't1', current_setting('test.incident'), '{incident_id,actor,method,notes,is_synthetic}',
     jsonb_build_object('incident_id', current_setting('test.incident'), 'actor', 'alice', 'method', 'auto',
                        'notes', 'self-healed')),
    (6, 'proposal_approved', 't1', current_setting('test.proposal'), '{proposal_id,reviewed_by,incident_id,is_synthetic}',
     jsonb_build_object('proposal_id', current_setting('test.proposal'), 'reviewed_by', 'alice',
                        'incident_id', current_setting('test.incident'))),
    (7, 'rule_created', 't1', current_setting('test.rule'), '{rule_id,proposal_id,rule_type,enforcement,is_synthetic}',
     jsonb_build_object('rule_id', current_setting('test.rule'), 'proposal_id', current_setting('test.proposal'),
                        'rule_type', 'error_code', 'enforcement', 'warn')),
    (8, 'prevention_recorded', 't1', current_setting('test.prevention'),
     '{prevention_record_id,run_id,policy_rule_id,guardrail_id,outcome,is_synthetic}',
     jsonb_build_object('prevention_record_id', current_setting('test.prevention'), 'run_id', 'r2',
                        'policy_rule_id', current_setting('test.rule'), 'guardrail_id', NULL, 'outcome', 'prevented')),
    (9, 'run_failed', 't1', 'r2', '{run_id,id,error_code,prevented,is_synthetic}',
     '{"run_id": "r2", "error_code": "EXECUTION_TIMEOUT", "prevented": true}'),
    (10, 'run_failed', 't2', 'r1', '{run_id,id,error_code,prevented,is_synthetic}',
     '{"run_id": "r1", "error_code": "AGENT_CRASH", "prevented": false}'),
    (11, 'incident_created', 't2', NULL, '{incident_id,run_id,severity,error_code,is_synthetic}',
     '{"run_id": "r1", "severity": "critical", "error_code": "AGENT_CRASH"}'),
    (12, 'proposal_created', 't2', current_setting('test.t2_proposal'),
     '{proposal_id,incident_id,run_id,proposal_type,is_synthetic}',
     jsonb_build_object('proposal_id', current_setting('test.t2_proposal'), 'run_id', 'r1',
                        'proposal_type', 'crash_recovery_policy')),
    (13, 'proposal_rejected', 't2', current_setting('test.t2_proposal'), '{proposal_id,reviewed_by,incident_id,is_synthetic}',
     jsonb_build_object('proposal_id', current_setting('test.t2_proposal'), 'reviewed_by', 'bob'));

CREATE TEMP VIEW numbered AS
SELECT row_number() OVER (ORDER BY seq)::int AS n, * FROM aos.events;

SELECT plan(
    1                                               -- the whole sequence
    + (SELECT count(*)::int FROM expected) * 2      -- keys and values of each event
    + 1                                             -- causal order per failing run
    + 3                                             -- rolled-back causes
);

SELECT results_eq(
    $$SELECT n, event, tenant_id, coalesce(subject_id, '?') FROM numbered ORDER BY n$$,
    $$SELECT e.n, e.event, e.tenant_id, coalesce(e.subject_id,
          (SELECT id::text FROM incidents.incidents WHERE tenant_id = 't2')) FROM expected AS e ORDER BY e.n$$,
    'every effect and action appended exactly one event, in causal order, with its tenant and subject'
);

SELECT ok(
    nb.payload ?& ex.keys,
    format('event %s (%s) has the payload keys %s', ex.n, ex.event, array_to_string(ex.keys, ', '))
)
FROM numbered AS nb JOIN expected AS ex ON ex.n = nb.n
ORDER BY ex.n;

SELECT ok(
    nb.payload @> ex.payload,
    format('event %s (%s) has the expected %s', ex.n, ex.event,
           (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(ex.payload) AS k))
)
FROM numbered AS nb JOIN expected AS ex ON ex.n = nb.n
ORDER BY ex.n;

SELECT ok(
    (SELECT bool_and(seq_run < seq_incident AND seq_incident < seq_proposal)
     FROM (SELECT max(seq) FILTER (WHERE event = 'run_failed') AS seq_run,
                  max(seq) FILTER (WHERE event = 'incident_created') AS seq_incident,
                  max(seq) FILTER (WHERE event = 'proposal_created') AS seq_proposal
           FROM aos.events WHERE tenant_id IN ('t1', 't2') AND event IN ('run_failed', 'incident_created', 'proposal_created')
             AND (payload ->> 'run_id') = 'r1'
           GROUP BY tenant_id) AS s),
    'for one failing run: run_failed < incident_created < proposal_created'
);

-- A rolled-back cause leaves no event behind. setval is not undone by the
-- rollback, so it carries the count seen inside the savepoint out of it.
CREATE TEMP SEQUENCE events_inside;
SELECT set_config('test.events_before', (SELECT count(*)::text FROM aos.events), TRUE);
SAVEPOINT before_failure;
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
VALUES ('t1', 'r-rolled-back', 'agent-a', 'failed', 'AGENT_CRASH');
RESET ROLE;
SELECT setval('events_inside', (SELECT count(*) FROM aos.events));
ROLLBACK TO SAVEPOINT before_failure;

SELECT is(
    (SELECT last_value FROM events_inside)::int - current_setting('test.events_before')::int, 3,
    'inside the savepoint the failure had published run_failed, incident_created and proposal_created'
);
SELECT results_eq(
    $$SELECT count(*)::int FROM aos.events$$,
    format('VALUES (%s)', current_setting('test.events_before')),
    'after rolling the failure back, its events are gone'
);
SELECT is_empty(
    $$SELECT FROM aos.events WHERE payload ->> 'run_id' = 'r-rolled-back'$$,
    'no event mentions the rolled-back run'
);

SELECT * FROM finish();
ROLLBACK;
