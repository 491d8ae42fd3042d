"""How long a changed view file blocks the readers of activity.v_runs_o2.

    .venv/bin/python bench/view_swap.py [--dsn DSN] [--runs N] [--rounds N]

In a throwaway database with --runs runs (default 300,000; with traces and 3
steps each, loaded with the engines off), a reader queries the view in a loop
(one tenant's newest runs, as a runs list does) while the view is replaced,
interleaved, --rounds times (default 5) each way:

  rebuild  what `aosdb migrate` did before: DROP MATERIALIZED VIEW ... CASCADE and
           the file's CREATE ... WITH DATA, indexes, grants and views, in one
           transaction (readers wait for the whole build);
  swap     what it does now: the view built WITH DATA beside the live one, then
           swapped in by one short transaction (view_swap.py).

It prints, per way, the median of each round's longest reader wait (the slowest
reader query while the view was replaced) and of the replacement's own duration,
and the ratio of the longest waits. The reader's latency outside any replacement
is the baseline both are read against.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))

import psycopg  # noqa: E402

from aosdb import bookkeeping, view_swap  # noqa: E402
from aosdb.config import resolve_dsn, sql_dir  # noqa: E402
from aosdb.db import throwaway_database  # noqa: E402
from aosdb.migrations import migrate  # noqa: E402

VIEW_FILE = "views/activity_v_runs_o2.sql"
READ = ("SELECT run_id FROM activity.v_runs_o2 WHERE tenant_id = 't007' "
        "ORDER BY created_at DESC, run_id DESC LIMIT 20")


def load(dsn: str, runs: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # the engines stay out of the load
        conn.execute("INSERT INTO aos.tenants (tenant_id, name) SELECT 't' || lpad(t::text, 3, '0'), 'bench' "
                     "FROM generate_series(1, 50) AS t")
        conn.execute(f"""INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, created_at, started_at,
                             completed_at, duration_ms, input_tokens, output_tokens)
                         SELECT 't' || lpad((g % 50 + 1)::text, 3, '0'), 'run-' || g, 'agent-' || g % 20, 'succeeded',
                             now() - g * INTERVAL '1 s', now() - g * INTERVAL '1 s',
                             now() - g * INTERVAL '1 s' + INTERVAL '2 s', 2000, 100, 50
                         FROM generate_series(1, {runs}) AS g""")
        conn.execute("""INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id, status, started_at, completed_at)
                        SELECT tenant_id, 'tr-' || run_id, run_id, 'completed', started_at, completed_at
                        FROM activity.runs""")
        conn.execute("""INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status,
                            cost_usd, duration_ms, occurred_at)
                        SELECT t.tenant_id, t.trace_id, s, 'skill', 'success', 0.001, 10, t.started_at
                        FROM activity.aos_traces AS t CROSS JOIN generate_series(0, 2) AS s""")
        conn.execute("VACUUM ANALYZE")
        conn.execute("REFRESH MATERIALIZED VIEW activity.v_runs_o2")


class Reader:
    """Queries the view back to back; keeps each query's start time and latency."""

    def __init__(self, dsn: str):
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.conn.execute(READ).fetchall()
            self.samples.append((started, time.monotonic() - started))
            time.sleep(0.002)

    def longest_between(self, start: float, end: float) -> float:
        return max((lat for t, lat in self.samples if start <= t + lat and t <= end), default=0.0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.conn.close()


def rebuild(dsn: str) -> None:
    """The replacement `aosdb migrate` made before: everything in one transaction."""
    text = (sql_dir() / VIEW_FILE).read_text()
    with psycopg.connect(dsn) as conn:
        conn.execute("SET ROLE aos_owner")
        conn.execute("DROP MATERIALIZED VIEW activity.v_runs_o2 CASCADE")
        conn.execute(text)
        conn.commit()


def swap(dsn: str) -> None:
    """The replacement `aosdb migrate` makes now: forget the file's checksum, migrate."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DELETE FROM {bookkeeping.SCHEMA}.repeatable_migrations WHERE path = %s", (VIEW_FILE,))
    migrate(dsn)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn")
    parser.add_argument("--runs", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with throwaway_database(resolve_dsn(args.dsn), "aosdb_bench_swap") as dsn:
        migrate(dsn)
        print(f"loading {args.runs} runs ...", flush=True)
        load(dsn, args.runs)
        reader = Reader(dsn)
        time.sleep(2)
        quiet_end = time.monotonic()
        results: dict[str, list[tuple[float, float]]] = {"rebuild": [], "swap": []}
        try:
            for _ in range(args.rounds):
                for name, way in (("rebuild", rebuild), ("swap", swap)):
                    time.sleep(0.5)
                    start = time.monotonic()
                    way(dsn)
                    end = time.monotonic()
                    time.sleep(0.3)  # a reader that waited finishes after the replacement
                    results[name].append((reader.longest_between(start, end + 0.3), end - start))
        finally:
            reader.close()
        baseline = statistics.median(lat for t, lat in reader.samples if t < quiet_end)
        print(f"reader alone: median {baseline * 1000:.2f} ms per query ({args.runs} runs)")
        for name, rows in results.items():
            waits = [w for w, _ in rows]
            durations = [d for _, d in rows]
            print(f"{name:<8} longest reader wait: median {statistics.median(waits) * 1000:9.1f} ms "
                  f"(rounds: {', '.join(f'{w * 1000:.0f}' for w in waits)}); "
                  f"replacement took median {statistics.median(durations) * 1000:.0f} ms")
        ratio = statistics.median(w for w, _ in results["rebuild"]) / statistics.median(w for w, _ in results["swap"])
        print(f"longest reader wait, rebuild / swap: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
