-- The privilege matrix (README.md, Roles; docs/contract.md, Grants), written out: for each of the nine
-- non-owner roles and each table, materialized view and view of aos,
-- activity, incidents and policies, exactly these table privileges (none
-- where not listed). aos_owner owns every relation instead. Column
-- privileges (expected_column_privs): keys are immutable, so every role that
-- updates a table updates a column list without its keys, and only the
-- PolicyEngine writes runs.policy_violation. The readers (aos_api, aos_bi,
-- aos_bi_tenant) hold SELECT and nothing else, anywhere.
BEGIN;

CREATE TEMP TABLE expected_table_privs (schema_name name, table_name name, role_name name, privs text[])
    ON COMMIT DROP;
INSERT INTO expected_table_privs
SELECT t.schema_name, t.table_name, r.role_name, coalesce(g.privs, '{}')
FROM (VALUES
    ('aos', 'tenants'), ('aos', 'contract_domains'), ('aos', 'contract_tables'), ('aos', 'contract_links'),
    ('aos', 'contract_roles'), ('aos', 'contract_grants'), ('aos', 'contract_effects'),
    ('aos', 'contract_facades'), ('aos', 'contract_facade_reads'), ('aos', 'events'),
    ('activity', 'runs'), ('activity', 'aos_traces'), ('activity', 'aos_trace_steps'),
    ('incidents', 'failure_classes'), ('incidents', 'incidents'), ('incidents', 'incident_events'),
    ('incidents', 'incident_evidence'),
    ('policies', 'default_guardrails'), ('policies', 'policy_proposals'), ('policies', 'policy_rules'),
    ('policies', 'prevention_records'),
    -- 0010: the outbox's ticks and wake-up row (its owner's alone: the outbox
    -- functions run as their caller, and only the owner may call them), and
    -- the incidents each proposal gathers.
    ('aos', 'event_ticks'), ('aos', 'event_wakeup'), ('policies', 'proposal_incidents'),
    -- The read side (0008, sql/views): the refresh log, the BI login map, the
    -- analytics views, their tenant-filtered views for tenant BI logins and
    -- the api facades' views of the caller's tenant.
    ('aos', 'view_refreshes'), ('aos', 'bi_logins'),
    ('activity', 'v_runs_o2'), ('activity', 'v_runs_o2_tenant'), ('activity', 'v_runs_o2_api'),
    ('incidents', 'v_incidents_o2'), ('incidents', 'v_incidents_o2_tenant'), ('incidents', 'v_incidents_o2_api'),
    -- 0017: the functions a gateway exposing schema api serves to aos_api.
    ('aos', 'api_endpoints')
) AS t (schema_name, table_name)
CROSS JOIN (VALUES
    ('aos_worker'), ('aos_incident_engine'), ('aos_proposal_engine'), ('aos_policy_engine'),
    ('aos_operator'), ('aos_api'), ('aos_bi'), ('aos_bi_tenant'), ('aos_scenario'), ('aos_maintenance')
) AS r (role_name)
LEFT JOIN (VALUES
    -- The WorkerRunner (and the scenario runner, which may do what it may)
    -- reads the tenant registry (aos.register_tenant adds to it), writes runs and traces, appends steps.
    -- INSERT and UPDATE of runs and UPDATE of traces are column privileges (below).
    ('aos', 'tenants', 'aos_worker', '{SELECT}'::text[]),
    ('aos', 'tenants', 'aos_scenario', '{SELECT}'),
    ('activity', 'runs', 'aos_worker', '{SELECT}'),
    ('activity', 'runs', 'aos_scenario', '{SELECT}'),
    ('activity', 'aos_traces', 'aos_worker', '{SELECT,INSERT}'),
    ('activity', 'aos_traces', 'aos_scenario', '{SELECT,INSERT}'),
    ('activity', 'aos_trace_steps', 'aos_worker', '{SELECT,INSERT}'),
    ('activity', 'aos_trace_steps', 'aos_scenario', '{SELECT,INSERT}'),
    -- Every engine appends its effects' events to the outbox (and
    -- reads it); nobody updates or deletes an event.
    ('aos', 'events', 'aos_incident_engine', '{SELECT,INSERT}'),
    ('aos', 'events', 'aos_proposal_engine', '{SELECT,INSERT}'),
    ('aos', 'events', 'aos_policy_engine', '{SELECT,INSERT}'),
    -- The PolicyEngine reads activity (and updates runs.policy_violation,
    -- a column privilege, see below).
    ('activity', 'runs', 'aos_policy_engine', '{SELECT}'),
    ('activity', 'aos_traces', 'aos_policy_engine', '{SELECT}'),
    ('activity', 'aos_trace_steps', 'aos_policy_engine', '{SELECT}'),
    -- Engines read the failure classes; only the IncidentEngine writes incidents.
    ('incidents', 'failure_classes', 'aos_incident_engine', '{SELECT}'),
    ('incidents', 'failure_classes', 'aos_proposal_engine', '{SELECT}'),
    ('incidents', 'failure_classes', 'aos_policy_engine', '{SELECT}'),
    ('incidents', 'incidents', 'aos_incident_engine', '{SELECT,INSERT}'),
    ('incidents', 'incidents', 'aos_proposal_engine', '{SELECT}'),
    ('incidents', 'incident_events', 'aos_incident_engine', '{SELECT,INSERT}'),
    ('incidents', 'incident_evidence', 'aos_incident_engine', '{SELECT,INSERT}'),
    -- The PolicyProposalEngine writes only proposals; the PolicyEngine rules
    -- and prevention records.
    ('policies', 'default_guardrails', 'aos_policy_engine', '{SELECT}'),
    ('policies', 'policy_proposals', 'aos_proposal_engine', '{SELECT,INSERT}'),
    -- It links each incident to its proposal once; a link is never changed.
    ('policies', 'proposal_incidents', 'aos_proposal_engine', '{SELECT,INSERT}'),
    ('policies', 'policy_proposals', 'aos_policy_engine', '{SELECT}'),
    ('policies', 'policy_rules', 'aos_policy_engine', '{SELECT,INSERT}'),
    ('policies', 'prevention_records', 'aos_policy_engine', '{SELECT,INSERT}'),
    -- Cross-domain reads of migration 0007: the IncidentEngine reads the runs
    -- that failed (by key, from its trigger) and skips failures the
    -- PolicyEngine prevented; approval returns the rule the PolicyEngine
    -- created for the proposal.
    ('activity', 'runs', 'aos_incident_engine', '{SELECT}'),
    ('policies', 'prevention_records', 'aos_incident_engine', '{SELECT}'),
    ('policies', 'policy_rules', 'aos_proposal_engine', '{SELECT}'),
    -- aos_operator holds no table privilege: it acts through functions.
    -- 0008: the api facades run as the caller (SECURITY INVOKER,
    -- STABLE), so aos_api reads what the facades may read, through row-level
    -- security (its own tenant), and writes nothing: not the steps, the
    -- reference tables, the registry, the outbox or the analytics views
    -- themselves (only the api views of its tenant, never the tenant BI
    -- logins' barrier views).
    ('activity', 'runs', 'aos_api', '{SELECT}'),
    ('activity', 'aos_traces', 'aos_api', '{SELECT}'),
    ('incidents', 'incidents', 'aos_api', '{SELECT}'),
    ('incidents', 'incident_events', 'aos_api', '{SELECT}'),
    ('incidents', 'incident_evidence', 'aos_api', '{SELECT}'),
    ('policies', 'policy_proposals', 'aos_api', '{SELECT}'),
    ('policies', 'policy_rules', 'aos_api', '{SELECT}'),
    ('policies', 'prevention_records', 'aos_api', '{SELECT}'),
    ('policies', 'proposal_incidents', 'aos_api', '{SELECT}'),
    ('activity', 'v_runs_o2_api', 'aos_api', '{SELECT}'),
    ('incidents', 'v_incidents_o2_api', 'aos_api', '{SELECT}'),
    ('aos', 'api_endpoints', 'aos_api', '{SELECT}'),
    -- The tenant BI views find their reader's tenant in aos.bi_logins
    -- (aos.reader_tenant(), as the caller; row-level security: own row only).
    ('aos', 'bi_logins', 'aos_bi_tenant', '{SELECT}'),
    -- BI reads the analytics views (every tenant) and when they
    -- were refreshed; tenant BI only the tenant-filtered views.
    ('activity', 'v_runs_o2', 'aos_bi', '{SELECT}'),
    ('incidents', 'v_incidents_o2', 'aos_bi', '{SELECT}'),
    ('aos', 'view_refreshes', 'aos_bi', '{SELECT}'),
    -- 0018: operations read when each view was refreshed (the procedures do the writing).
    ('aos', 'view_refreshes', 'aos_maintenance', '{SELECT}'),
    ('activity', 'v_runs_o2_tenant', 'aos_bi_tenant', '{SELECT}'),
    ('incidents', 'v_incidents_o2_tenant', 'aos_bi_tenant', '{SELECT}')
) AS g (schema_name, table_name, role_name, privs)
    ON (g.schema_name, g.table_name, g.role_name) = (t.schema_name, t.table_name, r.role_name);

