-- aos_maintenance stays (roles are cluster-wide; another database may use it). A pg_cron job
-- that calls the procedures fails until 0018 is applied again.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;
DELETE FROM aos.contract_grants
WHERE role_name = 'aos_maintenance';
DELETE FROM aos.contract_roles
WHERE role_name = 'aos_maintenance';
DROP PROCEDURE aos.prune_outbox(interval);
DROP PROCEDURE aos.refresh_analytics(interval);
REVOKE SELECT ON aos.view_refreshes FROM aos_maintenance;
RESET ROLE;
