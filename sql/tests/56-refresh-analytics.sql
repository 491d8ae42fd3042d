-- Operations in SQL (0018): aos.refresh_analytics() refreshes both analytics
-- views and records each refresh in aos.view_refreshes; it skips when the last
-- refresh ended less than min_interval ago; aos.prune_outbox() prunes old
-- events and old refresh records but the newest of each view. aos_maintenance
-- may call both; no other role of the contract may. (The skip while another
-- session refreshes needs two sessions: tests/test_refresh.py.)
BEGIN;

SELECT plan(30);

-- The procedures: SECURITY DEFINER (only the owner may refresh a
-- materialized view), owned by aos_owner, pinned.
SELECT ok(
    (SELECT prokind = 'p' AND prosecdef AND proowner = 'aos_owner'::regrole
            AND 'search_path=pg_catalog, pg_temp' = ANY (proconfig) AND 'jit=off' = ANY (proconfig)
     FROM pg_catalog.pg_proc WHERE oid = to_regprocedure('aos.refresh_analytics(interval)')),
    'aos.refresh_analytics(interval) is a SECURITY DEFINER procedure of aos_owner, search_path and jit pinned'
);
SELECT ok(
    (SELECT prokind = 'p' AND prosecdef AND proowner = 'aos_owner'::regrole
            AND 'search_path=pg_catalog, pg_temp' = ANY (proconfig) AND 'jit=off' = ANY (proconfig)
     FROM pg_catalog.pg_proc WHERE oid = to_regprocedure('aos.prune_outbox(interval)')),
    'aos.prune_outbox(interval) is a SECURITY DEFINER procedure of aos_owner, search_path and jit pinned'
);

-- Who may call them: aos_maintenance, and no other role of the contract.
SELECT ok(
    has_function_privilege('aos_maintenance', 'aos.refresh_analytics(interval)', 'EXECUTE')
    AND has_function_privilege('aos_maintenance', 'aos.prune_outbox(interval)', 'EXECUTE'),
    'aos_maintenance may call aos.refresh_analytics and aos.prune_outbox'
);
SELECT is_empty(
    $$
    SELECT r.rolname, p.oid::regprocedure FROM pg_catalog.pg_roles AS r
    CROSS JOIN pg_catalog.pg_proc AS p
    WHERE p.oid IN ('aos.refresh_analytics(interval)'::regprocedure, 'aos.prune_outbox(interval)'::regprocedure)
      AND r.rolname IN (SELECT role_name FROM aos.contract_roles WHERE role_name NOT IN ('aos_owner', 'aos_maintenance'))
      AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
    $$,
    'no other role of the contract may call them'
);
SELECT ok(
    NOT has_function_privilege('public', 'aos.refresh_analytics(interval)', 'EXECUTE')
    AND NOT has_function_privilege('public', 'aos.prune_outbox(interval)', 'EXECUTE'),
    'PUBLIC may call neither'
);
SELECT ok(
    NOT (SELECT rolcanlogin OR rolsuper OR rolcreaterole OR rolbypassrls FROM pg_catalog.pg_roles
         WHERE rolname = 'aos_maintenance'),
    'aos_maintenance is NOLOGIN and holds no cluster-wide power'
);

SET LOCAL ROLE aos_api;
SELECT throws_ok('CALL aos.refresh_analytics()', '42501', NULL, 'aos_api may not refresh the views');
RESET ROLE;
SET LOCAL ROLE aos_worker;
SELECT throws_ok('CALL aos.refresh_analytics()', '42501', NULL, 'aos_worker may not refresh the views');
SELECT throws_ok($$CALL aos.prune_outbox('1 day')$$, '42501', NULL, 'aos_worker may not prune the outbox');
RESET ROLE;

-- Data the views do not hold yet: a failed run (an incident) and a successful one.
SELECT aos.register_tenant('t56');
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code) VALUES
('t56', 'r56-failed', 'agent-a', 'failed', 'EXECUTION_TIMEOUT'),
('t56', 'r56-ok', 'agent-a', 'succeeded', NULL);
RESET ROLE;
SELECT is((SELECT count(*)::int FROM activity.v_runs_o2 WHERE tenant_id = 't56'), 0, 'the views predate the runs');

CREATE TEMP TABLE before_refresh ON COMMIT DROP AS SELECT coalesce(max(id), 0) AS id FROM aos.view_refreshes;
CREATE TEMP VIEW new_refreshes AS
SELECT r.* FROM aos.view_refreshes AS r WHERE r.id > (SELECT b.id FROM before_refresh AS b);
SELECT set_config('test.started', clock_timestamp()::text, TRUE);

-- 1. As aos_maintenance (a login of the operations role would be a member of it).
SET LOCAL ROLE aos_maintenance;
SELECT lives_ok('CALL aos.refresh_analytics()', 'aos_maintenance refreshes the analytics views');
RESET ROLE;

