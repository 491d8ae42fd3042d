-- The contract as data (docs/contract.md): the aos.contract_* tables hold the
-- domains, tables, roles, grants, links and facades it describes, and agree with the live catalog.
BEGIN;

SELECT plan(16);

SELECT set_eq(
    'SELECT domain, schema_name FROM aos.contract_domains',
    $$ VALUES ('activity', 'activity'), ('incidents', 'incidents'), ('policies', 'policies'), ('platform', 'aos') $$,
    'aos.contract_domains: the three domains in their schemas, and the platform core in aos'
);

-- contract_tables ------------------------------------------------------------

SELECT set_eq(
    'SELECT schema_name, table_name, domain, kind, tenant_scoped FROM aos.contract_tables',
    $$ VALUES
        ('aos', 'tenants', 'platform', 'table', TRUE),
        ('activity', 'runs', 'activity', 'table', TRUE),
        ('activity', 'aos_traces', 'activity', 'table', TRUE),
        ('activity', 'aos_trace_steps', 'activity', 'table', TRUE),
        ('activity', 'v_runs_o2', 'activity', 'materialized_view', TRUE),
        ('incidents', 'incidents', 'incidents', 'table', TRUE),
        ('incidents', 'incident_events', 'incidents', 'table', TRUE),
        ('incidents', 'incident_evidence', 'incidents', 'table', TRUE),
        ('incidents', 'failure_classes', 'incidents', 'reference', FALSE),
        ('incidents', 'v_incidents_o2', 'incidents', 'materialized_view', TRUE),
        ('policies', 'policy_proposals', 'policies', 'table', TRUE),
        ('policies', 'policy_rules', 'policies', 'table', TRUE),
        ('policies', 'prevention_records', 'policies', 'table', TRUE),
        ('policies', 'default_guardrails', 'policies', 'reference', FALSE),
        ('aos', 'events', 'platform', 'outbox', TRUE),
        -- 0010: the incidents each proposal gathers, and the outbox's batches
        -- and wake-up row (platform plumbing, no tenant data).
        ('policies', 'proposal_incidents', 'policies', 'table', TRUE),
        ('aos', 'event_ticks', 'platform', 'table', FALSE),
        ('aos', 'event_wakeup', 'platform', 'table', FALSE),
        -- The read side (0008, sql/views): the refresh log and the BI login
        -- map belong to the platform; the tenant-filtered views (*_tenant for
        -- tenant BI logins, *_api for the api facades) to the domain of the
        -- analytics view they filter.
        ('aos', 'view_refreshes', 'platform', 'table', FALSE),
        ('aos', 'bi_logins', 'platform', 'table', FALSE),
        ('activity', 'v_runs_o2_tenant', 'activity', 'view', TRUE),
        ('incidents', 'v_incidents_o2_tenant', 'incidents', 'view', TRUE),
        ('activity', 'v_runs_o2_api', 'activity', 'view', TRUE),
        ('incidents', 'v_incidents_o2_api', 'incidents', 'view', TRUE),
        -- 0017: the functions a gateway exposing schema api serves to aos_api.
        ('aos', 'api_endpoints', 'platform', 'view', FALSE)
    $$,
    'aos.contract_tables lists the tables, views and the outbox with their domain and kind'
);

-- Every table and view of the domain schemas is listed (the contract's own
-- aos.contract_* tables are its metadata, not domain data).
SELECT is_empty(
    $$
    SELECT n.nspname, c.relname FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname IN (SELECT schema_name FROM aos.contract_domains) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND NOT (n.nspname = 'aos' AND c.relname LIKE 'contract\_%')
    EXCEPT
    SELECT schema_name, table_name FROM aos.contract_tables
    $$,
    'every table and view of the domain schemas is listed in aos.contract_tables'
);

SELECT is_empty(
    $$
    SELECT t.schema_name, t.table_name FROM aos.contract_tables AS t
    WHERE t.kind IN ('table', 'reference', 'outbox')
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_class AS c
                      WHERE c.oid = to_regclass(format('%I.%I', t.schema_name, t.table_name))
                        AND c.relkind IN ('r', 'p'))
    $$,
    'every table, reference table and outbox listed in aos.contract_tables exists as a table'
);

