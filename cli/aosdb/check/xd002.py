"""XD-002: every cross-domain link of aos.contract_links is a real foreign key, tenant-first.

The foreign keys are those of the migrated database (pg_constraint). A link holds when a foreign
key of its table has exactly its columns, in order, referencing exactly its columns of its table,
and is validated.
"""

from __future__ import annotations

from dataclasses import dataclass

from aosdb.check.contract import Contract, LinkRow
from aosdb.check.findings import ERROR, Finding, Where

RULE = "XD-002"
Rel = tuple[str, str]


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: Rel
    columns: tuple[str, ...]
    ref_table: Rel
    ref_columns: tuple[str, ...]
    validated: bool
    where: Where


def check_links(contract: Contract, fks: list[ForeignKey]) -> list[Finding]:
    findings = []
    for link in contract.links:
        findings += _check_link(link, fks)
    return findings


def _cols(cols: tuple[str, ...]) -> str:
    return f"({', '.join(cols)})"


def _check_link(link: LinkRow, fks: list[ForeignKey]) -> list[Finding]:
    source, target = (link.from_schema, link.from_table), (link.to_schema, link.to_table)
    wanted = (f"{link.from_schema}.{link.from_table} {_cols(link.from_columns)} -> "
              f"{link.to_schema}.{link.to_table} {_cols(link.to_columns)}")  # fmt: skip
    if link.from_columns[:1] != ("tenant_id",) or link.to_columns[:1] != ("tenant_id",):
        return [Finding.at(link.where, RULE, ERROR, f"link {link.name} is not tenant-first: {wanted}")]
    on_table = [fk for fk in fks if fk.table == source]
    for fk in on_table:
        if fk.columns == link.from_columns and fk.ref_table == target and fk.ref_columns == link.to_columns:
            if not fk.validated:
                return [Finding.at(fk.where, RULE, ERROR,
                                   f"foreign key {fk.name} of link {link.name} is NOT VALID: existing rows are "
                                   "not checked (ALTER TABLE ... VALIDATE CONSTRAINT)")]  # fmt: skip
            return []
    named = next((fk for fk in on_table if fk.name == link.name), None)
    if named is not None:
        return [Finding.at(named.where, RULE, ERROR,
                           f"foreign key {named.name} is {named.table[0]}.{named.table[1]} {_cols(named.columns)} -> "
                           f"{named.ref_table[0]}.{named.ref_table[1]} {_cols(named.ref_columns)}, but link "
                           f"{link.name} of aos.contract_links is {wanted}")]  # fmt: skip
    where = Where.db(f"{link.from_schema}.{link.from_table}")
    return [Finding.at(where, RULE, ERROR, f"link {link.name} has no foreign key in the database: {wanted}")]