SELECT results_eq(
    'SELECT view_name, concurrent FROM new_refreshes ORDER BY id',
    $$ VALUES ('activity.v_runs_o2', TRUE), ('incidents.v_incidents_o2', TRUE) $$,
    'one refresh recorded per view, in order, CONCURRENTLY'
);
SELECT is(
    (SELECT count(*)::int FROM new_refreshes
     WHERE refreshed_at >= current_setting('test.started')::timestamptz AND refreshed_at <= clock_timestamp()
       AND duration_ms >= 0),
    2,
    'each record has when the refresh started (the clock, not the transaction start) and how long it took'
);
SELECT is(
    (SELECT row_count FROM new_refreshes WHERE view_name = 'activity.v_runs_o2'),
    (SELECT count(*) FROM activity.v_runs_o2),
    'the runs view''s record has its row count'
);
SELECT is(
    (SELECT row_count FROM new_refreshes WHERE view_name = 'incidents.v_incidents_o2'),
    (SELECT count(*) FROM incidents.v_incidents_o2),
    'the incidents view''s record has its row count'
);
SELECT results_eq(
    $$SELECT run_id, status::text FROM activity.v_runs_o2 WHERE tenant_id = 't56' ORDER BY run_id$$,
    $$ VALUES ('r56-failed', 'failed'), ('r56-ok', 'succeeded') $$,
    'the runs view holds the new runs'
);
SELECT is(
    (SELECT count(*)::int FROM incidents.v_incidents_o2 WHERE tenant_id = 't56' AND source_run_id = 'r56-failed'),
    1,
    'the incidents view holds the new incident'
);

-- 2. Not back to back: the last refresh ended a moment ago.
SELECT lives_ok($$CALL aos.refresh_analytics(min_interval => '1 hour')$$, 'a refresh inside min_interval returns');
SELECT is((SELECT count(*)::int FROM new_refreshes), 2, 'and skips: nothing refreshed, nothing recorded');
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t56', 'r56-later', 'agent-a', 'succeeded');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM activity.v_runs_o2 WHERE run_id = 'r56-later'), 0, 'the skipped refresh left the view as it was');

-- Once min_interval has passed it refreshes again (the last end moved back an hour).
UPDATE aos.view_refreshes SET refreshed_at = refreshed_at - INTERVAL '1 hour';
CALL aos.refresh_analytics(min_interval => '30 minutes');
SELECT is((SELECT count(*)::int FROM new_refreshes), 4, 'after min_interval it refreshes both views again');
SELECT is((SELECT count(*)::int FROM activity.v_runs_o2 WHERE run_id = 'r56-later'), 1, 'and the view holds the later run');

-- 3. Bad input: one line, 22023.
SELECT throws_ok('CALL aos.refresh_analytics(NULL)', '22023', 'min_interval must be an interval of 0 or more',
    'a null min_interval is refused (22023)');
SELECT throws_ok($$CALL aos.refresh_analytics('-1 minute')$$, '22023', 'min_interval must be an interval of 0 or more',
    'a negative min_interval is refused (22023)');
SELECT throws_ok($$CALL aos.prune_outbox('-1 day')$$, '22023', 'older_than must be an interval of 0 or more',
    'a negative retention is refused (22023)');

-- 4. Retention: old events and old refresh records go, the newest refresh of each view stays.
INSERT INTO aos.view_refreshes (view_name, refreshed_at, duration_ms, row_count, concurrent) VALUES
('activity.v_runs_o2', now() - INTERVAL '90 days', 1, 0, TRUE),
('incidents.v_incidents_o2', now() - INTERVAL '90 days', 1, 0, TRUE);
UPDATE aos.events SET created_at = now() - INTERVAL '60 days' WHERE tenant_id = 't56';
SELECT set_config('test.kept', (SELECT count(*) FROM aos.events WHERE created_at >= now() - INTERVAL '30 days')::text, TRUE);
SET LOCAL ROLE aos_maintenance;
SELECT lives_ok($$CALL aos.prune_outbox('30 days')$$, 'aos_maintenance prunes the outbox');
RESET ROLE;
SELECT is(
    (SELECT count(*)::int FROM aos.events),
    current_setting('test.kept')::int,
    'the events older than 30 days are gone, the others kept'
);
SELECT is(
    (SELECT count(*)::int FROM aos.view_refreshes WHERE refreshed_at < now() - INTERVAL '30 days'),
    0,
    'the refresh records older than 30 days are gone'
);
-- When every record is old, one refresh per view stays: the newest.
UPDATE aos.view_refreshes SET refreshed_at = refreshed_at - INTERVAL '1 day';
SELECT set_config('test.newest', (SELECT string_agg(n.id::text, ',' ORDER BY n.id)
                                  FROM (SELECT DISTINCT ON (view_name) id FROM aos.view_refreshes
                                        ORDER BY view_name, refreshed_at DESC) AS n), TRUE);
SELECT cmp_ok((SELECT count(*)::int FROM aos.view_refreshes), '>', 2, 'more than one refresh per view before');
CALL aos.prune_outbox('1 hour');
SELECT is(
    (SELECT string_agg(id::text, ',' ORDER BY id) FROM aos.view_refreshes),
    current_setting('test.newest'),
    'retention keeps the newest refresh of each view, and only it'
);

SELECT * FROM finish();
ROLLBACK;
