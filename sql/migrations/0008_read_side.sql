-- depends: 0007_engine_support
-- The read side: refresh bookkeeping for the analytics views, the tenant BI
-- role and its login mapping, and the API's read grants. The indexes the
-- facades need come in 0009 (CONCURRENTLY); the views and facades themselves
-- are repeatable (sql/views/, sql/functions/api_*.sql).
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';

-- Tenant-facing BI logins are members of aos_bi_tenant: they read only the
-- tenant-filtered views, and only their own tenant's rows.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'aos_bi_tenant') THEN
        CREATE ROLE aos_bi_tenant NOLOGIN;
    END IF;
END
$roles$;

SET LOCAL ROLE aos_owner;

GRANT USAGE ON SCHEMA activity, incidents, policies TO aos_api;
GRANT USAGE ON SCHEMA activity, incidents TO aos_bi_tenant;

-- When each analytics view was refreshed, how long it took and how many rows it holds.
CREATE TABLE aos.view_refreshes (
    id bigint GENERATED ALWAYS AS IDENTITY,
    view_name text NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now(),
    duration_ms numeric(12, 3) NOT NULL,
    row_count bigint NOT NULL,
    concurrent boolean NOT NULL,
    CONSTRAINT view_refreshes_pkey PRIMARY KEY (id),
    CONSTRAINT view_refreshes_view_name_valid CHECK (view_name IN ('activity.v_runs_o2', 'incidents.v_incidents_o2')),
    CONSTRAINT view_refreshes_duration_non_negative CHECK (duration_ms >= 0),
    CONSTRAINT view_refreshes_row_count_non_negative CHECK (row_count >= 0)
);
COMMENT ON TABLE aos.view_refreshes IS 'One row per refresh of an analytics view (aosdb refresh): when, how long, how many rows.';
COMMENT ON COLUMN aos.view_refreshes.id IS 'Generated id, in refresh order.';
COMMENT ON COLUMN aos.view_refreshes.view_name IS 'Schema-qualified materialized view.';
COMMENT ON COLUMN aos.view_refreshes.refreshed_at IS 'When the refresh started.';
COMMENT ON COLUMN aos.view_refreshes.duration_ms IS 'How long the refresh took, in milliseconds.';
COMMENT ON COLUMN aos.view_refreshes.row_count IS 'Rows in the view after the refresh.';
COMMENT ON COLUMN aos.view_refreshes.concurrent IS 'True when refreshed CONCURRENTLY (readers never blocked).';

CREATE INDEX view_refreshes_view_idx ON aos.view_refreshes (view_name, refreshed_at DESC);
GRANT SELECT ON aos.view_refreshes TO aos_bi;

-- Which tenant a BI login belongs to. Keyed by session_user, which a login
-- cannot change (unlike a setting), so a BI user cannot read another tenant.
CREATE TABLE aos.bi_logins (
    login name NOT NULL,
    tenant_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT bi_logins_pkey PRIMARY KEY (login),
    CONSTRAINT bi_logins_tenant_fk FOREIGN KEY (tenant_id) REFERENCES aos.tenants (tenant_id)
);
COMMENT ON TABLE aos.bi_logins IS
    'Tenant of each tenant-facing BI login (a member of aos_bi_tenant). The tenant-filtered views show a login the rows '
    'of this tenant only.';
COMMENT ON COLUMN aos.bi_logins.login IS 'Login role name (session_user).';
COMMENT ON COLUMN aos.bi_logins.tenant_id IS 'The only tenant the login may see.';
COMMENT ON COLUMN aos.bi_logins.created_at IS 'When the mapping was made.';

GRANT SELECT ON aos.bi_logins TO aos_bi_tenant;
ALTER TABLE aos.bi_logins ENABLE ROW LEVEL SECURITY;
CREATE POLICY bi_logins_own_row ON aos.bi_logins FOR SELECT
USING (login = session_user);

-- The tenant a reader may see: a BI login's mapped tenant (not spoofable),
-- else aos.current_tenant(). A tenant BI login without a mapping gets 28000:
-- it must never fall back to a setting it can change itself.
CREATE FUNCTION aos.reader_tenant() RETURNS text
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
GRANT EXECUTE ON FUNCTION aos.reader_tenant() TO aos_bi_tenant;

-- The API reads the domain tables its facades read through row-level security
-- (its own tenant) and writes nothing.
GRANT SELECT ON activity.runs, activity.aos_traces, incidents.incidents, incidents.incident_events,
    incidents.incident_evidence, policies.policy_proposals, policies.policy_rules, policies.prevention_records
TO aos_api;

-- The contract learns the new grants.
INSERT INTO aos.contract_roles (role_name, writes_domain, tenant_scoped, description) VALUES
('aos_bi_tenant', NULL, TRUE, 'Tenant-facing BI: reads the tenant-filtered analytics views, own tenant only (aos.bi_logins).');

INSERT INTO aos.contract_tables (schema_name, table_name, domain, kind, tenant_scoped) VALUES
('aos', 'view_refreshes', 'platform', 'table', FALSE),
('aos', 'bi_logins', 'platform', 'table', FALSE),
('activity', 'v_runs_o2_tenant', 'activity', 'view', TRUE),
('incidents', 'v_incidents_o2_tenant', 'incidents', 'view', TRUE),
('activity', 'v_runs_o2_api', 'activity', 'view', TRUE),
('incidents', 'v_incidents_o2_api', 'incidents', 'view', TRUE);

-- The list and detail facades read the analytics views through their
-- tenant-filtered api views (materialized views have no row-level security).
INSERT INTO aos.contract_facade_reads (function_name, schema_name, table_name)
SELECT f.function_name, v.schema_name, v.table_name
FROM aos.contract_facade_reads AS f
INNER JOIN (VALUES
    ('activity', 'v_runs_o2', 'v_runs_o2_api'),
    ('incidents', 'v_incidents_o2', 'v_incidents_o2_api')
) AS v (schema_name, matview, table_name) ON f.schema_name = v.schema_name AND f.table_name = v.matview;

INSERT INTO aos.contract_grants (role_name, schema_name, table_name, privilege, column_names)
SELECT 'aos_api', split_part(t, '.', 1), split_part(t, '.', 2), 'SELECT', NULL
FROM unnest(ARRAY[
    'activity.runs', 'activity.aos_traces', 'incidents.incidents', 'incidents.incident_events',
    'incidents.incident_evidence', 'policies.policy_proposals', 'policies.policy_rules', 'policies.prevention_records'
]) AS t;
INSERT INTO aos.contract_grants (role_name, schema_name, table_name, privilege, column_names) VALUES
('aos_bi', 'aos', 'view_refreshes', 'SELECT', NULL),
('aos_bi_tenant', 'aos', 'bi_logins', 'SELECT', NULL),
('aos_bi', 'activity', 'v_runs_o2', 'SELECT', NULL),
('aos_bi', 'incidents', 'v_incidents_o2', 'SELECT', NULL),
('aos_api', 'activity', 'v_runs_o2_api', 'SELECT', NULL),
('aos_api', 'incidents', 'v_incidents_o2_api', 'SELECT', NULL),
('aos_bi_tenant', 'activity', 'v_runs_o2_tenant', 'SELECT', NULL),
('aos_bi_tenant', 'incidents', 'v_incidents_o2_tenant', 'SELECT', NULL);

RESET ROLE;
