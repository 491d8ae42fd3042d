-- depends: 0004_incidents
-- Policies domain: default guardrails (reference data), proposals, rules and
-- prevention records.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;

-- The shape each rule type's conditions must have. A CHECK constraint of
-- rules and proposals calls it, so an invalid rule can never be stored.
--   error_code    {"error_codes": ["EXECUTION_TIMEOUT", ...]}
--   max_value     {"metric": "estimated_cost_usd" | "input_tokens" | "output_tokens"
--                  | "total_tokens" | "duration_ms" | "attempts", "max": <number >= 0>}
--   pattern_block {"patterns": ["text matched case-insensitively in the goal", ...]}
--   blocked_skill {"skills": ["skill_name", ...]}
CREATE FUNCTION policies.rule_conditions_valid(p_rule_type text, p_conditions jsonb) RETURNS boolean
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
COMMENT ON FUNCTION policies.rule_conditions_valid(text, jsonb) IS
    'True when p_conditions has exactly the shape rule type p_rule_type requires (see the migration for the '
        'shapes). Used by CHECK constraints; pure, so executable by everyone.';
-- Meant for everyone: CHECK constraints run it as the inserting role.
GRANT EXECUTE ON FUNCTION policies.rule_conditions_valid(text, jsonb) TO PUBLIC;

-- Shared reference data: the guardrails every tenant gets, evaluated by the
-- PolicyEngine when a run completes.
CREATE TABLE policies.default_guardrails (
    id text NOT NULL,
    name text NOT NULL,
    category text NOT NULL,
    rule_type text NOT NULL,
    config jsonb NOT NULL,
    action text NOT NULL,
    is_enabled boolean NOT NULL DEFAULT TRUE,
    priority integer NOT NULL,
    version integer NOT NULL DEFAULT 1,
    description text NOT NULL,
    CONSTRAINT default_guardrails_pkey PRIMARY KEY (id),
    CONSTRAINT default_guardrails_name_unique UNIQUE (name),
    CONSTRAINT default_guardrails_id_format CHECK (id ~ '^dg-[0-9]{3}$'),
    CONSTRAINT default_guardrails_rule_type_valid CHECK (
        rule_type IN ('max_value', 'rate_limit', 'failure_spike', 'pattern_block')
    ),
    CONSTRAINT default_guardrails_action_valid CHECK (action IN ('block', 'throttle', 'freeze', 'warn', 'audit')),
    CONSTRAINT default_guardrails_config_is_object CHECK (jsonb_typeof(config) = 'object'),
    CONSTRAINT default_guardrails_priority_positive CHECK (priority > 0),
    CONSTRAINT default_guardrails_version_positive CHECK (version > 0)
);
COMMENT ON TABLE policies.default_guardrails IS
    'Reference data: guardrails every tenant gets. Shared by all tenants; edited by the owner.';
COMMENT ON COLUMN policies.default_guardrails.id IS 'Guardrail id, dg-NNN.';
COMMENT ON COLUMN policies.default_guardrails.name IS 'Unique descriptive name.';
COMMENT ON COLUMN policies.default_guardrails.category IS
    'What the guardrail protects: cost, tokens, rate, reliability or safety.';
COMMENT ON COLUMN policies.default_guardrails.rule_type IS
    'How config is evaluated: max_value, rate_limit, failure_spike or pattern_block.';
COMMENT ON COLUMN policies.default_guardrails.config IS 'Parameters of the check (limits, windows, patterns).';
COMMENT ON COLUMN policies.default_guardrails.action IS
    'block, throttle, freeze, warn or audit; sets the prevention record outcome.';
COMMENT ON COLUMN policies.default_guardrails.is_enabled IS 'Disabled guardrails are not evaluated.';
COMMENT ON COLUMN policies.default_guardrails.priority IS 'Evaluation order, lowest first.';
COMMENT ON COLUMN policies.default_guardrails.version IS 'Bumped whenever config changes.';
COMMENT ON COLUMN policies.default_guardrails.description IS 'The rule in words.';

