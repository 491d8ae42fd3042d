-- api facades of the Incidents domain (SPEC 6.2), read-only and tenant-scoped
-- like the Activity ones (see api_activity.sql).

-- GET /incidents: the incidents list, from the analytics view (as fresh as its last refresh).
CREATE OR REPLACE FUNCTION api.incidents(
    p_filters jsonb DEFAULT '{}', p_limit integer DEFAULT 50, p_offset integer DEFAULT 0
) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- Plan each call for its filters, so every first page is an index scan.
SET plan_cache_mode = force_custom_plan
AS $fn$
DECLARE
    v_severity text;
    v_state text;
    v_topic text;
    v_category text;
    v_code text;
    v_cause text;
    v_synthetic boolean;
    v_after timestamptz;
    v_before timestamptz;
    v_items jsonb;
    v_total bigint;
BEGIN
    PERFORM aos.current_tenant();  -- no tenant set is an error even when nothing matches
    PERFORM activity._require_keys('filter', p_filters, ARRAY[
        'severity', 'lifecycle_state', 'topic', 'category', 'error_code', 'cause_type', 'is_synthetic',
        'first_seen_after', 'first_seen_before']);
    PERFORM api._check_page(p_limit, p_offset);
    v_severity := api._text_filter(p_filters, 'severity', ARRAY['low', 'medium', 'high', 'critical']);
    v_state := api._text_filter(p_filters, 'lifecycle_state', ARRAY['active', 'acked', 'resolved']);
    v_topic := api._text_filter(p_filters, 'topic', ARRAY['active', 'resolved']);
    v_category := api._text_filter(p_filters, 'category');
    v_code := api._text_filter(p_filters, 'error_code');
    v_cause := api._text_filter(p_filters, 'cause_type', ARRAY['llm_run', 'system', 'human']);
    v_synthetic := api._bool_filter(p_filters, 'is_synthetic');
    v_after := api._time_filter(p_filters, 'first_seen_after');
    v_before := api._time_filter(p_filters, 'first_seen_before');

    -- No ORDER BY at this level: the api view (a security barrier) returns its rows
    -- in page order, and an ORDER BY here would plan the view for full retrieval,
    -- a sort of all the tenant's rows, instead of stopping its index scan at the page.
    SELECT jsonb_agg(to_jsonb(v) - 'tenant_id' ORDER BY v.first_seen_at DESC, v.incident_id DESC) INTO v_items
    FROM (
        SELECT * FROM incidents.v_incidents_o2_api AS i
        WHERE i.tenant_id = aos.current_tenant()
          AND (v_severity IS NULL OR i.severity = v_severity)
          AND (v_state IS NULL OR i.lifecycle_state = v_state)
          AND (v_topic IS NULL OR i.topic = v_topic)
          AND (v_category IS NULL OR i.category = v_category)
          AND (v_code IS NULL OR i.error_code = v_code)
          AND (v_cause IS NULL OR i.cause_type = v_cause)
          AND (v_synthetic IS NULL OR i.is_synthetic = v_synthetic)
          AND (v_after IS NULL OR i.first_seen_at >= v_after)
          AND (v_before IS NULL OR i.first_seen_at < v_before)
        LIMIT p_limit OFFSET p_offset
    ) AS v;
    SELECT count(*) INTO v_total
    FROM incidents.v_incidents_o2_api AS i
    WHERE i.tenant_id = aos.current_tenant()
      AND (v_severity IS NULL OR i.severity = v_severity)
      AND (v_state IS NULL OR i.lifecycle_state = v_state)
      AND (v_topic IS NULL OR i.topic = v_topic)
      AND (v_category IS NULL OR i.category = v_category)
      AND (v_code IS NULL OR i.error_code = v_code)
      AND (v_cause IS NULL OR i.cause_type = v_cause)
      AND (v_synthetic IS NULL OR i.is_synthetic = v_synthetic)
      AND (v_after IS NULL OR i.first_seen_at >= v_after)
      AND (v_before IS NULL OR i.first_seen_at < v_before);

    RETURN api._envelope(v_items, v_total, p_limit, p_offset);
END
$fn$;
COMMENT ON FUNCTION api.incidents(jsonb, integer, integer) IS
    'GET /incidents: the caller''s incidents, newest first, from incidents.v_incidents_o2 (as fresh as its last refresh). '
    'Filters: severity, lifecycle_state, topic, category, error_code, cause_type, is_synthetic, first_seen_after, '
    'first_seen_before. Errors: 22023 unknown filter, bad value or page; 28000 no tenant set.';

