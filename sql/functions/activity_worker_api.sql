-- The WorkerRunner API. SECURITY INVOKER on purpose: the worker writes with
-- its own grants and row-level security, exactly as plain INSERT/UPDATE
-- would, and the same triggers fire. Invalid input raises 22023, an unknown
-- run P0002, a wrong transition 55000; nothing is written then.

-- Raises 22023 unless every key of p_object is one of p_allowed.
CREATE OR REPLACE FUNCTION activity._require_keys(p_what text, p_object jsonb, p_allowed text[]) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_unknown text[];
BEGIN
    IF jsonb_typeof(p_object) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION '% must be a JSON object', p_what USING ERRCODE = '22023';
    END IF;
    v_unknown := ARRAY(SELECT k FROM jsonb_object_keys(p_object) AS k WHERE k <> ALL (p_allowed) ORDER BY k);
    IF cardinality(v_unknown) > 0 THEN
        RAISE EXCEPTION 'unknown % key(s): %', p_what, array_to_string(v_unknown, ', ')
            USING ERRCODE = '22023', HINT = format('Allowed: %s.', array_to_string(p_allowed, ', '));
    END IF;
END
$fn$;
COMMENT ON FUNCTION activity._require_keys(text, jsonb, text[]) IS
    'Input validation helper: raises 22023 when p_object is not an object or has a key outside p_allowed.';
-- The api facades check their filter objects with it too.
GRANT EXECUTE ON FUNCTION activity._require_keys(text, jsonb, text[]) TO aos_worker, aos_scenario, aos_api;

