"""SDSR scenarios (SPEC section 9): inject causes as aos_scenario, assert the effects the engines made.

The file format is documented in scenarios/README.md. `run_paths` works in three passes:

1. parse and validate every file offline (keys, types, values, ``${...}`` references);
2. connect, read the catalog, and check what needs it (columns of assertions and inserts, their
   types, that the connecting role may act as aos_scenario and read the effects back).
   Anything malformed stops the run before a single row is written: one line naming the file and
   the key path, exit 2;
3. run each scenario in its own transaction on one connection:

   - as the connecting user: ``aos.tenant_id`` and ``aos.synthetic_scenario_id`` are set,
     transaction-local;
   - ``SET LOCAL ROLE aos_scenario``: the tenant is registered, and the inject steps run through
     the WorkerRunner API and the operator actions exactly as a worker and an operator would, so
     every engine fires as in production and the database refuses any write a scenario may not
     make (its grants are aos_worker's and aos_operator's, RLS-scoped to the scenario's tenant);
   - ``RESET ROLE``: effects are read back as the connecting user, reads only (the lookups of
     ``proposal_of_run`` / ``incident_of_run`` too: aos_scenario cannot read those tables);
   - ROLLBACK, or COMMIT with --keep.

Output is TAP: one plan for the run, then per scenario an ``inject`` line, one line per assertion
and a ``synthetic marks`` line (every row the scenario wrote carries its id); a failed line is
followed by ``#`` diagnostics showing what was found. The last line is ``# N passed, M failed``.
Exit status: 0 all passed, 1 something failed, 2 the scenarios could not be run.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg import sql
from psycopg.types.json import Jsonb

from aosdb.db import connect, error_line
from aosdb.errors import AosdbError
from aosdb.privileges import grant_role, set_privilege

SCENARIO_ROLE = "aos_scenario"

TENANT_FORMAT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# aos.register_tenant refuses aos_scenario any other tenant (42501): say so before connecting.
SCENARIO_TENANT_PREFIX = "sdsr-"
SCENARIO_ID_FORMAT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
NAME_FORMAT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
REFERENCE = re.compile(r"\$\{([^{}]*)\}")

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "retry", "halted", "aborted")
TERMINAL_STATUSES = ("succeeded", "failed", "halted", "aborted")
STEP_STATUSES = ("success", "failure", "retry", "skipped")
RULE_TYPES = ("error_code", "max_value", "pattern_block", "blocked_skill")
ENFORCEMENTS = ("block", "warn", "audit")
RESOLUTION_METHODS = ("auto", "manual", "rollback")
MAX_REPEAT = 10_000

# Names every string may refer to; ${i} only inside a repeated run.
BUILTIN_NAMES = ("tenant", "scenario_id")
REPEAT_NAME = "i"

# Columns the runner sets on every inserted row: a scenario may not choose them.
RUNNER_COLUMNS = ("tenant_id", "is_synthetic", "synthetic_scenario_id")


class ScenarioError(AosdbError):
    """A scenario file that cannot be run: one line naming the file and the key path, exit 2."""

    def __init__(self, path: str, where: str, message: str):
        super().__init__(f"{path}: {where}: {message}" if where else f"{path}: {message}", exit_code=2)


class _InjectFailed(Exception):
    """An inject step the database (or the runner) refused: the scenario fails, the run goes on."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}")


# ---- the assertions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssertionKind:
    domain: str
    table: str
    mode: str  # rows: matching rows exist; flag: ... with policy_violation; count: exactly `equals` rows


ASSERTIONS: dict[str, AssertionKind] = {
    "run_exists": AssertionKind("activity", "activity.runs", "rows"),
    "policy_violation": AssertionKind("activity", "activity.runs", "flag"),
    "run_count": AssertionKind("activity", "activity.runs", "count"),
    "incident_created": AssertionKind("incidents", "incidents.incidents", "rows"),
    "incident_count": AssertionKind("incidents", "incidents.incidents", "count"),
    "proposal_created": AssertionKind("policies", "policies.policy_proposals", "rows"),
    "proposal_count": AssertionKind("policies", "policies.policy_proposals", "count"),
    "rule_created": AssertionKind("policies", "policies.policy_rules", "rows"),
    "rule_count": AssertionKind("policies", "policies.policy_rules", "count"),
    "prevention_recorded": AssertionKind("policies", "policies.prevention_records", "rows"),
    "prevention_count": AssertionKind("policies", "policies.prevention_records", "count"),
}
ASSERTION_KEYS = ("domain", "assertion", "bind", "equals")

# The id `bind` stores: run_id for runs (what every link uses), the uuid otherwise.
KEY_COLUMN = {"activity.runs": "run_id"}
# What a diagnostic shows of a row, besides its key and the filtered columns.
SHOWN_COLUMNS = {
    "activity.runs": ("status", "error_code", "policy_violation"),
    "incidents.incidents": ("source_run_id", "severity", "lifecycle_state", "error_code"),
    "policies.policy_proposals": ("triggering_run_id", "proposal_type", "status"),
    "policies.policy_rules": ("name", "rule_type", "enforcement", "source", "status"),
    "policies.prevention_records": ("run_id", "outcome", "guardrail_id", "policy_rule_id"),
}
MAX_SHOWN_ROWS = 10


# ---- the parsed scenario -------------------------------------------------------------------------


@dataclass
class Step:
    kind: str
    where: str  # key path, e.g. inject[2].run
    args: dict[str, Any]


@dataclass
class Assertion:
    where: str  # key path, e.g. expected_propagation[1]
    name: str
    kind: AssertionKind
    filters: dict[str, Any]
    negated: bool  # under expected_non_propagation
    bind: str | None = None
    equals: int | None = None

    @property
    def key_column(self) -> str:
        return KEY_COLUMN.get(self.kind.table, "id")


@dataclass
class Scenario:
    path: str
    scenario_id: str
    name: str
    tenant: str
    inject: list[Step]
    assertions: list[Assertion] = field(default_factory=list)


