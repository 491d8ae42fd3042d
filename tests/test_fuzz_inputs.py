"""Fuzzed inputs for the worker API, the operator actions and the facades.

Arbitrary text, JSON and numbers, each of the parameter's SQL type (a value PostgreSQL cannot even
bind, such as a NUL byte or 'abc' for a uuid, is refused before the function runs and is not the
function's to answer). Every call either succeeds or raises one of the documented SQLSTATEs, and a
rejected call writes nothing. Seeded (derandomize) and bounded: one migrated database for the
module, one transaction per call, rolled back.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb as _Jsonb

from conftest import _create_database, _drop_database

# 22023 invalid input, 55000 wrong transition, P0002 not found (PT404 for the api facades),
# 28000 no tenant, 23505 an id already used, 23503 start_run's unknown tenant (documented).
CLEAN = {"22023", "55000", "P0002", "PT404", "28000", "23505", "23503"}
TENANT = "t1"
EXAMPLES = 150

FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip

# The domain tables a call may write, counted as the superuser.
COUNTS = """
SELECT (SELECT count(*) FROM activity.runs), (SELECT count(*) FROM activity.aos_traces),
       (SELECT count(*) FROM activity.aos_trace_steps), (SELECT count(*) FROM incidents.incidents),
       (SELECT count(*) FROM incidents.incident_events), (SELECT count(*) FROM incidents.incident_evidence),
       (SELECT count(*) FROM policies.policy_proposals), (SELECT count(*) FROM policies.policy_rules),
       (SELECT count(*) FROM policies.prevention_records), (SELECT count(*) FROM aos.events)
"""


def _to_json(value: Any) -> str:
    """json.dumps, with Decimals written as the exact numbers they are (JSON numbers have no precision limit)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_to_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_to_json(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def Jsonb(value: Any) -> _Jsonb:  # noqa: N802 - stands for psycopg's Jsonb
    return _Jsonb(value, dumps=_to_json)


# ---- strategies ------------------------------------------------------------------------------

# Text PostgreSQL can hold: no NUL, no lone surrogates.
_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_long = st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", " ", "\n", "🙂"]),
                  st.sampled_from([199, 200, 201, 5000, 65536, 65537, 200_000]))  # fmt: skip
text = st.one_of(st.text(_chars, max_size=40), _long)
opt_text = st.one_of(st.none(), text)


def mostly(valid: st.SearchStrategy, other: st.SearchStrategy) -> st.SearchStrategy:
    """valid 8 times in 10, else other. Not one_of: Hypothesis never repeats an input, so a branch with few values
    (one tenant) would soon be spent and the rest of the examples would all be rejected for it."""
    # 3 in 10, not 0: Hypothesis favours the bounds of a range.
    return st.integers(min_value=0, max_value=9).flatmap(lambda i: other if i in (3, 6) else valid)


def texts(*valid: str) -> st.SearchStrategy[str | None]:
    """Mostly one of the valid values, else anything."""
    return mostly(st.sampled_from(valid), opt_text)


def _deep(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False), st.decimals(allow_nan=False, allow_infinity=False, places=8),
    st.text(_chars, max_size=20), _long,
    st.sampled_from(["2026-01-01T00:00:00Z", "now", "infinity", "-infinity", "294277-01-01", "yes", "1e5",
                     "2026-13-45", "00:00", "true", "EXECUTION_TIMEOUT", "AGENT_CRASH"]),
)  # fmt: skip
json_any = st.recursive(json_scalar, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(_chars, max_size=8), inner, max_size=4), max_leaves=12)
# Anything, or nested around the 32-level bound.
json_wild = mostly(json_any, st.sampled_from([31, 32, 33, 100]).map(_deep))


def objects(keys: list[str], values: dict[str, st.SearchStrategy] | None = None,
            required: tuple[str, ...] = ()) -> st.SearchStrategy:
    """JSON objects over the given keys: with typed values (mostly valid ones), with anything under those keys,
    with unknown keys, or not an object at all."""
    values = values or {}
    typed = st.sampled_from(keys).flatmap(lambda k: st.tuples(st.just(k), values.get(k, json_any)))
    wild = st.sampled_from(keys).flatmap(lambda k: st.tuples(st.just(k), json_any))
    present = st.tuples(*(st.tuples(st.just(k), values.get(k, json_any)) for k in required))
    typed_object = st.tuples(present, st.lists(typed, max_size=len(keys))).map(lambda t: dict(list(t[0]) + t[1]))
    return mostly(typed_object, st.one_of(
        st.lists(wild, max_size=len(keys)).map(dict),
        st.dictionaries(st.text(_chars, max_size=8), json_any, max_size=3), json_wild,
    ))