INSERT INTO policies.default_guardrails (id, name, category, rule_type, config, action, priority, description) VALUES
    ('dg-001', 'max_cost_per_request', 'cost', 'max_value',
     '{"metric": "estimated_cost_cents", "max": 100}', 'block', 10,
     'A run may cost at most 100 cents.'),
    ('dg-002', 'max_tokens_per_request', 'tokens', 'max_value',
     '{"metric": "total_tokens", "max": 16000}', 'block', 20,
     'A run may use at most 16000 input plus output tokens.'),
    ('dg-003', 'rate_limit_rpm', 'rate', 'rate_limit',
     '{"max_runs": 100, "window_seconds": 60}', 'throttle', 30,
     'A tenant may start at most 100 runs in 60 seconds.'),
    ('dg-004', 'failure_spike_freeze', 'reliability', 'failure_spike',
     '{"max_failure_rate": 0.5, "window_seconds": 60, "min_runs": 10}', 'freeze', 40,
     'Freeze when more than half of a tenant''s runs of the last 60 seconds failed, over at least 10 runs.'),
    ('dg-005', 'prompt_injection_block', 'safety', 'pattern_block',
     jsonb_build_object('patterns', jsonb_build_array(
         'ignore previous instructions', 'disregard above', 'system prompt:',
         E'\n\nHuman:', E'\n\nAssistant:'), 'case_insensitive', TRUE),
     'block', 50,
     'Block goals that contain a known prompt-injection phrase (case-insensitive).');

GRANT SELECT ON policies.default_guardrails TO aos_policy_engine;

CREATE TABLE policies.policy_proposals (
    tenant_id text NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    triggering_incident_id uuid,
    triggering_run_id text,
    proposal_name text NOT NULL,
    proposal_type text NOT NULL,
    rationale text,
    proposed_rule jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    created_at timestamptz NOT NULL DEFAULT now(),
    reviewed_at timestamptz,
    reviewed_by text,
    review_notes text,
    is_synthetic boolean NOT NULL DEFAULT FALSE,
    synthetic_scenario_id text,
    CONSTRAINT policy_proposals_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT policy_proposals_one_per_incident UNIQUE (tenant_id, triggering_incident_id),
    CONSTRAINT policy_proposals_tenant_fk FOREIGN KEY (tenant_id) REFERENCES aos.tenants (tenant_id),
    CONSTRAINT policy_proposals_triggering_incident_fk FOREIGN KEY (tenant_id, triggering_incident_id)
        REFERENCES incidents.incidents (tenant_id, id),
    CONSTRAINT policy_proposals_triggering_run_fk FOREIGN KEY (tenant_id, triggering_run_id)
        REFERENCES activity.runs (tenant_id, run_id),
    CONSTRAINT policy_proposals_status_valid CHECK (status IN ('pending', 'approved', 'rejected')),
    CONSTRAINT policy_proposals_proposal_type_valid CHECK (proposal_type IN (
        'timeout_policy', 'crash_recovery_policy', 'retry_policy', 'failure_pattern_policy',
        'cost_cap_policy', 'rate_limit_policy'
    )),
    CONSTRAINT policy_proposals_name_not_blank CHECK (btrim(proposal_name) <> ''),
    CONSTRAINT policy_proposals_proposed_rule_valid CHECK (
        coalesce(proposed_rule ->> 'enforcement' IN ('block', 'warn', 'audit'), FALSE)
        AND policies.rule_conditions_valid(proposed_rule ->> 'rule_type', proposed_rule -> 'conditions')
    ),
    CONSTRAINT policy_proposals_review_recorded CHECK (
        (status = 'pending' AND reviewed_at IS NULL AND reviewed_by IS NULL)
        OR (status <> 'pending' AND reviewed_at IS NOT NULL AND coalesce(btrim(reviewed_by), '') <> '')
    ),
    CONSTRAINT policy_proposals_scenario_implies_synthetic CHECK (synthetic_scenario_id IS NULL OR is_synthetic)
);
COMMENT ON TABLE policies.policy_proposals IS
    'Proposed rules awaiting an operator''s review: one per high or critical incident, created by the '
    'PolicyProposalEngine.';
