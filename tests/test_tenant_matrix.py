"""The tenant matrix: every group role against every relation of the five schemas and every
function it may execute, with two tenants' data present and the session's tenant set to A.

Relations and functions come from the catalog, never from a list here, so a new table, view or
facade is in the matrix the day it is created. Each probe runs in its own transaction, rolled back.

- A relation a role reads returns none of tenant B's ids (its tenant id, run, trace and agent ids,
  every uuid of its rows); one it may not read fails with 42501, or 28000 when no tenant is set.
  With no tenant set, a readable relation shows neither tenant (only reference data); a tenant
  BI login (mapped to A) sees only A whether it sets no tenant or B's.
- A function is called twice: with A's ids and with B's (tenant, run, incident, proposal, rule),
  harmless values elsewhere. Its result holds no B id it was not given, and B's rows are exactly as
  they were, read back inside the call's transaction.
- The roles trusted with every tenant by design are exempt from the zero-leak assertion (listed in
  TRUSTED with why); their reads must still succeed or fail with 42501/28000 only.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from psycopg import sql

from conftest import _create_database, _drop_database, server_bin

pytestmark = pytest.mark.skipif(server_bin() is None, reason="no PostgreSQL server binaries")

A, B = "tnt-alpha", "tnt-bravo"
SCHEMAS = ("aos", "activity", "incidents", "policies", "api", "api_private")  # api_private: the facades' helpers
BI_TENANT = "aos_bi_tenant"  # probed through a login mapped to A in aos.bi_logins

# Trusted with every tenant by design: probed, but a B row in their results is no leak.
TRUSTED = {
    "aos_worker": "ingestion service: BYPASSRLS (its COPY needs it) and the worker API takes any tenant",
    "aos_bi": "reads the analytics materialized views across all tenants",
    "aos_incident_engine": "engine role: its trusted_all policies let the IncidentEngine act for any tenant",
    "aos_proposal_engine": "engine role: its trusted_all policies let the PolicyProposalEngine act for any tenant",
    "aos_policy_engine": "engine role: its trusted_all policies let the PolicyEngine act for any tenant",
}
# aos_maintenance refreshes the views and prunes the outbox for every tenant, but reads no tenant's
# rows (aos.view_refreshes holds none): probed as tenant-scoped, so any B row it saw would be a leak.
TENANT_SCOPED = ("aos_operator", "aos_api", BI_TENANT, "aos_scenario", "aos_maintenance")
ROLES = (*TRUSTED, *TENANT_SCOPED)
REFUSED = {"42501", "28000"}


# ---- the two tenants -------------------------------------------------------------------------


@dataclass
class Tenant:
    tenant: str
    ids: dict[str, str] = field(default_factory=dict)  # run, incident, proposal, rule -> one uuid of each
    markers: set[str] = field(default_factory=set)  # every string that identifies this tenant's data


def record_activity(conn: psycopg.Connection, tenant: str, prefix: str) -> None:
    """Through the worker API, as aos_worker: successes, failures of each severity, a costly run."""
    conn.execute("SET ROLE aos_worker")
    conn.execute("SELECT aos.register_tenant(%s)", (tenant,))
    plan = [("succeeded", {}), ("failed", {"error_code": "EXECUTION_TIMEOUT"}), ("failed", {"error_code": "AGENT_CRASH"}),
            ("failed", {"error_code": "BUDGET_EXCEEDED"}), ("succeeded", {"estimated_cost_usd": 250})]  # fmt: skip
    for i, (status, outcome) in enumerate(plan):
        run = f"{prefix}-run-{i}"
        conn.execute("SELECT activity.start_run(%s, %s, %s, %s)", (tenant, run, f"{prefix}-agent", f"{prefix} goal"))
        conn.execute("SELECT activity.record_step(%s, %s, %s)",
                     (tenant, run, psycopg.types.json.Jsonb({"skill_name": f"{prefix}-skill", "status": "success"})))
        conn.execute("SELECT activity.finish_run(%s, %s, %s, %s)", (tenant, run, status, psycopg.types.json.Jsonb(outcome)))
    conn.execute("RESET ROLE")


def operate(conn: psycopg.Connection, tenant: str) -> None:
    """As aos_operator of the tenant: evidence, an acknowledgement, an approval, a rule."""
    incident = conn.execute("SELECT id FROM incidents.incidents WHERE tenant_id = %s ORDER BY created_at LIMIT 1",
                            (tenant,)).fetchone()[0]
    proposal = conn.execute("SELECT id FROM policies.policy_proposals WHERE tenant_id = %s AND status = 'pending' "
                            "LIMIT 1", (tenant,)).fetchone()[0]
    conn.execute("SET ROLE aos_operator")
    conn.execute("SELECT set_config('aos.tenant_id', %s, false)", (tenant,))
    conn.execute("SELECT incidents.add_evidence(%s, 'log', '{\"line\": \"x\"}')", (incident,))
    conn.execute("SELECT incidents.acknowledge(%s, 'ops')", (incident,))
    conn.execute("SELECT policies.approve_proposal(%s, 'ops', 'ok')", (proposal,))
    conn.execute("SELECT policies.create_rule('no shell', 'blocked_skill', '{\"skills\": [\"shell\"]}', 'block')")
    conn.execute("SELECT set_config('aos.tenant_id', '', false)")
    conn.execute("RESET ROLE")


def tenant_tables(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        """SELECT c.oid::regclass::text FROM pg_class AS c JOIN pg_attribute AS a ON a.attrelid = c.oid
           WHERE c.relnamespace::regnamespace::text = ANY (%s) AND c.relkind IN ('r', 'p')
             AND a.attname = 'tenant_id' AND NOT a.attisdropped ORDER BY 1""", (list(SCHEMAS),))]  # fmt: skip


def collect(conn: psycopg.Connection, tenant: str) -> Tenant:
    """Every uuid and every run, trace and agent id in the tenant's rows, and one id of each kind."""
    t = Tenant(tenant, markers={tenant})
    for table in tenant_tables(conn):
        cols = [r[0] for r in conn.execute(
            """SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
               AND (atttypid = 'uuid'::regtype OR attname IN ('run_id', 'trace_id', 'agent_id', 'source_run_id'))""",
            (table,))]  # fmt: skip
        for col in cols:
            values = conn.execute(sql.SQL("SELECT DISTINCT {}::text FROM {} WHERE tenant_id = %s AND {} IS NOT NULL").format(
                sql.Identifier(col), sql.SQL(table), sql.Identifier(col)), (tenant,)).fetchall()
            t.markers.update(v[0] for v in values)
    # The newest of each, a pending proposal first: one the setup did not act on, so the actions get further.
    one = ("SELECT {}::text FROM {} AS t WHERE tenant_id = %s "
           "ORDER BY (to_jsonb(t) ->> 'status' = 'pending') DESC NULLS LAST, created_at DESC LIMIT 1")
    for kind, (col, table) in {"run": ("id", "activity.runs"), "incident": ("id", "incidents.incidents"),
                               "proposal": ("id", "policies.policy_proposals"), "rule": ("id", "policies.policy_rules"),
                               "run_id": ("run_id", "activity.runs")}.items():  # fmt: skip
        t.ids[kind] = conn.execute(sql.SQL(one).format(sql.Identifier(col), sql.SQL(table)), (tenant,)).fetchone()[0]
    assert len(t.markers) > 20, t.markers
    return t


