-- The WorkerRunner API. SECURITY INVOKER on purpose: the worker writes with
-- its own grants and row-level security, exactly as plain INSERT/UPDATE
-- would, and the same triggers fire. Invalid input raises 22023, an unknown
-- run P0002, a wrong transition 55000; nothing is written then.

-- Input checks shared by the worker API, the operator actions and the
-- facades. In aos, which every role may use: the actions run as engine
-- roles. Each raises 22023 with a one-line message naming the field, before
-- anything is written, so a bad value never reaches a cast, an index or a
-- constraint that would answer 22P02, 54000 or 23502 instead. Bounds:
-- identifiers 200 characters, free text 65536, JSON 1 MiB and 32 levels.

-- A rejected value as a message shows it: one line, at most 60 characters.
CREATE OR REPLACE FUNCTION aos._shown(p_value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
RETURN CASE
    WHEN p_value IS NULL THEN 'null'
    WHEN length(p_value) > 60 THEN regexp_replace(left(p_value, 57), '\s+', ' ', 'g') || '...'
    ELSE regexp_replace(p_value, '\s+', ' ', 'g')
END;
COMMENT ON FUNCTION aos._shown(text) IS
    'Input validation helper: p_value for an error message, on one line and cut to 60 characters.';
GRANT EXECUTE ON FUNCTION aos._shown(text)
TO aos_worker, aos_scenario, aos_api, aos_incident_engine, aos_proposal_engine, aos_policy_engine;

-- p_value, or 22023 when it is longer than p_max characters or, if
-- p_required, null or blank.
CREATE OR REPLACE FUNCTION aos._check_text(p_field text, p_value text, p_max integer, p_required boolean DEFAULT TRUE)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    IF p_required AND coalesce(btrim(p_value), '') = '' THEN
        RAISE EXCEPTION '% is required', p_field USING ERRCODE = '22023';
    END IF;
    IF length(p_value) > p_max THEN
        RAISE EXCEPTION '% must be at most % characters, got %', p_field, p_max, length(p_value)
            USING ERRCODE = '22023';
    END IF;
    RETURN p_value;
END
$fn$;
COMMENT ON FUNCTION aos._check_text(text, text, integer, boolean) IS
    'Input validation helper: p_value; raises 22023 when it is longer than p_max characters or, when p_required, '
    'null or blank.';
GRANT EXECUTE ON FUNCTION aos._check_text(text, text, integer, boolean)
TO aos_worker, aos_scenario, aos_api, aos_incident_engine, aos_proposal_engine, aos_policy_engine;

-- p_value, or 22023 when it is over 1 MiB, nested deeper than 32 levels or,
-- if p_required, null. The bounds keep a stored document cheap to read back
-- and to render; PostgreSQL itself refuses about 10,000 levels (54001).
CREATE OR REPLACE FUNCTION aos._check_json(p_field text, p_value jsonb, p_required boolean DEFAULT TRUE)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    IF p_value IS NULL THEN
        IF p_required THEN
            RAISE EXCEPTION '% is required', p_field USING ERRCODE = '22023';
        END IF;
        RETURN NULL;
    END IF;
    IF pg_column_size(p_value) > 1048576 THEN
        RAISE EXCEPTION '% must be at most 1 MiB, got % bytes', p_field, pg_column_size(p_value)
            USING ERRCODE = '22023';
    END IF;
    -- Level 0 is the document itself: an item at level 33 is 33 containers deep.
    IF jsonb_path_exists(p_value, 'strict $.**{33}') THEN
        RAISE EXCEPTION '% must be nested at most 32 levels deep', p_field USING ERRCODE = '22023';
    END IF;
    RETURN p_value;
END
$fn$;
COMMENT ON FUNCTION aos._check_json(text, jsonb, boolean) IS
    'Input validation helper: p_value; raises 22023 when it is over 1 MiB, nested deeper than 32 levels or, when '
    'p_required, null.';
GRANT EXECUTE ON FUNCTION aos._check_json(text, jsonb, boolean)
TO aos_worker, aos_scenario, aos_api, aos_incident_engine, aos_proposal_engine, aos_policy_engine;

-- The string under p_key (null when absent or null), or 22023 when it is not
-- a string, is longer than p_max characters or, if p_non_blank, blank.
CREATE OR REPLACE FUNCTION aos._json_text(p_object jsonb, p_key text, p_max integer, p_non_blank boolean DEFAULT FALSE)
RETURNS text
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
    IF jsonb_typeof(v_value) <> 'string' THEN
        RAISE EXCEPTION '% must be a string, got %', p_key, aos._shown(v_value::text) USING ERRCODE = '22023';
    END IF;
    IF p_non_blank AND btrim(v_value #>> '{}') = '' THEN
        RAISE EXCEPTION '% must not be blank', p_key USING ERRCODE = '22023';
    END IF;
    RETURN aos._check_text(p_key, v_value #>> '{}', p_max, FALSE);
END
$fn$;
COMMENT ON FUNCTION aos._json_text(jsonb, text, integer, boolean) IS
    'Input validation helper: the string under p_key, null when absent; raises 22023 when it is not a string, is '
    'longer than p_max characters or, when p_non_blank, blank.';
GRANT EXECUTE ON FUNCTION aos._json_text(jsonb, text, integer, boolean)
TO aos_worker, aos_scenario, aos_api, aos_incident_engine, aos_proposal_engine, aos_policy_engine;

-- The boolean under p_key (null when absent or null), or 22023: "yes" is
-- not a boolean here, whatever a cast from text would accept.
CREATE OR REPLACE FUNCTION aos._json_bool(p_object jsonb, p_key text) RETURNS boolean
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
    IF jsonb_typeof(v_value) <> 'boolean' THEN
        RAISE EXCEPTION '% must be true or false, got %', p_key, aos._shown(v_value::text) USING ERRCODE = '22023';
    END IF;
    RETURN v_value::boolean;
END
$fn$;
COMMENT ON FUNCTION aos._json_bool(jsonb, text) IS
    'Input validation helper: the JSON boolean under p_key, null when absent; raises 22023 for anything else.';
GRANT EXECUTE ON FUNCTION aos._json_bool(jsonb, text)
TO aos_worker, aos_scenario, aos_api, aos_incident_engine, aos_proposal_engine, aos_policy_engine;

-- The uuid in p_value (null when null), or 22023 naming the field: the text
-- overloads of the operator actions take ids through it, so 'abc' is not the
-- cast's 22P02.
CREATE OR REPLACE FUNCTION aos._uuid(p_field text, p_value text) RETURNS uuid
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    RETURN p_value::uuid;
EXCEPTION WHEN invalid_text_representation THEN
    RAISE EXCEPTION '% must be a uuid, got %', p_field, aos._shown(p_value) USING ERRCODE = '22023';
END
$fn$;
COMMENT ON FUNCTION aos._uuid(text, text) IS
    'Input validation helper: p_value as a uuid, null when null; raises 22023 naming p_field when it is not one.';
GRANT EXECUTE ON FUNCTION aos._uuid(text, text) TO aos_incident_engine, aos_proposal_engine, aos_policy_engine;

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
    PERFORM aos._check_json(p_what, p_object);
    v_unknown := ARRAY(SELECT k FROM jsonb_object_keys(p_object) AS k WHERE k <> ALL (p_allowed) ORDER BY k);
    IF cardinality(v_unknown) > 0 THEN
        RAISE EXCEPTION 'unknown % key(s): %', p_what, aos._shown(array_to_string(v_unknown, ', '))
            USING ERRCODE = '22023', HINT = format('Allowed: %s.', array_to_string(p_allowed, ', '));
    END IF;
END
$fn$;
COMMENT ON FUNCTION activity._require_keys(text, jsonb, text[]) IS
    'Input validation helper: raises 22023 when p_object is not an object, has a key outside p_allowed or is over '
    'the bounds of aos._check_json.';
-- The api facades check their filter objects with it too.
GRANT EXECUTE ON FUNCTION activity._require_keys(text, jsonb, text[]) TO aos_worker, aos_scenario;

-- The largest value each numeric key may hold: the column's CHECK (migration
-- 0014) or, for costs, its numeric(12, 6) type.
CREATE OR REPLACE FUNCTION activity._max_value(p_key text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET jit = off
RETURN CASE
    WHEN p_key IN ('input_tokens', 'output_tokens') THEN 1000000000000
    WHEN p_key = 'duration_ms' THEN 10000000000000
    WHEN p_key IN ('attempts', 'retry_count') THEN 1000000
    WHEN p_key IN ('cost_usd', 'estimated_cost_usd') THEN 999999.999999
END;
COMMENT ON FUNCTION activity._max_value(text) IS
    'Input validation helper: the largest value the worker API accepts under p_key (null: no bound).';
GRANT EXECUTE ON FUNCTION activity._max_value(text) TO aos_worker, aos_scenario;

-- Reads a non-negative number from p_object, or null when absent. At most 6
-- decimals: numeric(12, 6) would round the rest away silently.
CREATE OR REPLACE FUNCTION activity._non_negative(p_object jsonb, p_key text) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_value jsonb := p_object -> p_key;
    v_number numeric;
    v_max numeric := activity._max_value(p_key);
BEGIN
    IF v_value IS NULL OR v_value = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v_value) <> 'number' OR (v_value #>> '{}')::numeric < 0 THEN
        RAISE EXCEPTION '% must be a non-negative number, got %', p_key, aos._shown(v_value::text)
            USING ERRCODE = '22023';
    END IF;
    v_number := (v_value #>> '{}')::numeric;
    IF v_number > v_max THEN
        RAISE EXCEPTION '% must be at most %, got %', p_key, v_max, aos._shown(v_value::text)
            USING ERRCODE = '22023';
    END IF;
    IF v_number <> round(v_number, 6) THEN
        RAISE EXCEPTION '% has more than 6 decimals (micro-dollars), got %', p_key, aos._shown(v_value::text)
            USING ERRCODE = '22023';
    END IF;
    RETURN v_number;
END
$fn$;
COMMENT ON FUNCTION activity._non_negative(jsonb, text) IS
    'Input validation helper: the number under p_key, null when absent; raises 22023 when negative, not a number, '
    'above activity._max_value(p_key) or with more than 6 decimals.';
GRANT EXECUTE ON FUNCTION activity._non_negative(jsonb, text) TO aos_worker, aos_scenario;

-- Reads a non-negative whole number (tokens, attempts, retries, milliseconds),
-- or null when absent: 1.5 attempts is an error, not a rounding.
CREATE OR REPLACE FUNCTION activity._non_negative_count(p_object jsonb, p_key text) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_value jsonb := p_object -> p_key;
    v_number numeric;
    v_max numeric := activity._max_value(p_key);
BEGIN
    IF v_value IS NULL OR v_value = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v_value) <> 'number' OR (v_value #>> '{}')::numeric < 0 THEN
        RAISE EXCEPTION '% must be a non-negative number, got %', p_key, aos._shown(v_value::text)
            USING ERRCODE = '22023';
    END IF;
    v_number := (v_value #>> '{}')::numeric;
    IF v_number <> trunc(v_number) THEN
        RAISE EXCEPTION '% must be a whole number, got %', p_key, aos._shown(v_value::text) USING ERRCODE = '22023';
    END IF;
    -- Before the cast: 9e18 would fit a bigint, 1e19 would raise 22003.
    IF v_number > v_max THEN
        RAISE EXCEPTION '% must be at most %, got %', p_key, v_max, aos._shown(v_value::text)
            USING ERRCODE = '22023';
    END IF;
    RETURN v_number;
END
$fn$;
COMMENT ON FUNCTION activity._non_negative_count(jsonb, text) IS
    'Input validation helper: the whole number under p_key, null when absent; raises 22023 when negative, fractional, '
    'not a number or above activity._max_value(p_key).';
GRANT EXECUTE ON FUNCTION activity._non_negative_count(jsonb, text) TO aos_worker, aos_scenario;

-- Reads a worker timestamp, or null when absent. Finite, within the range the
-- tables' CHECKs allow, and within aos.timestamp_window (default 1 day) of
-- now, the window a worker's plain SQL meets too (activity_worker_time_window.sql).
CREATE OR REPLACE FUNCTION activity._timestamp(p_object jsonb, p_key text) RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_value jsonb := p_object -> p_key;
    v_at timestamptz;
    v_window interval;
BEGIN
    IF v_value IS NULL OR v_value = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v_value) <> 'string' THEN
        RAISE EXCEPTION '% must be a timestamp string, got %', p_key, aos._shown(v_value::text)
            USING ERRCODE = '22023';
    END IF;
    BEGIN
        v_at := (v_value #>> '{}')::timestamptz;
    EXCEPTION WHEN data_exception THEN
        RAISE EXCEPTION '% must be a timestamp, got %', p_key, aos._shown(v_value::text) USING ERRCODE = '22023';
    END;
    v_window := activity._timestamp_window();
    IF NOT activity._within_window(v_at, v_window) THEN
        RAISE EXCEPTION '% must be within % of now (aos.timestamp_window) and from 2000 to 2199, got %',
            p_key, v_window, aos._shown(v_value::text) USING ERRCODE = '22023';
    END IF;
    RETURN v_at;
END
$fn$;
COMMENT ON FUNCTION activity._timestamp(jsonb, text) IS
    'Input validation helper: the timestamp under p_key, null when absent; raises 22023 when it is not a finite '
    'timestamp from 2000 to 2199 within aos.timestamp_window (default 1 day) of now.';
GRANT EXECUTE ON FUNCTION activity._timestamp(jsonb, text) TO aos_worker, aos_scenario;

-- Trace ids share one namespace with run ids: a run's default trace is its
-- run_id. Raises 23505 when p_trace_id is taken by another run's trace or is
-- another run's run_id. Locks the name first so that two sessions cannot both
-- take it.
CREATE OR REPLACE FUNCTION activity._claim_trace_id(p_tenant_id text, p_run_id text, p_trace_id text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_owner text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_tenant_id || '/' || p_trace_id, 0));
    SELECT t.run_id INTO v_owner FROM activity.aos_traces AS t
    WHERE t.tenant_id = p_tenant_id AND t.trace_id = p_trace_id;
    IF FOUND AND v_owner <> p_run_id THEN
        RAISE EXCEPTION 'trace_id % is already used by run % in tenant %',
            aos._shown(p_trace_id), aos._shown(v_owner), aos._shown(p_tenant_id)
            USING ERRCODE = '23505', CONSTRAINT = 'aos_traces_trace_id_unique';
    END IF;
    IF p_trace_id <> p_run_id
       AND EXISTS (SELECT FROM activity.runs AS r WHERE r.tenant_id = p_tenant_id AND r.run_id = p_trace_id) THEN
        RAISE EXCEPTION 'trace_id % is the run_id of another run in tenant %: it would take that run''s trace',
            aos._shown(p_trace_id), aos._shown(p_tenant_id)
            USING ERRCODE = '23505', CONSTRAINT = 'aos_traces_trace_id_unique';
    END IF;
END
$fn$;
COMMENT ON FUNCTION activity._claim_trace_id(text, text, text) IS
    'Input validation helper: raises 23505 unless run p_run_id may use trace p_trace_id (neither another run''s '
    'trace nor another run''s run_id, whose default trace it would take).';
GRANT EXECUTE ON FUNCTION activity._claim_trace_id(text, text, text) TO aos_worker, aos_scenario;

CREATE OR REPLACE FUNCTION activity.start_run(
    p_tenant_id text, p_run_id text, p_agent_id text, p_goal text, p_options jsonb DEFAULT '{}'
) RETURNS uuid
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_status text;
    v_synthetic boolean;
    v_id uuid;
    v_owner text;
BEGIN
    PERFORM aos._check_text('tenant_id', p_tenant_id, 200), aos._check_text('run_id', p_run_id, 200),
            aos._check_text('agent_id', p_agent_id, 200), aos._check_text('goal', p_goal, 65536, FALSE);
    PERFORM activity._require_keys('start_run option', p_options,
        ARRAY['status', 'started_at', 'attempts', 'trace_id', 'is_synthetic', 'synthetic_scenario_id']);
    v_status := coalesce(aos._json_text(p_options, 'status', 200), 'running');
    IF v_status NOT IN ('queued', 'running') THEN
        RAISE EXCEPTION 'status: a run starts queued or running, not %', aos._shown(v_status) USING ERRCODE = '22023';
    END IF;
    PERFORM aos._json_text(p_options, 'trace_id', 200, TRUE), aos._json_text(p_options, 'synthetic_scenario_id', 200, TRUE),
            activity._non_negative_count(p_options, 'attempts'), activity._timestamp(p_options, 'started_at');
    v_synthetic := coalesce(aos._json_bool(p_options, 'is_synthetic'), p_options ? 'synthetic_scenario_id');
    IF NOT v_synthetic AND (p_options ->> 'synthetic_scenario_id') IS NOT NULL THEN
        RAISE EXCEPTION 'synthetic_scenario_id requires is_synthetic true' USING ERRCODE = '22023';
    END IF;
    -- The run's default trace is its run_id: it must not be another run's trace.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_tenant_id || '/' || p_run_id, 0));
    SELECT t.run_id INTO v_owner FROM activity.aos_traces AS t WHERE t.tenant_id = p_tenant_id AND t.trace_id = p_run_id;
    IF FOUND THEN
        RAISE EXCEPTION 'run_id % is already the trace_id of a trace of run % in tenant %',
            aos._shown(p_run_id), aos._shown(v_owner), aos._shown(p_tenant_id)
            USING ERRCODE = '23505', CONSTRAINT = 'aos_traces_trace_id_unique';
    END IF;
    IF (p_options ->> 'trace_id') IS NOT NULL THEN
        PERFORM activity._claim_trace_id(p_tenant_id, p_run_id, p_options ->> 'trace_id');
    END IF;
    INSERT INTO activity.runs (tenant_id, run_id, agent_id, goal, status, attempts, started_at,
                               is_synthetic, synthetic_scenario_id)
    VALUES (p_tenant_id, p_run_id, p_agent_id, p_goal, v_status,
            coalesce(activity._non_negative_count(p_options, 'attempts')::integer, 1),
            CASE WHEN v_status = 'running' THEN coalesce(activity._timestamp(p_options, 'started_at'), now()) END,
            v_synthetic, p_options ->> 'synthetic_scenario_id')
    RETURNING id INTO v_id;
    IF (p_options ->> 'trace_id') IS NOT NULL THEN
        INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id, is_synthetic, synthetic_scenario_id)
        VALUES (p_tenant_id, p_options ->> 'trace_id', p_run_id,
                v_synthetic, p_options ->> 'synthetic_scenario_id');
    END IF;
    RETURN v_id;
END
$fn$;
COMMENT ON FUNCTION activity.start_run(text, text, text, text, jsonb) IS
    'WorkerRunner: records a new run (status running, or queued via p_options.status) and returns its uuid. '
    'Options: status, started_at, attempts, trace_id, is_synthetic, synthetic_scenario_id. '
    'Errors: 22023 invalid input (started_at outside aos.timestamp_window of now, attempts over 10^6), 23505 run_id '
    'or trace_id already used in the tenant (a trace_id may not be another run''s run_id), 23503 unknown tenant.';
GRANT EXECUTE ON FUNCTION activity.start_run(text, text, text, text, jsonb) TO aos_worker, aos_scenario;

CREATE OR REPLACE FUNCTION activity.record_step(p_tenant_id text, p_run_id text, p_step jsonb) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_run activity.runs;
    v_trace_id text;
    v_index integer;
BEGIN
    PERFORM aos._check_text('tenant_id', p_tenant_id, 200), aos._check_text('run_id', p_run_id, 200);
    PERFORM activity._require_keys('step', p_step, ARRAY[
        'trace_id', 'skill_name', 'status', 'outcome_code', 'params', 'cost_usd', 'duration_ms',
        'retry_count', 'occurred_at']);
    IF coalesce(btrim(aos._json_text(p_step, 'skill_name', 200)), '') = '' THEN
        RAISE EXCEPTION 'step.skill_name is required' USING ERRCODE = '22023';
    END IF;
    IF coalesce(aos._json_text(p_step, 'status', 200), '') NOT IN ('success', 'failure', 'retry', 'skipped') THEN
        RAISE EXCEPTION 'step.status must be success, failure, retry or skipped, got %',
            aos._shown((p_step -> 'status')::text) USING ERRCODE = '22023';
    END IF;
    v_trace_id := coalesce(aos._json_text(p_step, 'trace_id', 200, TRUE), p_run_id);
    PERFORM aos._json_text(p_step, 'outcome_code', 200);
    IF p_step ? 'params' AND jsonb_typeof(p_step -> 'params') <> 'object' THEN
        RAISE EXCEPTION 'step.params must be a JSON object' USING ERRCODE = '22023';
    END IF;
    -- Validate the numbers and the time before anything is written.
    PERFORM activity._non_negative(p_step, 'cost_usd'), activity._timestamp(p_step, 'occurred_at'),
            activity._non_negative_count(p_step, k)
    FROM unnest(ARRAY['duration_ms', 'retry_count']) AS k;
    -- FOR SHARE: a finish_run waits for this step, which its evaluation then sees.
    SELECT * INTO v_run FROM activity.runs WHERE tenant_id = p_tenant_id AND run_id = p_run_id FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % not found in tenant %', aos._shown(p_run_id), aos._shown(p_tenant_id)
            USING ERRCODE = 'P0002';
    END IF;
    -- The PolicyEngine evaluates steps when the run completes, never after.
    IF v_run.state = 'completed' THEN
        RAISE EXCEPTION 'run % is % already: a step recorded now would never be evaluated',
            aos._shown(p_run_id), v_run.status
            USING ERRCODE = '55000';
    END IF;
    IF NOT EXISTS (SELECT FROM activity.aos_traces WHERE tenant_id = p_tenant_id AND trace_id = v_trace_id) THEN
        PERFORM activity._claim_trace_id(p_tenant_id, p_run_id, v_trace_id);
    END IF;
    INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id, is_synthetic, synthetic_scenario_id)
    VALUES (p_tenant_id, v_trace_id, p_run_id, v_run.is_synthetic, v_run.synthetic_scenario_id)
    ON CONFLICT ON CONSTRAINT aos_traces_trace_id_unique DO NOTHING;
    -- Serialise appends to one trace so step indexes never collide.
    PERFORM FROM activity.aos_traces
    WHERE tenant_id = p_tenant_id AND trace_id = v_trace_id AND run_id = p_run_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'trace_id % belongs to another run', aos._shown(v_trace_id) USING ERRCODE = '22023';
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
            coalesce(activity._timestamp(p_step, 'occurred_at'), now()),
            v_run.is_synthetic, v_run.synthetic_scenario_id);
    RETURN v_index;
