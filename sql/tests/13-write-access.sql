-- What each role can actually do, statement by statement: every one of the
-- nine non-owner roles runs SELECT, INSERT, UPDATE, DELETE and TRUNCATE on
-- every table, materialized view and view of aos, activity, incidents and
-- policies. Only the operations listed below succeed; every other one fails
-- with 42501 (or, where no privilege could make it work and the role may use
-- the schema, with the error that says so: a view over a materialized view is
-- not updatable, 55000, and only tables can be truncated, 42809). So steps are append-only, runs are never
-- deleted, the worker cannot touch incidents or policies, engines write only
-- their own tables and append to the outbox (aos.events), aos_operator writes
-- (and reads) nothing directly, and the readers only read: aos_api what the
-- facades read (its tenant-filtered views *_api), aos_bi the
-- analytics views and their refresh log, aos_bi_tenant the tenant-filtered
-- views *_tenant. The outbox's ticks and wake-up row (aos.event_ticks,
-- aos.event_wakeup) are their owner's alone.
BEGIN;

CREATE TEMP TABLE allowed (role_name name, schema_name name, table_name name, verb text) ON COMMIT DROP;
INSERT INTO allowed
SELECT a.role_name, a.schema_name, a.table_name, v.verb
FROM (VALUES
    ('aos_worker', 'aos', 'tenants', '{SELECT}'::text[]),
    ('aos_worker', 'activity', 'runs', '{SELECT,INSERT,UPDATE}'),
    ('aos_worker', 'activity', 'aos_traces', '{SELECT,INSERT,UPDATE}'),
    ('aos_worker', 'activity', 'aos_trace_steps', '{SELECT,INSERT}'),
    ('aos_scenario', 'aos', 'tenants', '{SELECT}'),
    ('aos_scenario', 'activity', 'runs', '{SELECT,INSERT,UPDATE}'),
    ('aos_scenario', 'activity', 'aos_traces', '{SELECT,INSERT,UPDATE}'),
    ('aos_scenario', 'activity', 'aos_trace_steps', '{SELECT,INSERT}'),
    ('aos_incident_engine', 'incidents', 'failure_classes', '{SELECT}'),
    ('aos_incident_engine', 'incidents', 'incidents', '{SELECT,INSERT,UPDATE}'),
    ('aos_incident_engine', 'incidents', 'incident_events', '{SELECT,INSERT}'),
    ('aos_incident_engine', 'incidents', 'incident_evidence', '{SELECT,INSERT}'),
    ('aos_incident_engine', 'activity', 'runs', '{SELECT}'),
    ('aos_incident_engine', 'policies', 'prevention_records', '{SELECT}'),
    ('aos_incident_engine', 'aos', 'events', '{SELECT,INSERT}'),
    ('aos_proposal_engine', 'incidents', 'failure_classes', '{SELECT}'),
    ('aos_proposal_engine', 'incidents', 'incidents', '{SELECT}'),
    ('aos_proposal_engine', 'policies', 'policy_proposals', '{SELECT,INSERT,UPDATE}'),
    ('aos_proposal_engine', 'policies', 'proposal_incidents', '{SELECT,INSERT}'),
    ('aos_proposal_engine', 'policies', 'policy_rules', '{SELECT}'),
    ('aos_proposal_engine', 'aos', 'events', '{SELECT,INSERT}'),
    -- UPDATE of activity.runs only on policy_violation: see the end of the file.
    ('aos_policy_engine', 'activity', 'runs', '{SELECT}'),
    ('aos_policy_engine', 'activity', 'aos_traces', '{SELECT}'),
    ('aos_policy_engine', 'activity', 'aos_trace_steps', '{SELECT}'),
    ('aos_policy_engine', 'incidents', 'failure_classes', '{SELECT}'),
    ('aos_policy_engine', 'policies', 'default_guardrails', '{SELECT}'),
    ('aos_policy_engine', 'policies', 'policy_proposals', '{SELECT}'),
    ('aos_policy_engine', 'policies', 'policy_rules', '{SELECT,INSERT,UPDATE}'),
    ('aos_policy_engine', 'policies', 'prevention_records', '{SELECT,INSERT}'),
    ('aos_policy_engine', 'aos', 'events', '{SELECT,INSERT}'),
    -- 0008: the api facades read as the caller, through row-level security.
    ('aos_api', 'activity', 'runs', '{SELECT}'),
    ('aos_api', 'activity', 'aos_traces', '{SELECT}'),
    ('aos_api', 'incidents', 'incidents', '{SELECT}'),
    ('aos_api', 'incidents', 'incident_events', '{SELECT}'),
    ('aos_api', 'incidents', 'incident_evidence', '{SELECT}'),
    ('aos_api', 'policies', 'policy_proposals', '{SELECT}'),
    ('aos_api', 'policies', 'policy_rules', '{SELECT}'),
    ('aos_api', 'policies', 'prevention_records', '{SELECT}'),
    ('aos_api', 'policies', 'proposal_incidents', '{SELECT}'),
    -- Its own views of the analytics (*_api), not the tenant BI logins' (*_tenant).
    ('aos_api', 'activity', 'v_runs_o2_api', '{SELECT}'),
    ('aos_api', 'incidents', 'v_incidents_o2_api', '{SELECT}'),
    -- 0017: the list of what it is served over HTTP.
    ('aos_api', 'aos', 'api_endpoints', '{SELECT}'),
    -- BI reads the analytics views and when they were refreshed.
    ('aos_bi', 'activity', 'v_runs_o2', '{SELECT}'),
    ('aos_bi', 'incidents', 'v_incidents_o2', '{SELECT}'),
    ('aos_bi', 'aos', 'view_refreshes', '{SELECT}'),
    -- Tenant BI: the tenant-filtered views and its own login's tenant.
    ('aos_bi_tenant', 'activity', 'v_runs_o2_tenant', '{SELECT}'),
    ('aos_bi_tenant', 'incidents', 'v_incidents_o2_tenant', '{SELECT}'),
    ('aos_bi_tenant', 'aos', 'bi_logins', '{SELECT}')
) AS a (role_name, schema_name, table_name, verbs)
CROSS JOIN LATERAL unnest(a.verbs) AS v (verb);

