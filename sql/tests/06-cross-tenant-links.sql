-- A link can never cross tenants (docs/contract.md, Links): each tenant-first foreign key
-- rejects a row of tenant t2 pointing at a row of tenant t1 with 23503 and
-- names the key it broke, while the same link within one tenant is accepted.
BEGIN;

-- The fixture fires no engine: the runs are still running (a failed run would
-- get its incident from the IncidentEngine) and the incidents are medium (a
-- high one would get its proposal from the PolicyProposalEngine), so every row
-- below is the one this file inserts, with the ids the cases name.
INSERT INTO aos.tenants (tenant_id, name) VALUES ('t1', 'Tenant one'), ('t2', 'Tenant two');
INSERT INTO activity.runs (tenant_id, id, run_id, agent_id, status) VALUES
    ('t1', '00000000-0000-0000-0000-0000000000a1', 'r1', 'agent', 'running'),
    ('t2', '00000000-0000-0000-0000-0000000000a2', 'r2', 'agent', 'running');
INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id) VALUES ('t1', 'tr1', 'r1'), ('t2', 'tr2', 'r2');
INSERT INTO incidents.incidents (tenant_id, id, source_run_id, title, severity, category) VALUES
    ('t1', '00000000-0000-0000-0000-0000000000b1', 'r1', 'incident one', 'medium', 'execution_failure'),
    ('t2', '00000000-0000-0000-0000-0000000000b2', 'r2', 'incident two', 'medium', 'execution_failure');
INSERT INTO policies.policy_proposals (tenant_id, id, proposal_name, proposal_type, proposed_rule) VALUES
    ('t1', '00000000-0000-0000-0000-0000000000c1', 'proposal one', 'timeout_policy',
     '{"rule_type": "error_code", "conditions": {"error_codes": ["EXECUTION_TIMEOUT"]}, "enforcement": "warn"}');
INSERT INTO policies.policy_rules (tenant_id, id, name, rule_type, conditions, enforcement) VALUES
    ('t1', '00000000-0000-0000-0000-0000000000d1', 'rule one', 'error_code', '{"error_codes": ["AGENT_CRASH"]}',
     'block');

