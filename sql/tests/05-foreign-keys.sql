-- Every foreign key, tenant_id first wherever both sides are tenant tables
-- (tenant-first): the six contract links between the domains and the proposal's
-- incident links (0010), the supporting keys, and the rows of
-- aos.contract_links, which must each be a real key.
BEGIN;

CREATE TEMP TABLE expected_fks (
    name name, from_schema name, from_table name, from_columns name[],
    to_schema name, to_table name, to_columns name[]
) ON COMMIT DROP;
INSERT INTO expected_fks VALUES
    -- The cross-domain links of the contract.
    ('incidents_source_run_fk', 'incidents', 'incidents', '{tenant_id,source_run_id}',
     'activity', 'runs', '{tenant_id,run_id}'),
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
     'incidents', 'incidents', '{tenant_id,id}'),
    -- Within a domain.
    ('aos_traces_run_fk', 'activity', 'aos_traces', '{tenant_id,run_id}', 'activity', 'runs', '{tenant_id,run_id}'),
    ('aos_trace_steps_trace_fk', 'activity', 'aos_trace_steps', '{tenant_id,trace_id}',
     'activity', 'aos_traces', '{tenant_id,trace_id}'),
    ('incident_events_incident_fk', 'incidents', 'incident_events', '{tenant_id,incident_id}',
     'incidents', 'incidents', '{tenant_id,id}'),
    ('incident_evidence_incident_fk', 'incidents', 'incident_evidence', '{tenant_id,incident_id}',
     'incidents', 'incidents', '{tenant_id,id}'),
    ('policy_rules_source_proposal_fk', 'policies', 'policy_rules', '{tenant_id,source_proposal_id}',
     'policies', 'policy_proposals', '{tenant_id,id}'),
    ('prevention_records_policy_rule_fk', 'policies', 'prevention_records', '{tenant_id,policy_rule_id}',
     'policies', 'policy_rules', '{tenant_id,id}'),
    ('proposal_incidents_proposal_fk', 'policies', 'proposal_incidents', '{tenant_id,proposal_id}',
     'policies', 'policy_proposals', '{tenant_id,id}'),
    -- default_guardrails is shared reference data: no tenant on its side.
    ('prevention_records_guardrail_fk', 'policies', 'prevention_records', '{guardrail_id}',
     'policies', 'default_guardrails', '{id}'),
    -- Every domain table belongs to a registered tenant: the tables without a
    -- tenant-first parent reference aos.tenants themselves. The others
    -- (traces, trace steps, incident events and evidence, prevention records,
    -- proposal links) inherit their parent's tenant through their tenant-first
    -- key (0010): a second key would only lock the tenant's row per row written.
    ('runs_tenant_fk', 'activity', 'runs', '{tenant_id}', 'aos', 'tenants', '{tenant_id}'),
    ('incidents_tenant_fk', 'incidents', 'incidents', '{tenant_id}', 'aos', 'tenants', '{tenant_id}'),
    ('policy_proposals_tenant_fk', 'policies', 'policy_proposals', '{tenant_id}', 'aos', 'tenants', '{tenant_id}'),
    ('policy_rules_tenant_fk', 'policies', 'policy_rules', '{tenant_id}', 'aos', 'tenants', '{tenant_id}'),
    -- And every tenant-facing BI login maps to a registered tenant (0008).
    ('bi_logins_tenant_fk', 'aos', 'bi_logins', '{tenant_id}', 'aos', 'tenants', '{tenant_id}'),
    -- The contract tables reference each other.
    ('contract_tables_domain_fk', 'aos', 'contract_tables', '{domain}', 'aos', 'contract_domains', '{domain}'),
    ('contract_links_from_fk', 'aos', 'contract_links', '{from_schema,from_table}',
     'aos', 'contract_tables', '{schema_name,table_name}'),
    ('contract_links_to_fk', 'aos', 'contract_links', '{to_schema,to_table}',
     'aos', 'contract_tables', '{schema_name,table_name}'),
    ('contract_roles_domain_fk', 'aos', 'contract_roles', '{writes_domain}', 'aos', 'contract_domains', '{domain}'),
    ('contract_grants_role_fk', 'aos', 'contract_grants', '{role_name}', 'aos', 'contract_roles', '{role_name}'),
    ('contract_grants_table_fk', 'aos', 'contract_grants', '{schema_name,table_name}',
     'aos', 'contract_tables', '{schema_name,table_name}'),
    ('contract_effects_engine_role_fk', 'aos', 'contract_effects', '{engine_role}',
     'aos', 'contract_roles', '{role_name}'),
    ('contract_effects_table_fk', 'aos', 'contract_effects', '{effect_schema,effect_table}',
     'aos', 'contract_tables', '{schema_name,table_name}'),
    ('contract_facades_domain_fk', 'aos', 'contract_facades', '{domain}', 'aos', 'contract_domains', '{domain}'),
    ('contract_facade_reads_facade_fk', 'aos', 'contract_facade_reads', '{function_name}',
     'aos', 'contract_facades', '{function_name}'),
    ('contract_facade_reads_table_fk', 'aos', 'contract_facade_reads', '{schema_name,table_name}',
     'aos', 'contract_tables', '{schema_name,table_name}');

-- Every foreign key of the five schemas as the catalog has it, columns in key order.
CREATE TEMP VIEW live_fks AS
SELECT con.conname AS name,
       fn.nspname AS from_schema, fc.relname AS from_table,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k (attnum, ord)
             JOIN pg_catalog.pg_attribute AS a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord) AS from_columns,
       tn.nspname AS to_schema, tc.relname AS to_table,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k (attnum, ord)
             JOIN pg_catalog.pg_attribute AS a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.ord) AS to_columns
