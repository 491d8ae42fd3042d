"""`aosdb check [ROOT] [--dsn DSN] [--format text|json]`: the contract checker (SPEC 10).

The contract is data (aos.contract_*): read from the migrations of ROOT without a server, or
from the database given by --dsn. The SQL of ROOT/sql is read with pglast (PostgreSQL's parser,
PL/pgSQL bodies included); with --dsn the live catalog is checked too: its functions, foreign
keys, grants and views.

| rule   | checks                                                                  | severity |
|--------|-------------------------------------------------------------------------|----------|
| XD-001 | no facade function or view writes; facades read only their contract rows | ERROR  |
| XD-002 | every contract link is a real, tenant-first foreign key                 | ERROR    |
| XD-003 | every scenario states its expected propagation                          | WARNING  |
| XD-004 | no SQL writes another domain's table or a key; grants stay inside each   | ERROR    |
|        | domain and give no role UPDATE of a key                                  |          |

Output: `file:line: XD-00N SEVERITY: message` per finding (catalog findings are
`db:<schema.object>:0`), then `check: N errors, M warnings (...)`; or, with --format json, only a
JSON array of {file, line, rule, severity, message}. Exit 1 on any ERROR, 0 otherwise, 2 when the
check cannot run (no sql/ under ROOT, an unreadable contract statement, no database).
The rules live in aosdb/check/: one module per rule, plus the tree, bodies, contract and catalog
readers they share.
"""

from __future__ import annotations

from collections.abc import Callable

from aosdb.check import xd001, xd002, xd003, xd004
from aosdb.check.catalog import read_catalog
from aosdb.check.contract import contract_from_tree
from aosdb.check.findings import Finding, as_json, summary, unique_sorted
from aosdb.check.program import Program
from aosdb.check.tree import SourceTree, tree_root


def run_check(root: str | None, dsn: str | None, output_format: str, emit: Callable[[str], None]) -> int:
    path = tree_root(root)
    tree = SourceTree.load(path)
    catalog = read_catalog(dsn) if dsn else None
    contract = catalog.contract if catalog else contract_from_tree(tree)

    findings: list[Finding] = []
    # The tree.
    source = Program(tree.functions, set(contract.tables) | tree.relations())
    findings += xd001.facades(contract, source, "sql/")
    findings += xd001.views(source, tree.views)
    view_names = {(v.schema, v.name) for v in tree.views}
    statements = [(s.node, s.where) for _f, s in tree.forward_statements]
    findings += xd001.source_view_writers(view_names, statements)
    fks, pkeys = xd002.tree_foreign_keys(tree)
    findings += xd002.check_links(contract, fks, pkeys, "sql/")
    scenario_findings, scenarios = xd003.check_scenarios(xd003.scenario_files(path))
    findings += scenario_findings
    findings += xd004.function_writes(contract, source)
    keys = xd004.tree_keys(tree)
    findings += xd004.key_updates(keys, source)
    findings += xd004.source_grants(contract, tree, keys)
    # The catalog.
    if catalog is not None:
        live = Program(catalog.functions, catalog.relations | set(contract.tables))
        findings += xd001.facades(contract, live, "the database")
        findings += xd001.catalog_view_writers(catalog.view_rules, catalog.view_triggers)
        findings += xd001.catalog_view_calls(live, catalog.view_calls)
        findings += xd002.check_links(contract, catalog.foreign_keys, {}, "the catalog")
        findings += xd004.function_writes(contract, live)
        findings += xd004.key_updates(catalog.keys, live)
        findings += xd004.catalog_grants(contract, catalog.direct_grants, catalog.effective_writes, catalog.keys)

    findings = unique_sorted(findings)
    errors, warnings = summary(findings)
    if output_format == "json":
        emit(as_json(findings))
    else:
        for finding in findings:
            emit(finding.text())
        checked = (f"contract from {contract.origin}: {len(contract.tables)} tables, {len(contract.links)} links, "
                   f"{len(contract.facades)} facades, {len(contract.grants)} grants; "
                   f"{len(tree.functions)} functions, {len(tree.views)} views, {scenarios} scenarios")  # fmt: skip
        if catalog is not None:
            checked += f"; catalog of {catalog.describe}: {len(catalog.functions)} functions"
        emit(f"check: {_count(errors, 'error')}, {_count(warnings, 'warning')} ({checked})")
    return 1 if errors else 0


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
