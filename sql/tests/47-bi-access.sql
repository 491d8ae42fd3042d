-- Who reads the analytics (README.md, Analytics views for BI tools): aos_bi reads both materialized views
-- across tenants and nothing else; a tenant BI login (member of aos_bi_tenant,
-- mapped in aos.bi_logins by session_user) reads the tenant views, its own
-- tenant only, and cannot widen them with aos.tenant_id or a JWT claim, nor
-- read the materialized views or any table; a BI login with no mapping gets
-- 28000, whatever tenant it sets, and no tenant BI login may read the api's
-- views (*_api, which trust aos.tenant_id); aos_api reads its own views
-- (*_api) of its aos.tenant_id, 28000 without one, and not the tenant BI
-- logins' views (*_tenant).
BEGIN;

SELECT aos.register_tenant(t) FROM (VALUES ('t1'), ('t2')) AS v (t);

-- t1: three runs, two failures (two incidents); t2: two runs, one failure.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, created_at) VALUES
    ('t1', 'r1', 'agent-a', 'succeeded', NULL, '2024-10-01 00:00:00+00'),
    ('t1', 'r2', 'agent-a', 'failed', 'BUDGET_EXCEEDED', '2024-10-01 01:00:00+00'),
    ('t1', 'r3', 'agent-a', 'failed', 'CANCELLED', '2024-10-01 02:00:00+00'),
    ('t2', 'r1', 'agent-z', 'succeeded', NULL, '2024-10-01 00:00:00+00'),
    ('t2', 'r2', 'agent-z', 'failed', 'CANCELLED', '2024-10-01 01:00:00+00');
REFRESH MATERIALIZED VIEW activity.v_runs_o2;
REFRESH MATERIALIZED VIEW incidents.v_incidents_o2;

-- Tenant BI logins of this transaction (roles are cluster-wide; ROLLBACK drops them).
CREATE ROLE aos_test47_bi_t1 LOGIN;
CREATE ROLE aos_test47_bi_t2 LOGIN;
CREATE ROLE aos_test47_bi_unmapped LOGIN;
GRANT aos_bi_tenant TO aos_test47_bi_t1, aos_test47_bi_t2, aos_test47_bi_unmapped;
INSERT INTO aos.bi_logins (login, tenant_id) VALUES ('aos_test47_bi_t1', 't1'), ('aos_test47_bi_t2', 't2');

-- Every base table of the five schemas: no reader of the analytics may read one.
CREATE TEMP TABLE base_tables (rel regclass PRIMARY KEY) ON COMMIT DROP;
GRANT SELECT ON base_tables TO PUBLIC;
INSERT INTO base_tables
SELECT c.oid FROM pg_class AS c
WHERE c.relnamespace IN ('aos'::regnamespace, 'activity'::regnamespace, 'incidents'::regnamespace,
                         'policies'::regnamespace)
  AND c.relkind IN ('r', 'p')
  -- the refresh log is aos_bi's to read, the login map the tenant readers' (their own row)
  AND c.oid NOT IN ('aos.view_refreshes'::regclass, 'aos.bi_logins'::regclass);

-- Reads that must be refused: who, as a role (SET ROLE) or as the session
-- user (SET SESSION AUTHORIZATION), with which tenant.
CREATE TEMP TABLE refused (
    n serial, who name, session boolean, tenant text, sql text, errcode text, description text
) ON COMMIT DROP;
GRANT SELECT ON refused TO PUBLIC;
INSERT INTO refused (who, session, tenant, sql, errcode, description)
SELECT w.who, w.session, 't1', format('SELECT FROM %s LIMIT 0', b.rel), '42501',
       format('%s cannot read %s (42501)', w.who, b.rel)
