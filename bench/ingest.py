"""Ingest benchmark (SPEC section 11): engines on versus the same writes with no
triggers, row-level security or grants, measured in the same run.

    .venv/bin/python bench/ingest.py [--dsn DSN] [--runs-per-client N] [--copy-runs N]

Prints, for each workload, the throughput with engines, without, and their
ratio against the SPEC's bar:
  ingest  4 clients, single-run transactions, 3 steps a run, 5% failures   (bar 0.7)
  copy    one COPY of many runs, 5% failed                                (bar 0.5)
  single  one successful run per transaction, one client                  (reported)
Both databases are created fresh on the server and dropped afterwards.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))

import psycopg  # noqa: E402

from aosdb import migrations  # noqa: E402
from aosdb.config import resolve_dsn  # noqa: E402
from aosdb.db import throwaway_database  # noqa: E402

TENANTS = 2000  # spread so dg-003 (100 runs a minute per tenant) is not what we measure
FAILURE_EVERY = 20  # 5%
ACTIVITY_TABLES = ("activity.runs", "activity.aos_traces", "activity.aos_trace_steps", "aos.tenants",
                   "incidents.incidents", "policies.policy_proposals", "policies.prevention_records")


def _prepare(dsn: str, engines: bool) -> None:
    migrations.migrate(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO aos.tenants (tenant_id, name) SELECT 'b' || g, 'bench' FROM generate_series(1, %s) g",
                     (TENANTS,))
        if not engines:
            for table in ACTIVITY_TABLES:
                conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
                conn.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        conn.execute("VACUUM ANALYZE")


def _session(dsn: str, engines: bool) -> psycopg.Connection:
    conn = psycopg.connect(dsn)
    if engines:  # the worker's own rights and RLS; the baseline writes as the owner
        conn.execute("SET ROLE aos_worker")
        conn.commit()
    return conn


def _one_run(conn: psycopg.Connection, client: int, i: int) -> None:
    tenant = f"b{(client * 7919 + i) % TENANTS + 1}"
    run_id = f"c{client}-r{i}"
    failed = i % FAILURE_EVERY == 0
    with conn.transaction():
        conn.execute("INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, started_at) "
                     "VALUES (%s, %s, 'bench-agent', 'running', now())", (tenant, run_id))
        conn.execute("INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id) VALUES (%s, %s, %s)",
                     (tenant, run_id, run_id))
        for step in range(3):
            conn.execute("INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status) "
                         "VALUES (%s, %s, %s, 'search', %s)",
                         (tenant, run_id, step, "failure" if failed and step == 2 else "success"))
        conn.execute("UPDATE activity.runs SET status = %s, error_code = %s, completed_at = now(), "
                     "input_tokens = 500, output_tokens = 200, estimated_cost_usd = 0.01 "
                     "WHERE tenant_id = %s AND run_id = %s",
                     ("failed" if failed else "succeeded", "EXECUTION_TIMEOUT" if failed else None, tenant, run_id))


def ingest(dsn: str, engines: bool, clients: int, per_client: int, round_no: int = 0) -> float:
    """Runs per second, `clients` concurrent sessions, one run per transaction."""
    conns = [_session(dsn, engines) for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def work(client: int) -> None:
        barrier.wait()
        for i in range(per_client):
            _one_run(conns[client], client, round_no * per_client + i)

    threads = [threading.Thread(target=work, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    return clients * per_client / elapsed


def copy_load(dsn: str, engines: bool, runs: int, round_no: int = 0) -> float:
    """Runs per second of one COPY of terminal runs."""
    buf = io.StringIO()
    for i in range(runs):
        # Tenant and failure independent: every tenant sees the same 5% failure rate.
        failed = (i // TENANTS + i) % FAILURE_EVERY == 0
        buf.write(f"b{i % TENANTS + 1}\tcopy-{i}\tbench-agent\t{'failed' if failed else 'succeeded'}\t"
                  f"{'EXECUTION_TIMEOUT' if failed else chr(92) + 'N'}\t300\t100\t0.002\n".replace("copy-", f"copy{round_no}-"))
    data = buf.getvalue()
    with _session(dsn, engines) as conn:
        start = time.perf_counter()
        with conn.cursor().copy("COPY activity.runs (tenant_id, run_id, agent_id, status, error_code, input_tokens, "
                                "output_tokens, estimated_cost_usd) FROM STDIN") as copy:
            copy.write(data)
        conn.commit()
        elapsed = time.perf_counter() - start
    return runs / elapsed


def single_latency(dsn: str, engines: bool, n: int) -> float:
    """Median milliseconds of a one-row INSERT of a successful run, committed."""
    samples = []
    with _session(dsn, engines) as conn:
        for i in range(n):
            start = time.perf_counter()
            conn.execute("INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) "
                         "VALUES (%s, %s, 'bench-agent', 'succeeded')", (f"b{i % TENANTS + 1}", f"single-{i}"))
            conn.commit()
            samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--runs-per-client", type=int, default=500)
    parser.add_argument("--copy-runs", type=int, default=50000)
    parser.add_argument("--single", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3, help="Repeat each workload; the median ratio is reported.")
    args = parser.parse_args()
    server = resolve_dsn(args.dsn)
    results = {}
    with throwaway_database(server, "aosdb_bench_engines") as on, throwaway_database(server, "aosdb_bench_bare") as off:
        _prepare(on, engines=True)
        _prepare(off, engines=False)
        # Alternate sides round by round so neither always runs on a warmer machine;
        # report the median of each side.
        for name, run in (("ingest", lambda db, eng, k: ingest(db, eng, args.clients, args.runs_per_client, k)),
                          ("copy", lambda db, eng, k: copy_load(db, eng, args.copy_runs, k))):
            eng_rates, bare_rates = [], []
            for k in range(args.rounds):
                eng_rates.append(run(on, True, k))
                bare_rates.append(run(off, False, k))
            results[name] = (statistics.median(eng_rates), statistics.median(bare_rates))
        results["single"] = (single_latency(on, True, args.single), single_latency(off, False, args.single))
    print(f"{'workload':<8} {'engines':>14} {'bare':>14} {'ratio':>7}  bar")
    for name, bar in (("ingest", 0.7), ("copy", 0.5)):
        eng, bare = results[name]
        ratio = eng / bare
        print(f"{name:<8} {eng:>10.0f} r/s {bare:>10.0f} r/s {ratio:>7.2f}  >= {bar} {'ok' if ratio >= bar else 'BELOW'}")
    eng, bare = results["single"]
    print(f"{'single':<8} {eng:>11.3f} ms {bare:>11.3f} ms {eng / bare:>7.2f}  (median latency, lower is better)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
