"""Installing without a superuser, on PostgreSQL 15 and 18.

The README's recipe word for word; a second database or roles a platform team created (the
roles exist already); DBAs that lack a privilege, whom `aosdb migrate` stops before it changes
anything, with one line naming the GRANTs to run; the BYPASSRLS warning; 0001 failing atomically
when aos_owner cannot get CREATE; the preflight only reads; `aosdb status` estimates row counts
unless --exact; the scenario runner's SET ROLE check.

Roles are cluster-wide: the logins made here are uniquely named and dropped afterwards, and the
aos_* roles of the shared servers are left as they are. A test that needs the roles to be absent,
or created without their memberships, gets a private cluster of its own.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from conftest import (
    REPO_ROOT,
    CliResult,
    _create_database,
    _drop_database,
    cli_subprocess,
    discard_cluster,
    free_port,
    query,
    scalar,
)
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from aosdb import pgbin, privileges
from aosdb.cluster import EmbeddedCluster
from aosdb.config import with_dbname
from aosdb.errors import AosdbError

MAJORS = [15, 18]
README = REPO_ROOT / "README.md"
SCENARIOS = REPO_ROOT / "scenarios"
DOMAIN_SCHEMAS = ("aos", "activity", "incidents", "policies", "api", "api_private")
CONTRACT_ROLES = set(privileges.GROUP_ROLES)
ENGINES = ", ".join(privileges.ENGINE_ROLES)
BYPASSRLS_LINE = f"aosdb: warning: {privileges.BYPASSRLS_WARNING}"
MUST_RUN = "a superuser must run: "
# Admin DSNs of the private clusters: thrown away whole, nothing in them is dropped one by one.
DISPOSABLE: set[str] = set()


# ---- helpers ---------------------------------------------------------------------------------------


def readme_block(mark: str) -> str:
    """The ```sql block right below `<!-- recipe: MARK -->` in the README."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- recipe: {re.escape(mark)} -->\n```sql\n(.*?)```", text, re.S)
    assert match, f"README.md has no ```sql block marked <!-- recipe: {mark} -->"
    return match.group(1)


def statements(script: str) -> list[str]:
    """The statements of a recipe block or of a preflight line's 'a superuser must run:' part."""
    return [s.strip() for s in script.split(";") if s.strip() and not s.strip().startswith("--")]


