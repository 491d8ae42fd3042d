"""XD-004: no SQL writes a table of another domain, and no role may write outside its domain.

Code: a function's domain is the domain of its schema (aos.contract_domains). It may write its
own domain's tables; every domain may INSERT into the outbox (kind 'outbox'); an engine's domain
may UPDATE exactly the columns a contract_effects row names (runs.policy_violation for the
PolicyEngine). Functions of the api schema are XD-001's.

Grants: a role may hold INSERT/UPDATE/DELETE/TRUNCATE on the tables of its writes_domain only
(contract_roles), INSERT on the outbox when it is an engine role, and UPDATE of the columns its
contract_effects rows name. The grants of the tree (replayed GRANT/REVOKE) and of the catalog must
also equal aos.contract_grants exactly: anything else is a stray or a missing grant.
"""

from __future__ import annotations

from collections.abc import Iterable

from pglast import ast, enums

from aosdb.check.bodies import DYNAMIC_MARKER, Write
from aosdb.check.contract import (ALL_PRIVILEGES, COLUMN_PRIVILEGES, OWNER_ROLE, WRITE_PRIVILEGES, Contract,
                                  GrantKey)  # fmt: skip
from aosdb.check.findings import ERROR, WARNING, Finding, Where
from aosdb.check.program import SYSTEM_SCHEMAS, Program
from aosdb.check.tree import SourceTree

RULE = "XD-004"
FACADE_SCHEMA = "api"
_RELATION_TYPES = (enums.ObjectType.OBJECT_TABLE, enums.ObjectType.OBJECT_VIEW, enums.ObjectType.OBJECT_MATVIEW)


def _error(where: Where, message: str) -> Finding:
    return Finding.at(where, RULE, ERROR, message)


def _warning(where: Where, message: str) -> Finding:
    return Finding.at(where, RULE, WARNING, message)


# ---- code -------------------------------------------------------------------------------------


def function_writes(contract: Contract, program: Program) -> list[Finding]:
    findings = []
    for fn in program.functions:
        if fn.schema == FACADE_SCHEMA:
            continue
        if fn.error is not None:
            findings.append(_error(fn.error.where, f"{fn.qualified}: {fn.error}; its writes cannot be checked"))
            continue
        domain = contract.schema_domain(fn.schema)
        for where, what in fn.facts.opaque:
            findings.append(_warning(where, f"{fn.qualified}: {what} cannot be checked"))
        for write in fn.facts.writes:
            if DYNAMIC_MARKER in (write.rel.schema, write.rel.name):
                findings.append(_warning(write.rel.where, f"{fn.qualified}: {write.kind} of a table named at run "
                                                          "time cannot be checked"))  # fmt: skip
                continue
            target = program.relation(fn, write.rel)
            if target is None or target[0] in SYSTEM_SCHEMAS:
                continue  # a CTE, a transition table, a temporary table
            schema, table = target
            owner = contract.table_domain(schema, table) or contract.schema_domain(schema)
            if owner is None or owner == domain:
                continue  # not a domain's table (public, a scratch schema), or its own
            if not contract.domain_may_write(domain, schema, table, write.kind, write.columns):
                findings.append(_error(write.rel.where, _code_message(contract, fn.qualified, domain, write, target,
                                                                      owner)))  # fmt: skip
    return findings


def _code_message(contract: Contract, fn: str, domain: str | None, write: Write, target: tuple[str, str],
                  owner: str) -> str:  # fmt: skip
    schema, table = target
    what = write.describe(f"{schema}.{table}")
    if domain is None:
        return f"{fn} (schema {fn.split('.')[0]} belongs to no domain) writes a table of {owner}: {what}"
    engines = [e for e in contract.column_effects(schema, table) if contract.roles.get(e.engine_role) == domain]
    if write.kind == "UPDATE" and engines:
        columns = ", ".join(sorted({c for e in engines for c in e.columns}))
        return (f"{fn} (domain {domain}) writes a table of {owner}: {what}; {domain} may UPDATE only "
                f"{columns} of {schema}.{table} (aos.contract_effects)")
    return f"{fn} (domain {domain}) writes a table of {owner}: {what}; {domain} code may write only {domain} tables"


# ---- grants in the tree -------------------------------------------------------------------------


def source_grants(contract: Contract, tree: SourceTree) -> list[Finding]:
    """Checks every write privilege where it is granted, then replays the tree's GRANT and REVOKE
    (migrations, DO blocks, functions, views, in migrate order) and compares the grants left with
    aos.contract_grants. Rollbacks are checked statement by statement, not replayed."""
    relations = tree.relations() | set(contract.tables)
    state: dict[GrantKey, Where] = {}
    reported: set[GrantKey] = set()
    findings: list[Finding] = []
    for node, where in tree.statements_in_order():
        if isinstance(node, ast.GrantStmt) and node.objtype in _RELATION_TYPES:
            for key in _grant_keys(node, relations):
                if not node.is_grant:
                    for held in [k for k in state if k[:4] == key[:4] and key[4] in (None, k[4])]:
                        del state[held]
                    continue
                state.setdefault(key, where)
                if key[3] in WRITE_PRIVILEGES and not contract.role_may_hold(*key):
                    reported.add(key)
                    findings.append(_error(where, _grant_message(contract, key, "GRANT ")))
        elif isinstance(node, ast.GrantRoleStmt) and node.is_grant:
            findings += _membership(contract, node, where)
        elif isinstance(node, ast.DropStmt) and node.removeType in _RELATION_TYPES:
            dropped = {tuple(n.sval for n in obj)[-2:] for obj in node.objects}
            for key in [k for k in state if (k[1], k[2]) in dropped]:
                del state[key]
    for file in tree.rollbacks:
        for stmt in file.stmts:
            if isinstance(stmt.node, ast.GrantStmt) and stmt.node.is_grant and stmt.node.objtype in _RELATION_TYPES:
                for key in _grant_keys(stmt.node, relations):
                    if key[3] in WRITE_PRIVILEGES and not contract.role_may_hold(*key):
                        findings.append(_error(stmt.where, _grant_message(contract, key, "GRANT ")))
            elif isinstance(stmt.node, ast.GrantRoleStmt) and stmt.node.is_grant:
                findings += _membership(contract, stmt.node, stmt.where)
    findings += compare_grants(contract, state, reported, "sql/")
    return findings


