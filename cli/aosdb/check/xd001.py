"""XD-001: the read side is read-only, and each facade reads only what its contract row lists.

- Every function of the api schema and of api_private (the facades' helpers, a schema no HTTP
  gateway exposes) is STABLE or IMMUTABLE and writes nothing: no INSERT, UPDATE,
  DELETE, MERGE, TRUNCATE, COPY FROM, SELECT INTO, no call of a function that writes (followed
  through every function of the program), no nextval()/setval().
- Every facade of aos.contract_facades exists, and reads (itself or through the functions it
  calls) only relations of its aos.contract_facade_reads rows. A view counts as the view.
  Reads through aos.login_tenant (the caller's tenant binding) do not count.
- Every function of the api schema is a facade of the contract: a gateway exposing api serves each
  one, so helpers live in api_private.
- No view writes: not through a function it calls (pg_depend of its query), not by a rule (CREATE
  RULE ... DO INSERT/UPDATE/DELETE) and not by an INSTEAD OF trigger.

Functions and views are those of the migrated database: functions parsed from pg_get_functiondef
(PL/pgSQL bodies included), views read from pg_rewrite, pg_depend and pg_trigger.
"""

from __future__ import annotations

from collections.abc import Callable

import pglast
from pglast import ast

from aosdb.check.bodies import node_facts
from aosdb.check.contract import Contract
from aosdb.check.findings import ERROR, WARNING, Finding, Where
from aosdb.check.program import SYSTEM_SCHEMAS, WRITING_BUILTINS, Program
from aosdb.check.tree import FunctionDef

RULE = "XD-001"
FACADE_SCHEMA = "api"
HELPER_SCHEMA = "api_private"
READ_ONLY_SCHEMAS = (FACADE_SCHEMA, HELPER_SCHEMA)
TRIGGER_TYPE_INSTEAD = 64  # pg_trigger.tgtype bit (and CreateTrigStmt.timing) of INSTEAD OF
# Reads the caller's own tenant binding (one row of aos.bi_logins), not tenant data: every
# tenant-scoped query reaches it, so it is no facade's read.
TENANT_RESOLUTION = "aos.login_tenant"


def _error(where: Where, message: str) -> Finding:
    return Finding.at(where, RULE, ERROR, message)


def _writes_through_calls(program: Program, fn: FunctionDef, subject: str) -> list[Finding]:
    """The calls in fn of functions that write (followed transitively), or of writing built-ins."""
    findings = []
    for call in fn.facts.calls:
        if call.schema in (None, "pg_catalog") and call.name in WRITING_BUILTINS:
            findings.append(_error(call.where, f"{subject} calls {call.name}(), which writes"))
            continue
        for callee in program.callees(fn, call):
            writes = program.writes(callee)
            if writes:
                write = writes[0].item
                chain = f" (through {' -> '.join(writes[0].via)})" if writes[0].via else ""
                findings.append(_error(call.where, f"{subject} calls {callee.qualified}, which writes: "
                                                   f"{write.describe()}{chain} at {write.rel.where}"))  # fmt: skip
    return findings


def facades(contract: Contract, program: Program, place: str) -> list[Finding]:
    """The api and api_private functions of the program; place says where they come from (for
    example "the database")."""
    findings: list[Finding] = []
    for fn in (f for f in program.functions if f.schema in READ_ONLY_SCHEMAS):
        subject = fn.qualified
        if fn.error is not None:
            findings.append(_error(fn.error.where, f"{subject}: {fn.error}; it cannot be proven read-only"))
            continue
        if fn.volatility == "v":
            findings.append(_error(fn.where, f"{subject} is VOLATILE: api and api_private functions are STABLE or "
                                             "IMMUTABLE, so that PostgreSQL itself refuses a write inside them"))  # fmt: skip
        for write in fn.facts.writes:
            findings.append(_error(write.rel.where, f"{subject} writes: {write.describe()}"))
        for where, what in fn.facts.opaque:
            findings.append(Finding.at(where, RULE, WARNING, f"{subject}: {what} cannot be proven read-only"))
        findings += _writes_through_calls(program, fn, subject)
        if fn.schema == FACADE_SCHEMA and fn.qualified not in contract.facades:
            message = (f"{subject} is not in aos.contract_facades: every function of api is served over HTTP, so it "
                       "is a facade with a contract row listing what it may read (helpers live in api_private)")
            findings.append(_error(fn.where, message))
    for name, row in sorted(contract.facades.items()):
        schema, _, bare = name.partition(".")
        defs = program.named(schema, bare)
        if not defs:
            findings.append(_error(row, f"facade {name} of aos.contract_facades is not defined in {place}"))
        for fn in defs:
            findings += _facade_reads(contract, program, fn, name)
    return findings


def _facade_reads(contract: Contract, program: Program, fn: FunctionDef, name: str) -> list[Finding]:
    allowed = contract.facade_reads.get(name, set())
    findings = []
    for reached in program.reads(fn):
        ref = reached.item
        # An unqualified name means what it means in the function that wrote it.
        reader = program.named(*reached.via[-1].split(".", 1))[0] if reached.via else fn
        target = program.relation(reader, ref)
        if target is None or target[0] in SYSTEM_SCHEMAS or target in allowed or TENANT_RESOLUTION in reached.via:
            continue
        findings.append(_error(ref.where, f"{name} reads {target[0]}.{target[1]}{reached.via_text}, which its "
                                          "rows of aos.contract_facade_reads do not list"))  # fmt: skip
    return findings


def rule_writes(node: ast.RuleStmt) -> bool:
    nowhere = Where("", 0)
    return bool(node_facts(node.actions, lambda _loc: nowhere, nowhere).writes)


def view_writers(rules: list[tuple[str, str, str]], triggers: list[tuple[str, str]],
                 where_of: Callable[[str], Where]) -> list[Finding]:  # fmt: skip
    """rules: (view, rule, pg_get_ruledef) of the rules other than _RETURN; triggers: (view,
    trigger) of the INSTEAD OF triggers; where_of(view) places a finding on a view."""
    findings = []
    for view, rule, definition in rules:
        node = pglast.parse_sql(definition)[0].stmt
        if isinstance(node, ast.RuleStmt) and rule_writes(node):
            findings.append(_error(where_of(view), f"rule {rule} makes view {view} write"))
    for view, trigger in triggers:
        findings.append(_error(where_of(view), f"INSTEAD OF trigger {trigger} makes view {view} write"))
    return findings


def view_calls(program: Program, calls: list[tuple[str, str, str]], where_of: Callable[[str], Where]) -> list[Finding]:
    """calls: (view, function schema, function name) from pg_depend of each view's _RETURN rule: a
    view (or materialized view) calling a function that writes, itself or through its callees."""
    findings = []
    for view, schema, name in calls:
        if schema == "pg_catalog" and name in WRITING_BUILTINS:
            findings.append(_error(where_of(view), f"view {view} calls {name}(), which writes"))
            continue
        for fn in program.named(schema, name):
            writes = program.writes(fn)
            if writes:
                write = writes[0].item
                chain = f" (through {' -> '.join(writes[0].via)})" if writes[0].via else ""
                findings.append(_error(where_of(view), f"view {view} calls {fn.qualified}, which writes: "
                                                       f"{write.describe()}{chain} at {write.rel.where}"))  # fmt: skip
    return findings