def as_superuser(admin: str, script: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        for statement in statements(script):
            conn.execute(statement)


def login_dsn(admin: str, user: str, password: str, dbname: str) -> str:
    return make_conninfo(**{**conninfo_to_dict(admin), "user": user, "password": password, "dbname": dbname})


def migrate(dsn: str) -> CliResult:
    return cli_subprocess("migrate", env={"AOSDB_DSN": dsn})


def status(dsn: str, *args: str) -> CliResult:
    return cli_subprocess("status", *args, env={"AOSDB_DSN": dsn})


def failure_line(result: CliResult, *fragments: str) -> str:
    """An expected failure: non-zero exit, no traceback, and besides `aosdb: warning:` lines
    exactly one `aosdb: ...` line on stderr, holding every fragment."""
    assert result.returncode != 0, str(result)
    assert "Traceback" not in result.stderr + result.stdout, str(result)
    lines = [line for line in result.stderr_lines if not line.startswith("aosdb: warning:")]
    assert len(lines) == 1 and lines[0].startswith("aosdb: "), str(result)
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def grants_of(line: str) -> str:
    """The statements a failure line tells a superuser to run."""
    assert MUST_RUN in line, line
    return line.split(MUST_RUN, 1)[1]


def assert_migrated_by(dsn: str, result: CliResult, dba: str) -> None:
    """The migration went through and aos_owner (or an engine role) owns every object, never the DBA."""
    assert result.returncode == 0, str(result)
    assert "applied   0001_roles" in result.stdout, str(result)
    owners = {o for (o,) in query(dsn, """
        SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = ANY(%(s)s)
        UNION SELECT c.relowner::regrole::text FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY(%(s)s)
        UNION SELECT p.proowner::regrole::text FROM pg_proc p
            JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ANY(%(s)s)""",
        {"s": list(DOMAIN_SCHEMAS)})}  # fmt: skip
    assert "aos_owner" in owners and owners <= CONTRACT_ROLES, owners
    assert dba not in owners
    again = migrate(dsn)
    assert again.returncode == 0 and again.stdout.strip() == "database is up to date", str(again)


def footprint(admin: str, dbname: str) -> dict[str, list[tuple]]:
    """What a migration could change in the cluster and the database: compared before and after a refusal."""
    return {
        "roles": query(admin, "SELECT rolname::text, rolbypassrls FROM pg_roles WHERE rolname ~ '^aos_' ORDER BY 1"),
        "memberships": query(admin, """
            SELECT roleid::regrole::text, member::regrole::text, grantor::regrole::text, admin_option
            FROM pg_auth_members WHERE roleid::regrole::text ~ '^aos_' OR member::regrole::text ~ '^aos_'
            ORDER BY 1, 2, 3"""),
        "database acl": query(admin, "SELECT datacl::text FROM pg_database WHERE datname = %s", (dbname,)),
        "schemas": query(with_dbname(admin, dbname), """
            SELECT nspname::text FROM pg_namespace
            WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' ORDER BY 1"""),
    }


# ---- servers, databases, logins ------------------------------------------------------------------


@pytest.fixture(params=MAJORS, ids=[f"pg{m}" for m in MAJORS])
def major(request: pytest.FixtureRequest) -> int:
    return request.param


@pytest.fixture
def server(server_of: Callable[[int], str], major: int) -> str:
    """Superuser DSN of the run's shared server of that version."""
    return server_of(major)


@pytest.fixture
def fresh_server(major: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Superuser DSN of a private cluster of that version, with no aos_* role yet."""
    bin_dir = pgbin.bin_for_major(major)
    if bin_dir is None:
        pytest.skip(f"no PostgreSQL {major} server binaries: {pgbin.install_hint(major)}")
    workdir = tmp_path_factory.mktemp(f"pg{major}fresh")
    cluster = EmbeddedCluster(workdir=workdir, port=free_port(), bin_dir=bin_dir)
    try:
        cluster.start()
        DISPOSABLE.add(cluster.dsn("postgres"))
        yield cluster.dsn("postgres")
    finally:
        discard_cluster(cluster, workdir)


@pytest.fixture(scope="session")
def first_database(server_of: Callable[[int], str], pg_server: str) -> Iterator[Callable[[str], str]]:
    """first_database(admin): a database of that server migrated by a superuser, so the aos_* roles
    exist with their memberships, as after a platform's first database. One per server and run.
    (pg_server too, so that it is stopped after these databases are dropped.)"""
    made: dict[str, str] = {}

    def get(admin: str) -> str:
        if admin not in made:
            name = f"aosdb_pytest_first_{secrets.token_hex(4)}"
            dsn = _create_database(admin, name)
            made[admin] = name
            result = migrate(dsn)
            assert result.returncode == 0, str(result)
        return with_dbname(admin, made[admin])

    yield get
    for admin, name in made.items():
        _drop_database(admin, name)


@dataclass
class Dba:
    admin: str
    role: str
    database: str
    dsn: str


@pytest.fixture
def make_dba() -> Iterator[Callable[..., Dba]]:
    """make_dba(admin, createrole=True, owns_database=True, database_grant=None): a uniquely named login
    and a database of its own (owned by it, or with database_grant granted on it); dropped afterwards."""
    made: list[Dba] = []

    def make(admin: str, createrole: bool = True, owns_database: bool = True,
             database_grant: str | None = None) -> Dba:
        tag = secrets.token_hex(3)
        role, database, password = f"aosdb_pytest_dba_{tag}", f"aosdb_pytest_db_{tag}", secrets.token_urlsafe(12)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN {} PASSWORD {}").format(
                sql.Identifier(role), sql.SQL("CREATEROLE" if createrole else "NOCREATEROLE"), sql.Literal(password)))
            owner = sql.SQL(" OWNER {}").format(sql.Identifier(role)) if owns_database else sql.SQL("")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)) + owner)
            if database_grant:
                conn.execute(sql.SQL("GRANT {} ON DATABASE {} TO {}").format(
                    sql.SQL(database_grant), sql.Identifier(database), sql.Identifier(role)))
        dba = Dba(admin, role, database, login_dsn(admin, role, password, database))
        made.append(dba)
        return dba

    yield make
    for dba in made:
        if dba.admin in DISPOSABLE:
            continue  # on 16+ a DBA that created the aos_* roles granted memberships: it cannot be dropped
        _drop_database(dba.admin, dba.database)
        with psycopg.connect(dba.admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(dba.role)))


# ---- (a) the README recipe -----------------------------------------------------------------------


def recipe_names(block: str) -> tuple[str, str, str]:
    """The login, its password and the database the recipe creates (it uses concrete names)."""
    role = re.search(r"CREATE ROLE (\w+) LOGIN", block)
    password = re.search(r"PASSWORD '([^']*)'", block)
    database = re.search(r"CREATE DATABASE (\w+)", block)
    assert role and password and database, block
    return role.group(1), password.group(1), database.group(1)


def test_the_readme_recipe_installs_on_a_fresh_cluster(fresh_server: str) -> None:
    block = readme_block("non-superuser")
    role, password, database = recipe_names(block)
    assert scalar(fresh_server, "SELECT to_regrole('aos_owner')") is None
    as_superuser(fresh_server, block)
    dsn = login_dsn(fresh_server, role, password, database)
    assert not scalar(dsn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")

    result = migrate(dsn)
    assert_migrated_by(dsn, result, role)
    # The DBA could not give aos_worker BYPASSRLS: migrate and status both say so.
    assert BYPASSRLS_LINE in result.stderr_lines, str(result)
    shown = status(dsn)
    assert shown.returncode == 0 and BYPASSRLS_LINE in shown.stderr_lines, str(shown)
    # Once a superuser gives it, the warning is gone.
    as_superuser(fresh_server, "ALTER ROLE aos_worker BYPASSRLS")
    assert BYPASSRLS_LINE not in status(dsn).stderr_lines


def test_the_readme_recipe_installs_when_the_roles_exist(server: str, first_database) -> None:
    first_database(server)
    block = readme_block("non-superuser")
    role, password, database = recipe_names(block)
    taken = scalar(server, "SELECT to_regrole(%s) IS NOT NULL OR EXISTS (SELECT FROM pg_database WHERE datname = %s)",
                   (role, database))
    assert not taken, f"{role} or {database} exists already on the test server: remove them"
    try:
        as_superuser(server, block)
        as_superuser(server, readme_block("roles exist"))
        dsn = login_dsn(server, role, password, database)
        assert_migrated_by(dsn, migrate(dsn), role)
    finally:
        _drop_database(server, database)
        as_superuser(server, f"DROP ROLE IF EXISTS {role}")


# ---- (b) roles that already exist ----------------------------------------------------------------


def test_a_second_database_by_another_dba_needs_the_documented_grant_from_16_on(
        server: str, major: int, first_database, make_dba) -> None:
    first_database(server)
    dba = make_dba(server)
    before = footprint(server, dba.database)
    result = migrate(dba.dsn)
    if major < 16:  # CREATEROLE may grant any role
        assert_migrated_by(dba.dsn, result, dba.role)
        return
    line = failure_line(result, "cannot SET ROLE aos_owner", f"{MUST_RUN}GRANT aos_owner TO {dba.role};")
    assert footprint(server, dba.database) == before
    # The README shows this very line.
    readme_example = line.replace(dba.role, "aosdb_dba")
    assert readme_example in README.read_text(encoding="utf-8"), line
    # The README's statement for this case is the one the preflight asks for.
    assert statements(readme_block("roles exist")) == ["GRANT aos_owner TO aosdb_dba"]

    as_superuser(server, grants_of(line))
    assert_migrated_by(dba.dsn, migrate(dba.dsn), dba.role)


def test_roles_a_platform_team_created_need_their_memberships(fresh_server: str, make_dba) -> None:
    # The platform team created every role (and gave aos_worker BYPASSRLS), but no membership;
    # the DBA has no CREATEROLE: it needs none, since every role exists.
    as_superuser(fresh_server, ";".join(f"CREATE ROLE {r} NOLOGIN" for r in privileges.GROUP_ROLES))
    as_superuser(fresh_server, "ALTER ROLE aos_worker BYPASSRLS")
    dba = make_dba(fresh_server, createrole=False)
    before = footprint(fresh_server, dba.database)

    line = failure_line(migrate(dba.dsn), f"GRANT aos_owner TO {dba.role};", f"GRANT {ENGINES} TO aos_owner;")
    assert footprint(fresh_server, dba.database) == before
    as_superuser(fresh_server, grants_of(line))
    result = migrate(dba.dsn)
    assert_migrated_by(dba.dsn, result, dba.role)
    assert not any("BYPASSRLS" in line for line in result.stderr_lines), str(result)


def test_a_dba_takes_over_a_database_a_superuser_migrated(server: str, first_database, make_dba) -> None:
    """Already migrated, by a superuser: the DBA gets what it lacks, then migrate has nothing to do."""
    first_database(server)
    name = f"aosdb_pytest_su_{secrets.token_hex(4)}"
    migrated = _create_database(server, name)
    try:
        assert migrate(migrated).returncode == 0
        dba = make_dba(server, createrole=False)
        dsn = with_dbname(dba.dsn, name)
        before = footprint(server, name)
        line = failure_line(migrate(dsn), f"GRANT CREATE ON DATABASE {name} TO {dba.role};",
                            f"GRANT aos_owner TO {dba.role};", f"ALTER SCHEMA aosdb_migrations OWNER TO {dba.role};")
        assert footprint(server, name) == before
        as_superuser(migrated, grants_of(line))  # in that database: ALTER SCHEMA is local to it
        again = migrate(dsn)
        assert again.returncode == 0 and again.stdout.strip() == "database is up to date", str(again)
    finally:
        _drop_database(server, name)


# ---- (c) a DBA lacking a privilege -----------------------------------------------------------------


def test_a_dba_without_createrole_on_a_fresh_cluster_changes_nothing(fresh_server: str, make_dba) -> None:
    dba = make_dba(fresh_server, createrole=False)
    result = migrate(dba.dsn)
    line = failure_line(result, "no CREATEROLE", f"{MUST_RUN}ALTER ROLE {dba.role} CREATEROLE;")
    assert query(fresh_server, "SELECT rolname FROM pg_roles WHERE rolname ~ '^aos_'") == []
    assert scalar(dba.dsn, "SELECT to_regnamespace('aosdb_migrations')") is None
    assert BYPASSRLS_LINE in result.stderr_lines, str(result)  # said before it stopped

    as_superuser(fresh_server, grants_of(line))
    assert_migrated_by(dba.dsn, migrate(dba.dsn), dba.role)


def test_create_on_the_database_without_the_grant_option_is_refused_up_front(
        server: str, major: int, first_database, make_dba) -> None:
    """What the README used to say ("CREATEROLE plus CREATE on the database"): the DBA cannot pass
    CREATE on to aos_owner. Refused before the bookkeeping schema or 0001 exist."""
    first_database(server)
    dba = make_dba(server, owns_database=False, database_grant="CREATE")
    before = footprint(server, dba.database)
    wanted = [f"GRANT CREATE ON DATABASE {dba.database} TO aos_owner;"]
    if major >= 16:
        wanted.append(f"GRANT aos_owner TO {dba.role};")
    line = failure_line(migrate(dba.dsn), "aos_owner has no CREATE on database", *wanted)
    assert footprint(server, dba.database) == before

    as_superuser(server, grants_of(line))
    assert_migrated_by(dba.dsn, migrate(dba.dsn), dba.role)


def test_no_create_on_the_database_at_all_is_refused_up_front(server: str, major: int, first_database,
                                                              make_dba) -> None:
    first_database(server)
    dba = make_dba(server, owns_database=False)
    before = footprint(server, dba.database)
    line = failure_line(migrate(dba.dsn), f"GRANT CREATE ON DATABASE {dba.database} TO {dba.role};",
                        f"GRANT CREATE ON DATABASE {dba.database} TO aos_owner;")
    assert footprint(server, dba.database) == before
    as_superuser(server, grants_of(line))
    assert_migrated_by(dba.dsn, migrate(dba.dsn), dba.role)


def test_0001_fails_atomically_when_aos_owner_cannot_get_create(server: str, first_database, make_dba) -> None:
    """Without the preflight (an older runner, psql): 0001 itself stops, naming the GRANT, and leaves nothing."""
    first_database(server)
    dba = make_dba(server, owns_database=False, database_grant="CREATE")
    as_superuser(server, f"GRANT aos_owner TO {dba.role}")  # the membership part passes
    before = footprint(server, dba.database)
    text = (REPO_ROOT / "sql" / "migrations" / "0001_roles.sql").read_text(encoding="utf-8")
    with psycopg.connect(dba.dsn) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as raised:
        conn.execute(text)
    assert f"{MUST_RUN}GRANT CREATE ON DATABASE {dba.database} TO aos_owner;" in raised.value.diag.message_primary
    assert raised.value.diag.sqlstate == "42501"
    assert footprint(server, dba.database) == before


def test_0001_grants_nothing_that_is_in_place(server: str, major: int, first_database, make_dba) -> None:
    """A second database whose memberships exist: 0001 runs for a DBA with no ADMIN OPTION on any role."""
    first_database(server)
    dba = make_dba(server, createrole=False)
    as_superuser(server, f"GRANT aos_owner TO {dba.role}")
    before = footprint(server, dba.database)["memberships"]
    text = (REPO_ROOT / "sql" / "migrations" / "0001_roles.sql").read_text(encoding="utf-8")
    with psycopg.connect(dba.dsn) as conn:
        conn.execute(text)
        conn.commit()
    assert footprint(server, dba.database)["memberships"] == before
    assert scalar(dba.dsn, "SELECT has_database_privilege('aos_owner', current_database(), 'CREATE')")


# ---- the preflight itself ------------------------------------------------------------------------------


def read_only(dsn: str) -> psycopg.Connection:
    """An autocommit connection on which any write fails: proof the preflight only reads."""
    return psycopg.connect(dsn, autocommit=True, options="-c default_transaction_read_only=on")


def test_the_preflight_only_reads_and_passes_for_a_superuser(server: str, first_database) -> None:
    with read_only(first_database(server)) as conn:
        result = privileges.preflight(conn)
    assert (result.missing, result.grants, result.warnings) == ([], [], [])
    result.raise_if_missing()


def test_the_preflight_only_reads_when_much_is_missing(fresh_server: str, make_dba) -> None:
    dba = make_dba(fresh_server, createrole=False, owns_database=False)
    with read_only(dba.dsn) as conn:
        result = privileges.preflight(conn)
    assert result.grants == [f"ALTER ROLE {dba.role} CREATEROLE",
                             f"GRANT CREATE ON DATABASE {dba.database} TO {dba.role} WITH GRANT OPTION"], result
    assert len(result.missing) == 2 and result.warnings == [privileges.BYPASSRLS_WARNING], result
    with pytest.raises(AosdbError) as raised:
        result.raise_if_missing()
    assert "\n" not in str(raised.value)
    assert str(raised.value).endswith(f"{MUST_RUN}{'; '.join(result.grants)};")


def test_the_preflight_passes_on_a_second_migrate_for_the_same_dba(fresh_server: str, make_dba) -> None:
    dba = make_dba(fresh_server)
    assert migrate(dba.dsn).returncode == 0
    with read_only(dba.dsn) as conn:
        result = privileges.preflight(conn)
    assert result.missing == [] and result.grants == [], result


# ---- status ---------------------------------------------------------------------------------------------


def table_line(out: str, table: str) -> str:
    lines = [line for line in out.splitlines() if line.strip().startswith(table + " ")]
    assert len(lines) == 1, out
    return lines[0]


def test_status_estimates_row_counts_unless_exact(migrated_dsn: str) -> None:
    query(migrated_dsn, "SELECT aos.register_tenant('t' || i) FROM generate_series(1, 3) AS i")
    query(migrated_dsn, "ANALYZE aos.tenants")
    analyzed = scalar(migrated_dsn, "SELECT count(*) FROM aos.tenants")
    query(migrated_dsn, "SELECT aos.register_tenant('u' || i) FROM generate_series(1, 2) AS i")
    estimated = status(migrated_dsn)
    assert estimated.returncode == 0, str(estimated)
    # The statistics say what ANALYZE saw, not the two rows since.
    assert re.search(rf"\s~{analyzed} rows rls$", table_line(estimated.stdout, "aos.tenants")), estimated.stdout
    never = query(migrated_dsn, """SELECT n.nspname || '.' || c.relname FROM pg_class c
                                   JOIN pg_namespace n ON n.oid = c.relnamespace
                                   WHERE n.nspname = 'activity' AND c.relkind = 'r' AND c.reltuples < 0""")
    for (table,) in never:
        assert " ~? rows" in table_line(estimated.stdout, table), estimated.stdout
    assert BYPASSRLS_LINE not in estimated.stderr_lines  # a superuser migrated it

    exact = status(migrated_dsn, "--exact")
    assert exact.returncode == 0, str(exact)
    assert re.search(rf"\s{analyzed + 2} rows rls$", table_line(exact.stdout, "aos.tenants")), exact.stdout
    assert "~" not in exact.stdout, exact.stdout


# ---- the scenario runner's role check ------------------------------------------------------------------


def test_the_scenario_runner_needs_set_role_and_says_which_grant(server: str, major: int, first_database,
                                                                 make_dba) -> None:
    migrated = first_database(server)
    dba = make_dba(server, createrole=False)
    dsn = with_dbname(dba.dsn, conninfo_to_dict(migrated)["dbname"])
    if major >= 16:  # a member without SET: it passed the old MEMBER check, then SET ROLE failed raw
        as_superuser(server, f"GRANT aos_scenario TO {dba.role} WITH INHERIT TRUE, SET FALSE")
        grant = f"GRANT aos_scenario TO {dba.role} WITH INHERIT TRUE, SET TRUE;"
    else:
        grant = f"GRANT aos_scenario TO {dba.role};"
    result = cli_subprocess("scenario", "run", str(SCENARIOS), env={"AOSDB_DSN": dsn})
    assert result.returncode == 2, str(result)
    line = failure_line(result, f"{dba.role} cannot SET ROLE aos_scenario", f"must run: {grant}")

    as_superuser(server, line.split("must run: ", 1)[1])
    again = cli_subprocess("scenario", "run", str(SCENARIOS), env={"AOSDB_DSN": dsn})
    assert "cannot SET ROLE" not in again.stderr and "permission denied to set role" not in again.stderr, str(again)