-- The column privileges, each as its sorted column list (0013): every column
-- but the keys; for the worker and the scenario runner, not policy_violation.
CREATE TEMP TABLE expected_column_privs (role_name text, table_name text, privilege text, columns text[])
    ON COMMIT DROP;
INSERT INTO expected_column_privs
SELECT r.role_name, 'activity.runs', p.privilege,
       CASE p.privilege
           WHEN 'INSERT' THEN '{agent_id,attempts,completed_at,created_at,duration_ms,error_code,error_message,'
                              'estimated_cost_usd,goal,id,input_tokens,is_synthetic,output_tokens,run_id,'
                              'started_at,status,synthetic_scenario_id,tenant_id}'::text[]
           ELSE '{agent_id,attempts,completed_at,created_at,duration_ms,error_code,error_message,'
                 'estimated_cost_usd,goal,input_tokens,is_synthetic,output_tokens,started_at,status,'
                 'synthetic_scenario_id}'::text[]
       END
FROM (VALUES ('aos_worker'), ('aos_scenario')) AS r (role_name)
CROSS JOIN (VALUES ('INSERT'), ('UPDATE')) AS p (privilege)
UNION ALL
SELECT r.role_name, 'activity.aos_traces', 'UPDATE',
       '{completed_at,is_synthetic,metadata,started_at,status,synthetic_scenario_id}'::text[]