SELECT is_empty(
    $$
    SELECT t.schema_name, t.table_name FROM aos.contract_tables AS t
    WHERE t.kind IN ('materialized_view', 'view')
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_class AS c
                      WHERE c.oid = to_regclass(format('%I.%I', t.schema_name, t.table_name))
                        AND c.relkind = CASE t.kind WHEN 'materialized_view' THEN 'm' ELSE 'v' END)
    $$,
    'every materialized view (and view) listed in aos.contract_tables exists as one'
);

-- The one exception: aos.bi_logins names the tenant of each BI login (keyed
-- by login, row-level security by session_user), so it has a tenant_id
-- column without being tenant data (no tenant-first key, no isolation policy).
SELECT is_empty(
    $$
    SELECT t.schema_name, t.table_name FROM aos.contract_tables AS t
    JOIN aos.contract_domains AS d USING (domain)
    WHERE d.schema_name <> t.schema_name
       OR t.tenant_scoped IS DISTINCT FROM EXISTS (
              SELECT FROM pg_catalog.pg_attribute AS a
              WHERE a.attrelid = to_regclass(format('%I.%I', t.schema_name, t.table_name))
                AND a.attname = 'tenant_id' AND NOT a.attisdropped)
          AND to_regclass(format('%I.%I', t.schema_name, t.table_name)) IS NOT NULL
          AND (t.schema_name, t.table_name) <> ('aos', 'bi_logins')
    $$,
    'each listed table lives in its domain''s schema, and is tenant_scoped exactly when it has a tenant_id column '
    || '(but aos.bi_logins, which maps logins to tenants)'
);

-- contract_roles, contract_links, contract_effects ---------------------------

SELECT set_eq(
    'SELECT role_name, writes_domain, tenant_scoped FROM aos.contract_roles',
    $$ VALUES
        ('aos_owner', NULL, FALSE),
        ('aos_worker', 'activity', FALSE),
        ('aos_incident_engine', 'incidents', FALSE),
        ('aos_proposal_engine', 'policies', FALSE),
        ('aos_policy_engine', 'policies', FALSE),
        ('aos_operator', NULL, TRUE),
        ('aos_api', NULL, TRUE),
        ('aos_bi', NULL, FALSE),
        ('aos_bi_tenant', NULL, TRUE),
        ('aos_scenario', 'activity', TRUE),
        ('aos_maintenance', NULL, FALSE)
    $$,
    'aos.contract_roles lists the nine roles of the contract, tenant BI (0008) and operations (0018), the domain each writes and whether '
    || 'it is tenant-scoped'
);

SELECT is_empty(
    $$
    SELECT role_name FROM aos.contract_roles
    EXCEPT SELECT rolname::text FROM pg_catalog.pg_roles WHERE NOT rolcanlogin
    $$,
    'every role of aos.contract_roles exists and is NOLOGIN'
);

SELECT set_eq(
    'SELECT link_name, from_schema, from_table, from_columns, to_schema, to_table, to_columns FROM aos.contract_links',
    $$ VALUES
        ('incidents_source_run_fk', 'incidents', 'incidents', '{tenant_id,source_run_id}'::text[],
         'activity', 'runs', '{tenant_id,run_id}'::text[]),
        ('incidents_llm_run_fk', 'incidents', 'incidents', '{tenant_id,llm_run_id}', 'activity', 'runs', '{tenant_id,id}'),
        ('policy_proposals_triggering_incident_fk', 'policies', 'policy_proposals', '{tenant_id,triggering_incident_id}',
         'incidents', 'incidents', '{tenant_id,id}'),
        ('policy_proposals_triggering_run_fk', 'policies', 'policy_proposals', '{tenant_id,triggering_run_id}',
         'activity', 'runs', '{tenant_id,run_id}'),
        ('prevention_records_run_fk', 'policies', 'prevention_records', '{tenant_id,run_id}',
         'activity', 'runs', '{tenant_id,run_id}'),
        ('incident_evidence_run_fk', 'incidents', 'incident_evidence', '{tenant_id,run_id}',
         'activity', 'runs', '{tenant_id,run_id}'),
        ('proposal_incidents_incident_fk', 'policies', 'proposal_incidents', '{tenant_id,incident_id}',
         'incidents', 'incidents', '{tenant_id,id}')
    $$,
    'aos.contract_links lists the cross-domain links and the proposals'' incident links, tenant_id first'
);

SELECT is_empty(
    $$
    SELECT l.link_name FROM aos.contract_links AS l
    JOIN aos.contract_tables AS f ON (f.schema_name, f.table_name) = (l.from_schema, l.from_table)
    JOIN aos.contract_tables AS t ON (t.schema_name, t.table_name) = (l.to_schema, l.to_table)
    WHERE f.domain = t.domain
    $$,
    'every contract link crosses from one domain to another'
);

