SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;
DELETE FROM aos.contract_grants
WHERE
    role_name IN ('aos_api', 'aos_bi_tenant')
    OR (role_name, schema_name, table_name) IN (
        ('aos_bi', 'aos', 'view_refreshes'), ('aos_bi', 'activity', 'v_runs_o2'),
        ('aos_bi', 'incidents', 'v_incidents_o2'));
DELETE FROM aos.contract_facade_reads
WHERE table_name IN ('v_runs_o2_api', 'v_incidents_o2_api');
DELETE FROM aos.contract_tables
WHERE (schema_name, table_name) IN (
    ('aos', 'view_refreshes'), ('aos', 'bi_logins'), ('activity', 'v_runs_o2_tenant'),
    ('incidents', 'v_incidents_o2_tenant'), ('activity', 'v_runs_o2_api'), ('incidents', 'v_incidents_o2_api'));
DELETE FROM aos.contract_roles
WHERE role_name = 'aos_bi_tenant';
REVOKE SELECT ON activity.runs, activity.aos_traces, incidents.incidents, incidents.incident_events,
incidents.incident_evidence, policies.policy_proposals, policies.policy_rules, policies.prevention_records
FROM aos_api;
-- CASCADE: the tenant-filtered views (sql/views) use it; migrate re-creates them.
DROP FUNCTION aos.reader_tenant() CASCADE;
DROP TABLE aos.bi_logins;
DROP TABLE aos.view_refreshes;
REVOKE USAGE ON SCHEMA activity, incidents FROM aos_bi_tenant;
REVOKE USAGE ON SCHEMA activity, incidents, policies FROM aos_api;
RESET ROLE;
