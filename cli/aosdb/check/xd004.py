"""XD-004: no SQL writes a table of another domain, and no role may write outside its domain.

Code: a function's domain is the domain of its schema (aos.contract_domains). It may write its
own domain's tables; every domain may INSERT into the outbox (kind 'outbox'); an engine's domain
may UPDATE exactly the columns a contract_effects row names (runs.policy_violation for the
PolicyEngine). Functions of the api and api_private schemas are XD-001's.

Grants: a role may hold INSERT/UPDATE/DELETE/TRUNCATE on the tables of its writes_domain only
(contract_roles), INSERT on the outbox when it is an engine role, and UPDATE of the columns its
contract_effects rows name, directly or through role membership. The grants of the migrated
database (its ACLs) must also equal aos.contract_grants exactly (column grants column by column):
anything else is a stray or a missing grant. The GRANTs of ROOT's rollbacks, which no migrated
database holds, are checked statement by statement.

Keys are immutable: the engines pair a statement's old and new rows on them, so an UPDATE that
changed one would reach no engine. A key is a column of a primary, unique or foreign key
(pg_constraint). No code may SET one, and no role but the owner may hold UPDATE on one: neither on
the whole table nor on the column.
"""

from __future__ import annotations

from collections.abc import Iterable

from pglast import ast, enums

from aosdb.check.bodies import DYNAMIC_MARKER, Write
from aosdb.check.contract import (ALL_PRIVILEGES, COLUMN_PRIVILEGES, OWNER_ROLE, WRITE_PRIVILEGES, Contract,
                                  GrantKey)  # fmt: skip
from aosdb.check.findings import ERROR, WARNING, Finding, Where
from aosdb.check.program import SYSTEM_SCHEMAS, Program
from aosdb.check.tree import SqlFile

RULE = "XD-004"
Rel = tuple[str, str]
Keys = dict[Rel, set[str]]
FACADE_SCHEMAS = ("api", "api_private")
_RELATION_TYPES = (enums.ObjectType.OBJECT_TABLE, enums.ObjectType.OBJECT_VIEW, enums.ObjectType.OBJECT_MATVIEW)


def _error(where: Where, message: str) -> Finding:
    return Finding.at(where, RULE, ERROR, message)


def _warning(where: Where, message: str) -> Finding:
    return Finding.at(where, RULE, WARNING, message)


# ---- code -------------------------------------------------------------------------------------


def key_updates(keys: Keys, program: Program) -> list[Finding]:
    """No function, of any domain, SETs a key column."""
    findings = []
    for fn in program.functions:
        if fn.error is not None:
            continue  # reported by function_writes
        for write in fn.facts.writes:
            if write.kind != "UPDATE" or not write.columns:
                continue
            target = program.relation(fn, write.rel)
            changed = sorted(set(write.columns) & keys.get(target, set())) if target else []
            if changed:
                findings.append(_error(write.rel.where, f"{fn.qualified} updates a key: "
                                                        f"{write.describe(f'{target[0]}.{target[1]}')}; "
                                                        f"{_key_text(target, changed)}"))  # fmt: skip
    return findings


def _key_text(table: Rel, columns: list[str]) -> str:
    what = "is a key" if len(columns) == 1 else "are keys"
    return (f"{', '.join(columns)} of {table[0]}.{table[1]} {what}, and keys are immutable (the engines pair "
            "old and new rows on them)")


def key_grant_message(keys: Keys, key: GrantKey, verb: str) -> str | None:
    """Why this grant lets a role change a key; None when it does not."""
    role, schema, table, privilege, column = key
    held = keys.get((schema, table), set())
    if privilege != "UPDATE" or role == OWNER_ROLE or not held:
        return None
    if column is None:
        return (f"{verb}{_grant_text(key)}: {_key_text((schema, table), sorted(held))}: grant UPDATE on a "
                "column list without them")
    if column in held:
        return f"{verb}{_grant_text(key)}: {_key_text((schema, table), [column])}"
    return None


def function_writes(contract: Contract, program: Program) -> list[Finding]:
    findings = []
    for fn in program.functions:
        if fn.schema in FACADE_SCHEMAS:
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


# ---- grants in the rollbacks ----------------------------------------------------------------------


