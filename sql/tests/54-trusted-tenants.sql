-- Who may choose a tenant (0015): synthetic marks come from the scenario runner's role, never
-- from a setting alone; aos_scenario registers only sdsr- tenants; aos.bi_logins binds a login by
-- role OID, so a new login of a dropped one's name inherits nothing; a bound operator or api
-- login cannot choose another tenant (setting or claim, 28000) and sees only its own; for an
-- unbound login the JWT claim beats the setting.
BEGIN;
SELECT plan(23);

SELECT aos.register_tenant(t) FROM (VALUES ('t1'), ('t2')) AS v (t);
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES
    ('t1', 'r1', 'agent-a', 'succeeded'), ('t2', 'r2', 'agent-b', 'succeeded');

-- 1. Synthetic marks.
CREATE TEMP TABLE made (who text, id uuid) ON COMMIT DROP;
GRANT INSERT ON made TO PUBLIC;
SELECT set_config('aos.tenant_id', 't1', TRUE), set_config('aos.synthetic_scenario_id', 'SDSR-FORGED', TRUE);
SET LOCAL ROLE aos_operator;
INSERT INTO made SELECT 'operator', policies.create_rule('real', 'error_code', '{"error_codes": ["X"]}', 'warn');
RESET ROLE;
SELECT is(
    (SELECT ARRAY[r.is_synthetic::text, coalesce(r.synthetic_scenario_id, 'none')]
     FROM policies.policy_rules AS r JOIN made AS m ON m.id = r.id WHERE m.who = 'operator'),
    ARRAY['false', 'none'],
    'create_rule by aos_operator with aos.synthetic_scenario_id set makes a real (non-synthetic) rule'
);
SELECT is(
    (SELECT e.payload ->> 'is_synthetic' FROM aos.events AS e JOIN made AS m ON m.id::text = e.subject_id
     WHERE m.who = 'operator' AND e.event = 'rule_created'),
    'false',
    'its rule_created event says is_synthetic false'
);
-- The superuser running these tests holds every role: with operator rights it is no scenario.
INSERT INTO made SELECT 'superuser', policies.create_rule('real2', 'error_code', '{"error_codes": ["X"]}', 'warn');
SELECT is(
    (SELECT r.is_synthetic FROM policies.policy_rules AS r JOIN made AS m ON m.id = r.id WHERE m.who = 'superuser'),
    FALSE,
    'create_rule by a caller with operator rights ignores the setting'
);
SELECT set_config('aos.synthetic_scenario_id', 'SDSR-REAL', TRUE);
SET LOCAL ROLE aos_scenario;
INSERT INTO made SELECT 'scenario', policies.create_rule('synthetic', 'error_code', '{"error_codes": ["X"]}', 'warn');
RESET ROLE;
SELECT is(
    (SELECT ARRAY[r.is_synthetic::text, r.synthetic_scenario_id]
     FROM policies.policy_rules AS r JOIN made AS m ON m.id = r.id WHERE m.who = 'scenario'),
    ARRAY['true', 'SDSR-REAL'],
    'create_rule as aos_scenario (the scenario runner) marks the rule with the scenario'
);
SELECT set_config('aos.synthetic_scenario_id', '', TRUE), set_config('aos.tenant_id', '', TRUE);

-- 2. The scenario runner's namespace.
SET LOCAL ROLE aos_scenario;
SELECT throws_ok($$SELECT aos.register_tenant('acme')$$, '42501', NULL,
    'aos_scenario cannot register tenant acme (42501)');
SELECT is(aos.register_tenant('sdsr-54', 'Scenario 54'), 'sdsr-54', 'aos_scenario registers a tenant of its namespace');
RESET ROLE;
SET LOCAL ROLE aos_worker;
SELECT is(aos.register_tenant('acme'), 'acme', 'the worker still registers any tenant');
RESET ROLE;

-- 3. Keyed by role OID.
CREATE ROLE aos_test54_bi LOGIN;
GRANT aos_bi_tenant TO aos_test54_bi;
INSERT INTO aos.bi_logins (login, tenant_id) VALUES ('aos_test54_bi', 't1');
SELECT is(
    (SELECT login_oid FROM aos.bi_logins WHERE login = 'aos_test54_bi'),
    'aos_test54_bi'::regrole::oid,
    'a mapping inserted by name is stored by the role''s OID'
);
SELECT throws_ok($$INSERT INTO aos.bi_logins (login, tenant_id) VALUES ('aos_test54_nobody', 't1')$$, '23503', NULL,
    'a mapping for a role that does not exist is refused (23503)');
