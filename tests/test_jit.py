"""No JIT on the engine paths, even when the statistics lie and the session asks for JIT everywhere.

A migrated clone gets big tables (runs and incidents loaded with session_replication_role =
replica, autovacuum off, never analyzed: the planner estimates from page counts), then run
completions through the worker API (start_run, finish_run to failed: the three engines fire)
are timed on two sessions, interleaved: one with jit on and every JIT threshold at 1 (a cached
plan keeps its JIT decision, so each mode has a session of its own), one with jit off. Every
engine, action and worker function pins jit = off (sql/tests/53-jit-off.sql), so both cost the
same; a function that missed it would compile each of its queries (tens of milliseconds with
inlining and optimization on) and the ratio would be many times 1.5. Where auto_explain can be
loaded, the plans of every nested statement are checked too: none shows a JIT section.
"""

from __future__ import annotations

import statistics
import time

import psycopg
import pytest

RUNS = 200_000
INCIDENTS = 50_000
COMPLETIONS = 30  # per session, after the warm-up
WARM_UP = 3
# The top-level call (SELECT activity.finish_run(...)) costs 0.25: below 1, so only the
# statements inside the functions could ever be compiled.
WORST_CASE = ("SET jit = on; SET jit_above_cost = 1; SET jit_inline_above_cost = 1; "
              "SET jit_optimize_above_cost = 1")


@pytest.fixture
def big(migrated_dsn: str) -> str:
    with psycopg.connect(migrated_dsn, autocommit=True) as conn:
        conn.execute("SELECT aos.register_tenant(t) FROM unnest(ARRAY['t1', 't2', 't3']) AS t")
        for table in ("activity.runs", "incidents.incidents", "aos.events", "policies.policy_proposals"):
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")  # no engines: just rows
            conn.execute(
                """INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, created_at)
                   SELECT 't' || (1 + g %% 3), 'bulk-' || g, 'agent-' || (g %% 50),
                          CASE WHEN g %% 4 = 0 THEN 'failed' ELSE 'succeeded' END,
                          CASE WHEN g %% 4 = 0 THEN 'BUDGET_EXCEEDED' END,
                          now() - g * INTERVAL '1 second'
                   FROM generate_series(1, %s) AS g""", (RUNS,))
            conn.execute(
                """INSERT INTO incidents.incidents (tenant_id, source_run_id, title, severity, category, error_code,
                                                    created_at)
                   SELECT 't' || (1 + g %% 3), 'bulk-' || g, 'bulk failure', 'medium', 'budget', 'BUDGET_EXCEEDED',
                          now() - g * INTERVAL '1 second'
                   FROM generate_series(4, %s, 4) AS g""", (INCIDENTS * 4,))
    return migrated_dsn


def session(dsn: str, settings: str) -> psycopg.Connection:
    conn = psycopg.connect(dsn, autocommit=True)
    for statement in settings.split(";"):
        if statement.strip():
            conn.execute(statement)
    return conn


def complete(conn: psycopg.Connection, run_id: str) -> float:
    """Start a run, then time its completion as failed (the engines fire on it), in seconds."""
    conn.execute("SELECT activity.start_run('t1', %s, 'agent-jit', 'goal')", (run_id,))
    start = time.perf_counter()
    conn.execute("""SELECT activity.finish_run('t1', %s, 'failed', '{"error_code": "EXECUTION_TIMEOUT"}')""",
                 (run_id,))
    return time.perf_counter() - start


def test_run_completions_never_jit_even_with_stale_statistics_and_jit_forced(big: str) -> None:
    with psycopg.connect(big, autocommit=True) as conn:
        # The planner believes the tables are big, and has no statistics to correct it.
        estimated = conn.execute(
            "EXPLAIN (FORMAT JSON) SELECT * FROM activity.runs WHERE agent_id = 'agent-1'").fetchone()[0]
        assert estimated[0]["Plan"]["Total Cost"] > 1000, estimated
        assert conn.execute("SELECT count(*) FROM pg_stats WHERE schemaname = 'activity' AND tablename = 'runs'"
                            ).fetchone()[0] == 0
        top = conn.execute(
            """EXPLAIN (FORMAT JSON) SELECT activity.finish_run('t1', 'x', 'failed', '{}')""").fetchone()[0]
        assert top[0]["Plan"]["Total Cost"] < 1, top

    jit_on, jit_off = session(big, WORST_CASE), session(big, "SET jit = off")
    try:
        times: dict[str, list[float]] = {"on": [], "off": []}
        for i in range(WARM_UP + COMPLETIONS):
            for mode, conn in (("on", jit_on), ("off", jit_off)) if i % 2 else (("off", jit_off), ("on", jit_on)):
                took = complete(conn, f"jit-{mode}-{i}")
                if i >= WARM_UP:
                    times[mode].append(took)
    finally:
        jit_on.close()
        jit_off.close()
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    ratio = on / off
    print(f"median completion: jit forced {on * 1000:.2f} ms, jit off {off * 1000:.2f} ms, ratio {ratio:.2f}")
    assert ratio < 1.5, (f"a completion with JIT forced takes {ratio:.1f}x one without "
                         f"({on * 1000:.1f} ms against {off * 1000:.1f} ms): some engine path compiles")


def test_no_nested_statement_of_a_completion_is_compiled(big: str) -> None:
    conn = session(big, WORST_CASE)
    try:
        try:
            conn.execute("LOAD 'auto_explain'")
        except psycopg.Error:
            pytest.skip("auto_explain is not installed on this server")
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        for statement in ("SET auto_explain.log_min_duration = 0", "SET auto_explain.log_nested_statements = on",
                          "SET auto_explain.log_analyze = on", "SET client_min_messages = log"):
            conn.execute(statement)
        for i in range(3):
            conn.execute("SELECT activity.start_run('t1', %s, 'agent-jit', 'goal')", (f"explained-{i}",))
            conn.execute("""SELECT activity.finish_run('t1', %s, 'failed', '{"error_code": "EXECUTION_TIMEOUT"}')""",
                         (f"explained-{i}",))
    finally:
        conn.close()
    plans = [n for n in notices if "Query Text:" in n]
    assert len(plans) > 20, f"auto_explain logged only {len(plans)} plans"
    compiled = [p for p in plans if "JIT:" in p]
    assert not compiled, f"{len(compiled)} of {len(plans)} statements were compiled, e.g.:\n{compiled[0]}"
