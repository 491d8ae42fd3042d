-- depends: 0011_engine_indexes
-- No temporary objects for PUBLIC: a login's own pg_temp functions are how it
-- probes views for rows they should not show (the *_api views are security
-- barriers too, sql/views/). Only the database's owner or a superuser may
-- revoke it; anyone else gets a warning with the statements for a DBA.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
DO $do$
DECLARE
    v_db text := quote_ident(current_database());
    v_may boolean;
BEGIN
    SELECT r.rolsuper OR pg_has_role(current_user, d.datdba, 'USAGE') INTO v_may
    FROM pg_database AS d, pg_roles AS r
    WHERE d.datname = current_database() AND r.rolname = current_user;
    IF v_may THEN
        EXECUTE format('REVOKE TEMPORARY ON DATABASE %s FROM PUBLIC', v_db);
        -- The migrations run as aos_owner, and 0010 uses a temporary table.
        EXECUTE format('GRANT TEMPORARY ON DATABASE %s TO aos_owner', v_db);
    ELSE
        RAISE WARNING 'aosdb: % may not revoke TEMPORARY on database % from PUBLIC', current_user, v_db
            USING HINT = format('A DBA should run: REVOKE TEMPORARY ON DATABASE %s FROM PUBLIC; '
                                'GRANT TEMPORARY ON DATABASE %s TO aos_owner;', v_db, v_db);
    END IF;
END
$do$;

-- No JIT on the paths that write: their queries are short, and a compilation
-- costs tens of milliseconds (the engines' functions already pin it).
SET ROLE aos_owner;
ALTER FUNCTION aos.register_tenant(text, text) SET jit = off;
ALTER FUNCTION aos.hand_to_engine(regprocedure, name) SET jit = off;
RESET ROLE;