-- One harmless statement per table and verb (it touches no row). INSERT and
-- UPDATE name only the columns a statement may write at all (not generated
-- columns, not GENERATED ALWAYS identities such as aos.events.seq), so the
-- only thing that can stop them is a missing privilege. Keys are immutable
-- and runs.policy_violation is the PolicyEngine's (0013, see
-- 51-immutable-keys.sql): INSERT leaves policy_violation out, UPDATE sets the
-- first column that is in no key.
CREATE TEMP TABLE attempts (
    role_name name, schema_name name, table_name name, verb text, sql text, denied_state text
) ON COMMIT DROP;
INSERT INTO attempts
SELECT r.role_name, t.schema_name, t.table_name, v.verb,
       CASE v.verb
           WHEN 'SELECT' THEN format('SELECT 1 FROM %I.%I WHERE FALSE', t.schema_name, t.table_name)
           WHEN 'INSERT' THEN format('INSERT INTO %1$I.%2$I (%3$s) SELECT %3$s FROM %1$I.%2$I WHERE FALSE',
                                     t.schema_name, t.table_name, t.insertable)
           WHEN 'UPDATE' THEN format('UPDATE %I.%I SET %I = %3$I WHERE FALSE', t.schema_name, t.table_name,
                                     t.first_column)
           WHEN 'DELETE' THEN format('DELETE FROM %I.%I WHERE FALSE', t.schema_name, t.table_name)
           WHEN 'TRUNCATE' THEN format('TRUNCATE %I.%I', t.schema_name, t.table_name)
       END,
       -- A role that may not even look into the schema is stopped there first.
       CASE
           WHEN NOT has_schema_privilege(r.role_name, t.schema_name, 'USAGE') THEN '42501'
           WHEN t.relkind = 'v' AND v.verb IN ('INSERT', 'UPDATE', 'DELETE') THEN '55000'
           WHEN t.relkind IN ('v', 'm') AND v.verb = 'TRUNCATE' THEN '42809'
           ELSE '42501'
       END
