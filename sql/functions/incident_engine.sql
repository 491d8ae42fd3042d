-- IncidentEngine: a run that reaches failed gets exactly one incident (and a
-- detected event), unless the PolicyEngine prevented the failure. Fired per
-- statement with transition tables, so a bulk load runs one set-based query.

-- The error code of a failed run: the explicit code when set (kept even when unknown), else the
-- first known code found in the upper-cased message, else UNKNOWN.
CREATE OR REPLACE FUNCTION incidents.error_code_for(p_error_code text, p_error_message text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN coalesce(
    nullif(btrim(p_error_code), ''),
    (SELECT fc.error_code FROM incidents.failure_classes AS fc
     WHERE fc.match_priority IS NOT NULL AND strpos(upper(p_error_message), fc.error_code) > 0
     ORDER BY fc.match_priority LIMIT 1),
    'UNKNOWN');
COMMENT ON FUNCTION incidents.error_code_for(text, text) IS
    'The error code of a failure: the explicit code, else the first failure_classes code (by match_priority) found in '
    'the upper-cased message, else UNKNOWN.';
GRANT EXECUTE ON FUNCTION incidents.error_code_for(text, text) TO aos_incident_engine, aos_policy_engine;

-- The trigger: picks the runs that just reached failed (set-based) and opens their incidents,
-- one query for the whole statement. Runs with a `prevented` record get none; the unique key
-- incidents_one_per_failed_run holds even if a failure were delivered twice. SECURITY DEFINER so
-- the worker's statement can write incidents through the engine's rights, and only through them.
CREATE OR REPLACE FUNCTION incidents.tg_runs__open_incidents() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
-- One plan for every call: re-planning per statement costs more than running it.
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    -- The newly failed runs, by key (v_tenant_ids[i], v_run_ids[i]); the statement reads an
    -- INSERT's from the transition table, an UPDATE's back by key.
    v_tenant_ids text[];
    v_run_ids uuid[];
    v_inserted boolean := TG_OP = 'INSERT';
BEGIN
    IF v_inserted THEN
        SELECT array_agg(n.tenant_id), array_agg(n.id) INTO v_tenant_ids, v_run_ids
        FROM new_runs AS n WHERE n.status = 'failed';
    ELSE
        SELECT array_agg(n.tenant_id), array_agg(n.id) INTO v_tenant_ids, v_run_ids
        FROM new_runs AS n JOIN old_runs AS o ON o.tenant_id = n.tenant_id AND o.id = n.id
        WHERE n.status = 'failed' AND o.status <> 'failed';
    END IF;
    IF v_run_ids IS NULL THEN
        RETURN NULL;
    END IF;
    WITH failed AS (
        SELECT r.tenant_id, r.id, r.run_id, r.agent_id, r.error_message, r.is_synthetic, r.synthetic_scenario_id,
               -- The explicit code needs no call: a SQL function with a subquery is not inlined, and
               -- a storm would pay that call per run.
               coalesce(nullif(btrim(r.error_code), ''), incidents.error_code_for(NULL, r.error_message)) AS code,
               EXISTS (
                   SELECT FROM policies.prevention_records AS p
                   WHERE p.tenant_id = r.tenant_id AND p.run_id = r.run_id AND p.outcome = 'prevented'
               ) AS prevented
        FROM (
            -- An INSERT: its rows as the transition table holds them.
            SELECT x.* FROM new_runs AS x WHERE v_inserted AND x.status = 'failed'
            UNION ALL
            -- An UPDATE: the runs that reached failed, by key. A primary-key probe per run, whatever
            -- the table's size was when this plan was made (OFFSET 0 keeps the planner from turning
            -- it into a hash join).
            SELECT x.*
            FROM unnest(v_tenant_ids, v_run_ids) AS k (tenant_id, id)
            CROSS JOIN LATERAL (
                SELECT * FROM activity.runs AS y WHERE y.tenant_id = k.tenant_id AND y.id = k.id OFFSET 0
            ) AS x
            WHERE NOT v_inserted
        ) AS r
    ),
    created AS (
        INSERT INTO incidents.incidents (
            tenant_id, source_run_id, llm_run_id, title, severity, category, error_code, error_message,
            cause_type, is_synthetic, synthetic_scenario_id)
        SELECT f.tenant_id, f.run_id, f.id,
               format('%s: run %s of agent %s failed', f.code, f.run_id, f.agent_id),
               coalesce(fc.severity, unknown.severity, 'medium'),
               coalesce(fc.category, unknown.category, 'execution_failure'),
               f.code, f.error_message, 'llm_run', f.is_synthetic, f.synthetic_scenario_id
        FROM failed AS f
        LEFT JOIN incidents.failure_classes AS fc ON fc.error_code = f.code
        LEFT JOIN incidents.failure_classes AS unknown ON unknown.error_code = 'UNKNOWN'
        WHERE NOT f.prevented
        RETURNING tenant_id, id, source_run_id, severity, error_code, is_synthetic, synthetic_scenario_id
    ),
    timeline AS (
        INSERT INTO incidents.incident_events (tenant_id, incident_id, event_type, actor, details,
                                               is_synthetic, synthetic_scenario_id)
        SELECT c.tenant_id, c.id, 'detected', 'IncidentEngine',
               jsonb_build_object('run_id', c.source_run_id, 'severity', c.severity, 'error_code', c.error_code),
               c.is_synthetic, c.synthetic_scenario_id
        FROM created AS c
    )
    INSERT INTO aos.events (event, tenant_id, subject_id, payload)
    SELECT e.event, e.tenant_id, e.subject_id, e.payload
    FROM (
        SELECT 'run_failed' AS event, f.tenant_id, f.run_id AS subject_id,
               jsonb_build_object('run_id', f.run_id, 'id', f.id, 'error_code', f.code, 'prevented', f.prevented,
                                  'is_synthetic', f.is_synthetic) AS payload
        FROM failed AS f
        UNION ALL
        SELECT 'incident_created', c.tenant_id, c.id::text,
               jsonb_build_object('incident_id', c.id, 'run_id', c.source_run_id, 'severity', c.severity,
                                  'error_code', c.error_code, 'is_synthetic', c.is_synthetic)
        FROM created AS c
    ) AS e;  -- run_failed first, then incident_created, each in the statement's order
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION incidents.tg_runs__open_incidents() IS
    'IncidentEngine trigger on activity.runs (after INSERT, after UPDATE; per statement): one incident, one detected '
    'event and the run_failed/incident_created events for each run that reached failed and was not prevented. '
    'Runs as aos_incident_engine.';

-- Engines of older releases opened incidents through a separate core function.
DROP FUNCTION IF EXISTS incidents._open_incidents(text[], uuid[]);

SELECT aos.hand_to_engine('incidents.tg_runs__open_incidents()', 'aos_incident_engine');

-- _200: after the PolicyEngine (_100) has recorded what it prevented.
CREATE OR REPLACE TRIGGER _200_incident_engine_insert AFTER INSERT ON activity.runs
REFERENCING NEW TABLE AS new_runs
FOR EACH STATEMENT EXECUTE FUNCTION incidents.tg_runs__open_incidents();
CREATE OR REPLACE TRIGGER _200_incident_engine_update AFTER UPDATE ON activity.runs
REFERENCING OLD TABLE AS old_runs NEW TABLE AS new_runs
FOR EACH STATEMENT EXECUTE FUNCTION incidents.tg_runs__open_incidents();
