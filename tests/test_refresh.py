"""`aosdb refresh` and `aosdb refresh --follow` against a real server with real commits.

Both call the procedure aos.refresh_analytics(), which refreshes the two views in one transaction.

Each test gets a migrated clone (its views were built empty at migration time), commits runs
through the engines, and runs the CLI as a subprocess. Readers are proven unblocked with a
blocker transaction that holds up a refresh half-way (it has the view locked and waits for a base
table): a plain REFRESH would hold ACCESS EXCLUSIVE on the view there and every reader would queue
behind it; REFRESH ... CONCURRENTLY holds EXCLUSIVE, which lets SELECT through. Every wait is
bounded and every subprocess is killed in a finally.
"""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import assert_one_error_line, clean_env
from psycopg.conninfo import conninfo_to_dict, make_conninfo

VIEWS = ("activity.v_runs_o2", "incidents.v_incidents_o2")
LINE = re.compile(r"^refreshed (?P<view>\S+)\s+(?P<rows>\d+) rows in\s+(?P<ms>\d+\.\d) ms$")
# How long a refresh, a line of output or a lock wait may take to show up.
TIMEOUT = 15.0
DEBOUNCE = 2.0


# ---- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def db(migrated_dsn: str) -> str:
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        conn.execute("SELECT aos.register_tenant('t1'), aos.register_tenant('t2')")
    return migrated_dsn


def connect(dsn: str, autocommit: bool = False) -> psycopg.Connection:
    """A session that never waits for a lock longer than the tests wait for anything."""
    return psycopg.connect(dsn, autocommit=autocommit, options=f"-c lock_timeout={int(TIMEOUT * 1000)}")


def rows(dsn: str, sql: str, params=None) -> list[tuple]:
    with connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def scalar(dsn: str, sql: str, params=None):
    return rows(dsn, sql, params)[0][0]


def commit_run(dsn: str, tenant: str, run_id: str, error_code: str | None, steps: int = 0) -> None:
    """One committed transaction: a run (failed when error_code is set, else succeeded), one trace
    with `steps` steps (the last one a failure for a failed run)."""
    with connect(dsn) as conn:
        conn.execute("INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code) "
                     "VALUES (%s, %s, 'agent-a', %s, %s)",
                     (tenant, run_id, "failed" if error_code else "succeeded", error_code))
        if steps:
            conn.execute("INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id, status) VALUES (%s, %s, %s, %s)",
                         (tenant, f"{run_id}-tr", run_id, "failed" if error_code else "completed"))
            for i in range(steps):
                conn.execute("INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status)"
                             " VALUES (%s, %s, %s, 'search', %s)",
                             (tenant, f"{run_id}-tr", i, "failure" if error_code and i == steps - 1 else "success"))
        conn.commit()


def base_keys(dsn: str) -> tuple[set, set]:
    """(tenant, run_id) of every run and (tenant, incident id) of every incident, from the base tables."""
    runs = set(rows(dsn, "SELECT tenant_id, run_id FROM activity.runs"))
    incidents = set(rows(dsn, "SELECT tenant_id, id FROM incidents.incidents"))
    return runs, incidents


def view_keys(dsn: str) -> tuple[set, set]:
    runs = set(rows(dsn, "SELECT tenant_id, run_id FROM activity.v_runs_o2"))
    incidents = set(rows(dsn, "SELECT tenant_id, incident_id FROM incidents.v_incidents_o2"))
    return runs, incidents


def refreshes(dsn: str, view: str | None = None) -> list[tuple]:
    return rows(dsn, "SELECT view_name, refreshed_at, duration_ms, row_count, concurrent FROM aos.view_refreshes"
                     " WHERE %s::text IS NULL OR view_name = %s::text ORDER BY id", (view, view))


