-- depends: 0008_read_side
-- transactional: false
-- Indexes for the facades' paths (first page of each filtered list; the
-- incidents a run caused), built CONCURRENTLY so a DBA can apply them to a
-- live database without blocking the writers.
SET lock_timeout = '5s';
SET statement_timeout = '30min';
SET ROLE aos_owner;

CREATE INDEX CONCURRENTLY IF NOT EXISTS runs_tenant_status_created_at_idx
ON activity.runs (tenant_id, status, created_at DESC);

CREATE INDEX CONCURRENTLY IF NOT EXISTS runs_tenant_agent_created_at_idx
ON activity.runs (tenant_id, agent_id, created_at DESC);

CREATE INDEX CONCURRENTLY IF NOT EXISTS incidents_source_run_idx
ON incidents.incidents (tenant_id, source_run_id);

CREATE INDEX CONCURRENTLY IF NOT EXISTS policy_proposals_tenant_status_created_at_idx
ON policies.policy_proposals (tenant_id, status, created_at DESC);

RESET ROLE;
