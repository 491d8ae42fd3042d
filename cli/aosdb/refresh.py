"""`aosdb refresh`: refresh the analytics views CONCURRENTLY and record each refresh
in aos.view_refreshes; with --follow, refresh again on events, debounced."""

from __future__ import annotations

import time
from typing import Callable

import psycopg

from aosdb.db import connect
from aosdb.events import CHANNEL, END_OF_BATCH, tick

VIEWS = ("activity.v_runs_o2", "incidents.v_incidents_o2")
# How often --follow looks for committed events without a wake-up.
POLL_SECONDS = 1.0


def refresh_once(conn: psycopg.Connection) -> list[tuple[str, float, int]]:
    """Refresh every view, each in its own transaction; returns (view, milliseconds, rows)."""
    done = []
    for view in VIEWS:
        with conn.transaction():
            started = time.perf_counter()
            # CONCURRENTLY: readers of the view are never blocked (it has a unique index).
            conn.execute(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {view}")
            elapsed_ms = (time.perf_counter() - started) * 1000
            rows = conn.execute(f"SELECT count(*) FROM {view}").fetchone()[0]
            conn.execute(
                "INSERT INTO aos.view_refreshes (view_name, duration_ms, row_count, concurrent) VALUES (%s, %s, %s, true)",
                (view, round(elapsed_ms, 3), rows),
            )
        done.append((view, elapsed_ms, rows))
    return done


def refresh(dsn: str) -> list[tuple[str, float, int]]:
    with connect(dsn, autocommit=True) as conn:
        return refresh_once(conn)


def follow(dsn: str, debounce: float, report: Callable[[list[tuple[str, float, int]]], None],
           max_refreshes: int | None = None) -> int:
    """Refresh whenever events were committed, at most once per `debounce` seconds while they keep
    arriving. Returns the number of refreshes (stops after max_refreshes when given).

    A wake-up is coalesced (a commit right after a notifying one sends none), so it also looks
    every POLL_SECONDS: it closes a batch of the outbox and refreshes when the batch holds events."""
    count = 0
    with connect(dsn, autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        position = tick(conn)  # the views will hold everything committed before this batch closed
        report(refresh_once(conn))  # start from fresh views
        count += 1
        last = time.monotonic()
        while max_refreshes is None or count < max_refreshes:
            for _ in conn.notifies(timeout=POLL_SECONDS, stop_after=1):
                pass
            tick(conn)
            if not conn.execute("SELECT EXISTS (SELECT FROM aos.events_after(%s, %s, NULL, 1))",
                                (position, END_OF_BATCH)).fetchone()[0]:
                continue
            # Let a burst finish, but never wait longer than one debounce interval since the last refresh.
            wait = max(0.0, last + debounce - time.monotonic())
            if wait:
                for _ in conn.notifies(timeout=wait):
                    pass
            position = tick(conn)
            report(refresh_once(conn))
            count += 1
            last = time.monotonic()
    return count
