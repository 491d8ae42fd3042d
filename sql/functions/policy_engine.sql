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
    WHEN 'total_tokens' THEN p_input_tokens::numeric + p_output_tokens  -- numeric: never overflows
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

-- PolicyEngine on runs: evaluates the runs that just reached a terminal status.
--
-- Most runs violate nothing, and most statements write one run, so the work is staged and every
-- stage is a small set-based query that runs only when the one before found something:
--   1. every run against the per-run guardrails (max_value, pattern_block) and, when its tenant has
--      any, its tenant's active rules; every (tenant, created_at) group of the statement against the
--      windowed guardrails, counting each window once and only as far as can matter;
--   2. for the groups whose window reached a limit, the verdict run by run: a run's window holds
--      the runs recorded before it, never those after it in the same statement;
--   3. the writes: prevention records, policy_violation, prevention_recorded events.
-- A statement of one row takes a shorter road through stages 1 and 2: each guardrail in turn, in
-- a few small queries (the set-based plan costs more to start than they cost to run).
-- So one INSERT of N runs costs O(N) and decides what N single-row INSERTs would have decided:
--   dg-003 (rate_limit)    the runs the tenant recorded in (created_at - window, created_at]: more
--                          than max_runs throttles the run;
--   dg-004 (failure_spike) the terminal runs of that window: at least min_runs of them, more than
--                          max_failure_rate failed, freezes the run at which the window first met
--                          the rule, judged at every terminal run, success or failure; one freeze
--                          per tenant per window, so a storm is frozen once, not once per run.
-- Engines of older releases evaluated through a separate core function.
DROP FUNCTION IF EXISTS policies._enforce(text[], uuid[]);
DROP FUNCTION IF EXISTS policies._enforce(text[], uuid[], boolean);

CREATE OR REPLACE FUNCTION policies.tg_runs__enforce() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
-- One plan for every call: re-planning these queries per statement costs more than running them.
SET plan_cache_mode = force_generic_plan
-- A bulk load evaluates many runs at once: keep its working sets in memory.
SET work_mem = '64MB'
AS $fn$
DECLARE
    -- The runs that just reached a terminal status, in the order the statement wrote them, by key
    -- (an array of 40k composite rows costs more than reading them back by primary key).
    v_tenant_keys text[];
    v_run_keys uuid[];
    -- The statement inserted them (new runs, arriving in that order) rather than finishing runs
    -- recorded earlier.
    v_inserted boolean := TG_OP = 'INSERT';
    v_found jsonb;    -- stage 1 violations, one object per prevention record
    v_windows jsonb;  -- stage 1 windowed candidates: (group, guardrail) pairs that reached a limit
    v_has_rules boolean;
    v_freezes jsonb;  -- stage 2 dg-004 candidates, in (tenant, created_at) order
    v_freeze record;
    v_frozen_tenant text;
    v_frozen_guardrail text;
    v_frozen_at timestamptz;
    -- stage 2 violations, column by column (a storm throttles thousands of runs: arrays of scalars
    -- cost less than rows or JSON)
    v_tenant_ids text[];
    v_run_ids text[];
    v_ctids tid[];
    v_guardrail_ids text[];
    v_outcomes text[];
    v_details jsonb[];
    v_synthetic boolean[];
    v_scenarios text[];
    -- A statement of one row (most are) is judged step by step: see below.
    v_rows bigint;
    v_run record;
    v_guardrail record;
    v_window interval;
    v_limit integer;
    v_count bigint;
    v_total bigint;
    v_failed bigint;
    v_hit boolean;
    v_record_details jsonb;
