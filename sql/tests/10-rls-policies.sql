-- Row-level security is enabled on every tenant table, and each table has
-- exactly two policies: a tenant isolation policy for everyone, keyed on
-- aos.current_tenant(), and a "trusted" policy for the worker or engine roles
-- that must see every tenant. No tenant-scoped role is ever trusted. The one
-- other table with row-level security is aos.bi_logins (0008), where each
-- login sees only its own row; the refresh log aos.view_refreshes and the
-- outbox's ticks and wake-up row (aos.event_ticks, aos.event_wakeup) hold no
-- tenant data and have none.
BEGIN;

CREATE TEMP TABLE expected_policies (schema_name name, table_name name, isolation name, trusted name,
    trusted_roles name[], trusted_cmd text DEFAULT 'ALL') ON COMMIT DROP;
INSERT INTO expected_policies (schema_name, table_name, isolation, trusted, trusted_roles) VALUES
    -- 0007: the IncidentEngine reads the runs that failed, of any tenant.
    ('activity', 'runs', 'runs_tenant_isolation', 'runs_trusted_all',
     '{aos_worker,aos_policy_engine,aos_incident_engine}'),
    ('activity', 'aos_traces', 'aos_traces_tenant_isolation', 'aos_traces_trusted_all',
     '{aos_worker,aos_policy_engine}'),
    ('activity', 'aos_trace_steps', 'aos_trace_steps_tenant_isolation', 'aos_trace_steps_trusted_all',
     '{aos_worker,aos_policy_engine}'),
    ('incidents', 'incidents', 'incidents_tenant_isolation', 'incidents_trusted_all',
     '{aos_incident_engine,aos_proposal_engine}'),
    ('incidents', 'incident_events', 'incident_events_tenant_isolation', 'incident_events_trusted_all',
     '{aos_incident_engine}'),
    ('incidents', 'incident_evidence', 'incident_evidence_tenant_isolation', 'incident_evidence_trusted_all',
     '{aos_incident_engine}'),
    ('policies', 'policy_proposals', 'policy_proposals_tenant_isolation', 'policy_proposals_trusted_all',
     '{aos_proposal_engine,aos_policy_engine}'),
    -- 0007: approval returns the rule the PolicyEngine created, so the
    -- PolicyProposalEngine reads rules of every tenant ...
    ('policies', 'policy_rules', 'policy_rules_tenant_isolation', 'policy_rules_trusted_all',
     '{aos_policy_engine,aos_proposal_engine}'),
    -- ... and the IncidentEngine skips failures the PolicyEngine prevented.
    ('policies', 'prevention_records', 'prevention_records_tenant_isolation', 'prevention_records_trusted_all',
     '{aos_policy_engine,aos_incident_engine}'),
    -- 0010: the PolicyProposalEngine links incidents of every tenant to their proposals.
    ('policies', 'proposal_incidents', 'proposal_incidents_tenant_isolation', 'proposal_incidents_trusted_all',
     '{aos_proposal_engine}'),
    -- Every engine appends to the outbox, for the tenant of its effect.
    ('aos', 'events', 'events_tenant_isolation', 'events_trusted_all',
     '{aos_incident_engine,aos_proposal_engine,aos_policy_engine}');

-- The worker only reads the registry (aos.register_tenant adds to it).
INSERT INTO expected_policies VALUES
    ('aos', 'tenants', 'tenants_tenant_isolation', 'tenants_worker_read', '{aos_worker}', 'SELECT');

SELECT plan(
    (SELECT count(*)::int FROM aos.contract_tables WHERE tenant_scoped AND kind IN ('table', 'outbox'))
    + 2
    + (SELECT count(*)::int * 5 FROM expected_policies)
    + 2
    + 4
);

-- Data-driven from the contract: every tenant table (and the outbox) has RLS on.
SELECT ok(
    coalesce((SELECT c.relrowsecurity FROM pg_catalog.pg_class AS c
              WHERE c.oid = to_regclass(format('%I.%I', t.schema_name, t.table_name))), FALSE),
    format('row-level security is enabled on %s.%s', t.schema_name, t.table_name)
)
FROM aos.contract_tables AS t WHERE t.tenant_scoped AND t.kind IN ('table', 'outbox')
ORDER BY t.schema_name, t.table_name;

SELECT set_eq(
    $$ SELECT schema_name::text, table_name::text FROM aos.contract_tables
       WHERE tenant_scoped AND kind IN ('table', 'outbox') $$,
    'SELECT schema_name::text, table_name::text FROM expected_policies',
    'the tenant tables and outbox of aos.contract_tables are exactly the tables with policies below'
);

-- Catalog-wide: a table with a tenant_id column cannot be added without RLS.
SELECT is_empty(
    $$
    SELECT c.oid::regclass FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api') AND c.relkind IN ('r', 'p')
      AND EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                  WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
      AND (NOT c.relrowsecurity OR NOT EXISTS (SELECT FROM pg_catalog.pg_policy AS p WHERE p.polrelid = c.oid))
    $$,
    'every table with a tenant_id column has row-level security enabled and at least one policy'
);