-- The incident of the caller's tenant, as JSON, or P0002.
CREATE OR REPLACE FUNCTION api._incident(p_incident_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_incident jsonb;
BEGIN
    SELECT to_jsonb(i) INTO v_incident FROM incidents.incidents AS i
    WHERE i.tenant_id = aos.current_tenant() AND i.id = p_incident_id;
    IF v_incident IS NULL THEN
        RAISE EXCEPTION 'incident % not found', p_incident_id USING ERRCODE = 'P0002';
    END IF;
    RETURN v_incident;
END
$fn$;
COMMENT ON FUNCTION api._incident(uuid) IS 'Facade helper: the caller''s incident as JSON; P0002 when there is none.';

-- GET /incidents/{id}: the incident as it is now, with its current timeline and evidence counts.
CREATE OR REPLACE FUNCTION api.incident(p_incident_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_tenant text := aos.current_tenant();
    v_incident jsonb := api._incident(p_incident_id);
BEGIN
    RETURN v_incident || jsonb_build_object(
        'event_count', (SELECT count(*) FROM incidents.incident_events AS e
                        WHERE e.tenant_id = v_tenant AND e.incident_id = p_incident_id),
        'evidence_count', (SELECT count(*) FROM incidents.incident_evidence AS e
                           WHERE e.tenant_id = v_tenant AND e.incident_id = p_incident_id),
        'recurrence_count', (SELECT v.recurrence_count FROM incidents.v_incidents_o2_api AS v
                             WHERE v.tenant_id = v_tenant AND v.incident_id = p_incident_id)
    );
END
$fn$;
COMMENT ON FUNCTION api.incident(uuid) IS
    'GET /incidents/{id}: the incident (base table, current) with event_count and evidence_count, and recurrence_count '
    'from the analytics view (null until refreshed). Errors: P0002 no such incident in the caller''s tenant, '
    '28000 no tenant set.';

-- GET /incidents/{id}/evidence: the incident with its source run, evidence, timeline and proposals.
CREATE OR REPLACE FUNCTION api.incident_evidence(p_incident_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_tenant text := aos.current_tenant();
    v_incident jsonb := api._incident(p_incident_id);
BEGIN
    RETURN jsonb_build_object(
        'incident_id', p_incident_id,
        'incident', v_incident,
        'source_run', (
            SELECT to_jsonb(r) FROM activity.runs AS r
            WHERE r.tenant_id = v_tenant AND r.run_id = v_incident ->> 'source_run_id'
        ),
        'evidence', (
            SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.created_at, e.id), '[]')
            FROM incidents.incident_evidence AS e
            WHERE e.tenant_id = v_tenant AND e.incident_id = p_incident_id
        ),
        'timeline', (
            SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.created_at, e.id), '[]')
            FROM incidents.incident_events AS e
            WHERE e.tenant_id = v_tenant AND e.incident_id = p_incident_id
        ),
        'proposals_triggered', (
            SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.created_at, p.id), '[]')
            FROM policies.policy_proposals AS p
            WHERE p.tenant_id = v_tenant AND p.triggering_incident_id = p_incident_id
        ),
        -- The proposal this incident is linked to, the one it triggered or the pending one of its
        -- rule it joined: at most one (the link's primary key is the incident).
        'proposal', (
            SELECT to_jsonb(p)
            FROM policies.proposal_incidents AS l
            INNER JOIN policies.policy_proposals AS p ON p.tenant_id = l.tenant_id AND p.id = l.proposal_id
            WHERE l.tenant_id = v_tenant AND l.incident_id = p_incident_id
        )
    );
END
$fn$;
COMMENT ON FUNCTION api.incident_evidence(uuid) IS
    'GET /incidents/{id}/evidence: {incident_id, incident, source_run, evidence[], timeline[] (oldest first), '
    'proposals_triggered[] (the proposals this incident triggered), proposal (the proposal it is linked to, shared '
    'with the other incidents of its rule, else null)}, all current. Errors: P0002 no such incident in the caller''s '
    'tenant, 28000 no tenant set.';

GRANT EXECUTE ON FUNCTION api.incidents(jsonb, integer, integer), api.incident(uuid), api.incident_evidence(uuid),
    api._incident(uuid)
TO aos_api;