def numbers(low: int = 0, high: int = 10**6) -> st.SearchStrategy:
    """Mostly valid counts and amounts, else any number or JSON value."""
    return mostly(
        st.one_of(st.integers(min_value=low, max_value=high), st.decimals(min_value=0, max_value=1000, places=6)),
        st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                  st.decimals(allow_nan=False, allow_infinity=False), json_any),
    )  # fmt: skip


# Within aos.timestamp_window (1 day) of now, or not.
_now = datetime.now(timezone.utc)
times = mostly(
    st.integers(min_value=-3600, max_value=3600).map(lambda s: (_now + timedelta(seconds=s)).isoformat()),
    st.one_of(st.sampled_from(["now", "infinity", "2026-13-45", "294277-01-01", "1999-12-31",
                               "2001-01-01T00:00:00+14"]), json_any),
)  # fmt: skip
int4 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
limits = mostly(st.integers(min_value=0, max_value=200), st.one_of(st.integers(min_value=-5, max_value=205), int4,
                                                                  st.none()))  # fmt: skip


# ---- the database ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_db(pg_server: str, migrated_template: str) -> Iterator[dict[str, Any]]:
    """One migrated clone for the module, with a live run, an incident, a proposal and a rule."""
    name = f"aosdb_pytest_fuzz_{secrets.token_hex(4)}"
    dsn = _create_database(pg_server, name, migrated_template)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT aos.register_tenant(%s)", (TENANT,))
            conn.execute("SELECT activity.start_run(%s, 'r-live', 'agent-a', 'goal')", (TENANT,))
            conn.execute("SELECT activity.start_run(%s, 'r-failed', 'agent-a', 'goal')", (TENANT,))
            conn.execute("SELECT activity.finish_run(%s, 'r-failed', 'failed', %s)",
                         (TENANT, Jsonb({"error_code": "EXECUTION_TIMEOUT"})))  # fmt: skip
            conn.execute("SELECT set_config('aos.tenant_id', %s, false)", (TENANT,))
            ids = {
                "incident": conn.execute("SELECT id FROM incidents.incidents LIMIT 1").fetchone()[0],
                "proposal": conn.execute("SELECT id FROM policies.policy_proposals LIMIT 1").fetchone()[0],
                "rule": conn.execute("SELECT policies.create_rule('r', 'blocked_skill', %s, 'block')",
                                     (Jsonb({"skills": ["shell"]}),)).fetchone()[0],
            }  # fmt: skip
        conn = psycopg.connect(dsn)
        try:
            yield {"conn": conn, "ids": ids}
        finally:
            conn.close()
    finally:
        _drop_database(pg_server, name)


OUTCOMES = os.environ.get("AOSDB_FUZZ_LOG")


def _log(statement: str, outcome: str) -> None:
    if OUTCOMES:
        with open(OUTCOMES, "a", encoding="utf-8") as log:
            log.write(f"{statement.split('(')[0].removeprefix('SELECT ')}\t{outcome}\n")


def call(db: dict[str, Any], role: str, statement: str, params: tuple, also: set[str] = frozenset()) -> str | None:
    """Runs statement as role (operators and the api with the tenant set) in a transaction that is rolled back.

    Returns None on success or the SQLSTATE; fails when a rejected call changed any count.
    """
    conn: psycopg.Connection = db["conn"]
    try:
        before = conn.execute(COUNTS).fetchone()
        conn.execute("SAVEPOINT fuzz")
        conn.execute(f"SET LOCAL ROLE {role}")
        conn.execute("SELECT set_config('aos.tenant_id', %s, true)", ("" if role == "aos_worker" else TENANT,))
        try:
            conn.execute(statement, params).fetchall()
            _log(statement, "ok")
            return None
        except psycopg.Error as exc:
            code = exc.sqlstate
            _log(statement, f"{code}\t{exc.diag.message_primary[:50]}")
            conn.execute("ROLLBACK TO SAVEPOINT fuzz")
            conn.execute("RESET ROLE")
            assert conn.execute(COUNTS).fetchone() == before, f"{statement} {params!r}: a rejected call wrote"
            assert code in CLEAN | also, f"{statement} {params!r}: SQLSTATE {code}: {exc}"
            # PostgreSQL's input functions quote the value they refuse, newlines and all.
            assert code in also or "\n" not in exc.diag.message_primary, f"{statement}: message on several lines"
            return code
    finally:
        conn.rollback()


