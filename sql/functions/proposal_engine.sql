-- PolicyProposalEngine: an incident of severity high or critical gets exactly
-- one pending proposal, whose rule would catch the same failure next time.
CREATE OR REPLACE FUNCTION policies.tg_incidents__propose() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF NOT EXISTS (SELECT FROM new_incidents WHERE severity IN ('high', 'critical')) THEN
        RETURN NULL;
    END IF;
    WITH proposed AS (
        INSERT INTO policies.policy_proposals (
            tenant_id, triggering_incident_id, triggering_run_id, proposal_name, proposal_type, rationale,
            proposed_rule, is_synthetic, synthetic_scenario_id)
        SELECT i.tenant_id, i.id, i.source_run_id,
               format('%s: %s', coalesce(fc.proposal_type, 'failure_pattern_policy'), c.code),
               coalesce(fc.proposal_type, 'failure_pattern_policy'),
               format('%s incident %s: run %s failed with %s. A rule listing %s would prevent it next time.',
                      initcap(i.severity), i.id, i.source_run_id, c.code, c.code),
               jsonb_build_object(
                   'rule_type', 'error_code',
                   'conditions', jsonb_build_object('error_codes', jsonb_build_array(c.code)),
                   'enforcement', CASE i.severity WHEN 'critical' THEN 'block' ELSE 'warn' END),
               i.is_synthetic, i.synthetic_scenario_id
        FROM new_incidents AS i
        -- A rule can only list well-formed codes; anything else is proposed as UNKNOWN.
        CROSS JOIN LATERAL (
            SELECT CASE WHEN i.error_code ~ '^[A-Z][A-Z0-9_]*$' THEN i.error_code ELSE 'UNKNOWN' END AS code
        ) AS c
        LEFT JOIN incidents.failure_classes AS fc ON fc.error_code = c.code
        WHERE i.severity IN ('high', 'critical')
        ON CONFLICT ON CONSTRAINT policy_proposals_one_per_incident DO NOTHING
        RETURNING tenant_id, id, triggering_incident_id, triggering_run_id, proposal_type, is_synthetic
    )
    INSERT INTO aos.events (event, tenant_id, subject_id, payload)
    SELECT 'proposal_created', p.tenant_id, p.id::text,
           jsonb_build_object('proposal_id', p.id, 'incident_id', p.triggering_incident_id,
                              'run_id', p.triggering_run_id, 'proposal_type', p.proposal_type,
                              'is_synthetic', p.is_synthetic)
    FROM proposed AS p
    ORDER BY p.tenant_id, p.triggering_run_id;
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION policies.tg_incidents__propose() IS
    'PolicyProposalEngine trigger on incidents.incidents (after INSERT, per statement): one pending proposal per high or '
    'critical incident, enforcement block for critical, warn for high. Runs as aos_proposal_engine.';

SELECT aos.hand_to_engine('policies.tg_incidents__propose()', 'aos_proposal_engine');

CREATE OR REPLACE TRIGGER _100_proposal_engine AFTER INSERT ON incidents.incidents
REFERENCING NEW TABLE AS new_incidents
FOR EACH STATEMENT EXECUTE FUNCTION policies.tg_incidents__propose();
