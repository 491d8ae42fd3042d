-- The five schemas, their owner, and who may look inside which (migrations
-- 0002, 0007 and 0008): USAGE on aos for everyone, on each domain schema only
-- for the roles that work in it, CREATE for nobody but the owner.
BEGIN;

CREATE TEMP TABLE expected_schema_privs (schema_name name, role_name name, privs text[]) ON COMMIT DROP;
INSERT INTO expected_schema_privs
SELECT s.schema_name, r.role_name, coalesce(g.privs, '{}')
FROM (VALUES ('aos'), ('activity'), ('incidents'), ('policies'), ('api')) AS s (schema_name)
CROSS JOIN (VALUES
    ('aos_worker'), ('aos_incident_engine'), ('aos_proposal_engine'), ('aos_policy_engine'),
    ('aos_operator'), ('aos_api'), ('aos_bi'), ('aos_bi_tenant'), ('aos_scenario'), ('aos_maintenance')
) AS r (role_name)
LEFT JOIN (VALUES
    -- aos: granted to PUBLIC, so every role has it.
    ('aos', 'aos_worker', '{USAGE}'::text[]),
    ('aos', 'aos_incident_engine', '{USAGE}'),
    ('aos', 'aos_proposal_engine', '{USAGE}'),
    ('aos', 'aos_policy_engine', '{USAGE}'),
    ('aos', 'aos_operator', '{USAGE}'),
    ('aos', 'aos_api', '{USAGE}'),
    ('aos', 'aos_bi', '{USAGE}'),
    ('aos', 'aos_bi_tenant', '{USAGE}'),
    ('aos', 'aos_scenario', '{USAGE}'),
    ('aos', 'aos_maintenance', '{USAGE}'),
    ('activity', 'aos_worker', '{USAGE}'),
    ('activity', 'aos_policy_engine', '{USAGE}'),
    -- 0007: the IncidentEngine reads the runs that failed (by key, from its trigger).
    ('activity', 'aos_incident_engine', '{USAGE}'),
    ('activity', 'aos_bi', '{USAGE}'),
    ('activity', 'aos_scenario', '{USAGE}'),
    ('incidents', 'aos_incident_engine', '{USAGE}'),
    ('incidents', 'aos_proposal_engine', '{USAGE}'),
    ('incidents', 'aos_policy_engine', '{USAGE}'),
    ('incidents', 'aos_operator', '{USAGE}'),
    ('incidents', 'aos_bi', '{USAGE}'),
    ('incidents', 'aos_scenario', '{USAGE}'),
    -- 0007: the IncidentEngine reads prevention_records (it skips prevented failures).
    ('policies', 'aos_incident_engine', '{USAGE}'),
    ('policies', 'aos_proposal_engine', '{USAGE}'),
    ('policies', 'aos_policy_engine', '{USAGE}'),
    ('policies', 'aos_operator', '{USAGE}'),
    ('policies', 'aos_scenario', '{USAGE}'),
    -- 0008: the api facades run as the caller, so aos_api reads the domain
    -- tables its facades read (and the tenant-filtered views) itself; tenant BI
    -- reads the tenant-filtered analytics views of activity and incidents.
    ('activity', 'aos_api', '{USAGE}'),
    ('incidents', 'aos_api', '{USAGE}'),
    ('policies', 'aos_api', '{USAGE}'),
    ('activity', 'aos_bi_tenant', '{USAGE}'),
    ('incidents', 'aos_bi_tenant', '{USAGE}'),
    ('api', 'aos_api', '{USAGE}')
) AS g (schema_name, role_name, privs) ON g.schema_name = s.schema_name AND g.role_name = r.role_name;

SELECT plan(
    (SELECT count(DISTINCT schema_name)::int * 2 FROM expected_schema_privs)
    + (SELECT count(*)::int FROM expected_schema_privs)
    + 1
);

SELECT has_schema(schema_name, format('schema %s exists', schema_name))
FROM (SELECT DISTINCT schema_name FROM expected_schema_privs) AS s ORDER BY schema_name;

SELECT schema_owner_is(schema_name, 'aos_owner', format('schema %s is owned by aos_owner', schema_name))
FROM (SELECT DISTINCT schema_name FROM expected_schema_privs) AS s ORDER BY schema_name;

SELECT schema_privs_are(
    schema_name, role_name, privs,
    format('%s has %s on schema %s', role_name,
           CASE WHEN privs = '{}' THEN 'no privilege' ELSE array_to_string(privs, ', ') END, schema_name)
)
FROM expected_schema_privs ORDER BY schema_name, role_name;

-- PUBLIC is not a role pgTAP's schema_privs_are accepts: read the ACLs.
SELECT set_eq(
    $$
    SELECT n.nspname::text, a.privilege_type::text
    FROM pg_catalog.pg_namespace AS n
    CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS a
    WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api') AND a.grantee = 0
    $$,
    $$ VALUES ('aos', 'USAGE') $$,
    'PUBLIC has USAGE on schema aos only, and CREATE on none of the five schemas'
);

SELECT * FROM finish();
ROLLBACK;
