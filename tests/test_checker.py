"""`aosdb check` passes on the project, and fails on each kind of contract violation.

Each fixture under tests/fixtures/checker/<case>/ is laid over a copy of the project's sql/ (the
project itself is clean): it adds one file with one violation, and marks the offending line with
`expect: XD-00N` (a finding at that line of that file) or `expect: XD-00N at db:<object>` (a
finding on a catalog object: a table's grants, keys or links). The checker reads a migrated
database: each case clones the project's migrated template and migrates the fixture's tree into it
(only the fixture's files are new), then checks it with --dsn. The catalog cases break a migrated
database with one statement.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from conftest import REPO_ROOT, CliResult, assert_one_error_line, free_port, query

from aosdb import migrations
from aosdb.check.contract import contract_from_database

FIXTURES = Path(__file__).parent / "fixtures" / "checker"
EXPECT = re.compile(r"expect: (XD-00\d)(?: at (db:\S+))?")
LINE = re.compile(r"^(?P<file>\S+):(?P<line>\d+): (?P<rule>XD-00[1-4]) (?P<severity>ERROR|WARNING): (?P<message>.+)$")
SUMMARY = re.compile(r"^check: (?P<errors>\d+) errors?, (?P<warnings>\d+) warnings? \(.+\)$")

Finding = tuple[str, int, str]  # (file relative to the tree, or db:<object>; line; rule)


# ---- helpers ---------------------------------------------------------------------------------


def tree_with(tmp_path: Path, case: str | None) -> Path:
    """A copy of the project's sql/ (without the pgTAP tests) with the fixture laid over it."""
    root = tmp_path / (case or "project")
    shutil.copytree(REPO_ROOT / "sql", root / "sql", ignore=shutil.ignore_patterns("tests"))
    (root / "scenarios").mkdir()
    if case:
        shutil.copytree(FIXTURES / case, root, dirs_exist_ok=True)
    return root


@pytest.fixture
def migrated_tree(tmp_path: Path, new_database: Callable[..., str], migrated_template: str,
                  monkeypatch: pytest.MonkeyPatch) -> Callable[[str | None], tuple[Path, str]]:
    """migrated_tree(case): the fixture's tree, and a clone of the project's migrated template with
    that tree migrated into it (what `aosdb migrate` does with AOSDB_ROOT=tree)."""

    def make(case: str | None) -> tuple[Path, str]:
        root = tree_with(tmp_path, case)
        dsn = new_database(template=migrated_template)
        with monkeypatch.context() as env:
            env.setenv("AOSDB_ROOT", str(root))
            migrations.migrate(dsn)
        return root, dsn

    return make


def marked(case: str) -> set[Finding]:
    """The findings a fixture announces with `expect: XD-00N [at db:<object>]`."""
    out = set()
    for path in sorted((FIXTURES / case).rglob("*")):
        if path.is_file():
            for number, text in enumerate(path.read_text().splitlines(), start=1):
                match = EXPECT.search(text)
                if match and match.group(2):
                    out.add((match.group(2), 0, match.group(1)))
                elif match:
                    out.add((str(path.relative_to(FIXTURES / case)), number, match.group(1)))
    return out


def line_of(path: Path, fragment: str) -> int:
    return next(n for n, text in enumerate(path.read_text().splitlines(), start=1) if fragment in text)


def check_json(invoke: Callable[..., CliResult], *args: str, env: dict | None = None) -> tuple[CliResult, list[dict]]:
    result = invoke("check", *args, "--format", "json", env=env)
    assert "Traceback" not in result.stdout + result.stderr, str(result)
    try:
        return result, json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"stdout is not one JSON document\n{result}") from None


def found(findings: list[dict], root: Path | None) -> set[Finding]:
    out = set()
    for f in findings:
        name = f["file"]
        if not name.startswith("db:"):
            name = str(Path(name).resolve().relative_to(root.resolve()))
        out.add((name, f["line"], f["rule"]))
    return out


# ---- the project -------------------------------------------------------------------------------