SELECT policies_are(schema_name, table_name, ARRAY[isolation, trusted],
    format('%s.%s has exactly the policies %s and %s', schema_name, table_name, isolation, trusted))
FROM expected_policies ORDER BY schema_name, table_name;

-- pgTAP's policy_roles_are does not know PUBLIC: read pg_policies.
SELECT is(
    (SELECT p.roles FROM pg_catalog.pg_policies AS p
     WHERE (p.schemaname, p.tablename, p.policyname) = (e.schema_name, e.table_name, e.isolation)),
    '{public}'::name[],
    format('%s applies to every role (PUBLIC)', e.isolation)
)
FROM expected_policies AS e ORDER BY e.schema_name, e.table_name;

SELECT policy_roles_are(schema_name, table_name, trusted, trusted_roles,
    format('%s applies only to %s', trusted, array_to_string(trusted_roles, ', ')))
FROM expected_policies ORDER BY schema_name, table_name;

SELECT is(
    (SELECT ARRAY[p.permissive, p.cmd, p.qual, p.with_check] FROM pg_catalog.pg_policies AS p
     WHERE (p.schemaname, p.tablename, p.policyname) = (e.schema_name, e.table_name, e.isolation)),
    ARRAY['PERMISSIVE', 'ALL', '(tenant_id = ( SELECT aos.current_tenant() AS current_tenant))',
          '(tenant_id = ( SELECT aos.current_tenant() AS current_tenant))'],
    format('%s: every command, rows and new rows of aos.current_tenant() only', e.isolation)
)
FROM expected_policies AS e ORDER BY e.schema_name, e.table_name;

SELECT is(
    (SELECT ARRAY[p.permissive, p.cmd, p.qual, p.with_check] FROM pg_catalog.pg_policies AS p
     WHERE (p.schemaname, p.tablename, p.policyname) = (e.schema_name, e.table_name, e.trusted)),
    ARRAY['PERMISSIVE', e.trusted_cmd, 'true', CASE WHEN e.trusted_cmd = 'SELECT' THEN NULL ELSE 'true' END],
    format('%s: %s, every tenant', e.trusted, CASE e.trusted_cmd WHEN 'ALL' THEN 'every command' ELSE e.trusted_cmd END)
)
FROM expected_policies AS e ORDER BY e.schema_name, e.table_name;

-- Data-driven from the contract: a role the contract scopes to one tenant
-- (operator, api, scenario) is in no policy but the isolation ones.
SELECT is_empty(
    $$
    SELECT p.schemaname, p.tablename, p.policyname, r.role_name
    FROM pg_catalog.pg_policies AS p
    JOIN aos.contract_roles AS r ON r.role_name = ANY (p.roles)
    WHERE r.tenant_scoped
    $$,
    'no tenant-scoped role of aos.contract_roles is named in any policy'
);

SELECT is_empty(
    $$
    SELECT p.schemaname, p.tablename, p.policyname FROM pg_catalog.pg_policies AS p
    WHERE p.schemaname IN ('aos', 'activity', 'incidents', 'policies', 'api') AND p.permissive <> 'PERMISSIVE'
    $$,
    'no restrictive policy exists (isolation relies on the permissive pair above)'
);

-- aos.bi_logins: a BI login may read its own mapping (aos.reader_tenant()
-- reads it as the caller), never another login's. session_user, not
-- current_user: SET ROLE cannot change it.
SELECT set_eq(
    $$
    SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api') AND c.relrowsecurity
    $$,
    $$ SELECT schema_name::text, table_name::text FROM expected_policies UNION ALL VALUES ('aos', 'bi_logins') $$,
    'row-level security is enabled on exactly the tenant tables, the outbox and aos.bi_logins'
);

SELECT policies_are('aos', 'bi_logins', ARRAY['bi_logins_own_row'::name],
    'aos.bi_logins has exactly the policy bi_logins_own_row');

SELECT is(
    (SELECT p.roles FROM pg_catalog.pg_policies AS p
     WHERE (p.schemaname, p.tablename, p.policyname) = ('aos', 'bi_logins', 'bi_logins_own_row')),
    '{public}'::name[],
    'bi_logins_own_row applies to every role (PUBLIC)'
);

SELECT is(
    (SELECT ARRAY[p.permissive, p.cmd, p.qual, p.with_check] FROM pg_catalog.pg_policies AS p
     WHERE (p.schemaname, p.tablename, p.policyname) = ('aos', 'bi_logins', 'bi_logins_own_row')),
    ARRAY['PERMISSIVE', 'SELECT', '(login_oid = (to_regrole(quote_ident((SESSION_USER)::text)))::oid)', NULL],
    'bi_logins_own_row: SELECT only, the row of the session''s login only'
);

SELECT * FROM finish();
ROLLBACK;
