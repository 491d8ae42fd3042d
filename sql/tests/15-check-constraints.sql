-- Every named CHECK constraint of the five schemas rejects a bad value with
-- 23514 and is the constraint the error names (a rejected insert names the
-- rule it broke). A last assertion proves every CHECK
-- in the catalog has a case here, and boundary values that must pass do.
BEGIN;

-- The fixture fires no engine (a failed run would get its own incident, a
-- high incident its proposal): every row is the one inserted here.
INSERT INTO aos.tenants (tenant_id, name) VALUES ('t1', 'Tenant one');
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t1', 'r1', 'agent', 'running');
INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id) VALUES ('t1', 'tr1', 'r1');
INSERT INTO incidents.incidents (tenant_id, id, source_run_id, title, severity, category)
VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', 'r1', 'incident', 'medium', 'execution_failure');
INSERT INTO policies.policy_proposals (tenant_id, id, proposal_name, proposal_type, proposed_rule)
VALUES ('t1', '00000000-0000-0000-0000-0000000000c1', 'proposal', 'timeout_policy',
        '{"rule_type": "error_code", "conditions": {"error_codes": ["EXECUTION_TIMEOUT"]}, "enforcement": "warn"}');
INSERT INTO policies.policy_rules (tenant_id, id, name, rule_type, conditions, enforcement)
VALUES ('t1', '00000000-0000-0000-0000-0000000000d1', 'rule', 'error_code', '{"error_codes": ["AGENT_CRASH"]}', 'block');

