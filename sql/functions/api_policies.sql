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
-- detail lists the newest 200 (the most a page of any list holds) and counts them all.
CREATE OR REPLACE FUNCTION api.policy_proposal(p_proposal_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- Plan each call for its proposal: one has a single link, a storm's thousands. A generic plan
-- assumes an average proposal and may scan every incident of the tenant to join a few links.
SET plan_cache_mode = force_custom_plan
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
        -- (200 index entries, however big the storm), each joined to its incident by primary key.
        'incidents', (
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'incident_id', x.id, 'source_run_id', x.source_run_id, 'severity', x.severity,
                       'lifecycle_state', x.lifecycle_state, 'error_code', x.error_code, 'created_at', x.created_at,
                       'linked_at', x.linked_at) ORDER BY x.linked_at DESC, x.id DESC), '[]')
            FROM (
                SELECT i.id, i.source_run_id, i.severity, i.lifecycle_state, i.error_code, i.created_at, l.linked_at
                FROM policies.proposal_incidents AS l
                INNER JOIN incidents.incidents AS i ON i.tenant_id = l.tenant_id AND i.id = l.incident_id
                WHERE l.tenant_id = v_tenant AND l.proposal_id = p_proposal_id
                ORDER BY l.linked_at DESC, l.incident_id DESC
                LIMIT 200
            ) AS x
        ),
        'incidents_total', (SELECT count(*) FROM policies.proposal_incidents AS l
                            WHERE l.tenant_id = v_tenant AND l.proposal_id = p_proposal_id)
    );
END
$fn$;
COMMENT ON FUNCTION api.policy_proposal(uuid) IS
    'GET /policy-proposals/{id}: the proposal (with incident_count and last_seen_at) plus rule (when approved), '
    'triggering_incident, triggering_run, incidents[] (the linked incidents, newest link first, at most 200, each '
    '{incident_id, source_run_id, severity, lifecycle_state, error_code, created_at, linked_at}) and incidents_total '
    '(every link). Errors: P0002 no such proposal in the caller''s tenant, 28000 no tenant set.';

GRANT EXECUTE ON FUNCTION api.policy_proposals(jsonb, integer, integer), api.policy_proposal(uuid) TO aos_api;