BEGIN
    IF v_inserted THEN
        -- The transition table holds the rows in the order the statement wrote them.
        SELECT array_agg(n.tenant_id) FILTER (WHERE n.state = 'completed'),
               array_agg(n.id) FILTER (WHERE n.state = 'completed'), count(*)
        INTO v_tenant_keys, v_run_keys, v_rows
        FROM new_runs AS n;
    ELSE
        SELECT array_agg(n.tenant_id ORDER BY n.ord), array_agg(n.id ORDER BY n.ord) INTO v_tenant_keys, v_run_keys
        FROM (SELECT x.*, row_number() OVER () AS ord FROM new_runs AS x) AS n
        INNER JOIN old_runs AS o ON o.tenant_id = n.tenant_id AND o.id = n.id
        WHERE n.state = 'completed' AND o.state = 'live';
    END IF;
    IF v_run_keys IS NULL THEN
        RETURN NULL;
    END IF;
    v_rows := CASE WHEN v_inserted THEN v_rows ELSE cardinality(v_run_keys) END;

    IF v_rows = 1 THEN
        -- One run, and no other row in its statement: the same verdicts as the set-based stages
        -- below, each guardrail's in a few small queries. Starting the plan of the set-based query
        -- costs more than this costs to run.
        IF v_inserted THEN
            SELECT n.*, NULL::tid AS row_ctid INTO v_run FROM new_runs AS n;
        ELSE
            SELECT r.*, r.ctid AS row_ctid INTO v_run FROM activity.runs AS r
            WHERE r.tenant_id = v_tenant_keys[1] AND r.id = v_run_keys[1];
        END IF;
        FOR v_guardrail IN
            SELECT g.id, g.action, g.rule_type, g.config FROM policies.default_guardrails AS g WHERE g.is_enabled
        LOOP
            v_hit := FALSE;
            v_record_details := jsonb_build_object('guardrail', v_guardrail.id, 'action', v_guardrail.action,
                                            'config', v_guardrail.config);
            v_window := make_interval(secs => (v_guardrail.config ->> 'window_seconds')::int);
            CASE v_guardrail.rule_type
                WHEN 'max_value' THEN
                    v_hit := CASE v_guardrail.config ->> 'metric'
                        WHEN 'estimated_cost_cents' THEN
                            v_run.estimated_cost_usd > (v_guardrail.config ->> 'max')::numeric / 100
                        WHEN 'total_tokens' THEN
                            v_run.input_tokens::numeric + v_run.output_tokens > (v_guardrail.config ->> 'max')::numeric
                        ELSE policies.metric_value(v_guardrail.config ->> 'metric', v_run.estimated_cost_usd,
                                                   v_run.input_tokens, v_run.output_tokens, v_run.duration_ms,
                                                   v_run.attempts) > (v_guardrail.config ->> 'max')::numeric
                    END;
                WHEN 'pattern_block' THEN
                    IF v_run.goal IS NOT NULL THEN
                        v_hit := lower(v_run.goal) LIKE ANY (policies.like_patterns(v_guardrail.config -> 'patterns'));
                    END IF;
                WHEN 'rate_limit' THEN
                    v_limit := (v_guardrail.config ->> 'max_runs')::int;
                    SELECT count(*) INTO v_count FROM (
                        SELECT FROM activity.runs AS w
                        WHERE w.tenant_id = v_run.tenant_id
                          AND w.created_at > v_run.created_at - v_window AND w.created_at <= v_run.created_at
                        LIMIT v_limit + 1) AS recent;
                    v_hit := v_count > v_limit;
                WHEN 'failure_spike' THEN
                    v_limit := floor((v_guardrail.config ->> 'max_failure_rate')::numeric
                                     * (v_guardrail.config ->> 'min_runs')::int)::int + 1;
                    SELECT count(*) INTO v_count FROM (
                        SELECT FROM activity.runs AS w
                        WHERE w.tenant_id = v_run.tenant_id AND w.status = 'failed'
                          AND w.created_at > v_run.created_at - v_window AND w.created_at <= v_run.created_at
                        LIMIT v_limit) AS failures;
                    IF v_count >= v_limit AND NOT EXISTS (
                        SELECT FROM policies.prevention_records AS p
                        INNER JOIN activity.runs AS w ON w.tenant_id = p.tenant_id AND w.run_id = p.run_id
                        WHERE p.tenant_id = v_run.tenant_id AND p.guardrail_id = v_guardrail.id
                          AND p.outcome <> 'throttled' AND p.created_at > v_run.created_at - v_window
                          AND w.created_at > v_run.created_at - v_window AND w.created_at <= v_run.created_at)
                    THEN
                        SELECT count(*), count(*) FILTER (WHERE w.status = 'failed') INTO v_total, v_failed
                        FROM activity.runs AS w
                        WHERE w.tenant_id = v_run.tenant_id AND w.state = 'completed'
                          AND w.created_at > v_run.created_at - v_window AND w.created_at <= v_run.created_at;
                        v_hit := v_total >= (v_guardrail.config ->> 'min_runs')::int
                                 AND v_failed > (v_guardrail.config ->> 'max_failure_rate')::numeric * v_total;
                        v_record_details := v_record_details || jsonb_build_object('runs', v_total, 'failed', v_failed);
                    END IF;
                ELSE
                    NULL;
            END CASE;
            IF v_hit THEN
                v_found := coalesce(v_found, '[]') || jsonb_build_object(
                    'tenant_id', v_run.tenant_id, 'run_id', v_run.run_id, 'row_ctid', v_run.row_ctid,
                    'policy_rule_id', NULL, 'guardrail_id', v_guardrail.id,
                    'outcome', CASE v_guardrail.action WHEN 'block' THEN 'blocked' WHEN 'warn' THEN 'warned'
                                   WHEN 'audit' THEN 'audited' WHEN 'throttle' THEN 'throttled' ELSE 'frozen' END,
                    'details', v_record_details, 'is_synthetic', v_run.is_synthetic,
                    'synthetic_scenario_id', v_run.synthetic_scenario_id);
            END IF;
        END LOOP;
        v_has_rules := EXISTS (
            SELECT FROM policies.policy_rules AS ar WHERE ar.tenant_id = v_run.tenant_id AND ar.status = 'active');
    ELSE
        -- Stage 1.
        WITH runs AS MATERIALIZED (
            SELECT n.tenant_id, n.run_id, n.agent_id, n.status, n.goal, n.created_at, n.error_code, n.error_message,
                   n.estimated_cost_usd, n.input_tokens, n.output_tokens, n.duration_ms, n.attempts,
                   n.is_synthetic, n.synthetic_scenario_id, n.row_ctid
            FROM (
                -- An INSERT: its rows as the transition table holds them (no index probe; the row version
                -- of a run is looked up in stage 3, and only for the runs that get a record).
                SELECT x.*, NULL::tid AS row_ctid FROM new_runs AS x WHERE v_inserted AND x.state = 'completed'
                UNION ALL
                -- An UPDATE: the runs it finished, by key.
                SELECT x.*
                FROM unnest(v_tenant_keys, v_run_keys) AS k (tenant_id, id)
                -- A primary-key probe per run, whatever the table's size was when this
                -- plan was made (OFFSET 0 keeps the planner from turning it into a hash join).
                CROSS JOIN LATERAL (
                    SELECT r.*, r.ctid AS row_ctid FROM activity.runs AS r
                    WHERE r.tenant_id = k.tenant_id AND r.id = k.id OFFSET 0
                ) AS x
                WHERE NOT v_inserted
            ) AS n
        ),
        -- The enabled guardrails with their parameters typed once per statement, not once per run.
        guardrails AS MATERIALIZED (
            SELECT g.id, g.action, g.rule_type, g.config,
                   CASE g.action WHEN 'block' THEN 'blocked' WHEN 'warn' THEN 'warned' WHEN 'audit' THEN 'audited'
                                 WHEN 'throttle' THEN 'throttled' ELSE 'frozen' END AS outcome,
                   g.config ->> 'metric' AS metric,
                   (g.config ->> 'max')::numeric AS max_value,
                   -- Inline, not policies.like_patterns(): a SQL function with a subquery is re-planned per call.
                   ARRAY(
                       SELECT '%' || replace(replace(replace(lower(p.pattern), '\', '\\'), '%', '\%'), '_', '\_') || '%'
                       FROM jsonb_array_elements_text(g.config -> 'patterns') AS p (pattern)
                   ) AS like_patterns,
                   make_interval(secs => (g.config ->> 'window_seconds')::int) AS window_length,
                   (g.config ->> 'max_runs')::int AS max_runs,
                   (g.config ->> 'min_runs')::int AS min_runs,
                   (g.config ->> 'max_failure_rate')::numeric AS max_failure_rate,
                   -- Fewer failures than this can never be more than max_failure_rate of min_runs runs.
                   floor((g.config ->> 'max_failure_rate')::numeric * (g.config ->> 'min_runs')::int)::int + 1
                       AS min_failures
            FROM policies.default_guardrails AS g
            WHERE g.is_enabled
        )
        SELECT
            (SELECT jsonb_agg(v) FROM (
                SELECT ru.tenant_id, ru.run_id, ru.row_ctid, NULL::uuid AS policy_rule_id, g.id AS guardrail_id,
                       g.outcome, jsonb_build_object('guardrail', g.id, 'action', g.action, 'config', g.config) AS details,
                       ru.is_synthetic, ru.synthetic_scenario_id
                FROM guardrails AS g
                INNER JOIN runs AS ru ON CASE g.rule_type
                    WHEN 'max_value' THEN
                        CASE g.metric
                            WHEN 'estimated_cost_cents' THEN ru.estimated_cost_usd > g.max_value / 100
                            WHEN 'total_tokens' THEN ru.input_tokens::numeric + ru.output_tokens > g.max_value
                            ELSE policies.metric_value(g.metric, ru.estimated_cost_usd, ru.input_tokens, ru.output_tokens,
                                                       ru.duration_ms, ru.attempts) > g.max_value
                        END
                    WHEN 'pattern_block' THEN lower(ru.goal) LIKE ANY (g.like_patterns)
                    ELSE FALSE
                END
            ) AS v),
            (SELECT jsonb_agg(w) FROM (
                SELECT gr.tenant_id, gr.created_at, gr.size, g.id, g.rule_type, g.action, g.outcome, g.config,
                       g.window_length, g.max_runs, g.min_runs, g.max_failure_rate, c.counted
                FROM (
                    SELECT ru.tenant_id, ru.created_at, count(*) AS size FROM runs AS ru GROUP BY ru.tenant_id, ru.created_at
                ) AS gr
                INNER JOIN guardrails AS g ON g.rule_type IN ('rate_limit', 'failure_spike')
                CROSS JOIN LATERAL (
                    SELECT CASE g.rule_type
                        -- the runs recorded in the window (runs_tenant_created_at_idx), up to max_runs + the
                        -- group's size: beyond that every run of the group is over the limit anyway
                        WHEN 'rate_limit' THEN (
                            SELECT count(*) FROM (
                                SELECT FROM activity.runs AS w
                                WHERE w.tenant_id = gr.tenant_id
                                  AND w.created_at > gr.created_at - g.window_length AND w.created_at <= gr.created_at
                                LIMIT g.max_runs + gr.size) AS recent)
                        -- the failures in the window (runs_tenant_status_created_at_idx), up to min_failures
                        ELSE (
                            SELECT count(*) FROM (
                                SELECT FROM activity.runs AS w
                                WHERE w.tenant_id = gr.tenant_id AND w.status = 'failed'
                                  AND w.created_at > gr.created_at - g.window_length AND w.created_at <= gr.created_at
                                LIMIT g.min_failures) AS failures)
                    END AS counted
                    OFFSET 0  -- counted once, not once per reference
                ) AS c
                WHERE CASE g.rule_type
                          WHEN 'rate_limit' THEN c.counted > g.max_runs
                          -- enough failures, and no freeze recorded within the window yet (one freeze per
                          -- tenant per window): a failing tenant is looked at closely once per window
                          ELSE c.counted >= g.min_failures AND NOT EXISTS (
                              -- prevention_records_guardrail_idx: the guardrail's recent records (a record
                              -- is written no earlier than its run was recorded), then their runs
                              SELECT FROM policies.prevention_records AS p
                              INNER JOIN activity.runs AS w ON w.tenant_id = p.tenant_id AND w.run_id = p.run_id
                              WHERE p.tenant_id = gr.tenant_id AND p.guardrail_id = g.id AND p.outcome <> 'throttled'
                                AND p.created_at > gr.created_at - g.window_length
                                AND w.created_at > gr.created_at - g.window_length AND w.created_at <= gr.created_at)
                      END
            ) AS w),
            -- Rules are evaluated below, only for tenants that have any.
            EXISTS (
                SELECT FROM policies.policy_rules AS ar
                WHERE ar.tenant_id = ANY (v_tenant_keys) AND ar.status = 'active'
            )
        INTO v_found, v_windows, v_has_rules;
    END IF;

    -- Stage 1, rules: every run against its tenant's active rules (and its agent's).
    IF v_has_rules THEN
        SELECT coalesce(v_found, '[]') || coalesce(jsonb_agg(v), '[]') INTO v_found FROM (
            SELECT ru.tenant_id, ru.run_id, ru.row_ctid, ar.id AS policy_rule_id, NULL::text AS guardrail_id,
                   CASE WHEN ar.rule_type = 'error_code' THEN 'prevented'
                        ELSE CASE ar.enforcement WHEN 'block' THEN 'blocked' WHEN 'warn' THEN 'warned' ELSE 'audited' END
                   END AS outcome,
                   jsonb_build_object('rule_type', ar.rule_type, 'enforcement', ar.enforcement) AS details,
                   ru.is_synthetic, ru.synthetic_scenario_id
            FROM (
                SELECT x.*, NULL::tid AS row_ctid FROM new_runs AS x WHERE v_inserted AND x.state = 'completed'
                UNION ALL
                SELECT x.*
                FROM unnest(v_tenant_keys, v_run_keys) AS k (tenant_id, id)
                CROSS JOIN LATERAL (
                    SELECT r.*, r.ctid AS row_ctid FROM activity.runs AS r
                    WHERE r.tenant_id = k.tenant_id AND r.id = k.id OFFSET 0
                ) AS x
                WHERE NOT v_inserted
            ) AS ru
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
                          INNER JOIN activity.aos_trace_steps AS s
                              ON s.tenant_id = t.tenant_id AND s.trace_id = t.trace_id
                          WHERE t.tenant_id = ru.tenant_id AND t.run_id = ru.run_id
                            AND ar.conditions -> 'skills' ? s.skill_name)
                  END
        ) AS v;
        IF v_found = '[]' THEN
            v_found := NULL;
        END IF;
    END IF;

    -- Stage 2: the windows that reached a limit, run by run.
    IF v_windows IS NOT NULL THEN
        WITH candidates AS MATERIALIZED (
            SELECT * FROM jsonb_to_recordset(v_windows) AS c (
                tenant_id text, created_at timestamptz, size bigint, id text, rule_type text, action text,
                outcome text, config jsonb, window_length interval, max_runs int, min_runs int,
                max_failure_rate numeric, counted bigint)
        ),
        -- The statement's rows of those groups, in statement order, each with how many rows of its
        -- group come after it: in all (an INSERT records live runs too), terminal, and failed.
        members AS MATERIALIZED (
            SELECT m.*,
                   count(*) OVER grp - count(*) OVER upto AS later,
                   count(*) FILTER (WHERE m.state = 'completed') OVER grp
                       - count(*) FILTER (WHERE m.state = 'completed') OVER upto AS later_completed,
                   count(*) FILTER (WHERE m.status = 'failed') OVER grp
                       - count(*) FILTER (WHERE m.status = 'failed') OVER upto AS later_failed,
                   count(*) OVER grp AS group_rows
            FROM (
                -- an INSERT: every row it wrote (the transition table keeps the statement's order)
                SELECT n.ord, n.tenant_id, n.id, n.state, n.status, n.created_at
                FROM (SELECT x.tenant_id, x.id, x.state, x.status, x.created_at, row_number() OVER () AS ord
                      FROM new_runs AS x) AS n
                WHERE v_inserted
                  AND EXISTS (SELECT FROM candidates AS c WHERE c.tenant_id = n.tenant_id AND c.created_at = n.created_at)
                UNION ALL
                -- an UPDATE: the runs it finished
                SELECT k.ord, k.tenant_id, k.id, 'completed', x.status, x.created_at
                FROM unnest(v_tenant_keys, v_run_keys) WITH ORDINALITY AS k (tenant_id, id, ord)
                CROSS JOIN LATERAL (
                    SELECT r.status, r.created_at FROM activity.runs AS r
                    WHERE r.tenant_id = k.tenant_id AND r.id = k.id OFFSET 0
                ) AS x
                WHERE NOT v_inserted
                  AND EXISTS (SELECT FROM candidates AS c WHERE c.tenant_id = k.tenant_id AND c.created_at = x.created_at)
            ) AS m
            WINDOW grp AS (PARTITION BY m.tenant_id, m.created_at),
                   upto AS (PARTITION BY m.tenant_id, m.created_at ORDER BY m.ord ROWS UNBOUNDED PRECEDING)
        ),
        -- The terminal ones, the runs to judge, with what writing their verdict needs.
        judged AS MATERIALIZED (
            SELECT m.*, x.run_id, x.row_ctid, x.is_synthetic, x.synthetic_scenario_id
            FROM members AS m
            CROSS JOIN LATERAL (
                SELECT r.run_id, r.ctid AS row_ctid, r.is_synthetic, r.synthetic_scenario_id FROM activity.runs AS r
                WHERE r.tenant_id = m.tenant_id AND r.id = m.id OFFSET 0
            ) AS x
            WHERE m.state = 'completed'
        ),
        -- dg-003: stage 1 counted the window up to max_runs + the group's terminal runs; when the
        -- statement also recorded live runs in the group, count up to max_runs + all its rows there.
        rates AS MATERIALIZED (
            SELECT c.*, CASE WHEN c.counted < c.max_runs + c.size OR g.group_rows = c.size THEN c.counted ELSE (
                       SELECT count(*) FROM (
                           SELECT FROM activity.runs AS w
                           WHERE w.tenant_id = c.tenant_id
                             AND w.created_at > c.created_at - c.window_length AND w.created_at <= c.created_at
                           LIMIT c.max_runs + g.group_rows) AS recent)
                   END AS window_runs
            FROM candidates AS c
            CROSS JOIN LATERAL (
                SELECT max(m.group_rows) AS group_rows FROM members AS m
                WHERE m.tenant_id = c.tenant_id AND m.created_at = c.created_at
            ) AS g
            WHERE c.rule_type = 'rate_limit'
        ),
        -- dg-004: the exact window of each candidate group (stage 1 found no earlier freeze in it).
        spikes AS MATERIALIZED (
            SELECT c.*, n.total, n.failed
            FROM candidates AS c
            CROSS JOIN LATERAL (
                SELECT count(*) AS total, count(*) FILTER (WHERE w.status = 'failed') AS failed
                FROM activity.runs AS w
                WHERE w.tenant_id = c.tenant_id AND w.state = 'completed'
                  AND w.created_at > c.created_at - c.window_length AND w.created_at <= c.created_at
            ) AS n
            WHERE c.rule_type = 'failure_spike'
        ),
        -- dg-003: a run of an INSERT does not see the rows the same statement recorded after it.
        throttled AS (
            SELECT m.tenant_id, m.run_id, m.row_ctid, c.id, c.outcome,
                   jsonb_build_object('guardrail', c.id, 'action', c.action, 'config', c.config) AS details,
                   m.is_synthetic, m.synthetic_scenario_id
            FROM rates AS c
            INNER JOIN judged AS m ON m.tenant_id = c.tenant_id AND m.created_at = c.created_at
            WHERE c.window_runs - CASE WHEN v_inserted THEN m.later ELSE 0 END > c.max_runs
        ),
        -- dg-004: the first run of each group at which its window (minus the group's terminal runs
        -- after it) met the rule.
        freezes AS (
            SELECT DISTINCT ON (s.tenant_id, s.created_at, s.id)
                   s.tenant_id, s.created_at, s.id, s.outcome, s.window_length, m.run_id, m.row_ctid, m.is_synthetic,
                   m.synthetic_scenario_id,
                   jsonb_build_object('guardrail', s.id, 'action', s.action, 'config', s.config,
                                      'runs', s.total - m.later_completed, 'failed', s.failed - m.later_failed) AS details
            FROM spikes AS s
            INNER JOIN judged AS m ON m.tenant_id = s.tenant_id AND m.created_at = s.created_at
            WHERE s.total - m.later_completed >= s.min_runs
              AND s.failed - m.later_failed > s.max_failure_rate * (s.total - m.later_completed)
            ORDER BY s.tenant_id, s.created_at, s.id, m.ord
        )
        SELECT t.tenant_ids, t.run_ids, t.ctids, t.guardrail_ids, t.outcomes, t.details, t.synthetic, t.scenarios,
               (SELECT jsonb_agg(f ORDER BY f.tenant_id, f.created_at) FROM freezes AS f)
        INTO v_tenant_ids, v_run_ids, v_ctids, v_guardrail_ids, v_outcomes, v_details, v_synthetic, v_scenarios,
             v_freezes
        FROM (
            SELECT array_agg(t.tenant_id) AS tenant_ids, array_agg(t.run_id) AS run_ids, array_agg(t.row_ctid) AS ctids,
                   array_agg(t.id) AS guardrail_ids, array_agg(t.outcome) AS outcomes, array_agg(t.details) AS details,
                   array_agg(t.is_synthetic) AS synthetic, array_agg(t.synthetic_scenario_id) AS scenarios
            FROM throttled AS t
        ) AS t;

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
            v_guardrail_ids := v_guardrail_ids || v_freeze.id;
            v_outcomes := v_outcomes || v_freeze.outcome;
            v_details := v_details || v_freeze.details;
            v_synthetic := v_synthetic || v_freeze.is_synthetic;
            v_scenarios := v_scenarios || v_freeze.synthetic_scenario_id;
            v_frozen_tenant := v_freeze.tenant_id;
            v_frozen_guardrail := v_freeze.id;
            v_frozen_at := v_freeze.created_at;
        END LOOP;
    END IF;

    IF v_found IS NULL AND v_run_ids IS NULL THEN
        RETURN NULL;
    END IF;

    -- Stage 3.
    WITH found AS (
        SELECT v.tenant_id, v.run_id, v.row_ctid, v.policy_rule_id, v.guardrail_id, v.outcome, v.details,
               v.is_synthetic, v.synthetic_scenario_id
        FROM jsonb_to_recordset(v_found) AS v (
            tenant_id text, run_id text, row_ctid tid, policy_rule_id uuid, guardrail_id text, outcome text,
            details jsonb, is_synthetic boolean, synthetic_scenario_id text)
        UNION ALL
        SELECT t.tenant_id, t.run_id, t.row_ctid, NULL, t.guardrail_id, t.outcome, t.details, t.is_synthetic,
               t.synthetic_scenario_id
        FROM unnest(v_tenant_ids, v_run_ids, v_ctids, v_guardrail_ids, v_outcomes, v_details, v_synthetic, v_scenarios)
            AS t (tenant_id, run_id, row_ctid, guardrail_id, outcome, details, is_synthetic, synthetic_scenario_id)
    ),
    recorded AS (
        INSERT INTO policies.prevention_records (tenant_id, run_id, policy_rule_id, guardrail_id, outcome, details,
                                                 is_synthetic, synthetic_scenario_id)
        SELECT f.tenant_id, f.run_id, f.policy_rule_id, f.guardrail_id, f.outcome, f.details, f.is_synthetic,
               f.synthetic_scenario_id
        FROM found AS f
        RETURNING tenant_id, id, run_id, policy_rule_id, guardrail_id, outcome, is_synthetic
    ),
    -- The runs by their row version: read above, else looked up now (only this transaction can
    -- have changed them since).
    flagged AS (
        UPDATE activity.runs AS ar SET policy_violation = TRUE
        WHERE ar.ctid = ANY (ARRAY(
                  SELECT coalesce(f.row_ctid, (
                      SELECT r.ctid FROM activity.runs AS r WHERE r.tenant_id = f.tenant_id AND r.run_id = f.run_id))
                  FROM found AS f))
          AND NOT ar.policy_violation
    )
    INSERT INTO aos.events (event, tenant_id, subject_id, payload)
    SELECT 'prevention_recorded', rc.tenant_id, rc.id::text,
           jsonb_build_object('prevention_record_id', rc.id, 'run_id', rc.run_id, 'policy_rule_id', rc.policy_rule_id,
                              'guardrail_id', rc.guardrail_id, 'outcome', rc.outcome, 'is_synthetic', rc.is_synthetic)
    FROM recorded AS rc;
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION policies.tg_runs__enforce() IS
    'PolicyEngine trigger on activity.runs (after INSERT, after UPDATE; per statement): for the runs that reached a '
    'terminal status, in the statement''s order, records a prevention record for every violated active rule of their '
    'tenant (and agent) and every violated enabled default guardrail, flags policy_violation and publishes '
    'prevention_recorded. Failures an error_code rule lists are recorded as prevented. Windowed guardrails count once '
    'per tenant and statement. Runs as aos_policy_engine.';

-- Approval: the PolicyEngine turns an approved proposal into its rule, in the approving
-- transaction; one rule per proposal is a unique key. Per row, and only when status becomes
-- approved: the PolicyProposalEngine updates a pending proposal's count at every linked incident,
-- and that must not wake this trigger.
CREATE OR REPLACE FUNCTION policies.tg_policy_proposals__create_rule() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    WITH created AS (
        INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement, source,
                                           source_proposal_id, is_synthetic, synthetic_scenario_id)
        VALUES (NEW.tenant_id, NEW.proposal_name, NEW.proposed_rule ->> 'rule_type', NEW.proposed_rule -> 'conditions',
                NEW.proposed_rule ->> 'enforcement', 'proposal', NEW.id, NEW.is_synthetic, NEW.synthetic_scenario_id)
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
    'PolicyEngine trigger on policies.policy_proposals (after UPDATE OF status, per row, when it becomes approved): '
    'creates the proposal''s rule (source = proposal) and publishes rule_created. Runs as aos_policy_engine.';

SELECT aos.hand_to_engine('policies.tg_runs__enforce()', 'aos_policy_engine');
SELECT aos.hand_to_engine('policies.tg_policy_proposals__create_rule()', 'aos_policy_engine');

-- _100: before the IncidentEngine (_200), which skips what was prevented.
CREATE OR REPLACE TRIGGER _100_policy_engine_insert AFTER INSERT ON activity.runs
REFERENCING NEW TABLE AS new_runs
FOR EACH STATEMENT EXECUTE FUNCTION policies.tg_runs__enforce();
CREATE OR REPLACE TRIGGER _100_policy_engine_update AFTER UPDATE ON activity.runs
REFERENCING OLD TABLE AS old_runs NEW TABLE AS new_runs
FOR EACH STATEMENT EXECUTE FUNCTION policies.tg_runs__enforce();
CREATE OR REPLACE TRIGGER _100_policy_engine_rule_from_approval AFTER UPDATE OF status ON policies.policy_proposals
FOR EACH ROW WHEN (NEW.status = 'approved' AND OLD.status <> 'approved')
EXECUTE FUNCTION policies.tg_policy_proposals__create_rule();
