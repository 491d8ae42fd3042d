-- Operator actions on proposals and rules, tenant-scoped through
-- aos.current_tenant() (another tenant's ids are "not found", P0002). Approve
-- and reject are the PolicyProposalEngine's (they write proposals); the
-- PolicyEngine creates the rule of an approved proposal by trigger, and owns
-- create_rule and retire_rule. Invalid input 22023, wrong transition 55000.

-- The caller's proposal, locked, or P0002. The lock makes concurrent reviews
-- of one proposal take turns: the second sees the first one's verdict.
CREATE OR REPLACE FUNCTION policies._lock_proposal(p_proposal_id uuid) RETURNS policies.policy_proposals
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_proposal policies.policy_proposals;
BEGIN
    SELECT * INTO v_proposal FROM policies.policy_proposals
    WHERE tenant_id = aos.current_tenant() AND id = p_proposal_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'proposal % not found', p_proposal_id USING ERRCODE = 'P0002';
    END IF;
    RETURN v_proposal;
END
$fn$;
COMMENT ON FUNCTION policies._lock_proposal(uuid) IS
    'Action helper: the proposal of the caller''s tenant with this id, row-locked; P0002 when there is none.';

-- Moves a pending proposal to p_status (approved or rejected) and publishes it.
CREATE OR REPLACE FUNCTION policies._review_proposal(
    p_proposal_id uuid, p_status text, p_reviewed_by text, p_notes text
) RETURNS policies.policy_proposals
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_proposal policies.policy_proposals;
BEGIN
    IF coalesce(btrim(p_reviewed_by), '') = '' THEN
        RAISE EXCEPTION 'a reviewer is required' USING ERRCODE = '22023';
    END IF;
    PERFORM aos._check_text('reviewed_by', p_reviewed_by, 200), aos._check_text('notes', p_notes, 65536, FALSE);
    v_proposal := policies._lock_proposal(p_proposal_id);
    IF v_proposal.status <> 'pending' THEN
        RAISE EXCEPTION 'proposal % is already %; approved and rejected are final', p_proposal_id, v_proposal.status
            USING ERRCODE = '55000';
    END IF;
    -- The verdict's event comes first: the rule the UPDATE's trigger creates follows it.
    INSERT INTO aos.events (event, tenant_id, subject_id, payload)
    VALUES ('proposal_' || p_status, v_proposal.tenant_id, v_proposal.id::text,
            jsonb_build_object('proposal_id', v_proposal.id, 'reviewed_by', p_reviewed_by,
                               'incident_id', v_proposal.triggering_incident_id,
                               'is_synthetic', v_proposal.is_synthetic));
    UPDATE policies.policy_proposals
    SET status = p_status, reviewed_at = now(), reviewed_by = p_reviewed_by, review_notes = p_notes
    WHERE tenant_id = v_proposal.tenant_id AND id = v_proposal.id;
    RETURN v_proposal;
END
$fn$;
COMMENT ON FUNCTION policies._review_proposal(uuid, text, text, text) IS
    'Action helper: pending -> approved or rejected with the reviewer, and the proposal_<status> event.';

CREATE OR REPLACE FUNCTION policies.approve_proposal(
    p_proposal_id uuid, p_reviewed_by text, p_notes text DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_proposal policies.policy_proposals;
    v_rule_id uuid;
BEGIN
    v_proposal := policies._review_proposal(p_proposal_id, 'approved', p_reviewed_by, p_notes);
    -- The PolicyEngine's trigger created the rule inside the UPDATE above.
    SELECT id INTO STRICT v_rule_id FROM policies.policy_rules
    WHERE tenant_id = v_proposal.tenant_id AND source_proposal_id = v_proposal.id;
    RETURN v_rule_id;
END
$fn$;
COMMENT ON FUNCTION policies.approve_proposal(uuid, text, text) IS
    'Operator: pending -> approved; the PolicyEngine creates the proposed rule (source = proposal) in the same '
    'transaction; returns the rule id. Errors: 22023 blank reviewer, P0002 no such proposal in the caller''s tenant, '
    '55000 already approved or rejected, 28000 no tenant set.';

CREATE OR REPLACE FUNCTION policies.reject_proposal(
    p_proposal_id uuid, p_reviewed_by text, p_notes text DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    PERFORM policies._review_proposal(p_proposal_id, 'rejected', p_reviewed_by, p_notes);
END
$fn$;
COMMENT ON FUNCTION policies.reject_proposal(uuid, text, text) IS
    'Operator: pending -> rejected; creates nothing. Errors: 22023 blank reviewer, P0002 no such proposal in the '
    'caller''s tenant, 55000 already approved or rejected, 28000 no tenant set.';

CREATE OR REPLACE FUNCTION policies.create_rule(
    p_name text, p_rule_type text, p_conditions jsonb, p_enforcement text, p_agent_id text DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_tenant text := aos.current_tenant();
    -- The role SET ROLE chose, else session_user: current_user is this function's owner.
    v_caller name := CASE current_setting('role') WHEN 'none' THEN session_user ELSE current_setting('role') END;
    v_scenario text;
    v_id uuid;
BEGIN
    -- Synthetic marks only from the scenario runner (acting as aos_scenario without operator
    -- rights): a setting alone, which any caller may set, would hide a real rule from dashboards.
    IF pg_has_role(v_caller, 'aos_scenario', 'USAGE') AND NOT pg_has_role(v_caller, 'aos_operator', 'USAGE') THEN
        v_scenario := nullif(current_setting('aos.synthetic_scenario_id', true), '');
    END IF;
    IF coalesce(btrim(p_name), '') = '' THEN
        RAISE EXCEPTION 'a rule name is required' USING ERRCODE = '22023';
    END IF;
    PERFORM aos._check_text('name', p_name, 200), aos._check_text('agent_id', p_agent_id, 200, FALSE),
            aos._check_json('conditions', p_conditions);
    IF p_rule_type IS NULL OR p_rule_type NOT IN ('error_code', 'max_value', 'pattern_block', 'blocked_skill') THEN
        RAISE EXCEPTION 'rule type must be error_code, max_value, pattern_block or blocked_skill, got %',
            aos._shown(p_rule_type) USING ERRCODE = '22023';
    END IF;
    IF p_enforcement IS NULL OR p_enforcement NOT IN ('block', 'warn', 'audit') THEN
        RAISE EXCEPTION 'enforcement must be block, warn or audit, got %', aos._shown(p_enforcement)
            USING ERRCODE = '22023';
    END IF;
    IF NOT policies.rule_conditions_valid(p_rule_type, p_conditions) THEN
        RAISE EXCEPTION 'conditions % do not fit rule type %', aos._shown(p_conditions::text), p_rule_type
            USING ERRCODE = '22023',
                  HINT = CASE p_rule_type
                      WHEN 'error_code' THEN '{"error_codes": ["EXECUTION_TIMEOUT", ...]}'
                      WHEN 'max_value' THEN '{"metric": "estimated_cost_usd|input_tokens|output_tokens|total_tokens|duration_ms|attempts", "max": 1.5}'
                      WHEN 'pattern_block' THEN '{"patterns": ["text to block in the goal", ...]}'
                      ELSE '{"skills": ["skill_name", ...]}'
                  END;
    END IF;
    INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement, source, agent_id,
                                       is_synthetic, synthetic_scenario_id)
    VALUES (v_tenant, p_name, p_rule_type, p_conditions, p_enforcement, 'manual', nullif(btrim(p_agent_id), ''),
            v_scenario IS NOT NULL, v_scenario)
    RETURNING id INTO v_id;
    INSERT INTO aos.events (event, tenant_id, subject_id, payload)
    VALUES ('rule_created', v_tenant, v_id::text,
            jsonb_build_object('rule_id', v_id, 'rule_type', p_rule_type, 'enforcement', p_enforcement,
                               'source', 'manual', 'is_synthetic', v_scenario IS NOT NULL));
    RETURN v_id;
END
$fn$;
COMMENT ON FUNCTION policies.create_rule(text, text, jsonb, text, text) IS
    'Operator: creates an active manual rule for the caller''s tenant (optionally for one agent) and returns its id. '
    'Errors: 22023 invalid name, type, enforcement or conditions, 28000 no tenant set.';

CREATE OR REPLACE FUNCTION policies.retire_rule(p_rule_id uuid, p_actor text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_rule policies.policy_rules;
BEGIN
    IF coalesce(btrim(p_actor), '') = '' THEN
        RAISE EXCEPTION 'an actor is required' USING ERRCODE = '22023';
    END IF;
    PERFORM aos._check_text('actor', p_actor, 200);
    SELECT * INTO v_rule FROM policies.policy_rules
    WHERE tenant_id = aos.current_tenant() AND id = p_rule_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rule % not found', p_rule_id USING ERRCODE = 'P0002';
    END IF;
    IF v_rule.status = 'retired' THEN
        RAISE EXCEPTION 'rule % is already retired', p_rule_id USING ERRCODE = '55000';
    END IF;
    UPDATE policies.policy_rules SET status = 'retired', retired_at = now(), retired_by = p_actor
    WHERE tenant_id = v_rule.tenant_id AND id = v_rule.id;
    INSERT INTO aos.events (event, tenant_id, subject_id, payload)
    VALUES ('rule_retired', v_rule.tenant_id, v_rule.id::text,
            jsonb_build_object('rule_id', v_rule.id, 'actor', p_actor, 'is_synthetic', v_rule.is_synthetic));
END
$fn$;
COMMENT ON FUNCTION policies.retire_rule(uuid, text) IS
    'Operator: active -> retired; the rule is no longer enforced. Errors: 22023 blank actor, P0002 no such rule in the '
    'caller''s tenant, 55000 already retired, 28000 no tenant set.';

SELECT aos.hand_to_engine(f, 'aos_proposal_engine') FROM unnest(ARRAY[
    'policies._lock_proposal(uuid)', 'policies._review_proposal(uuid, text, text, text)',
    'policies.approve_proposal(uuid, text, text)', 'policies.reject_proposal(uuid, text, text)'
]::regprocedure[]) AS f;
SELECT aos.hand_to_engine(f, 'aos_policy_engine') FROM unnest(ARRAY[
    'policies.create_rule(text, text, jsonb, text, text)', 'policies.retire_rule(uuid, text)'
]::regprocedure[]) AS f;

GRANT EXECUTE ON FUNCTION policies.approve_proposal(uuid, text, text) TO aos_operator, aos_scenario;
GRANT EXECUTE ON FUNCTION policies.reject_proposal(uuid, text, text) TO aos_operator, aos_scenario;
GRANT EXECUTE ON FUNCTION policies.create_rule(text, text, jsonb, text, text) TO aos_operator, aos_scenario;
GRANT EXECUTE ON FUNCTION policies.retire_rule(uuid, text) TO aos_operator, aos_scenario;

-- The actions with their ids as text: a driver's string or a quoted literal
-- that is not a uuid raises 22023 naming the id, not the cast's 22P02 before
-- any function runs. A uuid value still resolves to the uuid versions above.
-- Owned by the same engines, as every operator action is.
CREATE OR REPLACE FUNCTION policies.approve_proposal(
    p_proposal_id text, p_reviewed_by text, p_notes text DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    RETURN policies.approve_proposal(aos._uuid('proposal_id', p_proposal_id), p_reviewed_by, p_notes);
END
$fn$;
COMMENT ON FUNCTION policies.approve_proposal(text, text, text) IS
    'Operator: policies.approve_proposal(uuid, text, text) with the id as text; 22023 when it is not a uuid.';

CREATE OR REPLACE FUNCTION policies.reject_proposal(
    p_proposal_id text, p_reviewed_by text, p_notes text DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    PERFORM policies.reject_proposal(aos._uuid('proposal_id', p_proposal_id), p_reviewed_by, p_notes);
END
$fn$;
COMMENT ON FUNCTION policies.reject_proposal(text, text, text) IS
    'Operator: policies.reject_proposal(uuid, text, text) with the id as text; 22023 when it is not a uuid.';

CREATE OR REPLACE FUNCTION policies.retire_rule(p_rule_id text, p_actor text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    PERFORM policies.retire_rule(aos._uuid('rule_id', p_rule_id), p_actor);
END
$fn$;
COMMENT ON FUNCTION policies.retire_rule(text, text) IS
    'Operator: policies.retire_rule(uuid, text) with the id as text; 22023 when it is not a uuid.';

SELECT aos.hand_to_engine(f, 'aos_proposal_engine') FROM unnest(ARRAY[
    'policies.approve_proposal(text, text, text)', 'policies.reject_proposal(text, text, text)'
]::regprocedure[]) AS f;
SELECT aos.hand_to_engine('policies.retire_rule(text, text)', 'aos_policy_engine');

GRANT EXECUTE ON FUNCTION policies.approve_proposal(text, text, text), policies.reject_proposal(text, text, text),
    policies.retire_rule(text, text)
TO aos_operator, aos_scenario;
