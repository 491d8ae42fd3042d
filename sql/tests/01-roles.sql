-- The eleven group roles: the nine of the contract (README.md, Roles),
-- aos_bi_tenant, the tenant-facing BI role of migration 0008, and
-- aos_maintenance, the operations role of 0018 (refresh, retention). They exist,
-- cannot log in, hold no cluster-wide power, and inherit nothing from each
-- other except that the owner is a member of the three engine roles (it hands
-- engine functions to them with ALTER FUNCTION ... OWNER TO).
BEGIN;

CREATE TEMP TABLE expected_roles (role_name name PRIMARY KEY) ON COMMIT DROP;
INSERT INTO expected_roles VALUES
    ('aos_owner'), ('aos_worker'), ('aos_incident_engine'), ('aos_proposal_engine'), ('aos_policy_engine'),
    ('aos_operator'), ('aos_api'), ('aos_bi'), ('aos_bi_tenant'), ('aos_scenario'),
    ('aos_maintenance');

SELECT plan((SELECT count(*)::int * 3 FROM expected_roles) + 2);

SELECT has_role(role_name, format('role %s exists', role_name))
FROM expected_roles ORDER BY role_name;

SELECT is(r.rolcanlogin, FALSE, format('role %s is NOLOGIN', e.role_name))
FROM expected_roles AS e
LEFT JOIN pg_catalog.pg_roles AS r ON r.rolname = e.role_name
ORDER BY e.role_name;

-- The one exception: aos_worker bypasses row-level security, because
-- PostgreSQL refuses COPY FROM under RLS and the worker is trusted with every
-- tenant anyway (migration 0007).
SELECT is(
    ARRAY[r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls],
    ARRAY[FALSE, FALSE, FALSE, FALSE, e.role_name = 'aos_worker'],
    format('role %s has no SUPERUSER, CREATEROLE, CREATEDB, REPLICATION%s', e.role_name,
           CASE WHEN e.role_name = 'aos_worker' THEN ', and BYPASSRLS (for COPY)' ELSE ' or BYPASSRLS' END)
)
FROM expected_roles AS e
LEFT JOIN pg_catalog.pg_roles AS r ON r.rolname = e.role_name
ORDER BY e.role_name;

-- A tenant-scoped role that inherited a trusted role would escape row-level
-- security: the only memberships are the owner's in the engine roles.
SELECT set_eq(
    $$
    SELECT member.rolname::text AS member, granted.rolname::text AS granted_role
    FROM pg_catalog.pg_auth_members AS m
    JOIN pg_catalog.pg_roles AS member ON member.oid = m.member
    JOIN pg_catalog.pg_roles AS granted ON granted.oid = m.roleid
    WHERE member.rolname IN (SELECT role_name FROM expected_roles)
    $$,
    $$
    VALUES ('aos_owner', 'aos_incident_engine'),
           ('aos_owner', 'aos_proposal_engine'),
           ('aos_owner', 'aos_policy_engine')
    $$,
    'the eleven roles are members of no role but the owner of the three engine roles'
);

SELECT is_empty(
    $$
    SELECT member.rolname
    FROM pg_catalog.pg_auth_members AS m
    JOIN pg_catalog.pg_roles AS member ON member.oid = m.member
    JOIN pg_catalog.pg_roles AS granted ON granted.oid = m.roleid
    WHERE granted.rolname IN ('aos_worker', 'aos_incident_engine', 'aos_proposal_engine', 'aos_policy_engine')
      AND member.rolname IN (SELECT role_name FROM expected_roles WHERE role_name <> 'aos_owner')
    $$,
    'no tenant-scoped or read-only role is a member of a trusted (worker or engine) role'
);

SELECT * FROM finish();
ROLLBACK;
