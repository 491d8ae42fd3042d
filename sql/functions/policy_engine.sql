-- PolicyEngine: prevention of failures an active rule lists, evaluation of
-- rules and default guardrails when a run completes, and the rule an approved
-- proposal becomes. Every violation is one prevention record (unique per run
-- and rule or guardrail, so re-evaluation never duplicates) and flags the run.

-- The measured value a max_value rule or guardrail compares with its max.
-- Scalar arguments, not the run row: the engine carries only these columns.
CREATE OR REPLACE FUNCTION policies.metric_value(
    p_metric text, p_estimated_cost_usd numeric, p_input_tokens bigint, p_output_tokens bigint,
    p_duration_ms bigint, p_attempts integer
) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE p_metric
    WHEN 'estimated_cost_usd' THEN p_estimated_cost_usd
    WHEN 'estimated_cost_cents' THEN p_estimated_cost_usd * 100
    WHEN 'input_tokens' THEN p_input_tokens
    WHEN 'output_tokens' THEN p_output_tokens
    WHEN 'total_tokens' THEN p_input_tokens + p_output_tokens
    WHEN 'duration_ms' THEN p_duration_ms
    WHEN 'attempts' THEN p_attempts
END;
COMMENT ON FUNCTION policies.metric_value(text, numeric, bigint, bigint, bigint, integer) IS
    'The value of metric p_metric of a run (estimated_cost_usd, estimated_cost_cents, input_tokens, output_tokens, '
    'total_tokens, duration_ms, attempts) from its columns; null for an unknown metric.';
GRANT EXECUTE ON FUNCTION policies.metric_value(text, numeric, bigint, bigint, bigint, integer) TO aos_policy_engine;

