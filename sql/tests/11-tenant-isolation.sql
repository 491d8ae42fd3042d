-- Row-level security at work: a tenant-scoped caller (aos_scenario) sees and
-- writes only the tenant of aos.current_tenant(), and with no tenant set its
-- reads fail with 28000 instead of returning every tenant; the trusted worker
-- and engine roles see every tenant without one. The readers of 0008 too:
-- aos_api reads the tables and its tenant-filtered views (*_api) of its
-- tenant only, a tenant BI login the tenant-filtered views (*_tenant) of the
-- tenant aos.bi_logins maps it to, and aos_bi every tenant's analytics.
BEGIN;

INSERT INTO aos.tenants (tenant_id, name) VALUES ('t1', 'Tenant one'), ('t2', 'Tenant two');
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES
    ('t1', 'r1', 'agent', 'running'), ('t2', 'r2', 'agent', 'running');
INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id) VALUES ('t1', 'tr1', 'r1'), ('t2', 'tr2', 'r2');
INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status) VALUES
    ('t1', 'tr1', 0, 'search', 'success'), ('t2', 'tr2', 0, 'search', 'success');
INSERT INTO incidents.incidents (tenant_id, source_run_id, title, severity, category) VALUES
    ('t1', 'r1', 'incident one', 'low', 'manual'), ('t2', 'r2', 'incident two', 'low', 'manual');
INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule)
SELECT t, 'proposal', 'retry_policy',
       '{"rule_type": "error_code", "conditions": {"error_codes": ["STEP_FAILURE"]}, "enforcement": "warn"}'
FROM (VALUES ('t1'), ('t2')) AS v (t);
INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id)
SELECT i.tenant_id, i.id, p.id
FROM incidents.incidents AS i JOIN policies.policy_proposals AS p ON p.tenant_id = i.tenant_id;
INSERT INTO aos.events (event, tenant_id, subject_id) VALUES ('run_failed', 't1', 'r1'), ('run_failed', 't2', 'r2');

-- The activity-side tables aos_scenario may read, each holding rows of both tenants.
CREATE TEMP TABLE scenario_tables (tbl text) ON COMMIT DROP;
INSERT INTO scenario_tables VALUES
    ('aos.tenants'), ('activity.runs'), ('activity.aos_traces'), ('activity.aos_trace_steps');
GRANT SELECT ON scenario_tables TO PUBLIC;

-- Tables the api facades read as the caller, each holding rows of both tenants.
CREATE TEMP TABLE api_tables (tbl text) ON COMMIT DROP;
INSERT INTO api_tables VALUES
    ('activity.runs'), ('activity.aos_traces'), ('incidents.incidents'), ('policies.policy_proposals'),
    ('policies.proposal_incidents');
GRANT SELECT ON api_tables TO PUBLIC;

-- The analytics views hold the rows above.
REFRESH MATERIALIZED VIEW activity.v_runs_o2;
REFRESH MATERIALIZED VIEW incidents.v_incidents_o2;

SELECT plan(
    (SELECT count(*)::int FROM scenario_tables) * 4  -- t1 reads, no-tenant reads, JWT reads, worker reads
    + 1 + 6 + 1                                      -- aos_scenario: t2 read, writes, untouched rows
    + 2                                              -- aos_worker with a tenant set
    + 3                                              -- engines read every tenant
    + 3                                              -- engines read the outbox of every tenant
    + 2                                              -- aos_policy_engine flags a run of any tenant
    + (SELECT count(*)::int FROM api_tables) + 2 + 2 -- aos_api: t1 reads, tenant views, no-tenant reads
    + 3                                              -- tenant BI: its login's tenant, its own mapping
    + 1                                              -- aos_bi: every tenant
);

-- aos_scenario with tenant t1.
SET LOCAL ROLE aos_scenario;
SELECT set_config('aos.tenant_id', 't1', TRUE);

SELECT results_eq(
    format('SELECT DISTINCT tenant_id FROM %s', tbl),
    $$ VALUES ('t1'::text) $$,
    format('aos_scenario with tenant t1 sees only t1 rows of %s', tbl)
)
FROM scenario_tables ORDER BY tbl;

SELECT set_config('aos.tenant_id', 't2', TRUE);
SELECT results_eq(
    'SELECT run_id FROM activity.runs',
    $$ VALUES ('r2'::text) $$,
    'aos_scenario with tenant t2 sees only the run of t2'
);
SELECT set_config('aos.tenant_id', 't1', TRUE);