FROM base_tables AS b
CROSS JOIN (VALUES ('aos_bi'::name, FALSE, 1), ('aos_test47_bi_t1', TRUE, 2)) AS w (who, session, o)
ORDER BY w.o, b.rel::text;
INSERT INTO refused (who, session, tenant, sql, errcode, description) VALUES
    ('aos_bi', FALSE, 't1', 'SELECT FROM activity.v_runs_o2_tenant', '42501',
     'aos_bi cannot read the tenant view activity.v_runs_o2_tenant (42501)'),
    ('aos_bi', FALSE, 't1', 'SELECT FROM incidents.v_incidents_o2_tenant', '42501',
     'aos_bi cannot read the tenant view incidents.v_incidents_o2_tenant (42501)'),
    ('aos_bi', FALSE, 't1', 'SELECT FROM activity.v_runs_o2_api', '42501',
     'aos_bi cannot read the api view activity.v_runs_o2_api (42501)'),
    ('aos_bi', FALSE, 't1', 'SELECT FROM incidents.v_incidents_o2_api', '42501',
     'aos_bi cannot read the api view incidents.v_incidents_o2_api (42501)'),
    ('aos_bi', FALSE, 't1', 'SELECT api.activity_runs()', '42501', 'aos_bi cannot call the facades (42501)'),
    ('aos_bi', FALSE, 't1', 'REFRESH MATERIALIZED VIEW activity.v_runs_o2', '42501',
     'aos_bi cannot refresh the view it reads (42501: owner only)'),
    ('aos_test47_bi_t1', TRUE, NULL, 'SELECT FROM activity.v_runs_o2', '42501',
     'a tenant BI login cannot read the materialized view activity.v_runs_o2 (every tenant) (42501)'),
    ('aos_test47_bi_t1', TRUE, NULL, 'SELECT FROM incidents.v_incidents_o2', '42501',
     'a tenant BI login cannot read the materialized view incidents.v_incidents_o2 (every tenant) (42501)'),
    ('aos_test47_bi_t1', TRUE, 't1', 'SELECT api.incidents()', '42501',
     'a tenant BI login cannot call the facades (42501)'),
    -- The api views filter on aos.tenant_id, which a login can set: a BI
    -- login setting another tenant must not get there.
    ('aos_test47_bi_t1', TRUE, 't2', 'SELECT FROM activity.v_runs_o2_api', '42501',
     'a tenant BI login cannot read the api view activity.v_runs_o2_api, with any aos.tenant_id (42501)'),
    ('aos_test47_bi_t1', TRUE, 't2', 'SELECT FROM incidents.v_incidents_o2_api', '42501',
     'a tenant BI login cannot read the api view incidents.v_incidents_o2_api, with any aos.tenant_id (42501)'),
    ('aos_test47_bi_unmapped', TRUE, 't1', 'SELECT FROM activity.v_runs_o2_api', '42501',
     'a BI login without a mapping cannot fall back on the api view activity.v_runs_o2_api (42501)'),
    ('aos_test47_bi_unmapped', TRUE, 't1', 'SELECT FROM incidents.v_incidents_o2_api', '42501',
     'a BI login without a mapping cannot fall back on the api view incidents.v_incidents_o2_api (42501)'),
    ('aos_test47_bi_t1', TRUE, NULL, $$INSERT INTO aos.bi_logins (login, tenant_id) VALUES ('aos_test47_bi_unmapped', 't2')$$,
     '42501', 'a tenant BI login cannot map a login to a tenant (42501)'),
    ('aos_test47_bi_t1', TRUE, NULL, $$UPDATE aos.bi_logins SET tenant_id = 't2'$$, '42501',
     'a tenant BI login cannot remap itself (42501)'),
    ('aos_test47_bi_unmapped', TRUE, NULL, 'SELECT FROM activity.v_runs_o2_tenant', '28000',
     'a BI login without a mapping and without a tenant gets 28000 from activity.v_runs_o2_tenant'),
    ('aos_test47_bi_unmapped', TRUE, NULL, 'SELECT FROM incidents.v_incidents_o2_tenant', '28000',
     'a BI login without a mapping and without a tenant gets 28000 from incidents.v_incidents_o2_tenant'),
    ('aos_test47_bi_unmapped', TRUE, 't1', 'SELECT FROM activity.v_runs_o2_tenant', '28000',
     'a BI login without a mapping gets 28000 even with aos.tenant_id set: it cannot pick its tenant'),
    ('aos_test47_bi_unmapped', TRUE, 't1', 'SELECT FROM incidents.v_incidents_o2_tenant', '28000',
     'a BI login without a mapping gets 28000 from incidents.v_incidents_o2_tenant even with aos.tenant_id set'),
    ('aos_api', FALSE, NULL, 'SELECT FROM activity.v_runs_o2_api', '28000',
     'aos_api without a tenant gets 28000 from the api view activity.v_runs_o2_api'),
    ('aos_api', FALSE, NULL, 'SELECT FROM incidents.v_incidents_o2_api', '28000',
     'aos_api without a tenant gets 28000 from the api view incidents.v_incidents_o2_api'),
    ('aos_api', FALSE, 't1', 'SELECT FROM activity.v_runs_o2_tenant', '42501',
     'aos_api cannot read the tenant BI view activity.v_runs_o2_tenant (42501)'),
    ('aos_api', FALSE, 't1', 'SELECT FROM incidents.v_incidents_o2_tenant', '42501',
     'aos_api cannot read the tenant BI view incidents.v_incidents_o2_tenant (42501)'),
    ('aos_api', FALSE, 't1', 'SELECT FROM activity.v_runs_o2', '42501',
     'aos_api cannot read the materialized view activity.v_runs_o2 directly (42501)'),
    ('aos_api', FALSE, 't1', 'SELECT FROM incidents.v_incidents_o2', '42501',
     'aos_api cannot read the materialized view incidents.v_incidents_o2 directly (42501)');

