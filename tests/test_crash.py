"""Immediate shutdown while workers record runs: after crash recovery every acknowledged run is
there with its whole cascade, and no run of the database, acknowledged or not, has a partial one.

A private cluster (its own directory and port, discarded afterwards) is migrated; WRITERS threads,
each on its own autocommit connection as aos_worker, record runs through the worker API
(start_run, then finish_run succeeded or failed with a high, critical or medium error code) and
note each call once the server has acknowledged its commit. `pg_ctl stop -m immediate` kills the
server under them (no shutdown checkpoint: the restart replays the WAL), and the checks run on the
restarted server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from aosdb.cluster import EmbeddedCluster
from conftest import cli_subprocess, discard_cluster, free_port, server_bin

pytestmark = pytest.mark.skipif(server_bin() is None, reason="no PostgreSQL server binaries")

WRITERS = 6
WRITE_SECONDS = 3.0  # writing before the crash; every writer is still writing when it comes
TENANTS = ("crash-a", "crash-b")  # two tenants, so proposals are both shared and separate
# The outcome of run i of a writer: an error code (failed) or None (succeeded).
PLAN = ["EXECUTION_TIMEOUT", None, "AGENT_CRASH", None, "BUDGET_EXCEEDED", None, "EXECUTION_TIMEOUT"]
LINKED = {"EXECUTION_TIMEOUT", "AGENT_CRASH"}  # high and critical: linked to a proposal; medium not


@dataclass
class Acks:
    """What the server acknowledged: started runs, and finished ones with their outcome."""

    started: set[tuple[str, str]] = field(default_factory=set)
    finished: dict[tuple[str, str], str | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def writer(dsn: str, number: int, acks: Acks, stop: threading.Event) -> int:
    """Records runs until the connection dies; returns how many calls were acknowledged."""
    done = 0
    tenant = TENANTS[number % len(TENANTS)]
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SET ROLE aos_worker")
        i = 0
        try:
            while not stop.is_set():
                run, code = f"w{number}-r{i}", PLAN[i % len(PLAN)]
                conn.execute("SELECT activity.start_run(%s, %s, %s, 'crash test')", (tenant, run, f"agent-{number}"))
                with acks.lock:
                    acks.started.add((tenant, run))
                outcome = Jsonb({"error_code": code} if code else {})
                conn.execute("SELECT activity.finish_run(%s, %s, %s, %s)",
                             (tenant, run, "failed" if code else "succeeded", outcome))  # fmt: skip
                with acks.lock:
                    acks.finished[(tenant, run)] = code
                done += 2
                i += 1
        except psycopg.OperationalError:
            if not conn.broken:
                raise
            # the server went away: what was in flight was never acknowledged
    return done


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[EmbeddedCluster]:
    cluster = EmbeddedCluster(workdir=tmp_path, port=free_port())
    try:
        cluster.start()
        yield cluster
    finally:
        discard_cluster(cluster, tmp_path)


def crash(cluster: EmbeddedCluster) -> None:
    """pg_ctl stop -m immediate, as cluster.py runs pg_ctl (as the postgres OS user when root)."""
    state = cluster._load_state()
    assert state is not None and state.bin_dir is not None
    proc = cluster._run([state.bin_dir / "pg_ctl", "-D", state.data_dir, "-m", "immediate", "-w", "stop"])
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_acknowledged_runs_survive_an_immediate_shutdown_whole(cluster: EmbeddedCluster) -> None:
    dsn = cluster.dsn()
    migrated = cli_subprocess("migrate", env={"AOSDB_DSN": dsn})
    assert migrated.returncode == 0, str(migrated)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for tenant in TENANTS:
            conn.execute("SELECT aos.register_tenant(%s)", (tenant,))

    acks, stop = Acks(), threading.Event()
    counts: list[int | BaseException] = [0] * WRITERS

    def body(n: int) -> None:
        try:
            counts[n] = writer(dsn, n, acks, stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            counts[n] = exc

    threads = [threading.Thread(target=body, args=(n,), daemon=True) for n in range(WRITERS)]
    for t in threads:
        t.start()
    time.sleep(WRITE_SECONDS)
    assert all(t.is_alive() for t in threads), f"a writer stopped before the crash: {counts}"
    crash(cluster)
    stop.set()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert all(isinstance(c, int) for c in counts), counts
    assert len(acks.finished) >= 50, f"too few runs acknowledged before the crash to mean much: {len(acks.finished)}"

    log = cluster._load_state().log_file
    log_start = log.stat().st_size
    assert cluster.start(), "the cluster did not start again after the crash"
    assert "automatic recovery in progress" in log.read_text(errors="replace")[log_start:], "no crash recovery ran"
    with psycopg.connect(dsn, autocommit=True) as conn:
        runs = {(t, r): (s, c) for t, r, s, c in conn.execute(
            "SELECT tenant_id, run_id, status, error_code FROM activity.runs")}  # fmt: skip
        incidents = {}
        for tenant, run, incident, severity in conn.execute(
                "SELECT tenant_id, source_run_id, id, severity FROM incidents.incidents"):  # fmt: skip
            assert (tenant, run) not in incidents, f"two incidents for {run}"
            incidents[(tenant, run)] = (incident, severity)
        detected = {r[0] for r in conn.execute("SELECT incident_id FROM incidents.incident_events WHERE event_type = 'detected'")}
        links = {r[0]: r[1] for r in conn.execute("SELECT incident_id, proposal_id FROM policies.proposal_incidents")}
        events = {(e, t, s) for e, t, s in conn.execute("SELECT event, tenant_id, subject_id FROM aos.events")}
        counted = conn.execute(
            """SELECT count(*) FROM policies.policy_proposals AS p
               WHERE p.incident_count <> (SELECT count(*) FROM policies.proposal_incidents AS l
                                          WHERE l.tenant_id = p.tenant_id AND l.proposal_id = p.id)""").fetchone()[0]

    # Every acknowledged call is there: started runs exist, finished runs have their outcome.
    lost = sorted(k for k in acks.started if k not in runs)
    assert not lost, f"acknowledged runs missing after recovery: {lost[:10]}"
    for key, code in acks.finished.items():
        assert runs[key] == (("failed", code) if code else ("succeeded", None)), (key, runs[key])

    # Every run of the database, acknowledged or not, has its whole cascade or none at all.
    for key, (status, code) in runs.items():
        if status != "failed":
            assert key not in incidents, f"{key} is {status} but has an incident"
            continue
        assert key in incidents, f"failed run {key} has no incident"
        incident, _ = incidents[key]
        assert incident in detected, f"incident of {key} has no detected event"
        assert ("run_failed", key[0], key[1]) in events, f"{key} has no run_failed event"
        assert ("incident_created", key[0], str(incident)) in events, f"{key} has no incident_created event"
        assert (incident in links) == (code in LINKED), f"{key} ({code}) proposal link: {incident in links}"
    orphans = sorted(k for k in incidents if runs.get(k, ("",))[0] != "failed")
    assert not orphans, f"incidents whose run is not failed: {orphans[:10]}"
    assert counted == 0, "proposals whose incident_count differs from their links"

    failed = sum(1 for s, _ in runs.values() if s == "failed")
    unacked = len(runs.keys() - acks.started) + sum(1 for k in runs.keys() - acks.finished.keys() if runs[k][0] != "running")
    print(f"\ncrash: {WRITERS} writers, {sum(counts)} calls acknowledged ({len(acks.finished)} runs finished, "
          f"{len(acks.started)} started); after recovery {len(runs)} runs checked, {failed} failed with "
          f"{len(incidents)} incidents and {len(links)} proposal links; {unacked} commits whose ack was lost")  # fmt: skip
