-- One successful run per transaction, random tenant of 2000.
\set t random(1, 2000)
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status)
VALUES ('b' || :t, 'o' || nextval('pb_seq'), 'agent', 'succeeded');
