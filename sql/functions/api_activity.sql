-- api facades of the Activity domain (SPEC 6.2). Read-only by construction:
-- STABLE (PostgreSQL refuses any write inside), SECURITY INVOKER (aos_api
-- reads through row-level security and the tenant-filtered view, its own
-- tenant only). An id outside the caller's tenant is "not found" (P0002).

-- GET /activity/runs: the runs list, from the analytics view (as fresh as its last refresh).
CREATE OR REPLACE FUNCTION api.activity_runs(
    p_filters jsonb DEFAULT '{}', p_limit integer DEFAULT 50, p_offset integer DEFAULT 0
) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- Plan each call for its filters, so every first page is an index scan.
SET plan_cache_mode = force_custom_plan
AS $fn$
DECLARE
    v_status text;
    v_state text;
    v_agent text;
    v_synthetic boolean;
    v_violation boolean;
    v_after timestamptz;
    v_before timestamptz;
    v_items jsonb;
    v_total bigint;
BEGIN
    PERFORM aos.current_tenant();  -- no tenant set is an error even when nothing matches
    PERFORM activity._require_keys('filter', p_filters, ARRAY[
        'status', 'state', 'agent_id', 'is_synthetic', 'policy_violation', 'created_after', 'created_before']);
    PERFORM api._check_page(p_limit, p_offset);
    v_status := api._text_filter(p_filters, 'status',
        ARRAY['queued', 'running', 'succeeded', 'failed', 'retry', 'halted', 'aborted']);
    v_state := api._text_filter(p_filters, 'state', ARRAY['live', 'completed']);
    v_agent := api._text_filter(p_filters, 'agent_id');
    v_synthetic := api._bool_filter(p_filters, 'is_synthetic');
    v_violation := api._bool_filter(p_filters, 'policy_violation');
    v_after := api._time_filter(p_filters, 'created_after');
    v_before := api._time_filter(p_filters, 'created_before');

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
        LIMIT p_limit OFFSET p_offset
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

    RETURN api._envelope(v_items, v_total, p_limit, p_offset);
END
$fn$;
COMMENT ON FUNCTION api.activity_runs(jsonb, integer, integer) IS
    'GET /activity/runs: the caller''s runs, newest first, from activity.v_runs_o2 (as fresh as its last refresh). '
    'Filters: status, state, agent_id, is_synthetic, policy_violation, created_after, created_before. '
    'Errors: 22023 unknown filter, bad value or page; 28000 no tenant set.';

-- The run of the caller's tenant, as JSON, or P0002.
CREATE OR REPLACE FUNCTION api._run(p_run_id text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_run jsonb;
BEGIN
    SELECT to_jsonb(r) INTO v_run FROM activity.runs AS r
    WHERE r.tenant_id = aos.current_tenant() AND r.run_id = p_run_id;
    IF v_run IS NULL THEN
        RAISE EXCEPTION 'run % not found', aos._shown(p_run_id) USING ERRCODE = 'P0002';
    END IF;
    RETURN v_run;
END
$fn$;
COMMENT ON FUNCTION api._run(text) IS 'Facade helper: the caller''s run by run_id as JSON; P0002 when there is none.';

-- The run's traces, oldest first.
CREATE OR REPLACE FUNCTION api._run_traces(p_run_id text) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY t.started_at, t.trace_id), '[]')
    FROM activity.aos_traces AS t
    WHERE t.tenant_id = aos.current_tenant() AND t.run_id = p_run_id
$fn$;
COMMENT ON FUNCTION api._run_traces(text) IS 'Facade helper: the caller''s traces of a run, oldest first.';

-- GET /activity/runs/{id}: the run as it is now, its traces, and its step figures from the analytics view.
CREATE OR REPLACE FUNCTION api.activity_run(p_run_id text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_run jsonb := api._run(p_run_id);
BEGIN
    RETURN v_run || jsonb_build_object(
        'traces', api._run_traces(p_run_id),
        'analytics', (
            SELECT to_jsonb(v) - 'tenant_id' - 'run_id' FROM activity.v_runs_o2_api AS v
            WHERE v.tenant_id = aos.current_tenant() AND v.run_id = p_run_id
        )
    );
END
$fn$;
COMMENT ON FUNCTION api.activity_run(text) IS
    'GET /activity/runs/{id}: the run (base table, current), its traces and its analytics row (null until the views are '
    'refreshed). Errors: P0002 no such run in the caller''s tenant, 28000 no tenant set.';

-- GET /activity/runs/{id}/evidence: what the run caused in the other domains.
CREATE OR REPLACE FUNCTION api.activity_run_evidence(p_run_id text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_tenant text := aos.current_tenant();
    v_run jsonb := api._run(p_run_id);
BEGIN
    RETURN jsonb_build_object(
        'run_id', p_run_id,
        'run', v_run,
        'incidents_caused', (
            SELECT coalesce(jsonb_agg(to_jsonb(i) ORDER BY i.created_at, i.id), '[]')
            FROM incidents.incidents AS i
            WHERE i.tenant_id = v_tenant AND i.source_run_id = p_run_id
        ),
        'proposals_triggered', (
            SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.created_at, p.id), '[]')
            FROM policies.policy_proposals AS p
            WHERE p.tenant_id = v_tenant AND p.triggering_run_id = p_run_id
        ),
        -- The proposals the run's incidents are linked to: triggered by them or shared with the
        -- other incidents of the same rule.
        'proposals_linked', (
            SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.created_at, p.id), '[]')
            FROM (
                SELECT DISTINCT l.proposal_id
                FROM incidents.incidents AS i
                INNER JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id
                WHERE i.tenant_id = v_tenant AND i.source_run_id = p_run_id
            ) AS x
            INNER JOIN policies.policy_proposals AS p ON p.tenant_id = v_tenant AND p.id = x.proposal_id
        ),
        'prevention_records', (
            SELECT coalesce(jsonb_agg(to_jsonb(pr) ORDER BY pr.created_at, pr.id), '[]')
            FROM policies.prevention_records AS pr
            WHERE pr.tenant_id = v_tenant AND pr.run_id = p_run_id
        ),
        'traces_linked', api._run_traces(p_run_id)
    );
END
$fn$;
COMMENT ON FUNCTION api.activity_run_evidence(text) IS
    'GET /activity/runs/{id}/evidence: {run_id, run, incidents_caused[], proposals_triggered[] (triggered by the '
    'run), proposals_linked[] (the proposals its incidents are linked to, oldest first), prevention_records[], '
    'traces_linked[]}, all current. Errors: P0002 no such run in the caller''s tenant, 28000 no tenant set.';

GRANT EXECUTE ON FUNCTION api.activity_runs(jsonb, integer, integer), api.activity_run(text),
    api.activity_run_evidence(text), api._run(text), api._run_traces(text)
TO aos_api;