@dataclass
class World:
    dsn: str
    bi_login: str
    a: Tenant
    b: Tenant
    relations: list[str]
    fingerprint_sql: sql.Composed


@pytest.fixture(scope="module")
def world(new_database_module) -> Iterator[World]:
    dsn = new_database_module
    bi_login = f"aos_pytest_bi_{secrets.token_hex(3)}"
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for tenant, prefix in ((A, "a"), (B, "b")):
                record_activity(conn, tenant, prefix)
                operate(conn, tenant)
            conn.execute("SELECT aos.tick_events()")
            for (rel,) in conn.execute("SELECT oid::regclass::text FROM pg_class WHERE relkind = 'm' "
                                       "AND relnamespace::regnamespace::text = ANY (%s)", (list(SCHEMAS),)).fetchall():
                conn.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.SQL(rel)))
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE aos_bi_tenant").format(sql.Identifier(bi_login)))
            conn.execute("INSERT INTO aos.bi_logins (login, tenant_id) VALUES (%s, %s)", (bi_login, A))
            a, b = collect(conn, A), collect(conn, B)
            assert not {m for m in b.markers if any(m in x for x in a.markers)}, "tenant A's ids must not contain B's"
            relations = [r[0] for r in conn.execute(
                "SELECT oid::regclass::text FROM pg_class WHERE relkind IN ('r', 'p', 'v', 'm') "
                "AND relnamespace::regnamespace::text = ANY (%s) ORDER BY 1", (list(SCHEMAS),))]  # fmt: skip
            fingerprint = sql.SQL(" UNION ALL ").join(
                sql.SQL("SELECT {name}, md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {rel} AS t "
                        "WHERE tenant_id = {tenant}").format(name=sql.Literal(rel), rel=sql.SQL(rel), tenant=sql.Literal(B))
                for rel in tenant_tables(conn))  # fmt: skip
        yield World(dsn, bi_login, a, b, relations, fingerprint)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM aos.bi_logins WHERE login = %s", (bi_login,))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(bi_login)))


