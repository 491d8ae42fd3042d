"""`aosdb refresh`: CALL aos.refresh_analytics(), which refreshes the analytics views CONCURRENTLY
and records each refresh in aos.view_refreshes; with --follow, refresh again on events, debounced.

The work is the procedure's, so a refresh by a DBA, cron or pg_cron (`aosdb schedule refresh`) is
the same refresh, recorded the same way. The procedure runs one refresh at a time: a call while
another refresh runs skips (a NOTICE, nothing written) and is reported as skipped here."""

from __future__ import annotations

import time
from typing import Callable

import psycopg

from aosdb.db import connect
from aosdb.events import CHANNEL, END_OF_BATCH, tick

VIEWS = ("activity.v_runs_o2", "incidents.v_incidents_o2")
# How often --follow looks for committed events without a wake-up.
POLL_SECONDS = 1.0
SKIPPED_PREFIX = "aos.refresh_analytics: skipped: "


class Refreshed(list):
    """The (view, milliseconds, rows) of each view refreshed; empty with `skipped` set (the
    procedure's reason) when another refresh was running."""

    def __init__(self, rows=(), skipped: str | None = None):
        super().__init__(rows)
        self.skipped = skipped


def refresh_once(conn: psycopg.Connection) -> Refreshed:
    """CALL aos.refresh_analytics() in one transaction and read back the rows it recorded."""
    notices: list[str] = []

    def keep(diag: psycopg.errors.Diagnostic) -> None:
        if diag.message_primary:
            notices.append(diag.message_primary)

    conn.add_notice_handler(keep)
    try:
        with conn.transaction():
            conn.execute("CALL aos.refresh_analytics()")
            # Its own rows: written by this transaction (none when it skipped).
            rows = conn.execute(
                "SELECT view_name, duration_ms::float8, row_count FROM aos.view_refreshes AS r"
                " WHERE r.xmin = pg_current_xact_id_if_assigned()::xid ORDER BY r.id"
            ).fetchall()
    finally:
        conn.remove_notice_handler(keep)
    done = Refreshed(rows)
    if not done:
        reasons = [n[len(SKIPPED_PREFIX):] for n in notices if n.startswith(SKIPPED_PREFIX)]
        done.skipped = reasons[0] if reasons else "nothing was refreshed"
    return done


def refresh(dsn: str) -> Refreshed:
    with connect(dsn, autocommit=True) as conn:
        return refresh_once(conn)


def follow(dsn: str, debounce: float, report: Callable[[Refreshed], None],
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
            previous, position = position, tick(conn)
            done = refresh_once(conn)
            report(done)
            if done.skipped:
                # Another refresh ran, maybe from before these events: look again next time.
                position = previous
                continue
            count += 1
            last = time.monotonic()
    return count
