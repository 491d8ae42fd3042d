-- api facades of the Policies domain (SPEC 6.2), read-only and tenant-scoped
-- like the Activity ones (see api_activity.sql). Proposals are read from the
-- base table: an operator's review queue must show what just happened.

-- GET /policy-proposals: the proposals list, with the rule each approval created.
CREATE OR REPLACE FUNCTION api.policy_proposals(
    p_filters jsonb DEFAULT '{}', p_limit integer DEFAULT 50, p_offset integer DEFAULT 0
) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- Plan each call for its filters, so every first page is an index scan.
SET plan_cache_mode = force_custom_plan
AS $fn$
DECLARE
    v_status text;
    v_type text;
    v_synthetic boolean;
    v_after timestamptz;
    v_before timestamptz;
    v_items jsonb;
    v_total bigint;
BEGIN
    PERFORM aos.current_tenant();  -- no tenant set is an error even when nothing matches
    PERFORM activity._require_keys('filter', p_filters, ARRAY['status', 'proposal_type', 'is_synthetic', 'created_after',
                                                 'created_before']);
    PERFORM api._check_page(p_limit, p_offset);
    v_status := api._text_filter(p_filters, 'status', ARRAY['pending', 'approved', 'rejected']);
    v_type := api._text_filter(p_filters, 'proposal_type', ARRAY[
        'timeout_policy', 'crash_recovery_policy', 'retry_policy', 'failure_pattern_policy', 'cost_cap_policy',
        'rate_limit_policy']);
    v_synthetic := api._bool_filter(p_filters, 'is_synthetic');
    v_after := api._time_filter(p_filters, 'created_after');
    v_before := api._time_filter(p_filters, 'created_before');

    SELECT jsonb_agg(
               to_jsonb(p) - 'tenant_id' || jsonb_build_object('rule_id', (
                   SELECT r.id FROM policies.policy_rules AS r
                   WHERE r.tenant_id = p.tenant_id AND r.source_proposal_id = p.id))
               ORDER BY p.created_at DESC, p.id DESC) INTO v_items
    FROM (
        SELECT * FROM policies.policy_proposals AS x
        WHERE x.tenant_id = aos.current_tenant()
          AND (v_status IS NULL OR x.status = v_status)
          AND (v_type IS NULL OR x.proposal_type = v_type)
          AND (v_synthetic IS NULL OR x.is_synthetic = v_synthetic)
          AND (v_after IS NULL OR x.created_at >= v_after)
          AND (v_before IS NULL OR x.created_at < v_before)
        ORDER BY x.created_at DESC, x.id DESC
        LIMIT p_limit OFFSET p_offset
    ) AS p;
    SELECT count(*) INTO v_total FROM policies.policy_proposals AS x
    WHERE x.tenant_id = aos.current_tenant()
      AND (v_status IS NULL OR x.status = v_status)
      AND (v_type IS NULL OR x.proposal_type = v_type)
      AND (v_synthetic IS NULL OR x.is_synthetic = v_synthetic)
      AND (v_after IS NULL OR x.created_at >= v_after)
      AND (v_before IS NULL OR x.created_at < v_before);

    RETURN api._envelope(v_items, v_total, p_limit, p_offset);
END
$fn$;
COMMENT ON FUNCTION api.policy_proposals(jsonb, integer, integer) IS
    'GET /policy-proposals: the caller''s proposals, newest first, each with rule_id (the rule its approval created, '
    'else null). Filters: status, proposal_type, is_synthetic, created_after, created_before. '
    'Errors: 22023 unknown filter, bad value or page; 28000 no tenant set.';

-- GET /policy-proposals/{id}: the proposal with its rule, triggering incident and triggering run,
-- and the incidents linked to it. A storm links thousands of incidents to one proposal: the
-- detail lists the newest 50 (a page: within the detail facades' 1 ms) and counts them all.
CREATE OR REPLACE FUNCTION api.policy_proposal(p_proposal_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- One plan for every proposal, made once per session: each statement reads by key, and the links
-- newest first from the index with a LIMIT, so a storm's thousands of links cost what one does.
-- Planning the six statements at every call would cost more than running them.
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_tenant text := aos.current_tenant();
    v_proposal policies.policy_proposals;
BEGIN
    SELECT * INTO v_proposal FROM policies.policy_proposals AS p
    WHERE p.tenant_id = v_tenant AND p.id = p_proposal_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'proposal % not found', p_proposal_id USING ERRCODE = 'P0002';
    END IF;
    RETURN to_jsonb(v_proposal) || jsonb_build_object(
        'rule', (SELECT to_jsonb(r) FROM policies.policy_rules AS r
                 WHERE r.tenant_id = v_tenant AND r.source_proposal_id = p_proposal_id),
        'triggering_incident', (SELECT to_jsonb(i) FROM incidents.incidents AS i
                                WHERE i.tenant_id = v_tenant AND i.id = v_proposal.triggering_incident_id),
        'triggering_run', (SELECT to_jsonb(r) FROM activity.runs AS r
                           WHERE r.tenant_id = v_tenant AND r.run_id = v_proposal.triggering_run_id),
        -- The newest links of this proposal, read backwards from proposal_incidents_proposal_idx
        -- (50 index entries, however big the storm), then each one's incident by primary key.
        'incidents', (
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'incident_id', i.id, 'source_run_id', i.source_run_id, 'severity', i.severity,
                       'lifecycle_state', i.lifecycle_state, 'error_code', i.error_code, 'created_at', i.created_at,
                       'linked_at', l.linked_at) ORDER BY l.linked_at DESC, l.incident_id DESC), '[]')
            FROM (
                SELECT k.incident_id, k.linked_at FROM policies.proposal_incidents AS k
                WHERE k.tenant_id = v_tenant AND k.proposal_id = p_proposal_id
                ORDER BY k.linked_at DESC, k.incident_id DESC
                LIMIT 50
            ) AS l
            -- OFFSET 0: a probe per link, never a join over every incident of the tenant.
            CROSS JOIN LATERAL (
                SELECT * FROM incidents.incidents AS x WHERE x.tenant_id = v_tenant AND x.id = l.incident_id OFFSET 0
            ) AS i
        ),
        'incidents_total', (SELECT count(*) FROM policies.proposal_incidents AS l
                            WHERE l.tenant_id = v_tenant AND l.proposal_id = p_proposal_id)
    );
END
$fn$;
COMMENT ON FUNCTION api.policy_proposal(uuid) IS
    'GET /policy-proposals/{id}: the proposal (with incident_count and last_seen_at) plus rule (when approved), '
    'triggering_incident, triggering_run, incidents[] (the linked incidents, newest link first, at most 50, each '
    '{incident_id, source_run_id, severity, lifecycle_state, error_code, created_at, linked_at}) and incidents_total '
    '(every link). Errors: P0002 no such proposal in the caller''s tenant, 28000 no tenant set.';

GRANT EXECUTE ON FUNCTION api.policy_proposals(jsonb, integer, integer), api.policy_proposal(uuid) TO aos_api;
