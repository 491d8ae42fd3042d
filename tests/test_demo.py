"""`aosdb demo`: the story on one screen (at most 60 lines), effects first, an incident with evidence,
what to try next; --verbose prints the TAP; a database that is not the embedded cluster's needs --yes."""

from __future__ import annotations

import re

from conftest import assert_one_error_line, scalar

SCENARIOS = 21
MAX_LINES = 60


def test_the_demo_fits_one_screen_and_tells_the_story(invoke, migrated_dsn: str) -> None:
    result = invoke("demo", "--yes", "--dsn", migrated_dsn)
    assert result.returncode == 0, str(result)
    lines = result.stdout.splitlines()
    assert len(lines) <= MAX_LINES, f"{len(lines)} lines:\n{result.stdout}"
    # One line per scenario with its count of checks, then the total.
    scenario_lines = [line for line in lines if re.match(r"^ok +SDSR-\S+ +\d+ checks  \S", line)]
    assert len(scenario_lines) == SCENARIOS, result.stdout
    assert "234 passed, 0 failed" in lines, result.stdout
    # The chain shows the runs with effects first: the run dg-004 froze, dg-003's throttled run, a
    # prevented run, and a run that raised an incident linked to a proposal.
    chain = lines[lines.index(next(line for line in lines if line.startswith("== 2."))):]
    assert re.search(r"^sdsr-dg-004 +fail-6 .*frozen \(dg-004\)$", "\n".join(chain), re.MULTILINE), result.stdout
    assert re.search(r"^sdsr-dg-003 +burst-101 .*throttled \(dg-003\)$", "\n".join(chain), re.MULTILINE)
    assert re.search(r"prevented \(rule\)$", "\n".join(chain), re.MULTILINE)
    assert re.search(r" high active +pending timeout_policy ", "\n".join(chain))
    # The incident shown has evidence, and the operator's actions are on its timeline.
    assert any(line.startswith("evidence   log: ") for line in lines), result.stdout
    assert "timeline   detected -> acknowledged -> evidence_added" in lines, result.stdout
    assert "== What next" in lines and any("aosdb db stop" in line for line in lines), result.stdout
    # Re-runnable: the second run starts from a clean slate and tells the same story.
    again = invoke("demo", "--yes", "--dsn", migrated_dsn)
    assert again.returncode == 0 and len(again.stdout.splitlines()) == len(lines), str(again)


def test_verbose_prints_every_tap_line(invoke, migrated_dsn: str) -> None:
    result = invoke("demo", "--yes", "--verbose", "--dsn", migrated_dsn)
    assert result.returncode == 0, str(result)
    assert "1..234" in result.stdout.splitlines()
    assert len(re.findall(r"^ok \d+ - SDSR-", result.stdout, re.MULTILINE)) == 234


def test_another_database_needs_yes_and_is_left_untouched(invoke, migrated_dsn: str) -> None:
    result = invoke("demo", "--dsn", migrated_dsn)
    assert_one_error_line(result, "commits 21 synthetic sdsr-* tenants", "not the embedded cluster", "--yes")
    assert result.returncode == 2
    assert scalar(migrated_dsn, "SELECT count(*) FROM aos.tenants WHERE tenant_id LIKE 'sdsr-%'") == 0


def test_an_unmigrated_database_names_migrate(invoke, fresh_dsn: str) -> None:
    assert_one_error_line(invoke("demo", "--yes", "--dsn", fresh_dsn), "is not migrated", "aosdb migrate")
