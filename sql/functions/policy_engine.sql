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

-- Evaluates the runs that just reached a terminal status. p_tenant_ids[i], p_ids[i] name them in
-- the order the causing statement wrote them; p_inserted says that statement inserted them (new
-- runs, arriving in that order) rather than finishing runs recorded earlier. Keys, not rows: an
-- array of 40k composite rows costs more than reading them back by primary key. Most runs
-- violate nothing, so the read-only evaluation runs first and the writes only when it found
-- something.
--
-- The windowed guardrails count each (tenant, created_at) group of the statement once and then
-- order within it: a run's window holds the runs recorded before it, never those after it in
-- the same statement. So one INSERT of N runs costs O(N) and decides what N single-row INSERTs
-- would have decided, one after another.
--   dg-003 (rate_limit)    the runs the tenant recorded in (created_at - window, created_at]: more
--                          than max_runs throttles the run;
--   dg-004 (failure_spike) the terminal runs of that window: at least min_runs of them, more than
--                          max_failure_rate failed, freezes the run at which the window first met
--                          the rule, judged at every terminal run, success or failure; one freeze
--                          per tenant per window, so a storm is frozen once, not once per run.
CREATE OR REPLACE FUNCTION policies._enforce(p_tenant_ids text[], p_ids uuid[], p_inserted boolean) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- One plan for every call: re-planning these queries per statement costs more than running them.
SET plan_cache_mode = force_generic_plan
-- A bulk load evaluates many runs at once: keep its working sets in memory.
SET work_mem = '64MB'
SET jit = off
AS $fn$
DECLARE
    -- The violations found, column by column (arrays of scalars are cheaper than rows or JSON).
    v_tenant_ids text[];
    v_run_ids text[];
    v_rule_ids uuid[];
    v_guardrail_ids text[];
    v_outcomes text[];
    v_details jsonb[];
    v_synthetic boolean[];
    v_scenarios text[];
    v_ctids tid[];
    v_freezes jsonb;
    v_freeze record;
    v_frozen_tenant text;
    v_frozen_guardrail text;
    v_frozen_at timestamptz;
