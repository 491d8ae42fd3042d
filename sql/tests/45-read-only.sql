-- The facades are read-only by construction (README.md, Facades for UIs and services): every api function
-- and every helper of api_private is SECURITY INVOKER with a pinned search_path,
-- the eight facades are STABLE and the helpers STABLE or IMMUTABLE; PostgreSQL refuses any write inside a
-- non-volatile function, even to its owner, and a non-volatile function can
-- write only through a VOLATILE one it calls, of which aos_api may execute
-- none; aos_api holds no write privilege on any table, view or sequence of the
-- five schemas, cannot create objects in them, and a direct write fails 42501.
BEGIN;

SELECT aos.register_tenant('t1');

-- The api functions (facades, named in the contract) first, then their helpers (api_private).
CREATE TEMP TABLE api_functions (fn regprocedure PRIMARY KEY, facade boolean NOT NULL) ON COMMIT DROP;
INSERT INTO api_functions
SELECT p.oid::regprocedure, p.pronamespace = 'api'::regnamespace AND EXISTS (
    SELECT FROM aos.contract_facades AS f WHERE f.function_name = 'api.' || p.proname)
FROM pg_proc AS p WHERE p.pronamespace IN ('api'::regnamespace, 'api_private'::regnamespace);

-- Relations of the five schemas.
CREATE TEMP TABLE relations (rel regclass PRIMARY KEY, kind "char" NOT NULL) ON COMMIT DROP;
INSERT INTO relations
SELECT c.oid, c.relkind FROM pg_class AS c
WHERE c.relnamespace IN ('aos'::regnamespace, 'activity'::regnamespace, 'incidents'::regnamespace,
                         'policies'::regnamespace, 'api'::regnamespace)
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S');

-- Direct writes aos_api must be refused, with tenant t1 set (aosdb_test.api_rejections()).
CREATE TEMP TABLE rejected (
    n serial, tenant text DEFAULT 't1', sql text, errcode text DEFAULT '42501', description text
) ON COMMIT DROP;
GRANT SELECT ON rejected TO PUBLIC;
INSERT INTO rejected (sql, description) VALUES
    ($$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t1', 'r', 'a', 'queued')$$,
     'aos_api cannot insert a run'),
    ($$UPDATE activity.runs SET policy_violation = TRUE$$, 'aos_api cannot update runs, not even policy_violation'),
    ($$DELETE FROM activity.aos_traces$$, 'aos_api cannot delete traces'),
    ($$UPDATE incidents.incidents SET lifecycle_state = 'resolved'$$, 'aos_api cannot update incidents'),
    ($$INSERT INTO incidents.incident_events (tenant_id, incident_id, event_type, actor)
       VALUES ('t1', gen_random_uuid(), 'acknowledged', 'api')$$, 'aos_api cannot append to the timeline'),
    ($$UPDATE policies.policy_proposals SET status = 'approved'$$, 'aos_api cannot approve by UPDATE'),
    ($$UPDATE policies.policy_proposals SET incident_count = incident_count + 1$$,
     'aos_api cannot change a proposal''s incident_count'),
    ($$INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id)
       VALUES ('t1', gen_random_uuid(), gen_random_uuid())$$, 'aos_api cannot link an incident to a proposal'),
    ($$DELETE FROM policies.proposal_incidents$$, 'aos_api cannot unlink incidents from their proposal'),
    ($$DELETE FROM policies.prevention_records$$, 'aos_api cannot delete prevention records'),
    ($$INSERT INTO aos.events (event, tenant_id, subject_id) VALUES ('run_failed', 't1', 'r')$$,
     'aos_api cannot write the outbox'),
    ($$TRUNCATE aos.bi_logins$$, 'aos_api cannot truncate the BI login map'),
    ($$INSERT INTO aos.bi_logins (login, tenant_id) VALUES ('aos_api', 't1')$$,
     'aos_api cannot map itself to a tenant'),
    ($$REFRESH MATERIALIZED VIEW activity.v_runs_o2$$, 'aos_api cannot refresh activity.v_runs_o2 (owner only)'),
    ($$REFRESH MATERIALIZED VIEW incidents.v_incidents_o2$$,
     'aos_api cannot refresh incidents.v_incidents_o2 (owner only)'),
    ($$CREATE TABLE api.scratch (x int)$$, 'aos_api cannot create a table in the api schema'),
    ($$CREATE FUNCTION api_private.scratch() RETURNS int LANGUAGE sql RETURN 1$$,
     'aos_api cannot create a function in api_private');