def wait_until(predicate, what: str, timeout: float = TIMEOUT, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not within {timeout}s: {what}")


def refresh_session(dsn: str, app: str) -> tuple | None:
    """(pid, wait_event_type, query) of the refresh's backend while it runs the refresh procedure."""
    found = rows(dsn, "SELECT pid, wait_event_type, query FROM pg_stat_activity"
                      " WHERE application_name = %s AND query LIKE 'CALL aos.refresh_analytics%%' AND state = 'active'",
                 (app,))
    return found[0] if found else None


def view_locks(dsn: str, pid: int, view: str) -> list[tuple]:
    """(mode, granted) of the locks backend `pid` holds or awaits on `view`."""
    return rows(dsn, "SELECT mode, granted FROM pg_locks WHERE pid = %s AND locktype = 'relation'"
                     " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                     " AND relation = %s::regclass ORDER BY mode", (pid, view))


class Refresh:
    """`python -m aosdb refresh --dsn <db> *args` in the background; its stdout lines in a queue."""

    def __init__(self, dsn: str, *args: str, cwd: Path):
        self.app = f"aosdb-refresh-{uuid.uuid4().hex[:10]}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aosdb", "refresh", "--dsn", make_conninfo(dsn, application_name=self.app), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=cwd,
            env=clean_env(PYTHONUNBUFFERED="1"),
            # A shell without job control starts background jobs with SIGINT ignored, and Python keeps
            # an ignored SIGINT ignored: give the child the default disposition, as a terminal would.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.out: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def take(self, count: int, timeout: float = TIMEOUT) -> list[str]:
        got: list[str] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"got {len(got)} of {count} lines in {timeout}s: {got}") from None
            if line is None:
                raise AssertionError(f"refresh ended after {len(got)} of {count} lines: {got}\n{self.finish()}")
            got.append(line)
        self.out += got
        return got

    def pending(self) -> list[str]:
        """Lines printed so far and not taken yet (no wait)."""
        got = []
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                got.append(line)
        self.out += got
        return got

    def finish(self, timeout: float = TIMEOUT) -> tuple[int, str, str]:
        """Exit status, the rest of stdout and stderr, once the process ended (bounded)."""
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout)
        rest = self.pending()
        return rc, "\n".join(rest), self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def refresher(db: str, tmp_path: Path) -> Iterator:
    """refresher(*args) starts `aosdb refresh --dsn <db> *args`; every one is killed afterwards."""
    started: list[Refresh] = []

    def start(*args: str) -> Refresh:
        r = Refresh(db, *args, cwd=tmp_path)
        started.append(r)
        return r

    try:
        yield start
    finally:
        for r in started:
            r.kill()


def parse(lines: list[str]) -> dict[str, int]:
    """{view: rows} from refresh lines, each of which must have the documented shape."""
    got = {}
    for line in lines:
        m = LINE.match(line)
        assert m, f"unexpected output line {line!r}"
        got[m["view"]] = int(m["rows"])
    return got


def seed(dsn: str, prefix: str) -> None:
    """Failed runs of three severities (with steps) and two successful runs, committed one by one."""
    commit_run(dsn, "t1", f"{prefix}-timeout", "EXECUTION_TIMEOUT", steps=3)
    commit_run(dsn, "t1", f"{prefix}-crash", "AGENT_CRASH", steps=2)
    commit_run(dsn, "t2", f"{prefix}-budget", "BUDGET_EXCEEDED")
    commit_run(dsn, "t1", f"{prefix}-ok", None, steps=4)
    commit_run(dsn, "t2", f"{prefix}-ok", None)


# ---- 1. one refresh ------------------------------------------------------------------------------


