"""`aosdb scenario run`, the SDSR runner, against a real migrated database.

The shipped suite passes; a wrong expectation is `not ok` with what was found; a malformed file is
one line naming the file and the key (exit 2, nothing ran); a scenario is rolled back unless
--keep, and what --keep commits carries the synthetic marks; a scenario cannot write an effect
(the runner refuses, and the database's own 42501 stands behind it); `${...}` binds across
assertions; a directory runs its *.yaml in name order. Most cases call `run_paths` in process
(exact TAP lines); the shipped suite and the one-line errors go through the real CLI.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from textwrap import dedent

import psycopg
import pytest
import yaml
from conftest import REPO_ROOT, assert_one_error_line, query, scalar
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from aosdb.scenarios import run_paths

SCENARIOS = REPO_ROOT / "scenarios"
TAP_LINE = re.compile(r"^(ok|not ok) (\d+) - (.*)$")
SUMMARY = re.compile(r"^# (\d+) passed, (\d+) failed(?:, (\d+) skipped)?$")

# Every table a scenario's rows can land in, and whether it carries the synthetic marks.
DOMAIN_TABLES = (
    "activity.runs", "activity.aos_traces", "activity.aos_trace_steps",
    "incidents.incidents", "incidents.incident_events", "incidents.incident_evidence",
    "policies.policy_proposals", "policies.proposal_incidents", "policies.policy_rules",
    "policies.prevention_records",
)
EFFECT_TABLES = (
    "incidents.incidents", "incidents.incident_events", "incidents.incident_evidence",
    "policies.policy_proposals", "policies.proposal_incidents", "policies.policy_rules",
    "policies.prevention_records", "aos.events",
)


# ---- helpers ---------------------------------------------------------------------------------


class Tap:
    """A run's TAP output, parsed."""

    def __init__(self, code: int, lines: list[str]):
        self.code = code
        self.lines = lines
        self.results = [(m.group(1) == "ok", int(m.group(2)), m.group(3)) for m in map(TAP_LINE.match, lines) if m]

    def __str__(self) -> str:
        return f"exit {self.code}\n" + "\n".join(self.lines)

    @property
    def plan(self) -> int:
        assert self.lines and re.fullmatch(r"1\.\.\d+", self.lines[0]), str(self)
        return int(self.lines[0][3:])

    def line(self, fragment: str) -> tuple[bool, int, str]:
        found = [r for r in self.results if fragment in r[2]]
        assert len(found) == 1, f"{len(found)} lines contain {fragment!r}\n{self}"
        return found[0]

    def diagnostics(self, fragment: str) -> list[str]:
        """The '#' lines right after the result line containing fragment."""
        _, number, _ = self.line(fragment)
        start = next(i for i, line in enumerate(self.lines) if TAP_LINE.match(line) and
                     int(TAP_LINE.match(line).group(2)) == number)
        out = []
        for line in self.lines[start + 1:]:
            if not line.startswith("#   "):
                break
            out.append(line)
        return out

    @property
    def summary(self) -> tuple[int, int, int]:
        match = SUMMARY.match(self.lines[-1])
        assert match, str(self)
        return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def run(dsn: str, *paths: Path | str, keep: bool = False, check_effect_writes: bool = True) -> Tap:
    lines: list[str] = []
    code = run_paths(dsn, [str(p) for p in paths], keep=keep, emit=lines.append,
                     _check_effect_writes=check_effect_writes)
    return Tap(code, lines)


