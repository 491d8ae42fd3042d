-- The unique keys that make the engines idempotent and the identifiers
-- unambiguous: a duplicate is rejected with 23505 naming the key, and the
-- same value in another tenant (or another scope of the key) is accepted.
-- The analytics views cannot take a duplicate row at all: their
-- keys are held to what REFRESH ... CONCURRENTLY needs instead, and must let
-- the same run or incident id of two tenants through.
BEGIN;

-- The fixture fires no engine (a failed run would get its own incident, a
-- high incident its proposal): every row is the one inserted here, so each
-- duplicate below collides with a row of this file.
INSERT INTO aos.tenants (tenant_id, name) VALUES ('t1', 'Tenant one'), ('t2', 'Tenant two');
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES
    ('t1', 'r1', 'agent', 'running'), ('t1', 'r2', 'agent', 'running'), ('t2', 'r1', 'agent', 'running');
INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id) VALUES ('t1', 'tr1', 'r1'), ('t2', 'tr1', 'r1');
INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status)
VALUES ('t1', 'tr1', 0, 'search', 'success');
INSERT INTO incidents.incidents (tenant_id, id, source_run_id, title, severity, category) VALUES
    ('t1', '00000000-0000-0000-0000-0000000000b1', 'r1', 'incident', 'medium', 'execution_failure');
INSERT INTO policies.policy_proposals (tenant_id, id, triggering_incident_id, triggering_run_id, proposal_name,
    proposal_type, proposed_rule)
VALUES ('t1', '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000b1', 'r1', 'proposal',
        'timeout_policy',
        '{"rule_type": "error_code", "conditions": {"error_codes": ["EXECUTION_TIMEOUT"]}, "enforcement": "warn"}');
INSERT INTO policies.policy_rules (tenant_id, id, name, rule_type, conditions, enforcement, source, source_proposal_id)
VALUES ('t1', '00000000-0000-0000-0000-0000000000d1', 'rule', 'error_code', '{"error_codes": ["EXECUTION_TIMEOUT"]}',
        'warn', 'proposal', '00000000-0000-0000-0000-0000000000c1');
INSERT INTO policies.prevention_records (tenant_id, run_id, policy_rule_id, guardrail_id, outcome) VALUES
    ('t1', 'r1', '00000000-0000-0000-0000-0000000000d1', NULL, 'prevented'),
    ('t1', 'r1', NULL, 'dg-001', 'blocked');
-- The same incident id in the other tenant, for the key of incidents.v_incidents_o2.
INSERT INTO incidents.incidents (tenant_id, id, source_run_id, title, severity, category) VALUES
    ('t2', '00000000-0000-0000-0000-0000000000b1', 'r1', 'incident', 'medium', 'execution_failure');
-- Proposal links: the incident of t1 is linked to its pending proposal; t2
-- has a proposal of its own, and t1 a rejected one of the same rule as its
-- pending one (only pending proposals are one per rule).
INSERT INTO policies.policy_proposals (tenant_id, id, proposal_name, proposal_type, proposed_rule) VALUES
    ('t2', '00000000-0000-0000-0000-0000000000c2', 'proposal', 'crash_recovery_policy',
     '{"rule_type": "error_code", "conditions": {"error_codes": ["AGENT_CRASH"]}, "enforcement": "block"}');
INSERT INTO policies.policy_proposals (tenant_id, id, proposal_name, proposal_type, proposed_rule, status,
    reviewed_at, reviewed_by)
VALUES ('t1', '00000000-0000-0000-0000-0000000000c3', 'proposal', 'timeout_policy',
        '{"rule_type": "error_code", "conditions": {"error_codes": ["EXECUTION_TIMEOUT"]}, "enforcement": "warn"}',
        'rejected', now(), 'ops');
INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id) VALUES
    ('t1', '00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000c1');

