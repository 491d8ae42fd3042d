SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;
DROP TABLE incidents.incident_evidence CASCADE;
DROP TABLE incidents.incident_events CASCADE;
DROP TABLE incidents.incidents CASCADE;
DROP TABLE incidents.failure_classes CASCADE;
RESET ROLE;
