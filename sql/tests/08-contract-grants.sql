-- aos.contract_grants is the contract's list of table privileges. The live
-- catalog must match it exactly, in both directions: a stray grant (to any
-- role, PUBLIC included) or a missing one fails. The last assertions prove
-- the comparison notices a change.
BEGIN;

-- Every table or column privilege in the five schemas held by anyone but the
-- object's owner; column privileges as one row per privilege with the sorted
-- column list, as aos.contract_grants stores them.
CREATE TEMP VIEW live_grants AS
SELECT CASE WHEN a.grantee = 0 THEN 'public' ELSE a.grantee::regrole::text END AS role_name,
       n.nspname::text AS schema_name, c.relname::text AS table_name, a.privilege_type::text AS privilege,
       NULL::text[] AS column_names
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(c.relacl) AS a
WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api')
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.grantee <> c.relowner
UNION ALL
SELECT CASE WHEN a.grantee = 0 THEN 'public' ELSE a.grantee::regrole::text END,
       n.nspname::text, c.relname::text, a.privilege_type::text, array_agg(att.attname::text ORDER BY att.attname)
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute AS att ON att.attrelid = c.oid AND att.attnum > 0 AND NOT att.attisdropped
CROSS JOIN LATERAL aclexplode(att.attacl) AS a
WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api')
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.grantee <> c.relowner
GROUP BY 1, 2, 3, 4;

CREATE TEMP VIEW contract_grants AS
SELECT role_name, schema_name, table_name, privilege,
       (SELECT array_agg(col ORDER BY col) FROM unnest(column_names) AS col) AS column_names
FROM aos.contract_grants;

CREATE TEMP VIEW stray_grants AS
SELECT * FROM live_grants EXCEPT SELECT * FROM contract_grants;

CREATE TEMP VIEW missing_grants AS
SELECT * FROM contract_grants EXCEPT SELECT * FROM live_grants;

SELECT plan(7);

SELECT is_empty('SELECT * FROM stray_grants', 'every live table and column grant is listed in aos.contract_grants');
SELECT is_empty('SELECT * FROM missing_grants', 'every row of aos.contract_grants is a live grant');
SELECT is(
    (SELECT count(*)::int FROM live_grants),
    (SELECT count(*)::int FROM aos.contract_grants),
    'the catalog and aos.contract_grants hold the same number of grants'
);

-- The comparison is not vacuous: a grant added, or one revoked, is noticed.
GRANT DELETE ON activity.runs TO aos_api;
GRANT UPDATE (goal) ON activity.runs TO aos_policy_engine;
SELECT set_eq(
    'SELECT role_name, schema_name, table_name, privilege, column_names FROM stray_grants',
    $$ VALUES ('aos_api', 'activity', 'runs', 'DELETE', NULL::text[]),
              ('aos_policy_engine', 'activity', 'runs', 'UPDATE', '{goal,policy_violation}') $$,
    'a stray table grant and a widened column grant are reported as stray'
);
REVOKE DELETE ON activity.runs FROM aos_api;
REVOKE UPDATE (goal) ON activity.runs FROM aos_policy_engine;

REVOKE INSERT ON activity.aos_trace_steps FROM aos_worker;
SELECT set_eq(
    'SELECT role_name, schema_name, table_name, privilege, column_names FROM missing_grants',
    $$ VALUES ('aos_worker', 'activity', 'aos_trace_steps', 'INSERT', NULL::text[]) $$,
    'a revoked grant is reported as missing'
);
GRANT INSERT ON activity.aos_trace_steps TO aos_worker;

-- A key column added to the worker's column list (0013: keys are immutable)
-- widens its row, and is reported.
GRANT UPDATE (run_id) ON activity.runs TO aos_worker;
SELECT set_eq(
    'SELECT role_name, schema_name, table_name, privilege, column_names FROM stray_grants',
    $$ VALUES ('aos_worker', 'activity', 'runs', 'UPDATE',
               '{agent_id,attempts,completed_at,created_at,duration_ms,error_code,error_message,estimated_cost_usd,'
               'goal,input_tokens,is_synthetic,output_tokens,run_id,started_at,status,synthetic_scenario_id}'::text[]) $$,
    'a key column granted for UPDATE is reported as a stray column grant'
);
REVOKE UPDATE (run_id) ON activity.runs FROM aos_worker;

GRANT SELECT ON aos.contract_roles TO PUBLIC;
SELECT set_eq(
    'SELECT role_name, schema_name, table_name, privilege FROM stray_grants',
    $$ VALUES ('public', 'aos', 'contract_roles', 'SELECT') $$,
    'a grant to PUBLIC is reported as stray'
);
REVOKE SELECT ON aos.contract_roles FROM PUBLIC;

SELECT * FROM finish();
ROLLBACK;
