"""Engines against bare tables, server-bound: pgbench (a C client) and psql, nothing else.

    python3 bench/engines.py [--admin-dsn DSN] [--template DB] [--pg-bin DIR]
                             [--clients 1,4,8] [--seconds 10] [--repeats 3] [--storms 2000,8000]

Two clones of one migrated database: `pb_eng` with every engine, `pb_bare` with user triggers and
row-level security switched off (foreign keys, which are system triggers, stay in both). Both get
2000 tenants; every write is made as aos_worker. For each workload, client count and repeat the
two sides run back to back, their order alternating, and the report gives the median tps of each
side and the ratio engines / bare:

  ok     one successful run per transaction            (bar: >= 0.6 at 1 and 4 clients; goal 0.7)
  fail   one failed run per transaction                (bar: >= 0.35 at 4 clients; >= 0.25 at 16)
  life   start, trace, 3 steps, finish (5% fail), one transaction         (bar: >= 0.85)
  outage one failed run per transaction, every client on one tenant and one code (no bar: its
         transactions take turns on the tenant's pending proposal, see the README)
  lock%  share of active backends waiting on a heavyweight lock, sampled every 100 ms while the
         workload runs (bar: < 5% for `fail` at 8 clients)
  storm  one INSERT of N failed runs of one tenant, milliseconds (bars: 8000 costs <= 5x 2000;
         engines >= 0.1x bare speed)
  copy   one COPY (psql \\copy) of 40,000 terminal runs over 2000 tenants, 5% failed (bar: >= 0.5)

Only the standard library: it runs wherever psql and pgbench do (see bench/device.sh).
Without --template it migrates one with .venv/bin/aosdb; without --admin-dsn it uses the
embedded cluster (`aosdb db url`).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCRIPTS = HERE / "pgbench"
TENANTS = 2000
SIDES = ("eng", "bare")
WORKLOADS = {"ok": "run_ok.sql", "fail": "run_fail.sql", "life": "run_life.sql", "outage": "run_outage.sql"}
DOMAIN_SCHEMAS = ("aos", "activity", "incidents", "policies")
COPY_RUNS = 40_000


def conninfo(base: str, **params: str) -> str:
    """`base` (a key=value conninfo or a URL) with params added; libpq lets the last one win."""
    extra = " ".join(f"{k}={v}" for k, v in params.items())
    if "://" in base:
        sep = "&" if "?" in base else "?"
        return base + sep + "&".join(f"{k}={v}" for k, v in params.items())
    return f"{base} {extra}"


class Server:
    def __init__(self, admin_dsn: str, pg_bin: Path):
        self.admin = admin_dsn
        self.bin = pg_bin

    def dsn(self, db: str) -> str:
        return conninfo(self.admin, dbname=db)

    def psql(self, db: str, sql: str, *, role: str | None = None) -> str:
        """Run SQL text through psql (ON_ERROR_STOP); returns stdout."""
        env = dict(os.environ, PGOPTIONS=f"-c role={role}" if role else "")
        proc = subprocess.run([str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", self.dsn(db)],
                              input=sql, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"psql failed on {db}: {proc.stderr.strip()}")
        return proc.stdout

    def timed(self, db: str, sql: str, *, role: str) -> float:
        """Milliseconds of the last statement of `sql`, as psql's \\timing reports it (it includes the commit)."""
        out = self.psql(db, "\\timing on\n" + sql, role=role)
        times = re.findall(r"Time: ([0-9.]+) ms", out)
        return float(times[-1])

    def pgbench(self, db: str, script: Path, clients: int, seconds: int, *, role: str | None, appname: str,
                defines: dict[str, str] | None = None) -> float:
        env = dict(os.environ, PGOPTIONS=f"-c role={role}" if role else "", PGAPPNAME=appname)
        args = [str(self.bin / "pgbench"), "-n", "-f", str(script), "-c", str(clients),
                "-j", str(min(clients, os.cpu_count() or 1)), "-T", str(seconds)]
        for key, value in (defines or {}).items():
            args += ["-D", f"{key}={value}"]
        proc = subprocess.run([*args, self.dsn(db)], capture_output=True, text=True, env=env, check=False)
        match = re.search(r"^tps = ([0-9.]+)", proc.stdout, re.M)
        if proc.returncode != 0 or not match:
            raise SystemExit(f"pgbench {script.name} on {db} failed:\n{proc.stdout}\n{proc.stderr}")
        return float(match.group(1))