-- (key, duplicate that must fail, a near miss that must pass)
CREATE TEMP TABLE cases (key name, duplicate text, near_miss text, what text) ON COMMIT DROP;
INSERT INTO cases VALUES
    ('runs_run_id_unique',
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t1', 'r1', 'other', 'queued')$$,
     $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t2', 'r2', 'other', 'queued')$$,
     'run_id is unique per tenant'),
    ('aos_traces_trace_id_unique',
     $$INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id) VALUES ('t1', 'tr1', 'r2')$$,
     $$INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id) VALUES ('t1', 'tr2', 'r2')$$,
     'trace_id is unique per tenant'),
    ('aos_trace_steps_pkey',
     $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status)
       VALUES ('t1', 'tr1', 0, 'other', 'failure')$$,
     $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status)
       VALUES ('t2', 'tr1', 0, 'other', 'failure')$$,
     'step_index is unique per trace'),
    ('incidents_one_per_failed_run',
     $$INSERT INTO incidents.incidents (tenant_id, source_run_id, title, severity, category)
       VALUES ('t1', 'r1', 'again', 'high', 'execution_failure')$$,
     $$INSERT INTO incidents.incidents (tenant_id, source_run_id, title, severity, category, cause_type)
       VALUES ('t1', 'r1', 'operator report', 'low', 'manual', 'human')$$,
     'one llm_run incident per failed run (other causes may cite the run)'),
    ('policy_proposals_one_per_incident',
     $$INSERT INTO policies.policy_proposals (tenant_id, triggering_incident_id, proposal_name, proposal_type,
           proposed_rule)
       VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', 'again', 'timeout_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["X"]}, "enforcement": "warn"}')$$,
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule)
       VALUES ('t1', 'without incident', 'timeout_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["X"]}, "enforcement": "warn"}')$$,
     'one proposal per incident'),
    ('policy_proposals_one_pending_per_rule',
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule)
       VALUES ('t1', 'again', 'timeout_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["EXECUTION_TIMEOUT"]}, "enforcement": "warn"}')$$,
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule, status,
           reviewed_at, reviewed_by)
       VALUES ('t1', 'again', 'timeout_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["EXECUTION_TIMEOUT"]}, "enforcement": "warn"}',
               'approved', now(), 'ops')$$,
     'one pending proposal per tenant and rule (approved and rejected ones may repeat)'),
    ('policy_proposals_one_pending_per_rule',
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule)
       VALUES ('t1', 'again', 'timeout_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["EXECUTION_TIMEOUT"]}, "enforcement": "warn"}')$$,
     $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule)
       VALUES ('t2', 'again', 'timeout_policy',
               '{"rule_type": "error_code", "conditions": {"error_codes": ["EXECUTION_TIMEOUT"]}, "enforcement": "warn"}')$$,
     'one pending proposal per tenant and rule (another tenant has its own)'),
    ('proposal_incidents_pkey',
     $$INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id)
       VALUES ('t1', '00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000c3')$$,
     $$INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id)
       VALUES ('t2', '00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-0000000000c2')$$,
     'an incident is linked to one proposal (the same incident id of another tenant is another incident)'),
    ('policy_rules_one_per_proposal',
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement, source,
           source_proposal_id)
       VALUES ('t1', 'again', 'error_code', '{"error_codes": ["X"]}', 'warn', 'proposal',
               '00000000-0000-0000-0000-0000000000c1')$$,
     $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement)
       VALUES ('t1', 'manual', 'error_code', '{"error_codes": ["X"]}', 'warn')$$,
     'one rule per proposal'),
    ('prevention_records_once_per_source',
     $$INSERT INTO policies.prevention_records (tenant_id, run_id, policy_rule_id, outcome)
       VALUES ('t1', 'r1', '00000000-0000-0000-0000-0000000000d1', 'prevented')$$,
     $$INSERT INTO policies.prevention_records (tenant_id, run_id, policy_rule_id, outcome)
       VALUES ('t1', 'r2', '00000000-0000-0000-0000-0000000000d1', 'prevented')$$,
     'one record per run and rule'),
    ('prevention_records_once_per_source',
     $$INSERT INTO policies.prevention_records (tenant_id, run_id, guardrail_id, outcome)
       VALUES ('t1', 'r1', 'dg-001', 'blocked')$$,
     $$INSERT INTO policies.prevention_records (tenant_id, run_id, guardrail_id, outcome)
       VALUES ('t1', 'r1', 'dg-002', 'blocked')$$,
     'one record per run and guardrail (nulls not distinct)'),
    ('tenants_pkey',
     $$INSERT INTO aos.tenants (tenant_id, name) VALUES ('t1', 'again')$$,
     $$INSERT INTO aos.tenants (tenant_id, name) VALUES ('t3', 'Tenant three')$$,
     'a tenant is registered once'),
    ('failure_classes_match_priority_unique',
     $$INSERT INTO incidents.failure_classes (error_code, severity, category, match_priority, description)
       VALUES ('NEW_CODE', 'low', 'manual', 10, 'x')$$,
     $$INSERT INTO incidents.failure_classes (error_code, severity, category, match_priority, description)
       VALUES ('NEW_CODE', 'low', 'manual', 11, 'x')$$,
     'match priorities are distinct'),
    ('default_guardrails_name_unique',
     $$INSERT INTO policies.default_guardrails (id, name, category, rule_type, config, action, priority, description)
       VALUES ('dg-900', 'max_cost_per_request', 'cost', 'max_value', '{}', 'block', 1, 'x')$$,
     $$INSERT INTO policies.default_guardrails (id, name, category, rule_type, config, action, priority, description)
       VALUES ('dg-900', 'another_guardrail', 'cost', 'max_value', '{}', 'block', 1, 'x')$$,
     'guardrail names are unique'),
    ('contract_domains_schema_unique',
     $$INSERT INTO aos.contract_domains (domain, schema_name, question) VALUES ('other', 'activity', 'x')$$,
     $$INSERT INTO aos.contract_domains (domain, schema_name, question) VALUES ('other', 'other', 'x')$$,
     'one domain per schema'),
    ('contract_facades_endpoint_unique',
     $$INSERT INTO aos.contract_facades (function_name, endpoint, domain)
       VALUES ('api.other', '/rpc/incidents', 'incidents')$$,
     $$INSERT INTO aos.contract_facades (function_name, endpoint, domain)
       VALUES ('api.other', '/rpc/other', 'incidents')$$,
     'one facade per endpoint');

