-- No JIT on the paths that write. An engine, action or worker function runs
-- short queries inside a writer's transaction; a JIT compilation costs tens of
-- milliseconds each, and it triggers on the planner's estimates, which stale
-- statistics on a big table inflate. So every function of the five schemas
-- that writes (VOLATILE), runs with another role's rights (SECURITY DEFINER),
-- is a trigger function, belongs to an engine role, or that aos_worker,
-- aos_operator or aos_scenario may execute, pins jit = off. Catalog-wide: a
-- function added later is held to it too.
BEGIN;

CREATE TEMP TABLE engine_paths (fn regprocedure PRIMARY KEY, why text NOT NULL, jit_off boolean NOT NULL) ON COMMIT DROP;
INSERT INTO engine_paths
SELECT p.oid::regprocedure,
       concat_ws(', ',
           CASE WHEN p.provolatile = 'v' THEN 'volatile' END,
           CASE WHEN p.prosecdef THEN 'security definer' END,
           CASE WHEN p.prorettype = 'trigger'::regtype THEN 'trigger' END,
           CASE WHEN p.proowner <> 'aos_owner'::regrole THEN 'owned by ' || p.proowner::regrole::text END,
           CASE WHEN x.callers IS NOT NULL THEN 'executed by ' || x.callers END),
       coalesce('jit=off' = ANY (p.proconfig), FALSE)
FROM pg_proc AS p
LEFT JOIN LATERAL (
    SELECT string_agg(a.grantee::regrole::text, ' ' ORDER BY a.grantee::regrole::text) AS callers
    FROM aclexplode(p.proacl) AS a
    WHERE a.privilege_type = 'EXECUTE'
      AND a.grantee IN ('aos_worker'::regrole, 'aos_operator'::regrole, 'aos_scenario'::regrole)
) AS x ON TRUE
WHERE p.pronamespace IN ('aos'::regnamespace, 'activity'::regnamespace, 'incidents'::regnamespace,
                         'policies'::regnamespace, 'api'::regnamespace)
  -- A procedure that commits between batches may pin no setting (PostgreSQL refuses COMMIT in a
  -- procedure with SET clauses): aos.prune_runs runs its batches in activity._prune_runs_batch, which
  -- this list holds to jit = off.
  AND p.prokind <> 'p'
  AND (p.provolatile = 'v' OR p.prosecdef OR p.prorettype = 'trigger'::regtype
       OR p.proowner <> 'aos_owner'::regrole OR x.callers IS NOT NULL);

SELECT plan(2 + (SELECT count(*)::int FROM engine_paths));

-- The list is not empty by accident: the three engines' triggers, the
-- operators' actions and the worker API are in it.
SELECT ok(
    (SELECT count(*) FROM engine_paths) >= 25
    AND 'activity.finish_run(text,text,text,jsonb)'::regprocedure IN (SELECT fn FROM engine_paths)
    AND 'incidents.tg_runs__open_incidents()'::regprocedure IN (SELECT fn FROM engine_paths)
    AND 'policies.approve_proposal(uuid,text,text)'::regprocedure IN (SELECT fn FROM engine_paths)
    AND 'aos.register_tenant(text,text)'::regprocedure IN (SELECT fn FROM engine_paths),
    format('the engine, action and worker functions are found (%s of them)', (SELECT count(*) FROM engine_paths))
);

-- No api facade is one: they are STABLE, run as the caller, and JIT may serve a BI-sized read.
SELECT is_empty(
    $$SELECT fn FROM engine_paths WHERE fn::text LIKE 'api.%'$$,
    'no api function is an engine path (the facades only read)'
);

SELECT ok(e.jit_off, format('%s (%s) sets jit = off', e.fn, e.why))
FROM engine_paths AS e ORDER BY e.fn::text;

SELECT * FROM finish();
ROLLBACK;
