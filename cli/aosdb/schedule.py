"""`aosdb schedule`: register the refresh and the retention as pg_cron jobs, so that the server
keeps the analytics views fresh and the outbox small with no Python process running.

The jobs only CALL the procedures of migration 0018 (aos.refresh_analytics, aos.prune_outbox);
the same calls work from any scheduler. pg_cron lives in one database of a server (its setting
cron.database_name) and must be preloaded: when this database has no pg_cron, it says why in one
line and how to install it. When pg_cron is loaded for this database but the extension is not
created yet, it creates it (which takes a superuser).

Jobs are named aosdb-refresh and aosdb-prune; registering one again replaces it (cron.schedule
is idempotent by name for the same user). A job runs as the user who scheduled it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from aosdb.db import connect, is_migrated, not_migrated
from aosdb.errors import AosdbError

JOB_PREFIX = "aosdb-"
JOBS = {"refresh": "aosdb-refresh", "prune": "aosdb-prune"}
EXTENSION = "pg_cron"

_EVERY = re.compile(r"^\s*(\d+)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?)\s*$", re.IGNORECASE)


@dataclass
class Every:
    """A schedule: pg_cron's expression and the period it means."""

    cron: str
    period: timedelta
    seconds: bool  # '[1-59] seconds' schedules need pg_cron 1.5


def parse_every(text: str) -> Every:
    """'30s', '1min', '15min', '1h', '6h', '1d' as a pg_cron schedule. A period must divide the next
    unit (minutes of an hour, hours of a day), so that runs are evenly spaced."""
    m = _EVERY.match(text)
    if not m or int(m.group(1)) == 0:
        raise AosdbError(f"--every {text!r}: give a period like 30s, 1min, 15min, 1h or 1d", exit_code=2)
    n, unit = int(m.group(1)), m.group(2).lower()[0]
    if unit == "s":
        if n < 60:
            return Every(f"{n} seconds", timedelta(seconds=n), True)
        if n % 60:
            raise AosdbError(f"--every {text!r}: seconds must be 1 to 59, or whole minutes", exit_code=2)
        n, unit = n // 60, "m"
    if unit == "m":
        if n < 60 and 60 % n == 0:
            return Every("* * * * *" if n == 1 else f"*/{n} * * * *", timedelta(minutes=n), False)
        if n % 60:
            raise AosdbError(f"--every {text!r}: minutes must divide an hour (1, 2, 5, 10, 15, 30...)", exit_code=2)
        n, unit = n // 60, "h"
    if unit == "h":
        if n < 24 and 24 % n == 0:
            return Every("0 * * * *" if n == 1 else f"0 */{n} * * *", timedelta(hours=n), False)
        if n % 24:
            raise AosdbError(f"--every {text!r}: hours must divide a day (1, 2, 3, 4, 6, 8, 12)", exit_code=2)
        n, unit = n // 24, "d"
    if n != 1:
        raise AosdbError(f"--every {text!r}: at most once a day (1d); use --cron for other schedules", exit_code=2)
    return Every("0 3 * * *", timedelta(days=1), False)


def default_min_interval(every: Every) -> str:
    """Half the period: a refresh that outlasted its period is not followed at once by the run pg_cron
    queued behind it, and a normal run is never skipped."""
    return f"{every.period.total_seconds() / 2:g} seconds"


