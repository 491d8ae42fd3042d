-- depends: 0016_cost_precision
-- The api schema served as it is by an HTTP gateway that exposes one schema (PostgREST):
--   * the facades' helpers move to api_private, a schema no gateway exposes: aos_api may use it
--     (the facades are SECURITY INVOKER and call them), nobody else;
--   * the facades take named, typed arguments (no p_ prefix, filters as scalars with defaults,
--     page_size/page_offset), so a query string or a JSON body maps onto them one to one;
--   * "not found" is SQLSTATE PT404 (sql/functions/api_*.sql).
-- The old helpers and the old facade signatures are dropped here, so no overload is left behind;
-- sql/functions/api_*.sql create the new ones after the versioned migrations. The contract rows
-- name functions without signatures; each facade's endpoint becomes the route a gateway serves.
-- Dropping the old signatures is the point: a client of the jsonb signatures must move to the
-- named arguments (the README's "Facades for UIs and services").
-- squawk-ignore-file ban-drop-function
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';

-- Created by the migrating user (who holds CREATE on the database: it made aosdb's bookkeeping
-- schema) for aos_owner, which may lack CREATE on a database copied from a template.
CREATE SCHEMA api_private AUTHORIZATION aos_owner;
SET LOCAL ROLE aos_owner;
COMMENT ON SCHEMA api_private IS
    'Helpers of the api facades (validation, the list envelope, tenant-scoped lookups): never exposed over HTTP.';
GRANT USAGE ON SCHEMA api_private TO aos_api;

DROP FUNCTION IF EXISTS api.activity_runs(jsonb, integer, integer);
DROP FUNCTION IF EXISTS api.activity_run(text);
DROP FUNCTION IF EXISTS api.activity_run_evidence(text);
DROP FUNCTION IF EXISTS api.incidents(jsonb, integer, integer);
DROP FUNCTION IF EXISTS api.incident(uuid);
DROP FUNCTION IF EXISTS api.incident_evidence(uuid);
DROP FUNCTION IF EXISTS api.policy_proposals(jsonb, integer, integer);
DROP FUNCTION IF EXISTS api.policy_proposal(uuid);
DROP FUNCTION IF EXISTS api._run(text);
DROP FUNCTION IF EXISTS api._run_traces(text);
DROP FUNCTION IF EXISTS api._incident(uuid);
DROP FUNCTION IF EXISTS api._text_filter(jsonb, text, text[]);
DROP FUNCTION IF EXISTS api._bool_filter(jsonb, text);
DROP FUNCTION IF EXISTS api._time_filter(jsonb, text);
DROP FUNCTION IF EXISTS api._check_page(integer, integer);
DROP FUNCTION IF EXISTS api._envelope(jsonb, bigint, integer, integer);

-- What a gateway exposing the api schema serves to aos_api, as its OpenAPI document lists it:
-- every function of api that aos_api may execute, with its arguments (names, types, defaults),
-- result and volatility (STABLE and IMMUTABLE are served by GET and POST, read-only).
CREATE VIEW aos.api_endpoints AS
SELECT
    n.nspname || '.' || p.proname AS function_name,
    pg_get_function_arguments(p.oid) AS arguments,
    array(
        SELECT coalesce(p.proargnames[a.n], '')
        FROM generate_series(1, p.pronargs) AS a (n)
        ORDER BY a.n
    ) AS argument_names,
    array(
        SELECT format_type(a.type_oid, NULL)
        FROM unnest(p.proargtypes) WITH ORDINALITY AS a (type_oid, n)
        ORDER BY a.n
    ) AS argument_types,
    pg_get_function_result(p.oid) AS return_type,
    CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END AS volatility
FROM pg_catalog.pg_proc AS p
INNER JOIN pg_catalog.pg_namespace AS n ON p.pronamespace = n.oid
WHERE n.nspname = 'api'
  AND has_schema_privilege('aos_api', n.oid, 'USAGE')
  AND has_function_privilege('aos_api', p.oid, 'EXECUTE');
COMMENT ON VIEW aos.api_endpoints IS
    'The functions an HTTP gateway exposing schema api (PostgREST) serves to aos_api under /rpc/<name>: what its '
    'OpenAPI document lists. docs/api-endpoints.txt is the expected list.';
COMMENT ON COLUMN aos.api_endpoints.function_name IS 'api.<name>: served as /rpc/<name>.';
COMMENT ON COLUMN aos.api_endpoints.arguments IS 'Arguments with names, types and defaults, as PostgreSQL prints them.';
COMMENT ON COLUMN aos.api_endpoints.argument_names IS 'Input argument names in order: the query-string keys.';
COMMENT ON COLUMN aos.api_endpoints.argument_types IS 'Input argument types in order.';
COMMENT ON COLUMN aos.api_endpoints.return_type IS 'Result type.';
COMMENT ON COLUMN aos.api_endpoints.volatility IS 'immutable, stable or volatile (volatile would be POST only, read-write).';
GRANT SELECT ON aos.api_endpoints TO aos_api;

-- A gateway exposing schema api serves api.<name> at /rpc/<name> (GET: arguments in the query
-- string; POST: a JSON object), nowhere else.
UPDATE aos.contract_facades SET endpoint = '/rpc/' || split_part(function_name, '.', 2);
COMMENT ON COLUMN aos.contract_facades.endpoint IS
    'The route a gateway exposing schema api serves the function at: /rpc/<name>, by GET or POST.';

INSERT INTO aos.contract_tables (schema_name, table_name, domain, kind, tenant_scoped) VALUES
('aos', 'api_endpoints', 'platform', 'view', FALSE);
INSERT INTO aos.contract_grants (role_name, schema_name, table_name, privilege, column_names) VALUES
('aos_api', 'aos', 'api_endpoints', 'SELECT', NULL);

RESET ROLE;
