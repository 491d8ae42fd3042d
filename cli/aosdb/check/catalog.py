"""What a migrated database says: its contract rows, its functions (pg_get_functiondef, parsed with
pglast), relations, foreign keys, key columns (pg_constraint), privileges (ACLs, and what role
membership adds), and the rules, INSTEAD OF triggers and function dependencies (pg_depend) of its
views. Read-only: SELECTs only."""

from __future__ import annotations

from dataclasses import dataclass, field

import pglast
from pglast import ast
from pglast.parser import ParseError

from aosdb.check.contract import OWNER_ROLE, Contract, GrantKey, contract_from_database
from aosdb.check.findings import Where
from aosdb.check.tree import FunctionDef, Sources, Stmt, function_from_source
from aosdb.check.xd002 import ForeignKey
from aosdb.db import connect
from aosdb.errors import AosdbError

FACADE_SCHEMAS = ("api", "api_private")  # the facades and their helpers
_RELKINDS = ["r", "p", "v", "m", "f"]

_FUNCTIONS = """
SELECT p.oid::regprocedure::text, n.nspname, p.proname, p.provolatile, pg_get_functiondef(p.oid), p.prosrc
FROM pg_proc AS p
JOIN pg_namespace AS n ON n.oid = p.pronamespace
JOIN pg_language AS l ON l.oid = p.prolang
WHERE n.nspname = ANY(%(schemas)s) AND p.prokind IN ('f', 'p') AND l.lanname IN ('sql', 'plpgsql')
  AND NOT EXISTS (SELECT FROM pg_depend AS d
                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY 1, 2, 3
"""

_RELATIONS = """
SELECT n.nspname, c.relname, c.relkind FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind = ANY(%(relkinds)s)
"""

_FOREIGN_KEYS = """
SELECT c.conname, n.nspname, t.relname,
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k (num, ord)
             JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.num ORDER BY k.ord),
       rn.nspname, rt.relname,
       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k (num, ord)
             JOIN pg_attribute AS a ON a.attrelid = c.confrelid AND a.attnum = k.num ORDER BY k.ord),
       c.convalidated
FROM pg_constraint AS c
JOIN pg_class AS t ON t.oid = c.conrelid JOIN pg_namespace AS n ON n.oid = t.relnamespace
JOIN pg_class AS rt ON rt.oid = c.confrelid JOIN pg_namespace AS rn ON rn.oid = rt.relnamespace
WHERE c.contype = 'f'
"""

_DIRECT_GRANTS = """
SELECT coalesce(r.rolname, 'PUBLIC'), n.nspname, c.relname, a.privilege_type, NULL::text
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(c.relacl) AS a
LEFT JOIN pg_roles AS r ON r.oid = a.grantee
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind = ANY(%(relkinds)s) AND a.grantee <> c.relowner
UNION ALL
SELECT coalesce(r.rolname, 'PUBLIC'), n.nspname, c.relname, a.privilege_type, att.attname::text
FROM pg_attribute AS att
JOIN pg_class AS c ON c.oid = att.attrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(att.attacl) AS a
LEFT JOIN pg_roles AS r ON r.oid = a.grantee
WHERE n.nspname = ANY(%(schemas)s) AND c.relkind = ANY(%(relkinds)s) AND att.attnum > 0
  AND NOT att.attisdropped AND a.grantee <> c.relowner
"""

# What the contract roles can write, directly or through the roles they are members of.
_EFFECTIVE_WRITES = """
WITH rel AS (
    SELECT c.oid, n.nspname, c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY(%(schemas)s) AND c.relkind = ANY(%(relkinds)s)
), role AS (
    SELECT oid, rolname FROM pg_roles WHERE rolname = ANY(%(roles)s)
)
SELECT role.rolname, rel.nspname, rel.relname, p.priv, NULL::text
FROM role CROSS JOIN rel CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p (priv)
WHERE has_table_privilege(role.oid, rel.oid, p.priv)
UNION ALL
SELECT role.rolname, rel.nspname, rel.relname, p.priv, att.attname::text
FROM role CROSS JOIN rel
JOIN pg_attribute AS att ON att.attrelid = rel.oid AND att.attnum > 0 AND NOT att.attisdropped
CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE']) AS p (priv)
WHERE NOT has_table_privilege(role.oid, rel.oid, p.priv)
  AND has_column_privilege(role.oid, rel.oid, att.attnum, p.priv)
"""

# Key columns: those of primary, unique and foreign keys (no role may update them).
_KEYS = """
SELECT n.nspname, c.relname, a.attname::text
FROM pg_constraint AS k
JOIN pg_class AS c ON c.oid = k.conrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = ANY (k.conkey)
WHERE k.contype IN ('p', 'u', 'f') AND n.nspname = ANY(%(schemas)s)
"""

# Which contract roles are members of which others, directly or through other roles.
_MEMBERSHIPS = """
WITH RECURSIVE m (member, role) AS (
    SELECT am.member, am.roleid FROM pg_auth_members AS am
    UNION
    SELECT m.member, am.roleid FROM m JOIN pg_auth_members AS am ON am.member = m.role
)
SELECT mr.rolname, rr.rolname FROM m JOIN pg_roles AS mr ON mr.oid = m.member JOIN pg_roles AS rr ON rr.oid = m.role
WHERE mr.rolname = ANY(%(roles)s) AND rr.rolname = ANY(%(roles)s)
ORDER BY 1, 2
"""