def prepare(server: Server, template: str) -> None:
    server.psql("postgres", "".join(
        f"DROP DATABASE IF EXISTS pb_{side} WITH (FORCE);\nCREATE DATABASE pb_{side} TEMPLATE {template};\n"
        for side in SIDES) + "DROP DATABASE IF EXISTS pb_meta WITH (FORCE);\nCREATE DATABASE pb_meta;\n")
    server.psql("pb_meta", "CREATE TABLE lock_samples (point int, waiting int, active int);")
    for side in SIDES:
        server.psql(f"pb_{side}", f"""
            INSERT INTO aos.tenants (tenant_id, name) SELECT 'b' || g, 'bench' FROM generate_series(1, {TENANTS}) g;
            CREATE SEQUENCE pb_seq;
            GRANT USAGE ON SEQUENCE pb_seq TO aos_worker;
        """)
    tables = server.psql("pb_bare", "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
                                    f"WHERE schemaname IN ({', '.join(repr(s) for s in DOMAIN_SCHEMAS)})").split()
    server.psql("pb_bare", "".join(f"ALTER TABLE {t} DISABLE TRIGGER USER;\nALTER TABLE {t} DISABLE ROW LEVEL SECURITY;\n"
                                   for t in tables))
    for side in SIDES:
        server.psql(f"pb_{side}", "VACUUM ANALYZE;")


class LockSampler:
    """A one-client pgbench that samples pg_stat_activity of one database every 100 ms into pb_meta."""

    def __init__(self, server: Server, db: str, point: int, seconds: int, workdir: Path):
        script = workdir / f"sample_{db}.sql"
        script.write_text(
            "INSERT INTO lock_samples (point, waiting, active)\n"
            "SELECT :point, count(*) FILTER (WHERE wait_event_type = 'Lock'), count(*) FROM pg_stat_activity\n"
            f"WHERE datname = '{db}' AND state = 'active' AND application_name = 'pb_load';\n"
            "\\sleep 100 ms\n")
        self.thread = threading.Thread(target=server.pgbench, args=("pb_meta", script, 1, seconds),
                                       kwargs={"role": None, "appname": "pb_sampler", "defines": {"point": str(point)}})

    def __enter__(self) -> "LockSampler":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.thread.join()


def lock_share(server: Server, point: int) -> float:
    waiting, active = server.psql("pb_meta", "SELECT coalesce(sum(waiting), 0), coalesce(sum(active), 0) "
                                             f"FROM lock_samples WHERE point = {point}").strip().split("|")
    return 100.0 * int(waiting) / int(active) if int(active) else 0.0


def storm(server: Server, side: str, n: int, label: str) -> float:
    tenant = f"storm-{label}"
    server.psql(f"pb_{side}", f"INSERT INTO aos.tenants (tenant_id, name) VALUES ('{tenant}', 'storm');")
    return server.timed(f"pb_{side}", "INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code) "
                                      f"SELECT '{tenant}', 's' || g, 'agent', 'failed', 'EXECUTION_TIMEOUT' "
                                      f"FROM generate_series(1, {n}) AS g;\n", role="aos_worker")


