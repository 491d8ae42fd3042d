"""The api schema served by PostgREST v12, proven without a PostgREST binary: each request is
replayed as exactly the SQL PostgREST sends for it, on a session of a NOINHERIT authenticator
login granted aos_api, and its outcome read the way PostgREST reads it.

What is mirrored, from PostgREST's source (github.com/PostgREST/postgrest, src/PostgREST/Query/:
QueryBuilder.hs callPlanToQuery, SqlFragment.hs fromJsonBodyF / setConfigLocal / currentSettingF /
asJsonF, Statements.hs prepareCall, PreQuery.hs txVarQuery) and its v12 references
(docs.postgrest.org/en/v12/references/transactions.html and .../errors.html):

- the transaction: ``BEGIN ISOLATION LEVEL READ COMMITTED`` with READ ONLY for GET; for POST the
  access mode follows the function's volatility (VOLATILE: READ WRITE; STABLE and IMMUTABLE:
  READ ONLY, the "Access Mode on Functions" table of PostgREST's transactions reference). Every
  facade is STABLE, so a POST is READ ONLY too; POST_ACCESS_MODE below says so, and a test
  checks the volatility it rests on.
- PreQuery.txVarQuery: one ``select`` of ``set_config(..., true)`` calls, in its order: search_path
  (the exposed schema, then db-extra-search-path's default "public"), the role's settings
  (``ALTER ROLE ... SET`` of the impersonated role, before the role), role, request.jwt.claims
  (the JWT's claims with "role" inserted), request.method, request.path, request.headers,
  request.cookies (later versions add tenant settings between the claims and the method). No
  function setting is hoisted: the facades set none of
  db-hoisted-tx-settings (statement_timeout, plan_filter.statement_cost_limit,
  default_transaction_isolation).
- QueryBuilder.callPlanToQuery with SqlFragment.fromJsonBodyF: the arguments arrive as one JSON
  object (the query string's values as JSON strings for GET, the body for POST), are typed by
  ``json_to_record(...) AS _("name" type, ...)`` and passed by name, ``"name" := pgrst_body."name"``;
  a function returning a scalar is called as ``(SELECT "api"."f"(...) pgrst_scalar) pgrst_call``;
  without arguments, ``"api"."f"()``.
- Statements.prepareCall: ``WITH pgrst_source AS (<call>) SELECT null::bigint AS
  total_result_set, pg_catalog.count(_postgrest_t) AS page_total,
  coalesce(json_agg(_postgrest_t.pgrst_scalar)->0, 'null') AS body, <response.headers>,
  <response.status> FROM (SELECT "pgrst_source".* FROM "pgrst_source") _postgrest_t``.
- The routine lookup of the schema cache: a function of the exposed schema whose arguments take
  every key given (and default the rest); none: 404 PGRST202, nothing sent.
- The HTTP status of an error: the table of PostgREST's errors reference (HTTP_STATUS below):
  PTxyz answers xyz, 28* 403, 22023 (no row of its own) 400 like every unlisted code, P0* 500.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Json

from conftest import REPO_ROOT, _create_database, _drop_database, server_bin

from aosdb.docs import ENDPOINTS_QUERY

pytestmark = pytest.mark.skipif(server_bin() is None, reason="no PostgreSQL server binaries")

EXPOSED = "api"
EXTRA_SEARCH_PATH = ["public"]
A, B = "pgrst-alpha", "pgrst-bravo"
ENDPOINTS_FILE = REPO_ROOT / "docs" / "api-endpoints.txt"  # written by `aosdb docs`
POST_ACCESS_MODE = {"v": "READ WRITE", "s": "READ ONLY", "i": "READ ONLY"}


# ---- the status table of PostgREST's errors reference ----------------------------------------

HTTP_STATUS = [  # (SQLSTATE or class prefix, status); exact codes before their class
    ("08", 503), ("09", 500), ("0L", 403), ("0P", 403), ("23503", 409), ("23505", 409), ("25006", 405),
    ("25", 500), ("28", 403), ("2D", 500), ("38", 500), ("39", 500), ("3B", 500), ("40", 500),
    ("53400", 500), ("53", 503), ("54", 500), ("55", 500), ("57", 500), ("58", 500), ("F0", 500),
    ("HV", 500), ("P0001", 400), ("P0", 500), ("XX", 500), ("42883", 404), ("42P01", 404), ("42P17", 500),
]  # fmt: skip


def http_status(sqlstate: str, anonymous: bool = False) -> int:
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    if sqlstate == "42501":
        return 401 if anonymous else 403
    for code, status in HTTP_STATUS:
        if sqlstate.startswith(code):
            return status
    return 400  # "other"


def test_the_status_table() -> None:
    assert [http_status(c) for c in ("PT404", "22023", "22P02", "22007", "28000", "P0002", "42883", "42501")] == [
        404, 400, 400, 400, 403, 500, 404, 403]


# ---- the world: two tenants, an authenticator -------------------------------------------------


@dataclass
class World:
    admin_dsn: str
    auth_dsn: str
    ids: dict[str, dict[str, str]]  # tenant -> run_id, incident_id, proposal_id


def seed(conn: psycopg.Connection, tenant: str, prefix: str) -> dict[str, str]:
    """Runs of the tenant, one failed by timeout (an incident, and a proposal for it: the engines)."""
    conn.execute("SELECT aos.register_tenant(%s)", (tenant,))
    conn.execute(
        """INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, created_at)
           VALUES (%(t)s, %(p)s || '-ok', %(p)s || '-agent', 'succeeded', NULL, now() - interval '2 hours'),
                  (%(t)s, %(p)s || '-failed', %(p)s || '-agent', 'failed', 'EXECUTION_TIMEOUT', now() - interval '1 hour'),
                  (%(t)s, %(p)s || '-live', %(p)s || '-agent', 'running', NULL, now())""",
        {"t": tenant, "p": prefix})  # fmt: skip
    incident = conn.execute("SELECT id::text FROM incidents.incidents WHERE tenant_id = %s", (tenant,)).fetchone()[0]
    proposal = conn.execute("SELECT id::text FROM policies.policy_proposals WHERE tenant_id = %s",
                            (tenant,)).fetchone()[0]  # fmt: skip
    return {"run_id": f"{prefix}-failed", "incident_id": incident, "proposal_id": proposal}


@pytest.fixture(scope="module")
def world(pg_server: str, migrated_template: str) -> Iterator[World]:
    name = f"aosdb_pytest_pgrst_{secrets.token_hex(4)}"
    admin_dsn = _create_database(pg_server, name, migrated_template)
    login, password = f"pgrst_auth_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    try:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            ids = {A: seed(conn, A, "a"), B: seed(conn, B, "b")}
            conn.execute("REFRESH MATERIALIZED VIEW activity.v_runs_o2")
            conn.execute("REFRESH MATERIALIZED VIEW incidents.v_incidents_o2")
            # The authenticator of the README: a login with no rights of its own that may only
            # become aos_api (NOINHERIT: it uses them after SET ROLE only).
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOINHERIT PASSWORD {}").format(
                sql.Identifier(login), sql.Literal(password)))
            conn.execute(sql.SQL("GRANT aos_api TO {}").format(sql.Identifier(login)))
        params = conninfo_to_dict(admin_dsn)
        auth_dsn = make_conninfo(admin_dsn, user=login, password=password, dbname=params["dbname"])
        yield World(admin_dsn, auth_dsn, ids)
    finally:
        _drop_database(pg_server, name)
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))


@pytest.fixture
def session(world: World) -> Iterator[psycopg.Connection]:
    with psycopg.connect(world.auth_dsn, autocommit=True) as conn:
        yield conn


# ---- the replay ----------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    body: object
    sqlstate: str | None = None
    message: str | None = None
    statements: list[str] | None = None


def routine(conn: psycopg.Connection, name: str) -> list[tuple[list[str], list[str], int, str]]:
    """The schema cache's entries for name in the exposed schema: (argument names, types, how many
    have defaults, volatility) of each overload."""
    return [(list(r[0] or []), list(r[1]), r[2], r[3]) for r in conn.execute(
        """SELECT p.proargnames[1:p.pronargs],
                  ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS u (t, o)
                        ORDER BY o),
                  p.pronargdefaults, p.provolatile::text
           FROM pg_proc AS p WHERE p.pronamespace = %s::regnamespace AND p.proname = %s""",
        (EXPOSED, name))]  # fmt: skip


def call_query(name: str, args: list[tuple[str, str]]) -> sql.Composed:
    """QueryBuilder.callPlanToQuery (KeyParams, a scalar result) inside Statements.prepareCall."""
    fn = sql.SQL("{}.{}").format(sql.Identifier(EXPOSED), sql.Identifier(name))
    if args:
        names = [sql.Identifier(n) for n, _ in args]
        typed = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in args)
        named = sql.SQL(", ").join(sql.SQL("{} := pgrst_body.{}").format(i, i) for i in names)
        source = sql.SQL(
            "SELECT pgrst_call.pgrst_scalar FROM (SELECT %s AS json_data) pgrst_payload, "
            "LATERAL (SELECT {cols} FROM json_to_record(pgrst_payload.json_data) AS _({typed}) LIMIT 1) pgrst_body , "
            "LATERAL (SELECT {fn}({named}) pgrst_scalar) pgrst_call"
        ).format(cols=sql.SQL(", ").join(names), typed=typed, fn=fn, named=named)
    else:
        source = sql.SQL("SELECT pgrst_call.pgrst_scalar FROM (SELECT {fn}() pgrst_scalar) pgrst_call").format(fn=fn)
    return sql.SQL(
        "WITH pgrst_source AS ({source}) "
        "SELECT null::bigint AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total, "
        "coalesce(json_agg(_postgrest_t.pgrst_scalar)->0, 'null') AS body, "
        "nullif(current_setting('response.headers', true), '') AS response_headers, "
        "nullif(current_setting('response.status', true), '') AS response_status "
        "FROM (SELECT \"pgrst_source\".* FROM \"pgrst_source\" ) _postgrest_t"
    ).format(source=source)


def request(conn: psycopg.Connection, method: str, name: str, args: dict[str, object], tenant: str | None,
            role_settings: dict[str, str] | None = None) -> Response:  # fmt: skip
    """GET /rpc/<name>?k=v... (values are the query string's text) or POST /rpc/<name> with the
    JSON object args, with a JWT whose claims are role aos_api and tenant_id (none: no claim)."""
    payload = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in args.items()} if method == "GET" else args
    overloads = [o for o in routine(conn, name)
                 if set(payload) <= set(o[0]) and set(o[0][:len(o[0]) - o[2]]) <= set(payload)]  # fmt: skip
    if len(overloads) != 1:
        return Response(404, {"code": "PGRST202", "message": f"Could not find the {EXPOSED}.{name} function"})
    arg_names, arg_types, _defaults, volatility = overloads[0]
    typed = [(n, t) for n, t in zip(arg_names, arg_types) if n in payload]
    claims = {"role": "aos_api", **({"tenant_id": tenant} if tenant else {})}
    mode = "READ ONLY" if method == "GET" else POST_ACCESS_MODE[volatility]
    settings = [("search_path", ", ".join(f'"{s}"' for s in [EXPOSED, *EXTRA_SEARCH_PATH]))]
    settings += list((role_settings or {}).items())
    settings += [("role", "aos_api"), ("request.jwt.claims", json.dumps(claims, separators=(",", ":"))),
                 ("request.method", method), ("request.path", f"/rpc/{name}"),
                 ("request.headers", json.dumps({"accept": "application/json"})), ("request.cookies", "{}")]
    statements = [f"BEGIN ISOLATION LEVEL READ COMMITTED {mode}"]
    try:
        conn.execute(statements[0])
        tx_vars = sql.SQL("select ") + sql.SQL(", ").join(
            sql.SQL("set_config({}, {}, true)").format(sql.Literal(k), sql.Placeholder()) for k, _ in settings)
        conn.execute(tx_vars, [v for _, v in settings])
        statements.append(tx_vars.as_string(conn))
        query = call_query(name, typed)
        statements.append(query.as_string(conn))
        row = conn.execute(query, (Json(payload),) if typed else ()).fetchone()
        conn.execute("COMMIT")
        status = int(row[4]) if row[4] else 200
        return Response(status, json.loads(row[2]) if isinstance(row[2], str) else row[2], statements=statements)
    except psycopg.Error as exc:
        conn.execute("ROLLBACK")
        return Response(http_status(exc.sqlstate), {"code": exc.sqlstate, "message": exc.diag.message_primary},
                        exc.sqlstate, exc.diag.message_primary, statements)  # fmt: skip


# ---- every facade, GET and POST ------------------------------------------------------------------

LISTS = {  # facade -> (a filter that keeps the failed run's rows, the id field of an item, its kind)
    "activity_runs": ({"status": "failed", "page_size": 20}, "run_id", "run_id"),
    "incidents": ({"severity": "high", "page_size": 20}, "incident_id", "incident_id"),
    "policy_proposals": ({"status": "pending", "page_size": 20}, "id", "proposal_id"),
}
OBJECTS = {  # facade -> (its argument, the field that names the object in the answer)
    "activity_run": ("run_id", "run_id"),
    "activity_run_evidence": ("run_id", "run_id"),
    "incident": ("incident_id", "id"),
    "incident_evidence": ("incident_id", "incident_id"),
    "policy_proposal": ("proposal_id", "id"),
}
METHODS = ["GET", "POST"]


def test_every_facade_is_replayed(session: psycopg.Connection) -> None:
    names = {r[0] for r in session.execute(
        "SELECT p.proname FROM pg_proc AS p WHERE p.pronamespace = 'api'::regnamespace")}  # fmt: skip
    assert names == set(LISTS) | set(OBJECTS)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("facade", sorted(LISTS))
def test_list_with_filters(session: psycopg.Connection, world: World, facade: str, method: str) -> None:
    filters, key, kind = LISTS[facade]
    response = request(session, method, facade, filters, A)
    assert response.status == 200, response
    body = response.body
    assert body["pagination"]["limit"] == 20 and body["total"] >= 1, body
    assert world.ids[A][kind] in [item[key] for item in body["items"]], body
    assert world.ids[B][kind] not in json.dumps(body), "tenant A's list shows tenant B's rows"
    for name, value in filters.items():
        if name != "page_size":
            assert all(item[name] == value for item in body["items"]), body
    # The whole list without arguments, and the first page of one.
    everything = request(session, method, facade, {}, A)
    assert everything.status == 200 and everything.body["total"] >= body["total"], everything
    assert not {i[key] for i in everything.body["items"]} & {world.ids[B][kind]}
    page = request(session, method, facade, {"page_size": 1, "page_offset": 0}, A)
    assert page.status == 200 and len(page.body["items"]) == 1, page


def test_get_sends_what_postgrest_sends(session: psycopg.Connection) -> None:
    response = request(session, "GET", "activity_runs", {"status": "failed", "page_size": 20}, A)
    begin, tx_vars, main = response.statements
    assert begin == "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY"
    assert tx_vars.startswith("select set_config('search_path', ") and "set_config('role', " in tx_vars, tx_vars
    assert ('json_to_record(pgrst_payload.json_data) AS _("status" text, "page_size" integer)' in main
            and '"api"."activity_runs"("status" := pgrst_body."status", "page_size" := pgrst_body."page_size")'
            in main), main  # fmt: skip


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("facade", sorted(OBJECTS))
def test_one_object_found_and_not_found(session: psycopg.Connection, world: World, facade: str, method: str) -> None:
    argument, field = OBJECTS[facade]
    own, other = world.ids[A][argument], world.ids[B][argument]
    found = request(session, method, facade, {argument: own}, A)
    assert found.status == 200, found
    assert str(found.body[field]) == own, found.body
    assert other not in json.dumps(found.body), "tenant A's object shows tenant B's rows"
    # Tenant B's object is not found for tenant A (PT404: 404), nor one that does not exist.
    missing = "00000000-0000-0000-0000-000000000000" if argument != "run_id" else "no-such-run"
    for absent in (other, missing):
        response = request(session, method, facade, {argument: absent}, A)
        assert (response.status, response.sqlstate) == (404, "PT404"), response
        assert other not in json.dumps(response.body) or absent == other
    # ... and it is found for tenant B: the claim chose the tenant.
    assert request(session, method, facade, {argument: other}, B).status == 200


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("facade", "args", "sqlstate"), [
    ("activity_runs", {"status": "bogus"}, "22023"),
    ("activity_runs", {"page_size": 500}, "22023"),
    ("activity_runs", {"page_offset": -1}, "22023"),
    ("activity_runs", {"created_after": "not a date"}, "22007"),
    ("activity_runs", {"is_synthetic": "maybe"}, "22P02"),
    ("incidents", {"lifecycle_state": "open"}, "22023"),
    ("incidents", {"page_size": "many"}, "22P02"),
    ("policy_proposals", {"proposal_type": "speed_policy"}, "22023"),
    ("incident", {"incident_id": "not-a-uuid"}, "22P02"),
    ("policy_proposal", {"proposal_id": "42"}, "22P02"),
])  # fmt: skip
def test_bad_input_is_400(session: psycopg.Connection, facade: str, args: dict, sqlstate: str, method: str) -> None:
    response = request(session, method, facade, args, A)
    assert (response.status, response.sqlstate) == (400, sqlstate), response


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("facade", sorted(set(LISTS) | set(OBJECTS)))
def test_no_tenant_is_403(session: psycopg.Connection, world: World, facade: str, method: str) -> None:
    args = {OBJECTS[facade][0]: world.ids[A][OBJECTS[facade][0]]} if facade in OBJECTS else {}
    response = request(session, method, facade, args, None)
    assert (response.status, response.sqlstate) == (403, "28000"), response


def test_unknown_argument_is_no_endpoint(session: psycopg.Connection) -> None:
    """The old jsonb argument, or a tenant asked for by name: no function takes it (PGRST202)."""
    for args in ({"p_filters": '{"status":"failed"}'}, {"tenant_id": B}, {"status": "failed", "p_limit": 5}):
        response = request(session, "GET", "activity_runs", args, A)
        assert response.status == 404 and response.body["code"] == "PGRST202", (args, response)


def test_the_jwt_claim_wins_over_the_setting(session: psycopg.Connection, world: World) -> None:
    """aos.current_tenant() reads the claim first: a tenant set by the role's settings (ALTER ROLE
    aos_api SET aos.tenant_id, which PostgREST applies before the role) does not override it."""
    response = request(session, "GET", "activity_runs", {}, A, role_settings={"aos.tenant_id": B})
    assert response.status == 200, response
    runs = json.dumps(response.body)
    assert "a-failed" in runs and "b-failed" not in runs, runs
    # Without a tenant claim the setting is the tenant.
    response = request(session, "GET", "activity_runs", {}, None, role_settings={"aos.tenant_id": B})
    assert response.status == 200 and "b-failed" in json.dumps(response.body), response


def test_post_runs_read_only_as_the_facades_are_stable(session: psycopg.Connection) -> None:
    volatilities = {r[0] for r in session.execute("SELECT provolatile::text FROM pg_proc WHERE pronamespace = "
                                                  "'api'::regnamespace")}  # fmt: skip
    assert volatilities == {"s"}
    response = request(session, "POST", "activity_runs", {"status": "failed"}, A)
    assert response.statements[0] == "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY"


# ---- no helper is an endpoint ------------------------------------------------------------------


def test_helpers_are_not_reachable(session: psycopg.Connection, world: World) -> None:
    helpers = [r[0] for r in session.execute(
        "SELECT p.proname FROM pg_proc AS p WHERE p.pronamespace = 'api_private'::regnamespace")]  # fmt: skip
    assert {"run", "run_traces", "incident", "one_of", "check_page", "envelope"} <= set(helpers), helpers
    for helper in helpers:
        response = request(session, "GET", helper, {}, A)
        assert response.status == 404 and response.body["code"] == "PGRST202", (helper, response)
    # Through the exposed schema's search_path, as aos_api: no such function.
    with session.transaction():
        session.execute("""select set_config('search_path', '"api", "public"', true), set_config('role', 'aos_api', true),
                           set_config('request.jwt.claims', %s, true)""", (json.dumps({"role": "aos_api", "tenant_id": A}),))
        with pytest.raises(psycopg.errors.UndefinedFunction), session.transaction():
            session.execute("SELECT run(%s)", (world.ids[A]["run_id"],))
        with pytest.raises(psycopg.errors.UndefinedFunction), session.transaction():
            session.execute("SELECT _run(%s)", (world.ids[A]["run_id"],))
    with psycopg.connect(world.admin_dsn, autocommit=True) as admin:
        endpoints = {r[0] for r in admin.execute("SELECT function_name FROM aos.api_endpoints")}
    assert endpoints and not [e for e in endpoints if not e.startswith("api.") or e.split(".", 1)[1].startswith("_")], endpoints


def test_the_authenticator_has_no_rights_of_its_own(session: psycopg.Connection) -> None:
    """NOINHERIT: before PostgREST switches the role, the login reads nothing."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        session.execute("SELECT api.activity_runs()")