def _grant_keys(node: ast.GrantStmt, relations: set[tuple[str, str]]) -> Iterable[GrantKey]:
    if node.targtype == enums.GrantTargetType.ACL_TARGET_ALL_IN_SCHEMA:
        schemas = {s.sval for s in node.objects}
        tables = sorted(r for r in relations if r[0] in schemas)
    elif node.targtype == enums.GrantTargetType.ACL_TARGET_OBJECT:
        tables = [(o.schemaname or "public", o.relname) for o in node.objects]
    else:
        return
    grantees = []
    for spec in node.grantees:
        if spec.roletype == enums.RoleSpecType.ROLESPEC_PUBLIC:
            grantees.append("PUBLIC")
        elif spec.roletype == enums.RoleSpecType.ROLESPEC_CSTRING and spec.rolename not in (DYNAMIC_MARKER,
                                                                                              OWNER_ROLE):  # fmt: skip
            grantees.append(spec.rolename)
    privileges: list[tuple[str, str | None]] = []
    for priv in node.privileges or [None]:  # no list: ALL PRIVILEGES
        names = ALL_PRIVILEGES if priv is None or priv.priv_name is None else (priv.priv_name.upper(),)
        columns = [c.sval for c in priv.cols] if priv is not None and priv.cols else None
        for name in names:
            if columns is None:
                privileges.append((name, None))
            elif name in COLUMN_PRIVILEGES:
                privileges += [(name, c) for c in columns]
    for role in grantees:
        for schema, table in tables:
            for name, column in privileges:
                yield (role, schema, table, name, column)


def _membership(contract: Contract, node: ast.GrantRoleStmt, where: Where) -> list[Finding]:
    """GRANT role TO member hands member the role's privileges: a member of another domain's
    writer writes that domain."""
    findings = []
    for granted in node.granted_roles:
        role = granted.priv_name
        for spec in node.grantee_roles:
            member = getattr(spec, "rolename", None)
            if member == OWNER_ROLE or member not in contract.roles or role not in contract.roles:
                continue
            if contract.roles[role] is not None and contract.roles[role] != contract.roles[member]:
                findings.append(_error(where, f"GRANT {role} TO {member}: {member} (writes "
                                              f"{contract.roles[member] or 'no domain'}) would inherit {role}'s "
                                              f"writes to {contract.roles[role]}"))  # fmt: skip
    return findings


def _grant_text(key: GrantKey) -> str:
    role, schema, table, priv, column = key
    return f"{priv}{f' ({column})' if column else ''} ON {schema}.{table} TO {role}"


def _grant_message(contract: Contract, key: GrantKey, verb: str) -> str:
    role, schema, table, _priv, _column = key
    if role not in contract.roles:
        return f"{verb}{_grant_text(key)}: {role} is not a role of aos.contract_roles and may write nothing"
    return f"{verb}{_grant_text(key)}: {contract.why_not(role, schema, table)}"


def compare_grants(contract: Contract, held: dict[GrantKey, Where], reported: set[GrantKey],
                   place: str) -> list[Finding]:  # fmt: skip
    """The grants of `place` (the tree, or the catalog) against aos.contract_grants, exactly."""
    findings = []
    for key, where in sorted(held.items()):
        if key not in contract.grants and key not in reported:
            findings.append(_error(where, f"stray grant {_grant_text(key)}: not in aos.contract_grants"))
    for key, where in sorted(contract.grants.items()):
        if key not in held and key[0] != OWNER_ROLE:
            if place != "sql/":
                where = Where.db(f"{key[1]}.{key[2]}")
            findings.append(_error(where, f"aos.contract_grants lists {_grant_text(key)}, but {place} does not "
                                          "grant it"))  # fmt: skip
    return findings


# ---- grants in the catalog ----------------------------------------------------------------------


def catalog_grants(contract: Contract, direct: dict[GrantKey, Where],
                   effective: dict[GrantKey, Where]) -> list[Finding]:  # fmt: skip
    """direct: the ACL entries of the catalog; effective: the write privileges the contract roles
    hold, directly or through role membership."""
    findings, reported = [], set()
    for key, where in sorted(direct.items()):
        if key[3] in WRITE_PRIVILEGES and not contract.role_may_hold(*key):
            reported.add(key)
            findings.append(_error(where, _grant_message(contract, key, "grant ")))
    for key, where in sorted(effective.items()):
        if key not in direct and not contract.role_may_hold(*key):
            privilege = _grant_text(key).split(" TO ")[0]
            findings.append(_error(where, f"{key[0]} holds {privilege} through role membership: "
                                          f"{contract.why_not(key[0], key[1], key[2])}"))  # fmt: skip
    findings += compare_grants(contract, direct, reported, "the catalog")
    return findings