SELECT throws_ok(
    $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t2', 'r-x', 'agent', 'queued')$$,
    '42501', NULL,
    'aos_scenario with tenant t1 cannot insert a run for t2 (row-level security)'
);
SELECT lives_ok(
    $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t1', 'r-x', 'agent', 'queued')$$,
    'aos_scenario with tenant t1 can insert a run for t1'
);
SELECT throws_ok(
    $$INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id) VALUES ('t2', 'tr-x', 'r2')$$,
    '42501', NULL,
    'aos_scenario with tenant t1 cannot insert a trace for t2'
);
SELECT throws_ok(
    $$INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status)
      VALUES ('t2', 'tr2', 1, 'search', 'success')$$,
    '42501', NULL,
    'aos_scenario with tenant t1 cannot insert a step for t2'
);
SELECT throws_ok(
    $$INSERT INTO aos.tenants (tenant_id, name) VALUES ('t3', 'Tenant three')$$,
    '42501', NULL,
    'aos_scenario with tenant t1 cannot register another tenant'
);
SELECT throws_ok(
    $$UPDATE activity.runs SET tenant_id = 't2' WHERE tenant_id = 't1' AND run_id = 'r1'$$,
    '42501', NULL,
    'aos_scenario with tenant t1 cannot move its run to t2'
);

-- Writes aimed at the other tenant find nothing.
UPDATE activity.runs SET goal = 'overwritten' WHERE tenant_id = 't2';
RESET ROLE;
SELECT is(
    (SELECT goal FROM activity.runs WHERE tenant_id = 't2' AND run_id = 'r2'),
    NULL,
    'an UPDATE by aos_scenario with tenant t1 leaves the rows of t2 untouched'
);
SET LOCAL ROLE aos_scenario;

-- No tenant: an error, never every tenant.
SELECT set_config('aos.tenant_id', '', TRUE);
SELECT throws_ok(
    format('SELECT * FROM %s', tbl), '28000', NULL,
    format('aos_scenario with no tenant set cannot read %s (28000)', tbl)
)
FROM scenario_tables ORDER BY tbl;

-- The PostgREST fallback: the tenant_id claim of request.jwt.claims.
SELECT set_config('request.jwt.claims', '{"tenant_id": "t2", "role": "aos_scenario"}', TRUE);
SELECT results_eq(
    format('SELECT DISTINCT tenant_id FROM %s', tbl),
    $$ VALUES ('t2'::text) $$,
    format('aos_scenario with only a JWT tenant_id claim t2 sees only t2 rows of %s', tbl)
)
FROM scenario_tables ORDER BY tbl;
SELECT set_config('request.jwt.claims', '', TRUE);
RESET ROLE;

-- aos_api with tenant t1: the tables and its tenant-filtered views of t1 only.
SET LOCAL ROLE aos_api;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT results_eq(
    format('SELECT DISTINCT tenant_id FROM %s', tbl),
    $$ VALUES ('t1'::text) $$,
    format('aos_api with tenant t1 sees only t1 rows of %s', tbl)
)
FROM api_tables ORDER BY tbl;
SELECT results_eq(
    'SELECT DISTINCT tenant_id FROM activity.v_runs_o2_api',
    $$ VALUES ('t1'::text) $$,
    'aos_api with tenant t1 sees only t1 rows of activity.v_runs_o2_api'
);
SELECT results_eq(
    'SELECT DISTINCT tenant_id FROM incidents.v_incidents_o2_api',
    $$ VALUES ('t1'::text) $$,
    'aos_api with tenant t1 sees only t1 rows of incidents.v_incidents_o2_api'
);
SELECT set_config('aos.tenant_id', '', TRUE);
SELECT throws_ok('SELECT * FROM activity.runs', '28000', NULL,
    'aos_api with no tenant set cannot read activity.runs (28000)');
SELECT throws_ok('SELECT * FROM activity.v_runs_o2_api', '28000', NULL,
    'aos_api with no tenant set cannot read activity.v_runs_o2_api (28000)');
RESET ROLE;

-- A tenant BI login: the tenant aos.bi_logins maps its login to (which it
-- cannot change), not the setting (which it could); its own mapping only.
-- The map holds roles that exist (0015): the other login is created here (ROLLBACK drops it).
CREATE ROLE aos_pgtap_other_login LOGIN;
INSERT INTO aos.bi_logins (login, tenant_id) VALUES (session_user, 't2'), ('aos_pgtap_other_login', 't1');
SET LOCAL ROLE aos_bi_tenant;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT results_eq(
    'SELECT DISTINCT tenant_id FROM activity.v_runs_o2_tenant',
    $$ VALUES ('t2'::text) $$,
    'a tenant BI login mapped to t2 sees only t2 rows of activity.v_runs_o2_tenant, even with tenant t1 set'
);
SELECT results_eq(
    'SELECT DISTINCT tenant_id FROM incidents.v_incidents_o2_tenant',
    $$ VALUES ('t2'::text) $$,
    'a tenant BI login mapped to t2 sees only t2 rows of incidents.v_incidents_o2_tenant, even with tenant t1 set'
);
SELECT results_eq(
    'SELECT login::text, tenant_id FROM aos.bi_logins',
    $$ VALUES (session_user::text, 't2'::text) $$,
    'a tenant BI login sees its own row of aos.bi_logins and no other login''s'
);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;
-- The binding holds for every role of this session: unbind it before the next checks.
DELETE FROM aos.bi_logins WHERE login_oid = session_user::regrole::oid;