FROM (
    SELECT n.nspname AS schema_name, c.relname AS table_name, c.relkind,
           (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_catalog.pg_attribute AS a
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
              AND a.attidentity <> 'a'
              AND (c.oid, a.attname) <> ('activity.runs'::regclass, 'policy_violation')) AS insertable,
           (SELECT a.attname FROM pg_catalog.pg_attribute AS a
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
              AND a.attidentity <> 'a'
            ORDER BY EXISTS (SELECT FROM pg_catalog.pg_constraint AS k
                             WHERE k.conrelid = c.oid AND k.contype IN ('p', 'u', 'f')
                               AND a.attnum = ANY (k.conkey)), a.attnum
            LIMIT 1) AS first_column
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies') AND c.relkind IN ('r', 'p', 'v', 'm')
) AS t
CROSS JOIN (VALUES
    ('aos_worker'), ('aos_incident_engine'), ('aos_proposal_engine'), ('aos_policy_engine'),
    ('aos_operator'), ('aos_api'), ('aos_bi'), ('aos_bi_tenant'), ('aos_scenario')
) AS r (role_name)
CROSS JOIN (VALUES ('SELECT'), ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE')) AS v (verb);

SELECT plan((SELECT count(*)::int FROM attempts) + 1 + 3);

SELECT is(
    (SELECT count(*)::int FROM allowed AS l
     WHERE NOT EXISTS (SELECT FROM attempts AS t
                       WHERE (t.role_name, t.schema_name, t.table_name, t.verb)
                             = (l.role_name, l.schema_name, l.table_name, l.verb))),
    0,
    'every allowed operation names a real table or view'
);

SELECT CASE WHEN l.role_name IS NULL
    THEN throws_ok(format('SELECT aosdb_test.as_role(%L, %L)', t.role_name, t.sql), t.denied_state, NULL,
                   format('%s cannot %s %s.%s (%s)', t.role_name, t.verb, t.schema_name, t.table_name,
                          t.denied_state))
    ELSE lives_ok(format('SELECT aosdb_test.as_role(%L, %L)', t.role_name, t.sql),
                  format('%s can %s %s.%s', t.role_name, t.verb, t.schema_name, t.table_name))
END
FROM attempts AS t
LEFT JOIN allowed AS l USING (role_name, schema_name, table_name, verb)
ORDER BY t.role_name, t.schema_name, t.table_name, t.verb;

-- The PolicyEngine's one write outside its domain: runs.policy_violation.
SELECT lives_ok(
    $$SELECT aosdb_test.as_role('aos_policy_engine', 'UPDATE activity.runs SET policy_violation = TRUE WHERE FALSE')$$,
    'aos_policy_engine can UPDATE activity.runs.policy_violation'
);
SELECT throws_ok(
    $$SELECT aosdb_test.as_role('aos_policy_engine', 'UPDATE activity.runs SET status = ''failed'' WHERE FALSE')$$,
    '42501', NULL,
    'aos_policy_engine cannot UPDATE activity.runs.status (42501)'
);
SELECT throws_ok(
    $$SELECT aosdb_test.as_role('aos_policy_engine',
        'UPDATE activity.runs SET policy_violation = TRUE, goal = goal WHERE FALSE')$$,
    '42501', NULL,
    'aos_policy_engine cannot UPDATE policy_violation together with another column (42501)'
);

SELECT * FROM finish();
ROLLBACK;