-- Reads a non-negative number from p_object, or null when absent.
CREATE OR REPLACE FUNCTION activity._non_negative(p_object jsonb, p_key text) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_value jsonb := p_object -> p_key;
BEGIN
    IF v_value IS NULL OR v_value = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v_value) <> 'number' OR (v_value #>> '{}')::numeric < 0 THEN
        RAISE EXCEPTION '% must be a non-negative number, got %', p_key, v_value USING ERRCODE = '22023';
    END IF;
    RETURN (v_value #>> '{}')::numeric;
END
$fn$;
COMMENT ON FUNCTION activity._non_negative(jsonb, text) IS
    'Input validation helper: the number under p_key, null when absent; raises 22023 when negative or not a number.';
GRANT EXECUTE ON FUNCTION activity._non_negative(jsonb, text) TO aos_worker, aos_scenario;

-- Reads a non-negative whole number (tokens, attempts, retries, milliseconds),
-- or null when absent: 1.5 attempts is an error, not a rounding.
CREATE OR REPLACE FUNCTION activity._non_negative_count(p_object jsonb, p_key text) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_value numeric := activity._non_negative(p_object, p_key);
BEGIN
    IF v_value <> trunc(v_value) THEN
        RAISE EXCEPTION '% must be a whole number, got %', p_key, v_value USING ERRCODE = '22023';
    END IF;
    RETURN v_value;
END
$fn$;
COMMENT ON FUNCTION activity._non_negative_count(jsonb, text) IS
    'Input validation helper: the whole number under p_key, null when absent; raises 22023 when negative, fractional '
    'or not a number.';
GRANT EXECUTE ON FUNCTION activity._non_negative_count(jsonb, text) TO aos_worker, aos_scenario;

CREATE OR REPLACE FUNCTION activity.start_run(
    p_tenant_id text, p_run_id text, p_agent_id text, p_goal text, p_options jsonb DEFAULT '{}'
) RETURNS uuid
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_status text := coalesce(p_options ->> 'status', 'running');
    v_id uuid;
BEGIN
    PERFORM activity._require_keys('start_run option', p_options,
        ARRAY['status', 'started_at', 'attempts', 'trace_id', 'is_synthetic', 'synthetic_scenario_id']);
    IF v_status NOT IN ('queued', 'running') THEN
        RAISE EXCEPTION 'a run starts queued or running, not %', v_status USING ERRCODE = '22023';
    END IF;
    IF coalesce(btrim(p_run_id), '') = '' OR coalesce(btrim(p_agent_id), '') = '' THEN
        RAISE EXCEPTION 'run_id and agent_id are required' USING ERRCODE = '22023';
    END IF;
    INSERT INTO activity.runs (tenant_id, run_id, agent_id, goal, status, attempts, started_at,
                               is_synthetic, synthetic_scenario_id)
    VALUES (p_tenant_id, p_run_id, p_agent_id, p_goal, v_status,
            coalesce(activity._non_negative_count(p_options, 'attempts')::integer, 1),
            CASE WHEN v_status = 'running' THEN coalesce((p_options ->> 'started_at')::timestamptz, now()) END,
            coalesce((p_options ->> 'is_synthetic')::boolean, p_options ? 'synthetic_scenario_id'),
            p_options ->> 'synthetic_scenario_id')
    RETURNING id INTO v_id;
    IF (p_options ->> 'trace_id') IS NOT NULL THEN
        INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id, is_synthetic, synthetic_scenario_id)
        VALUES (p_tenant_id, p_options ->> 'trace_id', p_run_id,
                coalesce((p_options ->> 'is_synthetic')::boolean, p_options ? 'synthetic_scenario_id'),
                p_options ->> 'synthetic_scenario_id');
    END IF;
    RETURN v_id;
END
$fn$;
COMMENT ON FUNCTION activity.start_run(text, text, text, text, jsonb) IS
    'WorkerRunner: records a new run (status running, or queued via p_options.status) and returns its uuid. '
    'Options: status, started_at, attempts, trace_id, is_synthetic, synthetic_scenario_id. '
    'Errors: 22023 invalid input, 23505 run_id already used in the tenant, 23503 unknown tenant.';
GRANT EXECUTE ON FUNCTION activity.start_run(text, text, text, text, jsonb) TO aos_worker, aos_scenario;

CREATE OR REPLACE FUNCTION activity.record_step(p_tenant_id text, p_run_id text, p_step jsonb) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_run activity.runs;
    v_trace_id text := coalesce(p_step ->> 'trace_id', p_run_id);
    v_index integer;
BEGIN
    PERFORM activity._require_keys('step', p_step, ARRAY[
        'trace_id', 'skill_name', 'status', 'outcome_code', 'params', 'cost_usd', 'duration_ms',
        'retry_count', 'occurred_at']);
    IF coalesce(btrim(p_step ->> 'skill_name'), '') = '' THEN
        RAISE EXCEPTION 'step.skill_name is required' USING ERRCODE = '22023';
    END IF;
    IF (p_step ->> 'status') IS NULL OR (p_step ->> 'status') NOT IN ('success', 'failure', 'retry', 'skipped') THEN
        RAISE EXCEPTION 'step.status must be success, failure, retry or skipped, got %', p_step -> 'status'
            USING ERRCODE = '22023';
    END IF;
    IF p_step ? 'params' AND jsonb_typeof(p_step -> 'params') <> 'object' THEN
        RAISE EXCEPTION 'step.params must be a JSON object' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO v_run FROM activity.runs WHERE tenant_id = p_tenant_id AND run_id = p_run_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % not found in tenant %', p_run_id, p_tenant_id USING ERRCODE = 'P0002';
    END IF;
    INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id, is_synthetic, synthetic_scenario_id)
    VALUES (p_tenant_id, v_trace_id, p_run_id, v_run.is_synthetic, v_run.synthetic_scenario_id)
    ON CONFLICT ON CONSTRAINT aos_traces_trace_id_unique DO NOTHING;
    -- Serialise appends to one trace so step indexes never collide.
    PERFORM FROM activity.aos_traces
    WHERE tenant_id = p_tenant_id AND trace_id = v_trace_id AND run_id = p_run_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'trace % belongs to another run', v_trace_id USING ERRCODE = '22023';
    END IF;
    SELECT coalesce(max(step_index) + 1, 0) INTO v_index
    FROM activity.aos_trace_steps WHERE tenant_id = p_tenant_id AND trace_id = v_trace_id;
    INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, outcome_code, params,
                                          cost_usd, duration_ms, retry_count, occurred_at,
                                          is_synthetic, synthetic_scenario_id)
    VALUES (p_tenant_id, v_trace_id, v_index, p_step ->> 'skill_name', p_step ->> 'status', p_step ->> 'outcome_code',
            coalesce(p_step -> 'params', '{}'),
            coalesce(activity._non_negative(p_step, 'cost_usd'), 0),
            activity._non_negative_count(p_step, 'duration_ms'),
            coalesce(activity._non_negative_count(p_step, 'retry_count')::integer, 0),
            coalesce((p_step ->> 'occurred_at')::timestamptz, now()),
            v_run.is_synthetic, v_run.synthetic_scenario_id);
    RETURN v_index;
