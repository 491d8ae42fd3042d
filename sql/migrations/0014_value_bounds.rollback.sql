-- Undoes 0014: the activity tables accept any value their types hold again.
-- squawk-ignore-file ban-drop-constraint
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;

ALTER TABLE activity.aos_trace_steps
    DROP CONSTRAINT IF EXISTS aos_trace_steps_occurred_at_range,
    DROP CONSTRAINT IF EXISTS aos_trace_steps_retry_count_max,
    DROP CONSTRAINT IF EXISTS aos_trace_steps_duration_ms_max;
ALTER TABLE activity.aos_traces
    DROP CONSTRAINT IF EXISTS aos_traces_completed_at_range,
    DROP CONSTRAINT IF EXISTS aos_traces_started_at_range;
ALTER TABLE activity.runs
    DROP CONSTRAINT IF EXISTS runs_completed_at_range,
    DROP CONSTRAINT IF EXISTS runs_started_at_range,
    DROP CONSTRAINT IF EXISTS runs_created_at_range,
    DROP CONSTRAINT IF EXISTS runs_attempts_max,
    DROP CONSTRAINT IF EXISTS runs_duration_ms_max,
    DROP CONSTRAINT IF EXISTS runs_output_tokens_max,
    DROP CONSTRAINT IF EXISTS runs_input_tokens_max;

RESET ROLE;
