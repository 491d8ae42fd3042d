-- A completed run is final: no statement, through the API or plain SQL, may move it to another
-- status. A row trigger whose WHEN clause is the rule itself: PostgreSQL evaluates the clause for
-- each updated row and calls the function only for a row that breaks the rule, so a legal UPDATE
-- (a run finishing, the PolicyEngine flagging a violation) costs no function call at all.
CREATE OR REPLACE FUNCTION activity.tg_runs__check_transition() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    RAISE EXCEPTION 'run % of tenant % is % and cannot become %', OLD.run_id, OLD.tenant_id, OLD.status, NEW.status
        USING ERRCODE = '55000', HINT = 'succeeded, failed, halted and aborted are final.';
END
$fn$;
COMMENT ON FUNCTION activity.tg_runs__check_transition() IS
    'Row trigger on activity.runs (before UPDATE, only for a completed run whose status changes): raises 55000 '
    '(object_not_in_prerequisite_state).';

CREATE OR REPLACE TRIGGER _010_check_transition BEFORE UPDATE OF status ON activity.runs
FOR EACH ROW WHEN (OLD.state = 'completed' AND NEW.status IS DISTINCT FROM OLD.status)
EXECUTE FUNCTION activity.tg_runs__check_transition();
