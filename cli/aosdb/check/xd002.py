"""XD-002: every cross-domain link of aos.contract_links is a real foreign key, tenant-first.

In the tree, the foreign keys are those the migrations leave behind: CREATE TABLE (table and
column constraints), ALTER TABLE ADD / DROP / VALIDATE / RENAME CONSTRAINT, DROP TABLE, replayed
in order. In the catalog they are pg_constraint's. A link holds when a foreign key of its table
has exactly its columns, in order, referencing exactly its columns of its table, and is validated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pglast import ast, enums

from aosdb.check.contract import Contract, LinkRow
from aosdb.check.findings import ERROR, Finding, Where
from aosdb.check.tree import SourceTree

RULE = "XD-002"
Rel = tuple[str, str]


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: Rel
    columns: tuple[str, ...]
    ref_table: Rel
    ref_columns: tuple[str, ...]  # empty: the referenced table's primary key
    validated: bool
    where: Where


def check_links(contract: Contract, fks: list[ForeignKey], pkeys: dict[Rel, tuple[str, ...]],
                place: str) -> list[Finding]:  # fmt: skip
    findings = []
    for link in contract.links:
        findings += _check_link(link, fks, pkeys, place)
    return findings


def _cols(cols: tuple[str, ...]) -> str:
    return f"({', '.join(cols)})"


def _check_link(link: LinkRow, fks: list[ForeignKey], pkeys: dict[Rel, tuple[str, ...]], place: str) -> list[Finding]:
    source, target = (link.from_schema, link.from_table), (link.to_schema, link.to_table)
    wanted = (f"{link.from_schema}.{link.from_table} {_cols(link.from_columns)} -> "
              f"{link.to_schema}.{link.to_table} {_cols(link.to_columns)}")  # fmt: skip
    if link.from_columns[:1] != ("tenant_id",) or link.to_columns[:1] != ("tenant_id",):
        return [Finding.at(link.where, RULE, ERROR, f"link {link.name} is not tenant-first: {wanted}")]
    on_table = [fk for fk in fks if fk.table == source]
    for fk in on_table:
        ref_columns = fk.ref_columns or pkeys.get(fk.ref_table, ())
        if fk.columns == link.from_columns and fk.ref_table == target and ref_columns == link.to_columns:
            if not fk.validated:
                return [Finding.at(fk.where, RULE, ERROR,
                                   f"foreign key {fk.name} of link {link.name} is NOT VALID: existing rows are "
                                   "not checked (ALTER TABLE ... VALIDATE CONSTRAINT)")]  # fmt: skip
            return []
    named = next((fk for fk in on_table if fk.name == link.name), None)
    if named is not None:
        ref_columns = named.ref_columns or pkeys.get(named.ref_table, ())
        return [Finding.at(named.where, RULE, ERROR,
                           f"foreign key {named.name} is {named.table[0]}.{named.table[1]} {_cols(named.columns)} -> "
                           f"{named.ref_table[0]}.{named.ref_table[1]} {_cols(ref_columns)}, but link {link.name} "
                           f"of aos.contract_links is {wanted}")]  # fmt: skip
    where = link.where if place == "sql/" else Where.db(f"{link.from_schema}.{link.from_table}")
    return [Finding.at(where, RULE, ERROR, f"link {link.name} has no foreign key in {place}: {wanted}")]


# ---- the tree -----------------------------------------------------------------------------------


def tree_foreign_keys(tree: SourceTree) -> tuple[list[ForeignKey], dict[Rel, tuple[str, ...]]]:
    fks: dict[tuple[Rel, str], ForeignKey] = {}
    pkeys: dict[Rel, tuple[str, ...]] = {}
    for file, stmt in tree.forward_statements:
        if file.kind != "migration":
            continue
        node = stmt.node

        def where_of(n, file=file, stmt=stmt) -> Where:
            loc = getattr(n, "location", None)
            return stmt.where if loc is None or loc < 0 else file.where(loc)

        if isinstance(node, ast.CreateStmt):
            table = (node.relation.schemaname or "public", node.relation.relname)
            for elt in node.tableElts or ():
                if isinstance(elt, ast.ColumnDef):
                    for con in elt.constraints or ():
                        _constraint(fks, pkeys, table, con, (elt.colname,), where_of(con))
                elif isinstance(elt, ast.Constraint):
                    _constraint(fks, pkeys, table, elt, None, where_of(elt))
        elif isinstance(node, ast.AlterTableStmt) and node.objtype == enums.ObjectType.OBJECT_TABLE:
            table = (node.relation.schemaname or "public", node.relation.relname)
            for cmd in node.cmds:
                if cmd.subtype == enums.AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
                    _constraint(fks, pkeys, table, cmd.def_, None, where_of(cmd.def_))
                elif cmd.subtype == enums.AlterTableType.AT_DropConstraint:
                    fks.pop((table, cmd.name), None)
                elif cmd.subtype == enums.AlterTableType.AT_ValidateConstraint and (table, cmd.name) in fks:
                    fks[(table, cmd.name)] = replace(fks[(table, cmd.name)], validated=True)
        elif isinstance(node, ast.RenameStmt) and node.renameType == enums.ObjectType.OBJECT_TABCONSTRAINT:
            table = (node.relation.schemaname or "public", node.relation.relname)
            if (table, node.subname) in fks:
                fk = fks.pop((table, node.subname))
                fks[(table, node.newname)] = replace(fk, name=node.newname)
        elif isinstance(node, ast.DropStmt) and node.removeType == enums.ObjectType.OBJECT_TABLE:
            for obj in node.objects:
                names = [n.sval for n in obj]
                dropped = (names[-2] if len(names) > 1 else "public", names[-1])
                for key in [k for k, fk in fks.items() if dropped in (fk.table, fk.ref_table)]:
                    del fks[key]
    return list(fks.values()), pkeys


def _constraint(fks, pkeys, table: Rel, con: ast.Constraint, column: tuple[str, ...] | None, where: Where) -> None:
    if con.contype == enums.ConstrType.CONSTR_PRIMARY:
        pkeys[table] = column or tuple(k.sval for k in con.keys or ())
    elif con.contype == enums.ConstrType.CONSTR_FOREIGN:
        cols = column or tuple(a.sval for a in con.fk_attrs or ())
        ref = (con.pktable.schemaname or "public", con.pktable.relname)
        name = con.conname or f"{table[1]}_{'_'.join(cols)}_fkey"
        fks[(table, name)] = ForeignKey(name, table, cols, ref, tuple(a.sval for a in con.pk_attrs or ()),
                                        not con.skip_validation, where)  # fmt: skip
