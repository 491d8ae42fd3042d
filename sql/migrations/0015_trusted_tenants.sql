-- depends: 0014_value_bounds
-- Who may choose a tenant, and who is bound to one:
--   * aos.bi_logins is keyed by the login's role OID, not its name: a dropped login's mapping no
--     longer passes to a new login of the same name. It now binds any login (BI, operator, api,
--     scenario runner) to one tenant; the name is kept as information only.
--   * aos.login_tenant() reads the binding of session_user (SECURITY DEFINER: no role needs a
--     grant on the map); aos.current_tenant() returns it for a bound login and refuses (28000) a
--     setting or JWT claim naming another tenant. Unbound logins stay trusted to choose a tenant.
--   * the JWT claim wins over the aos.tenant_id setting when both are present.
--   * aos_scenario registers only tenants of its namespace (sdsr-...).
-- The map is small (one row per bound login): filling and rekeying it locks it for an instant.
-- squawk-ignore-file adding-not-nullable-field, ban-drop-constraint, constraint-missing-not-valid, adding-serial-primary-key-field
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;

-- Key the map by OID. Rows naming a role that no longer exists are dropped (and reported).
ALTER TABLE aos.bi_logins ADD COLUMN login_oid oid;
DO $do$
DECLARE
    v_row record;
BEGIN
    FOR v_row IN SELECT b.login, b.tenant_id FROM aos.bi_logins AS b
                 WHERE to_regrole(quote_ident(b.login)) IS NULL ORDER BY b.login LOOP
        RAISE NOTICE 'aos.bi_logins: dropping the mapping of % to tenant %: no such role', v_row.login, v_row.tenant_id;
    END LOOP;
    DELETE FROM aos.bi_logins AS b WHERE to_regrole(quote_ident(b.login)) IS NULL;
    UPDATE aos.bi_logins AS b SET login_oid = to_regrole(quote_ident(b.login))::oid;
END
$do$;
ALTER TABLE aos.bi_logins
    ALTER COLUMN login_oid SET NOT NULL,
    DROP CONSTRAINT bi_logins_pkey,
    ADD CONSTRAINT bi_logins_pkey PRIMARY KEY (login_oid);
COMMENT ON TABLE aos.bi_logins IS
    'The one tenant of each tenant-bound login, keyed by role OID: tenant-facing BI logins (members of aos_bi_tenant, '
    'which must have a row) and any operator, api or scenario login a DBA binds. A bound login sees its tenant only.';
COMMENT ON COLUMN aos.bi_logins.login_oid IS 'OID of the login role (session_user); a new role of the same name is another login.';
COMMENT ON COLUMN aos.bi_logins.login IS 'Login role name when the row was written: information only, never matched.';

-- Either column may name the role on INSERT; the row always stores the role's OID and its
-- current name, and an unknown role is refused.
CREATE FUNCTION aos.tg_bi_logins__resolve() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_name name;
BEGIN
    IF NEW.login_oid IS NULL THEN
        NEW.login_oid := to_regrole(quote_ident(NEW.login))::oid;
    END IF;
    SELECT r.rolname INTO v_name FROM pg_catalog.pg_roles AS r WHERE r.oid = NEW.login_oid;
    IF v_name IS NULL THEN
        RAISE EXCEPTION 'no such role: %', coalesce(NEW.login_oid::text, NEW.login) USING ERRCODE = '23503';
    END IF;
    NEW.login := v_name;
    RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION aos.tg_bi_logins__resolve() IS
    'BEFORE INSERT OR UPDATE on aos.bi_logins: resolves login to login_oid when only the name is given, stores the '
    'role''s current name, and raises 23503 for a role that does not exist.';
-- BEFORE row triggers run before the NOT NULL checks: either column may be left out.
CREATE TRIGGER bi_logins_resolve BEFORE INSERT OR UPDATE ON aos.bi_logins
FOR EACH ROW EXECUTE FUNCTION aos.tg_bi_logins__resolve();

ALTER POLICY bi_logins_own_row ON aos.bi_logins
USING (login_oid = to_regrole(quote_ident(session_user))::oid);