CREATE FUNCTION pg_temp.refusals() RETURNS SETOF text
LANGUAGE plpgsql AS $fn$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT * FROM refused ORDER BY n LOOP
        IF c.session THEN
            EXECUTE format('SET LOCAL SESSION AUTHORIZATION %I', c.who);
        ELSE
            EXECUTE format('SET LOCAL ROLE %I', c.who);
        END IF;
        PERFORM set_config('aos.tenant_id', coalesce(c.tenant, ''), TRUE);
        RETURN NEXT throws_ok(c.sql, c.errcode, NULL, c.description);
        RESET SESSION AUTHORIZATION;
        RESET ROLE;
        PERFORM set_config('aos.tenant_id', '', TRUE);
    END LOOP;
END
$fn$;

-- What each reader sees of both views: tenant and row count.
CREATE FUNCTION pg_temp.seen(p_runs regclass, p_incidents regclass) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    v_runs text;
    v_incidents text;
BEGIN
    EXECUTE format($$SELECT string_agg(tenant_id || ':' || n, ' ' ORDER BY tenant_id)
                     FROM (SELECT tenant_id, count(*) AS n FROM %s GROUP BY tenant_id) AS x$$, p_runs)
    INTO v_runs;
    EXECUTE format($$SELECT string_agg(tenant_id || ':' || n, ' ' ORDER BY tenant_id)
                     FROM (SELECT tenant_id, count(*) AS n FROM %s GROUP BY tenant_id) AS x$$, p_incidents)
    INTO v_incidents;
    RETURN format('runs %s; incidents %s', v_runs, v_incidents);
END
$fn$;

SELECT plan(
    4           -- catalog: what aos_bi and aos_bi_tenant may read
    + 1         -- aos_bi reads every tenant
    + 7         -- tenant BI logins
    + 2         -- aos_api
    + (SELECT count(*)::int FROM refused)
);

-- ------------------------------------------------------------ catalog
SELECT set_eq(
    $$SELECT c.oid::regclass::text FROM pg_class AS c
      WHERE c.relnamespace IN ('aos'::regnamespace, 'activity'::regnamespace, 'incidents'::regnamespace,
                               'policies'::regnamespace, 'api'::regnamespace)
        AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND has_table_privilege('aos_bi', c.oid, 'SELECT')$$,
    $$VALUES ('activity.v_runs_o2'), ('incidents.v_incidents_o2'), ('aos.view_refreshes')$$,
    'aos_bi may SELECT the two materialized views (and the refresh log, aos.view_refreshes) and nothing else'
);
SELECT set_eq(
    $$SELECT c.oid::regclass::text FROM pg_class AS c
      WHERE c.relnamespace IN ('aos'::regnamespace, 'activity'::regnamespace, 'incidents'::regnamespace,
                               'policies'::regnamespace, 'api'::regnamespace)
        AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND has_table_privilege('aos_bi_tenant', c.oid, 'SELECT')$$,
    $$VALUES ('activity.v_runs_o2_tenant'), ('incidents.v_incidents_o2_tenant'), ('aos.bi_logins')$$,
    'aos_bi_tenant may SELECT the two tenant views (and its row of aos.bi_logins) and nothing else'
);
SELECT is_empty(
    $$SELECT c.oid::regclass, p FROM pg_class AS c, unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p,
             unnest(ARRAY['aos_bi', 'aos_bi_tenant']) AS r
      WHERE c.relnamespace IN ('aos'::regnamespace, 'activity'::regnamespace, 'incidents'::regnamespace,
                               'policies'::regnamespace, 'api'::regnamespace)
        AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND has_table_privilege(r, c.oid, p)$$,
    'aos_bi and aos_bi_tenant may write nothing'
);
SELECT results_eq(
    $$SELECT rolname::text COLLATE "default", rolcanlogin, rolbypassrls FROM pg_roles
      WHERE rolname IN ('aos_bi', 'aos_bi_tenant') ORDER BY 1$$,
    $$VALUES ('aos_bi', FALSE, FALSE), ('aos_bi_tenant', FALSE, FALSE)$$,
    'aos_bi and aos_bi_tenant are group roles (NOLOGIN, no BYPASSRLS)'
);