def test_refresh_records_each_view_and_shows_new_commits(db: str, run_cli) -> None:
    seed(db, "r")
    runs, incidents = base_keys(db)
    assert len(runs) == 5 and len(incidents) == 3
    assert view_keys(db) == (set(), set()), "the clone's views should predate the runs"

    before = scalar(db, "SELECT clock_timestamp()")
    result = run_cli("refresh", "--dsn", db, timeout=60)
    after = scalar(db, "SELECT clock_timestamp()")
    assert result.returncode == 0, str(result)
    assert result.stderr == "", str(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 2, str(result)
    assert parse(lines) == {"activity.v_runs_o2": 5, "incidents.v_incidents_o2": 3}
    password = conninfo_to_dict(db).get("password")
    if password:
        assert password not in result.stdout + result.stderr

    recorded = refreshes(db)
    assert [r[0] for r in recorded] == list(VIEWS)
    for view, refreshed_at, duration_ms, row_count, concurrent in recorded:
        assert before <= refreshed_at <= after, (view, refreshed_at, before, after)
        assert duration_ms >= 0
        assert row_count == scalar(db, f"SELECT count(*) FROM {view}")
        assert concurrent is True

    # The views now hold exactly the committed runs and incidents, with their aggregates.
    assert view_keys(db) == (runs, incidents)
    assert rows(db, "SELECT run_id, status, trace_count, step_count, error_step_count FROM activity.v_runs_o2"
                    " WHERE tenant_id = 't1' ORDER BY run_id") == [
        ("r-crash", "failed", 1, 2, 1), ("r-ok", "succeeded", 1, 4, 0), ("r-timeout", "failed", 1, 3, 1)]
    assert rows(db, "SELECT source_run_id, severity, topic, event_count >= 1 FROM incidents.v_incidents_o2"
                    " ORDER BY source_run_id") == [
        ("r-budget", "medium", "active", True), ("r-crash", "critical", "active", True),
        ("r-timeout", "high", "active", True)]

    # Refreshing again changes nothing but the log.
    again = run_cli("refresh", "--dsn", db, timeout=60)
    assert again.returncode == 0, str(again)
    assert parse(again.stdout.splitlines()) == {"activity.v_runs_o2": 5, "incidents.v_incidents_o2": 3}
    assert len(refreshes(db)) == 4
    assert view_keys(db) == (runs, incidents)


# ---- 2. readers are never blocked ----------------------------------------------------------------


def test_readers_are_not_blocked_by_a_refresh_in_progress(db: str, refresher) -> None:
    seed(db, "old")
    proc = refresher()
    assert proc.finish()[0] == 0
    old_count = scalar(db, "SELECT count(*) FROM activity.v_runs_o2")
    assert old_count == 5

    # A long REPEATABLE READ reader that has read the view and keeps its transaction open.
    reader = connect(db)
    reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    blocker = connect(db)
    try:
        assert reader.execute("SELECT count(*) FROM activity.v_runs_o2").fetchone()[0] == old_count
        seed(db, "new")

        # Hold the refresh half-way: it has locked the view and waits for a base table.
        blocker.execute("LOCK TABLE activity.aos_trace_steps IN ACCESS EXCLUSIVE MODE")
        proc = refresher()
        pid, wait_type, statement = wait_until(
            lambda: (s := refresh_session(db, proc.app)) and s[1] == "Lock" and s, "refresh waiting on the blocker")
        assert statement.startswith("CALL aos.refresh_analytics()"), statement
        # CONCURRENTLY: EXCLUSIVE on the view (SELECT still allowed), never ACCESS EXCLUSIVE.
        locks = view_locks(db, pid, "activity.v_runs_o2")
        assert ("ExclusiveLock", True) in locks and all(mode != "AccessExclusiveLock" for mode, _ in locks), locks

        # A second refresh meanwhile (cron, pg_cron, another operator) skips at once, writing nothing.
        started = time.monotonic()
        second = refresher()
        rc, out, err = second.finish()
        assert (rc, err) == (0, ""), f"exit {rc}\n{out}\n{err}"
        assert second.out == [
            "refresh skipped: another refresh of the analytics views is running"], out
        assert time.monotonic() - started < TIMEOUT / 2, "the second refresh waited instead of skipping"
        assert len(refreshes(db)) == 2

        # New readers get through at once: the BI reader, and the API facade that lists from the view.
        with psycopg.connect(db, autocommit=True) as bi:
            bi.execute("SET lock_timeout = '2s'")
            assert bi.execute("SELECT count(*) FROM activity.v_runs_o2").fetchone()[0] == old_count
        with psycopg.connect(db, autocommit=True) as api:
            api.execute("SET lock_timeout = '2s'")
            api.execute("SET ROLE aos_api")
            api.execute("SELECT set_config('aos.tenant_id', 't1', false)")
            page = api.execute("SELECT api.activity_runs()").fetchone()[0]
            assert page["total"] == 3, page
        # The long reader still reads, from its snapshot.
        assert reader.execute("SELECT count(*) FROM activity.v_runs_o2").fetchone()[0] == old_count
        assert proc.proc.poll() is None, "the refresh should still be held by the blocker"

        blocker.commit()  # let the refresh finish
        rc, out, err = proc.finish()
        assert rc == 0, f"exit {rc}\n{out}\n{err}"
        assert parse(proc.out + out.splitlines()) == {"activity.v_runs_o2": 10, "incidents.v_incidents_o2": 6}

        # The long reader is still on its snapshot; a new transaction sees the refreshed view.
        assert reader.execute("SELECT count(*) FROM activity.v_runs_o2").fetchone()[0] == old_count
        reader.commit()
        assert reader.execute("SELECT count(*) FROM activity.v_runs_o2").fetchone()[0] == 10
        reader.commit()
    finally:
        reader.close()
        blocker.close()


# ---- 3. --follow ----------------------------------------------------------------------------------


def test_follow_refreshes_on_events_debounced_and_stops_on_ctrl_c(db: str, refresher) -> None:
    proc = refresher("--follow", "--debounce", str(DEBOUNCE))
    # It refreshes once at start (after it has started to listen).
    assert parse(proc.take(2)) == {"activity.v_runs_o2": 0, "incidents.v_incidents_o2": 0}
    assert len(refreshes(db)) == 2

    # A burst of committed failures (each its own transaction, each several aos_events
    # notifications), well inside one debounce interval.
    burst = 20
    started = time.monotonic()
    for i in range(burst):
        commit_run(db, ("t1", "t2")[i % 2], f"burst-{i}", ("EXECUTION_TIMEOUT", "BUDGET_EXCEEDED")[i % 3 == 0])
    elapsed = time.monotonic() - started
    assert elapsed < DEBOUNCE, f"the burst took {elapsed:.2f}s, not inside one debounce interval"
    notifications = scalar(db, "SELECT count(*) FROM aos.events")
    assert notifications >= 2 * burst

    # The views catch up with everything that was committed...
    runs, incidents = base_keys(db)
    wait_until(lambda: view_keys(db) == (runs, incidents), "views showing the burst", timeout=DEBOUNCE + TIMEOUT)
    # ...and once things are quiet, the burst cost at most two refreshes (leading and trailing), not one per event.
    time.sleep(DEBOUNCE + 1.5)
    after_start = refreshes(db, "activity.v_runs_o2")[1:]
    assert 1 <= len(after_start) <= 2, f"{len(after_start)} refreshes for a burst of {burst} transactions"
    assert len(refreshes(db, "incidents.v_incidents_o2")) == 1 + len(after_start)
    lines = proc.pending()
    assert len(lines) == 2 * len(after_start), lines
    last = parse(lines[-2:])
    assert last == {"activity.v_runs_o2": len(runs), "incidents.v_incidents_o2": len(incidents)}

    # Ctrl-C: a clean stop.
    proc.proc.send_signal(signal.SIGINT)
    rc, out, err = proc.finish()
    assert rc == 0, f"exit {rc}\n{out}\n{err}"
    assert out.splitlines() == ["stopped"], out
    assert "Traceback" not in err and err.strip() == "", err


def test_follow_catches_a_commit_that_sent_no_wake_up(db: str, refresher) -> None:
    """Wake-ups are coalesced: a commit inside aos.event_wakeup.min_interval of the last one sends
    none. --follow still sees its events (it looks every second) and refreshes once for them."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("UPDATE aos.event_wakeup SET notified_at = clock_timestamp(), min_interval = '1 hour'")
    proc = refresher("--follow", "--debounce", "0")
    parse(proc.take(2))
    commit_run(db, "t1", "silent", "EXECUTION_TIMEOUT")
    runs, incidents = base_keys(db)
    wait_until(lambda: view_keys(db) == (runs, incidents), "views showing the silent commit", timeout=TIMEOUT)
    time.sleep(2.5)  # two more looks: nothing new, no more refreshes
    assert len(refreshes(db, "activity.v_runs_o2")) == 2


def test_ctrl_c_during_a_refresh_stops_cleanly(db: str, refresher) -> None:
    proc = refresher("--follow", "--debounce", "0")
    parse(proc.take(2))
    blocker = connect(db)
    try:
        # A table the second view reads and a failing run does not write: the run commits, the
        # refresh it wakes gets stuck on the incidents view.
        blocker.execute("LOCK TABLE incidents.incident_evidence IN ACCESS EXCLUSIVE MODE")
        commit_run(db, "t1", "during", "EXECUTION_TIMEOUT")
        wait_until(lambda: (s := refresh_session(db, proc.app)) and s[1] == "Lock", "refresh held by the blocker")
        proc.proc.send_signal(signal.SIGINT)
        rc, out, err = proc.finish()
        assert rc == 0, f"exit {rc}\n{out}\n{err}"
        assert out.splitlines() == ["stopped"], out
        assert "Traceback" not in err and err.strip() == "", err
        # The interrupted refresh left nothing behind: no session, no log row for it.
        wait_until(lambda: not rows(db, "SELECT 1 FROM pg_stat_activity WHERE application_name = %s", (proc.app,)),
                   "the refresh session gone")
        # One transaction for both views: the interrupted refresh logged nothing, not even the
        # runs view it had refreshed before the stuck one.
        assert [r[0] for r in refreshes(db)] == list(VIEWS)
    finally:
        blocker.close()


@pytest.mark.parametrize("args", [["--debounce", "-1"], ["--follow", "--debounce", "-1"]])
def test_negative_debounce_is_one_error_line(db: str, run_cli, args: list[str]) -> None:
    result = run_cli("refresh", *args, "--dsn", db, timeout=60)
    assert_one_error_line(result, "--debounce")
    assert result.stdout == ""
    assert refreshes(db) == []


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_debounce_is_one_error_line(db: str, run_cli, value: str) -> None:
    # Click's FLOAT accepts both: inf would never refresh again after the first event, nan
    # silently means no debounce at all.
    try:
        result = run_cli("refresh", "--follow", "--debounce", value, "--dsn", db, timeout=5)
    except subprocess.TimeoutExpired:  # run() has killed it
        raise AssertionError(f"--debounce {value} was accepted: still following after 5 s") from None
    assert_one_error_line(result, "--debounce")
    assert refreshes(db) == []
