"""`aosdb watch`: replay the outbox, then follow NOTIFY aos_events, one JSON line per event.

seq follows commit order (sql/functions/aos_events.sql renumbers a
transaction's events at commit when another one drew seqs meanwhile), so
"every event with seq > the last one printed" is exactly what is new: a
listener resumes with --since and loses nothing. Notifications only wake the
reader; the rows themselves come from the table.
"""

from __future__ import annotations

import json
from typing import Callable

import psycopg

from aosdb.db import connect

CHANNEL = "aos_events"
# Without a notification, look again this often (a safety net, not the mechanism).
_POLL_SECONDS = 5.0

_READ = """
SELECT seq, created_at, event, tenant_id, subject_id, payload
FROM aos.events
WHERE seq > %(last)s AND (%(tenant)s::text IS NULL OR tenant_id = %(tenant)s::text)
ORDER BY seq
"""


def _read_new(conn: psycopg.Connection, last: int, tenant: str | None) -> list[tuple]:
    return conn.execute(_READ, {"last": last, "tenant": tenant}).fetchall()


def as_json(row: tuple) -> str:
    seq, created_at, event, tenant_id, subject_id, payload = row
    return json.dumps({"seq": seq, "created_at": created_at.isoformat(), "event": event, "tenant_id": tenant_id,
                       "id": subject_id, "payload": payload})


def watch(dsn: str, since: int | None, tenant: str | None, emit: Callable[[str], None], limit: int | None = None) -> int:
    """Print events after `since` (default: only new ones), then follow. Returns how many were printed."""
    printed = 0
    with connect(dsn, autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        last = since
        if last is None:
            last = conn.execute("SELECT coalesce(max(seq), 0) FROM aos.events").fetchone()[0]
        while True:
            for row in _read_new(conn, last, tenant):
                emit(as_json(row))
                last = row[0]
                printed += 1
                if limit is not None and printed >= limit:
                    return printed
            # Wake on the first notification (or after the poll interval), then read everything new.
            for _ in conn.notifies(timeout=_POLL_SECONDS, stop_after=1):
                pass
