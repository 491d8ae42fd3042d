-- Operator actions on incidents, tenant-scoped through aos.current_tenant():
-- another tenant's incident is "not found" (P0002). Each checks its
-- transition (55000), validates its input (22023), writes the timeline and
-- publishes its event. SECURITY DEFINER as the IncidentEngine: operators hold
-- no table privileges, only these verbs.

-- The caller's incident, locked, or P0002.
CREATE OR REPLACE FUNCTION incidents._lock_incident(p_incident_id uuid) RETURNS incidents.incidents
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_incident incidents.incidents;
BEGIN
    SELECT * INTO v_incident FROM incidents.incidents
    WHERE tenant_id = aos.current_tenant() AND id = p_incident_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'incident % not found', p_incident_id USING ERRCODE = 'P0002';
    END IF;
    RETURN v_incident;
END
$fn$;
COMMENT ON FUNCTION incidents._lock_incident(uuid) IS
    'Action helper: the incident of the caller''s tenant with this id, row-locked; P0002 when there is none.';

CREATE OR REPLACE FUNCTION incidents._require_actor(p_actor text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    IF coalesce(btrim(p_actor), '') = '' THEN
        RAISE EXCEPTION 'an actor is required' USING ERRCODE = '22023';
    END IF;
    PERFORM aos._check_text('actor', p_actor, 200);
END
$fn$;
COMMENT ON FUNCTION incidents._require_actor(text) IS
    'Action helper: raises 22023 for a null or blank actor, or one over 200 characters.';

-- Timeline row plus outbox event for an action on an incident.
CREATE OR REPLACE FUNCTION incidents._record_action(
    p_incident incidents.incidents, p_event_type text, p_event text, p_actor text, p_details jsonb
) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    INSERT INTO incidents.incident_events (tenant_id, incident_id, event_type, actor, details, is_synthetic,
                                           synthetic_scenario_id)
    VALUES (p_incident.tenant_id, p_incident.id, p_event_type, p_actor, p_details, p_incident.is_synthetic,
            p_incident.synthetic_scenario_id);
    INSERT INTO aos.events (event, tenant_id, subject_id, payload)
    VALUES (p_event, p_incident.tenant_id, p_incident.id::text,
            p_details || jsonb_build_object('incident_id', p_incident.id, 'actor', p_actor,
                                            'is_synthetic', p_incident.is_synthetic));
END
$fn$;
COMMENT ON FUNCTION incidents._record_action(incidents.incidents, text, text, text, jsonb) IS
    'Action helper: appends the timeline event and the outbox event of an action on an incident.';

CREATE OR REPLACE FUNCTION incidents.acknowledge(p_incident_id uuid, p_actor text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_incident incidents.incidents;
BEGIN
    PERFORM incidents._require_actor(p_actor);
    v_incident := incidents._lock_incident(p_incident_id);
    IF v_incident.lifecycle_state <> 'active' THEN
        RAISE EXCEPTION 'incident % is %, only an active incident can be acknowledged',
            p_incident_id, v_incident.lifecycle_state USING ERRCODE = '55000';
    END IF;
    UPDATE incidents.incidents SET lifecycle_state = 'acked', acknowledged_at = now(), acknowledged_by = p_actor
    WHERE tenant_id = v_incident.tenant_id AND id = v_incident.id;
    PERFORM incidents._record_action(v_incident, 'acknowledged', 'incident_acknowledged', p_actor, '{}');
END
$fn$;
COMMENT ON FUNCTION incidents.acknowledge(uuid, text) IS
    'Operator: active -> acked. Errors: 22023 blank actor, P0002 no such incident in the caller''s tenant, '
    '55000 not active, 28000 no tenant set.';

CREATE OR REPLACE FUNCTION incidents.resolve(
    p_incident_id uuid, p_actor text, p_method text DEFAULT 'manual', p_notes text DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_incident incidents.incidents;
BEGIN
    PERFORM incidents._require_actor(p_actor);
    IF p_method IS NULL OR p_method NOT IN ('auto', 'manual', 'rollback') THEN
        RAISE EXCEPTION 'resolution method must be auto, manual or rollback, got %', aos._shown(p_method)
            USING ERRCODE = '22023';
    END IF;
    PERFORM aos._check_text('notes', p_notes, 65536, FALSE);
    v_incident := incidents._lock_incident(p_incident_id);
    IF v_incident.lifecycle_state = 'resolved' THEN
        RAISE EXCEPTION 'incident % is already resolved', p_incident_id USING ERRCODE = '55000';
    END IF;
    UPDATE incidents.incidents SET
        lifecycle_state = 'resolved', resolved_at = now(), resolved_by = p_actor, resolution_method = p_method,
        resolution_notes = p_notes
    WHERE tenant_id = v_incident.tenant_id AND id = v_incident.id;
    PERFORM incidents._record_action(v_incident, 'resolved', 'incident_resolved', p_actor,
                                     jsonb_build_object('method', p_method, 'notes', p_notes));
END
$fn$;
COMMENT ON FUNCTION incidents.resolve(uuid, text, text, text) IS
    'Operator: active or acked -> resolved, with method (auto, manual, rollback) and notes. Errors: 22023 blank actor '
    'or bad method, P0002 no such incident in the caller''s tenant, 55000 already resolved, 28000 no tenant set.';

CREATE OR REPLACE FUNCTION incidents.add_evidence(
    p_incident_id uuid, p_type text, p_payload jsonb, p_recovery_executed boolean DEFAULT FALSE
) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_incident incidents.incidents;
    v_id uuid;
BEGIN
    IF p_type IS NULL OR p_type NOT IN ('log', 'trace', 'metric', 'action', 'postmortem') THEN
        RAISE EXCEPTION 'evidence type must be log, trace, metric, action or postmortem, got %', aos._shown(p_type)
            USING ERRCODE = '22023';
    END IF;
    IF jsonb_typeof(p_payload) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'evidence payload must be a JSON object' USING ERRCODE = '22023';
    END IF;
    PERFORM aos._check_json('evidence payload', p_payload);
    v_incident := incidents._lock_incident(p_incident_id);
    INSERT INTO incidents.incident_evidence (tenant_id, incident_id, evidence_type, run_id, recovery_executed, payload,
                                             is_synthetic, synthetic_scenario_id)
    VALUES (v_incident.tenant_id, v_incident.id, p_type, v_incident.source_run_id,
            coalesce(p_recovery_executed, FALSE), p_payload, v_incident.is_synthetic, v_incident.synthetic_scenario_id)
    RETURNING id INTO v_id;
    PERFORM incidents._record_action(v_incident, 'evidence_added', 'evidence_added', session_user,
                                     jsonb_build_object('evidence_id', v_id, 'evidence_type', p_type,
                                                        'recovery_executed', coalesce(p_recovery_executed, FALSE)));
    RETURN v_id;
END
$fn$;
COMMENT ON FUNCTION incidents.add_evidence(uuid, text, jsonb, boolean) IS
    'Operator: attaches evidence (log, trace, metric, action, postmortem) to an incident of the caller''s tenant and '
    'returns its id. Errors: 22023 bad type or payload, P0002 no such incident, 28000 no tenant set.';

SELECT aos.hand_to_engine(f, 'aos_incident_engine') FROM unnest(ARRAY[
    'incidents._lock_incident(uuid)', 'incidents._require_actor(text)',
    'incidents._record_action(incidents.incidents, text, text, text, jsonb)',
    'incidents.acknowledge(uuid, text)', 'incidents.resolve(uuid, text, text, text)',
    'incidents.add_evidence(uuid, text, jsonb, boolean)'
]::regprocedure[]) AS f;

GRANT EXECUTE ON FUNCTION incidents.acknowledge(uuid, text) TO aos_operator, aos_scenario;
GRANT EXECUTE ON FUNCTION incidents.resolve(uuid, text, text, text) TO aos_operator, aos_scenario;
GRANT EXECUTE ON FUNCTION incidents.add_evidence(uuid, text, jsonb, boolean) TO aos_operator, aos_scenario;

-- The actions with their ids as text: a driver's string or a quoted literal
-- that is not a uuid raises 22023 naming the id, not the cast's 22P02 before
-- any function runs. A uuid value still resolves to the uuid versions above.
-- Owned by the same engines, as every operator action is.
CREATE OR REPLACE FUNCTION incidents.acknowledge(p_incident_id text, p_actor text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    PERFORM incidents.acknowledge(aos._uuid('incident_id', p_incident_id), p_actor);
END
$fn$;
COMMENT ON FUNCTION incidents.acknowledge(text, text) IS
    'Operator: incidents.acknowledge(uuid, text) with the id as text; 22023 when it is not a uuid.';

CREATE OR REPLACE FUNCTION incidents.resolve(
    p_incident_id text, p_actor text, p_method text DEFAULT 'manual', p_notes text DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    PERFORM incidents.resolve(aos._uuid('incident_id', p_incident_id), p_actor, p_method, p_notes);
END
$fn$;
COMMENT ON FUNCTION incidents.resolve(text, text, text, text) IS
    'Operator: incidents.resolve(uuid, text, text, text) with the id as text; 22023 when it is not a uuid.';

CREATE OR REPLACE FUNCTION incidents.add_evidence(
    p_incident_id text, p_type text, p_payload jsonb, p_recovery_executed boolean DEFAULT FALSE
) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    RETURN incidents.add_evidence(aos._uuid('incident_id', p_incident_id), p_type, p_payload, p_recovery_executed);
END
$fn$;
COMMENT ON FUNCTION incidents.add_evidence(text, text, jsonb, boolean) IS
    'Operator: incidents.add_evidence(uuid, text, jsonb, boolean) with the id as text; 22023 when it is not a uuid.';

SELECT aos.hand_to_engine(f, 'aos_incident_engine') FROM unnest(ARRAY[
    'incidents.acknowledge(text, text)', 'incidents.resolve(text, text, text, text)',
    'incidents.add_evidence(text, text, jsonb, boolean)'
]::regprocedure[]) AS f;

GRANT EXECUTE ON FUNCTION incidents.acknowledge(text, text), incidents.resolve(text, text, text, text),
    incidents.add_evidence(text, text, jsonb, boolean)
TO aos_operator, aos_scenario;
