-- Undoes 0015: aos.bi_logins keyed by login name again, no tenant-bound service logins, the
-- setting before the JWT claim, and aos_scenario may register any tenant.
-- The map is small (one row per bound login): rebuilding its key locks it for an instant.
-- squawk-ignore-file ban-drop-column, ban-drop-constraint, constraint-missing-not-valid, adding-serial-primary-key-field
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;

CREATE OR REPLACE FUNCTION aos.reader_tenant() RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_tenant text;
BEGIN
    SELECT b.tenant_id INTO v_tenant FROM aos.bi_logins AS b
    WHERE b.login = session_user;
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
    'The tenant a reader may see: the tenant aos.bi_logins maps session_user to, else aos.current_tenant(). Raises 28000 '
    'when no tenant is set, and for a member of aos_bi_tenant without a mapping.';

CREATE OR REPLACE FUNCTION aos.current_tenant() RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_tenant text := nullif(current_setting('aos.tenant_id', true), '');
    v_claims text;
BEGIN
    IF v_tenant IS NULL THEN
        v_claims := nullif(current_setting('request.jwt.claims', true), '');
        IF v_claims IS NOT NULL THEN
            v_tenant := nullif(v_claims::jsonb ->> 'tenant_id', '');
        END IF;
    END IF;
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'no tenant set'
            USING ERRCODE = '28000',
                  HINT = 'SELECT set_config(''aos.tenant_id'', ''<tenant>'', false), or send a JWT with a tenant_id claim.';
    END IF;
    RETURN v_tenant;
END
$fn$;
COMMENT ON FUNCTION aos.current_tenant() IS
    'The caller''s tenant: setting aos.tenant_id, else the tenant_id claim of request.jwt.claims. Raises '
        '28000 (invalid_authorization_specification) when neither is set.';

CREATE OR REPLACE FUNCTION aos.register_tenant(p_tenant_id text, p_name text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    INSERT INTO aos.tenants (tenant_id, name)
    VALUES (p_tenant_id, coalesce(nullif(btrim(p_name), ''), p_tenant_id))
    ON CONFLICT (tenant_id) DO NOTHING;
    RETURN p_tenant_id;
END
$fn$;
COMMENT ON FUNCTION aos.register_tenant(text, text) IS
    'Registers a tenant when it is missing (the name defaults to the id) and returns its id; harmless when it exists. '
    'Errors: 23514 tenants_id_format for an id outside ^[a-z0-9][a-z0-9._-]{0,63}$.';

DROP FUNCTION aos.login_tenant();

-- Rows of dropped roles cannot be keyed by name; of two rows for one name, the newer stays.
DELETE FROM aos.bi_logins AS b
WHERE NOT EXISTS (
    SELECT FROM pg_catalog.pg_roles AS r
    WHERE r.oid = b.login_oid
);
UPDATE aos.bi_logins AS b SET login = r.rolname
FROM pg_catalog.pg_roles AS r
WHERE r.oid = b.login_oid;
DELETE FROM aos.bi_logins AS b
WHERE EXISTS (
    SELECT FROM aos.bi_logins AS n
    WHERE n.login = b.login AND (n.created_at, n.login_oid) > (b.created_at, b.login_oid)
);
ALTER POLICY bi_logins_own_row ON aos.bi_logins USING (login = session_user);
DROP TRIGGER bi_logins_resolve ON aos.bi_logins;
DROP FUNCTION aos.tg_bi_logins__resolve();
ALTER TABLE aos.bi_logins DROP CONSTRAINT bi_logins_pkey, ADD CONSTRAINT bi_logins_pkey PRIMARY KEY (login);
ALTER TABLE aos.bi_logins DROP COLUMN login_oid;
COMMENT ON TABLE aos.bi_logins IS
    'Tenant of each tenant-facing BI login (a member of aos_bi_tenant). The tenant-filtered views show a login the rows '
    'of this tenant only.';
COMMENT ON COLUMN aos.bi_logins.login IS 'Login role name (session_user).';

RESET ROLE;
