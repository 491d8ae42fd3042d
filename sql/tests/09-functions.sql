-- Functions of the five schemas: who owns them, who may execute them, and
-- how SECURITY DEFINER functions are pinned (README.md, Roles).
BEGIN;

CREATE TEMP VIEW domain_functions AS
SELECT p.oid, p.oid::regprocedure::text AS signature, p.proowner::regrole::text AS owner, p.prosecdef, p.proconfig
FROM pg_catalog.pg_proc AS p
JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api', 'api_private');

-- The only functions meant for everyone: row-level security policies and
-- CHECK constraints call them as the querying role.
CREATE TEMP TABLE public_functions (schema_name name, function_name name, args name[]) ON COMMIT DROP;
INSERT INTO public_functions VALUES
    ('aos', 'current_tenant', '{}'),
    ('policies', 'rule_conditions_valid', '{text,jsonb}');

CREATE TEMP TABLE group_roles (role_name name) ON COMMIT DROP;
INSERT INTO group_roles VALUES
    ('aos_owner'), ('aos_worker'), ('aos_incident_engine'), ('aos_proposal_engine'), ('aos_policy_engine'),
    ('aos_operator'), ('aos_api'), ('aos_bi'), ('aos_bi_tenant'), ('aos_scenario'), ('aos_maintenance');

-- The eight facades, each STABLE and returning jsonb, with their argument names (what
-- a gateway exposing api takes from a query string or a JSON body, 0017).
CREATE TEMP TABLE facades (schema_name name, function_name name, args name[], arg_names text[]) ON COMMIT DROP;
INSERT INTO facades VALUES
    ('api', 'activity_runs',
     '{text,text,text,boolean,boolean,"timestamp with time zone","timestamp with time zone",integer,integer}',
     '{status,state,agent_id,is_synthetic,policy_violation,created_after,created_before,page_size,page_offset}'),
    ('api', 'activity_run', '{text}', '{run_id}'),
    ('api', 'activity_run_evidence', '{text}', '{run_id}'),
    ('api', 'incidents',
     '{text,text,text,text,text,text,boolean,"timestamp with time zone","timestamp with time zone",integer,integer}',
     '{severity,lifecycle_state,topic,category,error_code,cause_type,is_synthetic,first_seen_after,'
     'first_seen_before,page_size,page_offset}'),
    ('api', 'incident', '{uuid}', '{incident_id}'),
    ('api', 'incident_evidence', '{uuid}', '{incident_id}'),
    ('api', 'policy_proposals',
     '{text,text,boolean,"timestamp with time zone","timestamp with time zone",integer,integer}',
     '{status,proposal_type,is_synthetic,created_after,created_before,page_size,page_offset}'),
    ('api', 'policy_proposal', '{uuid}', '{proposal_id}');

SELECT plan(
    6
    + (SELECT count(*)::int FROM public_functions) * (2 + (SELECT count(*)::int FROM group_roles))
    + 5
    + (SELECT count(*)::int FROM facades) * 4
    + 6
);

-- Every object belongs to aos_owner, except that each engine role
-- owns its engine's functions: the SECURITY DEFINER entry points (triggers and
-- operator actions, which run with the engine's rights) and the internal
-- helpers only they call. Such a helper is SECURITY INVOKER and executable by
-- its owner alone (no grant to anyone, PUBLIC included), so it too can only
-- ever run as its engine.
SELECT is_empty(
    $$
    SELECT d.signature, d.owner, d.prosecdef FROM domain_functions AS d
    JOIN pg_catalog.pg_proc AS p ON p.oid = d.oid
    WHERE d.owner <> 'aos_owner'
      AND NOT (d.owner IN ('aos_incident_engine', 'aos_proposal_engine', 'aos_policy_engine')
               AND (d.prosecdef
                    OR NOT EXISTS (SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
                                   WHERE a.grantee <> p.proowner)))
    $$,
    'every function of the five schemas is owned by aos_owner, but engine functions by their engine role '
    || '(SECURITY DEFINER, or a helper nobody but that role may execute)'
);

