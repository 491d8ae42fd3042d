"""The contract as data: the rows of aos.contract_*, read from a migrated database, and the two
questions every write rule asks of it: may this domain's code write that table, may this role hold
that privilege."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from aosdb.check.findings import Where
from aosdb.errors import AosdbError

# The role that owns every object; it writes everything and is left out of grant checks.
OWNER_ROLE = "aos_owner"
WRITE_PRIVILEGES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE")
ALL_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
COLUMN_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "REFERENCES")

# (role, schema, table, privilege, column or None for the whole table)
GrantKey = tuple[str, str, str, str, "str | None"]


@dataclass(frozen=True)
class TableRow:
    schema: str
    table: str
    domain: str
    kind: str
    where: Where


@dataclass(frozen=True)
class LinkRow:
    name: str
    from_schema: str
    from_table: str
    from_columns: tuple[str, ...]
    to_schema: str
    to_table: str
    to_columns: tuple[str, ...]
    where: Where


@dataclass(frozen=True)
class EffectRow:
    engine_role: str
    schema: str
    table: str
    columns: tuple[str, ...] | None
    where: Where


@dataclass
class Contract:
    origin: str  # what it was read from, for the summary line
    domains: dict[str, str] = field(default_factory=dict)  # domain -> schema
    tables: dict[tuple[str, str], TableRow] = field(default_factory=dict)
    links: list[LinkRow] = field(default_factory=list)
    roles: dict[str, str | None] = field(default_factory=dict)  # role -> writes_domain
    grants: dict[GrantKey, Where] = field(default_factory=dict)
    effects: list[EffectRow] = field(default_factory=list)
    facades: dict[str, Where] = field(default_factory=dict)  # api.name -> row
    facade_reads: dict[str, set[tuple[str, str]]] = field(default_factory=dict)

    # ---- lookups ----

    def schema_domain(self, schema: str | None) -> str | None:
        return next((d for d, s in self.domains.items() if s == schema), None)

    def table_domain(self, schema: str, table: str) -> str | None:
        row = self.tables.get((schema, table))
        return row.domain if row else None

    @property
    def engine_roles(self) -> set[str]:
        return {e.engine_role for e in self.effects}

    def column_effects(self, schema: str, table: str) -> list[EffectRow]:
        return [e for e in self.effects if (e.schema, e.table) == (schema, table) and e.columns]

    # ---- the two write questions ----

    def domain_may_write(self, domain: str | None, schema: str, table: str, kind: str,
                         columns: tuple[str, ...] | None) -> bool:  # fmt: skip
        """May code of `domain` (a function in its schema) run this write on schema.table?"""
        row = self.tables.get((schema, table))
        if row is None or domain is None:
            return False
        if row.domain == domain:
            return True
        if row.kind == "outbox" and kind == "INSERT":
            return True  # the platform outbox every engine appends to
        if kind == "UPDATE" and columns:
            return any(self.roles.get(e.engine_role) == domain and set(columns) <= set(e.columns)
                       for e in self.column_effects(schema, table))  # fmt: skip
        return False

    def role_may_hold(self, role: str, schema: str, table: str, privilege: str, column: str | None) -> bool:
        """May `role` hold this write privilege (on the whole table, or on one column)?"""
        if role == OWNER_ROLE:
            return True
        row = self.tables.get((schema, table))
        if row is None or role not in self.roles:
            return False
        if self.roles[role] is not None and self.roles[role] == row.domain:
            return True
        if row.kind == "outbox" and privilege == "INSERT" and role in self.engine_roles:
            return True
        if privilege == "UPDATE" and column is not None:
            return any(e.engine_role == role and column in e.columns for e in self.column_effects(schema, table))
        return False

    def why_not(self, role: str, schema: str, table: str) -> str:
        """The end of a message: whose table it is and what the role may write."""
        owner = self.table_domain(schema, table)
        owned = f"{schema}.{table} belongs to {owner}" if owner else f"{schema}.{table} is not in aos.contract_tables"
        writes = self.roles.get(role)
        return f"{owned}; {role} may write {writes + ' only' if writes else 'no table directly'}"


@dataclass
class Row:
    values: dict[str, object]
    where: Where


def _build(origin: str, rows: dict[str, list[Row]]) -> Contract:
    c = Contract(origin)

    def each(table: str) -> Iterable[tuple[dict, Where]]:
        for row in rows.get(table, ()):
            yield row.values, row.where

    for v, _w in each("contract_domains"):
        c.domains[v["domain"]] = v["schema_name"]
    for v, w in each("contract_tables"):
        c.tables[(v["schema_name"], v["table_name"])] = TableRow(v["schema_name"], v["table_name"], v["domain"],
                                                                 v["kind"], w)  # fmt: skip
    for v, w in each("contract_links"):
        c.links.append(LinkRow(v["link_name"], v["from_schema"], v["from_table"], tuple(v["from_columns"] or ()),
                               v["to_schema"], v["to_table"], tuple(v["to_columns"] or ()), w))  # fmt: skip
    for v, _w in each("contract_roles"):
        c.roles[v["role_name"]] = v["writes_domain"]
    for v, w in each("contract_grants"):
        for column in v["column_names"] or (None,):
            c.grants[(v["role_name"], v["schema_name"], v["table_name"], v["privilege"].upper(), column)] = w
    for v, w in each("contract_effects"):
        cols = tuple(v["effect_columns"]) if v["effect_columns"] else None
        c.effects.append(EffectRow(v["engine_role"], v["effect_schema"], v["effect_table"], cols, w))
    for v, w in each("contract_facades"):
        c.facades[v["function_name"]] = w
        c.facade_reads.setdefault(v["function_name"], set())
    for v, _w in each("contract_facade_reads"):
        c.facade_reads.setdefault(v["function_name"], set()).add((v["schema_name"], v["table_name"]))
    return c


# ---- from the database ----------------------------------------------------------------------------

_CONTRACT_QUERIES = {
    "contract_domains": "SELECT domain, schema_name FROM aos.contract_domains",
    "contract_tables": "SELECT schema_name, table_name, domain, kind FROM aos.contract_tables",
    "contract_links": "SELECT link_name, from_schema, from_table, from_columns, to_schema, to_table, to_columns "
                      "FROM aos.contract_links",
    "contract_roles": "SELECT role_name, writes_domain FROM aos.contract_roles",
    "contract_grants": "SELECT role_name, schema_name, table_name, privilege, column_names FROM aos.contract_grants",
    "contract_effects": "SELECT engine_role, effect_schema, effect_table, effect_columns FROM aos.contract_effects",
    "contract_facades": "SELECT function_name FROM aos.contract_facades",
    "contract_facade_reads": "SELECT function_name, schema_name, table_name FROM aos.contract_facade_reads",
}  # fmt: skip


def contract_from_database(conn) -> Contract:
    """The rows of aos.contract_*."""
    missing = conn.execute(
        "SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass('aos.' || t) IS NULL", (list(_CONTRACT_QUERIES),)
    ).fetchall()
    if missing:
        raise AosdbError(f"the database has no aos.{missing[0][0]}: it is not migrated: run `aosdb migrate`",
                         exit_code=2)  # fmt: skip
    rows: dict[str, list[Row]] = {}
    for table, query in _CONTRACT_QUERIES.items():
        cur = conn.execute(query)
        names = [d.name for d in cur.description]
        rows[table] = [Row(dict(zip(names, r)), Where.db(f"aos.{table}")) for r in cur.fetchall()]
    return _build("the database", rows)