@pytest.fixture(scope="module")
def new_database_module(pg_server: str, migrated_template: str) -> Iterator[str]:
    name = f"aosdb_pytest_matrix_{secrets.token_hex(4)}"
    dsn = _create_database(pg_server, name, migrated_template)
    try:
        yield dsn
    finally:
        _drop_database(pg_server, name)


# ---- probing ------------------------------------------------------------------------------------


def become(conn: psycopg.Connection, world: World, role: str, tenant: str | None) -> None:
    """Inside the current transaction: act as the role (a mapped login for aos_bi_tenant), with the tenant."""
    if role == BI_TENANT:
        conn.execute(sql.SQL("SET LOCAL SESSION AUTHORIZATION {}").format(sql.Identifier(world.bi_login)))
    else:
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
    conn.execute("SELECT set_config('aos.tenant_id', %s, true)", (tenant or "",))


def leaked(text: str, markers: set[str], given: set[str] = frozenset()) -> list[str]:
    return sorted(m for m in markers - set(given) if m in text)


@dataclass
class Tally:
    probes: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def probe_relation(conn: psycopg.Connection, world: World, role: str, rel: str, tenant: str | None, tally: Tally) -> None:
    tally.probes[role] += 1
    try:
        with conn.transaction(force_rollback=True):
            become(conn, world, role, tenant)
            rows = conn.execute(sql.SQL("SELECT to_jsonb(t)::text FROM {} AS t").format(sql.SQL(rel))).fetchall()
    except psycopg.Error as exc:
        refused = {"42501"} if tenant else REFUSED  # 28000 only says that no tenant is set
        tally.outcomes[(role, "refused" if exc.sqlstate in refused else exc.sqlstate)] += 1
        if exc.sqlstate not in refused:
            tally.problems.append(f"{role} reading {rel} (tenant {tenant}): {exc.sqlstate} {exc}")
        return
    tally.outcomes[(role, "read")] += 1
    if role in TRUSTED:
        return
    text = "\n".join(r[0] for r in rows)
    # A tenant BI login sees its mapped tenant (A) whatever it sets; others none without a tenant.
    markers = world.b.markers if tenant or role == BI_TENANT else world.b.markers | world.a.markers
    if found := leaked(text, markers):
        tally.problems.append(f"{role} reading {rel} (tenant {tenant}) sees {found[:5]}")


LIST_FILTERS = {"status", "state", "lifecycle_state", "topic", "severity", "cause_type", "proposal_type", "category",
                "error_code", "agent_id", "is_synthetic", "policy_violation"}  # fmt: skip


# Harmless values by parameter type and name, with the ids of the tenant the call is aimed at.
def argument(typ: str, name: str, t: Tenant) -> tuple[object, str]:
    n = name.lower()
    # The list facades' filters (named arguments, 0017): none, so that a list shows all it may.
    if n in LIST_FILTERS or n.endswith(("_after", "_before")):
        return None, typ
    if typ == "uuid":
        for kind in ("incident", "proposal", "rule"):
            if kind in n:
                return t.ids[kind], typ
        return t.ids["run" if "run" in n else "incident"], typ
    if typ == "text":
        if "tenant" in n:
            return t.tenant, typ
        if "run_id" in n or "trace" in n:
            return t.ids["run_id"], typ
        for key, value in (("status", "failed"), ("rule_type", "error_code"), ("enforcement", "warn"),
                           ("method", "manual"), ("metric", "input_tokens"), ("type", "log")):  # fmt: skip
            if key in n:
                return value, typ
        return "probe", typ
    if typ == "jsonb":
        for key, value in (("condition", '{"error_codes": ["PROBE"]}'), ("items", "[]"),
                           ("step", '{"skill_name": "probe", "status": "success"}')):  # fmt: skip
            if key in n:
                return value, typ
        return "{}", typ
    if typ in ("integer", "bigint", "smallint"):
        return (0 if "offset" in n else 10 if "limit" in n or n == "page_size" else 1), typ
    return {"numeric": (1, typ), "boolean": (False, typ), "timestamp with time zone": ("now", typ),
            "interval": ("1 day", typ), "text[]": ("{}", typ)}.get(typ, (None, typ))  # fmt: skip