def _id(db: dict[str, Any], kind: str) -> st.SearchStrategy:
    return mostly(st.just(db["ids"][kind]), st.one_of(st.none(), st.uuids()))


# ---- the worker API --------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_start_run(fuzz_db, data) -> None:
    options = st.one_of(st.none(), objects(
        ["status", "started_at", "attempts", "trace_id", "is_synthetic", "synthetic_scenario_id"],
        {"status": texts("queued", "running"), "started_at": times, "attempts": numbers(),
         "trace_id": texts("r-live", "t-new"), "is_synthetic": st.booleans(),
         "synthetic_scenario_id": texts("SDSR-X")}))  # fmt: skip
    args = (data.draw(texts(TENANT, "nope")), data.draw(texts("r-new", "r-live")), data.draw(texts("agent-a")),
            data.draw(opt_text), data.draw(options.map(lambda o: None if o is None else Jsonb(o))))  # fmt: skip
    call(fuzz_db, "aos_worker",
         "SELECT activity.start_run(%s::text, %s::text, %s::text, %s::text, %s::jsonb)", args)  # fmt: skip


@FUZZ
@given(data=st.data())
def test_record_step(fuzz_db, data) -> None:
    step = objects(
        ["trace_id", "skill_name", "status", "outcome_code", "params", "cost_usd", "duration_ms", "retry_count",
         "occurred_at"],
        {"skill_name": texts("search"), "status": texts("success", "failure", "retry", "skipped"),
         "cost_usd": numbers(), "duration_ms": numbers(), "retry_count": numbers(), "occurred_at": times,
         "trace_id": texts("r-live", "r-failed", "t-new")}, required=("skill_name", "status"))  # fmt: skip
    args = (data.draw(texts(TENANT)), data.draw(texts("r-live", "r-failed")),
            data.draw(st.one_of(st.none(), step.map(Jsonb))))  # fmt: skip
    call(fuzz_db, "aos_worker", "SELECT activity.record_step(%s::text, %s::text, %s::jsonb)", args)


@FUZZ
@given(data=st.data())
def test_finish_run(fuzz_db, data) -> None:
    outcome = objects(
        ["error_code", "error_message", "input_tokens", "output_tokens", "estimated_cost_usd", "attempts",
         "completed_at", "duration_ms"],
        {"error_code": texts("EXECUTION_TIMEOUT", "AGENT_CRASH", "x"), "error_message": texts("AGENT_CRASH: boom"),
         "input_tokens": numbers(), "output_tokens": numbers(), "estimated_cost_usd": numbers(),
         "attempts": numbers(), "completed_at": times, "duration_ms": numbers()})  # fmt: skip
    args = (data.draw(texts(TENANT)), data.draw(texts("r-live", "r-failed")),
            data.draw(texts("succeeded", "failed", "halted", "aborted")),
            data.draw(st.one_of(st.none(), outcome.map(Jsonb))))  # fmt: skip
    call(fuzz_db, "aos_worker", "SELECT activity.finish_run(%s::text, %s::text, %s::text, %s::jsonb)", args)


# ---- the operator actions --------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["acknowledge", "resolve", "add_evidence"])
@FUZZ
@given(data=st.data())
def test_incident_actions(fuzz_db, verb, data) -> None:
    incident = data.draw(_id(fuzz_db, "incident"))
    if verb == "acknowledge":
        call(fuzz_db, "aos_operator", "SELECT incidents.acknowledge(%s::uuid, %s::text)",
             (incident, data.draw(texts("alice"))))  # fmt: skip
    elif verb == "resolve":
        call(fuzz_db, "aos_operator", "SELECT incidents.resolve(%s::uuid, %s::text, %s::text, %s::text)",
             (incident, data.draw(texts("alice")), data.draw(texts("auto", "manual", "rollback")),
              data.draw(opt_text)))  # fmt: skip
    else:
        payload = data.draw(st.one_of(st.none(), json_wild, st.dictionaries(st.text(_chars, max_size=8), json_any)))
        call(fuzz_db, "aos_operator", "SELECT incidents.add_evidence(%s::uuid, %s::text, %s::jsonb, %s::boolean)",
             (incident, data.draw(texts("log", "trace", "metric", "action", "postmortem")),
              None if payload is None else Jsonb(payload), data.draw(st.one_of(st.none(), st.booleans()))))  # fmt: skip


