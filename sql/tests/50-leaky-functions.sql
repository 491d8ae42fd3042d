-- Leaky functions see one tenant only. A reader that may create functions
-- (TEMPORARY on the database; 0012 revokes it from PUBLIC, so this test grants
-- it inside its transaction) puts a cheap, non-LEAKPROOF function of its own in
-- the WHERE clause of every relation it may read: the planner runs the
-- cheapest qual first, unless a security barrier or row-level security keeps
-- the tenant filter ahead of it. The function records the tenant of every row
-- it is shown. Through every table and view aos_api, aos_scenario and a tenant
-- BI login may read, under plans forced to seq, index or bitmap scans, it sees
-- only its tenant t1, never t2; a plain view without a barrier shows that the
-- probe does leak where nothing stops it. The facades' answers to t1 name
-- nothing of t2. aos_operator reads no relation: it only calls actions.
BEGIN;
SET LOCAL client_min_messages = warning;  -- the probe's notices

SELECT aos.register_tenant(t) FROM (VALUES ('t1'), ('t2')) AS v (t);

-- Both tenants with failed runs (incidents, proposals, events) and traces; t2's
-- ids carry a marker a facade must never print to t1.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, created_at)
SELECT t, format('%s-run-%s', m, g), format('agent-%s', m), CASE WHEN g % 3 = 0 THEN 'failed' ELSE 'succeeded' END,
       CASE WHEN g % 3 = 0 THEN CASE WHEN g % 2 = 0 THEN 'EXECUTION_TIMEOUT' ELSE 'BUDGET_EXCEEDED' END END,
       '2024-10-01 00:00:00+00'::timestamptz + g * INTERVAL '1 minute'
FROM (VALUES ('t1', 'T1OWN'), ('t2', 'T2SECRET')) AS v (t, m), generate_series(1, 30) AS g;
INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id)
SELECT r.tenant_id, r.run_id || '-trace', r.run_id FROM activity.runs AS r;
REFRESH MATERIALIZED VIEW activity.v_runs_o2;
REFRESH MATERIALIZED VIEW incidents.v_incidents_o2;
ANALYZE activity.v_runs_o2;
ANALYZE incidents.v_incidents_o2;

-- A tenant BI login of t1 (roles are cluster-wide; ROLLBACK drops it).
CREATE ROLE aos_test50_bi_t1 LOGIN;
GRANT aos_bi_tenant TO aos_test50_bi_t1;
INSERT INTO aos.bi_logins (login, tenant_id) VALUES ('aos_test50_bi_t1', 't1');

-- The readers, as a role (SET ROLE) or as the session user (the BI login).
CREATE TEMP TABLE readers (who name PRIMARY KEY, session boolean) ON COMMIT DROP;
INSERT INTO readers VALUES ('aos_api', FALSE), ('aos_scenario', FALSE), ('aos_operator', FALSE),
                           ('aos_test50_bi_t1', TRUE);

-- Every relation of the five schemas with a tenant_id that a reader may read.
CREATE TEMP TABLE reachable (who name, rel regclass, PRIMARY KEY (who, rel)) ON COMMIT DROP;
INSERT INTO reachable
SELECT r.who, c.oid FROM readers AS r, pg_class AS c
WHERE c.relnamespace IN ('aos'::regnamespace, 'activity'::regnamespace, 'incidents'::regnamespace,
                         'policies'::regnamespace, 'api'::regnamespace)
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND has_table_privilege(r.who, c.oid, 'SELECT')
  AND EXISTS (SELECT FROM pg_attribute AS a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped);

-- Plans a reader may force on itself.
CREATE TEMP TABLE plans (n int PRIMARY KEY, settings text) ON COMMIT DROP;
INSERT INTO plans VALUES
    (1, ''),
    (2, 'SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_indexonlyscan = off'),
    (3, 'SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off'),
    (4, 'SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off; SET LOCAL enable_indexonlyscan = off');

-- Temporary objects are revoked from PUBLIC: a reader cannot create the probe by default.
CREATE FUNCTION pg_temp.try_as(p_who name, p_sql text) RETURNS text
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM set_config('role', p_who, TRUE);
    EXECUTE p_sql;
    PERFORM set_config('role', 'none', TRUE);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$fn$;