-- The unique keys of the materialized views: (key, view, columns, the id
-- column, the id both tenants hold).
CREATE TEMP TABLE view_keys (
    key name, schema_name name, view_name name, columns name[], id_column name, shared_id text
) ON COMMIT DROP;
INSERT INTO view_keys VALUES
    ('v_runs_o2_key', 'activity', 'v_runs_o2', '{tenant_id,run_id}', 'run_id', 'r1'),
    ('v_incidents_o2_key', 'incidents', 'v_incidents_o2', '{tenant_id,incident_id}', 'incident_id',
     '00000000-0000-0000-0000-0000000000b1');

SELECT plan((SELECT count(*)::int * 3 FROM cases) + (SELECT count(*)::int * 4 FROM view_keys) + 1);

SELECT throws_ok(duplicate, '23505', NULL, format('%s: %s (23505)', key, what))
FROM cases ORDER BY key, what;

SELECT is(aosdb_test.outcome(duplicate), '23505 ' || key, format('the duplicate error names %s', key))
FROM cases ORDER BY key, what;

SELECT is(aosdb_test.outcome(near_miss), 'no error', format('%s accepts the near miss', key))
FROM cases ORDER BY key, what;

-- A materialized view's key: unique, on exactly the key columns, with no
-- predicate or expression (what REFRESH ... CONCURRENTLY requires), so the
-- concurrent refresh works and the same id of two tenants is two rows.
SELECT index_is_unique(schema_name, view_name, key, format('%s.%s: %s is a unique index', schema_name, view_name, key))
FROM view_keys ORDER BY key;

SELECT is(
    (SELECT ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k (attnum, ord)
                  JOIN pg_catalog.pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                  ORDER BY k.ord)
            || ARRAY[(i.indpred IS NULL AND i.indexprs IS NULL)::text::name]
     FROM pg_catalog.pg_index AS i
     WHERE i.indexrelid = format('%I.%I', v.schema_name, v.key)::regclass
       AND i.indrelid = format('%I.%I', v.schema_name, v.view_name)::regclass),
    v.columns || 'true'::name,
    format('%s covers exactly (%s), with no predicate or expression', v.key, array_to_string(v.columns, ', '))
)
FROM view_keys AS v ORDER BY v.key;

SELECT lives_ok(format('REFRESH MATERIALIZED VIEW CONCURRENTLY %I.%I', schema_name, view_name),
                format('%s.%s can be refreshed CONCURRENTLY (through %s)', schema_name, view_name, key))
FROM view_keys ORDER BY key;

SELECT results_eq(
    format('SELECT tenant_id FROM %I.%I WHERE %I::text = %L ORDER BY tenant_id', schema_name, view_name, id_column,
           shared_id),
    $$ VALUES ('t1'::text), ('t2') $$,
    format('%s accepts the same %s in two tenants', key, id_column)
)
FROM view_keys ORDER BY key;

-- Every non-primary unique key and unique index has a case here.
SELECT is_empty(
    $$
    SELECT i.indexrelid::regclass::text
    FROM pg_catalog.pg_index AS i
    JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api') AND i.indisunique AND NOT i.indisprimary
      AND c.relname NOT IN (SELECT key FROM cases UNION SELECT key FROM view_keys)
    $$,
    'every unique key and unique index of the five schemas has a case in this file '
    || '(a duplicate, or for a materialized view its refresh)'
);

SELECT * FROM finish();
ROLLBACK;
