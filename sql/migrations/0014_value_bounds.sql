-- depends: 0013_immutable_keys
-- Bounds on what the activity tables store, so that no stored row breaks the engines or the
-- views' arithmetic later (one run of 9e18 tokens stopped every tenant's refresh):
--   tokens      0 .. 10^12 each, so input + output always fits a bigint;
--   durations   0 .. 10^13 ms, more than the whole timestamp range, so a duration derived from
--               started_at and completed_at always fits;
--   attempts, retry_count  0 .. 10^6, so the worker API's integer casts never overflow;
--   timestamps  finite, from 2000-01-01 to before 2200-01-01 (UTC).
-- Costs are numeric(12, 6): the type bounds them below 10^6 USD. The worker API also keeps
-- worker timestamps within aos.timestamp_window of now and rejects costs finer than 10^-6 USD:
-- a CHECK can call neither now() nor see the digits the column type rounds away.
--
-- Rows that break a bound stop the migration with their count per constraint before any lock
-- is taken. The constraints are added NOT VALID, then validated; both run in this migration's
-- one transaction, so the validating scan (a sequential read, no index) still holds the lock the
-- ADD took: seconds on millions of runs, under lock_timeout for the wait.
-- squawk-ignore-file constraint-missing-not-valid
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;

DO $do$
DECLARE
    v_bad text;
BEGIN
    SELECT string_agg(format('%s: %s row(s)', b.name, b.n), '; ') INTO v_bad
    FROM (
        SELECT 'runs_input_tokens_max' AS name, count(*) AS n FROM activity.runs WHERE input_tokens > 1e12
        UNION ALL SELECT 'runs_output_tokens_max', count(*) FROM activity.runs WHERE output_tokens > 1e12
        UNION ALL SELECT 'runs_duration_ms_max', count(*) FROM activity.runs WHERE duration_ms > 1e13
        UNION ALL SELECT 'runs_attempts_max', count(*) FROM activity.runs WHERE attempts > 1000000
        UNION ALL SELECT 'runs_created_at_range', count(*) FROM activity.runs
            WHERE NOT (created_at >= '2000-01-01 00:00:00+00' AND created_at < '2200-01-01 00:00:00+00')
        UNION ALL SELECT 'runs_started_at_range', count(*) FROM activity.runs
            WHERE NOT (started_at >= '2000-01-01 00:00:00+00' AND started_at < '2200-01-01 00:00:00+00')
        UNION ALL SELECT 'runs_completed_at_range', count(*) FROM activity.runs
            WHERE NOT (completed_at >= '2000-01-01 00:00:00+00' AND completed_at < '2200-01-01 00:00:00+00')
        UNION ALL SELECT 'aos_traces_started_at_range', count(*) FROM activity.aos_traces
            WHERE NOT (started_at >= '2000-01-01 00:00:00+00' AND started_at < '2200-01-01 00:00:00+00')
        UNION ALL SELECT 'aos_traces_completed_at_range', count(*) FROM activity.aos_traces
            WHERE NOT (completed_at >= '2000-01-01 00:00:00+00' AND completed_at < '2200-01-01 00:00:00+00')
        UNION ALL SELECT 'aos_trace_steps_duration_ms_max', count(*) FROM activity.aos_trace_steps
            WHERE duration_ms > 1e13
        UNION ALL SELECT 'aos_trace_steps_retry_count_max', count(*) FROM activity.aos_trace_steps
            WHERE retry_count > 1000000
        UNION ALL SELECT 'aos_trace_steps_occurred_at_range', count(*) FROM activity.aos_trace_steps
            WHERE NOT (occurred_at >= '2000-01-01 00:00:00+00' AND occurred_at < '2200-01-01 00:00:00+00')
    ) AS b
    WHERE b.n > 0;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'activity rows out of bounds, nothing was changed: %', v_bad
            USING ERRCODE = '23514',
                  HINT = 'Correct or delete those rows (see the bounds in sql/migrations/0014_value_bounds.sql), '
                         'then run aosdb migrate again.';
    END IF;
END
$do$;

ALTER TABLE activity.runs
    ADD CONSTRAINT runs_input_tokens_max CHECK (input_tokens <= 1000000000000) NOT VALID,
    ADD CONSTRAINT runs_output_tokens_max CHECK (output_tokens <= 1000000000000) NOT VALID,
    ADD CONSTRAINT runs_duration_ms_max CHECK (duration_ms <= 10000000000000) NOT VALID,
    ADD CONSTRAINT runs_attempts_max CHECK (attempts <= 1000000) NOT VALID,
    ADD CONSTRAINT runs_created_at_range
        CHECK (created_at >= '2000-01-01 00:00:00+00' AND created_at < '2200-01-01 00:00:00+00') NOT VALID,
    ADD CONSTRAINT runs_started_at_range
        CHECK (started_at >= '2000-01-01 00:00:00+00' AND started_at < '2200-01-01 00:00:00+00') NOT VALID,
    ADD CONSTRAINT runs_completed_at_range
        CHECK (completed_at >= '2000-01-01 00:00:00+00' AND completed_at < '2200-01-01 00:00:00+00') NOT VALID;
