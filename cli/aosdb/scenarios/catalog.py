"""What the database offers the scenarios: tables, columns, enumerations, and the role they run as.

The catalog is read once, before anything runs, and every scenario is checked against it: the
columns of inserts and assertion filters and their types, and every value the database
enumerates. The enumerations are the migrated database's own: the single-column CHECK
constraints of the form ``column IN ('a', 'b', ...)`` (what `pg_get_constraintdef` shows as
``column = ANY (ARRAY[...])``), and the run statuses that finish a run are those the generated
column ``activity.runs.state`` calls ``completed``. No copy of them lives in Python.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import psycopg

from aosdb.errors import AosdbError
from aosdb.privileges import grant_role, set_privilege
from aosdb.scenarios.model import (
    ASSERTIONS,
    OUTCOME_KEYS,
    REFERENCE,
    Scenario,
    ScenarioError,
    describe,
    join,
    uuid_text,
)

SCENARIO_ROLE = "aos_scenario"
DOMAIN_SCHEMAS = ("aos", "activity", "incidents", "policies")

# Columns the runner sets on every inserted row: a scenario may not choose them.
RUNNER_COLUMNS = ("tenant_id", "is_synthetic", "synthetic_scenario_id")

# Step arguments whose values a column's CHECK constraint enumerates: what the step passes on to it.
ENUMERATED_ARGUMENTS: dict[tuple[str, str], tuple[str, str, str]] = {
    # (step, key): (table, column, what the message calls it)
    ("run", "status"): ("activity.runs", "status", "status"),
    ("resolve", "method"): ("incidents.incidents", "resolution_method", "resolution method"),
    ("create_rule", "rule_type"): ("policies.policy_rules", "rule_type", "rule type"),
    ("create_rule", "enforcement"): ("policies.policy_rules", "enforcement", "enforcement"),
}
STEP_STATUS = ("activity.aos_trace_steps", "status", "step status")  # a run's steps[].status
RUN_STATE = ("activity.runs", "state")  # generated: 'completed' for the statuses that finish a run

_IN_LIST = re.compile(r"^CHECK \(\((\w+) = ANY \(ARRAY\[(.*)\]\)\)\)$", re.S)
_FINISHED = re.compile(r"WHEN \(status = ANY \(ARRAY\[(.*?)\]\)\) THEN 'completed'::text", re.S)
_LITERAL = re.compile(r"'((?:[^']|'')*)'::text")


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # format_type(): what values are cast to
    kind: str  # text, uuid, integer, number, boolean, timestamp, jsonb, other
    generated: bool


_KIND_BY_TYPE = {
    "text": "text", "varchar": "text", "bpchar": "text", "name": "text", "uuid": "uuid",
    "int2": "integer", "int4": "integer", "int8": "integer", "numeric": "number", "float4": "number",
    "float8": "number", "bool": "boolean", "timestamptz": "timestamp", "timestamp": "timestamp",
    "date": "timestamp", "jsonb": "jsonb", "json": "jsonb",
}


def _literals(text: str) -> tuple[str, ...] | None:
    """The text literals of an ARRAY[...] as pg_get_constraintdef / pg_get_expr print them."""
    values = [m.group(1).replace("''", "'") for m in _LITERAL.finditer(text)]
    rest = _LITERAL.sub("", text).replace(",", "").strip()
    return tuple(values) if values and not rest else None


@dataclass
class Catalog:
    tables: dict[str, dict[str, Column]]
    scenario_may_insert: set[str]
    # (table, column) -> the values its CHECK constraint allows, in the constraint's order
    enumerations: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    finished_statuses: tuple[str, ...] = ()

    @classmethod
    def load(cls, conn: psycopg.Connection) -> Catalog:
        rows = conn.execute(
            """
            SELECT n.nspname || '.' || c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
                   t.typname, a.attgenerated <> '',
                   pg_catalog.has_any_column_privilege(%s, c.oid, 'INSERT')
            FROM pg_catalog.pg_class AS c
            JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
            JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            JOIN pg_catalog.pg_type AS t ON t.oid = a.atttypid
            WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p')
            ORDER BY 1, a.attnum
            """,
            (SCENARIO_ROLE, list(DOMAIN_SCHEMAS)),
        ).fetchall()
        tables: dict[str, dict[str, Column]] = {}
        may_insert: set[str] = set()
        for table, column, sql_type, typname, generated, insert in rows:
            tables.setdefault(table, {})[column] = Column(column, sql_type, _KIND_BY_TYPE.get(typname, "other"),
                                                          generated)
            if insert:
                may_insert.add(table)
        return cls(tables, may_insert, _enumerations(conn), _finished_statuses(conn))

    def may_scenario_write(self, table: str) -> bool:
        """Scenarios inject causes: activity tables aos_scenario may insert into (some columns of
        activity.runs: not policy_violation, the PolicyEngine's), nothing else."""
        return table.startswith("activity.") and table in self.scenario_may_insert


def _enumerations(conn: psycopg.Connection) -> dict[tuple[str, str], tuple[str, ...]]:
    rows = conn.execute(
        """
        SELECT n.nspname || '.' || c.relname, a.attname, pg_catalog.pg_get_constraintdef(k.oid)
        FROM pg_catalog.pg_constraint AS k
        JOIN pg_catalog.pg_class AS c ON c.oid = k.conrelid
        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = k.conkey[1]
        WHERE k.contype = 'c' AND cardinality(k.conkey) = 1 AND n.nspname = ANY(%s)
        ORDER BY 1, 2, k.conname
        """,
        (list(DOMAIN_SCHEMAS),),
    ).fetchall()
    found: dict[tuple[str, str], tuple[str, ...]] = {}
    for table, column, definition in rows:
        match = _IN_LIST.match(definition)
        values = _literals(match.group(2)) if match and match.group(1) == column else None
        if values is None:
            continue
        key = (table, column)
        # Two such constraints on one column: a value must pass both.
        found[key] = tuple(v for v in found[key] if v in values) if key in found else values
    return found


def _finished_statuses(conn: psycopg.Connection) -> tuple[str, ...]:
    table, column = RUN_STATE
    row = conn.execute(
        "SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef AS d "
        "JOIN pg_catalog.pg_attribute AS a ON a.attrelid = d.adrelid AND a.attnum = d.adnum "
        "WHERE d.adrelid = pg_catalog.to_regclass(%s) AND a.attname = %s AND a.attgenerated <> ''",
        (table, column),
    ).fetchone()
    match = _FINISHED.search(row[0]) if row else None
    values = _literals(match.group(1)) if match else None
    if values is None:
        raise AosdbError(f"cannot tell which run statuses finish a run: {table}.{column} is not the generated column "
                         "CASE WHEN status IN (...) THEN 'completed' ... this runner reads: run `aosdb migrate`",
                         exit_code=2)
    return values


def prerequisites(conn: psycopg.Connection) -> Catalog:
    """The catalog, once the connecting role is known to be able to run scenarios and read their effects."""
    # SET ROLE takes membership on 15; from 16 on, the SET option of a membership (a CREATEROLE
    # user that created the role is a member with ADMIN OPTION only, say).
    version = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()[0]
    user, exists, can_set, member = conn.execute(
        "SELECT quote_ident(current_user), r.oid IS NOT NULL, "
        "       r.oid IS NOT NULL AND pg_catalog.pg_has_role(current_user, r.oid, %s), "
        "       r.oid IS NOT NULL AND pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER') "
        "FROM (SELECT) AS one LEFT JOIN pg_catalog.pg_roles AS r ON r.rolname = %s",
        (set_privilege(version), SCENARIO_ROLE),
    ).fetchone()
    if not exists:
        raise AosdbError(f"role {SCENARIO_ROLE} does not exist: run `aosdb migrate` first", exit_code=2)
    if not can_set:
        grant = grant_role([SCENARIO_ROLE], user, version, member)
        raise AosdbError(f"{user} cannot SET ROLE {SCENARIO_ROLE}, which the scenarios run as: a superuser (or a "
                         f"holder of ADMIN OPTION on {SCENARIO_ROLE}) must run: {grant};", exit_code=2)
    read = sorted({k.table for k in ASSERTIONS.values()})
    present = {t for (t,) in conn.execute(
        "SELECT t FROM unnest(%s::text[]) AS t WHERE pg_catalog.to_regclass(t) IS NOT NULL", (read,))}
    missing = [t for t in read if t not in present]
    if missing:
        raise AosdbError(f"the database has no {', '.join(missing)}: run `aosdb migrate` first", exit_code=2)
    catalog = Catalog.load(conn)
    unreadable = [t for t in read
                  if not conn.execute("SELECT pg_catalog.has_table_privilege(%s, 'SELECT')", (t,)).fetchone()[0]]
    if unreadable:
        raise AosdbError(f"{user} cannot read {', '.join(unreadable)}, which the assertions check: "
                         "connect as the database owner (or a member of aos_owner)", exit_code=2)
    return catalog


# ---- checking a scenario against the catalog -------------------------------------------------------


def _enumerated(path: str, catalog: Catalog, table: str, column: str, what: str, value: Any, where: str) -> None:
    """A value the database enumerates is one of its values (a ${reference} is checked by the database)."""
    allowed = catalog.enumerations.get((table, column))
    if allowed is None or not isinstance(value, str) or REFERENCE.search(value):
        return
    if value not in allowed:
        raise ScenarioError(path, where, f"unknown {what} {value!r} (one of {', '.join(allowed)})")


def _check_value(path: str, catalog: Catalog, table: str, column: Column, value: Any, where: str,
                 for_filter: bool) -> None:
    """A YAML value fits a column (references stand for strings and are checked once resolved)."""
    if value is None:
        return

    def fail(message: str) -> ScenarioError:
        return ScenarioError(path, where, message)

    kind = column.kind
    if kind == "jsonb":
        if for_filter and not isinstance(value, (dict, list)):
            raise fail(f"{column.name} is jsonb: give a mapping or a list, matched by containment (@>)")
        return
    if isinstance(value, (dict, list)):
        raise fail(f"{column.name} is {column.sql_type}, got {describe(value)}")
    if kind == "uuid":
        try:
            uuid_text(value)
        except ValueError as exc:  # PydanticCustomError: the message is the author's
            raise fail(str(exc)) from None
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(f"{column.name} is {column.sql_type}: must be a whole number, got {describe(value)}")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail(f"{column.name} is {column.sql_type}: must be a number, got {describe(value)}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise fail(f"{column.name} is boolean: must be true or false, got {describe(value)}")
    elif kind == "timestamp":
        if not isinstance(value, (str, dt.date)):
            raise fail(f"must be a timestamp, got {describe(value)}")
    elif not isinstance(value, str):
        raise fail(f"{column.name} is {column.sql_type}: must be a string (quote it), got {describe(value)}")
    else:
        _enumerated(path, catalog, table, column.name, column.name.replace("_", " "), value, where)


def _check_step(scenario: Scenario, catalog: Catalog, kind: str, where: str, args: dict) -> None:
    path = scenario.path
    for (step, key), (table, column, what) in ENUMERATED_ARGUMENTS.items():
        if step == kind and args.get(key) is not None:
            _enumerated(path, catalog, table, column, what, args[key], join(where, key))
    if kind != "run":
        return
    for index, run_step in enumerate(args.get("steps") or ()):
        table, column, what = STEP_STATUS
        _enumerated(path, catalog, table, column, what, run_step["status"], join(join(join(where, "steps"), index),
                                                                                  "status"))
    status = args["status"]
    if status not in catalog.finished_statuses:
        for key in OUTCOME_KEYS:
            if args.get(key) is not None:
                raise ScenarioError(path, join(where, key), f"only a finished run "
                                    f"({', '.join(catalog.finished_statuses)}) reports {key}, not a {status} one")


def check_against_catalog(scenario: Scenario, catalog: Catalog) -> None:
    path = scenario.path
    for step in scenario.inject:
        _check_step(scenario, catalog, step.kind, step.where, step.args)
        if step.kind != "insert":
            continue
        table = step.args["table"]
        columns = catalog.tables.get(table)
        if columns is None:
            raise ScenarioError(path, join(step.where, "table"), f"unknown table {table!r}")
        for index, row in enumerate(step.args["rows"]):
            at = join(join(step.where, "rows"), index)
            for key, value in row.items():
                column = columns.get(key)
                if column is None:
                    raise ScenarioError(path, join(at, key),
                                        f"unknown column {key!r} of {table} (columns: {', '.join(columns)})")
                if key in RUNNER_COLUMNS:
                    raise ScenarioError(path, join(at, key),
                                        f"{key} is set by the runner (the scenario's tenant and id)")
                if column.generated:
                    raise ScenarioError(path, join(at, key), f"{table}.{key} is a generated column")
                _check_value(path, catalog, table, column, value, join(at, key), for_filter=False)
    for assertion in scenario.assertions:
        table = assertion.kind.table
        columns = catalog.tables[table]
        for key, value in assertion.filters.items():
            column = columns.get(key)
            if column is None:
                names = ", ".join(n for n in columns if n != "tenant_id")
                raise ScenarioError(path, join(assertion.where, key),
                                    f"unknown column {key!r} of {table} (columns: {names})")
            _check_value(path, catalog, table, column, value, join(assertion.where, key), for_filter=True)