-- aos_bi reads the analytics of every tenant, with no tenant set.
SET LOCAL ROLE aos_bi;
SELECT results_eq(
    'SELECT DISTINCT tenant_id FROM activity.v_runs_o2 ORDER BY 1',
    $$ VALUES ('t1'::text), ('t2') $$,
    'aos_bi with no tenant set sees every tenant in activity.v_runs_o2'
);
RESET ROLE;

-- Trusted roles see every tenant, with or without a tenant set.
SET LOCAL ROLE aos_worker;
SELECT results_eq(
    format('SELECT DISTINCT tenant_id FROM %s ORDER BY 1', tbl),
    $$ VALUES ('t1'::text), ('t2') $$,
    format('aos_worker with no tenant set sees every tenant in %s', tbl)
)
FROM scenario_tables ORDER BY tbl;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT results_eq(
    'SELECT DISTINCT tenant_id FROM activity.runs ORDER BY 1',
    $$ VALUES ('t1'::text), ('t2') $$,
    'aos_worker sees every tenant even with tenant t1 set'
);
SELECT lives_ok(
    $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t2', 'r-w', 'agent', 'queued')$$,
    'aos_worker can insert a run for any tenant'
);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

SET LOCAL ROLE aos_policy_engine;
SELECT results_eq(
    'SELECT DISTINCT tenant_id FROM activity.runs ORDER BY 1',
    $$ VALUES ('t1'::text), ('t2') $$,
    'aos_policy_engine with no tenant set sees the runs of every tenant'
);
RESET ROLE;

SET LOCAL ROLE aos_incident_engine;
SELECT results_eq(
    $$SELECT DISTINCT 'incidents', tenant_id FROM incidents.incidents
      UNION ALL SELECT DISTINCT 'runs', tenant_id FROM activity.runs ORDER BY 1, 2$$,
    $$ VALUES ('incidents', 't1'::text), ('incidents', 't2'), ('runs', 't1'), ('runs', 't2') $$,
    'aos_incident_engine with no tenant set sees the incidents and runs of every tenant'
);
RESET ROLE;

SET LOCAL ROLE aos_proposal_engine;
SELECT results_eq(
    $$SELECT DISTINCT 'incidents', tenant_id FROM incidents.incidents
      UNION ALL SELECT DISTINCT 'links', tenant_id FROM policies.proposal_incidents
      UNION ALL SELECT DISTINCT 'proposals', tenant_id FROM policies.policy_proposals ORDER BY 1, 2$$,
    $$ VALUES ('incidents', 't1'::text), ('incidents', 't2'), ('links', 't1'), ('links', 't2'),
              ('proposals', 't1'), ('proposals', 't2') $$,
    'aos_proposal_engine with no tenant set sees the incidents, proposal links and proposals of every tenant'
);
RESET ROLE;

-- The outbox is read (and appended to) by every engine, for any tenant.
CREATE TEMP TABLE engine_roles (role_name name) ON COMMIT DROP;
INSERT INTO engine_roles VALUES ('aos_incident_engine'), ('aos_proposal_engine'), ('aos_policy_engine');
CREATE FUNCTION pg_temp.event_tenants_as(p_role name) RETURNS text[]
LANGUAGE plpgsql AS $fn$
DECLARE
    v_tenants text[];
BEGIN
    PERFORM set_config('role', p_role, TRUE);
    v_tenants := ARRAY(SELECT DISTINCT tenant_id FROM aos.events ORDER BY 1);
    PERFORM set_config('role', 'none', TRUE);
    RETURN v_tenants;
END
$fn$;
SELECT is(pg_temp.event_tenants_as(role_name), '{t1,t2}'::text[],
          format('%s with no tenant set sees the events of every tenant', role_name))
FROM engine_roles ORDER BY role_name;

SET LOCAL ROLE aos_policy_engine;
SELECT lives_ok(
    $$UPDATE activity.runs SET policy_violation = TRUE WHERE tenant_id = 't2' AND run_id = 'r2'$$,
    'aos_policy_engine can set policy_violation on a run of any tenant'
);
RESET ROLE;
SELECT is(
    (SELECT policy_violation FROM activity.runs WHERE tenant_id = 't2' AND run_id = 'r2'),
    TRUE,
    'the policy_violation update of aos_policy_engine took effect'
);

SELECT * FROM finish();
ROLLBACK;
