"""Preflight of `aosdb migrate`: can the connected user apply the migrations without a superuser?

It only reads (catalog, has_*_privilege, pg_has_role), so the runner calls it before anything
changes and a DBA who lacks something learns it from one line, with the exact statements a
superuser must run, instead of from a migration that failed half-way through the list.

What the migrations need from a migrating user that is not a superuser:

- CREATE on the database: the runner creates its bookkeeping schema aosdb_migrations (CREATE
  SCHEMA IF NOT EXISTS checks the privilege even when the schema exists);
- CREATEROLE when a group role is missing: 0001 creates the nine group roles, 0008 aos_bi_tenant,
  0018 aos_maintenance;
- SET ROLE aos_owner: every later migration and every repeatable file runs as aos_owner;
- aos_owner a member of the three engine roles, with SET (ALTER FUNCTION ... OWNER TO an engine
  role) and INHERIT (a changed repeatable file replaces a function an engine role owns);
- CREATE on the database for aos_owner: 0002 creates the domain schemas as aos_owner.

0001 grants the memberships and aos_owner's CREATE itself when the migrating user may. On
PostgreSQL 15 CREATEROLE may grant any non-superuser role and membership implies SET ROLE; from 16
on granting a role takes ADMIN OPTION on it (its creator gets that, nobody else does) and SET ROLE
takes the SET option of the membership. CREATE on the database can be granted by the database's
owner or a holder of CREATE WITH GRANT OPTION. BYPASSRLS for aos_worker (0007) only a superuser
can give: without it the migration works and the worker's COPY does not, so that is a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from aosdb.errors import AosdbError

OWNER = "aos_owner"
WORKER = "aos_worker"
ENGINE_ROLES = ("aos_incident_engine", "aos_proposal_engine", "aos_policy_engine")
# Every group role a migration creates when missing: 0001's nine, 0008's aos_bi_tenant, 0018's aos_maintenance.
GROUP_ROLES = (OWNER, WORKER, *ENGINE_ROLES, "aos_operator", "aos_api", "aos_bi", "aos_scenario", "aos_bi_tenant",
               "aos_maintenance")
BOOKKEEPING_SCHEMA = "aosdb_migrations"
# The migration that gives aos_worker BYPASSRLS when a superuser runs it.
BYPASSRLS_MIGRATION = "0007_engine_support"

BYPASSRLS_WARNING = (
    "aos_worker lacks BYPASSRLS (only a superuser can give it): the worker's COPY into the activity "
    "tables fails under row-level security (INSERT works); a superuser must run: ALTER ROLE aos_worker BYPASSRLS;"
)


@dataclass
class Preflight:
    """missing: why the migration cannot proceed; grants: what a superuser must run to fix that;
    warnings: what works but degrades."""

    missing: list[str] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def raise_if_missing(self) -> None:
        if not self.missing:
            return
        statements = " ".join(f"{g};" for g in self.grants)
        raise AosdbError(f"cannot migrate: {'; '.join(self.missing)}; a superuser must run: {statements}")

    def _need(self, reason: str, *grants: str) -> None:
        self.missing.append(reason)
        self.grants.extend(g for g in grants if g not in self.grants)


@dataclass
class _Facts:
    version: int
    user: str  # quote_ident'ed, ready for a statement
    database: str  # quote_ident'ed
    superuser: bool
    createrole: bool
    db_create: bool
    db_create_grantable: bool
    roles: dict[str, bool]  # existing group role -> rolbypassrls


def _facts(conn: psycopg.Connection) -> _Facts:
    row = conn.execute(
        """SELECT current_setting('server_version_num')::int, quote_ident(current_user), quote_ident(current_database()),
                  r.rolsuper, r.rolcreaterole,
                  has_database_privilege(current_database(), 'CREATE'),
                  has_database_privilege(current_database(), 'CREATE WITH GRANT OPTION')
           FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user"""
    ).fetchone()
    roles = dict(conn.execute("SELECT rolname::text, rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = ANY(%s)",
                              (list(GROUP_ROLES),)).fetchall())  # fmt: skip
    return _Facts(*row, roles=roles)


def _has_role(conn: psycopg.Connection, member: str | None, role: str, *privileges: str) -> bool:
    """pg_has_role for each privilege (all must hold); member None is the connected user."""
    member_sql = "current_user" if member is None else "%(member)s::name"
    checks = " AND ".join(f"pg_catalog.pg_has_role({member_sql}, %(role)s::name, %(p{i})s)" for i in range(len(privileges)))
    params = {"member": member, "role": role, **{f"p{i}": p for i, p in enumerate(privileges)}}
    return conn.execute(f"SELECT {checks}", params).fetchone()[0]


def set_privilege(version: int) -> str:
    """The pg_has_role privilege that means "may SET ROLE": SET from 16 on, membership before."""
    return "SET" if version >= 160000 else "MEMBER"


def grant_role(roles: list[str], member: str, version: int, existing: bool) -> str:
    """GRANT roles TO member. From 16 on a plain GRANT leaves an existing membership of the same
    grantor as it is (without SET, say), so the options are spelled out when one exists."""
    options = " WITH INHERIT TRUE, SET TRUE" if version >= 160000 and existing else ""
    return f"GRANT {', '.join(roles)} TO {member}{options}"


def preflight(conn: psycopg.Connection) -> Preflight:
    """What the connected (autocommit) user lacks to run `aosdb migrate` on this database. Reads only."""
    f = _facts(conn)
    result = Preflight()
    if f.superuser:
        if WORKER in f.roles and not f.roles[WORKER] and BYPASSRLS_MIGRATION in _applied(conn):
            result.warnings.append(BYPASSRLS_WARNING)  # 0007 ran without a superuser, and will not run again
        return result
    if not f.roles.get(WORKER, False):
        result.warnings.append(BYPASSRLS_WARNING)

    v16 = f.version >= 160000
    setp = set_privilege(f.version)
    missing_roles = [r for r in GROUP_ROLES if r not in f.roles]
    createrole = f.createrole
    if missing_roles and not createrole:
        result._need(f"{f.user} cannot create the missing roles {', '.join(missing_roles)} (no CREATEROLE)",
                     f"ALTER ROLE {f.user} CREATEROLE")
        createrole = True  # what the statement above gives; the checks below assume it

    def can_grant(role: str) -> bool:
        if role not in f.roles:
            return createrole  # it creates the role (and from 16 on gets ADMIN OPTION on it)
        if not v16 and createrole:
            return True
        return _has_role(conn, None, role, "MEMBER WITH ADMIN OPTION")

    why_not = ("from PostgreSQL 16 on that takes ADMIN OPTION on the role" if v16
               else "that takes CREATEROLE or ADMIN OPTION on the role")

    # SET ROLE aos_owner: every migration after 0001 and every repeatable file runs as aos_owner.
    if OWNER in f.roles and not _has_role(conn, None, OWNER, setp) and not can_grant(OWNER):
        member = _has_role(conn, None, OWNER, "MEMBER")
        result._need(f"{f.user} cannot SET ROLE {OWNER} and cannot grant itself the membership ({why_not})",
                     grant_role([OWNER], f.user, f.version, member))

    # aos_owner hands engine functions to the engine roles and later replaces them.
    lacking = [e for e in ENGINE_ROLES
               if e in f.roles and OWNER in f.roles and not _has_role(conn, OWNER, e, setp, "USAGE")]
    ungrantable = [e for e in ENGINE_ROLES
                   if (e in lacking or OWNER not in f.roles) and e in f.roles and not can_grant(e)]
    if ungrantable:
        existing = OWNER in f.roles and any(_has_role(conn, OWNER, e, "MEMBER") for e in ungrantable)
        # A GRANT to aos_owner needs aos_owner to exist: the superuser then creates it too.
        create_owner = [] if OWNER in f.roles else [f"CREATE ROLE {OWNER} NOLOGIN",
                                                     grant_role([OWNER], f.user, f.version, False)]
        result._need(f"{OWNER} is not a member of {', '.join(ungrantable)} (with SET and INHERIT) and {f.user} "
                     f"cannot grant it ({why_not})", *create_owner, grant_role(ungrantable, OWNER, f.version, existing))

    # CREATE on the database: the bookkeeping schema (the user), the domain schemas (aos_owner).
    owner_has_create = OWNER in f.roles and conn.execute(
        "SELECT has_database_privilege(%s, current_database(), 'CREATE')", (OWNER,)).fetchone()[0]
    owner_needs_grant = not owner_has_create and not f.db_create_grantable
    if owner_needs_grant and OWNER not in f.roles:
        # aos_owner does not exist yet: the user grants it in 0001, given the grant option.
        result._need(f"{f.user} cannot grant CREATE on database {f.database} to {OWNER}, which creates the domain "
                     "schemas (it is neither the database's owner nor holds CREATE WITH GRANT OPTION)",
                     f"GRANT CREATE ON DATABASE {f.database} TO {f.user} WITH GRANT OPTION")
    elif not f.db_create:
        result._need(f"{f.user} has no CREATE on database {f.database} (it creates the bookkeeping schema "
                     f"{BOOKKEEPING_SCHEMA})", f"GRANT CREATE ON DATABASE {f.database} TO {f.user}")
    if owner_needs_grant and OWNER in f.roles:
        result._need(f"{OWNER} has no CREATE on database {f.database}, which it needs to create the domain schemas, "
                     f"and {f.user} cannot grant it (it is neither the database's owner nor holds CREATE WITH "
                     "GRANT OPTION)", f"GRANT CREATE ON DATABASE {f.database} TO {OWNER}")

    # The bookkeeping of an earlier run belongs to whoever ran it (a superuser, say): the
    # migrating user takes it over rather than being granted the privileges of its owner.
    foreign = conn.execute(
        """SELECT 'SCHEMA', quote_ident(n.nspname), quote_ident(o.rolname)
           FROM pg_catalog.pg_namespace AS n JOIN pg_catalog.pg_roles AS o ON o.oid = n.nspowner
           WHERE n.nspname = %(s)s AND NOT pg_catalog.pg_has_role(current_user, n.nspowner, 'USAGE')
           UNION ALL
           SELECT 'TABLE', quote_ident(n.nspname) || '.' || quote_ident(c.relname), quote_ident(o.rolname)
           FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
           JOIN pg_catalog.pg_roles AS o ON o.oid = c.relowner
           WHERE n.nspname = %(s)s AND c.relkind IN ('r', 'p')
             AND NOT pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE')
           ORDER BY 1, 2""", {"s": BOOKKEEPING_SCHEMA}).fetchall()  # fmt: skip
    if foreign:
        owners = sorted({owner for _, _, owner in foreign})
        result._need(f"the bookkeeping schema {BOOKKEEPING_SCHEMA} (what was applied) belongs to "
                     f"{', '.join(owners)}, not to {f.user}",
                     *(f"ALTER {kind} {name} OWNER TO {f.user}" for kind, name, _ in foreign))
    return result


def _applied(conn: psycopg.Connection) -> set[str]:
    from aosdb.inventory import applied_migrations

    return set(applied_migrations(conn))