COMMENT ON COLUMN policies.policy_proposals.tenant_id IS 'Owning tenant; first column of every key.';
COMMENT ON COLUMN policies.policy_proposals.id IS 'Generated uuid of the proposal.';
COMMENT ON COLUMN policies.policy_proposals.triggering_incident_id IS
    'Incident that triggered the proposal (incidents.incidents.id); at most one proposal per incident.';
COMMENT ON COLUMN policies.policy_proposals.triggering_run_id IS
    'Run whose failure caused that incident (activity.runs.run_id).';
COMMENT ON COLUMN policies.policy_proposals.proposal_name IS 'Human-readable name.';
COMMENT ON COLUMN policies.policy_proposals.proposal_type IS
    'Kind of policy proposed, from the failure class (e.g. timeout_policy).';
COMMENT ON COLUMN policies.policy_proposals.rationale IS 'Why the rule is proposed.';
COMMENT ON COLUMN policies.policy_proposals.proposed_rule IS
    'The rule approval creates: {"rule_type", "conditions", "enforcement"}; always a valid rule.';
COMMENT ON COLUMN policies.policy_proposals.status IS 'pending, approved or rejected; approved and rejected are final.';
COMMENT ON COLUMN policies.policy_proposals.created_at IS 'When the proposal was made.';
COMMENT ON COLUMN policies.policy_proposals.reviewed_at IS 'When it was approved or rejected.';
COMMENT ON COLUMN policies.policy_proposals.reviewed_by IS 'Who approved or rejected it.';
COMMENT ON COLUMN policies.policy_proposals.review_notes IS 'The reviewer''s notes.';
COMMENT ON COLUMN policies.policy_proposals.is_synthetic IS 'True for effects of an SDSR scenario.';
COMMENT ON COLUMN policies.policy_proposals.synthetic_scenario_id IS
    'Scenario the proposal stems from; implies is_synthetic.';

CREATE INDEX policy_proposals_triggering_run_idx ON policies.policy_proposals (tenant_id, triggering_run_id);
CREATE INDEX policy_proposals_tenant_created_at_idx ON policies.policy_proposals (tenant_id, created_at DESC);

GRANT SELECT, INSERT, UPDATE ON policies.policy_proposals TO aos_proposal_engine;
GRANT SELECT ON policies.policy_proposals TO aos_policy_engine;
ALTER TABLE policies.policy_proposals ENABLE ROW LEVEL SECURITY;
CREATE POLICY policy_proposals_tenant_isolation ON policies.policy_proposals
    USING (tenant_id = (SELECT aos.current_tenant()))
    WITH CHECK (tenant_id = (SELECT aos.current_tenant()));
CREATE POLICY policy_proposals_trusted_all ON policies.policy_proposals TO aos_proposal_engine, aos_policy_engine
    USING (TRUE) WITH CHECK (TRUE);