-- The two exceptions, both platform plumbing owned by the owner of aos:
-- aos.register_tenant lets the worker add a tenant without INSERT on the
-- registry (one row of aos.tenants, nothing else); aos.tg_events__wake fires
-- for whoever writes an event and claims the single row of aos.event_wakeup
-- to send the wake-up NOTIFY (nothing else; the engines hold no grant on it).
-- aos.login_tenant (0015) reads one row of aos.bi_logins, session_user's binding,
-- for aos.current_tenant, so that no role needs a grant on the map.
-- aos.refresh_analytics and aos.prune_outbox (0018) refresh the analytics views
-- (only their owner may) and prune the outbox and the refresh log, for aos_maintenance.
SELECT is_empty(
    $$
    SELECT signature FROM domain_functions
    WHERE prosecdef AND owner = 'aos_owner'
      AND signature NOT IN ('aos.register_tenant(text,text)', 'aos.tg_events__wake()', 'aos.login_tenant()',
                            'aos.refresh_analytics(interval)', 'aos.prune_outbox(interval)')
    $$,
    'no SECURITY DEFINER function but aos.register_tenant, aos.tg_events__wake, aos.login_tenant, '
    || 'aos.refresh_analytics and aos.prune_outbox is owned by aos_owner '
    || '(it would bypass row-level security)'
);

SELECT is_empty(
    $$
    SELECT signature FROM domain_functions
    WHERE prosecdef AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (proconfig), FALSE)
    $$,
    'every SECURITY DEFINER function pins search_path = pg_catalog, pg_temp'
);

-- No function is executable by PUBLIC unless it is meant to be. A null ACL
-- means the default, which grants EXECUTE to PUBLIC: check both ways.
SELECT is_empty(
    $$
    SELECT signature FROM domain_functions
    WHERE has_function_privilege('public', oid, 'EXECUTE')
      AND oid NOT IN (SELECT format('%I.%I(%s)', schema_name, function_name, array_to_string(args, ','))::regprocedure
                      FROM public_functions)
      AND oid <> 'aos.login_tenant()'::regprocedure
    $$,
    'no function of the five schemas is executable by PUBLIC except aos.current_tenant(), aos.login_tenant() '
    || '(which aos.current_tenant() calls as the caller) and policies.rule_conditions_valid'
);

SELECT is_empty(
    $$
    SELECT d.signature FROM domain_functions AS d
    JOIN pg_catalog.pg_proc AS p ON p.oid = d.oid
    CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
    WHERE a.grantee = 0
      AND d.oid NOT IN (SELECT format('%I.%I(%s)', schema_name, function_name, array_to_string(args, ','))::regprocedure
                        FROM public_functions)
      AND d.oid <> 'aos.login_tenant()'::regprocedure
    $$,
    'no function ACL (or default ACL) of the five schemas grants EXECUTE to PUBLIC beyond the three exceptions'
);