def test_project_passes_with_its_database(invoke, migrated_dsn: str) -> None:
    result = invoke("check", str(REPO_ROOT), "--dsn", migrated_dsn)
    assert result.returncode == 0, str(result)
    lines = result.stdout.splitlines()
    assert not [line for line in lines if " ERROR: " in line], str(result)
    summary = SUMMARY.match(lines[-1])
    assert summary and summary["errors"] == "0", str(result)
    assert "contract and catalog of" in lines[-1] and " functions, " in lines[-1], str(result)


def test_the_dsn_comes_from_the_environment(invoke, migrated_dsn: str, fresh_dsn: str) -> None:
    """Like every other command: --dsn, else AOSDB_DSN, else DATABASE_URL."""
    for name in ("AOSDB_DSN", "DATABASE_URL"):
        result = invoke("check", str(REPO_ROOT), env={name: migrated_dsn})
        assert result.returncode == 0, (name, str(result))
        assert "contract and catalog of" in result.stdout, (name, str(result))
    result = invoke("check", str(REPO_ROOT), env={"AOSDB_DSN": fresh_dsn, "DATABASE_URL": migrated_dsn})
    assert result.returncode == 2, str(result)
    assert_one_error_line(result, "not migrated", "aosdb migrate")


def test_contract_knows_the_proposal_links(migrated_dsn: str) -> None:
    """The contract rows 0010 adds say who may write the links: the PolicyProposalEngine (domain
    policies) and no other domain or role."""
    with psycopg.connect(migrated_dsn) as conn:
        contract = contract_from_database(conn)
    links = ("policies", "proposal_incidents")
    assert contract.table_domain(*links) == "policies"
    for platform in (("aos", "event_ticks"), ("aos", "event_wakeup")):
        assert contract.table_domain(*platform) == "platform", platform
    [link] = [row for row in contract.links if row.name == "proposal_incidents_incident_fk"]
    assert (link.from_schema, link.from_table, link.from_columns, link.to_schema, link.to_table,
            link.to_columns) == (*links, ("tenant_id", "incident_id"), "incidents", "incidents", ("tenant_id", "id"))
    assert contract.domain_may_write("policies", *links, "INSERT", None)
    assert not contract.domain_may_write("incidents", *links, "INSERT", None)
    assert contract.role_may_hold("aos_proposal_engine", *links, "INSERT", None)
    for role in ("aos_incident_engine", "aos_worker", "aos_api", "aos_operator"):
        assert not contract.role_may_hold(role, *links, "INSERT", None), role
    assert {k for k in contract.grants if (k[1], k[2]) == links} == {
        ("aos_proposal_engine", *links, "SELECT", None), ("aos_proposal_engine", *links, "INSERT", None),
        ("aos_api", *links, "SELECT", None)}
    readers = {name for name, reads in contract.facade_reads.items() if links in reads}
    assert readers == {"api.policy_proposal", "api.incident_evidence", "api.activity_run_evidence"}


def test_contract_lists_the_column_grants(migrated_dsn: str) -> None:
    """0013: the writers of runs hold column lists without the keys, and only the PolicyEngine
    writes policy_violation; the contract is read column by column."""
    with psycopg.connect(migrated_dsn) as conn:
        contract = contract_from_database(conn)
    runs = ("activity", "runs")
    for role in ("aos_worker", "aos_scenario"):
        for privilege in ("INSERT", "UPDATE"):
            assert (role, *runs, privilege, None) not in contract.grants, (role, privilege)
            assert (role, *runs, privilege, "status") in contract.grants, (role, privilege)
            assert (role, *runs, privilege, "policy_violation") not in contract.grants, (role, privilege)
        for key in ("tenant_id", "id", "run_id"):
            assert (role, *runs, "UPDATE", key) not in contract.grants, (role, key)
    assert {k[4] for k in contract.grants if k[:4] == ("aos_policy_engine", *runs, "UPDATE")} == {"policy_violation"}