FROM pg_catalog.pg_constraint AS con
JOIN pg_catalog.pg_class AS fc ON fc.oid = con.conrelid
JOIN pg_catalog.pg_namespace AS fn ON fn.oid = fc.relnamespace
JOIN pg_catalog.pg_class AS tc ON tc.oid = con.confrelid
JOIN pg_catalog.pg_namespace AS tn ON tn.oid = tc.relnamespace
WHERE con.contype = 'f' AND fn.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api');

SELECT plan(
    (SELECT count(*)::int FROM expected_fks)
    + 1
    + (SELECT count(*)::int FROM aos.contract_links)
    + 4
);

SELECT fk_ok(
    from_schema, from_table, from_columns, to_schema, to_table, to_columns,
    format('%s: %s.%s (%s) references %s.%s (%s)', name, from_schema, from_table, array_to_string(from_columns, ', '),
           to_schema, to_table, array_to_string(to_columns, ', '))
)
FROM expected_fks ORDER BY name;

-- Both directions, with the constraint names: a new, renamed or dropped key fails.
SELECT set_eq(
    'SELECT name, from_schema, from_table, from_columns, to_schema, to_table, to_columns FROM live_fks',
    'SELECT name, from_schema, from_table, from_columns, to_schema, to_table, to_columns FROM expected_fks',
    'the foreign keys of the five schemas are exactly the expected ones, by name and columns'
);

-- Data-driven: each contract link is a real foreign key, named after the link,
-- with exactly its column lists in that order (what `aosdb check` XD-002 relies on).
SELECT ok(
    EXISTS (
        SELECT FROM live_fks AS f
        WHERE f.name = l.link_name
          AND (f.from_schema, f.from_table, f.to_schema, f.to_table)
              = (l.from_schema, l.from_table, l.to_schema, l.to_table)
          AND f.from_columns::text[] = l.from_columns
          AND f.to_columns::text[] = l.to_columns
    ),
    format('contract link %s is the foreign key %s.%s (%s) -> %s.%s (%s)', l.link_name,
           l.from_schema, l.from_table, array_to_string(l.from_columns, ', '),
           l.to_schema, l.to_table, array_to_string(l.to_columns, ', '))
)
FROM aos.contract_links AS l ORDER BY l.link_name;

SELECT is(
    (SELECT count(*)::int FROM aos.contract_links),
    7,
    'aos.contract_links has the six cross-domain links and proposal_incidents_incident_fk'
);

-- Catalog-wide rules, so a key added later is held to them too.
SELECT is_empty(
    $$
    SELECT f.name FROM live_fks AS f
    WHERE EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                  WHERE a.attrelid = format('%I.%I', f.from_schema, f.from_table)::regclass
                    AND a.attname = 'tenant_id' AND NOT a.attisdropped)
      AND EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                  WHERE a.attrelid = format('%I.%I', f.to_schema, f.to_table)::regclass
                    AND a.attname = 'tenant_id' AND NOT a.attisdropped)
      AND (f.from_columns[1] <> 'tenant_id' OR f.to_columns[1] <> 'tenant_id')
    $$,
    'every foreign key between two tenant tables has tenant_id first on both sides'
);

-- A tenant table reaches aos.tenants either by its own tenant key or through a
-- parent: a key that starts with tenant_id, on NOT NULL columns only (so every
-- row has that parent), to a table that reaches aos.tenants in turn.
SELECT is_empty(
    $$
    WITH RECURSIVE reaches (schema_name, table_name) AS (
        SELECT f.from_schema, f.from_table FROM live_fks AS f
        WHERE f.from_columns = '{tenant_id}' AND (f.to_schema, f.to_table) = ('aos', 'tenants')
          AND f.to_columns = '{tenant_id}'
        UNION
        SELECT f.from_schema, f.from_table
        FROM live_fks AS f
        JOIN reaches AS r ON (r.schema_name, r.table_name) = (f.to_schema, f.to_table)
        WHERE f.from_columns[1] = 'tenant_id' AND f.to_columns[1] = 'tenant_id'
          AND NOT EXISTS (
              SELECT FROM unnest(f.from_columns) AS c (name)
              JOIN pg_catalog.pg_attribute AS a
                  ON a.attrelid = format('%I.%I', f.from_schema, f.from_table)::regclass AND a.attname = c.name
              WHERE NOT a.attnotnull)
    )
    SELECT format('%I.%I', t.schema_name, t.table_name)
    FROM aos.contract_tables AS t
    WHERE t.tenant_scoped AND t.kind = 'table' AND (t.schema_name, t.table_name) <> ('aos', 'tenants')
      AND (t.schema_name, t.table_name) NOT IN (SELECT r.schema_name::text, r.table_name::text FROM reaches AS r)
    $$,
    'every tenant-scoped table of aos.contract_tables references aos.tenants, itself or through a tenant-first parent'
);

-- The outbox takes its tenant from the row whose effect it records, which has
-- one already: an event locks no tenant row and references nothing.
SELECT is_empty(
    $$SELECT f.name FROM live_fks AS f WHERE (f.from_schema, f.from_table) = ('aos', 'events')$$,
    'the outbox aos.events has no foreign key'
);

SELECT * FROM finish();
ROLLBACK;