# ---- YAML ----------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of keeping the last one silently."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    result: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"keys must be strings, got {_describe(key)}", key_node.start_mark)
        if key in result:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(path, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        documents = list(yaml.load_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        problem = "; ".join(filter(None, [exc.context, exc.problem]))
        raise AosdbError(f"{where}: invalid YAML: {problem}", exit_code=2) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(path, "", f"invalid YAML: {exc}") from None
    documents = [d for d in documents if d is not None]
    if not documents:
        raise ScenarioError(path, "", "empty file: a scenario needs scenario_id, tenant and inject")
    if len(documents) > 1:
        raise ScenarioError(path, "", f"{len(documents)} YAML documents: one scenario per file")
    return documents[0]


# ---- offline validation --------------------------------------------------------------------------


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (dt.date, dt.datetime)):
        return f"timestamp {value.isoformat()} (quote it to make it a string)"
    return type(value).__name__


def _join(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


class _Checker:
    """Validates one file's structure; every message names the key path."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, where: str, message: str) -> ScenarioError:
        return ScenarioError(self.path, where, message)

    def mapping(self, value: Any, where: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a mapping, got {_describe(value)}")
        for key in value:
            if key not in allowed:
                raise self.fail(_join(where, key), f"unknown key {key!r} (allowed: {', '.join(allowed)})")
        for key in required:
            if key not in value or value[key] is None:
                raise self.fail(_join(where, key), "required")
        return value

    def string(self, value: Any, where: str, pattern: re.Pattern | None = None, what: str = "") -> str:
        if not isinstance(value, str):
            hint = " (quote it)" if isinstance(value, (bool, int, float)) else ""
            raise self.fail(where, f"must be a string, got {_describe(value)}{hint}")
        if not value.strip():
            raise self.fail(where, "must not be blank")
        if pattern is not None and not pattern.match(value):
            raise self.fail(where, f"{value!r} is not a valid {what or 'value'} ({pattern.pattern})")
        return value

    def choice(self, value: Any, where: str, choices: tuple[str, ...], what: str) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"must be a string, got {_describe(value)}")
        if value not in choices:
            raise self.fail(where, f"unknown {what} {value!r} (one of {', '.join(choices)})")
        return value

    def count(self, value: Any, where: str, minimum: int = 0, maximum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"must be a whole number, got {_describe(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise self.fail(where, f"must be {bound}, got {value}")
        return value

    def number(self, value: Any, where: str) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, f"must be a number, got {_describe(value)}")
        if value < 0:
            raise self.fail(where, f"must not be negative, got {value}")
        return value

    def timestamp(self, value: Any, where: str) -> Any:
        if not isinstance(value, (str, dt.date, dt.datetime)):
            raise self.fail(where, f"must be a timestamp, got {_describe(value)}")
        return value

    def uuid_text(self, value: Any, where: str) -> str:
        text = self.string(value, where)
        if not REFERENCE.search(text):
            try:
                uuid.UUID(text)
            except ValueError:
                raise self.fail(where, f"{text!r} is not a uuid") from None
        return text

    def references(self, value: Any, where: str, allowed: set[str], hint: str) -> None:
        """Every ${name} in the strings of value must name something in allowed."""
        if isinstance(value, str):
            for name in _reference_names(value, lambda bad: self.fail(where, bad)):
                if name not in allowed:
                    raise self.fail(where, f"${{{name}}} is not bound ({hint})")
        elif isinstance(value, dict):
            for key, item in value.items():
                self.references(item, _join(where, key), allowed, hint)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.references(item, _join(where, index), allowed, hint)


def _reference_names(text: str, bad: Callable[[str], Exception]) -> list[str]:
    names = []
    for match in REFERENCE.finditer(text):
        name = match.group(1)
        if not NAME_FORMAT.match(name):
            raise bad(f"malformed reference {match.group(0)!r} (write ${{name}})")
        names.append(name)
    if "${" in REFERENCE.sub("", text):
        raise bad(f"unterminated reference in {text!r} (write ${{name}})")
    return names


# What each inject step takes. The run's keys are the columns of activity.runs the WorkerRunner API
# sets, plus steps and repeat; outcome keys are what finish_run reports, so only a finished run has them.
RUN_KEYS = ("run_id", "agent_id", "status", "goal", "error_code", "error_message", "input_tokens",
            "output_tokens", "estimated_cost_usd", "attempts", "duration_ms", "started_at", "completed_at",
            "trace_id", "steps", "repeat")
OUTCOME_KEYS = ("error_code", "error_message", "input_tokens", "output_tokens", "estimated_cost_usd",
                "duration_ms", "completed_at")
STEP_KEYS = ("skill_name", "status", "trace_id", "outcome_code", "params", "cost_usd", "duration_ms",
             "retry_count", "occurred_at")
STEP_KINDS = ("run", "insert", "approve", "reject", "acknowledge", "resolve", "create_rule")


def _validate_run(c: _Checker, args: Any, where: str) -> dict:
    c.mapping(args, where, RUN_KEYS, ("run_id", "agent_id", "status"))
    for key in ("run_id", "agent_id", "goal", "error_code", "error_message", "trace_id"):
        if args.get(key) is not None:
            c.string(args[key], _join(where, key))
    status = c.choice(args["status"], _join(where, "status"), RUN_STATUSES, "status")
    for key in ("input_tokens", "output_tokens", "attempts", "duration_ms"):
        if args.get(key) is not None:
            c.count(args[key], _join(where, key))
    if args.get("estimated_cost_usd") is not None:
        c.number(args["estimated_cost_usd"], _join(where, "estimated_cost_usd"))
    for key in ("started_at", "completed_at"):
        if args.get(key) is not None:
            c.timestamp(args[key], _join(where, key))
    if status not in TERMINAL_STATUSES:
        for key in OUTCOME_KEYS:
            if args.get(key) is not None:
                raise c.fail(_join(where, key),
                             f"only a finished run ({', '.join(TERMINAL_STATUSES)}) reports {key}, not a {status} one")
    steps = args.get("steps")
    if steps is not None:
        if not isinstance(steps, list):
            raise c.fail(_join(where, "steps"), f"must be a list of steps, got {_describe(steps)}")
        for index, step in enumerate(steps):
            at = _join(_join(where, "steps"), index)
            c.mapping(step, at, STEP_KEYS, ("skill_name", "status"))
            c.string(step["skill_name"], _join(at, "skill_name"))
            c.choice(step["status"], _join(at, "status"), STEP_STATUSES, "step status")
            for key in ("trace_id", "outcome_code"):
                if step.get(key) is not None:
                    c.string(step[key], _join(at, key))
            if step.get("params") is not None and not isinstance(step["params"], dict):
                raise c.fail(_join(at, "params"), f"must be a mapping, got {_describe(step['params'])}")
            if step.get("cost_usd") is not None:
                c.number(step["cost_usd"], _join(at, "cost_usd"))
            for key in ("duration_ms", "retry_count"):
                if step.get(key) is not None:
                    c.count(step[key], _join(at, key))
            if step.get("occurred_at") is not None:
                c.timestamp(step["occurred_at"], _join(at, "occurred_at"))
    if "repeat" in args:
        c.count(args["repeat"], _join(where, "repeat"), 1, MAX_REPEAT)
        if f"${{{REPEAT_NAME}}}" not in args["run_id"]:
            raise c.fail(_join(where, "run_id"), "a repeated run needs ${i} in its run_id (1, 2, ... repeat)")
    return args


def _validate_target(c: _Checker, args: dict, where: str, of_run: str, by_id: str) -> None:
    given = [key for key in (of_run, by_id) if args.get(key) is not None]
    if len(given) != 1:
        raise c.fail(where, f"give exactly one of {of_run} and {by_id}")
    if of_run in given:
        c.string(args[of_run], _join(where, of_run))
    else:
        c.uuid_text(args[by_id], _join(where, by_id))


def _validate_step(c: _Checker, raw: Any, where: str) -> Step:
    if not isinstance(raw, dict) or len(raw) != 1:
        got = ", ".join(repr(k) for k in raw) if isinstance(raw, dict) else _describe(raw)
        raise c.fail(where, f"a step is a mapping with one key, one of {', '.join(STEP_KINDS)}; got {got or 'nothing'}")
    kind, args = next(iter(raw.items()))
    if kind not in STEP_KINDS:
        raise c.fail(_join(where, kind), f"unknown step {kind!r} (one of {', '.join(STEP_KINDS)})")
    at = _join(where, kind)
    if kind == "run":
        _validate_run(c, args, at)
    elif kind == "insert":
        c.mapping(args, at, ("table", "rows", "repeat"), ("table", "rows"))
        c.string(args["table"], _join(at, "table"), re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$"),
                 "schema-qualified table")
        rows = args["rows"]
        if not isinstance(rows, list) or not rows:
            raise c.fail(_join(at, "rows"), f"must be a non-empty list of rows, got {_describe(rows)}")
        for index, row in enumerate(rows):
            if not isinstance(row, dict) or not row:
                raise c.fail(_join(_join(at, "rows"), index), f"must be a mapping of columns, got {_describe(row)}")
        if "repeat" in args:
            # A storm in one statement: the rows N times over, so the engines see N times the rows at once.
            c.count(args["repeat"], _join(at, "repeat"), 1, MAX_REPEAT)
            for index, row in enumerate(rows):
                if not any(isinstance(v, str) and f"${{{REPEAT_NAME}}}" in v for v in row.values()):
                    raise c.fail(_join(_join(at, "rows"), index),
                                 "a repeated insert needs ${i} in a value of every row (1, 2, ... repeat)")
    elif kind in ("approve", "reject"):
        c.mapping(args, at, ("proposal_of_run", "proposal_id", "reviewed_by", "notes"), ("reviewed_by",))
        _validate_target(c, args, at, "proposal_of_run", "proposal_id")
        c.string(args["reviewed_by"], _join(at, "reviewed_by"))
        if args.get("notes") is not None:
            c.string(args["notes"], _join(at, "notes"))
    elif kind in ("acknowledge", "resolve"):
        allowed = ("incident_of_run", "incident_id", "actor") + (("method", "notes") if kind == "resolve" else ())
        c.mapping(args, at, allowed, ("actor",))
        _validate_target(c, args, at, "incident_of_run", "incident_id")
        c.string(args["actor"], _join(at, "actor"))
        if args.get("method") is not None:
            c.choice(args["method"], _join(at, "method"), RESOLUTION_METHODS, "resolution method")
        if args.get("notes") is not None:
            c.string(args["notes"], _join(at, "notes"))
    else:  # create_rule: the arguments of policies.create_rule
        c.mapping(args, at, ("name", "rule_type", "conditions", "enforcement", "agent_id"),
                  ("name", "rule_type", "conditions", "enforcement"))
        c.string(args["name"], _join(at, "name"))
        c.choice(args["rule_type"], _join(at, "rule_type"), RULE_TYPES, "rule type")
        if not isinstance(args["conditions"], dict):
            raise c.fail(_join(at, "conditions"), f"must be a mapping, got {_describe(args['conditions'])}")
        c.choice(args["enforcement"], _join(at, "enforcement"), ENFORCEMENTS, "enforcement")
        if args.get("agent_id") is not None:
            c.string(args["agent_id"], _join(at, "agent_id"))
    names = set(BUILTIN_NAMES) | ({REPEAT_NAME} if kind in ("run", "insert") and "repeat" in args else set())
    c.references(args, at, names, "inject steps run before any assertion binds: they may use "
                 + ", ".join(f"${{{n}}}" for n in sorted(names)))
    return Step(kind, at, args)


def _validate_assertion(c: _Checker, raw: Any, where: str, negated: bool, bound: set[str]) -> Assertion:
    if not isinstance(raw, dict):
        raise c.fail(where, f"an assertion is a mapping, got {_describe(raw)}")
    for key in ("assertion", "domain"):
        if raw.get(key) is None:
            raise c.fail(_join(where, key), "required")
    name = c.string(raw["assertion"], _join(where, "assertion"))
    if name not in ASSERTIONS:
        raise c.fail(_join(where, "assertion"), f"unknown assertion {name!r} (one of {', '.join(ASSERTIONS)})")
    kind = ASSERTIONS[name]
    domain = c.string(raw["domain"], _join(where, "domain"))
    if domain != kind.domain:
        raise c.fail(_join(where, "domain"), f"{name} reads {kind.table}: its domain is {kind.domain}, not {domain!r}")
    filters = {k: v for k, v in raw.items() if k not in ASSERTION_KEYS}
    for key in filters:
        if key in ("tenant_id",):
            raise c.fail(_join(where, key), "every assertion is scoped to the scenario's tenant: tenant_id is implied")
        if kind.mode == "flag" and key == "policy_violation":
            raise c.fail(_join(where, key), "policy_violation asserts the flag itself: use run_exists to filter by it")
    assertion = Assertion(where, name, kind, filters, negated)
    if kind.mode == "count":
        if negated:
            raise c.fail(where, f"{name} belongs under expected_propagation (say equals: 0 there)")
        if "equals" not in raw:
            raise c.fail(_join(where, "equals"), f"required: {name} states how many rows, e.g. equals: 1")
        assertion.equals = c.count(raw["equals"], _join(where, "equals"))
    elif "equals" in raw:
        raise c.fail(_join(where, "equals"), f"only the *_count assertions take equals, not {name}")
    if "bind" in raw:
        bind_at = _join(where, "bind")
        if negated:
            raise c.fail(bind_at, "nothing matches under expected_non_propagation: there is no row to bind")
        if kind.mode == "count":
            raise c.fail(bind_at, f"{name} counts rows: bind a row with a *_created or run_exists assertion")
        bind = c.string(raw["bind"], bind_at, NAME_FORMAT, "name")
        if bind in bound or bind in BUILTIN_NAMES or bind == REPEAT_NAME:
            raise c.fail(bind_at, f"{bind!r} is already bound" if bind in bound else f"{bind!r} is a reserved name")
        assertion.bind = bind
    c.references(filters, where, bound | set(BUILTIN_NAMES),
                 "bind it in an earlier assertion; " + ", ".join(f"${{{n}}}" for n in BUILTIN_NAMES) + " are built in")
    if assertion.bind:
        bound.add(assertion.bind)
    return assertion


TOP_KEYS = ("scenario_id", "name", "description", "tenant", "inject", "expected_propagation",
            "expected_non_propagation")


def load_scenario(path: str) -> Scenario:
    """Parse and validate one scenario file (everything that needs no database)."""
    c = _Checker(path)
    doc = _read_yaml(path)
    c.mapping(doc, "", TOP_KEYS, ("scenario_id", "tenant", "inject"))
    scenario_id = c.string(doc["scenario_id"], "scenario_id", SCENARIO_ID_FORMAT, "scenario id")
    tenant = c.string(doc["tenant"], "tenant", TENANT_FORMAT, "tenant id")
    if not tenant.startswith(SCENARIO_TENANT_PREFIX):
        raise c.fail("tenant", f"{tenant!r} is not a scenario tenant: it must start with {SCENARIO_TENANT_PREFIX}")
    name = c.string(doc["name"], "name") if doc.get("name") is not None else scenario_id
    if doc.get("description") is not None:
        c.string(doc["description"], "description")
    inject = doc["inject"]
    if not isinstance(inject, list) or not inject:
        raise c.fail("inject", f"must be a non-empty list of steps, got {_describe(inject)}")
    steps = [_validate_step(c, raw, _join("inject", i)) for i, raw in enumerate(inject)]
    scenario = Scenario(path, scenario_id, name, tenant, steps)
    bound: set[str] = set()
    for section, negated in (("expected_propagation", False), ("expected_non_propagation", True)):
        items = doc.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            raise c.fail(section, f"must be a list of assertions, got {_describe(items)}")
        scenario.assertions += [
            _validate_assertion(c, raw, _join(section, i), negated, bound) for i, raw in enumerate(items)
        ]
    return scenario


def scenario_files(paths: list[str]) -> list[str]:
    """Files named, and every *.yaml / *.yml of a directory named, in name order; each file once."""
    files: list[str] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted((p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()),
                           key=lambda p: p.name)
            if not found:
                raise AosdbError(f"{given}: no *.yaml scenario in this directory", exit_code=2)
        elif path.is_file():
            found = [path]
        else:
            raise AosdbError(f"{given}: no such file or directory", exit_code=2)
        for file in found:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                files.append(str(file))
    return files


# ---- the catalog: what the database says about columns and grants -------------------------------


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


@dataclass
class Catalog:
    tables: dict[str, dict[str, Column]]
    scenario_may_insert: set[str]

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
            WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies') AND c.relkind IN ('r', 'p')
            ORDER BY 1, a.attnum
            """,
            (SCENARIO_ROLE,),
        ).fetchall()
        tables: dict[str, dict[str, Column]] = {}
        may_insert: set[str] = set()
        for table, column, sql_type, typname, generated, insert in rows:
            tables.setdefault(table, {})[column] = Column(column, sql_type, _KIND_BY_TYPE.get(typname, "other"),
                                                          generated)
            if insert:
                may_insert.add(table)
        return cls(tables, may_insert)

    def may_scenario_write(self, table: str) -> bool:
        """Scenarios inject causes: activity tables aos_scenario may insert into (some columns of
        activity.runs: not policy_violation, the PolicyEngine's), nothing else."""
        return table.startswith("activity.") and table in self.scenario_may_insert


def _check_value(c: _Checker, column: Column, value: Any, where: str, for_filter: bool) -> None:
    """A YAML value fits a column (references stand for strings and are checked once resolved)."""
    if value is None:
        return
    kind = column.kind
    if kind == "jsonb":
        if for_filter and not isinstance(value, (dict, list)):
            raise c.fail(where, f"{column.name} is jsonb: give a mapping or a list, matched by containment (@>)")
        return
    if isinstance(value, (dict, list)):
        raise c.fail(where, f"{column.name} is {column.sql_type}, got {_describe(value)}")
    if kind == "uuid":
        c.uuid_text(value, where)
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise c.fail(where, f"{column.name} is {column.sql_type}: must be a whole number, got {_describe(value)}")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise c.fail(where, f"{column.name} is {column.sql_type}: must be a number, got {_describe(value)}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise c.fail(where, f"{column.name} is boolean: must be true or false, got {_describe(value)}")
    elif kind == "timestamp":
        c.timestamp(value, where)
    elif not isinstance(value, str):
        raise c.fail(where, f"{column.name} is {column.sql_type}: must be a string (quote it), got {_describe(value)}")


def _check_against_catalog(scenario: Scenario, catalog: Catalog) -> None:
    c = _Checker(scenario.path)
    for step in scenario.inject:
        if step.kind != "insert":
            continue
        table = step.args["table"]
        columns = catalog.tables.get(table)
        if columns is None:
            raise c.fail(_join(step.where, "table"), f"unknown table {table!r}")
        for index, row in enumerate(step.args["rows"]):
            at = _join(_join(step.where, "rows"), index)
            for key, value in row.items():
                column = columns.get(key)
                if column is None:
                    raise c.fail(_join(at, key), f"unknown column {key!r} of {table} (columns: {', '.join(columns)})")
                if key in RUNNER_COLUMNS:
                    raise c.fail(_join(at, key), f"{key} is set by the runner (the scenario's tenant and id)")
                if column.generated:
                    raise c.fail(_join(at, key), f"{table}.{key} is a generated column")
                _check_value(c, column, value, _join(at, key), for_filter=False)
    for assertion in scenario.assertions:
        columns = catalog.tables[assertion.kind.table]
        for key, value in assertion.filters.items():
            column = columns.get(key)
            if column is None:
                names = ", ".join(n for n in columns if n != "tenant_id")
                raise c.fail(_join(assertion.where, key),
                             f"unknown column {key!r} of {assertion.kind.table} (columns: {names})")
            _check_value(c, column, value, _join(assertion.where, key), for_filter=True)


# ---- substitution --------------------------------------------------------------------------------


class _Unbound(Exception):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def _substitute(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name not in env:
                raise _Unbound(name)
            return env[name]
        return REFERENCE.sub(replace, value)
    if isinstance(value, dict):
        return {k: _substitute(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env) for v in value]
    return value


def _insert_args(args: dict, env: dict[str, str]) -> dict:
    """An insert step, substituted; with `repeat`, its rows repeat times over with ${i} = 1..repeat
    (every row of 1, then of 2, ...), all in the one statement."""
    repeat = args.get("repeat")
    if not repeat:
        return _substitute(args, env)
    rows = [_substitute(row, {**env, REPEAT_NAME: str(i)}) for i in range(1, repeat + 1) for row in args["rows"]]
    return {"table": args["table"], "rows": rows}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


# ---- TAP -----------------------------------------------------------------------------------------


class _Tap:
    def __init__(self, emit: Callable[[str], None]):
        self.emit = emit
        self.number = 0
        self.passed = 0
        self.failed = 0
        self.skipped = 0

    def result(self, ok: bool, description: str, diagnostics: list[str] = (), skip: str | None = None) -> None:
        self.number += 1
        text = " ".join(description.split()).replace("#", "\\#")
        if skip is not None:
            self.skipped += 1
            self.emit(f"ok {self.number} - {text} # SKIP {skip}")
            return
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        self.emit(f"{'ok' if ok else 'not ok'} {self.number} - {text}")
        for line in diagnostics:
            self.comment(line)

    def comment(self, text: str) -> None:
        for line in str(text).splitlines() or [""]:
            self.emit(f"#   {line}".rstrip())

    def note(self, text: str) -> None:
        self.emit(f"# {text}")


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    text = str(value)
    return json.dumps(text) if (not text or any(ch.isspace() for ch in text) or "=" in text) else text


def _describe_assertion(scenario: Scenario, a: Assertion) -> str:
    filters = " ".join(f"{k}={_show(v)}" for k, v in a.filters.items())
    head = f"{a.kind.table.split('.')[0]}.{a.name}"
    text = f"{scenario.scenario_id} {'no ' if a.negated else ''}{head}"
    if filters:
        text += f" {filters}"
    if a.equals is not None:
        text += f" equals {a.equals}"
    if a.bind:
        text += f" (binds ${{{a.bind}}})"
    return text


# ---- running -------------------------------------------------------------------------------------


@contextmanager
def _as_connecting_user(conn: psycopg.Connection) -> Iterator[None]:
    """Reads aos_scenario may not make (incidents, proposals): as the connecting user, then back."""
    conn.execute("RESET ROLE")
    yield
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(SCENARIO_ROLE)))


def _table(name: str) -> sql.Composable:
    schema, table = name.split(".")
    return sql.Identifier(schema, table)


class _Runner:
    def __init__(self, conn: psycopg.Connection, catalog: Catalog, tap: _Tap, keep: bool):
        self.conn = conn
        self.catalog = catalog
        self.tap = tap
        self.keep = keep
        self.check_effect_writes = True  # the runner's own refusal; the database's 42501 stands behind it
        self.committed: list[str] = []
        self.rolled_back: list[str] = []

    # -- one scenario --

    def run(self, s: Scenario) -> None:
        tap, conn = self.tap, self.conn
        title = f"{s.scenario_id}: {s.name}" if s.name != s.scenario_id else s.scenario_id
        tap.note(f"{title} ({s.path}, tenant {s.tenant})")
        env = {"tenant": s.tenant, "scenario_id": s.scenario_id}
        inject_failed = False
        with conn.transaction() as tx:
            conn.execute("SELECT set_config('aos.tenant_id', %s, true), "
                         "set_config('aos.synthetic_scenario_id', %s, true)", (s.tenant, s.scenario_id))
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(SCENARIO_ROLE)))
            try:
                conn.execute("SELECT aos.register_tenant(%s, %s)", (s.tenant, s.name))
                summary = self._inject(s, env)
            except _InjectFailed as exc:
                inject_failed = True
                tap.result(False, f"{s.scenario_id} {exc}")
            else:
                tap.result(True, f"{s.scenario_id} inject: {summary} as {SCENARIO_ROLE}")
            if inject_failed:
                for a in s.assertions:
                    tap.result(True, _describe_assertion(s, a), skip="inject failed")
                tap.result(True, f"{s.scenario_id} synthetic marks", skip="inject failed")
                self.rolled_back.append(s.scenario_id)
                raise psycopg.Rollback(tx)
            conn.execute("RESET ROLE")
            for a in s.assertions:
                self._check(s, a, env)
            self._check_marks(s)
            if not self.keep:
                self.rolled_back.append(s.scenario_id)
                raise psycopg.Rollback(tx)
        self.committed.append(s.scenario_id)

    # -- inject --

    def _inject(self, s: Scenario, env: dict[str, str]) -> str:
        counts: dict[str, int] = {}
        for step in s.inject:
            try:
                if step.kind == "run":
                    repeat = step.args.get("repeat")
                    for i in range(1, (repeat or 1) + 1):
                        args = _substitute(step.args, {**env, REPEAT_NAME: str(i)} if repeat else env)
                        self._run(s, args)
                    counts["run"] = counts.get("run", 0) + (repeat or 1)
                elif step.kind == "insert":
                    args = _insert_args(step.args, env)
                    self._insert(s, step, args)
                    counts["insert"] = counts.get("insert", 0) + len(args["rows"])
                else:
                    getattr(self, f"_{step.kind}")(s, step, _substitute(step.args, env))
                    counts[step.kind] = counts.get(step.kind, 0) + 1
            except psycopg.Error as exc:
                message = error_line(exc)
                if exc.sqlstate == "42501":
                    message += " (the write is forbidden to scenarios: they inject causes, the engines create effects)"
                raise _InjectFailed(step.where, message) from None
        words = {"run": ("run", "runs"), "insert": ("row inserted", "rows inserted"),
                 "approve": ("approval", "approvals"), "reject": ("rejection", "rejections"),
                 "acknowledge": ("acknowledgement", "acknowledgements"), "resolve": ("resolution", "resolutions"),
                 "create_rule": ("rule created", "rules created")}
        return ", ".join(f"{n} {words[k][n != 1]}" for k, n in counts.items())

    def _run(self, s: Scenario, args: dict) -> None:
        status = args["status"]
        options: dict[str, Any] = {"status": "queued" if status == "queued" else "running",
                                   "is_synthetic": True, "synthetic_scenario_id": s.scenario_id}
        for key in ("started_at", "attempts", "trace_id"):
            if args.get(key) is not None:
                options[key] = args[key]
        self.conn.execute("SELECT activity.start_run(%s, %s, %s, %s, %s)",
                          (s.tenant, args["run_id"], args["agent_id"], args.get("goal"), Jsonb(_jsonable(options))))
        for step in args.get("steps") or ():
            if args.get("trace_id") and "trace_id" not in step:
                step = {**step, "trace_id": args["trace_id"]}
            self.conn.execute("SELECT activity.record_step(%s, %s, %s)",
                              (s.tenant, args["run_id"], Jsonb(_jsonable(step))))
        if status in TERMINAL_STATUSES:
            outcome = {k: args[k] for k in OUTCOME_KEYS if args.get(k) is not None}
            self.conn.execute("SELECT activity.finish_run(%s, %s, %s, %s)",
                              (s.tenant, args["run_id"], status, Jsonb(_jsonable(outcome))))
        elif status == "retry":
            self.conn.execute("UPDATE activity.runs SET status = 'retry' WHERE tenant_id = %s AND run_id = %s",
                              (s.tenant, args["run_id"]))

    def _insert(self, s: Scenario, step: Step, args: dict) -> None:
        table = args["table"]
        if self.check_effect_writes and not self.catalog.may_scenario_write(table):
            raise _InjectFailed(_join(step.where, "table"),
                                f"writing {table} is forbidden to scenarios: effects are created by the engines "
                                f"(a scenario injects causes into the activity tables)")
        columns = self.catalog.tables[table]
        names = list(dict.fromkeys(k for row in args["rows"] for k in row))
        marks = [m for m in RUNNER_COLUMNS if m in columns]
        values = []
        for row in args["rows"]:
            items = []
            for name in names:
                if name not in row:
                    items.append(sql.DEFAULT)
                elif columns[name].kind == "jsonb":
                    items.append(sql.SQL("{}::jsonb").format(sql.Literal(Jsonb(_jsonable(row[name])))))
                else:
                    items.append(sql.SQL("{}::{}").format(sql.Literal(row[name]), sql.SQL(columns[name].sql_type)))
            mark_values = {"tenant_id": s.tenant, "is_synthetic": True, "synthetic_scenario_id": s.scenario_id}
            items += [sql.Literal(mark_values[m]) for m in marks]
            values.append(sql.SQL("({})").format(sql.SQL(", ").join(items)))
        self.conn.execute(sql.SQL("INSERT INTO {} ({}) VALUES {}").format(
            _table(table), sql.SQL(", ").join(sql.Identifier(n) for n in names + marks), sql.SQL(", ").join(values)))

    def _lookup(self, s: Scenario, step: Step, args: dict, of_run: str, by_id: str) -> str:
        if args.get(by_id) is not None:
            return args[by_id]
        run_id = args[of_run]
        if of_run == "proposal_of_run":
            # The proposal the run's incident is linked to: the one it opened, or the pending one of the
            # same rule it joined (a storm's runs share one proposal).
            query = ("SELECT l.proposal_id FROM incidents.incidents AS i "
                     "JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id "
                     "WHERE i.tenant_id = %s AND i.source_run_id = %s AND i.cause_type = 'llm_run'")
            missing = f"run {run_id!r} has no proposal (only a high or critical incident is linked to one)"
        else:
            query = ("SELECT id FROM incidents.incidents WHERE tenant_id = %s AND source_run_id = %s "
                     "AND cause_type = 'llm_run'")
            missing = f"run {run_id!r} has no incident (only a failed run that was not prevented has one)"
        with _as_connecting_user(self.conn):
            row = self.conn.execute(query, (s.tenant, run_id)).fetchone()
        if row is None:
            raise _InjectFailed(_join(step.where, of_run), missing)
        return str(row[0])

    def _approve(self, s: Scenario, step: Step, args: dict) -> None:
        proposal = self._lookup(s, step, args, "proposal_of_run", "proposal_id")
        self.conn.execute("SELECT policies.approve_proposal(%s::uuid, %s, %s)",
                          (proposal, args["reviewed_by"], args.get("notes")))

    def _reject(self, s: Scenario, step: Step, args: dict) -> None:
        proposal = self._lookup(s, step, args, "proposal_of_run", "proposal_id")
        self.conn.execute("SELECT policies.reject_proposal(%s::uuid, %s, %s)",
                          (proposal, args["reviewed_by"], args.get("notes")))

    def _acknowledge(self, s: Scenario, step: Step, args: dict) -> None:
        incident = self._lookup(s, step, args, "incident_of_run", "incident_id")
        self.conn.execute("SELECT incidents.acknowledge(%s::uuid, %s)", (incident, args["actor"]))

    def _resolve(self, s: Scenario, step: Step, args: dict) -> None:
        incident = self._lookup(s, step, args, "incident_of_run", "incident_id")
        self.conn.execute("SELECT incidents.resolve(%s::uuid, %s, %s, %s)",
                          (incident, args["actor"], args.get("method") or "manual", args.get("notes")))

    def _create_rule(self, s: Scenario, step: Step, args: dict) -> None:
        self.conn.execute("SELECT policies.create_rule(%s, %s, %s, %s, %s)",
                          (args["name"], args["rule_type"], Jsonb(_jsonable(args["conditions"])),
                           args["enforcement"], args.get("agent_id")))

    # -- assertions --

    def _rows(self, s: Scenario, table: str, conditions: list[sql.Composable], params: list[Any],
              shown: list[str]) -> list[dict]:
        where = sql.SQL(" AND ").join([sql.SQL("tenant_id = %s"), *conditions])
        query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY created_at, {}").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in shown), _table(table), where, sql.Identifier(shown[0]))
        with self.conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            return cur.execute(query, [s.tenant, *params]).fetchall()

    def _check(self, s: Scenario, a: Assertion, env: dict[str, str]) -> None:
        description = _describe_assertion(s, a)
        table = a.kind.table
        try:
            filters = _substitute(a.filters, env)
        except _Unbound as exc:
            self.tap.result(False, description, [f"${{{exc.name}}} is unbound: the assertion that binds it failed"])
            return
        columns = self.catalog.tables[table]
        conditions: list[sql.Composable] = []
        params: list[Any] = []
        for name, value in filters.items():
            column = columns[name]
            if value is None:
                conditions.append(sql.SQL("{} IS NULL").format(sql.Identifier(name)))
            elif column.kind == "jsonb":
                conditions.append(sql.SQL("{} @> %s::jsonb").format(sql.Identifier(name)))
                params.append(Jsonb(_jsonable(value)))
            else:
                conditions.append(sql.SQL("{} = %s::{}").format(sql.Identifier(name), sql.SQL(column.sql_type)))
                params.append(value)
        shown = list(dict.fromkeys([a.key_column, *filters, *SHOWN_COLUMNS[table]]))
        flag = [sql.SQL("policy_violation")] if a.kind.mode == "flag" else []
        try:
            with self.conn.transaction():  # a savepoint: a failed read fails this line, not the scenario
                matched = self._rows(s, table, conditions + flag, params, shown)
                everything = None
                if not matched or a.kind.mode == "flag":
                    everything = self._rows(s, table, conditions if a.kind.mode == "flag" else [],
                                            params if a.kind.mode == "flag" else [], shown)
        except psycopg.Error as exc:
            self.tap.result(False, description, [f"the query failed: {error_line(exc)}"])
            return

        diagnostics: list[str] = []
        if a.kind.mode == "count":
            ok = len(matched) == a.equals
            if not ok:
                diagnostics = [f"expected {a.equals} row(s) of {table}, found {len(matched)}"
                               + (":" if matched else "")] + _list(matched)
        elif a.negated:
            ok = not matched
            if not ok:
                what = "run flagged policy_violation" if a.kind.mode == "flag" else f"matching row of {table}"
                diagnostics = [f"expected no {what}, found {len(matched)}:"] + _list(matched)
        else:
            ok = bool(matched)
            if not ok:
                diagnostics = _not_found(a, table, s.tenant, everything or [])
            elif a.bind and len(matched) > 1:
                ok = False
                diagnostics = [f"bind {a.bind} needs exactly one row, {len(matched)} match: add a filter",
                               *_list(matched)]
        if ok and a.bind:
            env[a.bind] = str(matched[0][a.key_column])
        self.tap.result(ok, description, diagnostics)

    def _check_marks(self, s: Scenario) -> None:
        """Every row this transaction wrote in the domain tables is synthetic, with a scenario id.

        Normally that id is this scenario's. Marks travel from cause to effect (SPEC 5.7), so a step
        acting on rows an earlier, kept scenario left (resolving its incident) writes rows with that
        scenario's id; the line names them. A row without marks means an engine lost them, or the
        scenario touched real data."""
        tables = sorted(t for t, cols in self.catalog.tables.items()
                        if t.split(".")[0] in ("activity", "incidents", "policies")
                        and {"tenant_id", "is_synthetic", "synthetic_scenario_id"} <= cols.keys())
        parts = [
            sql.SQL("SELECT {} AS t, is_synthetic AND synthetic_scenario_id IS NOT NULL, synthetic_scenario_id, "
                    "count(*) FROM {} WHERE tenant_id = %(tenant)s "
                    # Rows this transaction inserted or updated: the scenario writes no subtransactions.
                    "AND xmin::text::bigint = pg_current_xact_id()::text::bigint %% 4294967296 "
                    "GROUP BY 2, 3").format(sql.Literal(t), _table(t))
            for t in tables
        ]
        rows = self.conn.execute(sql.SQL(" UNION ALL ").join(parts), {"tenant": s.tenant}).fetchall()
        written = sum(n for *_, n in rows)
        unmarked: dict[str, list[int]] = {}
        for table, marked, _, n in rows:
            counts = unmarked.setdefault(table, [0, 0])
            counts[0] += 0 if marked else n
            counts[1] += n
        bad = {t: c for t, c in unmarked.items() if c[0]}
        if bad:
            self.tap.result(False,
                            f"{s.scenario_id} synthetic marks: every row written is synthetic, with a scenario id",
                            [f"{t}: {u} of {n} rows written lack is_synthetic or synthetic_scenario_id"
                             for t, (u, n) in sorted(bad.items())])
            return
        by_id: dict[str, int] = {}
        for _, _, scenario_id, n in rows:
            by_id[scenario_id] = by_id.get(scenario_id, 0) + n
        others = {k: n for k, n in by_id.items() if k != s.scenario_id}
        text = f"{s.scenario_id} synthetic marks: {written} rows written, all marked {s.scenario_id}"
        if others:
            own_first = sorted(by_id.items(), key=lambda kv: kv[0] != s.scenario_id)
            text = (f"{s.scenario_id} synthetic marks: {written} rows written, all synthetic: "
                    + ", ".join(f"{n} marked {k}" for k, n in own_first)
                    + " (effects of the earlier scenario's rows)")
        self.tap.result(True, text)