SELECT set_eq(
    'SELECT cause, effect, engine, engine_role, effect_schema, effect_table, effect_columns FROM aos.contract_effects',
    $$ VALUES
        ('run reaches failed', 'incident (+ detected event)', 'IncidentEngine', 'aos_incident_engine',
         'incidents', 'incidents', NULL::text[]),
        ('incident with severity high or critical', 'proposal, status pending', 'PolicyProposalEngine',
         'aos_proposal_engine', 'policies', 'policy_proposals', NULL),
        ('incident with severity high or critical', 'link to the pending proposal of its rule (+ count)',
         'PolicyProposalEngine', 'aos_proposal_engine', 'policies', 'proposal_incidents', NULL),
        ('proposal approved', 'rule (source = proposal)', 'PolicyEngine', 'aos_policy_engine',
         'policies', 'policy_rules', NULL),
        ('rule or guardrail violated', 'prevention record', 'PolicyEngine', 'aos_policy_engine',
         'policies', 'prevention_records', NULL),
        ('rule or guardrail violated', 'runs.policy_violation = true', 'PolicyEngine', 'aos_policy_engine',
         'activity', 'runs', '{policy_violation}')
    $$,
    'aos.contract_effects holds the five propagation rows and the proposals'' incident links'
);

-- Each engine role can write its effect: new rows, or exactly its columns.
SELECT is_empty(
    $$
    SELECT e.cause, e.effect FROM aos.contract_effects AS e
    WHERE CASE WHEN e.effect_columns IS NULL
        THEN NOT has_table_privilege(e.engine_role, format('%I.%I', e.effect_schema, e.effect_table), 'INSERT')
        ELSE has_table_privilege(e.engine_role, format('%I.%I', e.effect_schema, e.effect_table), 'UPDATE')
          OR EXISTS (SELECT FROM unnest(e.effect_columns) AS col
                     WHERE NOT has_column_privilege(e.engine_role, format('%I.%I', e.effect_schema, e.effect_table),
                                                    col, 'UPDATE'))
    END
    $$,
    'each engine role of aos.contract_effects may write its effect (INSERT, or UPDATE of exactly the effect columns)'
);

-- XD-004: write grants stay inside the grantee's domain, except the
-- PolicyEngine's runs.policy_violation, and the engines' appends to the
-- outbox (every engine effect appends its event): INSERT only, only
-- on a table of kind outbox, only for a role that owns an engine.
SELECT is_empty(
    $$
    SELECT g.role_name, g.schema_name, g.table_name, g.privilege
    FROM aos.contract_grants AS g
    JOIN aos.contract_tables AS t USING (schema_name, table_name)
    JOIN aos.contract_roles AS r USING (role_name)
    WHERE g.privilege IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
      AND t.domain IS DISTINCT FROM r.writes_domain
      AND NOT (g.role_name = 'aos_policy_engine' AND (g.schema_name, g.table_name) = ('activity', 'runs')
               AND g.privilege = 'UPDATE' AND g.column_names = '{policy_violation}')
      AND NOT (t.kind = 'outbox' AND g.privilege = 'INSERT' AND g.column_names IS NULL
               AND g.role_name IN (SELECT engine_role FROM aos.contract_effects))
    $$,
    'no contract grant gives a role write access outside its writes_domain '
    || '(but runs.policy_violation, and engines appending to the outbox)'
);

-- contract_facades, contract_facade_reads -------------------------------------

SELECT set_eq(
    'SELECT function_name, endpoint, domain FROM aos.contract_facades',
    $$ VALUES
        ('api.activity_runs', '/rpc/activity_runs', 'activity'),
        ('api.activity_run', '/rpc/activity_run', 'activity'),
        ('api.activity_run_evidence', '/rpc/activity_run_evidence', 'activity'),
        ('api.incidents', '/rpc/incidents', 'incidents'),
        ('api.incident', '/rpc/incident', 'incidents'),
        ('api.incident_evidence', '/rpc/incident_evidence', 'incidents'),
        ('api.policy_proposals', '/rpc/policy_proposals', 'policies'),
        ('api.policy_proposal', '/rpc/policy_proposal', 'policies')
    $$,
    'aos.contract_facades lists the eight facades with the route a gateway exposing api serves each at'
);

