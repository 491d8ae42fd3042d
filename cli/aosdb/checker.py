"""`aosdb check [ROOT] [--dsn DSN] [--format text|json]`: the contract checker.

The contract is data (aos.contract_*), and PostgreSQL knows the rest: both are read from a migrated
database. With --dsn (or AOSDB_DSN, DATABASE_URL) that database is checked as it is; without one,
ROOT's sql/ is migrated into a throwaway database on the embedded cluster, checked, and dropped.
Function bodies (pg_get_functiondef, PL/pgSQL included) are read with pglast, PostgreSQL's parser;
foreign keys, keys, grants, role memberships and views come from the catalog. Any migration SQL
PostgreSQL runs is fine: the checker never reads the migrations' statements.

| rule   | checks                                                                  | severity |
|--------|-------------------------------------------------------------------------|----------|
| XD-001 | no facade function or view writes; facades read only their contract rows | ERROR  |
| XD-002 | every contract link is a real, tenant-first foreign key                 | ERROR    |
| XD-003 | every scenario states its expected propagation                          | WARNING  |
| XD-004 | no SQL writes another domain's table or a key; grants stay inside each   | ERROR    |
|        | domain and give no role UPDATE of a key                                  |          |

Output: `file:line: XD-00N SEVERITY: message` per finding, then `check: N errors, M warnings
(...)`; or, with --format json, only a JSON array of {file, line, rule, severity, message}. A
function's finding names the file of ROOT that defines it (the one whose CREATE FUNCTION holds its
body) and the line; one no file defines is `db:schema.function(args):line`; a view's finding names
its CREATE VIEW; a table's (links, grants, keys) is `db:schema.table:0`. Exit 1 on any ERROR, 0
otherwise, 2 when the check cannot run (no sql/ under ROOT, a database that is not migrated or
cannot be reached, a migration that fails).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from aosdb.check import xd001, xd002, xd003, xd004
from aosdb.check.catalog import Catalog, read_catalog
from aosdb.check.findings import Finding, Where, as_json, summary, unique_sorted
from aosdb.check.program import Program
from aosdb.check.tree import Sources, display_path, tree_root
from aosdb.errors import AosdbError


def run_check(root: str | None, dsn: str | None, output_format: str, emit: Callable[[str], None]) -> int:
    path = tree_root(root)
    sources = Sources(path)
    catalog = _catalog(path, dsn, sources)
    contract = catalog.contract

    def view_where(view: str) -> Where:
        return sources.locate_view(*view.split(".", 1)) or Where.db(view)

    findings: list[Finding] = []
    live = Program(catalog.functions, catalog.relations | set(contract.tables))
    findings += xd001.facades(contract, live, "the database")
    findings += xd001.view_writers(catalog.view_rules, catalog.view_triggers, view_where)
    findings += xd001.view_calls(live, catalog.view_calls, view_where)
    findings += xd002.check_links(contract, catalog.foreign_keys)
    scenario_findings, scenarios = xd003.check_scenarios(xd003.scenario_files(path))
    findings += scenario_findings
    findings += xd004.function_writes(contract, live)
    findings += xd004.key_updates(catalog.keys, live)
    findings += xd004.catalog_grants(contract, catalog.direct_grants, catalog.effective_writes, catalog.keys,
                                     catalog.memberships)  # fmt: skip
    findings += xd004.rollback_grants(contract, sources.rollbacks, catalog.relations)

    findings = unique_sorted(findings)
    errors, warnings = summary(findings)
    if output_format == "json":
        emit(as_json(findings))
    else:
        for finding in findings:
            emit(finding.text())
        checked = (f"contract and catalog of {catalog.describe}: {len(contract.tables)} tables, "
                   f"{len(contract.links)} links, {len(contract.facades)} facades, {len(contract.grants)} grants, "
                   f"{len(catalog.functions)} functions, {catalog.views} views; {scenarios} scenarios")  # fmt: skip
        emit(f"check: {_count(errors, 'error')}, {_count(warnings, 'warning')} ({checked})")
    return 1 if errors else 0


def _catalog(root: Path, dsn: str | None, sources: Sources) -> Catalog:
    """The given database as it is (it must be migrated), else ROOT migrated into a throwaway one."""
    from aosdb.config import describe_dsn
    from aosdb.db import is_migrated, not_migrated

    if dsn:
        if not is_migrated(dsn):
            raise not_migrated(dsn)
        return read_catalog(dsn, describe_dsn(dsn), sources)
    from aosdb import migrations
    from aosdb.config import resolve_dsn
    from aosdb.db import throwaway_database

    server = resolve_dsn(None)
    with throwaway_database(server, "aosdb_check") as scratch:
        with _project_root(root):
            try:
                migrations.migrate(scratch)
            except AosdbError as exc:
                raise AosdbError(f"cannot migrate {display_path(root / 'sql')} into a throwaway database: {exc}",
                                 exit_code=2) from None  # fmt: skip
        return read_catalog(scratch, f"a throwaway database migrated from {display_path(root / 'sql')}", sources)


@contextmanager
def _project_root(root: Path) -> Iterator[None]:
    """AOSDB_ROOT (what `aosdb migrate` reads its tree from) set to root for the block."""
    before = os.environ.get("AOSDB_ROOT")
    os.environ["AOSDB_ROOT"] = str(root)
    try:
        yield
    finally:
        if before is None:
            del os.environ["AOSDB_ROOT"]
        else:
            os.environ["AOSDB_ROOT"] = before


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
