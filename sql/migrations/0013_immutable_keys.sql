-- depends: 0012_api_views_and_temp
-- Keys are immutable. The engines pair a statement's old and new rows on their keys, so an UPDATE
-- that also changed a key would reach no engine (a failed run without its incident, a 99,999-token
-- run past dg-002, a run moved to another tenant). Two locks:
--   * column-level UPDATE grants: no role may update a key (or a link that pairs rows);
--   * a BEFORE UPDATE row trigger that refuses a key change even to the owner (42501).
-- And runs.policy_violation is the PolicyEngine's alone: the worker and the scenario runner may
-- neither set it on insert nor change it (column-level INSERT grants).
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;

-- One function for every table: its trigger names the key columns. The WHEN clause of each
-- trigger is the rule itself, so a legal UPDATE costs no function call.
CREATE FUNCTION aos.tg_immutable_keys() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_old jsonb := to_jsonb(OLD);
    v_new jsonb := to_jsonb(NEW);
    v_column text;
BEGIN
    FOREACH v_column IN ARRAY TG_ARGV LOOP
        IF v_old -> v_column IS DISTINCT FROM v_new -> v_column THEN
            RAISE EXCEPTION '%.%.% is a key and cannot be updated', TG_TABLE_SCHEMA, TG_TABLE_NAME, v_column
                USING ERRCODE = '42501', HINT = 'Insert a new row instead.';
        END IF;
    END LOOP;
    RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION aos.tg_immutable_keys() IS
    'Row trigger (before UPDATE, only when a key changes): raises 42501 naming the first changed key column of '
    'TG_ARGV. The engines pair old and new rows on these keys.';

-- _000: before every other trigger, so the key error comes first.
CREATE TRIGGER _000_immutable_keys BEFORE UPDATE ON activity.runs
FOR EACH ROW WHEN (old.tenant_id IS DISTINCT FROM new.tenant_id OR old.id IS DISTINCT FROM new.id
                   OR old.run_id IS DISTINCT FROM new.run_id)
EXECUTE FUNCTION aos.tg_immutable_keys('tenant_id', 'id', 'run_id');
CREATE TRIGGER _000_immutable_keys BEFORE UPDATE ON activity.aos_traces
FOR EACH ROW WHEN (old.tenant_id IS DISTINCT FROM new.tenant_id OR old.id IS DISTINCT FROM new.id
                   OR old.trace_id IS DISTINCT FROM new.trace_id OR old.run_id IS DISTINCT FROM new.run_id)
EXECUTE FUNCTION aos.tg_immutable_keys('tenant_id', 'id', 'trace_id', 'run_id');
CREATE TRIGGER _000_immutable_keys BEFORE UPDATE ON activity.aos_trace_steps
FOR EACH ROW WHEN (old.tenant_id IS DISTINCT FROM new.tenant_id OR old.trace_id IS DISTINCT FROM new.trace_id
                   OR old.step_index IS DISTINCT FROM new.step_index)
EXECUTE FUNCTION aos.tg_immutable_keys('tenant_id', 'trace_id', 'step_index');
CREATE TRIGGER _000_immutable_keys BEFORE UPDATE ON incidents.incidents
FOR EACH ROW WHEN (old.tenant_id IS DISTINCT FROM new.tenant_id OR old.id IS DISTINCT FROM new.id
                   OR old.source_run_id IS DISTINCT FROM new.source_run_id
                   OR old.llm_run_id IS DISTINCT FROM new.llm_run_id)
EXECUTE FUNCTION aos.tg_immutable_keys('tenant_id', 'id', 'source_run_id', 'llm_run_id');
CREATE TRIGGER _000_immutable_keys BEFORE UPDATE ON policies.policy_proposals
FOR EACH ROW WHEN (old.tenant_id IS DISTINCT FROM new.tenant_id OR old.id IS DISTINCT FROM new.id
                   OR old.triggering_incident_id IS DISTINCT FROM new.triggering_incident_id
                   OR old.triggering_run_id IS DISTINCT FROM new.triggering_run_id)
EXECUTE FUNCTION aos.tg_immutable_keys('tenant_id', 'id', 'triggering_incident_id', 'triggering_run_id');
CREATE TRIGGER _000_immutable_keys BEFORE UPDATE ON policies.policy_rules
FOR EACH ROW WHEN (old.tenant_id IS DISTINCT FROM new.tenant_id OR old.id IS DISTINCT FROM new.id
                   OR old.source_proposal_id IS DISTINCT FROM new.source_proposal_id)
EXECUTE FUNCTION aos.tg_immutable_keys('tenant_id', 'id', 'source_proposal_id');