-- Each case: a statement in tenant t2 that points at tenant t1 (must fail),
-- the same statement pointing within its own tenant (must pass), and the key.
CREATE TEMP TABLE cases (fk name, cross_tenant text, same_tenant text) ON COMMIT DROP;
INSERT INTO cases VALUES
    ('aos_traces_run_fk',
     $$INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id) VALUES ('t2', 'tr-x', 'r1')$$,
     $$INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id) VALUES ('t2', 'tr-x', 'r2')$$),
    ('aos_trace_steps_trace_fk',
     $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status)
       VALUES ('t2', 'tr1', 0, 'skill', 'success')$$,
     $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status)
       VALUES ('t2', 'tr2', 0, 'skill', 'success')$$),
    ('incidents_source_run_fk',
     $$INSERT INTO incidents.incidents (tenant_id, source_run_id, title, severity, category, cause_type)
       VALUES ('t2', 'r1', 'x', 'low', 'manual', 'system')$$,
     $$INSERT INTO incidents.incidents (tenant_id, source_run_id, title, severity, category, cause_type)
       VALUES ('t2', 'r2', 'x', 'low', 'manual', 'system')$$),
    ('incidents_llm_run_fk',
     $$INSERT INTO incidents.incidents (tenant_id, llm_run_id, title, severity, category, cause_type)
       VALUES ('t2', '00000000-0000-0000-0000-0000000000a1', 'x', 'low', 'manual', 'system')$$,
     $$INSERT INTO incidents.incidents (tenant_id, llm_run_id, title, severity, category, cause_type)
       VALUES ('t2', '00000000-0000-0000-0000-0000000000a2', 'x', 'low', 'manual', 'system')$$),
    ('incident_events_incident_fk',
     $$INSERT INTO incidents.incident_events (tenant_id, incident_id, event_type, actor)
       VALUES ('t2', '00000000-0000-0000-0000-0000000000b1', 'detected', 'test')$$,
     $$INSERT INTO incidents.incident_events (tenant_id, incident_id, event_type, actor)
       VALUES ('t2', '00000000-0000-0000-0000-0000000000b2', 'detected', 'test')$$),
    ('incident_evidence_incident_fk',
     $$INSERT INTO incidents.incident_evidence (tenant_id, incident_id, evidence_type)
       VALUES ('t2', '00000000-0000-0000-0000-0000000000b1', 'log')$$,
     $$INSERT INTO incidents.incident_evidence (tenant_id, incident_id, evidence_type)
       VALUES ('t2', '00000000-0000-0000-0000-0000000000b2', 'log')$$),
    ('incident_evidence_run_fk',
     $$INSERT INTO incidents.incident_evidence (tenant_id, incident_id, evidence_type, run_id)
       VALUES ('t2', '00000000-0000-0000-0000-0000000000b2', 'log', 'r1')$$,
     $$INSERT INTO incidents.incident_evidence (tenant_id, incident_id, evidence_type, run_id)
       VALUES ('t2', '00000000-0000-0000-0000-0000000000b2', 'log', 'r2')$$),
    ('policy_proposals_triggering_incident_fk',
     $$INSERT INTO policies.policy_proposals (tenant_id, triggering_incident_id, proposal_name, proposal_type,
           proposed_rule)
       VALUES ('t2', '00000000-0000-0000-0000-0000000000b1', 'p', 'retry_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["STEP_FAILURE"]}, "enforcement": "warn"}')$$,
     $$INSERT INTO policies.policy_proposals (tenant_id, triggering_incident_id, proposal_name, proposal_type,
           proposed_rule)
       VALUES ('t2', '00000000-0000-0000-0000-0000000000b2', 'p', 'retry_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["STEP_FAILURE"]}, "enforcement": "warn"}')$$),
    ('policy_proposals_triggering_run_fk',
     $$INSERT INTO policies.policy_proposals (tenant_id, triggering_run_id, proposal_name, proposal_type, proposed_rule)
       VALUES ('t2', 'r1', 'p', 'retry_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["STEP_FAILURE"]}, "enforcement": "warn"}')$$,
     $$INSERT INTO policies.policy_proposals (tenant_id, triggering_run_id, proposal_name, proposal_type, proposed_rule)
       VALUES ('t2', 'r2', 'p', 'retry_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["STEP_FAILURE"]}, "enforcement": "warn"}')$$),
    ('policy_rules_source_proposal_fk',
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement, source, source_proposal_id)
       VALUES ('t2', 'r', 'error_code', '{"error_codes": ["X"]}', 'warn', 'proposal',
               '00000000-0000-0000-0000-0000000000c1')$$,
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement, source, source_proposal_id)
       VALUES ('t1', 'r', 'error_code', '{"error_codes": ["X"]}', 'warn', 'proposal',
               '00000000-0000-0000-0000-0000000000c1')$$),
    ('prevention_records_run_fk',
     $$INSERT INTO policies.prevention_records (tenant_id, run_id, guardrail_id, outcome)
       VALUES ('t2', 'r1', 'dg-001', 'blocked')$$,
     $$INSERT INTO policies.prevention_records (tenant_id, run_id, guardrail_id, outcome)
       VALUES ('t2', 'r2', 'dg-001', 'blocked')$$),
    ('prevention_records_policy_rule_fk',
     $$INSERT INTO policies.prevention_records (tenant_id, run_id, policy_rule_id, outcome)
       VALUES ('t2', 'r2', '00000000-0000-0000-0000-0000000000d1', 'prevented')$$,
     $$INSERT INTO policies.prevention_records (tenant_id, run_id, policy_rule_id, outcome)
       VALUES ('t1', 'r1', '00000000-0000-0000-0000-0000000000d1', 'prevented')$$),
    ('proposal_incidents_proposal_fk',
     $$INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id)
       VALUES ('t2', '00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-0000000000c1')$$,
     $$INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id)
       VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000c1')$$),
    ('proposal_incidents_incident_fk',
     $$INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id)
       VALUES ('t1', '00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-0000000000c1')$$,
     $$INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id)
       VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000c1')$$),
    -- Not cross-tenant, but the same family: unknown parents are rejected.
    ('runs_tenant_fk',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t9', 'r9', 'agent', 'queued')$$,
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t2', 'r9', 'agent', 'queued')$$),
    ('prevention_records_guardrail_fk',
     $$INSERT INTO policies.prevention_records (tenant_id, run_id, guardrail_id, outcome)
       VALUES ('t2', 'r2', 'dg-999', 'blocked')$$,
     $$INSERT INTO policies.prevention_records (tenant_id, run_id, guardrail_id, outcome)
       VALUES ('t2', 'r2', 'dg-005', 'blocked')$$);

SELECT plan((SELECT count(*)::int * 3 FROM cases) + 2);

SELECT throws_ok(cross_tenant, '23503', NULL, format('%s rejects a link to another tenant''s row (23503)', fk))
FROM cases ORDER BY fk;

SELECT is(aosdb_test.outcome(cross_tenant), '23503 ' || fk, format('the cross-tenant row is rejected by %s', fk))
FROM cases ORDER BY fk;

SELECT is(aosdb_test.outcome(same_tenant), 'no error', format('%s accepts the same link within one tenant', fk))
FROM cases ORDER BY fk;

-- The referenced side: a run with traces and an incident cannot change
-- tenant or disappear under them. Keys are immutable (0013): the key guard
-- refuses the move before the foreign keys are checked.
SELECT throws_ok(
    $$UPDATE activity.runs SET tenant_id = 't2', run_id = 'r1-moved' WHERE tenant_id = 't1' AND run_id = 'r1'$$,
    '42501', 'activity.runs.tenant_id is a key and cannot be updated',
    'a referenced run cannot be moved to another tenant (42501, the key guard)'
);
SELECT throws_ok(
    $$DELETE FROM activity.runs WHERE tenant_id = 't1' AND run_id = 'r1'$$,
    '23503', NULL,
    'a referenced run cannot be deleted from under its traces and incident (23503)'
);

SELECT * FROM finish();
ROLLBACK;