BEGIN
    WITH runs AS MATERIALIZED (
        SELECT x.tenant_id, x.run_id, x.agent_id, x.status, x.goal, x.created_at, x.error_code, x.error_message,
               x.estimated_cost_usd, x.input_tokens, x.output_tokens, x.duration_ms, x.attempts,
               x.is_synthetic, x.synthetic_scenario_id, x.row_ctid, k.ord
        FROM unnest(p_tenant_ids, p_ids) WITH ORDINALITY AS k (tenant_id, id, ord)
        -- A primary-key probe per run, whatever the table's size was when this
        -- plan was made (OFFSET 0 keeps the planner from turning it into a hash join).
        CROSS JOIN LATERAL (
            SELECT r.*, r.ctid AS row_ctid FROM activity.runs AS r
            WHERE r.tenant_id = k.tenant_id AND r.id = k.id OFFSET 0
        ) AS x
    ),
    -- The enabled guardrails with their parameters typed once per statement, not once per run.
    guardrails AS MATERIALIZED (
        SELECT g.id, g.action, g.rule_type, g.config,
               CASE g.action WHEN 'block' THEN 'blocked' WHEN 'warn' THEN 'warned' WHEN 'audit' THEN 'audited'
                             WHEN 'throttle' THEN 'throttled' ELSE 'frozen' END AS outcome,
               jsonb_build_object('guardrail', g.id, 'action', g.action, 'config', g.config) AS details,
               g.config ->> 'metric' AS metric,
               (g.config ->> 'max')::numeric AS max_value,
               -- Inline, not policies.like_patterns(): a SQL function with a subquery is re-planned per call.
               ARRAY(
                   SELECT '%' || replace(replace(replace(lower(p.pattern), '\', '\\'), '%', '\%'), '_', '\_') || '%'
                   FROM jsonb_array_elements_text(g.config -> 'patterns') AS p (pattern)
               ) AS like_patterns,
               make_interval(secs => (g.config ->> 'window_seconds')::int) AS window_length,
               (g.config ->> 'max_runs')::int AS max_runs,
               -- Fewer failures than this can never be more than max_failure_rate of min_runs runs.
               (g.config ->> 'min_runs')::int AS min_runs,
               (g.config ->> 'max_failure_rate')::numeric AS max_failure_rate,
               floor((g.config ->> 'max_failure_rate')::numeric * (g.config ->> 'min_runs')::int)::int + 1
                   AS min_failures
        FROM policies.default_guardrails AS g
        WHERE g.is_enabled
    ),
    -- The statement's runs by tenant and created_at: a bulk load is one group per tenant.
    groups AS MATERIALIZED (
        SELECT ru.tenant_id, ru.created_at, count(*) AS size
        FROM runs AS ru
        GROUP BY ru.tenant_id, ru.created_at
    ),
    hits AS (
        SELECT ru.tenant_id, ru.run_id, ru.row_ctid, ar.id AS policy_rule_id, NULL::text AS guardrail_id,
               CASE WHEN ar.rule_type = 'error_code' THEN 'prevented'
                    ELSE CASE ar.enforcement WHEN 'block' THEN 'blocked' WHEN 'warn' THEN 'warned' ELSE 'audited' END
               END AS outcome,
               jsonb_build_object('rule_type', ar.rule_type, 'enforcement', ar.enforcement) AS details,
               ru.is_synthetic, ru.synthetic_scenario_id
        FROM runs AS ru
        INNER JOIN policies.policy_rules AS ar
            ON ar.tenant_id = ru.tenant_id AND ar.status = 'active'
           AND (ar.agent_id IS NULL OR ar.agent_id = ru.agent_id)
        WHERE CASE ar.rule_type
                  WHEN 'error_code' THEN
                      ru.status = 'failed'
                      AND ar.conditions -> 'error_codes' ? incidents.error_code_for(ru.error_code, ru.error_message)
                  WHEN 'max_value' THEN
                      policies.metric_value(ar.conditions ->> 'metric', ru.estimated_cost_usd, ru.input_tokens,
                                            ru.output_tokens, ru.duration_ms, ru.attempts)
                      > (ar.conditions ->> 'max')::numeric
                  WHEN 'pattern_block' THEN policies.matches_any(ru.goal, ar.conditions -> 'patterns')
                  WHEN 'blocked_skill' THEN EXISTS (
                      SELECT FROM activity.aos_traces AS t
                      INNER JOIN activity.aos_trace_steps AS s ON s.tenant_id = t.tenant_id AND s.trace_id = t.trace_id
                      WHERE t.tenant_id = ru.tenant_id AND t.run_id = ru.run_id
                        AND ar.conditions -> 'skills' ? s.skill_name)
              END
        UNION ALL
        -- Each max_value guardrail filters the runs on its own metric column: the
        -- metric is chosen once per guardrail, not once per run.
        SELECT ru.tenant_id, ru.run_id, ru.row_ctid, NULL, g.id, g.outcome, g.details, ru.is_synthetic,
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
        SELECT ru.tenant_id, ru.run_id, ru.row_ctid, NULL, g.id, g.outcome, g.details, ru.is_synthetic,
               ru.synthetic_scenario_id
        FROM runs AS ru
        INNER JOIN guardrails AS g ON g.rule_type = 'pattern_block'
        WHERE lower(ru.goal) LIKE ANY (g.like_patterns)
        UNION ALL
        -- dg-003: the window is counted once per group, through runs_tenant_created_at_idx, and
        -- only as far as can matter (the count stops at max_runs + the group's size). A run of an
        -- INSERT does not see the runs the same statement recorded after it.
        SELECT ru.tenant_id, ru.run_id, ru.row_ctid, NULL, g.id, g.outcome, g.details, ru.is_synthetic,
               ru.synthetic_scenario_id
        FROM groups AS gr
        INNER JOIN guardrails AS g ON g.rule_type = 'rate_limit'
        CROSS JOIN LATERAL (
            SELECT count(*) AS seen FROM (
                SELECT FROM activity.runs AS w
                WHERE w.tenant_id = gr.tenant_id
                  AND w.created_at > gr.created_at - g.window_length AND w.created_at <= gr.created_at
                LIMIT g.max_runs + gr.size
            ) AS recent
        ) AS c
        CROSS JOIN LATERAL (
            SELECT r.*, CASE WHEN p_inserted THEN gr.size - row_number() OVER (ORDER BY r.ord) ELSE 0 END AS later
            FROM runs AS r
            WHERE c.seen > g.max_runs AND r.tenant_id = gr.tenant_id AND r.created_at = gr.created_at
        ) AS ru
        WHERE c.seen - ru.later > g.max_runs
    ),
    -- dg-004 is judged below, only for the groups whose window holds enough failures to matter
    -- and that no earlier freeze covers; their windows are counted exactly, once per group.
    spikes AS MATERIALIZED (
        SELECT gr.tenant_id, gr.created_at, g.id, g.outcome, g.action, g.config, g.window_length, g.min_runs,
               g.max_failure_rate, c.total, c.failed
        FROM groups AS gr
        INNER JOIN guardrails AS g ON g.rule_type = 'failure_spike'
        CROSS JOIN LATERAL (
            SELECT count(*) AS total, count(*) FILTER (WHERE w.status = 'failed') AS failed
            FROM activity.runs AS w
            WHERE w.tenant_id = gr.tenant_id AND w.state = 'completed'
              AND w.created_at > gr.created_at - g.window_length AND w.created_at <= gr.created_at
        ) AS c
        WHERE (
            SELECT count(*) FROM (
                SELECT FROM activity.runs AS w
                WHERE w.tenant_id = gr.tenant_id AND w.status = 'failed'
                  AND w.created_at > gr.created_at - g.window_length AND w.created_at <= gr.created_at
                LIMIT g.min_failures
            ) AS failures
        ) >= g.min_failures
        -- One freeze per tenant per window: a freeze recorded before stands.
        AND NOT EXISTS (
            SELECT FROM policies.prevention_records AS p
            INNER JOIN activity.runs AS w ON w.tenant_id = p.tenant_id AND w.run_id = p.run_id
            WHERE p.tenant_id = gr.tenant_id AND p.guardrail_id = g.id AND p.outcome = g.outcome
              AND w.created_at > gr.created_at - g.window_length AND w.created_at <= gr.created_at
        )
    ),
    -- For each of those groups, the first of its runs (in statement order) at which the window met
    -- the rule; each run's window is the group's window minus the group's runs after it.
    freezes AS (
        SELECT DISTINCT ON (m.tenant_id, m.created_at, m.id)
               m.tenant_id, m.created_at, m.id, m.outcome, m.window_length, m.run_id, m.row_ctid, m.is_synthetic,
               m.synthetic_scenario_id,
               jsonb_build_object('guardrail', m.id, 'action', m.action, 'config', m.config, 'runs', m.runs,
                                  'failed', m.failed_so_far) AS details
        FROM (
            SELECT s.*, r.ord, r.run_id, r.row_ctid, r.is_synthetic, r.synthetic_scenario_id,
                   s.total - count(*) OVER grp + count(*) OVER upto AS runs,
                   s.failed - count(*) FILTER (WHERE r.status = 'failed') OVER grp
                       + count(*) FILTER (WHERE r.status = 'failed') OVER upto AS failed_so_far
            FROM spikes AS s
            INNER JOIN runs AS r ON r.tenant_id = s.tenant_id AND r.created_at = s.created_at
            WINDOW grp AS (PARTITION BY s.tenant_id, s.created_at, s.id),
                   upto AS (PARTITION BY s.tenant_id, s.created_at, s.id ORDER BY r.ord ROWS UNBOUNDED PRECEDING)
        ) AS m
        WHERE m.runs >= m.min_runs AND m.failed_so_far > m.max_failure_rate * m.runs
        ORDER BY m.tenant_id, m.created_at, m.id, m.ord
    )
    SELECT h.tenant_ids, h.run_ids, h.ctids, h.rule_ids, h.guardrail_ids, h.outcomes, h.details, h.synthetic,
           h.scenarios, (SELECT jsonb_agg(f ORDER BY f.tenant_id, f.created_at) FROM freezes AS f)
    INTO v_tenant_ids, v_run_ids, v_ctids, v_rule_ids, v_guardrail_ids, v_outcomes, v_details, v_synthetic,
         v_scenarios, v_freezes
    FROM (
        SELECT array_agg(h.tenant_id) AS tenant_ids, array_agg(h.run_id) AS run_ids, array_agg(h.row_ctid) AS ctids,
               array_agg(h.policy_rule_id) AS rule_ids, array_agg(h.guardrail_id) AS guardrail_ids,
               array_agg(h.outcome) AS outcomes, array_agg(h.details) AS details,
               array_agg(h.is_synthetic) AS synthetic, array_agg(h.synthetic_scenario_id) AS scenarios
        FROM hits AS h
    ) AS h;

    FOR v_freeze IN
        SELECT * FROM jsonb_to_recordset(v_freezes) AS f (
            tenant_id text, created_at timestamptz, id text, outcome text, window_length interval, run_id text,
            row_ctid tid, is_synthetic boolean, synthetic_scenario_id text, details jsonb)
    LOOP
        -- ... nor one chosen just above for an earlier group of the same tenant.
        CONTINUE WHEN v_frozen_tenant = v_freeze.tenant_id AND v_frozen_guardrail = v_freeze.id
                  AND v_frozen_at > v_freeze.created_at - v_freeze.window_length;
        v_tenant_ids := v_tenant_ids || v_freeze.tenant_id;
        v_run_ids := v_run_ids || v_freeze.run_id;
        v_ctids := v_ctids || v_freeze.row_ctid;
        v_rule_ids := v_rule_ids || NULL::uuid;
        v_guardrail_ids := v_guardrail_ids || v_freeze.id;
        v_outcomes := v_outcomes || v_freeze.outcome;
        v_details := v_details || v_freeze.details;
        v_synthetic := v_synthetic || v_freeze.is_synthetic;
        v_scenarios := v_scenarios || v_freeze.synthetic_scenario_id;
        v_frozen_tenant := v_freeze.tenant_id;
        v_frozen_guardrail := v_freeze.id;
        v_frozen_at := v_freeze.created_at;
    END LOOP;

    IF v_run_ids IS NULL THEN
        RETURN;
    END IF;

    WITH recorded AS (
        INSERT INTO policies.prevention_records (tenant_id, run_id, policy_rule_id, guardrail_id, outcome, details,
                                                 is_synthetic, synthetic_scenario_id)
        SELECT v.tenant_id, v.run_id, v.policy_rule_id, v.guardrail_id, v.outcome, v.details, v.is_synthetic,
               v.synthetic_scenario_id
        FROM unnest(v_tenant_ids, v_run_ids, v_rule_ids, v_guardrail_ids, v_outcomes, v_details, v_synthetic,
                    v_scenarios) AS v (tenant_id, run_id, policy_rule_id, guardrail_id, outcome, details, is_synthetic,
                                       synthetic_scenario_id)
        RETURNING tenant_id, id, run_id, policy_rule_id, guardrail_id, outcome, is_synthetic
    ),
    -- The runs read above, by the row version read (only this transaction can have changed them since).
    flagged AS (
        UPDATE activity.runs AS ar SET policy_violation = TRUE
        WHERE ar.ctid = ANY (v_ctids) AND NOT ar.policy_violation
    )
    INSERT INTO aos.events (event, tenant_id, subject_id, payload)
    SELECT 'prevention_recorded', rc.tenant_id, rc.id::text,
           jsonb_build_object('prevention_record_id', rc.id, 'run_id', rc.run_id, 'policy_rule_id', rc.policy_rule_id,
                              'guardrail_id', rc.guardrail_id, 'outcome', rc.outcome, 'is_synthetic', rc.is_synthetic)
    FROM recorded AS rc;
END
$fn$;
COMMENT ON FUNCTION policies._enforce(text[], uuid[], boolean) IS
    'PolicyEngine core: for runs that just completed (in the causing statement''s order; p_inserted when it inserted '
    'them), records a prevention record for every violated active rule of their tenant (and agent) and every violated '
    'enabled default guardrail, flags policy_violation and publishes prevention_recorded. Failures an error_code rule '
    'lists are recorded as prevented. Windowed guardrails count once per tenant and statement. Idempotent.';

-- The engine of an older release took no statement order.
DROP FUNCTION IF EXISTS policies._enforce(text[], uuid[]);

CREATE OR REPLACE FUNCTION policies.tg_runs__enforce() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_tenant_ids text[];
    v_ids uuid[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- The transition table holds the rows in the order the statement wrote them.
        SELECT array_agg(n.tenant_id), array_agg(n.id) INTO v_tenant_ids, v_ids
        FROM new_runs AS n WHERE n.state = 'completed';
    ELSE
        SELECT array_agg(n.tenant_id ORDER BY n.ord), array_agg(n.id ORDER BY n.ord) INTO v_tenant_ids, v_ids
        FROM (SELECT x.*, row_number() OVER () AS ord FROM new_runs AS x) AS n
        INNER JOIN old_runs AS o ON o.tenant_id = n.tenant_id AND o.id = n.id
        WHERE n.state = 'completed' AND o.state = 'live';
    END IF;
    IF v_ids IS NOT NULL THEN
        PERFORM policies._enforce(v_tenant_ids, v_ids, TG_OP = 'INSERT');
    END IF;
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION policies.tg_runs__enforce() IS
    'PolicyEngine trigger on activity.runs (after INSERT, after UPDATE; per statement): evaluates runs that reached a '
    'terminal status, in the statement''s order. Runs as aos_policy_engine.';

-- Approval: the PolicyEngine turns an approved proposal into its rule, in the
-- approving transaction. one rule per proposal is a unique key.
CREATE OR REPLACE FUNCTION policies.tg_policy_proposals__create_rule() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
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

SELECT aos.hand_to_engine('policies._enforce(text[], uuid[], boolean)', 'aos_policy_engine');
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