CREATE TABLE policies.policy_rules (
    tenant_id text NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    rule_type text NOT NULL,
    conditions jsonb NOT NULL,
    enforcement text NOT NULL,
    status text NOT NULL DEFAULT 'active',
    source text NOT NULL DEFAULT 'manual',
    source_proposal_id uuid,
    agent_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz,
    retired_by text,
    is_synthetic boolean NOT NULL DEFAULT FALSE,
    synthetic_scenario_id text,
    CONSTRAINT policy_rules_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT policy_rules_one_per_proposal UNIQUE (tenant_id, source_proposal_id),
    CONSTRAINT policy_rules_tenant_fk FOREIGN KEY (tenant_id) REFERENCES aos.tenants (tenant_id),
    CONSTRAINT policy_rules_source_proposal_fk FOREIGN KEY (tenant_id, source_proposal_id)
        REFERENCES policies.policy_proposals (tenant_id, id),
    CONSTRAINT policy_rules_rule_type_valid CHECK (
        rule_type IN ('error_code', 'max_value', 'pattern_block', 'blocked_skill')
    ),
    CONSTRAINT policy_rules_enforcement_valid CHECK (enforcement IN ('block', 'warn', 'audit')),
    CONSTRAINT policy_rules_status_valid CHECK (status IN ('active', 'retired')),
    CONSTRAINT policy_rules_source_valid CHECK (source IN ('proposal', 'manual')),
    -- An unknown rule type is policy_rules_rule_type_valid's to report, not this one's.
    CONSTRAINT policy_rules_conditions_match_type CHECK (
        rule_type NOT IN ('error_code', 'max_value', 'pattern_block', 'blocked_skill')
        OR policies.rule_conditions_valid(rule_type, conditions)
    ),
    CONSTRAINT policy_rules_source_matches_proposal CHECK ((source = 'proposal') = (source_proposal_id IS NOT NULL)),
    CONSTRAINT policy_rules_retirement_recorded CHECK ((status = 'retired') = (retired_at IS NOT NULL)),
    CONSTRAINT policy_rules_name_not_blank CHECK (btrim(name) <> ''),
    CONSTRAINT policy_rules_scenario_implies_synthetic CHECK (synthetic_scenario_id IS NULL OR is_synthetic)
);
COMMENT ON TABLE policies.policy_rules IS
    'Rules the PolicyEngine enforces for a tenant: created by approving a proposal or manually by an operator.';
COMMENT ON COLUMN policies.policy_rules.tenant_id IS 'Owning tenant; first column of every key.';
COMMENT ON COLUMN policies.policy_rules.id IS 'Generated uuid of the rule.';
COMMENT ON COLUMN policies.policy_rules.name IS 'Human-readable name.';
COMMENT ON COLUMN policies.policy_rules.rule_type IS 'error_code, max_value, pattern_block or blocked_skill.';
COMMENT ON COLUMN policies.policy_rules.conditions IS
    'What the rule matches; its shape depends on rule_type (policies.rule_conditions_valid).';
COMMENT ON COLUMN policies.policy_rules.enforcement IS
    'block, warn or audit; sets the prevention record outcome (blocked, warned, audited).';
COMMENT ON COLUMN policies.policy_rules.status IS 'active or retired; only active rules are enforced.';
COMMENT ON COLUMN policies.policy_rules.source IS 'proposal (created by approval) or manual.';
COMMENT ON COLUMN policies.policy_rules.source_proposal_id IS
    'Approved proposal the rule came from; at most one rule per proposal.';
COMMENT ON COLUMN policies.policy_rules.agent_id IS 'When set, the rule applies to this agent only.';
COMMENT ON COLUMN policies.policy_rules.created_at IS 'When the rule was created.';
COMMENT ON COLUMN policies.policy_rules.retired_at IS 'When the rule was retired.';
COMMENT ON COLUMN policies.policy_rules.retired_by IS 'Who retired the rule.';
COMMENT ON COLUMN policies.policy_rules.is_synthetic IS 'True for effects of an SDSR scenario.';
COMMENT ON COLUMN policies.policy_rules.synthetic_scenario_id IS 'Scenario the rule stems from; implies is_synthetic.';

CREATE INDEX policy_rules_active_idx ON policies.policy_rules (tenant_id, rule_type) WHERE status = 'active';

GRANT SELECT, INSERT, UPDATE ON policies.policy_rules TO aos_policy_engine;
ALTER TABLE policies.policy_rules ENABLE ROW LEVEL SECURITY;
CREATE POLICY policy_rules_tenant_isolation ON policies.policy_rules
    USING (tenant_id = (SELECT aos.current_tenant()))
    WITH CHECK (tenant_id = (SELECT aos.current_tenant()));
CREATE POLICY policy_rules_trusted_all ON policies.policy_rules TO aos_policy_engine
    USING (TRUE) WITH CHECK (TRUE);