CREATE TEMP TABLE cases (constraint_name name, sql text) ON COMMIT DROP;
INSERT INTO cases VALUES
    -- aos.tenants
    ('tenants_id_format', $$INSERT INTO aos.tenants (tenant_id, name) VALUES ('Upper', 'x')$$),
    ('tenants_id_format', $$INSERT INTO aos.tenants (tenant_id, name) VALUES ('-dash-first', 'x')$$),
    ('tenants_id_format', $$INSERT INTO aos.tenants (tenant_id, name) VALUES ('has space', 'x')$$),
    ('tenants_id_format', $$INSERT INTO aos.tenants (tenant_id, name) VALUES ('', 'x')$$),
    ('tenants_id_format', $$INSERT INTO aos.tenants (tenant_id, name) VALUES (repeat('a', 65), 'x')$$),
    ('tenants_name_not_blank', $$INSERT INTO aos.tenants (tenant_id, name) VALUES ('t9', '  ')$$),
    -- activity.runs
    ('runs_status_valid', $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t1', 'rx', 'a', 'done')$$),
    ('runs_status_valid', $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t1', 'rx', 'a', 'FAILED')$$),
    ('runs_run_id_not_blank', $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t1', ' ', 'a', 'queued')$$),
    ('runs_agent_id_not_blank', $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t1', 'rx', '', 'queued')$$),
    ('runs_attempts_non_negative',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, attempts) VALUES ('t1', 'rx', 'a', 'queued', -1)$$),
    ('runs_tokens_non_negative',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, input_tokens) VALUES ('t1', 'rx', 'a', 'queued', -1)$$),
    ('runs_tokens_non_negative',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, output_tokens) VALUES ('t1', 'rx', 'a', 'queued', -1)$$),
    ('runs_cost_non_negative',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, estimated_cost_usd)
       VALUES ('t1', 'rx', 'a', 'queued', -0.000001)$$),
    -- activity.runs: costs keep every digit or are refused (0016); numeric(12, 6) rounded them
    ('runs_estimated_cost_usd_micro',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, estimated_cost_usd)
       VALUES ('t1', 'rx', 'a', 'queued', 0.0000004)$$),
    ('runs_estimated_cost_usd_micro',
     $$UPDATE activity.runs SET estimated_cost_usd = 1.0000015 WHERE tenant_id = 't1' AND run_id = 'r1'$$),
    ('runs_estimated_cost_usd_max',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, estimated_cost_usd)
       VALUES ('t1', 'rx', 'a', 'queued', 1000000)$$),
    ('runs_duration_non_negative',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, duration_ms) VALUES ('t1', 'rx', 'a', 'queued', -1)$$),
    ('runs_completed_after_started',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, started_at, completed_at)
       VALUES ('t1', 'rx', 'a', 'succeeded', '2030-01-01 12:00:01+00', '2030-01-01 12:00:00+00')$$),
    -- activity.runs: bounds (0014); 9e18 tokens once stopped every refresh
    ('runs_input_tokens_max',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, input_tokens) VALUES ('t1', 'rx', 'a', 'queued', 1000000000001)$$),
    ('runs_output_tokens_max',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, output_tokens) VALUES ('t1', 'rx', 'a', 'queued', 9000000000000000000)$$),
    ('runs_duration_ms_max',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, duration_ms) VALUES ('t1', 'rx', 'a', 'queued', 10000000000001)$$),
    ('runs_attempts_max',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, attempts) VALUES ('t1', 'rx', 'a', 'queued', 1000001)$$),
    ('runs_created_at_range',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, created_at) VALUES ('t1', 'rx', 'a', 'queued', '1999-12-31 23:59:59+00')$$),
    ('runs_started_at_range',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, started_at) VALUES ('t1', 'rx', 'a', 'running', 'infinity')$$),
    ('runs_started_at_range',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, started_at) VALUES ('t1', 'rx', 'a', 'running', '4713-01-01 00:00:00+00 BC')$$),
    ('runs_started_at_range',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, started_at) VALUES ('t1', 'rx', 'a', 'running', '2200-01-01 00:00:00+00')$$),
    ('runs_completed_at_range',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, completed_at) VALUES ('t1', 'rx', 'a', 'succeeded', 'infinity')$$),
    ('runs_scenario_implies_synthetic',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, synthetic_scenario_id)
       VALUES ('t1', 'rx', 'a', 'queued', 'SDSR-E2E-001')$$),
    ('runs_status_valid', $$UPDATE activity.runs SET status = 'paused' WHERE run_id = 'r1'$$),
    -- activity.aos_traces
    ('aos_traces_status_valid',
     $$INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id, status) VALUES ('t1', 'trx', 'r1', 'succeeded')$$),
    ('aos_traces_trace_id_not_blank',
     $$INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id) VALUES ('t1', ' ', 'r1')$$),
    ('aos_traces_completed_after_started',
     $$INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id, started_at, completed_at)
       VALUES ('t1', 'trx', 'r1', '2030-01-01 12:00:01+00', '2030-01-01 12:00:00+00')$$),
    ('aos_traces_metadata_is_object',
     $$INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id, metadata) VALUES ('t1', 'trx', 'r1', '[]')$$),
    ('aos_traces_scenario_implies_synthetic',
     $$INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id, synthetic_scenario_id)
       VALUES ('t1', 'trx', 'r1', 'SDSR-E2E-001')$$),
    ('aos_traces_started_at_range',
     $$INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id, started_at) VALUES ('t1', 'trx', 'r1', '-infinity')$$),
    ('aos_traces_completed_at_range',
     $$INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id, completed_at) VALUES ('t1', 'trx', 'r1', 'infinity')$$),
    -- activity.aos_trace_steps
    ('aos_trace_steps_status_valid',
     $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status)
       VALUES ('t1', 'tr1', 0, 'search', 'error')$$),
    ('aos_trace_steps_step_index_non_negative',
     $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status)
       VALUES ('t1', 'tr1', -1, 'search', 'success')$$),
    ('aos_trace_steps_skill_name_not_blank',
     $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status)
       VALUES ('t1', 'tr1', 0, ' ', 'success')$$),
    ('aos_trace_steps_cost_non_negative',
     $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, cost_usd)
       VALUES ('t1', 'tr1', 0, 'search', 'success', -0.01)$$),
    ('aos_trace_steps_cost_usd_micro',
     $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, cost_usd)
       VALUES ('t1', 'tr1', 0, 'search', 'success', 0.0000001)$$),
    ('aos_trace_steps_cost_usd_max',
     $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, cost_usd)
       VALUES ('t1', 'tr1', 0, 'search', 'success', 1e12)$$),
    ('aos_trace_steps_duration_non_negative',
     $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, duration_ms)
       VALUES ('t1', 'tr1', 0, 'search', 'success', -1)$$),
    ('aos_trace_steps_retry_count_non_negative',
     $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, retry_count)
       VALUES ('t1', 'tr1', 0, 'search', 'retry', -1)$$),
    ('aos_trace_steps_duration_ms_max',
     $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, duration_ms)
       VALUES ('t1', 'tr1', 0, 'search', 'success', 10000000000001)$$),
    ('aos_trace_steps_retry_count_max',
     $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, retry_count)
       VALUES ('t1', 'tr1', 0, 'search', 'retry', 1000001)$$),
    ('aos_trace_steps_occurred_at_range',
     $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, occurred_at)
       VALUES ('t1', 'tr1', 0, 'search', 'success', '2999-01-01 00:00:00+00')$$),
    ('aos_trace_steps_params_is_object',
     $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, params)
       VALUES ('t1', 'tr1', 0, 'search', 'success', '"query"')$$),
    ('aos_trace_steps_scenario_implies_synthetic',
     $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, synthetic_scenario_id)
       VALUES ('t1', 'tr1', 0, 'search', 'success', 'SDSR-E2E-001')$$),
    -- incidents.failure_classes
    ('failure_classes_error_code_format',
     $$INSERT INTO incidents.failure_classes (error_code, severity, category, description)
       VALUES ('lower_code', 'low', 'manual', 'x')$$),
    ('failure_classes_severity_valid',
     $$INSERT INTO incidents.failure_classes (error_code, severity, category, description)
       VALUES ('NEW_CODE', 'severe', 'manual', 'x')$$),
    ('failure_classes_proposal_type_valid',
     $$INSERT INTO incidents.failure_classes (error_code, severity, category, proposal_type, description)
       VALUES ('NEW_CODE', 'low', 'manual', 'magic_policy', 'x')$$),
    ('failure_classes_match_priority_positive',
     $$INSERT INTO incidents.failure_classes (error_code, severity, category, match_priority, description)
       VALUES ('NEW_CODE', 'low', 'manual', 0, 'x')$$),
    -- incidents.incidents
    ('incidents_severity_valid',
     $$INSERT INTO incidents.incidents (tenant_id, title, severity, category, cause_type)
       VALUES ('t1', 'x', 'urgent', 'manual', 'system')$$),
    ('incidents_lifecycle_state_valid',
     $$INSERT INTO incidents.incidents (tenant_id, title, severity, category, cause_type, lifecycle_state)
       VALUES ('t1', 'x', 'low', 'manual', 'system', 'open')$$),
    ('incidents_cause_type_valid',
     $$INSERT INTO incidents.incidents (tenant_id, title, severity, category, cause_type)
       VALUES ('t1', 'x', 'low', 'manual', 'cosmic_ray')$$),
    ('incidents_resolution_method_valid',
     $$INSERT INTO incidents.incidents (tenant_id, title, severity, category, cause_type, resolution_method)
       VALUES ('t1', 'x', 'low', 'manual', 'system', 'magic')$$),
    ('incidents_title_not_blank',
     $$INSERT INTO incidents.incidents (tenant_id, title, severity, category, cause_type)
       VALUES ('t1', ' ', 'low', 'manual', 'system')$$),
    ('incidents_llm_run_has_source',
     $$INSERT INTO incidents.incidents (tenant_id, title, severity, category, cause_type)
       VALUES ('t1', 'x', 'low', 'manual', 'llm_run')$$),
    ('incidents_acked_has_acknowledgement',
     $$INSERT INTO incidents.incidents (tenant_id, title, severity, category, cause_type, lifecycle_state)
       VALUES ('t1', 'x', 'low', 'manual', 'system', 'acked')$$),
    ('incidents_acked_has_acknowledgement',
     $$INSERT INTO incidents.incidents (tenant_id, title, severity, category, cause_type, lifecycle_state,
           acknowledged_at)
       VALUES ('t1', 'x', 'low', 'manual', 'system', 'acked', now())$$),
    ('incidents_acked_has_acknowledgement',
     $$UPDATE incidents.incidents SET lifecycle_state = 'acked', acknowledged_by = 'ops'
       WHERE id = '00000000-0000-0000-0000-0000000000b1'$$),
    ('incidents_resolved_has_resolution',
     $$INSERT INTO incidents.incidents (tenant_id, title, severity, category, cause_type, lifecycle_state)
       VALUES ('t1', 'x', 'low', 'manual', 'system', 'resolved')$$),
    ('incidents_resolved_has_resolution',
     $$INSERT INTO incidents.incidents (tenant_id, title, severity, category, cause_type, lifecycle_state,
           resolved_at, resolved_by)
       VALUES ('t1', 'x', 'low', 'manual', 'system', 'resolved', now(), 'ops')$$),
    ('incidents_scenario_implies_synthetic',
     $$INSERT INTO incidents.incidents (tenant_id, title, severity, category, cause_type, synthetic_scenario_id)
       VALUES ('t1', 'x', 'low', 'manual', 'system', 'SDSR-E2E-001')$$),
    -- incidents.incident_events
    ('incident_events_event_type_valid',
     $$INSERT INTO incidents.incident_events (tenant_id, incident_id, event_type, actor)
       VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', 'created', 'x')$$),
    ('incident_events_actor_not_blank',
     $$INSERT INTO incidents.incident_events (tenant_id, incident_id, event_type, actor)
       VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', 'detected', '')$$),
    ('incident_events_details_is_object',
     $$INSERT INTO incidents.incident_events (tenant_id, incident_id, event_type, actor, details)
       VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', 'detected', 'x', '[1]')$$),
    ('incident_events_scenario_implies_synthetic',
     $$INSERT INTO incidents.incident_events (tenant_id, incident_id, event_type, actor, synthetic_scenario_id)
       VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', 'detected', 'x', 'SDSR-E2E-001')$$),
    -- incidents.incident_evidence
    ('incident_evidence_evidence_type_valid',
     $$INSERT INTO incidents.incident_evidence (tenant_id, incident_id, evidence_type)
       VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', 'screenshot')$$),
    ('incident_evidence_payload_is_object',
     $$INSERT INTO incidents.incident_evidence (tenant_id, incident_id, evidence_type, payload)
       VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', 'log', '1')$$),
    ('incident_evidence_scenario_implies_synthetic',
     $$INSERT INTO incidents.incident_evidence (tenant_id, incident_id, evidence_type, synthetic_scenario_id)
       VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', 'log', 'SDSR-E2E-001')$$),
    -- policies.default_guardrails
    ('default_guardrails_id_format',
     $$INSERT INTO policies.default_guardrails (id, name, category, rule_type, config, action, priority, description)
       VALUES ('dg-9', 'x', 'cost', 'max_value', '{}', 'block', 1, 'x')$$),
    ('default_guardrails_id_format',
     $$INSERT INTO policies.default_guardrails (id, name, category, rule_type, config, action, priority, description)
       VALUES ('DG-900', 'x', 'cost', 'max_value', '{}', 'block', 1, 'x')$$),
    ('default_guardrails_rule_type_valid',
     $$INSERT INTO policies.default_guardrails (id, name, category, rule_type, config, action, priority, description)
       VALUES ('dg-900', 'x', 'cost', 'error_code', '{}', 'block', 1, 'x')$$),
    ('default_guardrails_action_valid',
     $$INSERT INTO policies.default_guardrails (id, name, category, rule_type, config, action, priority, description)
       VALUES ('dg-900', 'x', 'cost', 'max_value', '{}', 'prevent', 1, 'x')$$),
    ('default_guardrails_config_is_object',
     $$INSERT INTO policies.default_guardrails (id, name, category, rule_type, config, action, priority, description)
       VALUES ('dg-900', 'x', 'cost', 'max_value', '[]', 'block', 1, 'x')$$),
    ('default_guardrails_priority_positive',
     $$INSERT INTO policies.default_guardrails (id, name, category, rule_type, config, action, priority, description)
       VALUES ('dg-900', 'x', 'cost', 'max_value', '{}', 'block', 0, 'x')$$),
    ('default_guardrails_version_positive',
     $$INSERT INTO policies.default_guardrails (id, name, category, rule_type, config, action, priority, version,
           description)
       VALUES ('dg-900', 'x', 'cost', 'max_value', '{}', 'block', 1, 0, 'x')$$),
    -- policies.policy_proposals
    ('policy_proposals_status_valid',
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule, status,
           reviewed_at, reviewed_by)
       VALUES ('t1', 'x', 'retry_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["X"]}, "enforcement": "warn"}',
               'withdrawn', now(), 'ops')$$),
    ('policy_proposals_proposal_type_valid',
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule)
       VALUES ('t1', 'x', 'magic_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["X"]}, "enforcement": "warn"}')$$),
    ('policy_proposals_name_not_blank',
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule)
       VALUES ('t1', ' ', 'retry_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["X"]}, "enforcement": "warn"}')$$),
    ('policy_proposals_proposed_rule_valid',
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule)
       VALUES ('t1', 'x', 'retry_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["X"]}, "enforcement": "deny"}')$$),
    ('policy_proposals_proposed_rule_valid',
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule)
       VALUES ('t1', 'x', 'retry_policy',
               '{"rule_type": "regex", "conditions": {"error_codes": ["X"]}, "enforcement": "warn"}')$$),
    ('policy_proposals_proposed_rule_valid',
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule)
       VALUES ('t1', 'x', 'retry_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["lower"]}, "enforcement": "warn"}')$$),
    ('policy_proposals_proposed_rule_valid',
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule)
       VALUES ('t1', 'x', 'retry_policy', '{"rule_type": "error_code", "enforcement": "warn"}')$$),
    ('policy_proposals_review_recorded',
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule, status)
       VALUES ('t1', 'x', 'retry_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["X"]}, "enforcement": "warn"}', 'approved')$$),
    ('policy_proposals_review_recorded',
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule, status,
           reviewed_at, reviewed_by)
       VALUES ('t1', 'x', 'retry_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["X"]}, "enforcement": "warn"}',
               'rejected', now(), '  ')$$),
    ('policy_proposals_review_recorded',
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule, reviewed_by)
       VALUES ('t1', 'x', 'retry_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["X"]}, "enforcement": "warn"}', 'ops')$$),
    ('policy_proposals_review_recorded',
     $$UPDATE policies.policy_proposals SET status = 'approved' WHERE id = '00000000-0000-0000-0000-0000000000c1'$$),
    ('policy_proposals_scenario_implies_synthetic',
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule,
           synthetic_scenario_id)
       VALUES ('t1', 'x', 'retry_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["X"]}, "enforcement": "warn"}',
               'SDSR-E2E-001')$$),
    ('policy_proposals_incident_count_positive',
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule, incident_count)
       VALUES ('t1', 'x', 'retry_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["X"]}, "enforcement": "warn"}', 0)$$),
    ('policy_proposals_incident_count_positive',
     $$UPDATE policies.policy_proposals SET incident_count = -1 WHERE id = '00000000-0000-0000-0000-0000000000c1'$$),
    -- policies.proposal_incidents
    ('proposal_incidents_scenario_implies_synthetic',
     $$INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id, synthetic_scenario_id)
       VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000c1',
               'SDSR-E2E-001')$$),
    -- policies.policy_rules
    ('policy_rules_enforcement_valid',
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement)
       VALUES ('t1', 'x', 'error_code', '{"error_codes": ["X"]}', 'deny')$$),
    ('policy_rules_status_valid',
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement, status)
       VALUES ('t1', 'x', 'error_code', '{"error_codes": ["X"]}', 'warn', 'paused')$$),
    ('policy_rules_source_valid',
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement, source)
       VALUES ('t1', 'x', 'error_code', '{"error_codes": ["X"]}', 'warn', 'imported')$$),
    ('policy_rules_conditions_match_type',
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement)
       VALUES ('t1', 'x', 'error_code', '{"patterns": ["X"]}', 'warn')$$),
    ('policy_rules_conditions_match_type',
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement)
       VALUES ('t1', 'x', 'max_value', '{"metric": "latency", "max": 10}', 'warn')$$),
    ('policy_rules_conditions_match_type',
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement)
       VALUES ('t1', 'x', 'pattern_block', '{"patterns": []}', 'warn')$$),
    ('policy_rules_conditions_match_type',
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement)
       VALUES ('t1', 'x', 'blocked_skill', '{"skills": [42]}', 'warn')$$),
    ('policy_rules_source_matches_proposal',
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement, source)
       VALUES ('t1', 'x', 'error_code', '{"error_codes": ["X"]}', 'warn', 'proposal')$$),
    ('policy_rules_source_matches_proposal',
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement, source_proposal_id)
       VALUES ('t1', 'x', 'error_code', '{"error_codes": ["X"]}', 'warn', '00000000-0000-0000-0000-0000000000c1')$$),
    ('policy_rules_retirement_recorded',
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement, status)
       VALUES ('t1', 'x', 'error_code', '{"error_codes": ["X"]}', 'warn', 'retired')$$),
    ('policy_rules_retirement_recorded',
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement, retired_at)
       VALUES ('t1', 'x', 'error_code', '{"error_codes": ["X"]}', 'warn', now())$$),
    ('policy_rules_name_not_blank',
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement)
       VALUES ('t1', '', 'error_code', '{"error_codes": ["X"]}', 'warn')$$),
    ('policy_rules_scenario_implies_synthetic',
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement, synthetic_scenario_id)
       VALUES ('t1', 'x', 'error_code', '{"error_codes": ["X"]}', 'warn', 'SDSR-E2E-001')$$),
    -- policies.prevention_records
    ('prevention_records_one_source',
     $$INSERT INTO policies.prevention_records (tenant_id, run_id, outcome) VALUES ('t1', 'r1', 'blocked')$$),
    ('prevention_records_one_source',
     $$INSERT INTO policies.prevention_records (tenant_id, run_id, policy_rule_id, guardrail_id, outcome)
       VALUES ('t1', 'r1', '00000000-0000-0000-0000-0000000000d1', 'dg-001', 'blocked')$$),
    ('prevention_records_outcome_valid',
     $$INSERT INTO policies.prevention_records (tenant_id, run_id, guardrail_id, outcome)
       VALUES ('t1', 'r1', 'dg-001', 'stopped')$$),
    ('prevention_records_details_is_object',
     $$INSERT INTO policies.prevention_records (tenant_id, run_id, guardrail_id, outcome, details)
       VALUES ('t1', 'r1', 'dg-001', 'blocked', '"over budget"')$$),
    ('prevention_records_scenario_implies_synthetic',
     $$INSERT INTO policies.prevention_records (tenant_id, run_id, guardrail_id, outcome, synthetic_scenario_id)
       VALUES ('t1', 'r1', 'dg-001', 'blocked', 'SDSR-E2E-001')$$),
    -- aos.events (the outbox)
    ('events_event_valid',
     $$INSERT INTO aos.events (event, tenant_id, subject_id) VALUES ('incident_exploded', 't1', 'x')$$),
    ('events_event_valid',
     $$INSERT INTO aos.events (event, tenant_id, subject_id) VALUES ('RUN_FAILED', 't1', 'x')$$),
    ('events_payload_is_object',
     $$INSERT INTO aos.events (event, tenant_id, subject_id, payload) VALUES ('run_failed', 't1', 'x', '["r1"]')$$),
    ('events_payload_is_object',
     $$INSERT INTO aos.events (event, tenant_id, subject_id, payload) VALUES ('run_failed', 't1', 'x', 'null')$$),
    -- aos.event_wakeup: one row, for the one channel; the interval is never negative.
    ('event_wakeup_channel_valid',
     $$INSERT INTO aos.event_wakeup (channel) VALUES ('aos_events_2')$$),
    ('event_wakeup_min_interval_non_negative',
     $$UPDATE aos.event_wakeup SET min_interval = '-1 millisecond' WHERE channel = 'aos_events'$$),
    -- The contract tables.
    ('contract_tables_kind_valid',
     $$INSERT INTO aos.contract_tables (schema_name, table_name, domain, kind, tenant_scoped)
       VALUES ('activity', 'x', 'activity', 'index', FALSE)$$),
    ('contract_links_tenant_first',
     $$INSERT INTO aos.contract_links (link_name, from_schema, from_table, from_columns, to_schema, to_table,
           to_columns, description)
       VALUES ('x', 'incidents', 'incidents', '{source_run_id}', 'activity', 'runs', '{run_id}', 'x')$$),
    ('contract_links_same_arity',
     $$INSERT INTO aos.contract_links (link_name, from_schema, from_table, from_columns, to_schema, to_table,
           to_columns, description)
       VALUES ('x', 'incidents', 'incidents', '{tenant_id,source_run_id}', 'activity', 'runs', '{tenant_id}', 'x')$$),
    ('contract_grants_privilege_valid',
     $$INSERT INTO aos.contract_grants (role_name, schema_name, table_name, privilege)
       VALUES ('aos_api', 'activity', 'runs', 'ALL')$$),
    ('contract_facades_in_api_schema',
     $$INSERT INTO aos.contract_facades (function_name, endpoint, domain)
       VALUES ('public.runs', '/rpc/runs', 'activity')$$),
    -- aos.view_refreshes: only the two analytics views are refreshed,
    -- by their schema-qualified names; durations and row counts are never negative.
    ('view_refreshes_view_name_valid',
     $$INSERT INTO aos.view_refreshes (view_name, duration_ms, row_count, concurrent)
       VALUES ('v_runs_o2', 1, 0, TRUE)$$),
    ('view_refreshes_view_name_valid',
     $$INSERT INTO aos.view_refreshes (view_name, duration_ms, row_count, concurrent)
       VALUES ('activity.v_runs_o2_tenant', 1, 0, TRUE)$$),
    ('view_refreshes_view_name_valid',
     $$INSERT INTO aos.view_refreshes (view_name, duration_ms, row_count, concurrent)
       VALUES ('activity.runs', 1, 0, FALSE)$$),
    ('view_refreshes_duration_non_negative',
     $$INSERT INTO aos.view_refreshes (view_name, duration_ms, row_count, concurrent)
       VALUES ('activity.v_runs_o2', -0.001, 0, TRUE)$$),
    ('view_refreshes_row_count_non_negative',
     $$INSERT INTO aos.view_refreshes (view_name, duration_ms, row_count, concurrent)
       VALUES ('incidents.v_incidents_o2', 1, -1, TRUE)$$);

