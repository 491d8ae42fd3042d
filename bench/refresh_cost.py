"""What one scheduled refresh costs: CALL aos.refresh_analytics() at --runs runs.

    .venv/bin/python bench/refresh_cost.py [--dsn DSN] [--runs N] [--failed-every N] [--rounds N]

In a throwaway database (dropped at the end) it loads --runs runs (default 1,000,000) across 50
tenants, each with one trace of 3 steps, with the user triggers off (session_replication_role =
replica, a superuser's setting) so that the load is one INSERT ... SELECT per table; then every
--failed-every-th run (default 100) fails through the engines (triggers on), which opens its
incident. After VACUUM ANALYZE and one refresh that fills the views, each of --rounds rounds
(default 5) commits 1,000 new runs and times CALL aos.refresh_analytics() from the client.

It prints the median and the range of the CALL's wall time, the median of what the procedure
recorded per view in aos.view_refreshes, and the size of the views. The refresh recomputes
both views in full and writes only the rows that differ (CONCURRENTLY), so its cost grows with
the number of runs, not with the number of changes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))

import psycopg  # noqa: E402

from aosdb.config import resolve_dsn  # noqa: E402
from aosdb.db import throwaway_database  # noqa: E402
from aosdb.migrations import Output, migrate  # noqa: E402
from aosdb.migration_session import Timeouts  # noqa: E402


def load(dsn: str, runs: int, failed_every: int) -> float:
    started = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # the engines stay out of the bulk load
        conn.execute("INSERT INTO aos.tenants (tenant_id, name) SELECT 't' || lpad(t::text, 3, '0'), 'bench' "
                     "FROM generate_series(1, 50) AS t")
        conn.execute(f"""INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, created_at, started_at,
                             completed_at, duration_ms, input_tokens, output_tokens, estimated_cost_usd)
                         SELECT 't' || lpad((g % 50 + 1)::text, 3, '0'), 'run-' || g, 'agent-' || g % 20, 'succeeded',
                             now() - g * INTERVAL '1 s', now() - g * INTERVAL '1 s',
                             now() - g * INTERVAL '1 s' + INTERVAL '2 s', 2000, 100, 50, 0.003
                         FROM generate_series(1, {runs}) AS g WHERE g % {failed_every} <> 0""")
        conn.execute("""INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id, status, started_at, completed_at)
                        SELECT tenant_id, 'tr-' || run_id, run_id, 'completed', started_at, completed_at
                        FROM activity.runs""")
        conn.execute("""INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status,
                            cost_usd, duration_ms, occurred_at)
                        SELECT t.tenant_id, t.trace_id, s, 'skill', 'success', 0.001, 10, t.started_at
                        FROM activity.aos_traces AS t CROSS JOIN generate_series(0, 2) AS s""")
        conn.execute("RESET session_replication_role")
        # The failures go through the engines: each opens an incident (and its events).
        conn.execute(f"""INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, created_at)
                         SELECT 't' || lpad((g % 50 + 1)::text, 3, '0'), 'run-' || g, 'agent-' || g % 20, 'failed',
                             (ARRAY['EXECUTION_TIMEOUT', 'AGENT_CRASH', 'BUDGET_EXCEEDED'])[g / {failed_every} % 3 + 1],
                             now() - g * INTERVAL '1 s'
                         FROM generate_series({failed_every}, {runs}, {failed_every}) AS g""")
        conn.execute("VACUUM ANALYZE")
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="server to use (a throwaway database is created); default: as aosdb")
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--failed-every", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with throwaway_database(resolve_dsn(args.dsn), "aosdb_bench_refresh") as dsn:
        migrate(dsn, Output(notice=lambda _m: None, warning=print), Timeouts(lock="5s", statement="30min"))
        print(f"loading {args.runs:,} runs (every {args.failed_every}th failed, through the engines) ...")
        print(f"loaded in {load(dsn, args.runs, args.failed_every):.1f} s")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CALL aos.refresh_analytics()")  # fills the views (built empty by migrate)
            sizes = conn.execute("""SELECT (SELECT count(*) FROM activity.v_runs_o2), (SELECT count(*) FROM
                                    incidents.v_incidents_o2), pg_size_pretty(pg_total_relation_size('activity.v_runs_o2')
                                    + pg_total_relation_size('incidents.v_incidents_o2'))""").fetchone()
            print(f"views: {sizes[0]:,} runs, {sizes[1]:,} incidents, {sizes[2]} with their indexes")
            first = conn.execute("SELECT coalesce(max(id), 0) FROM aos.view_refreshes").fetchone()[0]
            walls = []
            for r in range(args.rounds):
                conn.execute(f"""INSERT INTO activity.runs (tenant_id, run_id, agent_id, status)
                                 SELECT 't' || lpad((g % 50 + 1)::text, 3, '0'), 'new-{r}-' || g, 'agent-1', 'succeeded'
                                 FROM generate_series(1, 1000) AS g""")
                started = time.monotonic()
                conn.execute("CALL aos.refresh_analytics()")
                walls.append((time.monotonic() - started) * 1000)
            per_view = conn.execute(
                """SELECT view_name, percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms)
                   FROM aos.view_refreshes WHERE id > %s GROUP BY view_name ORDER BY view_name""",
                (first,)).fetchall()  # fmt: skip
        print(f"CALL aos.refresh_analytics() after 1,000 new runs, {args.rounds} rounds: "
              f"median {statistics.median(walls):.0f} ms (min {min(walls):.0f}, max {max(walls):.0f})")
        for view, ms in per_view:
            print(f"  {view:<26} median {ms:.0f} ms (REFRESH ... CONCURRENTLY, as recorded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
