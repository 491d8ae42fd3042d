-- A run's life as a worker writes it, in one transaction: start, trace, 3 steps, finish; 5% fail.
\set t random(1, 2000)
\set f random(1, 20)
BEGIN;
SELECT nextval('pb_seq') AS n \gset
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, started_at)
VALUES ('b' || :t, 'm' || :n, 'agent', 'running', now());
INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id) VALUES ('b' || :t, 'm' || :n, 'm' || :n);
INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status)
VALUES ('b' || :t, 'm' || :n, 0, 'search', 'success');
INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status)
VALUES ('b' || :t, 'm' || :n, 1, 'search', 'success');
INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status)
VALUES ('b' || :t, 'm' || :n, 2, 'search', 'success');
UPDATE activity.runs SET status = CASE WHEN :f = 1 THEN 'failed' ELSE 'succeeded' END,
    error_code = CASE WHEN :f = 1 THEN 'EXECUTION_TIMEOUT' END, completed_at = now(),
    input_tokens = 500, output_tokens = 200, estimated_cost_usd = 0.01
WHERE tenant_id = 'b' || :t AND run_id = 'm' || :n;
COMMIT;