def test_text_output_is_file_line_rule_severity_message(invoke, migrated_tree) -> None:
    root, dsn = migrated_tree("incidents_inserts_rules")
    result = invoke("check", str(root), "--dsn", dsn)
    assert result.returncode == 1, str(result)
    *lines, last = result.stdout.splitlines()
    assert lines and all(LINE.match(line) for line in lines), str(result)
    summary = SUMMARY.match(last)
    assert summary and summary["errors"] == str(len(lines)) and summary["warnings"] == "0", str(result)
    match = LINE.match(lines[0])
    assert match["file"].endswith("sql/functions/zz_incidents_autorule.sql"), str(result)
    assert "policies.policy_rules" in match["message"] and "incidents" in match["message"], str(result)


def test_json_output_is_only_a_json_array(invoke, migrated_tree, migrated_dsn: str) -> None:
    root, dsn = migrated_tree("facade_writes")
    result, findings = check_json(invoke, str(root), "--dsn", dsn)
    assert result.returncode == 1, str(result)
    assert isinstance(findings, list) and findings, str(result)
    for finding in findings:
        assert set(finding) == {"file", "line", "rule", "severity", "message"}, finding
    result, findings = check_json(invoke, str(REPO_ROOT), "--dsn", migrated_dsn)
    assert result.returncode == 0 and [f for f in findings if f["severity"] == "ERROR"] == [], str(result)


# ---- one violation per tree -----------------------------------------------------------------------

CASES = [
    # (a) a function of incidents inserting into policies.policy_rules inside a PL/pgSQL IF block
    "incidents_inserts_rules",
    # (b) an UPDATE of another domain's table (LANGUAGE sql body)
    "activity_updates_incidents",
    # dynamic SQL with a constant text is checked like static SQL
    "dynamic_execute",
    # (c) a facade that writes
    "facade_writes",
    # (d) a facade reading a table outside its contract rows
    "facade_reads_outside",
    # the proposal detail may read policies.proposal_incidents (its contract row), the proposals list may not
    "facade_reads_proposal_links",
    # the links are the PolicyProposalEngine's: the IncidentEngine may not write them
    "incidents_links_proposals",
    # (h) runs.policy_violation is the PolicyEngine's; runs.status is not (flag_run passes, halt_run fails)
    "policy_violation_only",
    # (f) a stray write grant in a migration
    "stray_grant",
    # keys are immutable: UPDATE of a key column, or of a whole table with keys, granted to a role
    "key_update_grant",
    # keys are immutable: activity code may update runs, not their id
    "function_updates_key",
    # a view that writes through the function it calls
    "view_calls_writer",
    # contract rows written with ON CONFLICT DO NOTHING, a CTE and a DO block are read like any others
    "contract_rows_any_sql",
]


@pytest.mark.parametrize("case", CASES)
def test_each_violation_is_reported_at_its_line(invoke, migrated_tree, case: str) -> None:
    root, dsn = migrated_tree(case)
    expected = marked(case)
    assert expected, f"fixture {case} marks no line"
    result, findings = check_json(invoke, str(root), "--dsn", dsn)
    assert found(findings, root) == expected, str(result)
    assert {f["severity"] for f in findings} == {"ERROR"}, str(result)
    assert result.returncode == 1, str(result)


def test_role_membership_is_reported(invoke, migrated_tree) -> None:
    """A membership that hands one domain's writes to another domain's role: reported once, on the
    member (memberships are the server's, not the database's: the test revokes it)."""
    root, dsn = migrated_tree("role_membership")
    try:
        result, findings = check_json(invoke, str(root), "--dsn", dsn)
    finally:
        query(dsn, "REVOKE aos_incident_engine FROM aos_worker")
    assert found(findings, root) == marked("role_membership"), str(result)
    assert "aos_worker is a member of aos_incident_engine" in findings[0]["message"], str(result)
    assert result.returncode == 1, str(result)


@pytest.mark.parametrize(("case", "table", "link"), [
    ("dropped_foreign_key", "incidents.incidents", "incidents_source_run_fk"),
    ("dropped_proposal_link", "policies.proposal_incidents", "proposal_incidents_incident_fk"),
])
def test_dropped_foreign_key_is_reported_on_its_table(invoke, migrated_tree, case: str, table: str,
                                                       link: str) -> None:
    """(e): a migration drops a link's foreign key; the finding names the link and its table."""
    root, dsn = migrated_tree(case)
    result, findings = check_json(invoke, str(root), "--dsn", dsn)
    assert found(findings, root) == {(f"db:{table}", 0, "XD-002")}, str(result)
    assert link in findings[0]["message"], str(result)
    assert result.returncode == 1, str(result)


