"""`aosdb prune-events`: outbox retention through aos.prune_events()."""

from __future__ import annotations

from aosdb.db import connect


def prune_events(dsn: str, before_seq: int | None, older_than: str | None) -> tuple[int, int]:
    """Delete the events below a seq or older than an interval (PostgreSQL's interval syntax, given
    as text: the server parses it, and a bad one deletes nothing). Returns (events, ticks) deleted."""
    with connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT events_deleted, ticks_deleted"
            " FROM aos.prune_events(p_before_seq => %s::bigint, p_older_than => %s::text::interval)",
            (before_seq, older_than),
        ).fetchone()
    return row[0], row[1]
