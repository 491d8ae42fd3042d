-- A completed run is final: no statement, through the API or plain SQL, may
-- move it to another status. Statement-level, so a bulk UPDATE pays one check.
CREATE OR REPLACE FUNCTION activity.tg_runs__check_transition() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_tenant_id text;
    v_run_id text;
    v_old_status text;
    v_new_status text;
BEGIN
    SELECT o.tenant_id, o.run_id, o.status, n.status INTO v_tenant_id, v_run_id, v_old_status, v_new_status
    FROM old_runs AS o
    JOIN new_runs AS n ON n.tenant_id = o.tenant_id AND n.id = o.id
    WHERE o.state = 'completed' AND n.status <> o.status
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'run % of tenant % is % and cannot become %', v_run_id, v_tenant_id, v_old_status, v_new_status
            USING ERRCODE = '55000', HINT = 'succeeded, failed, halted and aborted are final.';
    END IF;
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION activity.tg_runs__check_transition() IS
    'Statement trigger on activity.runs: raises 55000 (object_not_in_prerequisite_state) when a completed run changes status.';

CREATE OR REPLACE TRIGGER _010_check_transition AFTER UPDATE ON activity.runs
REFERENCING OLD TABLE AS old_runs NEW TABLE AS new_runs
FOR EACH STATEMENT EXECUTE FUNCTION activity.tg_runs__check_transition();
