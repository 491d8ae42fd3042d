-- Undoes 0012: jit as the functions had it, PUBLIC's default TEMPORARY back
-- where 0012 could take it.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET ROLE aos_owner;
ALTER FUNCTION aos.register_tenant(text, text) RESET jit;
ALTER FUNCTION aos.hand_to_engine(regprocedure, name) RESET jit;
RESET ROLE;

DO $do$
DECLARE
    v_db text := quote_ident(current_database());
    v_may boolean;
BEGIN
    SELECT r.rolsuper OR pg_has_role(current_user, d.datdba, 'USAGE') INTO v_may
    FROM pg_database AS d, pg_roles AS r
    WHERE d.datname = current_database() AND r.rolname = current_user;
    IF v_may THEN
        EXECUTE format('GRANT TEMPORARY ON DATABASE %s TO PUBLIC', v_db);
        EXECUTE format('REVOKE TEMPORARY ON DATABASE %s FROM aos_owner', v_db);
    ELSE
        RAISE WARNING 'aosdb: % may not grant TEMPORARY on database % to PUBLIC', current_user, v_db
            USING HINT = format('A DBA should run: GRANT TEMPORARY ON DATABASE %s TO PUBLIC;', v_db);
    END IF;
END
$do$;