-- Every EXECUTE grant on a function of the five schemas, exactly: a grant
-- to a further role, even on a public function, fails until listed here.
-- (The owner's own EXECUTE is not listed; trigger functions, the engines'
-- internal helpers, the outbox's ticker, readers and retention, and
-- aos.hand_to_engine, the migrations' helper, have none but their owner's.)
SELECT set_eq(
    $$
    SELECT d.signature, CASE WHEN a.grantee = 0 THEN 'public' ELSE a.grantee::regrole::text END, a.privilege_type
    FROM domain_functions AS d
    JOIN pg_catalog.pg_proc AS p ON p.oid = d.oid
    CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
    WHERE a.grantee <> p.proowner
    $$,
    $$ VALUES ('aos.current_tenant()', 'public', 'EXECUTE'),
              ('aos.login_tenant()', 'public', 'EXECUTE'),
              ('policies.rule_conditions_valid(text,jsonb)', 'public', 'EXECUTE'),
              ('aos.register_tenant(text,text)', 'aos_worker', 'EXECUTE'),
              ('aos.register_tenant(text,text)', 'aos_scenario', 'EXECUTE'),
              -- The WorkerRunner API (SECURITY INVOKER) and the input
              -- helpers it calls as the worker; aos_scenario may what aos_worker may.
              ('activity.start_run(text,text,text,text,jsonb)', 'aos_worker', 'EXECUTE'),
              ('activity.start_run(text,text,text,text,jsonb)', 'aos_scenario', 'EXECUTE'),
              ('activity.record_step(text,text,jsonb)', 'aos_worker', 'EXECUTE'),
              ('activity.record_step(text,text,jsonb)', 'aos_scenario', 'EXECUTE'),
              ('activity.finish_run(text,text,text,jsonb)', 'aos_worker', 'EXECUTE'),
              ('activity.finish_run(text,text,text,jsonb)', 'aos_scenario', 'EXECUTE'),
              ('activity._require_keys(text,jsonb,text[])', 'aos_worker', 'EXECUTE'),
              ('activity._require_keys(text,jsonb,text[])', 'aos_scenario', 'EXECUTE'),
              ('activity._non_negative(jsonb,text)', 'aos_worker', 'EXECUTE'),
              ('activity._non_negative(jsonb,text)', 'aos_scenario', 'EXECUTE'),
              ('activity._non_negative_count(jsonb,text)', 'aos_worker', 'EXECUTE'),
              ('activity._non_negative_count(jsonb,text)', 'aos_scenario', 'EXECUTE'),
              ('activity._max_value(text)', 'aos_worker', 'EXECUTE'),
              ('activity._max_value(text)', 'aos_scenario', 'EXECUTE'),
              ('activity._timestamp(jsonb,text)', 'aos_worker', 'EXECUTE'),
              ('activity._timestamp(jsonb,text)', 'aos_scenario', 'EXECUTE'),
              ('activity._timestamp_window()', 'aos_worker', 'EXECUTE'),
              ('activity._timestamp_window()', 'aos_scenario', 'EXECUTE'),
              ('activity._within_window(timestamp with time zone,interval)', 'aos_worker', 'EXECUTE'),
              ('activity._within_window(timestamp with time zone,interval)', 'aos_scenario', 'EXECUTE'),
              ('activity._claim_trace_id(text,text,text)', 'aos_worker', 'EXECUTE'),
              ('activity._claim_trace_id(text,text,text)', 'aos_scenario', 'EXECUTE'),
              ('aos._uuid(text,text)', 'aos_incident_engine', 'EXECUTE'),
              ('aos._uuid(text,text)', 'aos_proposal_engine', 'EXECUTE'),
              ('aos._uuid(text,text)', 'aos_policy_engine', 'EXECUTE'),
              -- The operator actions with their ids as text.
              ('incidents.acknowledge(text,text)', 'aos_operator', 'EXECUTE'),
              ('incidents.acknowledge(text,text)', 'aos_scenario', 'EXECUTE'),
              ('incidents.resolve(text,text,text,text)', 'aos_operator', 'EXECUTE'),
              ('incidents.resolve(text,text,text,text)', 'aos_scenario', 'EXECUTE'),
              ('incidents.add_evidence(text,text,jsonb,boolean)', 'aos_operator', 'EXECUTE'),
              ('incidents.add_evidence(text,text,jsonb,boolean)', 'aos_scenario', 'EXECUTE'),
              ('policies.approve_proposal(text,text,text)', 'aos_operator', 'EXECUTE'),
              ('policies.approve_proposal(text,text,text)', 'aos_scenario', 'EXECUTE'),
              ('policies.reject_proposal(text,text,text)', 'aos_operator', 'EXECUTE'),
              ('policies.reject_proposal(text,text,text)', 'aos_scenario', 'EXECUTE'),
              ('policies.retire_rule(text,text)', 'aos_operator', 'EXECUTE'),
              ('policies.retire_rule(text,text)', 'aos_scenario', 'EXECUTE'),
              -- The input checks shared by the worker API, the actions (as their engines) and the facades.
              ('aos._shown(text)', 'aos_worker', 'EXECUTE'),
              ('aos._shown(text)', 'aos_scenario', 'EXECUTE'),
              ('aos._shown(text)', 'aos_api', 'EXECUTE'),
              ('aos._shown(text)', 'aos_incident_engine', 'EXECUTE'),
              ('aos._shown(text)', 'aos_proposal_engine', 'EXECUTE'),
              ('aos._shown(text)', 'aos_policy_engine', 'EXECUTE'),
              ('aos._check_text(text,text,integer,boolean)', 'aos_worker', 'EXECUTE'),
              ('aos._check_text(text,text,integer,boolean)', 'aos_scenario', 'EXECUTE'),
              ('aos._check_text(text,text,integer,boolean)', 'aos_api', 'EXECUTE'),
              ('aos._check_text(text,text,integer,boolean)', 'aos_incident_engine', 'EXECUTE'),
              ('aos._check_text(text,text,integer,boolean)', 'aos_proposal_engine', 'EXECUTE'),
              ('aos._check_text(text,text,integer,boolean)', 'aos_policy_engine', 'EXECUTE'),
              ('aos._check_json(text,jsonb,boolean)', 'aos_worker', 'EXECUTE'),
              ('aos._check_json(text,jsonb,boolean)', 'aos_scenario', 'EXECUTE'),
              ('aos._check_json(text,jsonb,boolean)', 'aos_api', 'EXECUTE'),
              ('aos._check_json(text,jsonb,boolean)', 'aos_incident_engine', 'EXECUTE'),
              ('aos._check_json(text,jsonb,boolean)', 'aos_proposal_engine', 'EXECUTE'),
              ('aos._check_json(text,jsonb,boolean)', 'aos_policy_engine', 'EXECUTE'),
              ('aos._json_text(jsonb,text,integer,boolean)', 'aos_worker', 'EXECUTE'),
              ('aos._json_text(jsonb,text,integer,boolean)', 'aos_scenario', 'EXECUTE'),
              ('aos._json_text(jsonb,text,integer,boolean)', 'aos_api', 'EXECUTE'),
              ('aos._json_text(jsonb,text,integer,boolean)', 'aos_incident_engine', 'EXECUTE'),
              ('aos._json_text(jsonb,text,integer,boolean)', 'aos_proposal_engine', 'EXECUTE'),
              ('aos._json_text(jsonb,text,integer,boolean)', 'aos_policy_engine', 'EXECUTE'),
              ('aos._json_bool(jsonb,text)', 'aos_worker', 'EXECUTE'),
              ('aos._json_bool(jsonb,text)', 'aos_scenario', 'EXECUTE'),
              ('aos._json_bool(jsonb,text)', 'aos_api', 'EXECUTE'),
              ('aos._json_bool(jsonb,text)', 'aos_incident_engine', 'EXECUTE'),
              ('aos._json_bool(jsonb,text)', 'aos_proposal_engine', 'EXECUTE'),
              ('aos._json_bool(jsonb,text)', 'aos_policy_engine', 'EXECUTE'),
              -- The operator actions; aos_scenario may what aos_operator may.
              ('incidents.acknowledge(uuid,text)', 'aos_operator', 'EXECUTE'),
              ('incidents.acknowledge(uuid,text)', 'aos_scenario', 'EXECUTE'),
              ('incidents.resolve(uuid,text,text,text)', 'aos_operator', 'EXECUTE'),
              ('incidents.resolve(uuid,text,text,text)', 'aos_scenario', 'EXECUTE'),
              ('incidents.add_evidence(uuid,text,jsonb,boolean)', 'aos_operator', 'EXECUTE'),
              ('incidents.add_evidence(uuid,text,jsonb,boolean)', 'aos_scenario', 'EXECUTE'),
              ('policies.approve_proposal(uuid,text,text)', 'aos_operator', 'EXECUTE'),
              ('policies.approve_proposal(uuid,text,text)', 'aos_scenario', 'EXECUTE'),
              ('policies.reject_proposal(uuid,text,text)', 'aos_operator', 'EXECUTE'),
              ('policies.reject_proposal(uuid,text,text)', 'aos_scenario', 'EXECUTE'),
              ('policies.create_rule(text,text,jsonb,text,text)', 'aos_operator', 'EXECUTE'),
              ('policies.create_rule(text,text,jsonb,text,text)', 'aos_scenario', 'EXECUTE'),
              ('policies.retire_rule(uuid,text)', 'aos_operator', 'EXECUTE'),
              ('policies.retire_rule(uuid,text)', 'aos_scenario', 'EXECUTE'),
              -- Pure helpers the engines call with their own rights.
              ('incidents.error_code_for(text,text)', 'aos_incident_engine', 'EXECUTE'),
              ('incidents.error_code_for(text,text)', 'aos_policy_engine', 'EXECUTE'),
              ('policies.metric_value(text,numeric,bigint,bigint,bigint,integer)', 'aos_policy_engine', 'EXECUTE'),
              ('policies.like_patterns(jsonb)', 'aos_policy_engine', 'EXECUTE'),
              ('policies.matches_any(text,jsonb)', 'aos_policy_engine', 'EXECUTE'),
              -- The eight facades (api, served over HTTP) and the
              -- helpers they call as the caller (SECURITY INVOKER; api_private,
              -- never exposed), for aos_api alone.
              ('api.activity_runs(text,text,text,boolean,boolean,timestamp with time zone,'
               'timestamp with time zone,integer,integer)', 'aos_api', 'EXECUTE'),
              ('api.activity_run(text)', 'aos_api', 'EXECUTE'),
              ('api.activity_run_evidence(text)', 'aos_api', 'EXECUTE'),
              ('api.incidents(text,text,text,text,text,text,boolean,timestamp with time zone,'
               'timestamp with time zone,integer,integer)', 'aos_api', 'EXECUTE'),
              ('api.incident(uuid)', 'aos_api', 'EXECUTE'),
              ('api.incident_evidence(uuid)', 'aos_api', 'EXECUTE'),
              ('api.policy_proposals(text,text,boolean,timestamp with time zone,timestamp with time zone,'
               'integer,integer)', 'aos_api', 'EXECUTE'),
              ('api.policy_proposal(uuid)', 'aos_api', 'EXECUTE'),
              ('api_private.run(text)', 'aos_api', 'EXECUTE'),
              ('api_private.run_traces(text)', 'aos_api', 'EXECUTE'),
              ('api_private.incident(uuid)', 'aos_api', 'EXECUTE'),
              ('api_private.one_of(text,text,text[])', 'aos_api', 'EXECUTE'),
              ('api_private.check_page(integer,integer)', 'aos_api', 'EXECUTE'),
              ('api_private.envelope(jsonb,bigint,integer,integer)', 'aos_api', 'EXECUTE'),
              -- 0008: the tenant BI views call it as their reader.
              ('aos.reader_tenant()', 'aos_bi_tenant', 'EXECUTE'),
              -- 0018: the operations procedures.
              ('aos.refresh_analytics(interval)', 'aos_maintenance', 'EXECUTE'),
              ('aos.prune_outbox(interval)', 'aos_maintenance', 'EXECUTE') $$,
    'the function grants of the five schemas are exactly the listed EXECUTE grants'
);