-- p_patterns (a JSON array of strings) as case-insensitive LIKE patterns
-- matching anywhere: computed once, then `lower(text) LIKE ANY (...)` is
-- a cheap per-row test.
CREATE OR REPLACE FUNCTION policies.like_patterns(p_patterns jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ARRAY(
    SELECT '%' || replace(replace(replace(lower(p.pattern), '\', '\\'), '%', '\%'), '_', '\_') || '%'
    FROM jsonb_array_elements_text(p_patterns) AS p (pattern)
);
COMMENT ON FUNCTION policies.like_patterns(jsonb) IS
    'The strings of the JSON array p_patterns as LIKE patterns that match them anywhere, lower-cased and escaped.';
GRANT EXECUTE ON FUNCTION policies.like_patterns(jsonb) TO aos_policy_engine;

-- True when p_text contains one of p_patterns (a JSON array of strings), case-insensitively.
CREATE OR REPLACE FUNCTION policies.matches_any(p_text text, p_patterns jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN lower(p_text) LIKE ANY (policies.like_patterns(p_patterns));
COMMENT ON FUNCTION policies.matches_any(text, jsonb) IS
    'True when p_text contains any string of the JSON array p_patterns, ignoring case.';
GRANT EXECUTE ON FUNCTION policies.matches_any(text, jsonb) TO aos_policy_engine;

-- Evaluates runs that just completed: the keys (p_tenant_ids[i], p_ids[i]) name
-- the runs that reached a terminal status in the causing statement. Keys, not
-- rows: an array of 40k composite rows costs more than reading them back by
-- primary key. Most runs violate nothing, so the read-only evaluation runs
-- first and the writes only when it found something.
CREATE OR REPLACE FUNCTION policies._enforce(p_tenant_ids text[], p_ids uuid[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- One plan for every call: re-planning this query per statement costs more than running it.
SET plan_cache_mode = force_generic_plan
-- A bulk load evaluates many runs at once: keep its working sets in memory.
SET work_mem = '64MB'
AS $fn$
DECLARE
    v_violations jsonb;
BEGIN
    WITH runs AS (
        SELECT x.tenant_id, x.run_id, x.agent_id, x.status, x.goal, x.created_at, x.error_code, x.error_message,
               x.estimated_cost_usd, x.input_tokens, x.output_tokens, x.duration_ms, x.attempts,
               x.is_synthetic, x.synthetic_scenario_id
        FROM unnest(p_tenant_ids, p_ids) AS k (tenant_id, id)
        -- A primary-key probe per run, whatever the table's size was when this
        -- plan was made (OFFSET 0 keeps the planner from turning it into a hash join).
        CROSS JOIN LATERAL (
            SELECT r.* FROM activity.runs AS r WHERE r.tenant_id = k.tenant_id AND r.id = k.id OFFSET 0
        ) AS x
    ),
    rule_hits AS (
        SELECT ru.tenant_id, ru.run_id, ar.id AS rule_id, ar.rule_type, ar.enforcement,
               ru.is_synthetic, ru.synthetic_scenario_id,
               CASE ar.rule_type
                   WHEN 'error_code' THEN
                       ru.status = 'failed'
                       AND ar.conditions -> 'error_codes'
                           ? incidents.error_code_for(ru.error_code, ru.error_message)
                   WHEN 'max_value' THEN
                       policies.metric_value(ar.conditions ->> 'metric', ru.estimated_cost_usd, ru.input_tokens,
                                             ru.output_tokens, ru.duration_ms, ru.attempts)
                       > (ar.conditions ->> 'max')::numeric
                   WHEN 'pattern_block' THEN policies.matches_any(ru.goal, ar.conditions -> 'patterns')
                   WHEN 'blocked_skill' THEN EXISTS (
                       SELECT FROM activity.aos_traces AS t
                       JOIN activity.aos_trace_steps AS s ON s.tenant_id = t.tenant_id AND s.trace_id = t.trace_id
                       WHERE t.tenant_id = ru.tenant_id AND t.run_id = ru.run_id
                         AND ar.conditions -> 'skills' ? s.skill_name)
               END AS violated
        FROM runs AS ru
        JOIN policies.policy_rules AS ar
            ON ar.tenant_id = ru.tenant_id AND ar.status = 'active'
           AND (ar.agent_id IS NULL OR ar.agent_id = ru.agent_id)
    ),
    -- The enabled guardrails with their parameters typed once per statement, not once per run.
    guardrails AS (
        SELECT g.id, g.action, g.rule_type, g.config,
               g.config ->> 'metric' AS metric,
               (g.config ->> 'max')::numeric AS max_value,
               -- Inline, not policies.like_patterns(): a SQL function with a subquery is re-planned per call.
               ARRAY(
                   SELECT '%' || replace(replace(replace(lower(p.pattern), '\', '\\'), '%', '\%'), '_', '\_') || '%'
                   FROM jsonb_array_elements_text(g.config -> 'patterns') AS p (pattern)
               ) AS like_patterns,
               make_interval(secs => (g.config ->> 'window_seconds')::int) AS window_length,
               (g.config ->> 'max_runs')::int AS max_runs,
               (g.config ->> 'max_failure_rate')::numeric AS max_failure_rate,
               (g.config ->> 'min_runs')::int AS min_runs
        FROM policies.default_guardrails AS g
        WHERE g.is_enabled
    ),
    -- Runs started by the tenant in the window before each run, counted once per
    -- (tenant, created_at): a bulk load shares created_at, so it counts once per
    -- tenant. The index runs_tenant_created_at_idx reads only the window, and the
    -- count stops at the limit.
    rate AS MATERIALIZED (
        SELECT k.tenant_id, k.created_at, g.id AS guardrail_id,
               (SELECT count(*) FROM (
                    SELECT FROM activity.runs AS w
                    WHERE w.tenant_id = k.tenant_id
                      AND w.created_at > k.created_at - g.window_length AND w.created_at <= k.created_at
                    LIMIT g.max_runs + 1) AS recent) > g.max_runs AS violated
        FROM (SELECT DISTINCT tenant_id, created_at FROM runs) AS k
        CROSS JOIN guardrails AS g
        WHERE g.rule_type = 'rate_limit'
    ),
    guardrail_hits AS (
        -- Each max_value guardrail filters the runs on its own metric column: the
        -- metric is chosen once per guardrail, not once per run.
        SELECT ru.tenant_id, ru.run_id, g.id AS guardrail_id, g.action, g.config, ru.is_synthetic,
               ru.synthetic_scenario_id
        FROM guardrails AS g
        CROSS JOIN LATERAL (
            SELECT * FROM runs AS r
            WHERE CASE g.metric
                      WHEN 'estimated_cost_cents' THEN r.estimated_cost_usd > g.max_value / 100
                      WHEN 'total_tokens' THEN r.input_tokens + r.output_tokens > g.max_value
                      ELSE policies.metric_value(g.metric, r.estimated_cost_usd, r.input_tokens, r.output_tokens,
                                                 r.duration_ms, r.attempts) > g.max_value
                  END
        ) AS ru
        WHERE g.rule_type = 'max_value'
        UNION ALL
        SELECT ru.tenant_id, ru.run_id, g.id, g.action, g.config, ru.is_synthetic, ru.synthetic_scenario_id
        FROM runs AS ru
        JOIN guardrails AS g ON g.rule_type = 'pattern_block'
        WHERE lower(ru.goal) LIKE ANY (g.like_patterns)
        UNION ALL
        SELECT ru.tenant_id, ru.run_id, g.id, g.action, g.config, ru.is_synthetic, ru.synthetic_scenario_id
        FROM runs AS ru
        JOIN rate AS rt ON rt.tenant_id = ru.tenant_id AND rt.created_at = ru.created_at AND rt.violated
        JOIN guardrails AS g ON g.id = rt.guardrail_id
        UNION ALL
        -- A spike is judged when a failure arrives: a success cannot push the rate up.
        SELECT ru.tenant_id, ru.run_id, g.id, g.action, g.config, ru.is_synthetic, ru.synthetic_scenario_id
        FROM runs AS ru
        JOIN guardrails AS g ON g.rule_type = 'failure_spike'
        WHERE ru.status = 'failed' AND (
            SELECT count(*) >= g.min_runs
                   AND count(*) FILTER (WHERE w.status = 'failed') > g.max_failure_rate * count(*)
            FROM activity.runs AS w
            WHERE w.tenant_id = ru.tenant_id AND w.state = 'completed'
              AND w.created_at > ru.created_at - g.window_length AND w.created_at <= ru.created_at
        )
    )
    SELECT jsonb_agg(v) INTO v_violations
    FROM (
        SELECT h.tenant_id, h.run_id, h.rule_id AS policy_rule_id, NULL::text AS guardrail_id,
               CASE WHEN h.rule_type = 'error_code' THEN 'prevented'
                    ELSE CASE h.enforcement WHEN 'block' THEN 'blocked' WHEN 'warn' THEN 'warned' ELSE 'audited' END
               END AS outcome,
               jsonb_build_object('rule_type', h.rule_type, 'enforcement', h.enforcement) AS details,
               h.is_synthetic, h.synthetic_scenario_id
        FROM rule_hits AS h WHERE h.violated
        UNION ALL
        SELECT h.tenant_id, h.run_id, NULL, h.guardrail_id,
               CASE h.action WHEN 'block' THEN 'blocked' WHEN 'warn' THEN 'warned' WHEN 'audit' THEN 'audited'
                             WHEN 'throttle' THEN 'throttled' ELSE 'frozen' END,
               jsonb_build_object('guardrail', h.guardrail_id, 'action', h.action, 'config', h.config),
               h.is_synthetic, h.synthetic_scenario_id
        FROM guardrail_hits AS h
    ) AS v;

    IF v_violations IS NULL THEN
        RETURN;
    END IF;

    WITH recorded AS (
        INSERT INTO policies.prevention_records (tenant_id, run_id, policy_rule_id, guardrail_id, outcome, details,
                                                 is_synthetic, synthetic_scenario_id)
        SELECT v.tenant_id, v.run_id, v.policy_rule_id, v.guardrail_id, v.outcome, v.details, v.is_synthetic,
               v.synthetic_scenario_id
        FROM jsonb_to_recordset(v_violations) AS v (
            tenant_id text, run_id text, policy_rule_id uuid, guardrail_id text, outcome text, details jsonb,
            is_synthetic boolean, synthetic_scenario_id text)
        ON CONFLICT ON CONSTRAINT prevention_records_once_per_source DO NOTHING
        RETURNING tenant_id, id, run_id, policy_rule_id, guardrail_id, outcome, is_synthetic
    ),
    flagged AS (
        UPDATE activity.runs AS ar SET policy_violation = TRUE
        FROM (SELECT DISTINCT tenant_id, run_id FROM recorded) AS v
        WHERE ar.tenant_id = v.tenant_id AND ar.run_id = v.run_id AND NOT ar.policy_violation
    )
    INSERT INTO aos.events (event, tenant_id, subject_id, payload)
    SELECT 'prevention_recorded', rc.tenant_id, rc.id::text,
           jsonb_build_object('prevention_record_id', rc.id, 'run_id', rc.run_id, 'policy_rule_id', rc.policy_rule_id,
                              'guardrail_id', rc.guardrail_id, 'outcome', rc.outcome, 'is_synthetic', rc.is_synthetic)
    FROM recorded AS rc
    ORDER BY rc.tenant_id, rc.run_id, rc.guardrail_id, rc.policy_rule_id;
END
$fn$;
COMMENT ON FUNCTION policies._enforce(text[], uuid[]) IS
    'PolicyEngine core: for runs that just completed, records a prevention record for every violated active rule of '
    'their tenant (and agent) and every violated enabled default guardrail, flags policy_violation and publishes '
    'prevention_recorded. Failures an error_code rule lists are recorded as prevented. Idempotent.';

CREATE OR REPLACE FUNCTION policies.tg_runs__enforce() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_tenant_ids text[];
    v_ids uuid[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(n.tenant_id), array_agg(n.id) INTO v_tenant_ids, v_ids
        FROM new_runs AS n WHERE n.state = 'completed';
    ELSE
        SELECT array_agg(n.tenant_id), array_agg(n.id) INTO v_tenant_ids, v_ids
        FROM new_runs AS n JOIN old_runs AS o ON o.tenant_id = n.tenant_id AND o.id = n.id
        WHERE n.state = 'completed' AND o.state = 'live';
    END IF;
    IF v_ids IS NOT NULL THEN
        PERFORM policies._enforce(v_tenant_ids, v_ids);
    END IF;
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION policies.tg_runs__enforce() IS
    'PolicyEngine trigger on activity.runs (after INSERT, after UPDATE; per statement): evaluates runs that reached a '
    'terminal status. Runs as aos_policy_engine.';

-- Approval: the PolicyEngine turns an approved proposal into its rule, in the
-- approving transaction. one rule per proposal is a unique key.
CREATE OR REPLACE FUNCTION policies.tg_policy_proposals__create_rule() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    WITH approved AS (
        SELECT n.* FROM new_proposals AS n
        JOIN old_proposals AS o ON o.tenant_id = n.tenant_id AND o.id = n.id
        WHERE n.status = 'approved' AND o.status <> 'approved'
    ),
    created AS (
        INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement, source,
                                           source_proposal_id, is_synthetic, synthetic_scenario_id)
        SELECT a.tenant_id, a.proposal_name, a.proposed_rule ->> 'rule_type', a.proposed_rule -> 'conditions',
               a.proposed_rule ->> 'enforcement', 'proposal', a.id, a.is_synthetic, a.synthetic_scenario_id
        FROM approved AS a
        ON CONFLICT ON CONSTRAINT policy_rules_one_per_proposal DO NOTHING
        RETURNING tenant_id, id, source_proposal_id, rule_type, enforcement, is_synthetic
    )
    INSERT INTO aos.events (event, tenant_id, subject_id, payload)
    SELECT 'rule_created', c.tenant_id, c.id::text,
           jsonb_build_object('rule_id', c.id, 'proposal_id', c.source_proposal_id, 'rule_type', c.rule_type,
                              'enforcement', c.enforcement, 'is_synthetic', c.is_synthetic)
    FROM created AS c;
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION policies.tg_policy_proposals__create_rule() IS
    'PolicyEngine trigger on policies.policy_proposals (after UPDATE, per statement): creates the rule of each proposal '
    'that became approved (source = proposal). Runs as aos_policy_engine.';

SELECT aos.hand_to_engine('policies._enforce(text[], uuid[])', 'aos_policy_engine');
SELECT aos.hand_to_engine('policies.tg_runs__enforce()', 'aos_policy_engine');
SELECT aos.hand_to_engine('policies.tg_policy_proposals__create_rule()', 'aos_policy_engine');

-- _100: before the IncidentEngine (_200), which skips what was prevented.
CREATE OR REPLACE TRIGGER _100_policy_engine_insert AFTER INSERT ON activity.runs
REFERENCING NEW TABLE AS new_runs
FOR EACH STATEMENT EXECUTE FUNCTION policies.tg_runs__enforce();
CREATE OR REPLACE TRIGGER _100_policy_engine_update AFTER UPDATE ON activity.runs
REFERENCING OLD TABLE AS old_runs NEW TABLE AS new_runs
FOR EACH STATEMENT EXECUTE FUNCTION policies.tg_runs__enforce();
CREATE OR REPLACE TRIGGER _100_policy_engine_rule_from_approval AFTER UPDATE ON policies.policy_proposals
REFERENCING OLD TABLE AS old_proposals NEW TABLE AS new_proposals
FOR EACH STATEMENT EXECUTE FUNCTION policies.tg_policy_proposals__create_rule();
