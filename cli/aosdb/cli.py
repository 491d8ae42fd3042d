"""The aosdb command line: Typer commands that parse options and call the core."""

from __future__ import annotations

import math
import sys
from typing import Optional

import typer
from typer.core import TyperGroup

from aosdb.errors import AosdbError


class _Group(TyperGroup):
    """Turns an expected failure into one line on stderr and a non-zero exit."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AosdbError as exc:
            from aosdb.config import redact

            typer.echo(f"aosdb: {redact(str(exc))}", err=True)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=_Group,
    help="aosdb: the governance database of an AI-agent platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Manage the embedded PostgreSQL cluster in .aosdb/ (or AOSDB_HOME).", no_args_is_help=True)
app.add_typer(db_app, name="db")
schedule_app = typer.Typer(
    help="Scheduled jobs inside the server (pg_cron): the views' refresh and the outbox's retention.",
    no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")
scenario_app = typer.Typer(help="SDSR scenarios: inject causes, assert the effects the engines produce.",
                           no_args_is_help=True)
app.add_typer(scenario_app, name="scenario")

DsnOption = typer.Option(
    None,
    "--dsn",
    envvar=["AOSDB_DSN", "DATABASE_URL"],
    help="libpq DSN or URL; default: AOSDB_DSN, DATABASE_URL, else the embedded cluster.",
    show_envvar=False,
)


def _dsn(dsn: Optional[str]) -> str:
    from aosdb.config import resolve_dsn

    return resolve_dsn(dsn)


@db_app.command("start")
def db_start() -> None:
    """Start the embedded cluster (initialising it on first use). Harmless if it runs.

    Example: aosdb db start
    """
    from aosdb.cluster import EmbeddedCluster

    cluster = EmbeddedCluster()
    started = cluster.start()
    st = cluster.status()
    word = "started" if started else "already running"
    typer.echo(f"embedded cluster {word} on 127.0.0.1:{st.port} (data: {st.data_dir})")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster. Harmless if it is stopped.

    Example: aosdb db stop
    """
    from aosdb.cluster import EmbeddedCluster

    stopped = EmbeddedCluster().stop()
    typer.echo("embedded cluster stopped" if stopped else "embedded cluster was not running")


@db_app.command("status")
def db_status() -> None:
    """Say whether the embedded cluster runs, where, and on which port. Exit 3 when stopped.

    Example: aosdb db status
    """
    from aosdb.cluster import EmbeddedCluster

    st = EmbeddedCluster().status()
    if not st.initialized:
        typer.echo("embedded cluster: not initialised (aosdb db start creates it)")
        raise typer.Exit(3)
    state = f"running (pid {st.pid}) on 127.0.0.1:{st.port}" if st.running else "stopped"
    typer.echo(f"embedded cluster: {state}\ndata: {st.data_dir}\nsocket: {st.socket_dir}")
    if not st.running:
        raise typer.Exit(3)


@db_app.command("url")
def db_url() -> None:
    """Print the DSN of the embedded cluster's aosdb database (starting it if needed).

    Example: psql "$(aosdb db url)"
    """
    from aosdb.cluster import EmbeddedCluster

    typer.echo(EmbeddedCluster().ensure_running())


def _migration_output():
    from aosdb.migrations import Output

    return Output(notice=typer.echo, warning=lambda message: typer.echo(f"aosdb: warning: {message}", err=True))


def _timeouts(lock_timeout: str, statement_timeout: str):
    from aosdb.migration_session import Timeouts

    return Timeouts(lock=lock_timeout, statement=statement_timeout)


LockTimeoutOption = typer.Option("5s", "--lock-timeout", metavar="INTERVAL",
                                 help="Longest wait for any lock; writers never queue behind a migration for longer.")
StatementTimeoutOption = typer.Option("10min", "--statement-timeout", metavar="INTERVAL",
                                      help="Longest any one statement may run (a file may set its own).")