-- Boundary values and complete lifecycles that every CHECK must let through.
CREATE TEMP TABLE accepted (sql text, what text) ON COMMIT DROP;
INSERT INTO accepted VALUES
    ($$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, estimated_cost_usd)
       VALUES ('t1', 'rx', 'a', 'queued', 999999.999999), ('t1', 'ry', 'a', 'queued', 0.1000000)$$,
     'the largest cost, and a cost written with a seventh decimal that is zero'),
    ($$INSERT INTO aos.tenants (tenant_id, name) VALUES (repeat('a', 64), 'x'), ('0', 'x'), ('a.b_c-d', 'x')$$,
     'tenant ids of 1 and 64 characters with . _ -'),
    ($$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, attempts, input_tokens, output_tokens,
           estimated_cost_usd, duration_ms, started_at, completed_at)
       VALUES ('t1', 'rx', 'a', 'succeeded', 0, 0, 0, 0, 0, '2030-01-01 12:00:00+00', '2030-01-01 12:00:00+00')$$,
     'a run with zero attempts, tokens, cost and duration that completed the instant it started'),
    ($$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, attempts, input_tokens, output_tokens,
           estimated_cost_usd, duration_ms, created_at, started_at, completed_at)
       VALUES ('t1', 'rx', 'a', 'succeeded', 1000000, 1000000000000, 1000000000000, 999999.999999, 10000000000000,
               '2000-01-01 00:00:00+00', '2000-01-01 00:00:00+00', '2199-12-31 23:59:59.999999+00')$$,
     'a run at every upper bound, from the first to the last instant of the timestamp range'),
    ($$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, is_synthetic, synthetic_scenario_id)
       VALUES ('t1', 'rx', 'a', 'queued', TRUE, 'SDSR-E2E-001')$$,
     'a synthetic run with its scenario id'),
    ($$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, cost_usd,
           duration_ms, retry_count)
       VALUES ('t1', 'tr1', 0, 'search', 'skipped', 0, 0, 0)$$,
     'a step at index 0 with zero cost, duration and retries'),
    ($$UPDATE incidents.incidents SET lifecycle_state = 'acked', acknowledged_at = now(), acknowledged_by = 'ops'
       WHERE id = '00000000-0000-0000-0000-0000000000b1'$$,
     'acknowledging an incident with who and when'),
    ($$UPDATE incidents.incidents SET lifecycle_state = 'resolved', resolved_at = now(), resolved_by = 'ops',
           resolution_method = 'rollback'
       WHERE id = '00000000-0000-0000-0000-0000000000b1'$$,
     'resolving an incident with who, when and how'),
    ($$INSERT INTO incidents.incidents (tenant_id, title, severity, category, cause_type)
       VALUES ('t1', 'x', 'critical', 'manual', 'human')$$,
     'a human-caused incident without a source run'),
    ($$UPDATE policies.policy_proposals SET status = 'approved', reviewed_at = now(), reviewed_by = 'ops'
       WHERE id = '00000000-0000-0000-0000-0000000000c1'$$,
     'approving a proposal with reviewer and time'),
    ($$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement, source,
           source_proposal_id)
       VALUES ('t1', 'x', 'error_code', '{"error_codes": ["EXECUTION_TIMEOUT"]}', 'audit', 'proposal',
               '00000000-0000-0000-0000-0000000000c1')$$,
     'a rule created from a proposal'),
    ($$UPDATE policies.policy_rules SET status = 'retired', retired_at = now(), retired_by = 'ops'
       WHERE id = '00000000-0000-0000-0000-0000000000d1'$$,
     'retiring a rule with its retirement time'),
    ($$UPDATE policies.policy_proposals SET incident_count = 1, last_seen_at = now()
       WHERE id = '00000000-0000-0000-0000-0000000000c1'$$,
     'a proposal gathering the one incident that triggered it'),
    ($$INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id, is_synthetic,
           synthetic_scenario_id)
       VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000c1', TRUE,
               'SDSR-E2E-001')$$,
     'a synthetic proposal link with its scenario id'),
    ($$UPDATE aos.event_wakeup SET min_interval = '0' WHERE channel = 'aos_events'$$,
     'a wake-up interval of zero (every transaction that writes events notifies)'),
    ($$INSERT INTO policies.prevention_records (tenant_id, run_id, policy_rule_id, outcome)
       VALUES ('t1', 'r1', '00000000-0000-0000-0000-0000000000d1', 'prevented')$$,
     'a prevention record from a rule only'),
    ($$INSERT INTO policies.prevention_records (tenant_id, run_id, guardrail_id, outcome)
       VALUES ('t1', 'r1', 'dg-003', 'throttled')$$,
     'a prevention record from a guardrail only'),
    ($$INSERT INTO aos.events (event, tenant_id, subject_id)
       SELECT e, 't1', 'x' FROM unnest(ARRAY[
           'run_failed', 'incident_created', 'incident_acknowledged', 'incident_resolved', 'proposal_created',
           'proposal_approved', 'proposal_rejected', 'rule_created', 'prevention_recorded']) AS e$$,
     'an outbox event of each kind README.md (Following events) names, with the default payload'),
    ($$INSERT INTO aos.events (event, tenant_id, subject_id, payload)
       VALUES ('evidence_added', 't1', 'x', '{"evidence_id": "e1"}'), ('rule_retired', 't1', 'x', '{}')$$,
     'the outbox events of the other two actions (evidence_added, rule_retired)'),
    ($$INSERT INTO aos.contract_tables (schema_name, table_name, domain, kind, tenant_scoped)
       VALUES ('aos', 'x', 'platform', 'outbox', TRUE)$$,
     'a contract table of kind outbox'),
    ($$INSERT INTO aos.view_refreshes (view_name, duration_ms, row_count, concurrent)
       VALUES ('activity.v_runs_o2', 0, 0, TRUE), ('incidents.v_incidents_o2', 0, 0, FALSE),
              ('activity.v_runs_o2', 12.345, 1000000, FALSE)$$,
     'a refresh of each analytics view, taking no time and holding no rows, or some');