-- Table-level INSERT/UPDATE become column lists (a table-level REVOKE also revokes the column
-- privileges of the same kind). SELECT stays table-level.
REVOKE INSERT, UPDATE ON activity.runs FROM aos_worker, aos_scenario;
GRANT INSERT (tenant_id, id, run_id, agent_id, goal, status, error_code, error_message, attempts, input_tokens,
              output_tokens, estimated_cost_usd, created_at, started_at, completed_at, duration_ms, is_synthetic,
              synthetic_scenario_id),
      UPDATE (agent_id, goal, status, error_code, error_message, attempts, input_tokens, output_tokens,
              estimated_cost_usd, created_at, started_at, completed_at, duration_ms, is_synthetic,
              synthetic_scenario_id)
ON activity.runs TO aos_worker, aos_scenario;

REVOKE UPDATE ON activity.aos_traces FROM aos_worker, aos_scenario;
GRANT UPDATE (status, started_at, completed_at, metadata, is_synthetic, synthetic_scenario_id)
ON activity.aos_traces TO aos_worker, aos_scenario;

REVOKE UPDATE ON incidents.incidents FROM aos_incident_engine;
GRANT UPDATE (title, severity, lifecycle_state, category, error_code, error_message, cause_type, created_at,
              acknowledged_at, acknowledged_by, resolved_at, resolved_by, resolution_method, resolution_notes,
              is_synthetic, synthetic_scenario_id)
ON incidents.incidents TO aos_incident_engine;

REVOKE UPDATE ON policies.policy_proposals FROM aos_proposal_engine;
GRANT UPDATE (proposal_name, proposal_type, rationale, proposed_rule, status, created_at, reviewed_at, reviewed_by,
              review_notes, is_synthetic, synthetic_scenario_id, incident_count, last_seen_at)
ON policies.policy_proposals TO aos_proposal_engine;

REVOKE UPDATE ON policies.policy_rules FROM aos_policy_engine;
GRANT UPDATE (name, rule_type, conditions, enforcement, status, source, agent_id, created_at, retired_at, retired_by,
              is_synthetic, synthetic_scenario_id)
ON policies.policy_rules TO aos_policy_engine;

-- The contract lists the same column grants.
UPDATE aos.contract_grants
SET column_names = ARRAY['tenant_id', 'id', 'run_id', 'agent_id', 'goal', 'status', 'error_code',
    'error_message', 'attempts', 'input_tokens', 'output_tokens', 'estimated_cost_usd', 'created_at',
    'started_at', 'completed_at', 'duration_ms', 'is_synthetic', 'synthetic_scenario_id']
WHERE schema_name = 'activity' AND table_name = 'runs' AND privilege = 'INSERT'
  AND (role_name = 'aos_worker' OR role_name = 'aos_scenario');
UPDATE aos.contract_grants
SET column_names = ARRAY['agent_id', 'goal', 'status', 'error_code', 'error_message', 'attempts',
    'input_tokens', 'output_tokens', 'estimated_cost_usd', 'created_at', 'started_at', 'completed_at',
    'duration_ms', 'is_synthetic', 'synthetic_scenario_id']
WHERE schema_name = 'activity' AND table_name = 'runs' AND privilege = 'UPDATE'
  AND (role_name = 'aos_worker' OR role_name = 'aos_scenario');
UPDATE aos.contract_grants
SET column_names = ARRAY['status', 'started_at', 'completed_at', 'metadata', 'is_synthetic',
    'synthetic_scenario_id']
WHERE schema_name = 'activity' AND table_name = 'aos_traces' AND privilege = 'UPDATE'
  AND (role_name = 'aos_worker' OR role_name = 'aos_scenario');
UPDATE aos.contract_grants
SET column_names = ARRAY['title', 'severity', 'lifecycle_state', 'category', 'error_code', 'error_message',
    'cause_type', 'created_at', 'acknowledged_at', 'acknowledged_by', 'resolved_at', 'resolved_by',
    'resolution_method', 'resolution_notes', 'is_synthetic', 'synthetic_scenario_id']
WHERE schema_name = 'incidents' AND table_name = 'incidents' AND privilege = 'UPDATE'
  AND role_name = 'aos_incident_engine';
UPDATE aos.contract_grants
SET column_names = ARRAY['proposal_name', 'proposal_type', 'rationale', 'proposed_rule', 'status',
    'created_at', 'reviewed_at', 'reviewed_by', 'review_notes', 'is_synthetic', 'synthetic_scenario_id',
    'incident_count', 'last_seen_at']
WHERE schema_name = 'policies' AND table_name = 'policy_proposals' AND privilege = 'UPDATE'
  AND role_name = 'aos_proposal_engine';
UPDATE aos.contract_grants
SET column_names = ARRAY['name', 'rule_type', 'conditions', 'enforcement', 'status', 'source', 'agent_id',
    'created_at', 'retired_at', 'retired_by', 'is_synthetic', 'synthetic_scenario_id']
WHERE schema_name = 'policies' AND table_name = 'policy_rules' AND privilege = 'UPDATE'
  AND role_name = 'aos_policy_engine';

RESET ROLE;
