-- The roles themselves stay: they are cluster-wide and may be used by other
-- databases of the cluster. Undo what this migration granted in this database.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
ALTER DEFAULT PRIVILEGES FOR ROLE aos_owner GRANT EXECUTE ON FUNCTIONS TO PUBLIC;

DO $database$
BEGIN
    EXECUTE format('REVOKE CREATE ON DATABASE %I FROM aos_owner', current_database());
END
$database$;