-- Regressions of defects found once, each rejected by its own constraint:
--  1. An unknown rule type must be reported by policy_rules_rule_type_valid,
--     not by policy_rules_conditions_match_type (CHECKs run in name order).
--  2. A proposed_rule without "enforcement" (NULL IN (...) is NULL, and a
--     NULL CHECK passes).
--  3. A reviewed proposal without reviewer (btrim(NULL) <> '' is NULL).
--  4. A max_value rule whose metric is JSON null.
CREATE TEMP TABLE regressions (constraint_name name, sql text, what text) ON COMMIT DROP;
INSERT INTO regressions VALUES
    ('policy_rules_rule_type_valid',
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement)
       VALUES ('t1', 'x', 'regex', '{"error_codes": ["X"]}', 'warn')$$,
     'an unknown rule type'),
    ('policy_proposals_proposed_rule_valid',
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule)
       VALUES ('t1', 'x', 'retry_policy', '{"rule_type": "error_code", "conditions": {"error_codes": ["X"]}}')$$,
     'a proposed rule without enforcement'),
    ('policy_proposals_review_recorded',
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule, status,
           reviewed_at)
       VALUES ('t1', 'x', 'retry_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["X"]}, "enforcement": "warn"}',
               'approved', now())$$,
     'an approved proposal without reviewer'),
    ('policy_rules_conditions_match_type',
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement)
       VALUES ('t1', 'x', 'max_value', '{"metric": null, "max": 1}', 'warn')$$,
     'a max_value rule whose metric is null');