def executable(conn: psycopg.Connection, world: World, role: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(signature, qualified name, [(type, name) of each input]) of the non-trigger functions the role may run."""
    who = world.bi_login if role == BI_TENANT else role
    found = []
    for sig, qname, types, names, modes in conn.execute(
        """SELECT p.oid::regprocedure::text, format('%%I.%%I', n.nspname, p.proname),
                  array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) WITH ORDINALITY AS u (t, o) ORDER BY o),
                  p.proargnames, p.proargmodes::text[]
           FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
           WHERE n.nspname = ANY (%s) AND p.prokind = 'f' AND p.prorettype <> 'trigger'::regtype
             AND has_function_privilege(%s, p.oid, 'EXECUTE') ORDER BY 1""", (list(SCHEMAS), who)):  # fmt: skip
        if modes:
            names = [nm for nm, md in zip(names, modes) if md in ("i", "b", "v")]
        names = list(names or []) + [f"arg{i}" for i in range(len(names or []), len(types))]
        found.append((sig, qname, list(zip(types, names))))
    return found


def probe_function(conn: psycopg.Connection, world: World, role: str, fn: tuple, aim: Tenant, tally: Tally) -> None:
    sig, qname, params = fn
    args = [argument(typ, name, aim) for typ, name in params]
    call = sql.SQL("SELECT * FROM {}({}) AS r").format(
        sql.SQL(qname), sql.SQL(", ").join(sql.SQL("{}::{}").format(sql.Literal(v), sql.SQL(t)) for v, t in args))
    given = {str(v) for v, _ in args}
    tally.probes[role] += 1
    try:
        with conn.transaction(force_rollback=True):
            before = dict(conn.execute(world.fingerprint_sql).fetchall())
            become(conn, world, role, A)
            text = repr(conn.execute(call).fetchall())
            conn.execute("SET LOCAL SESSION AUTHORIZATION DEFAULT")
            conn.execute("SET LOCAL ROLE NONE")
            after = dict(conn.execute(world.fingerprint_sql).fetchall())
    except psycopg.Error as exc:
        tally.outcomes[(role, "call failed")] += 1
        if role not in TRUSTED and (found := leaked(str(exc), world.b.markers, given)):
            tally.problems.append(f"{role} calling {sig} at {aim.tenant}: error names {found[:5]}")
        return
    tally.outcomes[(role, "called")] += 1
    if role in TRUSTED:
        return
    if found := leaked(text, world.b.markers, given):
        tally.problems.append(f"{role} calling {sig} at {aim.tenant} returns {found[:5]}")
    if changed := sorted(rel for rel in before if before[rel] != after.get(rel)):
        tally.problems.append(f"{role} calling {sig} at {aim.tenant} changed tenant {B}'s {changed}")


# ---- the matrix ---------------------------------------------------------------------------------


def test_the_role_list_is_every_group_role(world: World) -> None:
    with psycopg.connect(world.dsn, autocommit=True) as conn:
        groups = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname ~ '^aos_' AND NOT rolcanlogin")}
    assert groups - {"aos_owner"} == set(ROLES), "a new role must join the matrix, trusted or tenant-scoped"


def test_no_tenant_scoped_role_sees_another_tenant(world: World, capsys: pytest.CaptureFixture) -> None:
    tally = Tally()
    with psycopg.connect(world.dsn) as conn:
        functions = {role: executable(conn, world, role) for role in ROLES}
        for role in ROLES:
            for rel in world.relations:
                probe_relation(conn, world, role, rel, A, tally)
                probe_relation(conn, world, role, rel, None, tally)
                if role == BI_TENANT:  # setting B's id must not widen a mapped login
                    probe_relation(conn, world, role, rel, B, tally)
            for fn in functions[role]:
                probe_function(conn, world, role, fn, world.a, tally)
                probe_function(conn, world, role, fn, world.b, tally)
    with capsys.disabled():
        print(f"\ntenant matrix: {len(ROLES)} roles x {len(world.relations)} relations (tenant A, none; B for BI) "
              f"+ {sum(len(f) for f in functions.values())} executable functions (A's and B's ids) = "
              f"{sum(tally.probes.values())} probes")  # fmt: skip
        for role in ROLES:
            seen = {k[1]: v for k, v in tally.outcomes.items() if k[0] == role}
            print(f"  {role:22} {len(functions[role]):3} functions  {dict(sorted(seen.items()))}")
    assert not tally.problems, "\n".join(tally.problems)
    # Not vacuous: each tenant-scoped role reads or calls something of its own tenant.
    for role in TENANT_SCOPED:
        assert tally.outcomes[(role, "read")] + tally.outcomes[(role, "called")] > 0, role


def test_a_tenant_scoped_read_shows_its_own_tenant(world: World) -> None:
    """The isolation is not emptiness: tenant A's own runs are there for the API and its reports for BI."""
    with psycopg.connect(world.dsn) as conn:
        for role, rel in (("aos_api", "activity.runs"), ("aos_api", "incidents.incidents"),
                          ("aos_scenario", "activity.runs"), (BI_TENANT, "activity.v_runs_o2_tenant")):  # fmt: skip
            with conn.transaction(force_rollback=True):
                become(conn, world, role, A)
                text = repr(conn.execute(sql.SQL("SELECT to_jsonb(t)::text FROM {} AS t").format(sql.SQL(rel))).fetchall())
            assert A in text, f"{role} reads nothing of {A} in {rel}"
