-- PolicyProposalEngine: an incident of severity high or critical is linked to exactly one
-- proposal, whose rule would catch the same failure next time. While its tenant has a pending
-- proposal with the same proposed rule, the incident joins it (policies.proposal_incidents, and
-- the proposal's incident_count and last_seen_at); otherwise it opens a new pending proposal.
-- A storm of N failures is one proposal with N links, not N proposals; once that proposal is
-- approved or rejected, the next such incident opens a new one.
CREATE OR REPLACE FUNCTION policies.tg_incidents__propose() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_group record;
    v_rule jsonb;
    v_proposal_id uuid;
    v_round integer;
BEGIN
    -- One group per tenant and proposed rule, in one order for every session: concurrent storms
    -- take the per-rule key in the same order and cannot deadlock.
    FOR v_group IN
        SELECT i.tenant_id, c.code, c.enforcement, count(*) AS incidents, max(i.created_at) AS last_seen_at,
               (array_agg(i.id ORDER BY i.created_at, i.source_run_id COLLATE "C", i.id))[1] AS first_incident_id,
               array_agg(i.id) AS incident_ids
        FROM new_incidents AS i
        -- A rule can only list well-formed codes; anything else is proposed as UNKNOWN.
        CROSS JOIN LATERAL (
            SELECT CASE WHEN i.error_code ~ '^[A-Z][A-Z0-9_]*$' THEN i.error_code ELSE 'UNKNOWN' END AS code,
                   CASE i.severity WHEN 'critical' THEN 'block' ELSE 'warn' END AS enforcement
        ) AS c
        WHERE i.severity IN ('high', 'critical')
        GROUP BY i.tenant_id, c.code, c.enforcement
        ORDER BY i.tenant_id, c.code, c.enforcement
    LOOP
        v_rule := jsonb_build_object(
            'rule_type', 'error_code',
            'conditions', jsonb_build_object('error_codes', jsonb_build_array(v_group.code)),
            'enforcement', v_group.enforcement);
        v_round := 0;
        LOOP
            v_round := v_round + 1;
            -- Join the pending proposal of this rule (policy_proposals_one_pending_per_rule) and link
            -- the group's incidents to it, in one statement.
            WITH joined AS (
                UPDATE policies.policy_proposals AS p
                SET incident_count = p.incident_count + v_group.incidents,
                    last_seen_at = greatest(p.last_seen_at, v_group.last_seen_at)
                WHERE p.tenant_id = v_group.tenant_id AND p.proposed_rule = v_rule AND p.status = 'pending'
                RETURNING p.tenant_id, p.id
            )
            INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id, is_synthetic,
                                                     synthetic_scenario_id)
            SELECT i.tenant_id, i.id, j.id, i.is_synthetic, i.synthetic_scenario_id
            FROM joined AS j
            CROSS JOIN unnest(v_group.incident_ids) AS l (id)
            INNER JOIN new_incidents AS i ON i.tenant_id = j.tenant_id AND i.id = l.id;
            EXIT WHEN FOUND;
            -- None: open one, triggered by the group's first incident, and link the group to it.
            INSERT INTO policies.policy_proposals (
                tenant_id, triggering_incident_id, triggering_run_id, proposal_name, proposal_type, rationale,
                proposed_rule, incident_count, last_seen_at, is_synthetic, synthetic_scenario_id)
            SELECT f.tenant_id, f.id, f.source_run_id,
                   format('%s: %s', coalesce(fc.proposal_type, 'failure_pattern_policy'), v_group.code),
                   coalesce(fc.proposal_type, 'failure_pattern_policy'),
                   format('%s incident %s: run %s failed with %s. A rule listing %s would prevent it next time.',
                          initcap(f.severity), f.id, f.source_run_id, v_group.code, v_group.code),
                   v_rule, v_group.incidents, v_group.last_seen_at, f.is_synthetic, f.synthetic_scenario_id
            FROM new_incidents AS f
            LEFT JOIN incidents.failure_classes AS fc ON fc.error_code = v_group.code
            WHERE f.tenant_id = v_group.tenant_id AND f.id = v_group.first_incident_id
            ON CONFLICT (tenant_id, proposed_rule) WHERE status = 'pending' DO NOTHING
            RETURNING id INTO v_proposal_id;
            IF FOUND THEN
                INSERT INTO aos.events (event, tenant_id, subject_id, payload)
                SELECT 'proposal_created', p.tenant_id, p.id::text,
                       jsonb_build_object('proposal_id', p.id, 'incident_id', p.triggering_incident_id,
                                          'run_id', p.triggering_run_id, 'proposal_type', p.proposal_type,
                                          'is_synthetic', p.is_synthetic)
                FROM policies.policy_proposals AS p
                WHERE p.tenant_id = v_group.tenant_id AND p.id = v_proposal_id;
                INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id, is_synthetic,
                                                         synthetic_scenario_id)
                SELECT i.tenant_id, i.id, v_proposal_id, i.is_synthetic, i.synthetic_scenario_id
                FROM unnest(v_group.incident_ids) AS l (id)
                INNER JOIN new_incidents AS i ON i.tenant_id = v_group.tenant_id AND i.id = l.id;
                EXIT;
            END IF;
            -- Another session opened it first (and committed): join it in the next round.
            IF v_round >= 3 THEN
                RAISE EXCEPTION 'could not link the incidents of tenant % to a proposal: concurrent reviews',
                    v_group.tenant_id USING ERRCODE = '40001', HINT = 'Retry the transaction.';
            END IF;
        END LOOP;
    END LOOP;
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION policies.tg_incidents__propose() IS
    'PolicyProposalEngine trigger on incidents.incidents (after INSERT, per statement): links every high or critical '
    'incident to the pending proposal of its rule (error_code rule of its code; enforcement block for critical, warn '
    'for high), opening one when the tenant has none. Runs as aos_proposal_engine. Errors: 40001 when concurrent '
    'reviews kept changing the pending proposal (retry).';

SELECT aos.hand_to_engine('policies.tg_incidents__propose()', 'aos_proposal_engine');

CREATE OR REPLACE TRIGGER _100_proposal_engine AFTER INSERT ON incidents.incidents
REFERENCING NEW TABLE AS new_incidents
FOR EACH STATEMENT EXECUTE FUNCTION policies.tg_incidents__propose();
