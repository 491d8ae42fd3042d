"""`aosdb watch`: replay the outbox, then follow it, one JSON line per event.

Writers append to aos.events inside their own transactions and never wait for each other, so
seq is drawn at insert and commits can come out of seq order. The reader therefore never asks
for "seq > N": it closes a batch with aos.tick_events() (a snapshot) and reads with
aos.events_after(tick, seq) every event committed between its position and that snapshot, each
exactly once (sql/functions/aos_events.sql). NOTIFY aos_events is only a coalesced wake-up with an
empty payload, so the reader also looks again every poll interval: an event shows up within
milliseconds typically, within about the poll interval (1 s) at worst. A listener that was away
resumes with --since <the last seq it printed>; aos.event_position() turns that seq back into a
position.
"""

from __future__ import annotations

import json
from typing import Callable

import psycopg

from aosdb.db import connect

CHANNEL = "aos_events"
# Without a notification, tick and read again this often: a wake-up is coalesced (at most one
# per aos.event_wakeup.min_interval), so a commit may come with none. The worst-case latency.
_POLL_SECONDS = 1.0
# After a notification, read once more this much later: commits within the coalescing interval
# of the one that notified send nothing themselves.
_REREAD_SECONDS = 0.15
# Events per read; a full page is followed at once by the next one.
PAGE = 1000
# Without --since: skip the whole batch of the tick taken at start (nothing of the past).
END_OF_BATCH = 9223372036854775807

_READ = "SELECT tick_id, seq, created_at, event, tenant_id, subject_id, payload FROM aos.events_after(%s, %s, %s, %s)"


def as_json(row: tuple) -> str:
    seq, created_at, event, tenant_id, subject_id, payload = row
    return json.dumps({"seq": seq, "created_at": created_at.isoformat(), "event": event, "tenant_id": tenant_id,
                       "id": subject_id, "payload": payload})


def tick(conn: psycopg.Connection) -> int:
    """Close a batch: record the current snapshot as a tick (aos.tick_events()); returns the newest tick id."""
    return conn.execute("SELECT aos.tick_events()").fetchone()[0]


def _pruned_before(conn: psycopg.Connection, since: int) -> int | None:
    """The oldest seq the outbox still holds after `since` when events up to it were pruned, else None.

    Called only when the outbox holds no event at or before `since` (aos.event_position answered
    (0, 0)). A prune deletes the oldest seqs, so the seq a listener printed is gone only if it
    was pruned. The search widens seq ranges, which the BRIN index on seq serves (min(seq) would
    scan the outbox)."""
    width = 1000
    while since + width < END_OF_BATCH:
        row = conn.execute(
            "SELECT seq FROM aos.events WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT 1", (since, since + width)
        ).fetchone()
        if row:
            return row[0]
        width *= 1000
    # Nothing after it either: everything drawn so far may have been pruned.
    drawn = conn.execute(
        "SELECT pg_sequence_last_value(pg_get_serial_sequence('aos.events', 'seq'))").fetchone()[0]
    return drawn + 1 if drawn is not None and drawn > since else None


def watch(dsn: str, since: int | None, tenant: str | None, emit: Callable[[str], None], limit: int | None = None,
          warn: Callable[[str], None] | None = None) -> int:
    """Print events after `since` (default: only new ones), then follow. Returns how many were printed."""
    printed = 0
    with connect(dsn, autocommit=True) as conn:
        # Listen first: a commit between the first read and the first wait still wakes us.
        conn.execute(f"LISTEN {CHANNEL}")
        newest = tick(conn)
        if since is None:
            position = (newest, END_OF_BATCH)
        else:
            position = conn.execute("SELECT tick_id, seq FROM aos.event_position(%s)", (since,)).fetchone()
            if since > 0 and position == (0, 0) and warn is not None:
                oldest = _pruned_before(conn, since)
                if oldest is not None:
                    warn(f"events up to seq {oldest - 1} were pruned; replaying from seq {oldest}")
        reread = False
        while True:
            while True:
                rows = conn.execute(_READ, (*position, tenant, PAGE)).fetchall()
                for tick_id, *event in rows:
                    emit(as_json(tuple(event)))
                    position = (tick_id, event[0])
                    printed += 1
                    if limit is not None and printed >= limit:
                        return printed
                if len(rows) < PAGE:
                    break
            # Wait for a wake-up (bounded), then close a new batch and read it.
            notified = bool(list(conn.notifies(timeout=_REREAD_SECONDS if reread else _POLL_SECONDS, stop_after=1)))
            if notified:
                for _ in conn.notifies(timeout=0):  # coalesce whatever else is already queued
                    pass
            reread = notified
            tick(conn)