def rollback_grants(contract: Contract, rollbacks: list[SqlFile], relations: set[Rel]) -> list[Finding]:
    """No migrated database holds what a rollback would grant: each GRANT of a write privilege, and
    each role membership, of ROOT's rollbacks is checked statement by statement."""
    findings: list[Finding] = []
    for file in rollbacks:
        for stmt in file.statements():
            if isinstance(stmt.node, ast.GrantStmt) and stmt.node.is_grant and stmt.node.objtype in _RELATION_TYPES:
                for key in _grant_keys(stmt.node, relations):
                    if key[3] in WRITE_PRIVILEGES and not contract.role_may_hold(*key):
                        findings.append(_error(stmt.where, _grant_message(contract, key, "GRANT ")))
            elif isinstance(stmt.node, ast.GrantRoleStmt) and stmt.node.is_grant:
                findings += _membership(contract, stmt.node, stmt.where)
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


def _in_order(grants: dict[GrantKey, Where]) -> list[tuple[GrantKey, Where]]:
    """Sorted by key; a table-level grant (column None) before its table's column grants."""
    return sorted(grants.items(), key=lambda item: (item[0][:4], item[0][4] or ""))


def _grant_text(key: GrantKey) -> str:
    role, schema, table, priv, column = key
    return f"{priv}{f' ({column})' if column else ''} ON {schema}.{table} TO {role}"


def _grant_message(contract: Contract, key: GrantKey, verb: str) -> str:
    role, schema, table, _priv, _column = key
    if role not in contract.roles:
        return f"{verb}{_grant_text(key)}: {role} is not a role of aos.contract_roles and may write nothing"
    return f"{verb}{_grant_text(key)}: {contract.why_not(role, schema, table)}"


def compare_grants(contract: Contract, held: dict[GrantKey, Where], reported: set[GrantKey]) -> list[Finding]:
    """The grants of the catalog against aos.contract_grants, exactly."""
    findings = []
    for key, where in _in_order(held):
        if key not in contract.grants and key not in reported:
            findings.append(_error(where, f"stray grant {_grant_text(key)}: not in aos.contract_grants"))
    for key, where in _in_order(contract.grants):
        if key not in held and key[0] != OWNER_ROLE:
            findings.append(_error(Where.db(f"{key[1]}.{key[2]}"), f"aos.contract_grants lists {_grant_text(key)}, "
                                                                   "but the database does not grant it"))  # fmt: skip
    return findings


# ---- grants in the catalog ----------------------------------------------------------------------


def catalog_grants(contract: Contract, direct: dict[GrantKey, Where], effective: dict[GrantKey, Where],
                   keys: Keys | None = None, memberships: Iterable[tuple[str, str]] = ()) -> list[Finding]:  # fmt: skip
    """direct: the ACL entries of the catalog; effective: the write privileges the contract roles
    hold, directly or through role membership; keys: the key columns of pg_constraint;
    memberships: (member, role) pairs of contract roles, transitive. A member of another domain's
    writer is reported once, not for each privilege it inherits."""
    findings, reported = [], set()
    inheriting = set()
    for member, role in memberships:
        writes = contract.roles.get(role)
        if member == OWNER_ROLE or writes is None or writes == contract.roles.get(member):
            continue
        inheriting.add(member)
        findings.append(_error(Where.db(member), f"{member} is a member of {role}: it inherits {role}'s writes to "
                                                 f"{contract.roles[role]}, and may write "
                                                 f"{contract.roles.get(member) or 'no table directly'}"))  # fmt: skip
    effective = {k: w for k, w in effective.items() if k[0] not in inheriting}
    for key, where in _in_order(direct):
        if key[3] in WRITE_PRIVILEGES and not contract.role_may_hold(*key):
            reported.add(key)
            findings.append(_error(where, _grant_message(contract, key, "grant ")))
        elif (message := key_grant_message(keys or {}, key, "grant ")) is not None:
            reported.add(key)
            findings.append(_error(where, message))
    for key, where in _in_order(effective):
        if key not in direct and not contract.role_may_hold(*key):
            privilege = _grant_text(key).split(" TO ")[0]
            findings.append(_error(where, f"{key[0]} holds {privilege} through role membership: "
                                          f"{contract.why_not(key[0], key[1], key[2])}"))  # fmt: skip
        elif key not in direct and key_grant_message(keys or {}, key, "") is not None:
            privilege = _grant_text(key).split(" TO ")[0]
            findings.append(_error(where, f"{key[0]} holds {privilege} through role membership: "
                                          f"{key_grant_message(keys or {}, key, '').split(': ', 1)[1]}"))  # fmt: skip
    findings += compare_grants(contract, direct, reported)
    return findings