SELECT ok(
    has_function_privilege('public', format('%I.%I(%s)', schema_name, function_name, array_to_string(args, ',')),
                           'EXECUTE'),
    format('%s.%s(%s) is executable by PUBLIC', schema_name, function_name, array_to_string(args, ', '))
)
FROM public_functions ORDER BY function_name;

SELECT function_privs_are(
    f.schema_name, f.function_name, f.args, r.role_name, '{EXECUTE}',
    format('%s may execute %s.%s(%s)', r.role_name, f.schema_name, f.function_name, array_to_string(f.args, ', '))
)
FROM public_functions AS f CROSS JOIN group_roles AS r ORDER BY f.function_name, r.role_name;

SELECT isnt_definer(schema_name, function_name, args,
    format('%s.%s runs as the caller (not SECURITY DEFINER)', schema_name, function_name))
FROM public_functions ORDER BY function_name;

SELECT volatility_is('aos', 'current_tenant', '{}'::name[], 'stable', 'aos.current_tenant() is STABLE');
SELECT volatility_is('policies', 'rule_conditions_valid', '{text,jsonb}'::name[], 'immutable',
    'policies.rule_conditions_valid is IMMUTABLE (usable in CHECK constraints)');
SELECT function_returns('aos', 'current_tenant', '{}'::name[], 'text', 'aos.current_tenant() returns text');

