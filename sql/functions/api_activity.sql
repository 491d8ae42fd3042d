-- api facades of the Activity domain. Read-only by construction: STABLE (PostgreSQL refuses
-- any write inside), SECURITY INVOKER (aos_api reads through row-level security and the
-- tenant-filtered view, its own tenant only). Arguments are named and typed, filters default
-- to null (no filter), so a query string or a JSON object maps onto them one to one. An id
-- outside the caller's tenant is "not found" (PT404). Error codes: see api_common.sql.

-- The runs list, from the analytics view (as fresh as its last refresh).
CREATE OR REPLACE FUNCTION api.activity_runs(
    status text DEFAULT NULL,
    state text DEFAULT NULL,
    agent_id text DEFAULT NULL,
    is_synthetic boolean DEFAULT NULL,
    policy_violation boolean DEFAULT NULL,
    created_after timestamptz DEFAULT NULL,
    created_before timestamptz DEFAULT NULL,
    page_size integer DEFAULT 50,
    page_offset integer DEFAULT 0
) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- Plan each call for its filters, so every first page is an index scan.
SET plan_cache_mode = force_custom_plan
AS $fn$
DECLARE
    -- The arguments share names with the view's columns: the queries use these copies only.
    v_status text := status;
    v_state text := state;
    v_agent text := agent_id;
    v_synthetic boolean := is_synthetic;
    v_violation boolean := policy_violation;
    v_after timestamptz := created_after;
    v_before timestamptz := created_before;
    v_size integer := page_size;
    v_offset integer := page_offset;
    v_items jsonb;
    v_total bigint;
BEGIN
    PERFORM aos.current_tenant();  -- no tenant set is an error even when nothing matches
    PERFORM api_private.check_page(v_size, v_offset);
    PERFORM api_private.one_of('status', v_status,
        ARRAY['queued', 'running', 'succeeded', 'failed', 'retry', 'halted', 'aborted']);
    PERFORM api_private.one_of('state', v_state, ARRAY['live', 'completed']);

    -- No ORDER BY at this level: the api view (a security barrier) returns its rows
    -- in page order, and an ORDER BY here would plan the view for full retrieval,
    -- a sort of all the tenant's rows, instead of stopping its index scan at the page.
    SELECT jsonb_agg(to_jsonb(v) - 'tenant_id' ORDER BY v.created_at DESC, v.run_id DESC) INTO v_items
    FROM (
        SELECT * FROM activity.v_runs_o2_api AS r
        WHERE r.tenant_id = aos.current_tenant()
          AND (v_status IS NULL OR r.status = v_status)
          AND (v_state IS NULL OR r.state = v_state)
          AND (v_agent IS NULL OR r.agent_id = v_agent)
          AND (v_synthetic IS NULL OR r.is_synthetic = v_synthetic)
          AND (v_violation IS NULL OR r.policy_violation = v_violation)
          AND (v_after IS NULL OR r.created_at >= v_after)
          AND (v_before IS NULL OR r.created_at < v_before)
        LIMIT v_size OFFSET v_offset
    ) AS v;
    SELECT count(*) INTO v_total
    FROM activity.v_runs_o2_api AS r
    WHERE r.tenant_id = aos.current_tenant()
      AND (v_status IS NULL OR r.status = v_status)
      AND (v_state IS NULL OR r.state = v_state)
      AND (v_agent IS NULL OR r.agent_id = v_agent)
      AND (v_synthetic IS NULL OR r.is_synthetic = v_synthetic)
      AND (v_violation IS NULL OR r.policy_violation = v_violation)
      AND (v_after IS NULL OR r.created_at >= v_after)
      AND (v_before IS NULL OR r.created_at < v_before);

    RETURN api_private.envelope(v_items, v_total, v_size, v_offset);
END
$fn$;
COMMENT ON FUNCTION api.activity_runs(text, text, text, boolean, boolean, timestamptz, timestamptz, integer, integer) IS
    'The caller''s runs, newest first (ties by run_id), from activity.v_runs_o2 (as fresh as its last refresh), as '
    '{items, total, has_more, pagination: {limit, offset, next_offset}}. Filters, each null for none: status (queued, '
    'running, succeeded, failed, retry, halted, aborted), state (live, completed), agent_id, is_synthetic, '
    'policy_violation, created_after (inclusive), created_before (exclusive); page_size 1-200 (50), page_offset >= 0 '
    '(0). Errors: 22023 a bad status, state or page (HTTP 400); 28000 no tenant (HTTP 403).';

