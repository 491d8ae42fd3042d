"""The scenario file: its schema as pydantic models, read from YAML, checked offline.

What a file may say is declared once, here: the models validate it and `scenario_schema()` turns
them into the JSON Schema editors use (scenarios/scenario.schema.json). Values the database
enumerates (run and step statuses, rule types, ...) are plain strings here: the catalog pass
checks them against the migrated database's CHECK constraints (catalog.py).

Every problem is reported as one line naming the file and the key path (``inject[2].run.status``),
exit 2. Pydantic's errors are translated into that form by `_translate`; the validators below raise
`_invalid(...)` with the message a scenario author reads.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Optional

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from aosdb.errors import AosdbError

TENANT_FORMAT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# aos.register_tenant refuses aos_scenario any other tenant (42501): say so before connecting.
SCENARIO_TENANT_PREFIX = "sdsr-"
SCENARIO_ID_FORMAT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
NAME_FORMAT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TABLE_FORMAT = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
REFERENCE = re.compile(r"\$\{([^{}]*)\}")
MAX_REPEAT = 10_000

# Names every string may refer to; ${i} only inside a repeated run or insert.
BUILTIN_NAMES = ("tenant", "scenario_id")
REPEAT_NAME = "i"


class ScenarioError(AosdbError):
    """A scenario file that cannot be run: one line naming the file and the key path, exit 2."""

    def __init__(self, path: str, where: str, message: str):
        super().__init__(f"{path}: {where}: {message}" if where else f"{path}: {message}", exit_code=2)


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

# The id `bind` stores: run_id for runs (what every link uses), the uuid otherwise.
KEY_COLUMN = {"activity.runs": "run_id"}


# ---- messages ------------------------------------------------------------------------------------


def describe(value: Any) -> str:
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


def join(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    if not where:
        return key
    return f"{where}{key}" if key.startswith("[") else f"{where}.{key}"


def _invalid(message: str, at: str = "") -> PydanticCustomError:
    """A validation error with the author's message, `at` a key path below the value validated."""
    return PydanticCustomError("scenario", "{message}", {"message": message, "at": at})


def reference_names(text: str, bad: Callable[[str], Exception]) -> list[str]:
    names = []
    for match in REFERENCE.finditer(text):
        name = match.group(1)
        if not NAME_FORMAT.match(name):
            raise bad(f"malformed reference {match.group(0)!r} (write ${{name}})")
        names.append(name)
    if "${" in REFERENCE.sub("", text):
        raise bad(f"unterminated reference in {text!r} (write ${{name}})")
    return names


def _check_references(value: Any, at: str, allowed: set[str], hint: str) -> None:
    """Every ${name} in the strings of value must name something in allowed."""
    if isinstance(value, str):
        for name in reference_names(value, lambda bad: _invalid(bad, at)):
            if name not in allowed:
                raise _invalid(f"${{{name}}} is not bound ({hint})", at)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_references(item, join(at, key), allowed, hint)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_references(item, join(at, index), allowed, hint)


# ---- values --------------------------------------------------------------------------------------
# Each is a type with a validator that gives the author's message, and the JSON Schema it stands for.


def _text(value: Any) -> str:
    if value is None:
        raise _invalid("required")
    if not isinstance(value, str):
        hint = " (quote it)" if isinstance(value, (bool, int, float)) else ""
        raise _invalid(f"must be a string, got {describe(value)}{hint}")
    if not value.strip():
        raise _invalid("must not be blank")
    return value


_TEXT_SCHEMA = {"type": "string", "pattern": r"\S"}
Text = Annotated[str, PlainValidator(_text), WithJsonSchema(_TEXT_SCHEMA)]


def _formatted(pattern: re.Pattern, what: str, description: str, required: bool = True) -> Any:
    def check(value: Any) -> str:
        if value is None and not required:
            raise _invalid("must be a string, got null")
        text = _text(value)
        if not pattern.match(text):
            raise _invalid(f"{text!r} is not a valid {what} ({pattern.pattern})")
        return text

    schema = {"type": "string", "pattern": pattern.pattern, "description": description}
    return Annotated[str, PlainValidator(check), WithJsonSchema(schema)]