@app.command()
def migrate(
    recreate_dependents: bool = typer.Option(
        False, "--recreate-dependents",
        help="When a materialized view must be rebuilt and your own views, indexes or grants depend on it: "
        "drop and recreate them around the swap instead of stopping."),
    lock_timeout: str = LockTimeoutOption,
    statement_timeout: str = StatementTimeoutOption,
    dsn: Optional[str] = DsnOption,
) -> None:
    """Apply pending versioned migrations, then changed repeatable files.

    Checks the privileges it needs first and changes nothing when one is
    missing (it prints the GRANTs to run). Every wait for a lock is bounded by
    --lock-timeout and names the sessions that blocked it. Server notices and
    warnings are printed as they come.

    Example: AOSDB_DSN=postgresql://dba@db.example/prod aosdb migrate
    """
    from aosdb import migrations

    done = migrations.migrate(_dsn(dsn), _migration_output(), _timeouts(lock_timeout, statement_timeout),
                              recreate_dependents=recreate_dependents)
    if not done.versioned and not done.repeatables:
        typer.echo("database is up to date")
        return
    for mid in done.versioned:
        typer.echo(f"applied   {mid}")
    for path in done.repeatables:
        typer.echo(f"applied   {path} (repeatable)")


@app.command()
def rollback(
    count: int = typer.Option(1, "--count", "-n", help="How many versioned migrations to undo."),
    all_: bool = typer.Option(False, "--all", help="Undo every versioned migration: drops every aosdb schema "
                              "and the data in it. Asks first; --yes when there is no terminal."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask before --all."),
    lock_timeout: str = LockTimeoutOption,
    statement_timeout: str = StatementTimeoutOption,
    dsn: Optional[str] = DsnOption,
) -> None:
    """Undo the last versioned migration (or --count N, or --all).

    Example: aosdb rollback --count 2
    """
    from aosdb import migrations
    from aosdb.config import describe_dsn

    target = _dsn(dsn)
    if all_ and not yes:
        where = describe_dsn(target)
        if not sys.stdin.isatty():
            raise AosdbError(f"rollback --all drops every aosdb schema and its data in {where}; "
                             "add --yes to confirm when there is no terminal to ask on", exit_code=2)
        if not typer.confirm(f"Drop every aosdb schema and all its data in {where}?", default=False):
            typer.echo("nothing rolled back")
            raise typer.Exit(1)
    undone = migrations.rollback(target, None if all_ else count, _migration_output(),
                                 _timeouts(lock_timeout, statement_timeout))
    if not undone:
        typer.echo("nothing to roll back")
    for mid in undone:
        typer.echo(f"rolled back {mid}")


@app.command("migrations")
def list_migrations(dsn: Optional[str] = DsnOption) -> None:
    """List versioned and repeatable migrations with their state. Reads only: it never writes.

    Example: aosdb migrations
    """
    from aosdb import migrations

    versioned, repeatables = migrations.status(_dsn(dsn))
    for v in versioned:
        state = f"applied {v.applied_at}" if v.applied_at else "pending"
        typer.echo(f"versioned   {v.id:<40} {state}")
    for r in repeatables:
        when = f" {r.applied_at}" if r.applied_at and r.state == "applied" else ""
        typer.echo(f"repeatable  {r.path:<40} {r.state}{when}")


@app.command()
def status(
    exact: bool = typer.Option(False, "--exact", help="Count every table's rows (reads them all) instead of "
                               "printing the planner's estimates (~N)."),
    dsn: Optional[str] = DsnOption,
) -> None:
    """Show what exists: schemas, tables with estimated row counts (~N; --exact counts), roles, migrations.

    Warnings (aos_worker without BYPASSRLS) go to stderr as `aosdb: warning: ...`.

    Example: aosdb status --exact
    """
    from aosdb.inventory import inspect

    report, warnings = inspect(_dsn(dsn), exact)
    typer.echo(report)
    for warning in warnings:
        typer.echo(f"aosdb: warning: {warning}", err=True)


@app.command("test")
def run_tests(
    keep: bool = typer.Option(False, "--keep", help="Keep the throwaway database (for debugging)."),
    dsn: Optional[str] = DsnOption,
) -> None:
    """Run pg_prove over sql/tests in a fresh throwaway database, then drop it.

    Example: aosdb test
    """
    from aosdb.pgtests import run_pgtap

    raise typer.Exit(run_pgtap(_dsn(dsn), keep=keep))


@app.command()
def lint(dsn: Optional[str] = DsnOption) -> None:
    """sqlfluff and squawk on the migrations, plpgsql_check on every PL/pgSQL function.

    Example: aosdb lint
    """
    from aosdb.lint import run_lint

    raise typer.Exit(run_lint(_dsn(dsn)))


@scenario_app.command("run")
def scenario_run(
    paths: list[str] = typer.Argument(..., help="Scenario YAML files or directories of them."),
    keep: bool = typer.Option(False, "--keep", help="Commit the scenarios' rows instead of rolling them back."),
    dsn: Optional[str] = DsnOption,
) -> None:
    """Run SDSR scenarios as aos_scenario and print TAP; exit 1 when an assertion fails.

    Example: aosdb scenario run scenarios/
    """
    from aosdb.scenarios import run_paths

    raise typer.Exit(run_paths(_dsn(dsn), paths, keep=keep, emit=typer.echo))


@scenario_app.command("schema")
def scenario_schema() -> None:
    """Print the JSON Schema of a scenario file, for editors (made from the scenario models).

    Example: aosdb scenario schema > scenarios/scenario.schema.json
    """
    from aosdb.scenarios import scenario_schema_text

    typer.echo(scenario_schema_text(), nl=False)


@app.command()
def check(
    root: Optional[str] = typer.Argument(None, help="Tree with sql/ and scenarios/ (default: this project)."),
    dsn: Optional[str] = typer.Option(
        None, "--dsn", envvar=["AOSDB_DSN", "DATABASE_URL"], show_envvar=False,
        help="A migrated database to check; default: AOSDB_DSN, DATABASE_URL, else ROOT migrated into a throwaway "
             "database on the embedded cluster."),
    output_format: str = typer.Option("text", "--format", help="text or json."),
) -> None:
    """The contract checker: XD-001..XD-004 over a migrated database's contract rows and catalog.

    With a DSN the database is checked as it is (it must be migrated).

    Without one, ROOT's sql/ is migrated into a throwaway database, checked and dropped.

    Prints `file:line: XD-00N severity: message`; exits 1 on any ERROR, 2 when the check cannot run.

    Example: aosdb check . --dsn "$(aosdb db url)"
    """
    from aosdb.checker import run_check

    if output_format not in ("text", "json"):
        raise AosdbError("--format must be text or json")
    raise typer.Exit(run_check(root, dsn, output_format, emit=typer.echo))


@app.command("docs")
def docs_command(
    dsn: Optional[str] = DsnOption,
    check_only: bool = typer.Option(False, "--check", help="Write nothing; exit 1 when a committed document is stale."),
) -> None:
    """Generate docs/contract.md and docs/er.md from a migrated database (the contract tables and the catalog).

    Example: aosdb docs --check
    """
    from aosdb.config import project_root
    from aosdb.db import connect, is_migrated, not_migrated
    from aosdb.docs import documents, stale

    target = _dsn(dsn)
    if not is_migrated(target):
        raise not_migrated(target)
    with connect(target) as conn:
        generated = documents(conn)
    root = project_root()
    outdated = stale(root, generated)
    if check_only:
        if outdated:
            raise AosdbError(f"stale: {', '.join(outdated)}; run `aosdb docs` on a migrated database and commit them")
        typer.echo(f"current: {', '.join(generated)}")
        return
    for rel, text in generated.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
        typer.echo(f"{'wrote' if rel in outdated else 'unchanged'} {rel}")


@app.command()
def demo(
    dsn: Optional[str] = DsnOption,
    verbose: bool = typer.Option(False, "--verbose", help="Print every TAP line and the whole evidence document."),
    yes: bool = typer.Option(False, "--yes", help="Commit the demo's synthetic tenants into a database that is not "
                                                  "the embedded cluster's."),
) -> None:
    """The guided tour, on one screen: run the shipped scenarios (kept, in sdsr-* tenants), show the
    propagation chain, refresh the views, act on one incident and read it as a UI would. Re-runnable.

    Example: aosdb demo
    """
    from aosdb.config import describe_dsn
    from aosdb.demo import run_demo

    target = _dsn(dsn)
    if dsn is not None and not yes and not _is_embedded(target):
        raise AosdbError(f"aosdb demo commits 21 synthetic sdsr-* tenants into {describe_dsn(target)}, which is "
                         "not the embedded cluster's database: re-run with --yes to do it anyway", exit_code=2)
    raise typer.Exit(run_demo(target, typer.echo, verbose=verbose))


def _is_embedded(dsn: str) -> bool:
    """Whether dsn names the embedded cluster's own database (same host, port and database)."""
    from aosdb.cluster import EmbeddedCluster
    from aosdb.config import describe_dsn

    try:
        embedded = EmbeddedCluster().dsn()
    except AosdbError:
        return False
    return describe_dsn(dsn).split("@")[-1] == describe_dsn(embedded).split("@")[-1]


def _report_refresh(done) -> None:
    if done.skipped:
        typer.echo(f"refresh skipped: {done.skipped}")
    for view, elapsed_ms, rows in done:
        typer.echo(f"refreshed {view:<26} {rows:>9} rows in {elapsed_ms:9.1f} ms")


@app.command("refresh")
def refresh_views(
    follow: bool = typer.Option(False, "--follow", help="Keep running: refresh again when events arrive."),
    debounce: float = typer.Option(5.0, "--debounce", help="With --follow: at most one refresh per this many seconds."),
    dsn: Optional[str] = DsnOption,
) -> None:
    """Refresh the analytics views CONCURRENTLY and record each refresh in aos.view_refreshes.

    It calls the procedure aos.refresh_analytics(), which cron or pg_cron can call as well
    (aosdb schedule refresh). While another refresh runs it prints "refresh skipped: ..." and
    exits 0. With --follow it listens to aos_events and refreshes again, at most once per --debounce seconds
    while changes keep arriving, until Ctrl-C.

    Example: aosdb refresh --follow --debounce 10
    """
    from aosdb import refresh as views

    if not math.isfinite(debounce) or debounce < 0:
        raise AosdbError("--debounce must be a number of seconds, 0 or more")
    if not follow:
        _report_refresh(views.refresh(_dsn(dsn)))
        return
    try:
        views.follow(_dsn(dsn), debounce, _report_refresh)
    except KeyboardInterrupt:
        typer.echo("stopped")


@app.command()
def watch(
    since: Optional[int] = typer.Option(None, "--since", help="Replay the events after this seq first (the last seq "
                                        "a listener printed); 0 replays the whole outbox."),
    tenant: Optional[str] = typer.Option(None, "--tenant", help="Only this tenant's events."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Exit after this many events."),
    dsn: Optional[str] = DsnOption,
) -> None:
    """Follow the event outbox: one JSON line per event (seq, created_at, event, tenant_id, id, payload).

    Without --since only events committed after it starts are printed; with
    it, a listener that was away replays what it missed, each event exactly
    once. Events come in commit batches, so seq does not always increase:
    resume from the last seq printed. An event shows up within milliseconds
    typically, within about a second at worst. When events after SEQ were
    pruned (aosdb prune-events), one warning line says where replay starts.

    Example: aosdb watch --since 0 --tenant acme
    """
    from aosdb.events import watch as follow

    if since is not None and since < 0:
        raise AosdbError("--since must be 0 or more")
    follow(_dsn(dsn), since, tenant, lambda line: typer.echo(line), limit,
           warn=lambda message: typer.echo(f"aosdb: {message}", err=True))


@app.command("prune-events")
def prune_events(
    before: Optional[int] = typer.Option(None, "--before", metavar="SEQ", help="Delete the events with seq below SEQ."),
    older_than: Optional[str] = typer.Option(None, "--older-than", metavar="INTERVAL",
                                             help="Delete the events written more than INTERVAL ago "
                                             "(PostgreSQL interval syntax: '7 days', '12 hours')."),
    dsn: Optional[str] = DsnOption,
) -> None:
    """Outbox retention: delete old events and the ticks no kept event needs.

    Give exactly one of --before and --older-than; prints how many events
    and ticks were deleted. It keeps nothing for listeners: one that resumes
    (aosdb watch --since) from a pruned seq is told so and replays from the
    oldest event kept. A pg_cron job can call the same function:
    SELECT * FROM aos.prune_events(p_older_than => '30 days');

    Example: aosdb prune-events --older-than '30 days'
    """
    from aosdb.retention import prune_events as prune

    if (before is None) == (older_than is None):
        raise AosdbError("give exactly one of --before SEQ and --older-than INTERVAL", exit_code=2)
    events, ticks = prune(_dsn(dsn), before, older_than)
    typer.echo(f"pruned {events} events and {ticks} ticks")


EveryOption = typer.Option(None, "--every", metavar="PERIOD",
                           help="How often: 30s (pg_cron 1.5+), 1min, 15min, 1h, 1d. Or give --cron.")
CronOption = typer.Option(None, "--cron", metavar="EXPR", help="A pg_cron schedule instead: '*/5 * * * *'.")


def _every(every: Optional[str], cron: Optional[str]):
    from aosdb.schedule import parse_every

    if (every is None) == (cron is None):
        raise AosdbError("give exactly one of --every PERIOD and --cron EXPR", exit_code=2)
    return parse_every(every) if every is not None else None


@schedule_app.command("refresh")
def schedule_refresh(
    every: Optional[str] = EveryOption,
    cron: Optional[str] = CronOption,
    min_interval: Optional[str] = typer.Option(
        None, "--min-interval", metavar="INTERVAL",
        help="Skip a run when the last refresh ended less than this ago (default: half of --every; 0 with --cron)."),
    dsn: Optional[str] = DsnOption,
) -> None:
    """Refresh the analytics views from pg_cron: CALL aos.refresh_analytics() on a schedule.

    Needs pg_cron in the database (the embedded cluster loads it when postgresql-15-cron is
    installed; make setup installs it). Scheduling again replaces the job (aosdb-refresh).

    Example: aosdb schedule refresh --every 1min
    """
    from aosdb.schedule import schedule_refresh as register

    register(_dsn(dsn), _every(every, cron), cron, min_interval, typer.echo)


@schedule_app.command("prune")
def schedule_prune(
    every: Optional[str] = EveryOption,
    cron: Optional[str] = CronOption,
    older_than: str = typer.Option("30 days", "--older-than", metavar="INTERVAL",
                                   help="Delete events and refresh records older than this."),
    dsn: Optional[str] = DsnOption,
) -> None:
    """Outbox retention from pg_cron: CALL aos.prune_outbox(older_than) on a schedule.

    Example: aosdb schedule prune --every 1d --older-than '30 days'
    """
    from aosdb.schedule import schedule_prune as register

    register(_dsn(dsn), _every(every, cron), cron, older_than, typer.echo)


@schedule_app.command("list")
def schedule_list(dsn: Optional[str] = DsnOption) -> None:
    """List the aosdb jobs of pg_cron with their last run.

    Example: aosdb schedule list
    """
    from aosdb.schedule import list_jobs

    jobs = list_jobs(_dsn(dsn))
    if not jobs:
        typer.echo("no aosdb job is scheduled")
    for name, expression, command, active, status, started in jobs:
        last = f"last run {started:%Y-%m-%d %H:%M:%S%z} {status}" if started else "not run yet"
        typer.echo(f"{name:<14} {expression!r:<16} {'active' if active else 'inactive':<8} {last}: {command}")


@schedule_app.command("remove")
def schedule_remove(
    name: str = typer.Argument(..., help="refresh, prune, or a job name from aosdb schedule list."),
    dsn: Optional[str] = DsnOption,
) -> None:
    """Remove a scheduled job.

    Example: aosdb schedule remove refresh
    """
    from aosdb.schedule import remove_job

    typer.echo(f"removed {remove_job(_dsn(dsn), name)}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