-- The default privileges of migration 0001: a function aos_owner creates
-- later starts with no EXECUTE for PUBLIC.
SET LOCAL ROLE aos_owner;
CREATE FUNCTION activity._pgtap_probe() RETURNS int LANGUAGE sql AS 'SELECT 1';
RESET ROLE;
SELECT ok(
    NOT has_function_privilege('public', 'activity._pgtap_probe()', 'EXECUTE'),
    'a new function created by aos_owner is not executable by PUBLIC (default privileges)'
);
DROP FUNCTION activity._pgtap_probe();

-- Neither public function can be steered by the caller's search_path: both pin it.
SELECT ok(
    EXISTS (SELECT FROM pg_catalog.pg_proc WHERE oid = 'aos.current_tenant()'::regprocedure
            AND 'search_path=pg_catalog, pg_temp' = ANY (proconfig)),
    'aos.current_tenant() pins search_path = pg_catalog, pg_temp'
);
SELECT ok(
    EXISTS (SELECT FROM pg_catalog.pg_proc WHERE oid = 'policies.rule_conditions_valid(text,jsonb)'::regprocedure
            AND 'search_path=pg_catalog, pg_temp' = ANY (proconfig)),
    'policies.rule_conditions_valid pins search_path = pg_catalog, pg_temp'
);
-- PL/pgSQL keeps its expression's plan for the session; an inlinable SQL
-- body would be read again (19 kB of parse tree) by every statement that
-- checks a policy_proposals or policy_rules constraint.
SELECT ok(
    EXISTS (SELECT FROM pg_catalog.pg_proc WHERE oid = 'policies.rule_conditions_valid(text,jsonb)'::regprocedure
            AND prolang = (SELECT oid FROM pg_catalog.pg_language WHERE lanname = 'plpgsql')),
    'policies.rule_conditions_valid is PL/pgSQL (its plan is cached, not re-read per statement)'
);