# ---- what PostgREST's OpenAPI lists --------------------------------------------------------------


def test_api_endpoints_matches_the_committed_list(world: World) -> None:
    with psycopg.connect(world.auth_dsn, autocommit=True) as conn:
        conn.execute("SET ROLE aos_api")
        live = [r[0] for r in conn.execute(ENDPOINTS_QUERY)]
    expected = [line for line in ENDPOINTS_FILE.read_text().splitlines() if line and not line.startswith("#")]
    assert live == expected, ("the api changed: regenerate docs/api-endpoints.txt with `aosdb docs`\n"
                              + "\n".join(live))  # fmt: skip


def test_api_endpoints_lists_every_function_aos_api_may_run_in_api(world: World) -> None:
    with psycopg.connect(world.admin_dsn, autocommit=True) as conn:
        listed = {r[0] for r in conn.execute("SELECT function_name FROM aos.api_endpoints")}
        executable = {r[0] for r in conn.execute(
            "SELECT 'api.' || p.proname FROM pg_proc AS p WHERE p.pronamespace = 'api'::regnamespace "
            "AND has_function_privilege('aos_api', p.oid, 'EXECUTE')")}  # fmt: skip
        facades = {r[0] for r in conn.execute("SELECT function_name FROM aos.contract_facades")}
        routes = {r[0]: r[1] for r in conn.execute("SELECT function_name, endpoint FROM aos.contract_facades")}
        names = [n for row in conn.execute("SELECT argument_names FROM aos.api_endpoints") for n in row[0]]
    assert listed == executable == facades
    assert all(route == "/rpc/" + fn.split(".", 1)[1] for fn, route in routes.items()), routes
    assert names and not [n for n in names if n.startswith("p_") or n in ("limit", "offset", "select", "order")]


def test_comments_describe_results_not_routes(world: World) -> None:
    with psycopg.connect(world.admin_dsn, autocommit=True) as conn:
        comments = dict(conn.execute(
            "SELECT p.oid::regprocedure::text, obj_description(p.oid, 'pg_proc') FROM pg_proc AS p "
            "WHERE p.pronamespace IN ('api'::regnamespace, 'api_private'::regnamespace)").fetchall())  # fmt: skip
    assert all(comments.values()), comments
    routes = {fn: c for fn, c in comments.items() if re.search(r"\b(GET|POST|PUT|PATCH|DELETE) /", c)}
    assert not routes, routes
    facades = {fn: c for fn, c in comments.items() if fn.startswith("api.")}
    assert all("28000" in c for c in facades.values()), facades
    assert all("PT404" in c for fn, c in facades.items() if fn.split("(")[0].removeprefix("api.") in OBJECTS)


def test_expectation_file_names_its_command() -> None:
    head = ENDPOINTS_FILE.read_text().splitlines()[:4]
    assert any("aos.api_endpoints" in line for line in head), head
    assert Path(ENDPOINTS_FILE).is_file()
