-- api facades of the Incidents domain, read-only and tenant-scoped like the Activity ones
-- (see api_activity.sql). Error codes: see api_common.sql.

-- The incidents list, from the analytics view (as fresh as its last refresh).
CREATE OR REPLACE FUNCTION api.incidents(
    severity text DEFAULT NULL,
    lifecycle_state text DEFAULT NULL,
    topic text DEFAULT NULL,
    category text DEFAULT NULL,
    error_code text DEFAULT NULL,
    cause_type text DEFAULT NULL,
    is_synthetic boolean DEFAULT NULL,
    first_seen_after timestamptz DEFAULT NULL,
    first_seen_before timestamptz DEFAULT NULL,
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
    v_severity text := severity;
    v_state text := lifecycle_state;
    v_topic text := topic;
    v_category text := category;
    v_code text := error_code;
    v_cause text := cause_type;
    v_synthetic boolean := is_synthetic;
    v_after timestamptz := first_seen_after;
    v_before timestamptz := first_seen_before;
    v_size integer := page_size;
    v_offset integer := page_offset;
    v_items jsonb;
    v_total bigint;
BEGIN
    PERFORM aos.current_tenant();  -- no tenant set is an error even when nothing matches
    PERFORM api_private.check_page(v_size, v_offset);
    PERFORM api_private.one_of('severity', v_severity, ARRAY['low', 'medium', 'high', 'critical']);
    PERFORM api_private.one_of('lifecycle_state', v_state, ARRAY['active', 'acked', 'resolved']);
    PERFORM api_private.one_of('topic', v_topic, ARRAY['active', 'resolved']);
    PERFORM api_private.one_of('cause_type', v_cause, ARRAY['llm_run', 'system', 'human']);

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
        LIMIT v_size OFFSET v_offset
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

    RETURN api_private.envelope(v_items, v_total, v_size, v_offset);
END
$fn$;
COMMENT ON FUNCTION api.incidents(text, text, text, text, text, text, boolean, timestamptz, timestamptz, integer, integer) IS
    'The caller''s incidents, newest first (ties by incident_id), from incidents.v_incidents_o2 (as fresh as its last '
    'refresh), as {items, total, has_more, pagination: {limit, offset, next_offset}}. Filters, each null for none: '
    'severity (low, medium, high, critical), lifecycle_state (active, acked, resolved), topic (active, resolved), '
    'category, error_code, cause_type (llm_run, system, human), is_synthetic, first_seen_after (inclusive), '
    'first_seen_before (exclusive); page_size 1-200 (50), page_offset >= 0 (0). Errors: 22023 a bad severity, '
    'lifecycle_state, topic, cause_type or page (HTTP 400); 28000 no tenant (HTTP 403).';

-- The incident of the caller's tenant, as JSON, or PT404.
CREATE OR REPLACE FUNCTION api_private.incident(p_incident_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_incident jsonb;
BEGIN
    SELECT to_jsonb(i) INTO v_incident FROM incidents.incidents AS i
    WHERE i.tenant_id = aos.current_tenant() AND i.id = p_incident_id;
    IF v_incident IS NULL THEN
        RAISE EXCEPTION 'incident % not found', coalesce(p_incident_id::text, 'null') USING ERRCODE = 'PT404';
    END IF;
    RETURN v_incident;
END
$fn$;
COMMENT ON FUNCTION api_private.incident(uuid) IS
    'Facade helper: the caller''s incident as JSON; PT404 when there is none.';

-- The incident as it is now, with its current timeline and evidence counts.
CREATE OR REPLACE FUNCTION api.incident(incident_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_incident_id uuid := incident_id;
    v_tenant text := aos.current_tenant();
    v_incident jsonb := api_private.incident(v_incident_id);
BEGIN
    RETURN v_incident || jsonb_build_object(
        'event_count', (SELECT count(*) FROM incidents.incident_events AS e
                        WHERE e.tenant_id = v_tenant AND e.incident_id = v_incident_id),
        'evidence_count', (SELECT count(*) FROM incidents.incident_evidence AS e
                           WHERE e.tenant_id = v_tenant AND e.incident_id = v_incident_id),
        'recurrence_count', (SELECT v.recurrence_count FROM incidents.v_incidents_o2_api AS v
                             WHERE v.tenant_id = v_tenant AND v.incident_id = v_incident_id)
    );
END
$fn$;
COMMENT ON FUNCTION api.incident(uuid) IS
    'The caller''s incident incident_id as it is now (the incidents.incidents row) with event_count and '
    'evidence_count, and recurrence_count from incidents.v_incidents_o2 (null until refreshed). Errors: PT404 no such '
    'incident in the caller''s tenant (HTTP 404); 28000 no tenant (HTTP 403).';

-- The incident with its source run, evidence, timeline and proposals.
CREATE OR REPLACE FUNCTION api.incident_evidence(incident_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_incident_id uuid := incident_id;
    v_tenant text := aos.current_tenant();
    v_incident jsonb := api_private.incident(v_incident_id);
BEGIN
    RETURN jsonb_build_object(
        'incident_id', v_incident_id,
        'incident', v_incident,
        'source_run', (
            SELECT to_jsonb(r) FROM activity.runs AS r
            WHERE r.tenant_id = v_tenant AND r.run_id = v_incident ->> 'source_run_id'
        ),
        'evidence', (
            SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.created_at, e.id), '[]')
            FROM incidents.incident_evidence AS e
            WHERE e.tenant_id = v_tenant AND e.incident_id = v_incident_id
        ),
        'timeline', (
            SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.created_at, e.id), '[]')
            FROM incidents.incident_events AS e
            WHERE e.tenant_id = v_tenant AND e.incident_id = v_incident_id
        ),
        'proposals_triggered', (
            SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.created_at, p.id), '[]')
            FROM policies.policy_proposals AS p
            WHERE p.tenant_id = v_tenant AND p.triggering_incident_id = v_incident_id
        ),
        -- The proposal this incident is linked to, the one it triggered or the pending one of its
        -- rule it joined: at most one (the link's primary key is the incident).
        'proposal', (
            SELECT to_jsonb(p)
            FROM policies.proposal_incidents AS l
            INNER JOIN policies.policy_proposals AS p ON p.tenant_id = l.tenant_id AND p.id = l.proposal_id
            WHERE l.tenant_id = v_tenant AND l.incident_id = v_incident_id
        )
    );
END
$fn$;
COMMENT ON FUNCTION api.incident_evidence(uuid) IS
    'The caller''s incident incident_id with what explains it, all current: {incident_id, incident, source_run, '
    'evidence[], timeline[] (oldest first), proposals_triggered[] (the proposals this incident triggered), proposal '
    '(the proposal it is linked to, shared with the other incidents of its rule, else null)}. Errors: PT404 no such '
    'incident in the caller''s tenant (HTTP 404); 28000 no tenant (HTTP 403).';

GRANT EXECUTE ON FUNCTION
    api.incidents(text, text, text, text, text, text, boolean, timestamptz, timestamptz, integer, integer),
    api.incident(uuid), api.incident_evidence(uuid), api_private.incident(uuid)
TO aos_api;
