-- activity.v_runs_o2: one row per run with its step aggregates, for BI tools
-- and the runs list. Materialized: refreshed by `aosdb refresh` (CONCURRENTLY,
-- readers never block). activity.v_runs_o2_tenant is the same rows filtered to
-- the reader's tenant (materialized views ignore row-level security).
CREATE MATERIALIZED VIEW activity.v_runs_o2 AS
SELECT
    r.run_id,
    r.tenant_id,
    r.id AS run_uuid,
    r.agent_id,
    r.status,
    r.state,
    r.error_code,
    r.created_at,
    r.started_at,
    r.completed_at,
    r.duration_ms,
    r.input_tokens,
    r.output_tokens,
    r.input_tokens::numeric + r.output_tokens AS total_tokens,  -- numeric: a sum never stops a refresh
    r.estimated_cost_usd,
    coalesce(s.trace_count, 0) AS trace_count,
    coalesce(s.step_count, 0) AS step_count,
    coalesce(s.error_step_count, 0) AS error_step_count,
    coalesce(s.retry_count, 0) AS retry_count,
    coalesce(s.step_cost_usd, 0) AS step_cost_usd,
    r.policy_violation,
    r.is_synthetic,
    r.synthetic_scenario_id
FROM activity.runs AS r
LEFT JOIN (
    SELECT
        t.tenant_id,
        t.run_id,
        count(DISTINCT t.trace_id) AS trace_count,
        count(st.step_index) AS step_count,
        count(st.step_index) FILTER (WHERE st.status = 'failure') AS error_step_count,
        sum(st.retry_count) AS retry_count,
        sum(st.cost_usd) AS step_cost_usd
    FROM activity.aos_traces AS t
    LEFT JOIN activity.aos_trace_steps AS st ON st.tenant_id = t.tenant_id AND st.trace_id = t.trace_id
    GROUP BY t.tenant_id, t.run_id
) AS s ON s.tenant_id = r.tenant_id AND s.run_id = r.run_id
WITH DATA;

-- The unique index REFRESH ... CONCURRENTLY needs; the second serves lists by time.
CREATE UNIQUE INDEX v_runs_o2_key ON activity.v_runs_o2 (tenant_id, run_id);
CREATE INDEX v_runs_o2_tenant_created_at_idx ON activity.v_runs_o2 (tenant_id, created_at DESC, run_id DESC);

COMMENT ON MATERIALIZED VIEW activity.v_runs_o2 IS
    'Analytics: one row per run with step aggregates. As fresh as its last refresh (aos.view_refreshes; aosdb refresh).';
COMMENT ON COLUMN activity.v_runs_o2.run_id IS 'The worker''s run identifier, unique per tenant.';
COMMENT ON COLUMN activity.v_runs_o2.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN activity.v_runs_o2.run_uuid IS 'Generated uuid of the run (activity.runs.id).';
COMMENT ON COLUMN activity.v_runs_o2.agent_id IS 'Agent that executed the run.';
COMMENT ON COLUMN activity.v_runs_o2.status IS 'queued, running, succeeded, failed, retry, halted or aborted.';
COMMENT ON COLUMN activity.v_runs_o2.state IS 'completed when the status is final, else live.';
COMMENT ON COLUMN activity.v_runs_o2.error_code IS 'Error code the worker reported (null when none).';
COMMENT ON COLUMN activity.v_runs_o2.created_at IS 'When the run was recorded.';
COMMENT ON COLUMN activity.v_runs_o2.started_at IS 'When the run started.';
COMMENT ON COLUMN activity.v_runs_o2.completed_at IS 'When the run reached its final status.';
COMMENT ON COLUMN activity.v_runs_o2.duration_ms IS 'Wall-clock duration in milliseconds.';
COMMENT ON COLUMN activity.v_runs_o2.input_tokens IS 'LLM input tokens.';
COMMENT ON COLUMN activity.v_runs_o2.output_tokens IS 'LLM output tokens.';
COMMENT ON COLUMN activity.v_runs_o2.total_tokens IS 'input_tokens + output_tokens.';
COMMENT ON COLUMN activity.v_runs_o2.estimated_cost_usd IS 'Estimated cost in US dollars.';
COMMENT ON COLUMN activity.v_runs_o2.trace_count IS 'Traces of the run.';
COMMENT ON COLUMN activity.v_runs_o2.step_count IS 'Steps over all traces of the run.';
COMMENT ON COLUMN activity.v_runs_o2.error_step_count IS 'Steps with status failure.';
COMMENT ON COLUMN activity.v_runs_o2.retry_count IS 'Retries the steps needed (sum of aos_trace_steps.retry_count).';
COMMENT ON COLUMN activity.v_runs_o2.step_cost_usd IS 'Sum of the steps'' cost_usd.';
COMMENT ON COLUMN activity.v_runs_o2.policy_violation IS 'True when a rule or guardrail was violated.';
COMMENT ON COLUMN activity.v_runs_o2.is_synthetic IS 'True for runs injected by an SDSR scenario.';
COMMENT ON COLUMN activity.v_runs_o2.synthetic_scenario_id IS 'Scenario that injected the run.';

GRANT SELECT ON activity.v_runs_o2 TO aos_bi;

-- The reader's tenant only, for tenant-facing BI logins (aos.bi_logins).
-- security_barrier keeps the filter first: a login's own functions never see
-- another tenant's rows.
CREATE VIEW activity.v_runs_o2_tenant WITH (security_barrier) AS
SELECT v.* FROM activity.v_runs_o2 AS v
WHERE v.tenant_id = (SELECT aos.reader_tenant());
COMMENT ON VIEW activity.v_runs_o2_tenant IS
    'activity.v_runs_o2 restricted to the reader''s tenant: for tenant-facing BI logins (aos.bi_logins).';
SELECT aos.copy_column_comments('activity.v_runs_o2', 'activity.v_runs_o2_tenant');

GRANT SELECT ON activity.v_runs_o2_tenant TO aos_bi_tenant;

-- The api facades' view: the caller's tenant (aos.current_tenant()). A security
-- barrier, so aos_api's own (pg_temp) functions never see another tenant's rows;
-- its ORDER BY is the list index's, so a facade's first page still comes straight
-- off that index (the barrier keeps the outer ORDER BY out of the subquery).
CREATE VIEW activity.v_runs_o2_api WITH (security_barrier) AS
SELECT v.* FROM activity.v_runs_o2 AS v
WHERE v.tenant_id = (SELECT aos.current_tenant())
ORDER BY v.tenant_id, v.created_at DESC, v.run_id DESC;
COMMENT ON VIEW activity.v_runs_o2_api IS
    'activity.v_runs_o2 restricted to aos.current_tenant(): read by the api facades (aos_api only).';
SELECT aos.copy_column_comments('activity.v_runs_o2', 'activity.v_runs_o2_api');

GRANT SELECT ON activity.v_runs_o2_api TO aos_api;