@pytest.mark.parametrize("verb", ["approve_proposal", "reject_proposal", "create_rule", "retire_rule"])
@FUZZ
@given(data=st.data())
def test_policy_actions(fuzz_db, verb, data) -> None:
    if verb in ("approve_proposal", "reject_proposal"):
        call(fuzz_db, "aos_operator", f"SELECT policies.{verb}(%s::uuid, %s::text, %s::text)",
             (data.draw(_id(fuzz_db, "proposal")), data.draw(texts("alice")), data.draw(opt_text)))  # fmt: skip
    elif verb == "retire_rule":
        call(fuzz_db, "aos_operator", "SELECT policies.retire_rule(%s::uuid, %s::text)",
             (data.draw(_id(fuzz_db, "rule")), data.draw(texts("alice"))))  # fmt: skip
    else:
        rule_type = data.draw(texts("error_code", "max_value", "pattern_block", "blocked_skill"))
        fitting = {
            "error_code": objects(["error_codes"], {"error_codes": st.lists(texts("EXECUTION_TIMEOUT", "bad"),
                                                                            max_size=3)}, ("error_codes",)),
            "pattern_block": objects(["patterns"], {"patterns": st.lists(text, max_size=3)}, ("patterns",)),
            "blocked_skill": objects(["skills"], {"skills": st.lists(text, max_size=3)}, ("skills",)),
            "max_value": objects(["metric", "max"], {"metric": texts("estimated_cost_usd", "total_tokens"),
                                                     "max": numbers()}, ("metric", "max")),
        }.get(rule_type, json_wild)  # fmt: skip
        value = data.draw(mostly(fitting, st.one_of(st.none(), json_wild)))
        call(fuzz_db, "aos_operator", "SELECT policies.create_rule(%s::text, %s::text, %s::jsonb, %s::text, %s::text)",
             (data.draw(texts("no shell")), rule_type, None if value is None else Jsonb(value),
              data.draw(texts("block", "warn", "audit")), data.draw(mostly(st.none(), opt_text))))  # fmt: skip


TEXT_ID_ACTIONS = {
    "incidents.acknowledge": ("incident", "SELECT incidents.acknowledge(%s::text, 'alice')"),
    "incidents.resolve": ("incident", "SELECT incidents.resolve(%s::text, 'alice')"),
    "incidents.add_evidence": ("incident", "SELECT incidents.add_evidence(%s::text, 'log', '{}')"),
    "policies.approve_proposal": ("proposal", "SELECT policies.approve_proposal(%s::text, 'alice')"),
    "policies.reject_proposal": ("proposal", "SELECT policies.reject_proposal(%s::text, 'alice')"),
    "policies.retire_rule": ("rule", "SELECT policies.retire_rule(%s::text, 'alice')"),
}


@pytest.mark.parametrize("action", sorted(TEXT_ID_ACTIONS))
@FUZZ
@given(data=st.data())
def test_action_text_ids(fuzz_db, action, data) -> None:
    """The actions take their ids as text too: any string is an id, "not found" or 22023, never 22P02."""
    kind, statement = TEXT_ID_ACTIONS[action]
    value = data.draw(mostly(_id(fuzz_db, kind).map(lambda u: None if u is None else str(u)), opt_text))
    call(fuzz_db, "aos_operator", statement, (value,))


# ---- the facades -----------------------------------------------------------------------------