-- The run of the caller's tenant, as JSON, or PT404.
CREATE OR REPLACE FUNCTION api_private.run(p_run_id text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_run jsonb;
BEGIN
    SELECT to_jsonb(r) INTO v_run FROM activity.runs AS r
    WHERE r.tenant_id = aos.current_tenant() AND r.run_id = p_run_id;
    IF v_run IS NULL THEN
        RAISE EXCEPTION 'run % not found', aos._shown(p_run_id) USING ERRCODE = 'PT404';
    END IF;
    RETURN v_run;
END
$fn$;
COMMENT ON FUNCTION api_private.run(text) IS
    'Facade helper: the caller''s run by run_id as JSON; PT404 when there is none.';

-- The run's traces, oldest first.
CREATE OR REPLACE FUNCTION api_private.run_traces(p_run_id text) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY t.started_at, t.trace_id), '[]')
    FROM activity.aos_traces AS t
    WHERE t.tenant_id = aos.current_tenant() AND t.run_id = p_run_id
$fn$;
COMMENT ON FUNCTION api_private.run_traces(text) IS 'Facade helper: the caller''s traces of a run, oldest first.';

-- The run as it is now, its traces, and its step figures from the analytics view.
CREATE OR REPLACE FUNCTION api.activity_run(run_id text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_run_id text := run_id;
    v_run jsonb := api_private.run(v_run_id);
BEGIN
    RETURN v_run || jsonb_build_object(
        'traces', api_private.run_traces(v_run_id),
        'analytics', (
            SELECT to_jsonb(v) - 'tenant_id' - 'run_id' FROM activity.v_runs_o2_api AS v
            WHERE v.tenant_id = aos.current_tenant() AND v.run_id = v_run_id
        )
    );
END
$fn$;
COMMENT ON FUNCTION api.activity_run(text) IS
    'The caller''s run run_id as it is now (the activity.runs row), with traces[] (oldest first) and analytics (its '
    'activity.v_runs_o2 row, null until the views are refreshed). Errors: PT404 no such run in the caller''s tenant '
    '(HTTP 404); 28000 no tenant (HTTP 403).';

-- What the run caused in the other domains.
CREATE OR REPLACE FUNCTION api.activity_run_evidence(run_id text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_run_id text := run_id;
    v_tenant text := aos.current_tenant();
    v_run jsonb := api_private.run(v_run_id);
BEGIN
    RETURN jsonb_build_object(
        'run_id', v_run_id,
        'run', v_run,
        'incidents_caused', (
            SELECT coalesce(jsonb_agg(to_jsonb(i) ORDER BY i.created_at, i.id), '[]')
            FROM incidents.incidents AS i
            WHERE i.tenant_id = v_tenant AND i.source_run_id = v_run_id
        ),
        'proposals_triggered', (
            SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.created_at, p.id), '[]')
            FROM policies.policy_proposals AS p
            WHERE p.tenant_id = v_tenant AND p.triggering_run_id = v_run_id
        ),
        -- The proposals the run's incidents are linked to: triggered by them or shared with the
        -- other incidents of the same rule.
        'proposals_linked', (
            SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.created_at, p.id), '[]')
            FROM (
                SELECT DISTINCT l.proposal_id
                FROM incidents.incidents AS i
                INNER JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id
                WHERE i.tenant_id = v_tenant AND i.source_run_id = v_run_id
            ) AS x
            INNER JOIN policies.policy_proposals AS p ON p.tenant_id = v_tenant AND p.id = x.proposal_id
        ),
        'prevention_records', (
            SELECT coalesce(jsonb_agg(to_jsonb(pr) ORDER BY pr.created_at, pr.id), '[]')
            FROM policies.prevention_records AS pr
            WHERE pr.tenant_id = v_tenant AND pr.run_id = v_run_id
        ),
        'traces_linked', api_private.run_traces(v_run_id)
    );
END
$fn$;
COMMENT ON FUNCTION api.activity_run_evidence(text) IS
    'What the caller''s run run_id caused, all current: {run_id, run, incidents_caused[], proposals_triggered[] '
    '(triggered by the run), proposals_linked[] (the proposals its incidents are linked to, oldest first), '
    'prevention_records[], traces_linked[]}. Errors: PT404 no such run in the caller''s tenant (HTTP 404); 28000 no '
    'tenant (HTTP 403).';

GRANT EXECUTE ON FUNCTION
    api.activity_runs(text, text, text, boolean, boolean, timestamptz, timestamptz, integer, integer),
    api.activity_run(text), api.activity_run_evidence(text), api_private.run(text), api_private.run_traces(text)
TO aos_api;