def test_contract_rows_are_read_from_the_database(invoke, migrated_tree) -> None:
    """A later migration deletes one contract row: the facade that relies on it now fails, at the
    line of its file that reads what the row allowed."""
    root, dsn = migrated_tree("contract_row_removed")
    facade = Path("sql/functions/api_policies.sql")
    expected = {(str(facade), line_of(root / facade, "'triggering_run', (SELECT to_jsonb(r) FROM activity.runs"),
                 "XD-001")}  # fmt: skip
    result, findings = check_json(invoke, str(root), "--dsn", dsn)
    assert found(findings, root) == expected, str(result)
    assert "api.policy_proposal reads activity.runs" in findings[0]["message"], str(result)


def test_without_a_dsn_root_is_migrated_into_a_throwaway_database(invoke, pg_server: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """No DSN: ROOT's own migrations (here with contract rows written by ON CONFLICT, a CTE and a DO
    block) are migrated into a throwaway database on the server (the embedded cluster; this test's
    server stands in for it), checked, and the database is dropped."""
    import aosdb.config

    monkeypatch.setattr(aosdb.config, "resolve_dsn", lambda dsn: dsn or pg_server)
    root = tree_with(tmp_path, "contract_rows_any_sql")
    result, findings = check_json(invoke, str(root))
    assert found(findings, root) == marked("contract_rows_any_sql"), str(result)
    assert result.returncode == 1, str(result)
    assert query(pg_server, "SELECT datname FROM pg_database WHERE datname LIKE 'aosdb_check_%'") == []
    result = invoke("check", str(root))
    assert "contract and catalog of a throwaway database migrated from" in result.stdout, str(result)


def test_scenario_without_expectations_is_a_warning(invoke, migrated_dsn: str, tmp_path: Path) -> None:
    """(g): XD-003 is a warning: reported, exit 0. Scenarios are read from ROOT."""
    root = tree_with(tmp_path, "scenario_without_expectations")
    result, findings = check_json(invoke, str(root), "--dsn", migrated_dsn)
    assert found(findings, root) == marked("scenario_without_expectations"), str(result)
    assert [f["severity"] for f in findings] == ["WARNING"], str(result)
    assert "SDSR-CHECK-001" in findings[0]["message"], str(result)
    assert result.returncode == 0, str(result)


def test_empty_expected_propagation_is_a_warning(invoke, migrated_dsn: str, tmp_path: Path) -> None:
    root = tree_with(tmp_path, None)
    (root / "scenarios" / "empty.yml").write_text("scenario_id: SDSR-CHECK-002\ninject: []\nexpected_propagation: []\n")
    result, findings = check_json(invoke, str(root), "--dsn", migrated_dsn)
    assert found(findings, root) == {("scenarios/empty.yml", 3, "XD-003")}, str(result)
    assert result.returncode == 0, str(result)


def test_rollback_granting_outside_the_domain(invoke, migrated_dsn: str, tmp_path: Path) -> None:
    """No migrated database holds what a rollback grants: its GRANTs are checked where they are written."""
    root = tree_with(tmp_path, None)
    rollback = root / "sql" / "migrations" / "0016_cost_precision.rollback.sql"
    rollback.write_text(rollback.read_text() + "\nGRANT DELETE ON incidents.incidents TO aos_worker;\n")
    result, findings = check_json(invoke, str(root), "--dsn", migrated_dsn)
    where = str(rollback.relative_to(root))
    assert found(findings, root) == {(where, line_of(rollback, "GRANT DELETE ON incidents"), "XD-004")}, str(result)
    assert result.returncode == 1, str(result)


# ---- the live catalog (--dsn) --------------------------------------------------------------------


def _break(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)


@pytest.mark.parametrize(("table", "link"), [
    ("incidents.incidents", "incidents_source_run_fk"),
    ("policies.proposal_incidents", "proposal_incidents_incident_fk"),
])
def test_dropped_foreign_key_in_the_catalog(invoke, migrated_dsn: str, table: str, link: str) -> None:
    """(e): the tree is fine, the database lost the link."""
    _break(migrated_dsn, f"ALTER TABLE {table} DROP CONSTRAINT {link}")
    result, findings = check_json(invoke, str(REPO_ROOT), "--dsn", migrated_dsn)
    assert found(findings, None) == {(f"db:{table}", 0, "XD-002")}, str(result)
    assert link in findings[0]["message"], str(result)
    assert result.returncode == 1, str(result)


def test_stray_grant_in_the_catalog(invoke, migrated_dsn: str) -> None:
    """(f): a write grant outside the worker's domain, made by hand in the database."""
    _break(migrated_dsn, "GRANT INSERT ON policies.policy_rules TO aos_worker")
    result, findings = check_json(invoke, str(REPO_ROOT), "--dsn", migrated_dsn)
    assert found(findings, None) == {("db:policies.policy_rules", 0, "XD-004")}, str(result)
    assert "aos_worker" in findings[0]["message"], str(result)
    assert result.returncode == 1, str(result)


def test_link_write_grant_outside_the_proposal_engine_in_the_catalog(invoke, migrated_dsn: str) -> None:
    """Writing the proposal links is the PolicyProposalEngine's grant: the IncidentEngine may not hold it."""
    _break(migrated_dsn, "GRANT INSERT ON policies.proposal_incidents TO aos_incident_engine")
    result, findings = check_json(invoke, str(REPO_ROOT), "--dsn", migrated_dsn)
    assert found(findings, None) == {("db:policies.proposal_incidents", 0, "XD-004")}, str(result)
    assert "aos_incident_engine" in findings[0]["message"], str(result)
    assert "policies.proposal_incidents belongs to policies" in findings[0]["message"], str(result)
    assert result.returncode == 1, str(result)


@pytest.mark.parametrize(("statement", "table", "says"), [
    ("GRANT UPDATE (tenant_id) ON activity.runs TO aos_worker", "activity.runs",
     "tenant_id of activity.runs is a key, and keys are immutable"),
    ("GRANT UPDATE ON incidents.incidents TO aos_incident_engine", "incidents.incidents",
     "grant UPDATE on a column list without them"),
])
def test_key_update_grant_in_the_catalog(invoke, migrated_dsn: str, statement: str, table: str, says: str) -> None:
    """Keys are immutable: a grant that lets a role update one is reported, even in its own domain."""
    _break(migrated_dsn, statement)
    result, findings = check_json(invoke, str(REPO_ROOT), "--dsn", migrated_dsn)
    assert found(findings, None) == {(f"db:{table}", 0, "XD-004")}, str(result)
    assert all(says in f["message"] for f in findings), str(result)
    assert result.returncode == 1, str(result)


def test_policy_violation_grant_in_the_catalog(invoke, migrated_dsn: str) -> None:
    """The catalog's column grants are compared column by column: the worker may insert runs, but
    not policy_violation, the PolicyEngine's column."""
    _break(migrated_dsn, "GRANT INSERT (policy_violation) ON activity.runs TO aos_worker")
    result, findings = check_json(invoke, str(REPO_ROOT), "--dsn", migrated_dsn)
    assert found(findings, None) == {("db:activity.runs", 0, "XD-004")}, str(result)
    assert [f["message"] for f in findings] == [
        "stray grant INSERT (policy_violation) ON activity.runs TO aos_worker: not in aos.contract_grants"], str(result)


def test_stray_read_grant_in_the_catalog(invoke, migrated_dsn: str) -> None:
    """The catalog must equal aos.contract_grants exactly: an unlisted SELECT is stray too."""
    _break(migrated_dsn, "GRANT SELECT ON policies.policy_rules TO aos_bi")
    result, findings = check_json(invoke, str(REPO_ROOT), "--dsn", migrated_dsn)
    assert found(findings, None) == {("db:policies.policy_rules", 0, "XD-004")}, str(result)
    assert "stray grant SELECT" in findings[0]["message"], str(result)


def test_live_facade_reading_outside_its_row(invoke, migrated_dsn: str) -> None:
    """A helper replaced in the database (not in the tree) makes two facades read a guardrail table."""
    _break(migrated_dsn, """
        CREATE OR REPLACE FUNCTION api_private.run_traces(p_run_id text) RETURNS jsonb
        LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
            SELECT coalesce(jsonb_agg(to_jsonb(t)), '[]')
            FROM activity.aos_traces AS t
            CROSS JOIN policies.default_guardrails AS g
            WHERE t.run_id = p_run_id
        $fn$""")
    result, findings = check_json(invoke, str(REPO_ROOT), "--dsn", migrated_dsn)
    assert {(f["file"], f["rule"]) for f in findings} == {("db:api_private.run_traces(text)", "XD-001")}, str(result)
    assert {m for f in findings for m in re.findall(r"api\.activity_run\w*", f["message"])} == {
        "api.activity_run", "api.activity_run_evidence"}, str(result)
    assert result.returncode == 1, str(result)


def test_live_helper_in_the_exposed_schema(invoke, migrated_dsn: str) -> None:
    """Every function of api is served over HTTP: a helper created there (not in api_private) is an
    endpoint without a contract row."""
    _break(migrated_dsn, """
        CREATE FUNCTION api._tenant_of(p_run_id text) RETURNS text
        LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
            SELECT r.tenant_id FROM activity.runs AS r WHERE r.run_id = p_run_id
        $fn$""")
    result, findings = check_json(invoke, str(REPO_ROOT), "--dsn", migrated_dsn)
    assert {(f["file"], f["rule"]) for f in findings} == {("db:api._tenant_of(text)", "XD-001")}, str(result)
    assert "helpers live in api_private" in findings[0]["message"], str(result)
    assert result.returncode == 1, str(result)


def test_live_volatile_helper_in_api_private(invoke, migrated_dsn: str) -> None:
    """The helpers are read-only like the facades: a VOLATILE one in api_private is reported."""
    _break(migrated_dsn, "ALTER FUNCTION api_private.run_traces(text) VOLATILE")
    result, findings = check_json(invoke, str(REPO_ROOT), "--dsn", migrated_dsn)
    assert {f["rule"] for f in findings} == {"XD-001"}, str(result)
    assert [f["message"] for f in findings if "VOLATILE" in f["message"]] and all(
        f["message"].startswith("api_private.run_traces is VOLATILE") for f in findings), str(result)
    assert result.returncode == 1, str(result)


# ---- what makes the check impossible: exit 2, one line ---------------------------------------------


def test_root_without_sql_is_one_clear_line(invoke, tmp_path: Path) -> None:
    result = invoke("check", str(tmp_path))
    assert result.returncode == 2, str(result)
    assert_one_error_line(result, "no sql/ directory")


def test_failing_migration_is_one_clear_line(invoke, pg_server: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a DSN, a migration of ROOT that fails stops the check (exit 2) and leaves no database."""
    import aosdb.config

    monkeypatch.setattr(aosdb.config, "resolve_dsn", lambda dsn: dsn or pg_server)
    root = tree_with(tmp_path, None)
    (root / "sql" / "migrations" / "0100_broken.sql").write_text("-- depends: 0011_engine_indexes\n"
                                                                 "SELECT aos.no_such_function();\n")
    result = invoke("check", str(root))
    assert result.returncode == 2, str(result)
    assert_one_error_line(result, "cannot migrate", "no_such_function")
    assert query(pg_server, "SELECT datname FROM pg_database WHERE datname LIKE 'aosdb_check_%'") == []


def test_unmigrated_database_is_one_clear_line(invoke, fresh_dsn: str) -> None:
    result = invoke("check", str(REPO_ROOT), "--dsn", fresh_dsn)
    assert result.returncode == 2, str(result)
    assert_one_error_line(result, "not migrated", "aosdb migrate")


def test_unreachable_database_is_one_clear_line(invoke) -> None:
    result = invoke("check", str(REPO_ROOT), "--dsn", f"postgresql://nobody:Secret-7f3q@127.0.0.1:{free_port()}/x")
    assert result.returncode == 2, str(result)
    assert_one_error_line(result, "cannot connect")
    assert "Secret-7f3q" not in result.stdout + result.stderr, str(result)