# Each list facade's arguments and their types: all optional (null: no filter).
LIST_ARGUMENTS = {
    "activity_runs": {"status": "text", "state": "text", "agent_id": "text", "is_synthetic": "boolean",
                      "policy_violation": "boolean", "created_after": "timestamptz", "created_before": "timestamptz",
                      "page_size": "integer", "page_offset": "integer"},
    "incidents": {"severity": "text", "lifecycle_state": "text", "topic": "text", "category": "text",
                  "error_code": "text", "cause_type": "text", "is_synthetic": "boolean",
                  "first_seen_after": "timestamptz", "first_seen_before": "timestamptz", "page_size": "integer",
                  "page_offset": "integer"},
    "policy_proposals": {"status": "text", "proposal_type": "text", "is_synthetic": "boolean",
                         "created_after": "timestamptz", "created_before": "timestamptz", "page_size": "integer",
                         "page_offset": "integer"},
}  # fmt: skip
# A value that is not of its argument's type fails in PostgreSQL's input function, before the
# call (a gateway answers 400 for these too): 22P02 boolean or integer, 22007/22008 timestamp,
# 22009 a time zone offset out of range ("-16"), 22003 an integer out of range. Unknown time zones
# are 22023.
NOT_OF_ITS_TYPE = {"22P02", "22007", "22008", "22009", "22003"}


def _query_value(name: str, typ: str) -> st.SearchStrategy:
    """What a query string may carry for the argument: text, mostly a valid value."""
    if typ == "boolean":
        return mostly(st.sampled_from(["true", "false"]), opt_text)
    if typ == "timestamptz":
        return times.map(lambda v: v if v is None or isinstance(v, str) else _to_json(v))
    if typ == "integer":
        return limits.map(lambda v: None if v is None else str(v))
    return texts("failed", "high", "active", "pending", "completed", "resolved", "system", "timeout_policy")


@pytest.mark.parametrize("facade", sorted(LIST_ARGUMENTS))
@FUZZ
@given(data=st.data())
def test_facade_lists(fuzz_db, facade, data) -> None:
    """The arguments a query string carries (text, any subset of them), typed the way a gateway
    types them (json_to_record) and passed by name: 22023 for a bad value, or a value not of its
    argument's type refused by PostgreSQL before the call."""
    arguments = LIST_ARGUMENTS[facade]
    names = data.draw(st.lists(st.sampled_from(sorted(arguments)), unique=True, max_size=len(arguments)))
    values = {n: data.draw(_query_value(n, arguments[n])) for n in names}
    if names:
        statement = (f"SELECT api.{facade}(" + ", ".join(f"{n} := b.{n}" for n in names) + ") "
                     f"FROM json_to_record(%s::json) AS b (" + ", ".join(f"{n} {arguments[n]}" for n in names) + ")")
        params: tuple = (json.dumps(values),)
    else:
        statement, params = f"SELECT api.{facade}()", ()
    call(fuzz_db, "aos_api", statement, params, also=NOT_OF_ITS_TYPE)


@pytest.mark.parametrize("facade", ["activity_run", "activity_run_evidence", "incident", "incident_evidence",
                                    "policy_proposal"])  # fmt: skip
@FUZZ
@given(data=st.data())
def test_facade_details(fuzz_db, facade, data) -> None:
    if facade.startswith("activity_run"):
        call(fuzz_db, "aos_api", f"SELECT api.{facade}(%s::text)", (data.draw(texts("r-live", "r-failed")),))
    else:
        kind = "proposal" if facade == "policy_proposal" else "incident"
        call(fuzz_db, "aos_api", f"SELECT api.{facade}(%s::uuid)", (data.draw(_id(fuzz_db, kind)),))


def test_fuzz_reaches_the_functions(fuzz_db) -> None:
    """The seeded ids are real: the fuzz is not only exercising "not found"."""
    ids = fuzz_db["ids"]
    assert call(fuzz_db, "aos_operator", "SELECT incidents.acknowledge(%s, 'alice')", (ids["incident"],)) is None
    assert call(fuzz_db, "aos_operator", "SELECT policies.approve_proposal(%s, 'alice')", (ids["proposal"],)) is None
    assert call(fuzz_db, "aos_worker", "SELECT activity.record_step('t1', 'r-live', %s)",
                (Jsonb({"skill_name": "s", "status": "success"}),)) is None  # fmt: skip
    assert call(fuzz_db, "aos_api", "SELECT api.incident(%s)", (uuid.uuid4(),)) == "PT404"
    assert call(fuzz_db, "aos_api", "SELECT api.activity_runs(status := 'failed', page_size := 5)", ()) is None