DROP ROLE aos_test54_bi;
CREATE ROLE aos_test54_bi LOGIN;
GRANT aos_bi_tenant TO aos_test54_bi;
SET LOCAL SESSION AUTHORIZATION aos_test54_bi;
SELECT is(aos.login_tenant(), NULL, 'a new login of a dropped login''s name has no binding');
SELECT throws_ok('SELECT count(*) FROM activity.v_runs_o2_tenant', '28000', NULL,
    'and does not read the old login''s tenant: as an unmapped BI login it gets 28000');
RESET SESSION AUTHORIZATION;

-- 4. Bound service logins.
CREATE ROLE aos_test54_op LOGIN;
CREATE ROLE aos_test54_api LOGIN;
CREATE ROLE aos_test54_free LOGIN;
GRANT aos_operator TO aos_test54_op;
GRANT aos_api TO aos_test54_api, aos_test54_free;
INSERT INTO aos.bi_logins (login_oid, tenant_id) VALUES ('aos_test54_op'::regrole, 't1'), ('aos_test54_api'::regrole, 't1');

SET LOCAL SESSION AUTHORIZATION aos_test54_op;
SELECT is(aos.current_tenant(), 't1', 'a bound operator login needs no setting: its tenant is its binding');
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT is(aos.current_tenant(), 't1', 'a bound login may name its own tenant');
SELECT set_config('aos.tenant_id', 't2', TRUE);
SELECT throws_ok('SELECT aos.current_tenant()', '28000', NULL,
    'a bound operator login cannot choose another tenant through aos.tenant_id (28000)');
SELECT throws_ok($$SELECT policies.create_rule('x', 'error_code', '{"error_codes": ["X"]}', 'warn')$$, '28000', NULL,
    'nor act for it');
SELECT set_config('aos.tenant_id', '', TRUE);
SELECT set_config('request.jwt.claims', '{"tenant_id": "t2"}', TRUE);
SELECT throws_ok('SELECT aos.current_tenant()', '28000', NULL,
    'a bound operator login cannot choose another tenant through the JWT claim (28000)');
SELECT set_config('request.jwt.claims', '', TRUE);
RESET SESSION AUTHORIZATION;

SET LOCAL SESSION AUTHORIZATION aos_test54_api;
SET LOCAL ROLE aos_api;
SELECT results_eq('SELECT tenant_id, run_id FROM activity.runs', $$VALUES ('t1'::text, 'r1'::text)$$,
    'a bound api login sees only its tenant''s runs, with no tenant set');
SELECT set_config('request.jwt.claims', '{"tenant_id": "t2"}', TRUE);
SELECT throws_ok('SELECT count(*) FROM activity.runs', '28000', NULL,
    'a bound api login gets 28000 for a claim naming another tenant, not the other tenant''s rows');
SELECT set_config('request.jwt.claims', '', TRUE);
SELECT set_config('aos.tenant_id', 't2', TRUE);
SELECT throws_ok('SELECT api.activity_runs(page_size => 10)', '28000', NULL,
    'nor can it read another tenant through a facade with aos.tenant_id');
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;
RESET SESSION AUTHORIZATION;

-- 5. Unbound logins are trusted: the claim, else the setting.
SET LOCAL SESSION AUTHORIZATION aos_test54_free;
SET LOCAL ROLE aos_api;
SELECT set_config('aos.tenant_id', 't1', TRUE), set_config('request.jwt.claims', '{"tenant_id": "t2"}', TRUE);
SELECT is(aos.current_tenant(), 't2', 'for an unbound login the JWT claim beats the aos.tenant_id setting');
SELECT results_eq('SELECT tenant_id, run_id FROM activity.runs', $$VALUES ('t2'::text, 'r2'::text)$$,
    'and it reads the claim''s tenant');
SELECT set_config('request.jwt.claims', '', TRUE);
SELECT is(aos.current_tenant(), 't1', 'with no claim, the setting');
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;
RESET SESSION AUTHORIZATION;

-- The lookup is one index scan on the map's primary key.
SELECT is(
    (SELECT array_agg(a.attname::text) FROM pg_index AS i
     JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
     WHERE i.indexrelid = 'aos.bi_logins_pkey'::regclass),
    ARRAY['login_oid'],
    'aos.bi_logins is keyed by login_oid'
);

SELECT * FROM finish();
ROLLBACK;