def scenario_file(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(dedent(text).lstrip(), encoding="utf-8")
    return path


def tenant_rows(dsn: str, tenant: str) -> dict[str, int]:
    """How many rows the tenant has in each domain table and the outbox, and its registry row."""
    counts = {t: scalar(dsn, f"SELECT count(*) FROM {t} WHERE tenant_id = %s", (tenant,))
              for t in (*DOMAIN_TABLES, "aos.events", "aos.tenants")}
    return {t: n for t, n in counts.items() if n}


TIMEOUT = """
    scenario_id: SDSR-T-001
    name: a timeout
    tenant: sdsr-t-001
    inject:
      - run: {run_id: r1, agent_id: agent-a, status: failed, error_message: "EXECUTION_TIMEOUT: step 3 exceeded 300s"}
    expected_propagation:
      - {domain: incidents, assertion: incident_created, source_run_id: r1, severity: %s}
      - {domain: incidents, assertion: incident_count, equals: %d}
    expected_non_propagation:
      - {domain: policies, assertion: %s}
"""


# ---- the shipped suite -----------------------------------------------------------------------


def test_shipped_suite_passes(run_cli, migrated_dsn: str) -> None:
    result = run_cli("scenario", "run", str(SCENARIOS), env={"AOSDB_DSN": migrated_dsn})
    assert result.returncode == 0, str(result)
    tap = Tap(result.returncode, result.stdout.splitlines())
    assert tap.results, str(tap)
    assert [n for _, n, _ in tap.results] == list(range(1, tap.plan + 1)), str(tap)
    failed = [r for r in tap.results if not r[0]]
    assert not failed, str(tap)
    assert not any("# SKIP" in d for _, _, d in tap.results), str(tap)
    assert tap.summary == (tap.plan, 0, 0), str(tap)
    ids = {yaml.safe_load(p.read_text())["scenario_id"] for p in SCENARIOS.glob("*.yaml")}
    assert {d.split()[0] for _, _, d in tap.results} == ids
    assert result.stderr == "", str(result)


def test_shipped_suite_is_well_formed_and_covers_the_propagation_table() -> None:
    docs = [yaml.safe_load(p.read_text()) for p in sorted(SCENARIOS.glob("*.yaml"))]
    assert len(docs) >= 15
    for field in ("scenario_id", "tenant"):
        values = [d[field] for d in docs]
        assert len(set(values)) == len(values), f"duplicate {field}: {values}"
    assert all(d.get("expected_propagation") for d in docs), "every scenario states its propagation (XD-003)"
    steps = [next(iter(s)) for d in docs for s in d["inject"]]
    assertions = [a for d in docs for a in d.get("expected_propagation", [])]
    names = {a["assertion"] for a in assertions}
    # Each effect of the propagation chain (README): incident, proposal, rule, prevention record, policy_violation.
    assert {"incident_created", "proposal_created", "rule_created", "prevention_recorded",
            "policy_violation"} <= names
    assert {"approve", "reject", "acknowledge", "resolve", "create_rule"} <= set(steps)
    guardrails = {a.get("guardrail_id") for a in assertions if a["assertion"] == "prevention_recorded"}
    assert {"dg-001", "dg-002", "dg-003", "dg-004", "dg-005"} <= guardrails
    outcomes = {a.get("outcome") for a in assertions if a["assertion"] == "prevention_recorded"}
    assert {"prevented", "blocked", "warned", "audited", "throttled", "frozen"} <= outcomes
    rule_types = {s["create_rule"]["rule_type"] for d in docs for s in d["inject"] if "create_rule" in s}
    assert "blocked_skill" in rule_types


def test_shipped_tap_is_accepted_by_prove(migrated_dsn: str, tmp_path: Path) -> None:
    if shutil.which("prove") is None:
        pytest.skip("prove (Perl's TAP harness) is not installed")
    tap = run(migrated_dsn, SCENARIOS)
    out = tmp_path / "suite.tap"
    out.write_text("\n".join(tap.lines) + "\n")
    proc = subprocess.run(["prove", "--exec", "cat", str(out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "All tests successful" in proc.stdout, proc.stdout


# ---- failing expectations ------------------------------------------------------------------------


def test_failing_expectation_is_not_ok_with_what_was_found(migrated_dsn: str, tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "t.yaml", TIMEOUT % ("critical", 2, "proposal_created"))
    tap = run(migrated_dsn, path)
    assert tap.code == 1, str(tap)
    assert tap.plan == 5 and len(tap.results) == 5, str(tap)
    assert tap.line("inject: 1 run as aos_scenario")[0], str(tap)

    ok, _, _ = tap.line("incidents.incident_created source_run_id=r1 severity=critical")
    assert not ok, str(tap)
    found = tap.diagnostics("incidents.incident_created source_run_id=r1 severity=critical")
    assert "no row of incidents.incidents matches; tenant sdsr-t-001 has 1:" in found[0], str(tap)
    assert "source_run_id=r1" in found[1] and "severity=high" in found[1], str(tap)

    ok, _, _ = tap.line("incidents.incident_count equals 2")
    assert not ok, str(tap)
    assert "expected 2 row(s) of incidents.incidents, found 1:" in tap.diagnostics("incident_count")[0]

    ok, _, _ = tap.line("no policies.proposal_created")
    assert not ok, str(tap)
    found = tap.diagnostics("no policies.proposal_created")
    assert "expected no matching row of policies.policy_proposals, found 1:" in found[0], str(tap)
    assert "proposal_type=timeout_policy" in found[1] and "status=pending" in found[1], str(tap)

    assert tap.line("synthetic marks")[0], str(tap)
    assert tap.summary == (2, 3, 0), str(tap)
    assert tap.lines[-1] == "# 2 passed, 3 failed"


def test_right_expectations_pass(migrated_dsn: str, tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "t.yaml", TIMEOUT % ("high", 1, "rule_created"))
    tap = run(migrated_dsn, path)
    assert tap.code == 0 and all(ok for ok, _, _ in tap.results), str(tap)
    assert tap.lines[-1] == "# 5 passed, 0 failed"


def test_policy_violation_failure_shows_the_flag(migrated_dsn: str, tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "pv.yaml", """
        scenario_id: SDSR-PV
        tenant: sdsr-pv
        inject:
          - run: {run_id: cheap, agent_id: a, status: succeeded, estimated_cost_usd: 0.5}
        expected_propagation:
          - {domain: activity, assertion: policy_violation, run_id: cheap}
    """)
    tap = run(migrated_dsn, path)
    assert tap.code == 1, str(tap)
    found = tap.diagnostics("activity.policy_violation run_id=cheap")
    assert "no run of tenant sdsr-pv matching the filters has policy_violation = true" in found[0], str(tap)
    assert "run_id=cheap" in found[1] and "policy_violation=false" in found[1], str(tap)


def test_synthetic_marks_line_fails_when_an_effect_is_unmarked(migrated_dsn: str, tmp_path: Path) -> None:
    # Sabotage this throwaway clone: incidents lose their marks on the way in.
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION public.strip_marks() RETURNS trigger LANGUAGE plpgsql AS $$ "
                     "BEGIN NEW.is_synthetic := false; NEW.synthetic_scenario_id := NULL; RETURN NEW; END $$")
        conn.execute("CREATE TRIGGER _000_strip BEFORE INSERT ON incidents.incidents "
                     "FOR EACH ROW EXECUTE FUNCTION public.strip_marks()")
    path = scenario_file(tmp_path, "t.yaml", TIMEOUT % ("high", 1, "rule_created"))
    tap = run(migrated_dsn, path)
    assert tap.code == 1, str(tap)
    ok, _, _ = tap.line("synthetic marks")
    assert not ok, str(tap)
    # The engines copy the marks from the incident onwards, so its event, proposal and link lack them too.
    assert tap.diagnostics("synthetic marks") == [
        f"#   {table}: 1 of 1 rows written lack is_synthetic or synthetic_scenario_id"
        for table in ("incidents.incident_events", "incidents.incidents", "policies.policy_proposals",
                      "policies.proposal_incidents")
    ], str(tap)


# ---- malformed files -------------------------------------------------------------------------------

HEAD = "scenario_id: SDSR-M\ntenant: sdsr-m\n"
RUN = "inject: [{run: {run_id: r1, agent_id: a, status: failed}}]\n"

MALFORMED = {
    "unknown-status": (HEAD + "inject:\n  - run: {run_id: r1, agent_id: a, status: failed}\n"
                       "  - run: {run_id: r2, agent_id: a, status: done}\n",
                       "inject[1].run.status: unknown status 'done'"),
    "missing-status": (HEAD + "inject: [{run: {run_id: r1, agent_id: a}}]\n", "inject[0].run.status: required"),
    "unknown-top-key": (HEAD + RUN + "expectations: []\n", "expectations: unknown key 'expectations'"),
    "unknown-run-key": (HEAD + "inject: [{run: {run_id: r1, agent_id: a, status: failed, tokens: 3}}]\n",
                        "inject[0].run.tokens: unknown key 'tokens'"),
    "unknown-step": (HEAD + "inject: [{fail_run: {run_id: r1}}]\n", "inject[0].fail_run: unknown step 'fail_run'"),
    "sql-step": (HEAD + "inject: [{sql: \"INSERT INTO incidents.incidents DEFAULT VALUES\"}]\n",
                 "inject[0].sql: unknown step 'sql'"),
    "unknown-assertion": (HEAD + RUN + "expected_propagation: [{domain: incidents, assertion: incident_opened}]\n",
                          "expected_propagation[0].assertion: unknown assertion 'incident_opened'"),
    "unknown-column": (HEAD + RUN + "expected_propagation:\n"
                       "  - {domain: incidents, assertion: incident_created, sevrity: high}\n",
                       "expected_propagation[0].sevrity: unknown column 'sevrity' of incidents.incidents"),
    "wrong-domain": (HEAD + RUN + "expected_propagation: [{domain: policies, assertion: incident_created}]\n",
                     "expected_propagation[0].domain: incident_created reads incidents.incidents: its domain is "
                     "incidents"),
    "missing-domain": (HEAD + RUN + "expected_propagation: [{assertion: incident_created}]\n",
                       "expected_propagation[0].domain: required"),
    "unbound-reference": (HEAD + RUN + "expected_propagation:\n"
                          "  - {domain: policies, assertion: proposal_created, "
                          "triggering_incident_id: \"${incident_id}\"}\n",
                          "expected_propagation[0].triggering_incident_id: ${incident_id} is not bound"),
    "bind-in-inject": (HEAD + "inject: [{approve: {proposal_id: \"${p}\", reviewed_by: me}}]\n",
                       "inject[0].approve.proposal_id: ${p} is not bound"),
    "string-for-count": (HEAD + "inject: [{run: {run_id: r1, agent_id: a, status: succeeded, input_tokens: many}}]\n",
                         "inject[0].run.input_tokens: must be a whole number, got string 'many'"),
    "number-for-string": (HEAD + "inject: [{run: {run_id: 7, agent_id: a, status: failed}}]\n",
                          "inject[0].run.run_id: must be a string, got integer 7 (quote it)"),
    "filter-type": (HEAD + RUN + "expected_propagation: [{domain: activity, assertion: run_exists, "
                    "input_tokens: lots}]\n",
                    "expected_propagation[0].input_tokens: input_tokens is bigint: must be a whole number"),
    "jsonb-scalar": (HEAD + RUN + "expected_propagation: [{domain: policies, assertion: proposal_created, "
                     "proposed_rule: block}]\n",
                     "expected_propagation[0].proposed_rule: proposed_rule is jsonb: give a mapping or a list"),
    "outcome-of-live-run": (HEAD + "inject: [{run: {run_id: r1, agent_id: a, status: running, error_code: X}}]\n",
                            "inject[0].run.error_code: only a finished run"),
    "repeat-without-i": (HEAD + "inject: [{run: {run_id: r, agent_id: a, status: failed, repeat: 3}}]\n",
                         "inject[0].run.run_id: a repeated run needs ${i} in its run_id"),
    "not-a-uuid": (HEAD + "inject: [{approve: {proposal_id: not-a-uuid, reviewed_by: me}}]\n",
                   "inject[0].approve.proposal_id: 'not-a-uuid' is not a uuid"),
    "two-targets": (HEAD + "inject: [{resolve: {incident_of_run: r1, incident_id: "
                    "\"0b9a1c3e-6d1f-4f59-9a3f-1f1f1f1f1f1f\", actor: me}}]\n",
                    "inject[0].resolve: give exactly one of incident_of_run and incident_id"),
    "count-without-equals": (HEAD + RUN + "expected_propagation: [{domain: incidents, assertion: incident_count}]\n",
                             "expected_propagation[0].equals: required"),
    "equals-on-rows": (HEAD + RUN + "expected_propagation: [{domain: incidents, assertion: incident_created, "
                       "equals: 1}]\n", "expected_propagation[0].equals: only the *_count assertions take equals"),
    "bind-under-non-propagation": (HEAD + RUN + "expected_non_propagation: [{domain: policies, "
                                   "assertion: rule_created, bind: r}]\n",
                                   "expected_non_propagation[0].bind: nothing matches"),
    "tenant-filter": (HEAD + RUN + "expected_propagation: [{domain: activity, assertion: run_exists, tenant_id: x}]\n",
                      "expected_propagation[0].tenant_id: every assertion is scoped to the scenario's tenant"),
    "bad-tenant": ("scenario_id: SDSR-M\ntenant: Not_A_Tenant\n" + RUN, "tenant: 'Not_A_Tenant' is not a valid tenant"),
    "real-tenant": ("scenario_id: SDSR-M\ntenant: acme\n" + RUN, "tenant: 'acme' is not a scenario tenant: it must start with sdsr-"),
    "missing-inject": (HEAD, "inject: required"),
    "insert-unknown-table": (HEAD + "inject: [{insert: {table: activity.nope, rows: [{a: 1}]}}]\n",
                             "inject[0].insert.table: unknown table 'activity.nope'"),
    "insert-runner-column": (HEAD + "inject: [{insert: {table: activity.runs, rows: [{run_id: r, agent_id: a, "
                             "status: failed, tenant_id: other}]}}]\n",
                             "inject[0].insert.rows[0].tenant_id: tenant_id is set by the runner"),
    "insert-repeat-without-i": (HEAD + "inject: [{insert: {table: activity.runs, repeat: 3, rows: [{run_id: r, "
                                "agent_id: a, status: failed}]}}]\n",
                                "inject[0].insert.rows[0]: a repeated insert needs ${i} in a value of every row"),
    "insert-i-without-repeat": (HEAD + "inject: [{insert: {table: activity.runs, rows: [{run_id: \"r-${i}\", "
                                "agent_id: a, status: failed}]}}]\n",
                                "inject[0].insert.rows[0].run_id: ${i} is not bound"),
    "insert-repeat-zero": (HEAD + "inject: [{insert: {table: activity.runs, repeat: 0, rows: [{run_id: \"r-${i}\", "
                           "agent_id: a, status: failed}]}}]\n",
                           "inject[0].insert.repeat: must be between 1 and 10000, got 0"),
    "insert-generated-column": (HEAD + "inject: [{insert: {table: activity.runs, rows: [{run_id: r, agent_id: a, "
                                "status: failed, state: live}]}}]\n",
                                "inject[0].insert.rows[0].state: activity.runs.state is a generated column"),
    "not-a-mapping": ("- just\n- a list\n", "must be a mapping, got a list"),
    # Values the database enumerates, read from its CHECK constraints: steps, rows and filters alike.
    "unknown-step-status": (HEAD + "inject: [{run: {run_id: r1, agent_id: a, status: failed, "
                            "steps: [{skill_name: s, status: fine}]}}]\n",
                            "inject[0].run.steps[0].status: unknown step status 'fine' "
                            "(one of success, failure, retry, skipped)"),
    "unknown-rule-type": (HEAD + "inject: [{create_rule: {name: n, rule_type: max_cost, conditions: {}, "
                          "enforcement: block}}]\n",
                          "inject[0].create_rule.rule_type: unknown rule type 'max_cost' "
                          "(one of error_code, max_value, pattern_block, blocked_skill)"),
    "unknown-resolution-method": (HEAD + "inject: [{resolve: {incident_of_run: r1, actor: me, method: fixed}}]\n",
                                  "inject[0].resolve.method: unknown resolution method 'fixed' "
                                  "(one of auto, manual, rollback)"),
    "unknown-filter-value": (HEAD + RUN + "expected_propagation: [{domain: incidents, assertion: incident_created, "
                             "severity: hgh}]\n",
                             "expected_propagation[0].severity: unknown severity 'hgh' "
                             "(one of low, medium, high, critical)"),
    "unknown-insert-value": (HEAD + "inject: [{insert: {table: activity.runs, rows: [{run_id: r, agent_id: a, "
                             "status: done}]}}]\n",
                             "inject[0].insert.rows[0].status: unknown status 'done' (one of queued, running, "
                             "succeeded, failed, retry, halted, aborted)"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_file_is_one_line_naming_file_and_key(invoke, migrated_dsn: str, tmp_path: Path, case: str) -> None:
    text, message = MALFORMED[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text, encoding="utf-8")
    result = invoke("scenario", "run", str(path), env={"AOSDB_DSN": migrated_dsn})
    assert result.returncode == 2, str(result)
    assert_one_error_line(result, f"aosdb: {path}: ", message)
    assert result.stdout == "", str(result)


def test_enumerations_are_the_databases(invoke, migrated_dsn: str, tmp_path: Path) -> None:
    """A value the database's CHECK constraint gains is accepted, one it loses is refused: no copy in Python."""
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE policies.policy_rules DROP CONSTRAINT policy_rules_enforcement_valid, "
                     "ADD CONSTRAINT policy_rules_enforcement_valid CHECK (enforcement IN ('block', 'shadow'))")
        # A run finishes when the generated state says so: 'halted' is live now, so it reports no outcome.
        conn.execute("ALTER TABLE activity.runs DROP COLUMN state CASCADE")
        conn.execute("ALTER TABLE activity.runs ADD COLUMN state text GENERATED ALWAYS AS (CASE WHEN status IN "
                     "('succeeded', 'failed', 'aborted') THEN 'completed' ELSE 'live' END) STORED")
    rule = HEAD + "inject: [{create_rule: {name: n, rule_type: error_code, conditions: {error_codes: [X]}, " \
                  "enforcement: %s}}]\n"
    path = tmp_path / "warn.yaml"
    path.write_text(rule % "warn", encoding="utf-8")
    result = invoke("scenario", "run", str(path), env={"AOSDB_DSN": migrated_dsn})
    assert result.returncode == 2, str(result)
    assert_one_error_line(result, "inject[0].create_rule.enforcement: unknown enforcement 'warn' (one of block, shadow)")
    path.write_text(rule % "shadow", encoding="utf-8")
    result = invoke("scenario", "run", str(path), env={"AOSDB_DSN": migrated_dsn})
    assert result.returncode != 2 and result.stdout.startswith("1..2\n"), str(result)  # it ran
    path.write_text(HEAD + "inject: [{run: {run_id: r1, agent_id: a, status: halted, error_code: X}}]\n")
    result = invoke("scenario", "run", str(path), env={"AOSDB_DSN": migrated_dsn})
    assert result.returncode == 2, str(result)
    assert_one_error_line(result, "inject[0].run.error_code: only a finished run (succeeded, failed, aborted) "
                                  "reports error_code, not a halted one")


def test_committed_json_schema_is_current(invoke) -> None:
    """scenarios/scenario.schema.json is what the models make: regenerate it with
    `aosdb scenario schema > scenarios/scenario.schema.json` when this fails."""
    from aosdb.scenarios import scenario_schema_text

    committed = (SCENARIOS / "scenario.schema.json").read_text(encoding="utf-8")
    assert committed == scenario_schema_text(), "scenarios/scenario.schema.json is stale: run " \
                                                "`aosdb scenario schema > scenarios/scenario.schema.json`"
    result = invoke("scenario", "schema")
    assert result.returncode == 0 and result.stdout == committed, str(result)


def test_json_schema_accepts_the_shipped_suite() -> None:
    """Editors validate with the schema: every shipped scenario is valid under it, a typo is not."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((SCENARIOS / "scenario.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted(SCENARIOS.glob("*.yaml")):
        doc = json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))
        assert not list(validator.iter_errors(doc)), path
    assert list(validator.iter_errors({"scenario_id": "S", "tenant": "sdsr-s", "inject": [{"rn": {}}]}))


def test_yaml_syntax_error_names_file_line_and_column(run_cli, migrated_dsn: str, tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "broken.yaml", """
        scenario_id: SDSR-M
        tenant: sdsr-m
        inject:
          - run: {run_id: r1, agent_id: a, status: failed
        expected_propagation: []
    """)
    result = run_cli("scenario", "run", str(path), env={"AOSDB_DSN": migrated_dsn})
    assert result.returncode == 2, str(result)
    assert_one_error_line(result, f"aosdb: {path}:5:", "invalid YAML")


def test_duplicate_key_is_an_error_not_the_last_value(invoke, migrated_dsn: str, tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "dup.yaml", HEAD + "inject: [{run: {run_id: r1, agent_id: a, status: failed, "
                                                      "status: succeeded}}]\n")
    result = invoke("scenario", "run", str(path), env={"AOSDB_DSN": migrated_dsn})
    assert result.returncode == 2, str(result)
    assert_one_error_line(result, f"aosdb: {path}:", "duplicate key 'status'")


def test_malformed_file_stops_the_run_before_anything_ran(invoke, migrated_dsn: str, tmp_path: Path) -> None:
    shutil.copy(SCENARIOS / "e2e-001-timeout-proposal.yaml", tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text(MALFORMED["unknown-status"][0])
    result = invoke("scenario", "run", str(tmp_path), "--keep", env={"AOSDB_DSN": migrated_dsn})
    assert result.returncode == 2, str(result)
    assert_one_error_line(result, f"aosdb: {tmp_path / 'b.yaml'}: inject[1].run.status")
    assert result.stdout == ""
    assert tenant_rows(migrated_dsn, "sdsr-e2e-001") == {}


def test_duplicate_scenario_id_across_files(invoke, migrated_dsn: str, tmp_path: Path) -> None:
    for name in ("a.yaml", "b.yaml"):
        shutil.copy(SCENARIOS / "e2e-001-timeout-proposal.yaml", tmp_path / name)
    result = invoke("scenario", "run", str(tmp_path), env={"AOSDB_DSN": migrated_dsn})
    assert_one_error_line(result, f"{tmp_path / 'b.yaml'}: scenario_id: 'SDSR-E2E-001' is also the id of")
    assert result.returncode == 2


@pytest.mark.parametrize("given", ["nowhere.yaml", "empty-dir"])
def test_missing_paths_are_one_line(invoke, migrated_dsn: str, tmp_path: Path, given: str) -> None:
    if given == "empty-dir":
        (tmp_path / given).mkdir()
    result = invoke("scenario", "run", str(tmp_path / given), env={"AOSDB_DSN": migrated_dsn})
    assert result.returncode == 2, str(result)
    assert_one_error_line(result, str(tmp_path / given))


def test_unreachable_database_is_one_line(run_cli) -> None:
    password = "Sc3nario-Secret"
    result = run_cli("scenario", "run", str(SCENARIOS), env={"AOSDB_DSN": f"postgresql://u:{password}@127.0.0.1:1/x"})
    assert result.returncode == 2, str(result)
    assert_one_error_line(result, "aosdb: cannot connect to")
    assert password not in result.stdout + result.stderr


def test_role_that_cannot_act_as_aos_scenario_is_one_line(run_cli, pg_server: str, migrated_dsn: str) -> None:
    name, password = "aosdb_pytest_not_scenario", "Pw-4-scenario-test"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
    try:
        dsn = make_conninfo(**{**conninfo_to_dict(migrated_dsn), "user": name, "password": password})
        result = run_cli("scenario", "run", str(SCENARIOS), env={"AOSDB_DSN": dsn})
        assert result.returncode == 2, str(result)
        assert_one_error_line(result, f"{name} cannot SET ROLE aos_scenario")
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


# ---- rollback and --keep -------------------------------------------------------------------------


def test_default_run_rolls_everything_back(migrated_dsn: str) -> None:
    tap = run(migrated_dsn, SCENARIOS / "e2e-004-approval-prevents-recurrence.yaml",
              SCENARIOS / "pol-001-blocked-skill.yaml")
    assert tap.code == 0, str(tap)
    assert "# rolled back: every scenario (2); --keep commits them" in tap.lines
    for tenant in ("sdsr-e2e-004", "sdsr-pol-001"):
        assert tenant_rows(migrated_dsn, tenant) == {}, tenant


def test_keep_commits_every_row_with_the_synthetic_marks(migrated_dsn: str) -> None:
    tap = run(migrated_dsn, SCENARIOS / "e2e-004-approval-prevents-recurrence.yaml",
              SCENARIOS / "pol-001-blocked-skill.yaml", keep=True)
    assert tap.code == 0, str(tap)
    assert "# committed (--keep): SDSR-E2E-004, SDSR-POL-001" in tap.lines
    assert tenant_rows(migrated_dsn, "sdsr-e2e-004") == {
        "activity.runs": 2, "incidents.incidents": 1, "incidents.incident_events": 1,
        "policies.policy_proposals": 1, "policies.proposal_incidents": 1, "policies.policy_rules": 1,
        "policies.prevention_records": 1,
        # run_failed x2, incident_created, proposal_created, proposal_approved, rule_created, prevention_recorded
        "aos.events": 7, "aos.tenants": 1,
    }
    assert tenant_rows(migrated_dsn, "sdsr-pol-001") == {
        "activity.runs": 2, "activity.aos_traces": 2, "activity.aos_trace_steps": 3,
        "policies.policy_rules": 1, "policies.prevention_records": 1, "aos.events": 2, "aos.tenants": 1,
    }
    for tenant, scenario_id in (("sdsr-e2e-004", "SDSR-E2E-004"), ("sdsr-pol-001", "SDSR-POL-001")):
        for table in DOMAIN_TABLES:
            marks = query(migrated_dsn, f"SELECT DISTINCT is_synthetic, synthetic_scenario_id FROM {table} "
                                        "WHERE tenant_id = %s", (tenant,))
            assert marks in ([], [(True, scenario_id)]), f"{table} of {tenant}: {marks}"
    # The events say so too.
    assert query(migrated_dsn, "SELECT DISTINCT payload ->> 'is_synthetic' FROM aos.events WHERE tenant_id = %s",
                 ("sdsr-e2e-004",)) == [("true",)]


def test_running_a_kept_scenario_again_fails_its_inject_and_adds_nothing(migrated_dsn: str) -> None:
    path = SCENARIOS / "e2e-001-timeout-proposal.yaml"
    assert run(migrated_dsn, path, keep=True).code == 0
    before = tenant_rows(migrated_dsn, "sdsr-e2e-001")
    tap = run(migrated_dsn, path, keep=True)
    assert tap.code == 1, str(tap)
    ok, _, text = tap.results[0]
    assert not ok and "SDSR-E2E-001 inject[0].run: duplicate key value" in text and "SQLSTATE 23505" in text, str(tap)
    assert all("# SKIP inject failed" in d for _, _, d in tap.results[1:]), str(tap)
    assert tap.summary == (0, 1, len(tap.results) - 1), str(tap)
    assert "rolled back after a failed inject: SDSR-E2E-001" in tap.lines[-2], str(tap)
    assert tenant_rows(migrated_dsn, "sdsr-e2e-001") == before


# ---- scenarios never write effects ------------------------------------------------------------------

FORGE = """
    scenario_id: SDSR-FORGE
    tenant: sdsr-forge
    inject:
      - run: {run_id: r1, agent_id: agent-a, status: succeeded}
      - insert:
          table: %s
          rows:
            - %s
    expected_propagation:
      - {domain: incidents, assertion: incident_count, equals: 1}
"""
FORGED_ROWS = {
    "incidents.incidents":
        "{source_run_id: r1, title: forged, severity: critical, category: manual, cause_type: human}",
    "policies.policy_rules": "{name: forged, rule_type: blocked_skill, conditions: {skills: [x]}, enforcement: block}",
    "policies.prevention_records": "{run_id: r1, guardrail_id: dg-001, outcome: blocked}",
    "policies.proposal_incidents": "{incident_id: 0b9a1c3e-6d1f-4f59-9a3f-1f1f1f1f1f1f, "
                                   "proposal_id: 0b9a1c3e-6d1f-4f59-9a3f-2f2f2f2f2f2f}",
    "aos.events": "{event: incident_created, subject_id: x}",
}


@pytest.mark.parametrize("table", FORGED_ROWS)
def test_runner_refuses_a_scenario_that_writes_an_effect(migrated_dsn: str, tmp_path: Path, table: str) -> None:
    path = scenario_file(tmp_path, "forge.yaml", FORGE % (table, FORGED_ROWS[table]))
    tap = run(migrated_dsn, path, keep=True)
    assert tap.code == 1, str(tap)
    ok, _, text = tap.results[0]
    assert not ok, str(tap)
    assert text == (f"SDSR-FORGE inject[1].insert.table: writing {table} is forbidden to scenarios: effects are "
                    "created by the engines (a scenario injects causes into the activity tables)"), str(tap)
    assert tap.line("incidents.incident_count equals 1")[2].endswith("# SKIP inject failed"), str(tap)
    assert tenant_rows(migrated_dsn, "sdsr-forge") == {}, "nothing is kept, not even the run before it"


@pytest.mark.parametrize("table", FORGED_ROWS)
def test_database_refuses_the_effect_write_too(migrated_dsn: str, tmp_path: Path, table: str) -> None:
    """With the runner's own check off, the insert really runs as aos_scenario: 42501."""
    path = scenario_file(tmp_path, "forge.yaml", FORGE % (table, FORGED_ROWS[table]))
    tap = run(migrated_dsn, path, keep=True, check_effect_writes=False)
    assert tap.code == 1, str(tap)
    ok, _, text = tap.results[0]
    assert not ok, str(tap)
    assert f"permission denied for table {table.split('.')[1]}" in text and "SQLSTATE 42501" in text, str(tap)
    assert "forbidden to scenarios" in text, str(tap)
    assert tenant_rows(migrated_dsn, "sdsr-forge") == {}


@pytest.mark.parametrize("statement", [
    "INSERT INTO incidents.incidents (tenant_id, title, severity, category, cause_type) "
    "VALUES ('sdsr-x', 't', 'low', 'manual', 'human')",
    "UPDATE incidents.incidents SET severity = 'low'",
    "INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule) "
    "VALUES ('sdsr-x', 'p', 'timeout_policy', '{}')",
    "UPDATE policies.policy_proposals SET status = 'approved'",
    "INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement) "
    "VALUES ('sdsr-x', 'r', 'blocked_skill', '{\"skills\": [\"x\"]}', 'block')",
    "INSERT INTO policies.prevention_records (tenant_id, run_id, guardrail_id, outcome) "
    "VALUES ('sdsr-x', 'r', 'dg-001', 'blocked')",
    "INSERT INTO aos.events (event, tenant_id, subject_id) VALUES ('incident_created', 'sdsr-x', 'x')",
    "INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id) "
    "VALUES ('sdsr-x', gen_random_uuid(), gen_random_uuid())",
    "SELECT count(*) FROM incidents.incidents",
    "SELECT count(*) FROM policies.policy_proposals",
    "SELECT count(*) FROM policies.proposal_incidents",
], ids=lambda s: " ".join(s.split()[:3]))
def test_aos_scenario_itself_may_not_touch_effects(migrated_dsn: str, statement: str) -> None:
    with psycopg.connect(migrated_dsn) as conn:
        conn.execute("SELECT set_config('aos.tenant_id', 'sdsr-x', true)")
        conn.execute("SET LOCAL ROLE aos_scenario")
        conn.execute("SELECT aos.register_tenant('sdsr-x')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
        conn.rollback()


# ---- binding, inject, directories -----------------------------------------------------------------


def test_bind_carries_ids_across_assertions(migrated_dsn: str, tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "bind.yaml", """
        scenario_id: SDSR-BIND
        tenant: sdsr-bind
        inject:
          - run: {run_id: first, agent_id: agent-a, status: failed, error_code: EXECUTION_TIMEOUT}
          - run: {run_id: other, agent_id: agent-a, status: failed, error_code: STEP_FAILURE}
          - approve: {proposal_of_run: first, reviewed_by: "${scenario_id}-reviewer"}
        expected_propagation:
          - {domain: activity, assertion: run_exists, error_code: EXECUTION_TIMEOUT, bind: run}
          - {domain: incidents, assertion: incident_created, source_run_id: "${run}", bind: incident}
          - {domain: policies, assertion: proposal_created, triggering_incident_id: "${incident}",
             reviewed_by: "${scenario_id}-reviewer", bind: proposal}
          - {domain: policies, assertion: rule_created, source_proposal_id: "${proposal}", bind: rule}
          - {domain: policies, assertion: rule_created, id: "${rule}", is_synthetic: true,
             synthetic_scenario_id: "${scenario_id}"}
          - {domain: activity, assertion: run_exists, run_id: "${run}", agent_id: agent-a}
        expected_non_propagation:
          # the other run's proposal is not the one bound above
          - {domain: policies, assertion: proposal_created, id: "${proposal}", triggering_run_id: other}
          - {domain: policies, assertion: proposal_created, id: "${incident}"}
    """)
    tap = run(migrated_dsn, path)
    assert tap.code == 0, str(tap)
    assert tap.line("incidents.incident_created source_run_id=${run} (binds ${incident})")[0]
    assert tap.line("policies.rule_created source_proposal_id=${proposal} (binds ${rule})")[0]
    assert tap.summary == (10, 0, 0), str(tap)


def test_binding_matches_only_the_bound_row(migrated_dsn: str, tmp_path: Path) -> None:
    """A bound id filters for real: the other run's incident is not the bound one."""
    path = scenario_file(tmp_path, "bind.yaml", """
        scenario_id: SDSR-BIND2
        tenant: sdsr-bind2
        inject:
          - run: {run_id: first, agent_id: agent-a, status: failed, error_code: EXECUTION_TIMEOUT}
          - run: {run_id: other, agent_id: agent-a, status: failed, error_code: STEP_FAILURE}
        expected_propagation:
          - {domain: incidents, assertion: incident_created, source_run_id: first, bind: incident}
          - {domain: incidents, assertion: incident_created, id: "${incident}", source_run_id: other}
          - {domain: incidents, assertion: incident_created, severity: high, bind: ambiguous}
    """)
    tap = run(migrated_dsn, path)
    assert tap.code == 1, str(tap)
    assert not tap.line("id=${incident} source_run_id=other")[0], str(tap)
    ok, _, _ = tap.line("(binds ${ambiguous})")
    assert not ok
    assert "bind ambiguous needs exactly one row, 2 match: add a filter" in tap.diagnostics("(binds ${ambiguous})")[0]


def test_inject_failure_fails_its_scenario_and_the_run_goes_on(migrated_dsn: str, tmp_path: Path) -> None:
    scenario_file(tmp_path, "a.yaml", """
        scenario_id: SDSR-A
        tenant: sdsr-a
        inject:
          - run: {run_id: r1, agent_id: agent-a, status: failed, error_code: BUDGET_EXCEEDED}
          - approve: {proposal_of_run: r1, reviewed_by: me}
        expected_propagation:
          - {domain: policies, assertion: rule_count, equals: 1}
    """)
    scenario_file(tmp_path, "b.yaml", """
        scenario_id: SDSR-B
        tenant: sdsr-b
        inject:
          - create_rule: {name: bad, rule_type: max_value, conditions: {metric: mood, max: 1}, enforcement: warn}
        expected_propagation:
          - {domain: policies, assertion: rule_count, equals: 1}
    """)
    shutil.copy(SCENARIOS / "e2e-001-timeout-proposal.yaml", tmp_path / "c.yaml")
    tap = run(migrated_dsn, tmp_path)
    assert tap.code == 1, str(tap)
    assert tap.results[0] == (False, 1, "SDSR-A inject[1].approve.proposal_of_run: run 'r1' has no proposal "
                                        "(only a high or critical incident is linked to one)"), str(tap)
    ok, _, text = tap.results[3]
    assert not ok and text.startswith("SDSR-B inject[0].create_rule: conditions") and "SQLSTATE 22023" in text, str(tap)
    assert all(ok for ok, _, d in tap.results if d.startswith("SDSR-E2E-001")), str(tap)
    assert tap.summary == (11, 2, 4), str(tap)


def test_inject_steps_reach_the_right_rows(migrated_dsn: str, tmp_path: Path) -> None:
    """incident_id / proposal_id given directly, steps recorded, ${i} and ${tenant} substituted."""
    path = scenario_file(tmp_path, "steps.yaml", """
        scenario_id: SDSR-STEPS
        tenant: sdsr-steps
        inject:
          - run:
              repeat: 3
              run_id: "r-${i}"
              agent_id: agent-a
              status: succeeded
              goal: "goal ${i} of ${tenant}"
              trace_id: "trace-${i}"
              steps:
                - {skill_name: "skill-${i}", status: success, params: {n: 1}}
                - {skill_name: other, status: failure}
        expected_propagation:
          - {domain: activity, assertion: run_count, equals: 3}
          - {domain: activity, assertion: run_exists, run_id: r-2, goal: goal 2 of sdsr-steps}
    """)
    tap = run(migrated_dsn, path, keep=True)
    assert tap.code == 0, str(tap)
    assert tap.line("inject: 3 runs as aos_scenario")[0]
    steps = query(migrated_dsn, "SELECT trace_id, step_index, skill_name, status, params FROM activity.aos_trace_steps "
                                "WHERE tenant_id = 'sdsr-steps' ORDER BY trace_id, step_index")
    assert steps == [(f"trace-{i}", idx, name, status, params) for i in (1, 2, 3)
                     for idx, name, status, params in ((0, f"skill-{i}", "success", {"n": 1}),
                                                       (1, "other", "failure", {}))]
    assert query(migrated_dsn, "SELECT run_id, status FROM activity.aos_traces WHERE tenant_id = 'sdsr-steps' "
                               "ORDER BY trace_id") == [(f"r-{i}", "completed") for i in (1, 2, 3)]


def test_repeated_insert_is_one_statement_in_order(migrated_dsn: str, tmp_path: Path) -> None:
    """repeat on an insert: its rows N times over, ${i} = 1..N, every row of 1 first, in one INSERT."""
    path = scenario_file(tmp_path, "storm.yaml", """
        scenario_id: SDSR-STORM
        tenant: sdsr-storm
        inject:
          - insert:
              table: activity.runs
              repeat: 3
              rows:
                - {run_id: "a-${i}", agent_id: agent-a, status: succeeded, goal: "goal ${i} of ${tenant}"}
                - {run_id: "b-${i}", agent_id: agent-b, status: running}
        expected_propagation:
          - {domain: activity, assertion: run_count, equals: 6}
          - {domain: activity, assertion: run_exists, run_id: a-3, goal: goal 3 of sdsr-storm}
    """)
    tap = run(migrated_dsn, path, keep=True)
    assert tap.code == 0, str(tap)
    assert tap.line("inject: 6 rows inserted as aos_scenario")[0], str(tap)
    # One INSERT: every row has the same command id in this transaction, and the rows were written
    # in the order ${i} gives them (the sequence of a statement's rows is the order of its VALUES).
    rows = query(migrated_dsn, "SELECT run_id, cmin::text FROM activity.runs WHERE tenant_id = 'sdsr-storm' "
                               "ORDER BY xmin::text, cmin::text, ctid")
    assert [r[0] for r in rows] == ["a-1", "b-1", "a-2", "b-2", "a-3", "b-3"], rows
    assert len({r[1] for r in rows}) == 1, rows


def test_proposal_of_a_run_that_joined_a_pending_proposal(migrated_dsn: str, tmp_path: Path) -> None:
    """The proposal of a run is the one its incident is linked to, also when it joined one."""
    path = scenario_file(tmp_path, "joined.yaml", """
        scenario_id: SDSR-JOINED
        tenant: sdsr-joined
        inject:
          - run: {run_id: first, agent_id: agent-a, status: failed, error_code: EXECUTION_TIMEOUT}
          - run: {run_id: second, agent_id: agent-b, status: failed, error_code: EXECUTION_TIMEOUT}
          - approve: {proposal_of_run: second, reviewed_by: ops-lead}
          - run: {run_id: third, agent_id: agent-a, status: failed, error_code: EXECUTION_TIMEOUT}
        expected_propagation:
          - {domain: policies, assertion: proposal_count, equals: 1}
          - {domain: policies, assertion: proposal_created, triggering_run_id: first, status: approved,
             reviewed_by: ops-lead, incident_count: 2, bind: proposal}
          - {domain: policies, assertion: rule_created, source_proposal_id: "${proposal}"}
          - {domain: policies, assertion: prevention_recorded, run_id: third, outcome: prevented}
          - {domain: incidents, assertion: incident_count, equals: 2}
    """)
    tap = run(migrated_dsn, path)
    assert tap.code == 0, str(tap)
    assert tap.line("inject: 3 runs, 1 approval as aos_scenario")[0], str(tap)


def test_incident_and_proposal_by_id(migrated_dsn: str, tmp_path: Path) -> None:
    first = scenario_file(tmp_path, "a.yaml", """
        scenario_id: SDSR-ID-1
        tenant: sdsr-ids
        inject:
          - run: {run_id: r1, agent_id: agent-a, status: failed, error_code: EXECUTION_TIMEOUT}
        expected_propagation:
          - {domain: incidents, assertion: incident_count, equals: 1}
    """)
    assert run(migrated_dsn, first, keep=True).code == 0
    incident, proposal = query(migrated_dsn, "SELECT i.id, p.id FROM incidents.incidents AS i JOIN "
                                             "policies.policy_proposals AS p ON p.triggering_incident_id = i.id "
                                             "WHERE i.tenant_id = 'sdsr-ids'")[0]
    second = scenario_file(tmp_path, "b.yaml", f"""
        scenario_id: SDSR-ID-2
        tenant: sdsr-ids
        inject:
          - resolve: {{incident_id: "{incident}", actor: carol}}
          - reject: {{proposal_id: "{proposal}", reviewed_by: carol, notes: not now}}
        expected_propagation:
          - {{domain: incidents, assertion: incident_created, id: "{incident}", lifecycle_state: resolved,
             resolved_by: carol, resolution_method: manual}}
          - {{domain: policies, assertion: proposal_created, id: "{proposal}", status: rejected, review_notes: not now}}
    """)
    tap = run(migrated_dsn, second)
    assert tap.code == 0, str(tap)
    # Resolving SDSR-ID-1's incident writes rows that carry SDSR-ID-1's marks: they are its effects.
    assert tap.results[-1][2] == ("SDSR-ID-2 synthetic marks: 3 rows written, all synthetic: 3 marked SDSR-ID-1 "
                                  "(effects of the earlier scenario's rows)"), str(tap)


def test_scenario_without_expected_propagation_still_runs(migrated_dsn: str, tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "bare.yaml", """
        scenario_id: SDSR-BARE
        tenant: sdsr-bare
        inject:
          - run: {run_id: r1, agent_id: agent-a, status: succeeded}
    """)
    tap = run(migrated_dsn, path)
    assert tap.code == 0, str(tap)
    assert tap.plan == 2 and [d for _, _, d in tap.results] == [
        "SDSR-BARE inject: 1 run as aos_scenario",
        "SDSR-BARE synthetic marks: 1 rows written, all marked SDSR-BARE",
    ], str(tap)


def test_directory_runs_every_yaml_in_name_order(migrated_dsn: str, tmp_path: Path) -> None:
    for name, sid in (("b.yaml", "SDSR-DIR-B"), ("a.yml", "SDSR-DIR-A"), ("c.yaml", "SDSR-DIR-C")):
        scenario_file(tmp_path, name, f"""
            scenario_id: {sid}
            tenant: {sid.lower()}
            inject: [{{run: {{run_id: r1, agent_id: a, status: succeeded}}}}]
            expected_propagation: [{{domain: activity, assertion: run_exists, run_id: r1}}]
        """)
    (tmp_path / "notes.txt").write_text("not a scenario: [")
    (tmp_path / "README.md").write_text("# not a scenario")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "0.yaml").write_text("not: [valid")
    tap = run(migrated_dsn, tmp_path)
    assert tap.code == 0, str(tap)
    headers = [line.split()[1] for line in tap.lines if line.startswith("# SDSR-")]
    assert headers == ["SDSR-DIR-A", "SDSR-DIR-B", "SDSR-DIR-C"], str(tap)
    # Files named explicitly run in the order given, each once.
    tap = run(migrated_dsn, tmp_path / "c.yaml", tmp_path / "a.yml", tmp_path / "c.yaml")
    assert [line.split()[1] for line in tap.lines if line.startswith("# SDSR-")] == ["SDSR-DIR-C", "SDSR-DIR-A"]