SELECT plan(
    (SELECT count(*)::int * 2 FROM cases)
    + (SELECT count(*)::int FROM regressions)
    + 1
    + (SELECT count(*)::int FROM accepted)
);

SELECT throws_ok(sql, '23514', NULL, format('%s rejects a bad value (23514)', constraint_name))
FROM cases ORDER BY constraint_name, sql;

SELECT is(aosdb_test.outcome(sql), '23514 ' || constraint_name,
          format('the error names %s', constraint_name))
FROM cases ORDER BY constraint_name, sql;

-- Cases found as defects once, kept as regressions: each is rejected by the
-- constraint it breaks, and that constraint is named.
SELECT is(aosdb_test.outcome(sql), '23514 ' || constraint_name,
          format('%s rejects %s, naming itself', constraint_name, what))
FROM regressions ORDER BY constraint_name, what;

SELECT is_empty(
    $$
    SELECT con.conname FROM pg_catalog.pg_constraint AS con
    JOIN pg_catalog.pg_namespace AS n ON n.oid = con.connamespace
    WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api') AND con.contype = 'c'
      AND con.conname NOT IN (SELECT constraint_name FROM cases UNION SELECT constraint_name FROM regressions)
    $$,
    'every CHECK constraint of the five schemas has a rejection case in this file'
);

SELECT is(aosdb_test.outcome(sql), 'no error', 'accepted: ' || what)
FROM accepted ORDER BY what;

SELECT * FROM finish();
ROLLBACK;