FROM (VALUES ('aos_worker'), ('aos_scenario')) AS r (role_name)
UNION ALL
VALUES
    ('aos_policy_engine', 'activity.runs', 'UPDATE', '{policy_violation}'::text[]),
    ('aos_incident_engine', 'incidents.incidents', 'UPDATE',
     '{acknowledged_at,acknowledged_by,category,cause_type,created_at,error_code,error_message,is_synthetic,'
     'lifecycle_state,resolution_method,resolution_notes,resolved_at,resolved_by,severity,synthetic_scenario_id,'
     'title}'),
    ('aos_proposal_engine', 'policies.policy_proposals', 'UPDATE',
     '{created_at,incident_count,is_synthetic,last_seen_at,proposal_name,proposal_type,proposed_rule,rationale,'
     'review_notes,reviewed_at,reviewed_by,status,synthetic_scenario_id}'),
    ('aos_policy_engine', 'policies.policy_rules', 'UPDATE',
     '{agent_id,conditions,created_at,enforcement,is_synthetic,name,retired_at,retired_by,rule_type,source,'
     'status,synthetic_scenario_id}');

SELECT plan(
    1
    + (SELECT count(*)::int FROM expected_table_privs)
    + (SELECT count(*)::int FROM pg_catalog.pg_attribute
       WHERE attrelid = 'activity.runs'::regclass AND attnum > 0 AND NOT attisdropped)
    + 6
);

SELECT set_eq(
    $$
    SELECT n.nspname, c.relname FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies') AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    $$,
    'SELECT DISTINCT schema_name, table_name FROM expected_table_privs',
    'the privilege matrix covers exactly the tables and views of aos, activity, incidents and policies'
);

SELECT table_privs_are(
    schema_name, table_name, role_name, privs,
    format('%s has %s on %s.%s', role_name,
           CASE WHEN privs = '{}' THEN 'no privilege' ELSE array_to_string(privs, ', ') END, schema_name, table_name)
)
FROM expected_table_privs ORDER BY schema_name, table_name, role_name;