END
$fn$;
COMMENT ON FUNCTION activity.record_step(text, text, jsonb) IS
    'WorkerRunner: appends a step to the run''s trace (trace_id defaults to the run_id; the trace is created on first use) '
    'and returns its step_index. Step keys: skill_name and status (required), trace_id, outcome_code, params, cost_usd, '
    'duration_ms, retry_count, occurred_at. Errors: 22023 invalid step, P0002 unknown run.';
GRANT EXECUTE ON FUNCTION activity.record_step(text, text, jsonb) TO aos_worker, aos_scenario;

CREATE OR REPLACE FUNCTION activity.finish_run(
    p_tenant_id text, p_run_id text, p_status text, p_outcome jsonb DEFAULT '{}'
) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_run activity.runs;
    v_completed_at timestamptz;
BEGIN
    PERFORM activity._require_keys('finish_run outcome', p_outcome, ARRAY[
        'error_code', 'error_message', 'input_tokens', 'output_tokens', 'estimated_cost_usd', 'attempts',
        'completed_at', 'duration_ms']);
    IF p_status IS NULL OR p_status NOT IN ('succeeded', 'failed', 'halted', 'aborted') THEN
        RAISE EXCEPTION 'a run finishes succeeded, failed, halted or aborted, not %', p_status USING ERRCODE = '22023';
    END IF;
    -- Validate the whole outcome first: a re-delivered report is checked too.
    PERFORM activity._non_negative(p_outcome, 'estimated_cost_usd'), activity._non_negative_count(p_outcome, k)
    FROM unnest(ARRAY['input_tokens', 'output_tokens', 'attempts', 'duration_ms']) AS k;
    SELECT * INTO v_run FROM activity.runs WHERE tenant_id = p_tenant_id AND run_id = p_run_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % not found in tenant %', p_run_id, p_tenant_id USING ERRCODE = 'P0002';
    END IF;
    IF v_run.state = 'completed' THEN
        IF v_run.status = p_status THEN
            RETURN;  -- the same report delivered again: nothing to do
        END IF;
        RAISE EXCEPTION 'run % is % and cannot become %', p_run_id, v_run.status, p_status USING ERRCODE = '55000';
    END IF;
    v_completed_at := coalesce((p_outcome ->> 'completed_at')::timestamptz, now());
    UPDATE activity.runs SET
        status = p_status,
        error_code = coalesce(p_outcome ->> 'error_code', error_code),
        error_message = coalesce(p_outcome ->> 'error_message', error_message),
        input_tokens = coalesce(activity._non_negative_count(p_outcome, 'input_tokens'), input_tokens),
        output_tokens = coalesce(activity._non_negative_count(p_outcome, 'output_tokens'), output_tokens),
        estimated_cost_usd = coalesce(activity._non_negative(p_outcome, 'estimated_cost_usd'), estimated_cost_usd),
        attempts = coalesce(activity._non_negative_count(p_outcome, 'attempts')::integer, attempts),
        completed_at = v_completed_at,
        duration_ms = coalesce(
            activity._non_negative_count(p_outcome, 'duration_ms'),
            (extract(EPOCH FROM v_completed_at - started_at) * 1000)::bigint)
    WHERE tenant_id = p_tenant_id AND id = v_run.id;
    UPDATE activity.aos_traces SET
        status = CASE p_status WHEN 'succeeded' THEN 'completed' WHEN 'failed' THEN 'failed' ELSE 'aborted' END,
        completed_at = greatest(v_completed_at, started_at)
    WHERE tenant_id = p_tenant_id AND run_id = p_run_id AND status = 'running';
END
$fn$;
COMMENT ON FUNCTION activity.finish_run(text, text, text, jsonb) IS
    'WorkerRunner: moves a live run to succeeded, failed, halted or aborted, with its outcome (error_code, error_message, '
    'input_tokens, output_tokens, estimated_cost_usd, attempts, completed_at, duration_ms), and closes its running traces. '
    'Reporting the same final status again is a no-op. Errors: 22023 invalid input, P0002 unknown run, 55000 the run '
    'already ended with another status.';
GRANT EXECUTE ON FUNCTION activity.finish_run(text, text, text, jsonb) TO aos_worker, aos_scenario;