_VIEW_RULES = """
SELECT n.nspname || '.' || c.relname, r.rulename, pg_get_ruledef(r.oid)
FROM pg_rewrite AS r JOIN pg_class AS c ON c.oid = r.ev_class JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND r.rulename <> '_RETURN' AND n.nspname = ANY(%(schemas)s)
ORDER BY 1, 2
"""

_VIEW_TRIGGERS = """
SELECT n.nspname || '.' || c.relname, t.tgname
FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind = 'v' AND (t.tgtype & 64) <> 0 AND NOT t.tgisinternal AND n.nspname = ANY(%(schemas)s)
ORDER BY 1, 2
"""

_VIEW_CALLS = """
SELECT DISTINCT n.nspname || '.' || c.relname, pn.nspname, p.proname
FROM pg_rewrite AS r
JOIN pg_class AS c ON c.oid = r.ev_class JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_depend AS d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_proc'::regclass
JOIN pg_proc AS p ON p.oid = d.refobjid JOIN pg_namespace AS pn ON pn.oid = p.pronamespace
WHERE c.relkind IN ('v', 'm') AND r.rulename = '_RETURN' AND n.nspname = ANY(%(schemas)s)
ORDER BY 1, 2, 3
"""


@dataclass
class Catalog:
    describe: str
    contract: Contract
    functions: list[FunctionDef] = field(default_factory=list)
    relations: set[tuple[str, str]] = field(default_factory=set)
    views: int = 0
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    direct_grants: dict[GrantKey, Where] = field(default_factory=dict)
    effective_writes: dict[GrantKey, Where] = field(default_factory=dict)
    keys: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    memberships: list[tuple[str, str]] = field(default_factory=list)  # (member, role)
    view_rules: list[tuple[str, str, str]] = field(default_factory=list)
    view_triggers: list[tuple[str, str]] = field(default_factory=list)
    view_calls: list[tuple[str, str, str]] = field(default_factory=list)


def read_catalog(dsn: str, describe: str, sources: Sources) -> Catalog:
    try:
        with connect(dsn, autocommit=True) as conn:
            conn.read_only = True
            return _read(conn, describe, sources)
    except AosdbError as exc:
        if exc.exit_code == 2:
            raise
        raise AosdbError(str(exc), exit_code=2) from None


def _read(conn, describe: str, sources: Sources) -> Catalog:
    contract = contract_from_database(conn)
    cat = Catalog(describe, contract)
    schemas = sorted(set(contract.domains.values()) | set(FACADE_SCHEMAS))
    params = {"schemas": schemas, "relkinds": _RELKINDS,
              "roles": sorted(r for r in contract.roles if r != OWNER_ROLE)}  # fmt: skip

    for signature, schema, name, volatility, definition, prosrc in conn.execute(_FUNCTIONS, params):
        label, line_of = sources.placement(schema, name, prosrc or "", definition, signature)
        fn = _function(definition, label, line_of)
        if fn is not None:
            fn.volatility = volatility
            cat.functions.append(fn)
    for schema, relation, kind in conn.execute(_RELATIONS, params):
        cat.relations.add((schema, relation))
        cat.views += kind in ("v", "m")
    for name, schema, table, cols, rschema, rtable, rcols, validated in conn.execute(_FOREIGN_KEYS):
        cat.foreign_keys.append(ForeignKey(name, (schema, table), tuple(cols), (rschema, rtable), tuple(rcols),
                                           validated, Where.db(f"{schema}.{table}")))  # fmt: skip
    for role, schema, table, priv, col in conn.execute(_DIRECT_GRANTS, params):
        if role != OWNER_ROLE:
            cat.direct_grants[(role, schema, table, priv, col)] = Where.db(f"{schema}.{table}")
    for role, schema, table, priv, col in conn.execute(_EFFECTIVE_WRITES, params):
        cat.effective_writes[(role, schema, table, priv, col)] = Where.db(f"{schema}.{table}")
    for schema, table, column in conn.execute(_KEYS, params):
        cat.keys.setdefault((schema, table), set()).add(column)
    cat.memberships = [tuple(r) for r in conn.execute(_MEMBERSHIPS, params)]
    cat.view_rules = [tuple(r) for r in conn.execute(_VIEW_RULES, params)]
    cat.view_triggers = [tuple(r) for r in conn.execute(_VIEW_TRIGGERS, params)]
    cat.view_calls = [tuple(r) for r in conn.execute(_VIEW_CALLS, params)]
    return cat


def _function(definition: str, label: str, line_of) -> FunctionDef | None:
    """A function of the catalog, parsed from its pg_get_functiondef; line_of numbers the offsets of
    the definition (see Sources.placement)."""
    try:
        raws = pglast.parse_sql(definition)
    except ParseError as exc:
        raise AosdbError(f"{label}: cannot parse pg_get_functiondef: {exc.args[0]}", exit_code=2) from None
    raw = raws[0]
    if not isinstance(raw.stmt, ast.CreateFunctionStmt):
        return None
    start = raw.stmt_location or 0
    end = start + raw.stmt_len if raw.stmt_len else len(definition)
    stmt = Stmt(raw.stmt, start, definition[start:end], Where(label, line_of(start)))
    return function_from_source(raw.stmt, definition, stmt, label, line_of)