-- The PolicyEngine may set runs.policy_violation and no other column
-- (has_column_privilege counts its table-level SELECT on every column).
SELECT column_privs_are(
    'activity', 'runs', a.attname, 'aos_policy_engine',
    CASE WHEN a.attname = 'policy_violation' THEN '{SELECT,UPDATE}'::name[] ELSE '{SELECT}'::name[] END,
    format('aos_policy_engine %s activity.runs.%s',
           CASE WHEN a.attname = 'policy_violation' THEN 'may update' ELSE 'may read but not update' END, a.attname)
)
FROM pg_catalog.pg_attribute AS a
WHERE a.attrelid = 'activity.runs'::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum;

SELECT set_eq(
    $$
    SELECT a.grantee::regrole::text, c.oid::regclass::text, att.attname::text, a.privilege_type::text
    FROM pg_catalog.pg_attribute AS att
    JOIN pg_catalog.pg_class AS c ON c.oid = att.attrelid
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL aclexplode(att.attacl) AS a
    WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api') AND att.attacl IS NOT NULL
    $$,
    'SELECT role_name, table_name, column_name, privilege FROM expected_column_privs, unnest(columns) AS column_name',
    'the column-level grants are exactly those of expected_column_privs'
);

-- No role but the owner may update a key: a column of a primary, unique or
-- foreign key of any table (the engines pair rows on them).
SELECT is_empty(
    $$
    SELECT r.rolname, c.oid::regclass, a.attname
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    CROSS JOIN pg_catalog.pg_roles AS r
    WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies') AND c.relkind IN ('r', 'p')
      AND r.rolname LIKE 'aos\_%' AND r.rolname <> 'aos_owner' AND NOT r.rolsuper
      AND EXISTS (SELECT FROM pg_catalog.pg_constraint AS k
                  WHERE k.conrelid = c.oid AND k.contype IN ('p', 'u', 'f') AND a.attnum = ANY (k.conkey))
      AND has_column_privilege(r.oid, c.oid, a.attnum, 'UPDATE')
    $$,
    'no role but aos_owner may update a column of a primary, unique or foreign key'
);

SELECT is_empty(
    $$
    SELECT c.oid::regclass, a.privilege_type
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) AS a
    WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api') AND a.grantee = 0
    $$,
    'PUBLIC holds no privilege on any table, view or sequence of the five schemas'
);

SELECT is_empty(
    $$
    SELECT c.oid::regclass, c.relowner::regrole
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api')
      AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND c.relowner <> 'aos_owner'::regrole
    $$,
    'every table, view and sequence of the five schemas is owned by aos_owner'
);

-- The scenario runner may do what aos_worker and aos_operator may, nothing more.
SELECT is_empty(
    $$
    SELECT c.oid::regclass, p.privilege
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    CROSS JOIN (VALUES ('SELECT'), ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'), ('REFERENCES'), ('TRIGGER'))
        AS p (privilege)
    WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api') AND c.relkind IN ('r', 'p', 'v', 'm')
      AND has_table_privilege('aos_scenario', c.oid, p.privilege)
      AND NOT has_table_privilege('aos_worker', c.oid, p.privilege)
      AND NOT has_table_privilege('aos_operator', c.oid, p.privilege)
    $$,
    'aos_scenario holds no table privilege that neither aos_worker nor aos_operator holds'
);

-- aos_api writes nothing, BI only reads: catalog-wide, so a grant
-- added later, in any of the five schemas, is held to it too.
SELECT is_empty(
    $$
    SELECT r.role_name, c.oid::regclass, p.privilege
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    CROSS JOIN (VALUES ('aos_api'), ('aos_bi'), ('aos_bi_tenant')) AS r (role_name)
    CROSS JOIN (VALUES ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'), ('REFERENCES'), ('TRIGGER')) AS p (privilege)
    WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api') AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND (has_table_privilege(r.role_name, c.oid, p.privilege)
           OR (p.privilege IN ('INSERT', 'UPDATE', 'REFERENCES')
               AND has_any_column_privilege(r.role_name, c.oid, p.privilege)))
    $$,
    'aos_api, aos_bi and aos_bi_tenant hold no privilege but SELECT on any table or view of the five schemas'
);

SELECT * FROM finish();
ROLLBACK;
