-- The roles themselves stay: they are cluster-wide and may be used by other
-- databases of the cluster. Undo what this migration granted in this database.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
-- As aos_owner, like 0001: FOR ROLE aos_owner would take INHERIT from 16 on.
SET LOCAL ROLE aos_owner;
ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO PUBLIC;
RESET ROLE;

DO $database$
BEGIN
    EXECUTE format('REVOKE CREATE ON DATABASE %I FROM aos_owner', current_database());
END
$database$;