def _version(text: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def ensure_cron(conn: psycopg.Connection, emit=None) -> str:
    """The pg_cron version in this database, creating the extension when pg_cron is loaded for it;
    else AosdbError saying what is missing and how to install it."""
    row = conn.execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = %s", (EXTENSION,)).fetchone()
    if row:
        return row[0]
    db, major, available, preload, cron_db = conn.execute(
        """SELECT current_database(), current_setting('server_version_num')::int / 10000,
                  EXISTS (SELECT FROM pg_catalog.pg_available_extensions WHERE name = %s),
                  current_setting('shared_preload_libraries'), current_setting('cron.database_name', true)""",
        (EXTENSION,)).fetchone()  # fmt: skip
    loaded = EXTENSION in [lib.strip() for lib in preload.split(",")]
    restart = (f"set shared_preload_libraries = 'pg_cron' and cron.database_name = '{db}' in postgresql.conf, "
               "restart the server (the embedded cluster does this itself: aosdb db stop && aosdb db start), "
               "then CREATE EXTENSION pg_cron")
    if not available:
        raise AosdbError(f"pg_cron is missing on this server (database {db}): install it (Debian: apt-get install "
                         f"postgresql-{major}-cron; make setup does), {restart}")
    if not loaded:
        raise AosdbError(f"pg_cron is installed but not loaded (database {db}): {restart}")
    if cron_db != db:
        raise AosdbError(f"pg_cron serves database {cron_db}, not {db}: set cron.database_name = '{db}' and "
                         "restart the server, or schedule the jobs there with cron.schedule_in_database (README)")
    try:
        conn.execute("CREATE EXTENSION pg_cron")
    except psycopg.errors.InsufficientPrivilege:
        raise AosdbError(f"pg_cron is loaded but not created in database {db}, and only a superuser may create "
                         "it: a superuser must run CREATE EXTENSION pg_cron there") from None
    if emit:
        emit(f"created extension pg_cron in database {db}")
    return conn.execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = %s", (EXTENSION,)).fetchone()[0]


def _check_interval(conn: psycopg.Connection, option: str, value: str) -> str:
    """The server parses the interval (its syntax, not ours); a bad or negative one is refused here."""
    try:
        with conn.transaction():
            ok = conn.execute("SELECT %s::text::interval >= INTERVAL '0'", (value,)).fetchone()[0]
    except psycopg.errors.DataError:
        ok = False
    if not ok:
        raise AosdbError(f"{option} {value!r}: give an interval of 0 or more, e.g. '30 seconds' or '30 days'",
                         exit_code=2)
    return value


def _schedule(dsn: str, job: str, every: Every | None, cron: str | None, command: str, emit) -> None:
    with connect(dsn, autocommit=True) as conn:
        version = ensure_cron(conn, emit)
        if every is not None and every.seconds and _version(version) < (1, 5):
            raise AosdbError(f"pg_cron {version} runs a job at most once a minute (seconds need pg_cron 1.5): "
                             "use --every 1min or longer", exit_code=2)
        expression = every.cron if every is not None else cron
        jobid = conn.execute("SELECT cron.schedule(%s, %s, %s)", (job, expression, command)).fetchone()[0]
    emit(f"scheduled {job} (job {jobid}) at '{expression}': {command}")


def _quote(text: str) -> str:
    """A SQL string literal (standard_conforming_strings: only quotes are doubled)."""
    return "'" + text.replace("'", "''") + "'"


def schedule_refresh(dsn: str, every: Every | None, cron: str | None, min_interval: str | None, emit) -> None:
    # The job calls aosdb's procedure: on a database without it, the job would fail every time.
    if not is_migrated(dsn):
        raise not_migrated(dsn)
    if min_interval is None:
        min_interval = default_min_interval(every) if every is not None else "0"
    with connect(dsn, autocommit=True) as conn:
        _check_interval(conn, "--min-interval", min_interval)
    command = f"CALL aos.refresh_analytics(min_interval => {_quote(min_interval)})"
    _schedule(dsn, JOBS["refresh"], every, cron, command, emit)


def schedule_prune(dsn: str, every: Every | None, cron: str | None, older_than: str, emit) -> None:
    if not is_migrated(dsn):
        raise not_migrated(dsn)
    with connect(dsn, autocommit=True) as conn:
        _check_interval(conn, "--older-than", older_than)
    command = f"CALL aos.prune_outbox(older_than => {_quote(older_than)})"
    _schedule(dsn, JOBS["prune"], every, cron, command, emit)


def list_jobs(dsn: str) -> list[tuple]:
    """(name, schedule, command, active, last run status, last run start) of every aosdb job."""
    with connect(dsn, autocommit=True) as conn:
        ensure_cron(conn)
        return conn.execute(
            """SELECT j.jobname, j.schedule, j.command, j.active, d.status, d.start_time
               FROM cron.job AS j
               LEFT JOIN LATERAL (SELECT r.status, r.start_time FROM cron.job_run_details AS r
                                  WHERE r.jobid = j.jobid ORDER BY r.runid DESC LIMIT 1) AS d ON TRUE
               WHERE j.jobname LIKE 'aosdb-%%' ORDER BY j.jobname"""
        ).fetchall()


def remove_job(dsn: str, name: str) -> str:
    job = JOBS.get(name, name)
    with connect(dsn, autocommit=True) as conn:
        ensure_cron(conn)
        if not conn.execute("SELECT EXISTS (SELECT FROM cron.job WHERE jobname = %s AND username = current_user)",
                            (job,)).fetchone()[0]:
            raise AosdbError(f"no job {job} of user {conn.info.user} is scheduled (aosdb schedule list)")
        conn.execute("SELECT cron.unschedule(%s)", (job,))
    return job
