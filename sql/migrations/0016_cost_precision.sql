-- depends: 0015_trusted_tenants
-- Costs keep every digit they are given, or are refused. As numeric(12, 6) a cost finer than a
-- micro-dollar was rounded by the column's type before any CHECK or trigger could see it, so a
-- plain INSERT of 0.0000004 stored 0 without a word. The columns become plain numeric, and named
-- CHECKs hold what the type held: below 10^6 USD, at most 6 decimals (23514 naming the constraint).
--
-- Dropping the type modifier rewrites nothing (numeric(12, 6) values are already plain numeric),
-- but PostgreSQL refuses to change the type of a column a view reads, so the analytics view
-- activity.v_runs_o2 and its two views are dropped here, without CASCADE, and aosdb migrate builds
-- them again from sql/views/activity_v_runs_o2.sql right after this migration. Before anything
-- runs, aosdb migrate stops if a DBA built anything on them (views, indexes, grants). Until the
-- rebuild ends (seconds per million runs), queries on those views fail with 42P01.
-- squawk-ignore-file changing-column-type, constraint-missing-not-valid, ban-drop-view
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;

DROP VIEW IF EXISTS activity.v_runs_o2_api;
DROP VIEW IF EXISTS activity.v_runs_o2_tenant;
DROP MATERIALIZED VIEW IF EXISTS activity.v_runs_o2;

ALTER TABLE activity.runs ALTER COLUMN estimated_cost_usd TYPE numeric;
ALTER TABLE activity.aos_trace_steps ALTER COLUMN cost_usd TYPE numeric;

-- Every stored value came through numeric(12, 6), so these hold already; validating them is a
-- sequential read under the lock the type change took.
ALTER TABLE activity.runs
    ADD CONSTRAINT runs_estimated_cost_usd_max CHECK (estimated_cost_usd < 1000000) NOT VALID,
    ADD CONSTRAINT runs_estimated_cost_usd_micro
        CHECK (estimated_cost_usd = round(estimated_cost_usd, 6)) NOT VALID;
ALTER TABLE activity.aos_trace_steps
    ADD CONSTRAINT aos_trace_steps_cost_usd_max CHECK (cost_usd < 1000000) NOT VALID,
    ADD CONSTRAINT aos_trace_steps_cost_usd_micro CHECK (cost_usd = round(cost_usd, 6)) NOT VALID;
ALTER TABLE activity.runs VALIDATE CONSTRAINT runs_estimated_cost_usd_max;
ALTER TABLE activity.runs VALIDATE CONSTRAINT runs_estimated_cost_usd_micro;
ALTER TABLE activity.aos_trace_steps VALIDATE CONSTRAINT aos_trace_steps_cost_usd_max;
ALTER TABLE activity.aos_trace_steps VALIDATE CONSTRAINT aos_trace_steps_cost_usd_micro;

COMMENT ON COLUMN activity.runs.estimated_cost_usd IS
    'Estimated cost in US dollars: 0 to 999999.999999, at most 6 decimals (never rounded).';
COMMENT ON COLUMN activity.aos_trace_steps.cost_usd IS
    'Cost of the step in US dollars: 0 to 999999.999999, at most 6 decimals (never rounded).';
COMMENT ON CONSTRAINT runs_estimated_cost_usd_max ON activity.runs IS 'Below 10^6 USD.';
COMMENT ON CONSTRAINT runs_estimated_cost_usd_micro ON activity.runs IS
    'At most 6 decimals: a finer cost is refused, not rounded away.';
COMMENT ON CONSTRAINT aos_trace_steps_cost_usd_max ON activity.aos_trace_steps IS 'Below 10^6 USD.';
COMMENT ON CONSTRAINT aos_trace_steps_cost_usd_micro ON activity.aos_trace_steps IS
    'At most 6 decimals: a finer cost is refused, not rounded away.';

RESET ROLE;