-- Functions that try to write, run by the superuser who owns them.
CREATE TEMP TABLE scratch (x integer) ON COMMIT DROP;
INSERT INTO scratch VALUES (0);
CREATE FUNCTION pg_temp.stable_insert() RETURNS void LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    INSERT INTO scratch VALUES (1);
END
$fn$;
CREATE FUNCTION pg_temp.stable_update() RETURNS void LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    UPDATE scratch SET x = x + 1;
END
$fn$;
CREATE FUNCTION pg_temp.stable_delete() RETURNS void LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    DELETE FROM scratch;
END
$fn$;
CREATE FUNCTION pg_temp.stable_dynamic_insert() RETURNS void LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    EXECUTE 'INSERT INTO scratch VALUES (1)';
END
$fn$;
CREATE FUNCTION pg_temp.stable_sql_insert() RETURNS void LANGUAGE sql STABLE AS $fn$
    INSERT INTO scratch VALUES (1)
$fn$;
CREATE FUNCTION pg_temp.immutable_insert() RETURNS void LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
    INSERT INTO scratch VALUES (1);
END
$fn$;
CREATE FUNCTION pg_temp.volatile_insert() RETURNS integer LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    INSERT INTO scratch VALUES (2);
    RETURN 2;
END
$fn$;
CREATE FUNCTION pg_temp.stable_calls_volatile() RETURNS integer LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    RETURN pg_temp.volatile_insert();
END
$fn$;

SELECT plan(
    1                                                       -- the facades of the contract exist
    + (SELECT count(*)::int * 3 FROM api_functions)         -- volatility, invoker, search_path
    + 4                                                     -- who may execute
    + 6                                                     -- STABLE and IMMUTABLE cannot write
    + 3                                                     -- ... except through a VOLATILE callee
    + 4 + 3                                                 -- table privileges, columns, sequences, schemas
    + 2                                                     -- role attributes
    + (SELECT count(*)::int FROM rejected)
);

-- ------------------------------------------------------------ the functions
SELECT set_eq(
    $$SELECT fn::text FROM api_functions WHERE facade$$,
    $$SELECT function_name || CASE function_name
          WHEN 'api.activity_runs' THEN '(text,text,text,boolean,boolean,timestamp with time zone,'
                                        'timestamp with time zone,integer,integer)'
          WHEN 'api.incidents' THEN '(text,text,text,text,text,text,boolean,timestamp with time zone,'
                                    'timestamp with time zone,integer,integer)'
          WHEN 'api.policy_proposals' THEN '(text,text,boolean,timestamp with time zone,timestamp with time zone,'
                                           'integer,integer)'
          WHEN 'api.activity_run' THEN '(text)'
          WHEN 'api.activity_run_evidence' THEN '(text)' ELSE '(uuid)' END
      FROM aos.contract_facades$$,
    'the api schema holds the eight facades of the contract, with their named, typed arguments (0017)'
);

SELECT CASE WHEN f.facade THEN
           is(p.provolatile::text, 's', format('facade %s is STABLE', f.fn))
       ELSE
           ok(p.provolatile IN ('s', 'i'), format('helper %s is STABLE or IMMUTABLE (never VOLATILE)', f.fn))
       END
FROM api_functions AS f JOIN pg_proc AS p ON p.oid = f.fn
ORDER BY NOT f.facade, f.fn::text;

SELECT is(p.prosecdef, FALSE, format('%s is SECURITY INVOKER (it reads with aos_api''s rights, through RLS)', f.fn))
FROM api_functions AS f JOIN pg_proc AS p ON p.oid = f.fn
ORDER BY NOT f.facade, f.fn::text;

SELECT ok(
    coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), FALSE),
    format('%s pins search_path = pg_catalog, pg_temp', f.fn)
)
FROM api_functions AS f JOIN pg_proc AS p ON p.oid = f.fn
ORDER BY NOT f.facade, f.fn::text;

