"""The generated documents (docs/contract.md, docs/er.md) are current, and `aosdb docs` says so.

Both are generated from a migrated database by `aosdb docs`; a migration that changes the contract
or a table without regenerating them fails here.
"""

from __future__ import annotations

import re

import psycopg
from conftest import REPO_ROOT, assert_one_error_line

from aosdb.docs import documents, stale


def test_the_committed_documents_are_what_a_migrated_database_generates(migrated_dsn: str) -> None:
    with psycopg.connect(migrated_dsn) as conn:
        generated = documents(conn)
    assert stale(REPO_ROOT, generated) == [], "run `aosdb docs` on a migrated database and commit docs/"


def test_the_er_diagram_shows_every_contract_link_as_a_relationship(migrated_dsn: str) -> None:
    with psycopg.connect(migrated_dsn) as conn:
        er = documents(conn)["docs/er.md"]
        links = conn.execute("SELECT from_schema || '_' || from_table, to_schema || '_' || to_table "
                             "FROM aos.contract_links").fetchall()
    edges = set(re.findall(r"^    (\w+) \}o--[|o]\| (\w+) :", er, re.MULTILINE))
    assert links and all(tuple(link) in edges for link in links), (links, edges)


def test_docs_check_reports_a_stale_document(invoke, migrated_dsn: str, tmp_path, monkeypatch) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "contract.md").write_text("old\n")
    monkeypatch.setenv("AOSDB_ROOT", str(tmp_path))
    result = invoke("docs", "--check", "--dsn", migrated_dsn)
    assert_one_error_line(result, "stale: docs/contract.md, docs/er.md", "aosdb docs")
    assert (tmp_path / "docs" / "contract.md").read_text() == "old\n"


def test_docs_on_a_database_that_is_not_migrated_names_migrate(invoke, fresh_dsn: str) -> None:
    assert_one_error_line(invoke("docs", "--dsn", fresh_dsn), "is not migrated", "aosdb migrate")