ALTER TABLE activity.aos_traces
    ADD CONSTRAINT aos_traces_started_at_range
        CHECK (started_at >= '2000-01-01 00:00:00+00' AND started_at < '2200-01-01 00:00:00+00') NOT VALID,
    ADD CONSTRAINT aos_traces_completed_at_range
        CHECK (completed_at >= '2000-01-01 00:00:00+00' AND completed_at < '2200-01-01 00:00:00+00') NOT VALID;
ALTER TABLE activity.aos_trace_steps
    ADD CONSTRAINT aos_trace_steps_duration_ms_max CHECK (duration_ms <= 10000000000000) NOT VALID,
    ADD CONSTRAINT aos_trace_steps_retry_count_max CHECK (retry_count <= 1000000) NOT VALID,
    ADD CONSTRAINT aos_trace_steps_occurred_at_range
        CHECK (occurred_at >= '2000-01-01 00:00:00+00' AND occurred_at < '2200-01-01 00:00:00+00') NOT VALID;

ALTER TABLE activity.runs VALIDATE CONSTRAINT runs_input_tokens_max;
ALTER TABLE activity.runs VALIDATE CONSTRAINT runs_output_tokens_max;
ALTER TABLE activity.runs VALIDATE CONSTRAINT runs_duration_ms_max;
ALTER TABLE activity.runs VALIDATE CONSTRAINT runs_attempts_max;
ALTER TABLE activity.runs VALIDATE CONSTRAINT runs_created_at_range;
ALTER TABLE activity.runs VALIDATE CONSTRAINT runs_started_at_range;
ALTER TABLE activity.runs VALIDATE CONSTRAINT runs_completed_at_range;
ALTER TABLE activity.aos_traces VALIDATE CONSTRAINT aos_traces_started_at_range;
ALTER TABLE activity.aos_traces VALIDATE CONSTRAINT aos_traces_completed_at_range;
ALTER TABLE activity.aos_trace_steps VALIDATE CONSTRAINT aos_trace_steps_duration_ms_max;
ALTER TABLE activity.aos_trace_steps VALIDATE CONSTRAINT aos_trace_steps_retry_count_max;
ALTER TABLE activity.aos_trace_steps VALIDATE CONSTRAINT aos_trace_steps_occurred_at_range;

COMMENT ON CONSTRAINT runs_input_tokens_max ON activity.runs IS
    'At most 10^12 input tokens: input + output always fits a bigint.';
COMMENT ON CONSTRAINT runs_output_tokens_max ON activity.runs IS
    'At most 10^12 output tokens: input + output always fits a bigint.';
COMMENT ON CONSTRAINT runs_duration_ms_max ON activity.runs IS
    'At most 10^13 ms: covers any duration between two timestamps in range.';
COMMENT ON CONSTRAINT runs_attempts_max ON activity.runs IS 'At most 10^6 attempts.';
COMMENT ON CONSTRAINT runs_created_at_range ON activity.runs IS 'Finite, from 2000-01-01 to before 2200-01-01 UTC.';
COMMENT ON CONSTRAINT runs_started_at_range ON activity.runs IS 'Finite, from 2000-01-01 to before 2200-01-01 UTC.';
COMMENT ON CONSTRAINT runs_completed_at_range ON activity.runs IS 'Finite, from 2000-01-01 to before 2200-01-01 UTC.';
COMMENT ON CONSTRAINT aos_traces_started_at_range ON activity.aos_traces IS
    'Finite, from 2000-01-01 to before 2200-01-01 UTC.';
COMMENT ON CONSTRAINT aos_traces_completed_at_range ON activity.aos_traces IS
    'Finite, from 2000-01-01 to before 2200-01-01 UTC.';
COMMENT ON CONSTRAINT aos_trace_steps_duration_ms_max ON activity.aos_trace_steps IS
    'At most 10^13 ms, as runs.duration_ms.';
COMMENT ON CONSTRAINT aos_trace_steps_retry_count_max ON activity.aos_trace_steps IS 'At most 10^6 retries.';
COMMENT ON CONSTRAINT aos_trace_steps_occurred_at_range ON activity.aos_trace_steps IS
    'Finite, from 2000-01-01 to before 2200-01-01 UTC.';

RESET ROLE;
