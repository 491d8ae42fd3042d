-- Group roles of the contract (README.md, Roles). Roles are cluster-wide, so
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

-- Memberships and aos_owner's CREATE are granted only when missing: from
-- PostgreSQL 16 on, granting a role takes ADMIN OPTION on it, which a DBA has
-- only on the roles it created, so a second database of the cluster (or roles
-- a platform team created and granted) must not need any grant. What cannot be
-- granted fails here, naming the statement a superuser must run, before any
-- later migration runs. `aosdb migrate` checks the same beforehand
-- (cli/aosdb/privileges.py).
--
-- The migrating user must be able to SET ROLE aos_owner (superusers already
-- can): membership on 15, the membership's SET option from 16 on. aos_owner
-- hands engine functions to their engine roles (ALTER FUNCTION ... OWNER TO
-- needs SET) and replaces them when a repeatable file changes (CREATE OR
-- REPLACE needs the owner's privileges: INHERIT).
DO $membership$
DECLARE
    v16 constant boolean := current_setting('server_version_num')::int >= 160000;
    v_set constant text := CASE WHEN v16 THEN 'SET' ELSE 'MEMBER' END;
    -- From 16 on, GRANT leaves an existing membership of the same grantor as it is:
    -- spell the options out.
    v_options constant text := CASE WHEN v16 THEN ' WITH INHERIT TRUE, SET TRUE' ELSE '' END;
    v_engine text;
    v_grant text;
BEGIN
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
        AND NOT pg_catalog.pg_has_role(current_user, 'aos_owner', v_set) THEN
        v_grant := format('GRANT aos_owner TO %I', current_user) || v_options;
        BEGIN
            EXECUTE v_grant;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION '%', format(
                '%s cannot SET ROLE aos_owner and may not grant itself the membership (from PostgreSQL 16 on '
                'that takes ADMIN OPTION on aos_owner): a superuser must run: %s;', current_user, v_grant)
                USING ERRCODE = '42501';
        END;
    END IF;
    FOREACH v_engine IN ARRAY ARRAY['aos_incident_engine', 'aos_proposal_engine', 'aos_policy_engine'] LOOP
        IF NOT (pg_catalog.pg_has_role('aos_owner', v_engine, v_set)
                AND pg_catalog.pg_has_role('aos_owner', v_engine, 'USAGE')) THEN
            v_grant := format('GRANT %I TO aos_owner', v_engine) || v_options;
            BEGIN
                EXECUTE v_grant;
            EXCEPTION WHEN insufficient_privilege THEN
                RAISE EXCEPTION '%', format(
                    'aos_owner is not a member of %s and %s may not grant it (from PostgreSQL 16 on that takes '
                    'ADMIN OPTION on %s): a superuser must run: %s;', v_engine, current_user, v_engine, v_grant)
                    USING ERRCODE = '42501';
            END;
        END IF;
    END LOOP;
END
$membership$;

-- aos_owner creates the domain schemas in this database. Without the grant
-- option GRANT grants nothing and only warns, and 0002 would fail later: fail
-- here instead.
DO $database$
BEGIN
    IF pg_catalog.has_database_privilege('aos_owner', current_database(), 'CREATE') THEN
        RETURN;
    END IF;
    IF pg_catalog.has_database_privilege(current_database(), 'CREATE WITH GRANT OPTION') THEN
        EXECUTE format('GRANT CREATE ON DATABASE %I TO aos_owner', current_database());
    ELSE
        RAISE EXCEPTION '%', format(
            'aos_owner has no CREATE on database %s and %s may not grant it (neither the database''s owner nor a '
            'holder of CREATE WITH GRANT OPTION): a superuser must run: GRANT CREATE ON DATABASE %I TO aos_owner;',
            current_database(), current_user, current_database())
            USING ERRCODE = '42501';
    END IF;
END
$database$;

-- No function is executable by PUBLIC unless it is meant to be: every
-- function aos_owner creates starts with no EXECUTE for PUBLIC and is granted
-- explicitly right after its definition. Set as aos_owner: FOR ROLE aos_owner
-- would take INHERIT from 16 on, where SET ROLE takes only SET.
SET LOCAL ROLE aos_owner;
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
RESET ROLE;
