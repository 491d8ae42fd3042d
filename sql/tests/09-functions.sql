-- Functions of the five schemas: who owns them, who may execute them, and
-- how SECURITY DEFINER functions are pinned (SPEC section 4, STYLE).
BEGIN;

CREATE TEMP VIEW domain_functions AS
SELECT p.oid, p.oid::regprocedure::text AS signature, p.proowner::regrole::text AS owner, p.prosecdef, p.proconfig
FROM pg_catalog.pg_proc AS p
JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api');

-- The only functions meant for everyone: row-level security policies and
-- CHECK constraints call them as the querying role.
CREATE TEMP TABLE public_functions (schema_name name, function_name name, args name[]) ON COMMIT DROP;
INSERT INTO public_functions VALUES
    ('aos', 'current_tenant', '{}'),
    ('policies', 'rule_conditions_valid', '{text,jsonb}');

CREATE TEMP TABLE nine_roles (role_name name) ON COMMIT DROP;
INSERT INTO nine_roles VALUES
    ('aos_owner'), ('aos_worker'), ('aos_incident_engine'), ('aos_proposal_engine'), ('aos_policy_engine'),
    ('aos_operator'), ('aos_api'), ('aos_bi'), ('aos_scenario');

SELECT plan(
    6
    + (SELECT count(*)::int FROM public_functions) * (2 + (SELECT count(*)::int FROM nine_roles))
    + 5
);

-- SPEC 4: every object belongs to aos_owner, except that engine functions are
-- SECURITY DEFINER and owned by their engine role.
SELECT is_empty(
    $$
    SELECT signature, owner FROM domain_functions
    WHERE owner <> 'aos_owner'
      AND NOT (prosecdef AND owner IN ('aos_incident_engine', 'aos_proposal_engine', 'aos_policy_engine'))
    $$,
    'every function of the five schemas is owned by aos_owner (engine SECURITY DEFINER functions by their engine role)'
);

-- The one exception: aos.register_tenant, the platform verb that lets the
-- worker add a tenant without INSERT on the registry. It writes one row of
-- aos.tenants and nothing else.
SELECT is_empty(
    $$
    SELECT signature FROM domain_functions
    WHERE prosecdef AND owner = 'aos_owner' AND signature <> 'aos.register_tenant(text,text)'
    $$,
    'no SECURITY DEFINER function but aos.register_tenant is owned by aos_owner (it would bypass row-level security)'
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
    $$,
    'no function of the five schemas is executable by PUBLIC except aos.current_tenant() and policies.rule_conditions_valid'
);

SELECT is_empty(
    $$
    SELECT d.signature FROM domain_functions AS d
    JOIN pg_catalog.pg_proc AS p ON p.oid = d.oid
    CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
    WHERE a.grantee = 0
      AND d.oid NOT IN (SELECT format('%I.%I(%s)', schema_name, function_name, array_to_string(args, ','))::regprocedure
                        FROM public_functions)
    $$,
    'no function ACL (or default ACL) of the five schemas grants EXECUTE to PUBLIC beyond the two exceptions'
);

-- Every EXECUTE grant on a function of the five schemas, exactly: a grant
-- to a further role, even on a public function, fails until listed here.
SELECT set_eq(
    $$
    SELECT d.signature, CASE WHEN a.grantee = 0 THEN 'public' ELSE a.grantee::regrole::text END, a.privilege_type
    FROM domain_functions AS d
    JOIN pg_catalog.pg_proc AS p ON p.oid = d.oid
    CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
    WHERE a.grantee <> p.proowner
    $$,
    $$ VALUES ('aos.current_tenant()', 'public', 'EXECUTE'),
              ('policies.rule_conditions_valid(text,jsonb)', 'public', 'EXECUTE'),
              ('aos.register_tenant(text,text)', 'aos_worker', 'EXECUTE'),
              ('aos.register_tenant(text,text)', 'aos_scenario', 'EXECUTE') $$,
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
FROM public_functions AS f CROSS JOIN nine_roles AS r ORDER BY f.function_name, r.role_name;

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

SELECT ok(
    EXISTS (SELECT FROM pg_catalog.pg_proc WHERE oid = 'aos.current_tenant()'::regprocedure
            AND 'search_path=pg_catalog, pg_temp' = ANY (proconfig))
    AND EXISTS (SELECT FROM pg_catalog.pg_proc WHERE oid = 'policies.rule_conditions_valid(text,jsonb)'::regprocedure
            AND 'search_path=pg_catalog, pg_temp' = ANY (proconfig)),
    'the two public functions pin search_path = pg_catalog, pg_temp'
);

SELECT * FROM finish();
ROLLBACK;