-- The facades are read-only and tenant-scoped. STABLE (PostgreSQL
-- refuses a write inside), returning jsonb, and run as the caller (aos_api
-- through row-level security), so they can never see another tenant.
SELECT volatility_is(schema_name, function_name, args, 'stable',
    format('%s.%s(%s) is STABLE', schema_name, function_name, array_to_string(args, ', ')))
FROM facades ORDER BY function_name;

SELECT function_returns(schema_name, function_name, args, 'jsonb',
    format('%s.%s(%s) returns jsonb', schema_name, function_name, array_to_string(args, ', ')))
FROM facades ORDER BY function_name;

SELECT isnt_definer(schema_name, function_name, args,
    format('%s.%s(%s) runs as the caller (not SECURITY DEFINER)', schema_name, function_name,
           array_to_string(args, ', ')))
FROM facades ORDER BY function_name;

-- 0017: named arguments, no p_ prefix (a query-string key is the argument's name), and every
-- argument of a list has a default (no filter, the first page of 50).
SELECT is(
    (SELECT p.proargnames::text[] FROM pg_catalog.pg_proc AS p
     WHERE p.oid = format('%I.%I(%s)', f.schema_name, f.function_name, array_to_string(f.args, ','))::regprocedure),
    f.arg_names,
    format('%s.%s takes (%s)', f.schema_name, f.function_name, array_to_string(f.arg_names, ', ')))
FROM facades AS f ORDER BY f.function_name;

-- Catalog-wide for the api schema and its helpers' api_private: nothing there can write
-- or run with another role's rights.
SELECT is_empty(
    $$
    SELECT p.oid::regprocedure::text, p.provolatile, p.prosecdef, p.proowner::regrole::text
    FROM pg_catalog.pg_proc AS p
    JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('api', 'api_private')
      AND (p.provolatile = 'v' OR p.prosecdef OR p.proowner <> 'aos_owner'::regrole)
    $$,
    'no function of api or api_private is VOLATILE or SECURITY DEFINER, and aos_owner owns them all'
);

-- 0008: the reader's tenant, for the tenant-filtered views.
SELECT ok(
    EXISTS (SELECT FROM pg_catalog.pg_proc AS p
            WHERE p.oid = 'aos.reader_tenant()'::regprocedure
              AND p.provolatile = 's' AND NOT p.prosecdef AND p.prorettype = 'text'::regtype
              AND 'search_path=pg_catalog, pg_temp' = ANY (p.proconfig)),
    'aos.reader_tenant() is STABLE, returns text, runs as the caller and pins search_path = pg_catalog, pg_temp'
);

SELECT set_eq(
    $$
    SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc AS p
    JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
    WHERE n.nspname = 'api'
    $$,
    $$ SELECT format('%s.%s(%s)', schema_name, function_name, array_to_string(args, ',')) FROM facades $$,
    'the api schema has no function but the eight facades: a gateway exposing it serves every one'
);

-- 0017: the list facades need no argument at all.
SELECT is_empty(
    $$
    SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc AS p
    WHERE p.oid IN ('api.activity_runs'::regproc, 'api.incidents'::regproc, 'api.policy_proposals'::regproc)
      AND p.pronargdefaults <> p.pronargs
    $$,
    'every argument of the list facades has a default'
);

SELECT * FROM finish();
ROLLBACK;
