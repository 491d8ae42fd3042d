SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;
DROP TABLE activity.aos_trace_steps CASCADE;
DROP TABLE activity.aos_traces CASCADE;
DROP TABLE activity.runs CASCADE;
RESET ROLE;