END
$fn$;
COMMENT ON FUNCTION activity.record_step(text, text, jsonb) IS
    'WorkerRunner: appends a step to the run''s trace (trace_id defaults to the run_id; the trace is created on first use) '
    'and returns its step_index. Step keys: skill_name and status (required), trace_id, outcome_code, params, cost_usd, '
    'duration_ms, retry_count, occurred_at. Errors: 22023 invalid step (cost_usd finer than 10^-6, occurred_at outside '
    'aos.timestamp_window of now), P0002 unknown run, 55000 the run has completed, 23505 a new trace_id that is '
    'another run''s run_id.';
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
    PERFORM aos._check_text('tenant_id', p_tenant_id, 200), aos._check_text('run_id', p_run_id, 200);
    IF p_status IS NULL OR p_status NOT IN ('succeeded', 'failed', 'halted', 'aborted') THEN
        RAISE EXCEPTION 'status: a run finishes succeeded, failed, halted or aborted, not %', aos._shown(p_status)
            USING ERRCODE = '22023';
    END IF;
    PERFORM aos._json_text(p_outcome, 'error_code', 200), aos._json_text(p_outcome, 'error_message', 65536);
    -- Validate the whole outcome first: a re-delivered report is checked too.
    PERFORM activity._non_negative(p_outcome, 'estimated_cost_usd'), activity._timestamp(p_outcome, 'completed_at'),
            activity._non_negative_count(p_outcome, k)
    FROM unnest(ARRAY['input_tokens', 'output_tokens', 'attempts', 'duration_ms']) AS k;
    SELECT * INTO v_run FROM activity.runs WHERE tenant_id = p_tenant_id AND run_id = p_run_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'run % not found in tenant %', aos._shown(p_run_id), aos._shown(p_tenant_id)
            USING ERRCODE = 'P0002';
    END IF;
    IF v_run.state = 'completed' THEN
        IF v_run.status = p_status THEN
            RETURN;  -- the same report delivered again: nothing to do
        END IF;
        RAISE EXCEPTION 'run % is % and cannot become %', aos._shown(p_run_id), v_run.status, aos._shown(p_status)
            USING ERRCODE = '55000';
    END IF;
    v_completed_at := coalesce(activity._timestamp(p_outcome, 'completed_at'), now());
    IF v_completed_at < v_run.started_at THEN
        RAISE EXCEPTION 'completed_at % is before the run''s started_at %', v_completed_at, v_run.started_at
            USING ERRCODE = '22023';
    END IF;
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
    'Reporting the same final status again is a no-op. Errors: 22023 invalid input (tokens over 10^12, completed_at '
    'outside aos.timestamp_window of now or before started_at), P0002 unknown run, 55000 the run '
    'already ended with another status.';
GRANT EXECUTE ON FUNCTION activity.finish_run(text, text, text, jsonb) TO aos_worker, aos_scenario;
