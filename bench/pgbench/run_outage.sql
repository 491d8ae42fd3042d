-- An outage of one tenant: one failed run per transaction, every client on tenant b1 with the
-- same code (engines: incident, a link to the tenant's one pending proposal, dg-003 throttles).
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
VALUES ('b1', 'x' || nextval('pb_seq'), 'agent', 'failed', 'EXECUTION_TIMEOUT');