-- The binding of session_user, one index lookup. SECURITY DEFINER so that every role (the
-- engines' functions included) can read its own binding without a grant on the map.
CREATE FUNCTION aos.login_tenant() RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_tenant text;
BEGIN
    SELECT b.tenant_id INTO v_tenant FROM aos.bi_logins AS b
    WHERE b.login_oid = to_regrole(quote_ident(session_user))::oid;
    RETURN v_tenant;
END
$fn$;
COMMENT ON FUNCTION aos.login_tenant() IS
    'The tenant aos.bi_logins binds session_user (by role OID) to, else NULL: an unbound login.';
GRANT EXECUTE ON FUNCTION aos.login_tenant() TO PUBLIC;

-- A bound login's tenant is its binding; a setting or claim naming another is refused, never
-- silently ignored. Unbound logins are trusted services: the claim, else the setting.
CREATE OR REPLACE FUNCTION aos.current_tenant() RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_bound text := aos.login_tenant();
    v_setting text := nullif(current_setting('aos.tenant_id', true), '');
    v_claims text := nullif(current_setting('request.jwt.claims', true), '');
    v_claim text;
BEGIN
    IF v_claims IS NOT NULL THEN
        v_claim := nullif(v_claims::jsonb ->> 'tenant_id', '');
    END IF;
    IF v_bound IS NOT NULL THEN
        IF v_claim <> v_bound OR v_setting <> v_bound THEN
            RAISE EXCEPTION 'login % is bound to tenant %, not %', session_user, v_bound,
                CASE WHEN v_claim <> v_bound THEN v_claim ELSE v_setting END
                USING ERRCODE = '28000';
        END IF;
        RETURN v_bound;
    END IF;
    IF coalesce(v_claim, v_setting) IS NULL THEN
        RAISE EXCEPTION 'no tenant set'
            USING ERRCODE = '28000',
                  HINT = 'SELECT set_config(''aos.tenant_id'', ''<tenant>'', false), or send a JWT with a tenant_id claim.';
    END IF;
    RETURN coalesce(v_claim, v_setting);
END
$fn$;
COMMENT ON FUNCTION aos.current_tenant() IS
    'The caller''s tenant: the tenant aos.bi_logins binds the login to (28000 when a setting or claim names another), '
    'else the tenant_id claim of request.jwt.claims, else setting aos.tenant_id. Raises 28000 when none is set.';

-- BI logins read through their binding, as before; an unbound aos_bi_tenant member gets 28000.
CREATE OR REPLACE FUNCTION aos.reader_tenant() RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_tenant text := aos.login_tenant();
BEGIN
    IF v_tenant IS NOT NULL THEN
        RETURN v_tenant;
    END IF;
    IF pg_has_role(session_user, 'aos_bi_tenant', 'MEMBER')
       AND NOT (SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = session_user) THEN
        RAISE EXCEPTION 'BI login % has no tenant', session_user
            USING ERRCODE = '28000', HINT = 'INSERT INTO aos.bi_logins (login, tenant_id) VALUES (...).';
    END IF;
    RETURN aos.current_tenant();
END
$fn$;
COMMENT ON FUNCTION aos.reader_tenant() IS
    'The tenant a reader may see: the tenant aos.bi_logins binds session_user to (by role OID), else '
    'aos.current_tenant(). Raises 28000 when no tenant is set, and for a member of aos_bi_tenant without a binding.';

-- The scenario runner registers only its own namespace; the worker (a trusted ingestion
-- service) any tenant. The caller is the role SET ROLE chose, else session_user: inside this
-- SECURITY DEFINER function current_user is the owner.
CREATE OR REPLACE FUNCTION aos.register_tenant(p_tenant_id text, p_name text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_caller name := CASE current_setting('role') WHEN 'none' THEN session_user ELSE current_setting('role') END;
BEGIN
    IF NOT pg_has_role(v_caller, 'aos_worker', 'USAGE') AND p_tenant_id NOT LIKE 'sdsr-%' THEN
        RAISE EXCEPTION 'aos_scenario may register only scenario tenants (sdsr-...), not %', p_tenant_id
            USING ERRCODE = '42501';
    END IF;
    INSERT INTO aos.tenants (tenant_id, name)
    VALUES (p_tenant_id, coalesce(nullif(btrim(p_name), ''), p_tenant_id))
    ON CONFLICT (tenant_id) DO NOTHING;
    RETURN p_tenant_id;
END
$fn$;
COMMENT ON FUNCTION aos.register_tenant(text, text) IS
    'Registers a tenant when it is missing (the name defaults to the id) and returns its id; harmless when it exists. '
    'aos_scenario may register only ids starting with sdsr-. Errors: 23514 tenants_id_format for an id outside '
    '^[a-z0-9][a-z0-9._-]{0,63}$, 42501 a scenario tenant outside sdsr-.';

RESET ROLE;