-- ------------------------------------------------------------ aos_bi
SET LOCAL ROLE aos_bi;
SELECT is(
    pg_temp.seen('activity.v_runs_o2', 'incidents.v_incidents_o2'),
    'runs t1:3 t2:2; incidents t1:2 t2:1',
    'aos_bi reads both materialized views across tenants, with no tenant set'
);
RESET ROLE;

-- ------------------------------------------------------------ tenant BI logins
SET LOCAL SESSION AUTHORIZATION aos_test47_bi_t1;
SELECT is(
    pg_temp.seen('activity.v_runs_o2_tenant', 'incidents.v_incidents_o2_tenant'),
    'runs t1:3; incidents t1:2',
    'the t1 BI login sees its tenant''s rows only, with no tenant set (its mapping decides)'
);
SELECT set_config('aos.tenant_id', 't2', TRUE);
SELECT is(
    pg_temp.seen('activity.v_runs_o2_tenant', 'incidents.v_incidents_o2_tenant'),
    'runs t1:3; incidents t1:2',
    'set_config(''aos.tenant_id'', ''t2'') does not widen or move its view: still t1 only'
);
SELECT set_config('aos.tenant_id', '', TRUE);
SELECT set_config('request.jwt.claims', '{"tenant_id": "t2"}', TRUE);
SELECT is(
    pg_temp.seen('activity.v_runs_o2_tenant', 'incidents.v_incidents_o2_tenant'),
    'runs t1:3; incidents t1:2',
    'neither does a JWT tenant_id claim: still t1 only'
);
SELECT set_config('request.jwt.claims', '', TRUE);
SELECT results_eq(
    'SELECT login::text COLLATE "default", tenant_id FROM aos.bi_logins',
    $$VALUES ('aos_test47_bi_t1', 't1')$$,
    'the t1 BI login sees its own mapping only'
);
SELECT is(
    (SELECT count(*)::int FROM activity.v_runs_o2_tenant WHERE tenant_id = 't2'),
    0,
    'asking the tenant view for t2 rows finds none'
);
RESET SESSION AUTHORIZATION;

SET LOCAL SESSION AUTHORIZATION aos_test47_bi_t2;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT is(
    pg_temp.seen('activity.v_runs_o2_tenant', 'incidents.v_incidents_o2_tenant'),
    'runs t2:2; incidents t2:1',
    'the t2 BI login sees t2''s rows only, even with aos.tenant_id set to t1'
);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET SESSION AUTHORIZATION;

-- A login mapped after the fact sees its tenant at once.
INSERT INTO aos.bi_logins (login, tenant_id) VALUES ('aos_test47_bi_unmapped', 't2');
SET LOCAL SESSION AUTHORIZATION aos_test47_bi_unmapped;
SELECT is(
    pg_temp.seen('activity.v_runs_o2_tenant', 'incidents.v_incidents_o2_tenant'),
    'runs t2:2; incidents t2:1',
    'once mapped, a BI login sees its tenant'
);
RESET SESSION AUTHORIZATION;
DELETE FROM aos.bi_logins WHERE login = 'aos_test47_bi_unmapped';

-- ------------------------------------------------------------ aos_api
SET LOCAL ROLE aos_api;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT is(
    pg_temp.seen('activity.v_runs_o2_api', 'incidents.v_incidents_o2_api'),
    'runs t1:3; incidents t1:2',
    'aos_api with aos.tenant_id t1 reads t1''s rows of the api views only'
);
SELECT set_config('aos.tenant_id', 't2', TRUE);
SELECT is(
    pg_temp.seen('activity.v_runs_o2_api', 'incidents.v_incidents_o2_api'),
    'runs t2:2; incidents t2:1',
    'aos_api with aos.tenant_id t2 reads t2''s rows only'
);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

-- ------------------------------------------------------------ refused reads
SELECT * FROM pg_temp.refusals();

SELECT * FROM finish();
ROLLBACK;