def _list(rows: list[dict]) -> list[str]:
    lines = ["  " + ", ".join(f"{k}={_show(v)}" for k, v in row.items()) for row in rows[:MAX_SHOWN_ROWS]]
    if len(rows) > MAX_SHOWN_ROWS:
        lines.append(f"  ... and {len(rows) - MAX_SHOWN_ROWS} more")
    return lines


def _not_found(a: Assertion, table: str, tenant: str, rows: list[dict]) -> list[str]:
    if a.kind.mode == "flag":
        head = (f"no run of tenant {tenant} matching the filters has policy_violation = true; "
                f"{len(rows)} run(s) match the filters" + (":" if rows else ""))
    elif a.filters:
        head = f"no row of {table} matches; tenant {tenant} has {len(rows)}" + (":" if rows else "")
    else:
        head = f"tenant {tenant} has no row in {table}"
    return [head] + _list(rows)


# ---- entry point ---------------------------------------------------------------------------------


def _prerequisites(conn: psycopg.Connection) -> Catalog:
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
    catalog = Catalog.load(conn)
    missing = [t for t in {k.table for k in ASSERTIONS.values()} if t not in catalog.tables]
    if missing:
        raise AosdbError(f"the database has no {', '.join(sorted(missing))}: run `aosdb migrate` first", exit_code=2)
    unreadable = [t for t in sorted({k.table for k in ASSERTIONS.values()})
                  if not conn.execute("SELECT pg_catalog.has_table_privilege(%s, 'SELECT')", (t,)).fetchone()[0]]
    if unreadable:
        raise AosdbError(f"{user} cannot read {', '.join(unreadable)}, which the assertions check: "
                         "connect as the database owner (or a member of aos_owner)", exit_code=2)
    return catalog


