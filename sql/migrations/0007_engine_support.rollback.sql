SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;
DELETE FROM aos.contract_grants
WHERE
    (schema_name, table_name) = ('aos', 'events')
    OR (role_name, schema_name, table_name) IN (
       ('aos_incident_engine', 'policies', 'prevention_records'),
       ('aos_proposal_engine', 'policies', 'policy_rules'),
       ('aos_incident_engine', 'activity', 'runs'));
DELETE FROM aos.contract_tables
WHERE (schema_name, table_name) = ('aos', 'events');
DROP FUNCTION aos.hand_to_engine(regprocedure, name);
ALTER POLICY policy_rules_trusted_all ON policies.policy_rules TO aos_policy_engine;
REVOKE SELECT ON policies.policy_rules FROM aos_proposal_engine;
ALTER POLICY prevention_records_trusted_all ON policies.prevention_records TO aos_policy_engine;
REVOKE SELECT ON policies.prevention_records FROM aos_incident_engine;
REVOKE USAGE ON SCHEMA policies FROM aos_incident_engine;
ALTER POLICY runs_trusted_all ON activity.runs TO aos_worker, aos_policy_engine;
REVOKE SELECT ON activity.runs FROM aos_incident_engine;
REVOKE USAGE ON SCHEMA activity FROM aos_incident_engine;
DROP TABLE aos.events CASCADE;
RESET ROLE;