def _count(minimum: int = 0, maximum: int | None = None) -> Any:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid(f"must be a whole number, got {describe(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise _invalid(f"must be {bound}, got {value}")
        return value

    schema: dict[str, Any] = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    return Annotated[int, PlainValidator(check), WithJsonSchema(schema)]


Count = _count()
Repeat = _count(1, MAX_REPEAT)


def _number(value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _invalid(f"must be a number, got {describe(value)}")
    if value < 0:
        raise _invalid(f"must not be negative, got {value}")
    return value


Number = Annotated[Any, PlainValidator(_number), WithJsonSchema({"type": "number", "minimum": 0})]


def _timestamp(value: Any) -> Any:
    if not isinstance(value, (str, dt.date, dt.datetime)):
        raise _invalid(f"must be a timestamp, got {describe(value)}")
    return value


Timestamp = Annotated[Any, PlainValidator(_timestamp),
                      WithJsonSchema({"type": "string", "description": "a timestamp, e.g. 2026-01-31T12:00:00Z"})]


def uuid_text(value: Any) -> str:
    text = _text(value)
    if not REFERENCE.search(text):
        try:
            uuid.UUID(text)
        except ValueError:
            raise _invalid(f"{text!r} is not a uuid") from None
    return text


UuidText = Annotated[str, PlainValidator(uuid_text),
                     WithJsonSchema({"type": "string", "description": "a uuid, or a ${reference} to one"})]


def _mapping(value: Any) -> dict:
    if not isinstance(value, dict):
        raise _invalid(f"must be a mapping, got {describe(value)}")
    return value


Mapping = Annotated[dict[str, Any], PlainValidator(_mapping), WithJsonSchema({"type": "object"})]


def _row(value: Any) -> dict:
    if not isinstance(value, dict) or not value:
        raise _invalid(f"must be a mapping of columns, got {describe(value)}")
    return value


Row = Annotated[dict[str, Any], PlainValidator(_row),
                WithJsonSchema({"type": "object", "minProperties": 1, "description": "column: value"})]


def _list_of(what: str, required: bool = False) -> BeforeValidator:
    """A list (a required one non-empty); its items are validated by the list's item type."""
    wording = f"a non-empty list of {what}" if required else f"a list of {what}"

    def check(value: Any) -> list | None:
        if value is None:
            if required:
                raise _invalid("required")
            return None
        if not isinstance(value, list) or (required and not value):
            raise _invalid(f"must be {wording}, got {describe(value)}")
        return value

    return BeforeValidator(check)


def _enumerated(description: str) -> Any:
    """A value the database enumerates: a string here, checked against the catalog before running."""
    return Annotated[str, PlainValidator(_text), WithJsonSchema({**_TEXT_SCHEMA, "description": description})]


RunStatus = _enumerated("one of activity.runs.status's CHECK constraint")
StepStatus = _enumerated("one of activity.aos_trace_steps.status's CHECK constraint")
ResolutionMethod = _enumerated("one of incidents.incidents.resolution_method's CHECK constraint (default manual)")
RuleType = _enumerated("one of policies.policy_rules.rule_type's CHECK constraint")
Enforcement = _enumerated("one of policies.policy_rules.enforcement's CHECK constraint")
TableName = _formatted(TABLE_FORMAT, "schema-qualified table", "an activity table, e.g. activity.runs")
BindName = _formatted(NAME_FORMAT, "name", "stores the id of the one matching row as ${name}", required=False)
ScenarioId = _formatted(SCENARIO_ID_FORMAT, "scenario id", "unique across the suite")


def _choice(value: Any, what: str) -> str:
    _text(value)
    if value not in ASSERTIONS:
        raise _invalid(f"unknown {what} {value!r} (one of {', '.join(ASSERTIONS)})")
    return value


def _tenant(value: Any) -> str:
    text = _text(value)
    if not TENANT_FORMAT.match(text):
        raise _invalid(f"{text!r} is not a valid tenant id ({TENANT_FORMAT.pattern})")
    if not text.startswith(SCENARIO_TENANT_PREFIX):
        raise _invalid(f"{text!r} is not a scenario tenant: it must start with {SCENARIO_TENANT_PREFIX}")
    return text


AssertionName = Annotated[str, PlainValidator(lambda v: _choice(v, "assertion")),
                          WithJsonSchema({"enum": list(ASSERTIONS)})]
Domain = Annotated[str, PlainValidator(_text),
                   WithJsonSchema({"enum": sorted({k.domain for k in ASSERTIONS.values()})})]
Tenant = Annotated[str, PlainValidator(_tenant), WithJsonSchema({
    "type": "string", "pattern": f"^{SCENARIO_TENANT_PREFIX}[a-z0-9._-]{{0,59}}$",
    "description": "the scenario's own tenant, created when missing"})]


# ---- the file's models ---------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # How an unknown key is reported (translated from pydantic's extra_forbidden).
    unknown_key: ClassVar[str] = "unknown key {key!r} (allowed: {allowed})"

    @classmethod
    def keys(cls) -> list[str]:
        return [f.alias or name for name, f in cls.model_fields.items()]


class RunStep(_Model):
    """A step of a run: what activity.record_step takes."""

    skill_name: Text
    status: StepStatus
    trace_id: Optional[Text] = None
    outcome_code: Optional[Text] = None
    params: Optional[Mapping] = None
    cost_usd: Optional[Number] = None
    duration_ms: Optional[Count] = None
    retry_count: Optional[Count] = None
    occurred_at: Optional[Timestamp] = None


# What finish_run reports: only a finished run has them (the catalog knows which statuses finish).
OUTCOME_KEYS = ("error_code", "error_message", "input_tokens", "output_tokens", "estimated_cost_usd",
                "duration_ms", "completed_at")


class Run(_Model):
    """A run through the WorkerRunner API: start_run, record_step for each step, finish_run."""

    run_id: Text
    agent_id: Text
    status: RunStatus
    goal: Optional[Text] = None
    error_code: Optional[Text] = None
    error_message: Optional[Text] = None
    input_tokens: Optional[Count] = None
    output_tokens: Optional[Count] = None
    estimated_cost_usd: Optional[Number] = None
    attempts: Optional[Count] = None
    duration_ms: Optional[Count] = None
    started_at: Optional[Timestamp] = None
    completed_at: Optional[Timestamp] = None
    trace_id: Optional[Text] = None
    steps: Annotated[Optional[list[RunStep]], _list_of("steps")] = None
    repeat: Repeat = None  # null is not a number of times

    @model_validator(mode="after")
    def _repeat_needs_i(self) -> Run:
        if self.repeat is not None and f"${{{REPEAT_NAME}}}" not in self.run_id:
            raise _invalid("a repeated run needs ${i} in its run_id (1, 2, ... repeat)", "run_id")
        return self


class Insert(_Model):
    """One multi-row INSERT into an activity table, as a worker's bulk write."""

    table: TableName
    rows: Annotated[list[Row], _list_of("rows", required=True), Field(min_length=1)]
    repeat: Repeat = None  # null is not a number of times

    @model_validator(mode="after")
    def _repeat_needs_i(self) -> Insert:
        # A storm in one statement: the rows N times over, so the engines see N times the rows at once.
        if self.repeat is not None:
            for index, row in enumerate(self.rows):
                if not any(isinstance(v, str) and f"${{{REPEAT_NAME}}}" in v for v in row.values()):
                    raise _invalid("a repeated insert needs ${i} in a value of every row (1, 2, ... repeat)",
                                   f"rows[{index}]")
        return self


def _one_target(model: BaseModel, of_run: str, by_id: str) -> None:
    given = [key for key in (of_run, by_id) if getattr(model, key) is not None]
    if len(given) != 1:
        raise _invalid(f"give exactly one of {of_run} and {by_id}")


class Review(_Model):
    """approve / reject: policies.approve_proposal / reject_proposal."""

    proposal_of_run: Optional[Text] = Field(None, description="the run whose incident is linked to the proposal")
    proposal_id: Optional[UuidText] = None
    reviewed_by: Text
    notes: Optional[Text] = None

    @model_validator(mode="after")
    def _target(self) -> Review:
        _one_target(self, "proposal_of_run", "proposal_id")
        return self


class Acknowledge(_Model):
    """incidents.acknowledge."""

    incident_of_run: Optional[Text] = Field(None, description="the run whose incident it is")
    incident_id: Optional[UuidText] = None
    actor: Text

    @model_validator(mode="after")
    def _target(self) -> Acknowledge:
        _one_target(self, "incident_of_run", "incident_id")
        return self


class Resolve(Acknowledge):
    """incidents.resolve."""

    method: Optional[ResolutionMethod] = None
    notes: Optional[Text] = None


class CreateRule(_Model):
    """policies.create_rule."""

    name: Text
    rule_type: RuleType
    conditions: Mapping
    enforcement: Enforcement
    agent_id: Optional[Text] = None


class Step(_Model):
    """An inject step: a mapping with one key, the step's kind."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})
    unknown_key: ClassVar[str] = "unknown step {key!r} (one of {allowed})"

    run: Run = None
    insert: Insert = None
    approve: Review = None
    reject: Review = None
    acknowledge: Acknowledge = None
    resolve: Resolve = None
    create_rule: CreateRule = None

    @model_validator(mode="before")
    @classmethod
    def _one_key(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or len(raw) != 1:
            got = ", ".join(repr(k) for k in raw) if isinstance(raw, dict) else describe(raw)
            raise _invalid(f"a step is a mapping with one key, one of {', '.join(cls.keys())}; got {got or 'nothing'}")
        return raw

    @model_validator(mode="after")
    def _references(self) -> Step:
        kind, args = self.kind_and_args()
        names = set(BUILTIN_NAMES) | ({REPEAT_NAME} if "repeat" in args else set())
        _check_references(args, kind, names, "inject steps run before any assertion binds: they may use "
                          + ", ".join(f"${{{n}}}" for n in sorted(names)))
        return self

    def kind_and_args(self) -> tuple[str, dict[str, Any]]:
        """The step's kind and its arguments as written (the keys given, nothing defaulted)."""
        kind = next(iter(self.model_fields_set))
        return kind, getattr(self, kind).model_dump(exclude_unset=True)


class Assertion(_Model):
    """An expected effect: its `assertion` and `domain`; every other key filters by a column."""

    model_config = ConfigDict(extra="allow", json_schema_extra={
        "additionalProperties": {"description": "a column of the assertion's table: a scalar is compared with =, "
                                                "null means IS NULL, a mapping or list matches a jsonb column by @>"}})
    negated: ClassVar[bool] = False

    assertion: AssertionName
    domain: Domain
    bind: BindName = None
    equals: Count = Field(None, description="how many rows a *_count assertion expects")

    @model_validator(mode="before")
    @classmethod
    def _mapping_first(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            raise _invalid(f"an assertion is a mapping, got {describe(raw)}")
        for key in ("assertion", "domain"):
            if raw.get(key) is None:
                raise _invalid("required", key)
        return raw

    @model_validator(mode="after")
    def _coherent(self) -> Assertion:
        name, kind = self.assertion, ASSERTIONS[self.assertion]
        if self.domain != kind.domain:
            raise _invalid(f"{name} reads {kind.table}: its domain is {kind.domain}, not {self.domain!r}", "domain")
        for key in self.filters:
            if key == "tenant_id":
                raise _invalid("every assertion is scoped to the scenario's tenant: tenant_id is implied", key)
            if kind.mode == "flag" and key == "policy_violation":
                raise _invalid("policy_violation asserts the flag itself: use run_exists to filter by it", key)
        given = self.model_fields_set
        if kind.mode == "count":
            if self.negated:
                raise _invalid(f"{name} belongs under expected_propagation (say equals: 0 there)")
            if "equals" not in given:
                raise _invalid(f"required: {name} states how many rows, e.g. equals: 1", "equals")
        elif "equals" in given:
            raise _invalid(f"only the *_count assertions take equals, not {name}", "equals")
        if "bind" in given:
            if self.negated:
                raise _invalid("nothing matches under expected_non_propagation: there is no row to bind", "bind")
            if kind.mode == "count":
                raise _invalid(f"{name} counts rows: bind a row with a *_created or run_exists assertion", "bind")
            if self.bind in BUILTIN_NAMES or self.bind == REPEAT_NAME:
                raise _invalid(f"{self.bind!r} is a reserved name", "bind")
        return self

    @property
    def kind(self) -> AssertionKind:
        return ASSERTIONS[self.assertion]

    @property
    def filters(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class NegatedAssertion(Assertion):
    """An effect that must not exist: no row matches."""

    negated: ClassVar[bool] = True


class ScenarioFile(_Model):
    """One SDSR scenario: causes to inject, and the effects the engines must (not) produce."""

    model_config = ConfigDict(title="SDSR scenario")

    scenario_id: ScenarioId
    name: Optional[Text] = Field(None, description="shown in the output (default: the scenario_id)")
    description: Optional[Text] = None
    tenant: Tenant
    inject: Annotated[list[Step], _list_of("steps", required=True), Field(min_length=1)]
    expected_propagation: Annotated[Optional[list[Assertion]], _list_of("assertions")] = None
    expected_non_propagation: Annotated[Optional[list[NegatedAssertion]], _list_of("assertions")] = None

    @model_validator(mode="after")
    def _binds(self) -> ScenarioFile:
        """Each ${name} of an assertion is built in or bound by an earlier assertion, each name bound once."""
        bound: set[str] = set()
        hint = "bind it in an earlier assertion; " + ", ".join(f"${{{n}}}" for n in BUILTIN_NAMES) + " are built in"
        for section in ("expected_propagation", "expected_non_propagation"):
            for index, a in enumerate(getattr(self, section) or ()):
                where = join(section, index)
                if a.bind is not None and a.bind in bound:
                    raise _invalid(f"{a.bind!r} is already bound", join(where, "bind"))
                _check_references(a.filters, where, bound | set(BUILTIN_NAMES), hint)
                if a.bind is not None:
                    bound.add(a.bind)
        return self


# ---- pydantic's errors, as one line naming the key path ----------------------------------------------


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The model that validates the value at loc (list indexes skipped)."""
    model: type[BaseModel] = ScenarioFile
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        if info is None:
            return None
        found = _model_in(info.annotation)
        if found is None:
            return None
        model = found
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _translate(path: str, exc: ValidationError) -> ScenarioError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    # As a reader goes: an unknown key of a mapping before what is wrong inside it.
    for error in errors:
        loc = error["loc"]
        if error["type"] == "extra_forbidden" and first["loc"][:len(loc) - 1] == loc[:-1]:
            first = error
            break
    loc, kind = first["loc"], first["type"]
    where = ""
    for part in loc:
        where = join(where, part)
    if kind == "scenario":
        ctx = first.get("ctx") or {}
        return ScenarioError(path, join(where, ctx["at"]) if ctx.get("at") else where, ctx["message"])
    if kind == "missing":
        return ScenarioError(path, where, "required")
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = ", ".join(model.keys()) if model else "?"
        wording = model.unknown_key if model else _Model.unknown_key
        return ScenarioError(path, where, wording.format(key=loc[-1], allowed=allowed))
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return ScenarioError(path, where, f"must be a mapping, got {describe(first['input'])}")
    return ScenarioError(path, where, first["msg"])  # not expected: every validator above words its own


# ---- the plan the runner follows -------------------------------------------------------------------


@dataclass
class PlannedStep:
    kind: str
    where: str  # key path, e.g. inject[2].run
    args: dict[str, Any]


@dataclass
class PlannedAssertion:
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
    inject: list[PlannedStep]
    assertions: list[PlannedAssertion] = field(default_factory=list)


def plan(path: str, model: ScenarioFile) -> Scenario:
    steps = []
    for index, step in enumerate(model.inject):
        kind, args = step.kind_and_args()
        steps.append(PlannedStep(kind, join(join("inject", index), kind), args))
    scenario = Scenario(path, model.scenario_id, model.name or model.scenario_id, model.tenant, steps)
    for section in ("expected_propagation", "expected_non_propagation"):
        for index, a in enumerate(getattr(model, section) or ()):
            scenario.assertions.append(PlannedAssertion(join(section, index), a.assertion, a.kind, a.filters,
                                                        a.negated, a.bind, a.equals))
    return scenario


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
                None, None, f"keys must be strings, got {describe(key)}", key_node.start_mark)
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


def load_scenario(path: str) -> Scenario:
    """Parse and validate one scenario file (everything that needs no database)."""
    doc = _read_yaml(path)
    try:
        model = ScenarioFile.model_validate(doc)
    except ValidationError as exc:
        raise _translate(path, exc) from None
    return plan(path, model)


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


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file, for editors (scenarios/scenario.schema.json)."""
    schema = ScenarioFile.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def scenario_schema_text() -> str:
    return json.dumps(scenario_schema(), indent=2) + "\n"
