-- Undoes 0016: the cost columns are numeric(12, 6) again. Every stored cost has at most 6 decimals
-- and is below 10^6 (the CHECKs this drops held that), so the type change rounds nothing; it
-- rewrites both tables under an exclusive lock. The analytics views are dropped for the type
-- change (aosdb rollback stops first if a DBA built anything on them); the next aosdb migrate
-- builds them again.
-- squawk-ignore-file changing-column-type, ban-drop-constraint, ban-drop-view
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;

DROP VIEW IF EXISTS activity.v_runs_o2_api;
DROP VIEW IF EXISTS activity.v_runs_o2_tenant;
DROP MATERIALIZED VIEW IF EXISTS activity.v_runs_o2;

ALTER TABLE activity.runs
    DROP CONSTRAINT runs_estimated_cost_usd_max,
    DROP CONSTRAINT runs_estimated_cost_usd_micro,
    ALTER COLUMN estimated_cost_usd TYPE numeric(12, 6);
ALTER TABLE activity.aos_trace_steps
    DROP CONSTRAINT aos_trace_steps_cost_usd_max,
    DROP CONSTRAINT aos_trace_steps_cost_usd_micro,
    ALTER COLUMN cost_usd TYPE numeric(12, 6);

COMMENT ON COLUMN activity.runs.estimated_cost_usd IS 'Estimated cost in US dollars, 6 decimal places (non-negative).';
COMMENT ON COLUMN activity.aos_trace_steps.cost_usd IS 'Cost of the step in US dollars (non-negative).';

RESET ROLE;
