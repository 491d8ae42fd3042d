SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;
DROP SCHEMA api CASCADE;
DROP SCHEMA policies CASCADE;
DROP SCHEMA incidents CASCADE;
DROP SCHEMA activity CASCADE;
DROP SCHEMA aos CASCADE;
RESET ROLE;