def run_paths(dsn: str, paths: list[str], keep: bool, emit: Callable[[str], None],
              _check_effect_writes: bool = True) -> int:
    """Run the scenarios of PATH... (files, or directories of *.yaml) and print TAP through emit.

    Returns the exit status: 0 when every line is ok, 1 when one is not. Raises AosdbError
    (exit 2) when a file is malformed or the database cannot run scenarios: nothing ran then."""
    scenarios = [load_scenario(f) for f in scenario_files(paths)]
    owners: dict[str, str] = {}
    for s in scenarios:
        if s.scenario_id in owners:
            raise ScenarioError(s.path, "scenario_id", f"{s.scenario_id!r} is also the id of {owners[s.scenario_id]}")
        owners[s.scenario_id] = s.path
    try:
        with connect(dsn, autocommit=True) as conn:
            catalog = _prerequisites(conn)
            for s in scenarios:
                _check_against_catalog(s, catalog)
            tap = _Tap(emit)
            emit(f"1..{sum(len(s.assertions) + 2 for s in scenarios)}")
            runner = _Runner(conn, catalog, tap, keep)
            runner.check_effect_writes = _check_effect_writes
            for s in scenarios:
                runner.run(s)
    except AosdbError as exc:
        if exc.exit_code == 2:
            raise
        raise AosdbError(str(exc), exit_code=2) from None
    if keep:
        failed = f"; rolled back after a failed inject: {', '.join(runner.rolled_back)}" if runner.rolled_back else ""
        tap.note(f"committed (--keep): {', '.join(runner.committed) or 'none'}{failed}")
    else:
        tap.note(f"rolled back: every scenario ({len(runner.rolled_back)}); --keep commits them")
    summary = f"{tap.passed} passed, {tap.failed} failed"
    if tap.skipped:
        summary += f", {tap.skipped} skipped"
    tap.note(summary)
    return 1 if tap.failed else 0