def copy_load(server: Server, side: str, label: str, workdir: Path) -> float:
    data = workdir / "copy.tsv"
    if not data.exists():
        with data.open("w") as out:
            for i in range(COPY_RUNS):
                failed = (i // TENANTS + i) % 20 == 0  # 5%, spread over every tenant
                code = "EXECUTION_TIMEOUT" if failed else "\\N"
                out.write(f"b{i % TENANTS + 1}\tRUN-{i}\tagent\t{'failed' if failed else 'succeeded'}\t{code}\t300\t100\t0.002\n")
    rewritten = workdir / f"copy_{label}.tsv"
    rewritten.write_text(data.read_text().replace("\tRUN-", f"\tc{label}-"))
    return server.timed(f"pb_{side}", "\\copy activity.runs (tenant_id, run_id, agent_id, status, error_code, "
                                      f"input_tokens, output_tokens, estimated_cost_usd) FROM '{rewritten}'\n",
                        role="aos_worker")


def verdict(ratio: float, bar: float | None, above: bool = True) -> str:
    if bar is None:
        return ""
    ok = ratio >= bar if above else ratio <= bar
    return f"{'>=' if above else '<='} {bar:<5} {'ok' if ok else 'BELOW' if above else 'ABOVE'}"


def bar_for(workload: str, clients: int) -> float | None:
    if workload == "ok" and clients in (1, 4):
        return 0.6
    if workload == "fail" and clients == 4:
        return 0.35
    if workload == "fail" and clients >= 16:
        return 0.25
    if workload == "life":
        return 0.85
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-dsn", help="superuser DSN of the server (default: the embedded cluster)")
    parser.add_argument("--template", help="a migrated database to clone (default: migrate pb_template)")
    parser.add_argument("--pg-bin", help="directory holding pgbench (default: AOSDB_PG_BIN, else aosdb's server binaries)")
    parser.add_argument("--clients", default="1,4,8")
    parser.add_argument("--workloads", default="ok,fail,life,outage")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--storms", default="2000,8000", help="sizes of one-statement storms ('' for none)")
    parser.add_argument("--copy", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--warmup", type=int, default=3, help="seconds of each workload on each side before measuring")
    parser.add_argument("--prepare-only", action="store_true",
                        help="create pb_eng and pb_bare and stop (to profile one side by hand)")
    args = parser.parse_args()

    admin = args.admin_dsn or subprocess.run([str(ROOT / ".venv/bin/aosdb"), "db", "url"], capture_output=True,
                                             text=True, check=True).stdout.strip()
    pg_bin = args.pg_bin or subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "aosdb.pgbin", "bin"],
                                           capture_output=True, text=True, check=True).stdout.strip()
    server = Server(admin, Path(pg_bin))
    template = args.template
    if not template:
        template = "pb_template"
        server.psql("postgres", f"DROP DATABASE IF EXISTS {template} WITH (FORCE);\nCREATE DATABASE {template};\n")
        subprocess.run([str(ROOT / ".venv/bin/aosdb"), "migrate", "--dsn", server.dsn(template)], check=True,
                       stdout=subprocess.DEVNULL)
    prepare(server, template)
    if args.prepare_only:
        return 0
    print(f"server: {server.psql('postgres', 'SHOW server_version').strip()}, {os.cpu_count()} cpus; "
          f"{args.seconds} s per point, {args.repeats} repeats, sides interleaved", flush=True)

    clients = [int(c) for c in args.clients.split(",") if c]
    workloads = [w for w in args.workloads.split(",") if w]
    tps: dict[tuple, list[float]] = {}
    locks: dict[tuple, list[float]] = {}
    point = 0
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o755)
        # Warm both sides (caches, catalogs) before the first measured point.
        for workload in workloads if args.warmup > 0 else ():
            for side in SIDES:
                server.pgbench(f"pb_{side}", SCRIPTS / WORKLOADS[workload], max(clients), args.warmup,
                               role="aos_worker", appname="pb_warmup")
        for rep in range(args.repeats):
            for workload in workloads:
                for c in clients:
                    for side in (SIDES if rep % 2 == 0 else SIDES[::-1]):
                        point += 1
                        # Every point starts right after a checkpoint: both sides pay the same full-page writes.
                        server.psql("postgres", "CHECKPOINT;")
                        with LockSampler(server, f"pb_{side}", point, args.seconds, workdir):
                            rate = server.pgbench(f"pb_{side}", SCRIPTS / WORKLOADS[workload], c, args.seconds,
                                                  role="aos_worker", appname="pb_load")
                        tps.setdefault((workload, c, side), []).append(rate)
                        locks.setdefault((workload, c, side), []).append(lock_share(server, point))
                        print(f"  rep {rep + 1} {workload:<5} clients={c:<3} {side:<5} {rate:10.1f} tps  "
                              f"lock-wait {locks[(workload, c, side)][-1]:5.1f}%", flush=True)
        sizes = [int(n) for n in args.storms.split(",") if n]
        storms: dict[tuple, list[float]] = {}
        copies: dict[str, list[float]] = {}
        for rep in range(args.repeats):
            for n in sizes:
                for side in (SIDES if rep % 2 == 0 else SIDES[::-1]):
                    server.psql("postgres", "CHECKPOINT;")
                    ms = storm(server, side, n, f"{n}-{rep}-{side}")
                    storms.setdefault((n, side), []).append(ms)
                    print(f"  rep {rep + 1} storm n={n:<6} {side:<5} {ms:10.1f} ms", flush=True)
            if args.copy:
                for side in (SIDES if rep % 2 == 0 else SIDES[::-1]):
                    server.psql("postgres", "CHECKPOINT;")
                    ms = copy_load(server, side, f"{rep}{side}", workdir)
                    copies.setdefault(side, []).append(ms)
                    print(f"  rep {rep + 1} copy {COPY_RUNS} {side:<5} {ms:10.1f} ms", flush=True)

    med = statistics.median
    print(f"\n{'workload':<8} {'clients':>7} {'engines tps':>12} {'bare tps':>10} {'ratio':>6}  {'bar':<12} "
          f"{'lock-wait eng':>13} {'bare':>6}")
    for workload in workloads:
        for c in clients:
            eng, bare = med(tps[(workload, c, "eng")]), med(tps[(workload, c, "bare")])
            ratio = eng / bare
            print(f"{workload:<8} {c:>7} {eng:>12.0f} {bare:>10.0f} {ratio:>6.2f}  {verdict(ratio, bar_for(workload, c)):<12} "
                  f"{med(locks[(workload, c, 'eng')]):>12.1f}% {med(locks[(workload, c, 'bare')]):>5.1f}%")
    if storms:
        print(f"\n{'storm':<8} {'runs':>7} {'engines ms':>12} {'bare ms':>10} {'speed':>6}  bar")
        for n in sizes:
            eng, bare = med(storms[(n, "eng")]), med(storms[(n, "bare")])
            print(f"{'storm':<8} {n:>7} {eng:>12.1f} {bare:>10.1f} {bare / eng:>6.2f}  {verdict(bare / eng, 0.1)}")
        if len(sizes) >= 2:
            small, large = sizes[0], sizes[-1]
            growth = med(storms[(large, "eng")]) / med(storms[(small, "eng")])
            linear = large / small
            print(f"storm growth {small} -> {large} runs: x{growth:.2f} time for x{linear:.0f} runs  "
                  f"{verdict(growth, 5.0 * linear / 4, above=False)}")
    if copies:
        eng, bare = med(copies["eng"]), med(copies["bare"])
        print(f"{'copy':<8} {COPY_RUNS:>7} {eng:>12.1f} {bare:>10.1f} {bare / eng:>6.2f}  {verdict(bare / eng, 0.5)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
