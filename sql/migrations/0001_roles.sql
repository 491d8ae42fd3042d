-- Group roles of the contract (SPEC section 4). Roles are cluster-wide, so
-- they are created only when missing and survive a rollback (another database
-- of the cluster may still use them).
-- This migration runs as the migrating user (it needs CREATEROLE); every
-- later migration switches to aos_owner so that aos_owner owns every object.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';

DO $roles$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY[
        'aos_owner', 'aos_worker', 'aos_incident_engine', 'aos_proposal_engine',
        'aos_policy_engine', 'aos_operator', 'aos_api', 'aos_bi', 'aos_scenario'
    ] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = v_role) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
        END IF;
    END LOOP;
END
$roles$;

-- The migrating user must be able to SET ROLE aos_owner (superusers already
-- can), and aos_owner hands engine functions to their engine roles (ALTER
-- FUNCTION ... OWNER TO needs membership in the new owner).
DO $membership$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT aos_owner TO %I', current_user);
    END IF;
    GRANT aos_incident_engine, aos_proposal_engine, aos_policy_engine TO aos_owner;
END
$membership$;

-- aos_owner creates the domain schemas in this database.
DO $database$
BEGIN
    EXECUTE format('GRANT CREATE ON DATABASE %I TO aos_owner', current_database());
END
$database$;

-- No function is executable by PUBLIC unless it is meant to be: every
-- function aos_owner creates starts with no EXECUTE for PUBLIC and is granted
-- explicitly right after its definition.
ALTER DEFAULT PRIVILEGES FOR ROLE aos_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
