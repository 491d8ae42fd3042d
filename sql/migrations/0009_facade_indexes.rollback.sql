-- transactional: false
SET lock_timeout = '5s';
SET statement_timeout = '30min';
SET ROLE aos_owner;
DROP INDEX CONCURRENTLY IF EXISTS policies.policy_proposals_tenant_status_created_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS incidents.incidents_source_run_idx;
DROP INDEX CONCURRENTLY IF EXISTS activity.runs_tenant_agent_created_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS activity.runs_tenant_status_created_at_idx;
RESET ROLE;