SELECT plan(
    1                                                       -- PUBLIC has no TEMPORARY
    + 1                                                     -- the probe leaks through a plain view
    + 3                                                     -- what is reachable
    + (SELECT count(*)::int FROM reachable) * (SELECT count(*)::int FROM plans)
    + 1                                                     -- the probe saw t1's rows
    + 8                                                     -- facades
);

SELECT is(
    pg_temp.try_as('aos_api', $$CREATE FUNCTION pg_temp.nope() RETURNS int LANGUAGE sql AS 'SELECT 1'$$),
    '42501',
    'aos_api cannot create a function in pg_temp: 0012 revoked TEMPORARY from PUBLIC (42501)'
);

-- This transaction only: the readers may create temporary objects, as on a
-- database where nobody revoked it.
DO $do$
BEGIN
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO aos_api, aos_scenario, aos_operator, aos_test50_bi_t1',
                   current_database());
END
$do$;

-- The probe, created by aos_api itself: as cheap as a function can be, STABLE
-- (so it may be pushed anywhere a STABLE qual may go), not LEAKPROOF (only a
-- superuser may mark one). It appends the tenant of each row it is shown to
-- the transaction's setting test50.seen and raises a NOTICE with it.
SET LOCAL ROLE aos_api;
CREATE FUNCTION pg_temp.leak(p_tenant text) RETURNS boolean
LANGUAGE plpgsql STABLE COST 0.0000001 AS $fn$
BEGIN
    PERFORM set_config('test50.seen', coalesce(current_setting('test50.seen', TRUE), '') || p_tenant || ' ', TRUE);
    RAISE NOTICE 'leak: %', p_tenant;
    RETURN TRUE;
END
$fn$;
RESET ROLE;

-- The tenants the probe saw (distinct, sorted) through one query, as one reader.
CREATE FUNCTION pg_temp.probe(p_who name, p_session boolean, p_settings text, p_sql text) RETURNS text[]
LANGUAGE plpgsql AS $fn$
DECLARE
    v_seen text;
    v_stmt text;
BEGIN
    IF p_session THEN
        EXECUTE format('SET LOCAL SESSION AUTHORIZATION %I', p_who);
    ELSE
        EXECUTE format('SET LOCAL ROLE %I', p_who);
    END IF;
    PERFORM set_config('aos.tenant_id', 't1', TRUE);
    PERFORM set_config('test50.seen', '', TRUE);
    FOR v_stmt IN SELECT x FROM unnest(string_to_array(p_settings, ';')) AS x WHERE btrim(x) <> '' LOOP
        EXECUTE v_stmt;
    END LOOP;
    EXECUTE p_sql;
    v_seen := current_setting('test50.seen', TRUE);
    RESET enable_seqscan;
    RESET enable_indexscan;
    RESET enable_bitmapscan;
    RESET enable_indexonlyscan;
    PERFORM set_config('aos.tenant_id', '', TRUE);
    RESET SESSION AUTHORIZATION;
    RESET ROLE;
    RETURN ARRAY(SELECT DISTINCT t FROM unnest(string_to_array(btrim(v_seen), ' ')) AS t WHERE t <> '' ORDER BY t);
END
$fn$;

-- ------------------------------------------------------------ the probe works
-- A plain view like the api views but without the barrier: the probe runs
-- before its tenant filter and sees t2.
CREATE VIEW pg_temp.plain_runs AS
SELECT v.* FROM activity.v_runs_o2 AS v WHERE v.tenant_id = (SELECT aos.current_tenant());
GRANT SELECT ON pg_temp.plain_runs TO aos_api;
SELECT is(
    pg_temp.probe('aos_api', FALSE, (SELECT settings FROM plans WHERE n = 2),
                  'SELECT count(*) FROM pg_temp.plain_runs AS x WHERE pg_temp.leak(x.tenant_id)'),
    '{t1,t2}'::text[],
    'the probe works: through a view without a security barrier, a seq scan shows it t2''s rows'
);

