-- Undoes 0010. Proposals merged by it stay rejected (their review notes say so): the rollback
-- cannot know which of them an operator would have reviewed. It puts back what 0010 dropped and
-- drops what it added, as 0009 left them.
-- squawk-ignore-file constraint-missing-not-valid, adding-foreign-key-constraint, ban-drop-column
-- squawk-ignore-file require-concurrent-index-deletion, ban-drop-constraint
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;

DELETE FROM aos.contract_facade_reads
WHERE (schema_name, table_name) = ('policies', 'proposal_incidents');
DELETE FROM aos.contract_effects
WHERE (effect_schema, effect_table) = ('policies', 'proposal_incidents');
DELETE FROM aos.contract_grants
WHERE (schema_name, table_name) = ('policies', 'proposal_incidents');
DELETE FROM aos.contract_links
WHERE link_name = 'proposal_incidents_incident_fk';
UPDATE aos.contract_roles
SET description = 'Owns the PolicyProposalEngine functions; writes only policy_proposals.'
WHERE role_name = 'aos_proposal_engine';
DELETE FROM aos.contract_tables
WHERE (schema_name, table_name) IN (('policies', 'proposal_incidents'), ('aos', 'event_ticks'), ('aos', 'event_wakeup'));

ALTER TABLE activity.aos_traces
ADD CONSTRAINT aos_traces_tenant_fk FOREIGN KEY (tenant_id) REFERENCES aos.tenants (tenant_id);
ALTER TABLE activity.aos_trace_steps
ADD CONSTRAINT aos_trace_steps_tenant_fk FOREIGN KEY (tenant_id) REFERENCES aos.tenants (tenant_id);
ALTER TABLE incidents.incident_events
ADD CONSTRAINT incident_events_tenant_fk FOREIGN KEY (tenant_id) REFERENCES aos.tenants (tenant_id);
ALTER TABLE incidents.incident_evidence
ADD CONSTRAINT incident_evidence_tenant_fk FOREIGN KEY (tenant_id) REFERENCES aos.tenants (tenant_id);
ALTER TABLE policies.prevention_records
ADD CONSTRAINT prevention_records_tenant_fk FOREIGN KEY (tenant_id) REFERENCES aos.tenants (tenant_id);

-- The repeatable definitions that use this migration's tables go with them (migrate re-creates them).
DROP TRIGGER IF EXISTS _900_wake ON aos.events;
DROP FUNCTION IF EXISTS aos.tg_events__wake();
DROP FUNCTION IF EXISTS aos.tick_events();
DROP FUNCTION IF EXISTS aos.events_after(bigint, bigint, text, integer);
DROP FUNCTION IF EXISTS aos.event_position(bigint);
DROP FUNCTION IF EXISTS aos.prune_events(bigint, interval);

-- 0005's PL/pgSQL rule_conditions_valid (the CHECK constraints keep calling it).
CREATE OR REPLACE FUNCTION policies.rule_conditions_valid(p_rule_type text, p_conditions jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_keys text[];
    v_list_key text;
    v_list jsonb;
BEGIN
    IF jsonb_typeof(p_conditions) IS DISTINCT FROM 'object' THEN
        RETURN false;
    END IF;
    v_keys := ARRAY(SELECT k FROM jsonb_object_keys(p_conditions) AS k ORDER BY k);
    IF p_rule_type = 'max_value' THEN
        RETURN coalesce(v_keys = ARRAY['max', 'metric']
            AND jsonb_typeof(p_conditions -> 'metric') = 'string'
            AND p_conditions ->> 'metric' IN (
                'estimated_cost_usd', 'input_tokens', 'output_tokens', 'total_tokens', 'duration_ms', 'attempts'
            )
            -- CASE, not AND: the cast must only see numbers.
            AND CASE WHEN jsonb_typeof(p_conditions -> 'max') = 'number'
                     THEN (p_conditions ->> 'max')::numeric >= 0 ELSE FALSE END, FALSE);
    END IF;
    v_list_key := CASE p_rule_type
        WHEN 'error_code' THEN 'error_codes'
        WHEN 'pattern_block' THEN 'patterns'
        WHEN 'blocked_skill' THEN 'skills'
    END;
    IF v_list_key IS NULL OR v_keys <> ARRAY[v_list_key] THEN
        RETURN false;
    END IF;
    v_list := p_conditions -> v_list_key;
    RETURN coalesce(jsonb_typeof(v_list) = 'array'
        AND jsonb_array_length(v_list) > 0
        AND NOT EXISTS (
            SELECT FROM jsonb_array_elements(v_list) AS e
            WHERE jsonb_typeof(e) <> 'string'
               OR btrim(e #>> '{}') = ''
               OR (p_rule_type = 'error_code' AND e #>> '{}' !~ '^[A-Z][A-Z0-9_]*$')
        ), FALSE);
END
$fn$;

DROP INDEX policies.policy_proposals_one_pending_per_rule;
DROP TABLE policies.proposal_incidents;
ALTER TABLE policies.policy_proposals
DROP CONSTRAINT policy_proposals_incident_count_positive,
DROP COLUMN incident_count,
DROP COLUMN last_seen_at;
COMMENT ON TABLE policies.policy_proposals IS
'Proposed rules awaiting an operator''s review: one per high or critical incident, created by the '
'PolicyProposalEngine.';

DROP TABLE aos.event_wakeup;
DROP TABLE aos.event_ticks;
ALTER TABLE aos.events ADD CONSTRAINT events_tenant_fk FOREIGN KEY (tenant_id) REFERENCES aos.tenants (tenant_id);
COMMENT ON TABLE aos.events IS
'Outbox: one row per engine effect or operator action, in commit order of seq. NOTIFY aos_events signals new rows; '
'aosdb watch --since SEQ replays what a listener missed.';
COMMENT ON COLUMN aos.events.seq IS
'Position of the event in the outbox, in commit order: once a transaction has committed, every later commit has '
'larger seqs. Inside the writing transaction the value is provisional.';
COMMENT ON COLUMN aos.events.tx_id IS
'Transaction that wrote the event; the commit-time renumbering finds its own rows by it.';

RESET ROLE;
