-- depends: 0001_roles
-- The five schemas, the tenant registry, and aos.current_tenant(), the one
-- function every row-level security policy is keyed on.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;

CREATE SCHEMA aos;
COMMENT ON SCHEMA aos IS 'Platform core: tenants, the contract as data, the event outbox.';
CREATE SCHEMA activity;
COMMENT ON SCHEMA activity IS 'Activity domain: what ran, what is running (runs, traces, trace steps).';
CREATE SCHEMA incidents;
COMMENT ON SCHEMA incidents IS 'Incidents domain: what went wrong (incidents, their timeline and evidence).';
CREATE SCHEMA policies;
COMMENT ON SCHEMA policies IS
    'Policies domain: what rules govern behaviour (proposals, rules, prevention records, default guardrails).';
CREATE SCHEMA api;
COMMENT ON SCHEMA api IS 'Read-only facade functions for UIs and services, tenant-scoped.';

-- Who may look inside which schema. Table privileges come with each table.
GRANT USAGE ON SCHEMA aos TO PUBLIC;
GRANT USAGE ON SCHEMA activity TO aos_worker, aos_policy_engine, aos_bi, aos_scenario;
GRANT USAGE ON SCHEMA incidents TO aos_incident_engine, aos_proposal_engine, aos_policy_engine,
    aos_operator, aos_bi, aos_scenario;
GRANT USAGE ON SCHEMA policies TO aos_proposal_engine, aos_policy_engine, aos_operator, aos_scenario;
GRANT USAGE ON SCHEMA api TO aos_api;

CREATE TABLE aos.tenants (
    tenant_id text NOT NULL,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenants_pkey PRIMARY KEY (tenant_id),
    CONSTRAINT tenants_id_format CHECK (tenant_id ~ '^[a-z0-9][a-z0-9._-]{0,63}$'),
    CONSTRAINT tenants_name_not_blank CHECK (btrim(name) <> '')
);
COMMENT ON TABLE aos.tenants IS
    'Tenant registry: every domain table references it, so no row exists for an unknown tenant.';
COMMENT ON COLUMN aos.tenants.tenant_id IS
    'Tenant key: lowercase, ^[a-z0-9][a-z0-9._-]{0,63}$; the first column of every domain key.';
COMMENT ON COLUMN aos.tenants.name IS 'Human-readable tenant name.';
COMMENT ON COLUMN aos.tenants.created_at IS 'When the tenant was registered.';

-- Reads the caller's tenant: the setting aos.tenant_id, else the tenant_id
-- claim PostgREST puts in request.jwt.claims. No tenant is an error (28000),
-- never "all tenants".
CREATE FUNCTION aos.current_tenant() RETURNS text
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
-- Meant for everyone: every tenant-scoped policy calls it as the querying role.
GRANT EXECUTE ON FUNCTION aos.current_tenant() TO PUBLIC;

-- Registering a tenant is a platform verb, not a write grant: no role may
-- write outside its domain (XD-004), and aos.tenants belongs to the platform.
-- SECURITY DEFINER (owned by aos_owner) so the worker and the scenario runner
-- can register a tenant without INSERT on the registry.
CREATE FUNCTION aos.register_tenant(p_tenant_id text, p_name text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
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
GRANT EXECUTE ON FUNCTION aos.register_tenant(text, text) TO aos_worker, aos_scenario;

-- The worker reads the registry; tenant-scoped callers see only their own tenant.
GRANT SELECT ON aos.tenants TO aos_worker, aos_scenario;
ALTER TABLE aos.tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenants_tenant_isolation ON aos.tenants
USING (tenant_id = (SELECT aos.current_tenant()))
WITH CHECK (tenant_id = (SELECT aos.current_tenant()));
CREATE POLICY tenants_worker_read ON aos.tenants FOR SELECT TO aos_worker
USING (TRUE);

RESET ROLE;
