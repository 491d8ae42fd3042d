-- api facades of the Policies domain, read-only and tenant-scoped like the Activity ones (see
-- api_activity.sql). Proposals are read from the base table: an operator's review queue must
-- show what just happened. Error codes: see api_common.sql.

-- The proposals list, with the rule each approval created.
CREATE OR REPLACE FUNCTION api.policy_proposals(
    status text DEFAULT NULL,
    proposal_type text DEFAULT NULL,
    is_synthetic boolean DEFAULT NULL,
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
    -- The arguments share names with the table's columns: the queries use these copies only.
    v_status text := status;
    v_type text := proposal_type;
    v_synthetic boolean := is_synthetic;
    v_after timestamptz := created_after;
    v_before timestamptz := created_before;
    v_size integer := page_size;
    v_offset integer := page_offset;
    v_items jsonb;
    v_total bigint;
BEGIN
    PERFORM aos.current_tenant();  -- no tenant set is an error even when nothing matches
    PERFORM api_private.check_page(v_size, v_offset);
    PERFORM api_private.one_of('status', v_status, ARRAY['pending', 'approved', 'rejected']);
    PERFORM api_private.one_of('proposal_type', v_type, ARRAY[
        'timeout_policy', 'crash_recovery_policy', 'retry_policy', 'failure_pattern_policy', 'cost_cap_policy',
        'rate_limit_policy']);

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
        LIMIT v_size OFFSET v_offset
    ) AS p;
    SELECT count(*) INTO v_total FROM policies.policy_proposals AS x
    WHERE x.tenant_id = aos.current_tenant()
      AND (v_status IS NULL OR x.status = v_status)
      AND (v_type IS NULL OR x.proposal_type = v_type)
      AND (v_synthetic IS NULL OR x.is_synthetic = v_synthetic)
      AND (v_after IS NULL OR x.created_at >= v_after)
      AND (v_before IS NULL OR x.created_at < v_before);

    RETURN api_private.envelope(v_items, v_total, v_size, v_offset);
END
$fn$;
COMMENT ON FUNCTION api.policy_proposals(text, text, boolean, timestamptz, timestamptz, integer, integer) IS
    'The caller''s proposals, newest first (ties by id), each with rule_id (the rule its approval created, else '
    'null), as {items, total, has_more, pagination: {limit, offset, next_offset}}. Filters, each null for none: status '
    '(pending, approved, rejected), proposal_type (timeout_policy, crash_recovery_policy, retry_policy, '
    'failure_pattern_policy, cost_cap_policy, rate_limit_policy), is_synthetic, created_after (inclusive), '
    'created_before (exclusive); page_size 1-200 (50), page_offset >= 0 (0). Errors: 22023 a bad status, '
    'proposal_type or page (HTTP 400); 28000 no tenant (HTTP 403).';

-- The proposal with its rule, triggering incident and triggering run,
-- and the incidents linked to it. A storm links thousands of incidents to one proposal: the
-- detail lists the newest 50 (a page: within the detail facades' 1 ms) and counts them all.
CREATE OR REPLACE FUNCTION api.policy_proposal(proposal_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- One plan for every proposal, made once per session: each statement reads by key, and the links
-- newest first from the index with a LIMIT, so a storm's thousands of links cost what one does.
-- Planning the six statements at every call would cost more than running them.
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_proposal_id uuid := proposal_id;
    v_tenant text := aos.current_tenant();
    v_proposal policies.policy_proposals;
BEGIN
    SELECT * INTO v_proposal FROM policies.policy_proposals AS p
    WHERE p.tenant_id = v_tenant AND p.id = v_proposal_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'proposal % not found', coalesce(v_proposal_id::text, 'null') USING ERRCODE = 'PT404';
    END IF;
    RETURN to_jsonb(v_proposal) || jsonb_build_object(
        'rule', (SELECT to_jsonb(r) FROM policies.policy_rules AS r
                 WHERE r.tenant_id = v_tenant AND r.source_proposal_id = v_proposal_id),
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
                WHERE k.tenant_id = v_tenant AND k.proposal_id = v_proposal_id
                ORDER BY k.linked_at DESC, k.incident_id DESC
                LIMIT 50
            ) AS l
            -- OFFSET 0: a probe per link, never a join over every incident of the tenant.
            CROSS JOIN LATERAL (
                SELECT * FROM incidents.incidents AS x WHERE x.tenant_id = v_tenant AND x.id = l.incident_id OFFSET 0
            ) AS i
        ),
        'incidents_total', (SELECT count(*) FROM policies.proposal_incidents AS l
                            WHERE l.tenant_id = v_tenant AND l.proposal_id = v_proposal_id)
    );
END
$fn$;
COMMENT ON FUNCTION api.policy_proposal(uuid) IS
    'The caller''s proposal proposal_id (with incident_count and last_seen_at) plus rule (when approved), '
    'triggering_incident, triggering_run, incidents[] (the linked incidents, newest link first, at most 50, each '
    '{incident_id, source_run_id, severity, lifecycle_state, error_code, created_at, linked_at}) and incidents_total '
    '(every link). Errors: PT404 no such proposal in the caller''s tenant (HTTP 404); 28000 no tenant (HTTP 403).';

GRANT EXECUTE ON FUNCTION api.policy_proposals(text, text, boolean, timestamptz, timestamptz, integer, integer),
    api.policy_proposal(uuid)
TO aos_api;