SELECT set_eq(
    'SELECT function_name, schema_name, table_name FROM aos.contract_facade_reads',
    $$
    SELECT f AS function_name, split_part(t, '.', 1) AS schema_name, split_part(t, '.', 2) AS table_name
    FROM (VALUES
        -- Each analytics view is read through the api's tenant-filtered view
        -- (*_api, never the tenant BI logins' *_tenant): materialized views
        -- have no row-level security.
        ('api.activity_runs', '{activity.runs,activity.aos_traces,activity.v_runs_o2,activity.v_runs_o2_api}'::text[]),
        ('api.activity_run', '{activity.runs,activity.aos_traces,activity.v_runs_o2,activity.v_runs_o2_api}'),
        -- The evidence facades and a proposal's detail also read the links
        -- between proposals and incidents (0010).
        ('api.activity_run_evidence', '{activity.runs,activity.aos_traces,activity.v_runs_o2,activity.v_runs_o2_api,'
            'incidents.incidents,policies.policy_proposals,policies.prevention_records,policies.proposal_incidents}'),
        -- incident_events goes beyond the facade's base tables: it is the timeline[]
        -- the incident_evidence shape requires, and it is the facades' own domain.
        ('api.incidents', '{incidents.incidents,incidents.incident_events,incidents.incident_evidence,'
            'incidents.v_incidents_o2,incidents.v_incidents_o2_api}'),
        ('api.incident', '{incidents.incidents,incidents.incident_events,incidents.incident_evidence,'
            'incidents.v_incidents_o2,incidents.v_incidents_o2_api}'),
        ('api.incident_evidence', '{incidents.incidents,incidents.incident_events,incidents.incident_evidence,'
            'incidents.v_incidents_o2,incidents.v_incidents_o2_api,activity.runs,policies.policy_proposals,'
            'policies.proposal_incidents}'),
        ('api.policy_proposals', '{policies.policy_proposals,policies.policy_rules}'),
        ('api.policy_proposal', '{policies.policy_proposals,policies.policy_rules,incidents.incidents,activity.runs,'
            'policies.proposal_incidents}')
    ) AS v (f, tables)
    CROSS JOIN LATERAL unnest(v.tables) AS t
    $$,
    'aos.contract_facade_reads lists what each facade may read'
);

-- A facade crosses domains only along contract links: from a table of its
-- domain to the table it reads, or on through a table of another domain it
-- reads already (api.activity_run_evidence reaches the proposal links
-- of a run's incidents: run -> incident -> link).
SELECT is_empty(
    $$
    WITH RECURSIVE reached (function_name, schema_name, table_name) AS (
        SELECT r.function_name, r.schema_name, r.table_name
        FROM aos.contract_facade_reads AS r
        JOIN aos.contract_facades AS f USING (function_name)
        JOIN aos.contract_tables AS t USING (schema_name, table_name)
        WHERE t.domain = f.domain
           OR EXISTS (
               SELECT FROM aos.contract_links AS l
               JOIN aos.contract_tables AS lf ON (lf.schema_name, lf.table_name) = (l.from_schema, l.from_table)
               JOIN aos.contract_tables AS lt ON (lt.schema_name, lt.table_name) = (l.to_schema, l.to_table)
               WHERE ((l.from_schema, l.from_table) = (r.schema_name, r.table_name) AND lt.domain = f.domain)
                  OR ((l.to_schema, l.to_table) = (r.schema_name, r.table_name) AND lf.domain = f.domain))
        UNION
        SELECT r.function_name, r.schema_name, r.table_name
        FROM reached AS x
        JOIN aos.contract_facade_reads AS r ON r.function_name = x.function_name
        JOIN aos.contract_links AS l
            ON ((l.from_schema, l.from_table) = (r.schema_name, r.table_name)
                AND (l.to_schema, l.to_table) = (x.schema_name, x.table_name))
            OR ((l.to_schema, l.to_table) = (r.schema_name, r.table_name)
                AND (l.from_schema, l.from_table) = (x.schema_name, x.table_name))
    )
    SELECT r.function_name, r.schema_name, r.table_name FROM aos.contract_facade_reads AS r
    EXCEPT
    SELECT function_name, schema_name, table_name FROM reached
    $$,
    'every cross-domain read of a facade follows contract links from the facade''s domain, directly or through '
    || 'tables it reads'
);

SELECT * FROM finish();
ROLLBACK;
