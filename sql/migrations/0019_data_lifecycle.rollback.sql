-- Undoes 0019: no run retention, no tenant offboarding. Nothing was deleted by creating them, so
-- nothing comes back; only the functions go.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;

DROP FUNCTION aos.offboard_tenant(text);
DROP FUNCTION activity._offboard_tenant(text);
DROP FUNCTION incidents._offboard_tenant(text);
DROP FUNCTION policies._offboard_tenant(text);
DROP PROCEDURE aos.prune_runs(interval, integer, bigint, bigint, bigint, integer);
DROP FUNCTION activity._prune_runs_batch(text, timestamptz, integer, timestamptz, uuid);

RESET ROLE;