-- ------------------------------------------------------------ what the readers may read
SELECT set_eq(
    $$SELECT rel::text FROM reachable WHERE who = 'aos_api'$$,
    $$VALUES ('activity.runs'), ('activity.aos_traces'), ('incidents.incidents'), ('incidents.incident_events'),
             ('incidents.incident_evidence'), ('policies.policy_proposals'), ('policies.policy_rules'),
             ('policies.prevention_records'), ('policies.proposal_incidents'), ('activity.v_runs_o2_api'),
             ('incidents.v_incidents_o2_api')$$,
    'aos_api reads the base tables (row-level security) and the two api views'
);
SELECT set_eq(
    $$SELECT rel::text FROM reachable WHERE who = 'aos_test50_bi_t1'$$,
    $$VALUES ('aos.bi_logins'), ('activity.v_runs_o2_tenant'), ('incidents.v_incidents_o2_tenant')$$,
    'a tenant BI login reads the two tenant views and aos.bi_logins'
);
SELECT is_empty(
    $$SELECT rel FROM reachable WHERE who = 'aos_operator'$$,
    'aos_operator reads no relation with tenant rows (it calls actions)'
);

-- ------------------------------------------------------------ every relation, every plan
CREATE TEMP TABLE probes (who name, rel regclass, n int, seen text[]) ON COMMIT DROP;
INSERT INTO probes
SELECT r.who, r.rel, p.n,
       pg_temp.probe(r.who, rd.session, p.settings,
                     format('SELECT count(*) FROM %s AS x WHERE pg_temp.leak(x.tenant_id)', r.rel))
FROM reachable AS r JOIN readers AS rd USING (who), plans AS p;

SELECT is(
    array_remove(pr.seen, 't1'), '{}'::text[],
    format('%s: a leaky function in the WHERE clause of %s (plan %s) sees no other tenant''s rows', pr.who, pr.rel, pr.n)
)
FROM probes AS pr ORDER BY pr.who, pr.rel::text, pr.n;

SELECT set_eq(
    $$SELECT DISTINCT who::text, rel::text FROM probes WHERE seen = '{t1}'
      AND rel IN ('activity.v_runs_o2_api'::regclass, 'incidents.v_incidents_o2_api'::regclass,
                  'activity.v_runs_o2_tenant'::regclass, 'incidents.v_incidents_o2_tenant'::regclass)$$,
    $$VALUES ('aos_api', 'activity.v_runs_o2_api'), ('aos_api', 'incidents.v_incidents_o2_api'),
             ('aos_test50_bi_t1', 'activity.v_runs_o2_tenant'),
             ('aos_test50_bi_t1', 'incidents.v_incidents_o2_tenant')$$,
    'and it did run: through each view it was shown t1''s rows'
);

-- ------------------------------------------------------------ the facades
CREATE TEMP TABLE t1_ids ON COMMIT DROP AS
SELECT (SELECT id FROM incidents.incidents WHERE tenant_id = 't1' ORDER BY created_at LIMIT 1) AS incident_id,
       (SELECT id FROM policies.policy_proposals WHERE tenant_id = 't1' ORDER BY created_at LIMIT 1) AS proposal_id;
GRANT SELECT ON t1_ids TO aos_api;

SET LOCAL ROLE aos_api;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT ok(
    strpos(f.answer::text, 'T1OWN') > 0 AND strpos(f.answer::text, 'T2SECRET') = 0 AND strpos(f.answer::text, '"t2"') = 0,
    format('%s answers t1 with t1''s rows and nothing of t2', f.fn)
)
FROM (
    SELECT 'api.activity_runs' AS fn, api.activity_runs(page_size => 200) AS answer
    UNION ALL SELECT 'api.activity_run', api.activity_run('T1OWN-run-3')
    UNION ALL SELECT 'api.activity_run_evidence', api.activity_run_evidence('T1OWN-run-3')
    UNION ALL SELECT 'api.incidents', api.incidents(page_size => 200)
    UNION ALL SELECT 'api.incident', api.incident((SELECT incident_id FROM t1_ids))
    UNION ALL SELECT 'api.incident_evidence', api.incident_evidence((SELECT incident_id FROM t1_ids))
    UNION ALL SELECT 'api.policy_proposals', api.policy_proposals(page_size => 200)
    UNION ALL SELECT 'api.policy_proposal', api.policy_proposal((SELECT proposal_id FROM t1_ids))
) AS f
ORDER BY f.fn;
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