-- ------------------------------------------------------------ who may execute
SELECT is_empty(
    $$SELECT fn FROM api_functions WHERE NOT has_function_privilege('aos_api', fn, 'EXECUTE') AND facade$$,
    'aos_api may execute every facade'
);
SELECT is_empty(
    $$SELECT fn FROM api_functions AS f JOIN pg_proc AS p ON p.oid = f.fn
      WHERE EXISTS (SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
                    WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')$$,
    'PUBLIC may execute no api or api_private function'
);
SELECT is_empty(
    $$SELECT r.rolname, f.fn FROM api_functions AS f
      CROSS JOIN pg_roles AS r
      WHERE r.rolname IN ('aos_worker', 'aos_incident_engine', 'aos_proposal_engine', 'aos_policy_engine',
                          'aos_operator', 'aos_bi', 'aos_bi_tenant', 'aos_scenario', 'aos_maintenance')
        AND has_function_privilege(r.oid, f.fn, 'EXECUTE')$$,
    'no other role of the contract may execute an api or api_private function'
);
SELECT is_empty(
    $$SELECT p.oid::regprocedure FROM pg_proc AS p
      WHERE p.pronamespace IN ('aos'::regnamespace, 'activity'::regnamespace, 'incidents'::regnamespace,
                               'policies'::regnamespace, 'api'::regnamespace, 'api_private'::regnamespace)
        AND p.provolatile = 'v' AND has_function_privilege('aos_api', p.oid, 'EXECUTE')$$,
    'aos_api may execute no VOLATILE function of the five schemas (a facade could write through one)'
);

-- ------------------------------------------------------------ STABLE cannot write
SELECT throws_ok('SELECT pg_temp.stable_insert()', '0A000', NULL,
                 'a STABLE plpgsql function that INSERTs raises 0A000, even called by the superuser who owns it');
SELECT throws_ok('SELECT pg_temp.stable_update()', '0A000', NULL, 'a STABLE plpgsql function that UPDATEs raises 0A000');
SELECT throws_ok('SELECT pg_temp.stable_delete()', '0A000', NULL, 'a STABLE plpgsql function that DELETEs raises 0A000');
SELECT throws_ok('SELECT pg_temp.stable_dynamic_insert()', '0A000', NULL,
                 'a STABLE plpgsql function cannot write through dynamic SQL either (0A000)');
SELECT throws_ok('SELECT pg_temp.stable_sql_insert()', '0A000', NULL, 'a STABLE SQL function that INSERTs raises 0A000');
SELECT throws_ok('SELECT pg_temp.immutable_insert()', '0A000', NULL,
                 'an IMMUTABLE plpgsql function that INSERTs raises 0A000');

-- The one way out, and why aos_api may execute no VOLATILE function.
SELECT is(pg_temp.stable_calls_volatile(), 2, 'a STABLE function may call a VOLATILE one');
SELECT results_eq(
    'SELECT x FROM scratch ORDER BY x',
    'VALUES (0), (2)',
    'and that VOLATILE callee writes: only the rows it wrote were added; the refused writes above left nothing'
);
SELECT lives_ok('SELECT pg_temp.volatile_insert()', 'the same write in a VOLATILE function succeeds (the table is writable)');

-- ------------------------------------------------------------ aos_api privileges
SELECT is_empty(
    format($$SELECT rel FROM relations WHERE kind <> 'S' AND has_table_privilege('aos_api', rel, %L)$$, priv),
    format('aos_api holds %s on no table, view or materialized view of the five schemas', priv)
)
FROM unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS priv;
SELECT is_empty(
    $$SELECT rel, priv FROM relations, unnest(ARRAY['INSERT', 'UPDATE']) AS priv
      WHERE kind <> 'S' AND has_any_column_privilege('aos_api', rel, priv)$$,
    'aos_api holds INSERT or UPDATE on no column of any relation of the five schemas'
);
SELECT is_empty(
    $$SELECT rel, priv FROM relations, unnest(ARRAY['USAGE', 'UPDATE']) AS priv
      WHERE kind = 'S' AND has_sequence_privilege('aos_api', rel, priv)$$,
    'aos_api may advance no sequence of the five schemas'
);
SELECT is_empty(
    $$SELECT n FROM unnest(ARRAY['aos', 'activity', 'incidents', 'policies', 'api', 'api_private']) AS n
      WHERE has_schema_privilege('aos_api', n, 'CREATE')$$,
    'aos_api may create objects in none of the five schemas, nor in api_private'
);

SELECT results_eq(
    $$SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = 'aos_api'$$,
    $$VALUES (FALSE, FALSE, FALSE)$$,
    'aos_api is a plain group role: not superuser, subject to row-level security, no login'
);
SELECT is_empty(
    $$SELECT m.roleid::regrole FROM pg_auth_members AS m WHERE m.member = 'aos_api'::regrole$$,
    'aos_api inherits no other role''s rights'
);

-- ------------------------------------------------------------ direct writes
SELECT * FROM aosdb_test.api_rejections();

SELECT * FROM finish();
ROLLBACK;
