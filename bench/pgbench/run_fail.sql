-- One failed run per transaction, random tenant of 2000 (engines: incident, proposal link, events).
\set t random(1, 2000)
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
VALUES ('b' || :t, 'f' || nextval('pb_seq'), 'agent', 'failed', 'EXECUTION_TIMEOUT');