CREATE TABLE policies.prevention_records (
    tenant_id text NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    run_id text NOT NULL,
    policy_rule_id uuid,
    guardrail_id text,
    outcome text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    is_synthetic boolean NOT NULL DEFAULT FALSE,
    synthetic_scenario_id text,
    CONSTRAINT prevention_records_pkey PRIMARY KEY (tenant_id, id),
    -- Exactly one source is set, so NULLS NOT DISTINCT makes this "once per
    -- run and rule" and "once per run and guardrail" in one constraint.
    CONSTRAINT prevention_records_once_per_source UNIQUE NULLS NOT DISTINCT
        (tenant_id, run_id, policy_rule_id, guardrail_id),
    CONSTRAINT prevention_records_tenant_fk FOREIGN KEY (tenant_id) REFERENCES aos.tenants (tenant_id),
    CONSTRAINT prevention_records_run_fk FOREIGN KEY (tenant_id, run_id)
        REFERENCES activity.runs (tenant_id, run_id),
    CONSTRAINT prevention_records_policy_rule_fk FOREIGN KEY (tenant_id, policy_rule_id)
        REFERENCES policies.policy_rules (tenant_id, id),
    CONSTRAINT prevention_records_guardrail_fk FOREIGN KEY (guardrail_id)
        REFERENCES policies.default_guardrails (id),
    CONSTRAINT prevention_records_one_source CHECK (num_nonnulls(policy_rule_id, guardrail_id) = 1),
    CONSTRAINT prevention_records_outcome_valid CHECK (
        outcome IN ('prevented', 'blocked', 'warned', 'throttled', 'frozen', 'audited')
    ),
    CONSTRAINT prevention_records_details_is_object CHECK (jsonb_typeof(details) = 'object'),
    CONSTRAINT prevention_records_scenario_implies_synthetic CHECK (synthetic_scenario_id IS NULL OR is_synthetic)
);
COMMENT ON TABLE policies.prevention_records IS
    'One row per rule or guardrail a run violated, written by the PolicyEngine; the run is flagged policy_violation.';
COMMENT ON COLUMN policies.prevention_records.tenant_id IS 'Owning tenant; first column of every key.';
COMMENT ON COLUMN policies.prevention_records.id IS 'Generated uuid of the record.';
COMMENT ON COLUMN policies.prevention_records.run_id IS
    'Run that violated the rule or guardrail (activity.runs.run_id).';
COMMENT ON COLUMN policies.prevention_records.policy_rule_id IS
    'Violated tenant rule; exactly one of policy_rule_id and guardrail_id is set.';
COMMENT ON COLUMN policies.prevention_records.guardrail_id IS
    'Violated default guardrail; exactly one of policy_rule_id and guardrail_id is set.';
COMMENT ON COLUMN policies.prevention_records.outcome IS 'prevented, blocked, warned, throttled, frozen or audited.';
COMMENT ON COLUMN policies.prevention_records.details IS 'What was measured against which limit (a JSON object).';
COMMENT ON COLUMN policies.prevention_records.created_at IS 'When the violation was recorded.';
COMMENT ON COLUMN policies.prevention_records.is_synthetic IS 'True for effects of an SDSR scenario.';
COMMENT ON COLUMN policies.prevention_records.synthetic_scenario_id IS
    'Scenario the record stems from; implies is_synthetic.';

CREATE INDEX prevention_records_policy_rule_idx ON policies.prevention_records (tenant_id, policy_rule_id);

GRANT SELECT, INSERT ON policies.prevention_records TO aos_policy_engine;
ALTER TABLE policies.prevention_records ENABLE ROW LEVEL SECURITY;
CREATE POLICY prevention_records_tenant_isolation ON policies.prevention_records
    USING (tenant_id = (SELECT aos.current_tenant()))
    WITH CHECK (tenant_id = (SELECT aos.current_tenant()));
CREATE POLICY prevention_records_trusted_all ON policies.prevention_records TO aos_policy_engine
    USING (TRUE) WITH CHECK (TRUE);

RESET ROLE;
