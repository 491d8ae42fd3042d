-- Undoes 0017: the facades of the named-argument api and their helpers are dropped with
-- api_private. The facades of the checked-out sql/functions/api_*.sql come back with the next
-- aosdb migrate (a rollback marks every repeatable file pending), as 0016's views do.
-- squawk-ignore-file ban-drop-view
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;

DROP FUNCTION IF EXISTS api.activity_runs(text, text, text, boolean, boolean, timestamptz, timestamptz, integer, integer);
DROP FUNCTION IF EXISTS api.activity_run(text);
DROP FUNCTION IF EXISTS api.activity_run_evidence(text);
DROP FUNCTION IF EXISTS api.incidents(text, text, text, text, text, text, boolean, timestamptz, timestamptz, integer,
    integer);
DROP FUNCTION IF EXISTS api.incident(uuid);
DROP FUNCTION IF EXISTS api.incident_evidence(uuid);
DROP FUNCTION IF EXISTS api.policy_proposals(text, text, boolean, timestamptz, timestamptz, integer, integer);
DROP FUNCTION IF EXISTS api.policy_proposal(uuid);
DELETE FROM aos.contract_grants
WHERE schema_name = 'aos' AND table_name = 'api_endpoints';
DELETE FROM aos.contract_tables
WHERE schema_name = 'aos' AND table_name = 'api_endpoints';
DROP VIEW aos.api_endpoints;
UPDATE aos.contract_facades SET endpoint = 'GET /activity/runs'
WHERE function_name = 'api.activity_runs';
UPDATE aos.contract_facades SET endpoint = 'GET /activity/runs/{id}'
WHERE function_name = 'api.activity_run';
UPDATE aos.contract_facades SET endpoint = 'GET /activity/runs/{id}/evidence'
WHERE function_name = 'api.activity_run_evidence';
UPDATE aos.contract_facades SET endpoint = 'GET /incidents'
WHERE function_name = 'api.incidents';
UPDATE aos.contract_facades SET endpoint = 'GET /incidents/{id}'
WHERE function_name = 'api.incident';
UPDATE aos.contract_facades SET endpoint = 'GET /incidents/{id}/evidence'
WHERE function_name = 'api.incident_evidence';
UPDATE aos.contract_facades SET endpoint = 'GET /policy-proposals'
WHERE function_name = 'api.policy_proposals';
UPDATE aos.contract_facades SET endpoint = 'GET /policy-proposals/{id}'
WHERE function_name = 'api.policy_proposal';
COMMENT ON COLUMN aos.contract_facades.endpoint IS 'HTTP endpoint the function serves.';
DROP SCHEMA api_private CASCADE;

RESET ROLE;
