-- Undoes 0013: table-level INSERT/UPDATE again, as 0011 left them, and no key guard.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;

UPDATE aos.contract_grants SET column_names = NULL
WHERE (schema_name, table_name, privilege) IN (('activity', 'runs', 'INSERT'), ('activity', 'runs', 'UPDATE'),
                                               ('activity', 'aos_traces', 'UPDATE'))
  AND role_name IN ('aos_worker', 'aos_scenario');
UPDATE aos.contract_grants SET column_names = NULL
WHERE privilege = 'UPDATE'
  AND (role_name, schema_name, table_name) IN (('aos_incident_engine', 'incidents', 'incidents'),
                                               ('aos_proposal_engine', 'policies', 'policy_proposals'),
                                               ('aos_policy_engine', 'policies', 'policy_rules'));

-- A table-level REVOKE also drops the column lists; then the table-level grants of 0003-0005.
REVOKE INSERT, UPDATE ON activity.runs FROM aos_worker, aos_scenario;
GRANT INSERT, UPDATE ON activity.runs TO aos_worker, aos_scenario;
REVOKE UPDATE ON activity.aos_traces FROM aos_worker, aos_scenario;
GRANT UPDATE ON activity.aos_traces TO aos_worker, aos_scenario;
REVOKE UPDATE ON incidents.incidents FROM aos_incident_engine;
GRANT UPDATE ON incidents.incidents TO aos_incident_engine;
REVOKE UPDATE ON policies.policy_proposals FROM aos_proposal_engine;
GRANT UPDATE ON policies.policy_proposals TO aos_proposal_engine;
REVOKE UPDATE ON policies.policy_rules FROM aos_policy_engine;
GRANT UPDATE ON policies.policy_rules TO aos_policy_engine;

DROP TRIGGER _000_immutable_keys ON activity.runs;
DROP TRIGGER _000_immutable_keys ON activity.aos_traces;
DROP TRIGGER _000_immutable_keys ON activity.aos_trace_steps;
DROP TRIGGER _000_immutable_keys ON incidents.incidents;
DROP TRIGGER _000_immutable_keys ON policies.policy_proposals;
DROP TRIGGER _000_immutable_keys ON policies.policy_rules;
DROP FUNCTION aos.tg_immutable_keys();

RESET ROLE;
