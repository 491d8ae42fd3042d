"""Running scenarios: each in its own transaction, the inject steps as aos_scenario, then the assertions.

`run_paths` works in three passes:

1. parse and validate every file offline (model.py: keys, types, values, ``${...}`` references);
2. connect, read the catalog, and check what needs it (catalog.py: columns of assertions and
   inserts, their types, the values the database enumerates, that the connecting role may act as
   aos_scenario and read the effects back). Anything malformed stops the run before a single row
   is written: one line naming the file and the key path, exit 2;
3. run each scenario in its own transaction on one connection:

   - as the connecting user: ``aos.tenant_id`` and ``aos.synthetic_scenario_id`` are set,
     transaction-local;
   - ``SET LOCAL ROLE aos_scenario``: the tenant is registered, and the inject steps run through
     the WorkerRunner API and the operator actions exactly as a worker and an operator would, so
     every engine fires as in production and the database refuses any write a scenario may not
     make (its grants are aos_worker's and aos_operator's, RLS-scoped to the scenario's tenant);
   - ``RESET ROLE``: effects are read back as the connecting user, reads only (the lookups of
     ``proposal_of_run`` / ``incident_of_run`` too: aos_scenario cannot read those tables);
   - ROLLBACK, or COMMIT with --keep.

Output is TAP (tap.py): per scenario an ``inject`` line, one line per assertion and a
``synthetic marks`` line (every row the scenario wrote carries its id); a failed line is followed
by ``#`` diagnostics showing what was found. Exit status: 0 all passed, 1 something failed, 2 the
scenarios could not be run.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from aosdb.db import connect, error_line
from aosdb.errors import AosdbError
from aosdb.scenarios.catalog import (
    RUNNER_COLUMNS,
    SCENARIO_ROLE,
    Catalog,
    check_against_catalog,
    prerequisites,
)
from aosdb.scenarios.model import (
    OUTCOME_KEYS,
    REFERENCE,
    REPEAT_NAME,
    PlannedAssertion,
    PlannedStep,
    Scenario,
    ScenarioError,
    join,
    load_scenario,
    scenario_files,
)
from aosdb.scenarios.tap import Tap, show

# What a diagnostic shows of a row, besides its key and the filtered columns.
SHOWN_COLUMNS = {
    "activity.runs": ("status", "error_code", "policy_violation"),
    "incidents.incidents": ("source_run_id", "severity", "lifecycle_state", "error_code"),
    "policies.policy_proposals": ("triggering_run_id", "proposal_type", "status"),
    "policies.policy_rules": ("name", "rule_type", "enforcement", "source", "status"),
    "policies.prevention_records": ("run_id", "outcome", "guardrail_id", "policy_rule_id"),
}
MAX_SHOWN_ROWS = 10


class _InjectFailed(Exception):
    """An inject step the database (or the runner) refused: the scenario fails, the run goes on."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}")


# ---- substitution --------------------------------------------------------------------------------


class _Unbound(Exception):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def _substitute(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name not in env:
                raise _Unbound(name)
            return env[name]
        return REFERENCE.sub(replace, value)
    if isinstance(value, dict):
        return {k: _substitute(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env) for v in value]
    return value


def _insert_args(args: dict, env: dict[str, str]) -> dict:
    """An insert step, substituted; with `repeat`, its rows repeat times over with ${i} = 1..repeat
    (every row of 1, then of 2, ...), all in the one statement."""
    repeat = args.get("repeat")
    if not repeat:
        return _substitute(args, env)
    rows = [_substitute(row, {**env, REPEAT_NAME: str(i)}) for i in range(1, repeat + 1) for row in args["rows"]]
    return {"table": args["table"], "rows": rows}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _describe_assertion(scenario: Scenario, a: PlannedAssertion) -> str:
    filters = " ".join(f"{k}={show(v)}" for k, v in a.filters.items())
    head = f"{a.kind.table.split('.')[0]}.{a.name}"
    text = f"{scenario.scenario_id} {'no ' if a.negated else ''}{head}"
    if filters:
        text += f" {filters}"
    if a.equals is not None:
        text += f" equals {a.equals}"
    if a.bind:
        text += f" (binds ${{{a.bind}}})"
    return text


# ---- running -------------------------------------------------------------------------------------


@contextmanager
def _as_connecting_user(conn: psycopg.Connection) -> Iterator[None]:
    """Reads aos_scenario may not make (incidents, proposals): as the connecting user, then back."""
    conn.execute("RESET ROLE")
    yield
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(SCENARIO_ROLE)))


def _table(name: str) -> sql.Composable:
    schema, table = name.split(".")
    return sql.Identifier(schema, table)


class _Runner:
    def __init__(self, conn: psycopg.Connection, catalog: Catalog, tap: Tap, keep: bool):
        self.conn = conn
        self.catalog = catalog
        self.tap = tap
        self.keep = keep
        self.check_effect_writes = True  # the runner's own refusal; the database's 42501 stands behind it
        self.committed: list[str] = []
        self.rolled_back: list[str] = []

    # -- one scenario --

    def run(self, s: Scenario) -> None:
        tap, conn = self.tap, self.conn
        title = f"{s.scenario_id}: {s.name}" if s.name != s.scenario_id else s.scenario_id
        tap.note(f"{title} ({s.path}, tenant {s.tenant})")
        env = {"tenant": s.tenant, "scenario_id": s.scenario_id}
        inject_failed = False
        with conn.transaction() as tx:
            conn.execute("SELECT set_config('aos.tenant_id', %s, true), "
                         "set_config('aos.synthetic_scenario_id', %s, true)", (s.tenant, s.scenario_id))
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(SCENARIO_ROLE)))
            try:
                conn.execute("SELECT aos.register_tenant(%s, %s)", (s.tenant, s.name))
                summary = self._inject(s, env)
            except _InjectFailed as exc:
                inject_failed = True
                tap.result(False, f"{s.scenario_id} {exc}")
            else:
                tap.result(True, f"{s.scenario_id} inject: {summary} as {SCENARIO_ROLE}")
            if inject_failed:
                for a in s.assertions:
                    tap.result(True, _describe_assertion(s, a), skip="inject failed")
                tap.result(True, f"{s.scenario_id} synthetic marks", skip="inject failed")
                self.rolled_back.append(s.scenario_id)
                raise psycopg.Rollback(tx)
            conn.execute("RESET ROLE")
            for a in s.assertions:
                self._check(s, a, env)
            self._check_marks(s)
            if not self.keep:
                self.rolled_back.append(s.scenario_id)
                raise psycopg.Rollback(tx)
        self.committed.append(s.scenario_id)

    # -- inject --

    def _inject(self, s: Scenario, env: dict[str, str]) -> str:
        counts: dict[str, int] = {}
        for step in s.inject:
            try:
                if step.kind == "run":
                    repeat = step.args.get("repeat")
                    for i in range(1, (repeat or 1) + 1):
                        args = _substitute(step.args, {**env, REPEAT_NAME: str(i)} if repeat else env)
                        self._run(s, args)
                    counts["run"] = counts.get("run", 0) + (repeat or 1)
                elif step.kind == "insert":
                    args = _insert_args(step.args, env)
                    self._insert(s, step, args)
                    counts["insert"] = counts.get("insert", 0) + len(args["rows"])
                else:
                    getattr(self, f"_{step.kind}")(s, step, _substitute(step.args, env))
                    counts[step.kind] = counts.get(step.kind, 0) + 1
            except psycopg.Error as exc:
                message = error_line(exc)
                if exc.sqlstate == "42501":
                    message += " (the write is forbidden to scenarios: they inject causes, the engines create effects)"
                raise _InjectFailed(step.where, message) from None
        words = {"run": ("run", "runs"), "insert": ("row inserted", "rows inserted"),
                 "approve": ("approval", "approvals"), "reject": ("rejection", "rejections"),
                 "acknowledge": ("acknowledgement", "acknowledgements"), "resolve": ("resolution", "resolutions"),
                 "create_rule": ("rule created", "rules created")}
        return ", ".join(f"{n} {words[k][n != 1]}" for k, n in counts.items())

    def _run(self, s: Scenario, args: dict) -> None:
        status = args["status"]
        options: dict[str, Any] = {"status": "queued" if status == "queued" else "running",
                                   "is_synthetic": True, "synthetic_scenario_id": s.scenario_id}
        for key in ("started_at", "attempts", "trace_id"):
            if args.get(key) is not None:
                options[key] = args[key]
        self.conn.execute("SELECT activity.start_run(%s, %s, %s, %s, %s)",
                          (s.tenant, args["run_id"], args["agent_id"], args.get("goal"), Jsonb(_jsonable(options))))
        for step in args.get("steps") or ():
            if args.get("trace_id") and "trace_id" not in step:
                step = {**step, "trace_id": args["trace_id"]}
            self.conn.execute("SELECT activity.record_step(%s, %s, %s)",
                              (s.tenant, args["run_id"], Jsonb(_jsonable(step))))
        if status in self.catalog.finished_statuses:
            outcome = {k: args[k] for k in OUTCOME_KEYS if args.get(k) is not None}
            self.conn.execute("SELECT activity.finish_run(%s, %s, %s, %s)",
                              (s.tenant, args["run_id"], status, Jsonb(_jsonable(outcome))))
        elif status == "retry":
            self.conn.execute("UPDATE activity.runs SET status = 'retry' WHERE tenant_id = %s AND run_id = %s",
                              (s.tenant, args["run_id"]))

    def _insert(self, s: Scenario, step: PlannedStep, args: dict) -> None:
        table = args["table"]
        if self.check_effect_writes and not self.catalog.may_scenario_write(table):
            raise _InjectFailed(join(step.where, "table"),
                                f"writing {table} is forbidden to scenarios: effects are created by the engines "
                                f"(a scenario injects causes into the activity tables)")
        columns = self.catalog.tables[table]
        names = list(dict.fromkeys(k for row in args["rows"] for k in row))
        marks = [m for m in RUNNER_COLUMNS if m in columns]
        values = []
        for row in args["rows"]:
            items = []
            for name in names:
                if name not in row:
                    items.append(sql.DEFAULT)
                elif columns[name].kind == "jsonb":
                    items.append(sql.SQL("{}::jsonb").format(sql.Literal(Jsonb(_jsonable(row[name])))))
                else:
                    items.append(sql.SQL("{}::{}").format(sql.Literal(row[name]), sql.SQL(columns[name].sql_type)))
            mark_values = {"tenant_id": s.tenant, "is_synthetic": True, "synthetic_scenario_id": s.scenario_id}
            items += [sql.Literal(mark_values[m]) for m in marks]
            values.append(sql.SQL("({})").format(sql.SQL(", ").join(items)))
        self.conn.execute(sql.SQL("INSERT INTO {} ({}) VALUES {}").format(
            _table(table), sql.SQL(", ").join(sql.Identifier(n) for n in names + marks), sql.SQL(", ").join(values)))

    def _lookup(self, s: Scenario, step: PlannedStep, args: dict, of_run: str, by_id: str) -> str:
        if args.get(by_id) is not None:
            return args[by_id]
        run_id = args[of_run]
        if of_run == "proposal_of_run":
            # The proposal the run's incident is linked to: the one it opened, or the pending one of the
            # same rule it joined (a storm's runs share one proposal).
            query = ("SELECT l.proposal_id FROM incidents.incidents AS i "
                     "JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id "
                     "WHERE i.tenant_id = %s AND i.source_run_id = %s AND i.cause_type = 'llm_run'")
            missing = f"run {run_id!r} has no proposal (only a high or critical incident is linked to one)"
        else:
            query = ("SELECT id FROM incidents.incidents WHERE tenant_id = %s AND source_run_id = %s "
                     "AND cause_type = 'llm_run'")
            missing = f"run {run_id!r} has no incident (only a failed run that was not prevented has one)"
        with _as_connecting_user(self.conn):
            row = self.conn.execute(query, (s.tenant, run_id)).fetchone()
        if row is None:
            raise _InjectFailed(join(step.where, of_run), missing)
        return str(row[0])

    def _approve(self, s: Scenario, step: PlannedStep, args: dict) -> None:
        proposal = self._lookup(s, step, args, "proposal_of_run", "proposal_id")
        self.conn.execute("SELECT policies.approve_proposal(%s::uuid, %s, %s)",
                          (proposal, args["reviewed_by"], args.get("notes")))

    def _reject(self, s: Scenario, step: PlannedStep, args: dict) -> None:
        proposal = self._lookup(s, step, args, "proposal_of_run", "proposal_id")
        self.conn.execute("SELECT policies.reject_proposal(%s::uuid, %s, %s)",
                          (proposal, args["reviewed_by"], args.get("notes")))

    def _acknowledge(self, s: Scenario, step: PlannedStep, args: dict) -> None:
        incident = self._lookup(s, step, args, "incident_of_run", "incident_id")
        self.conn.execute("SELECT incidents.acknowledge(%s::uuid, %s)", (incident, args["actor"]))

    def _resolve(self, s: Scenario, step: PlannedStep, args: dict) -> None:
        incident = self._lookup(s, step, args, "incident_of_run", "incident_id")
        if args.get("method") is None:  # the function's own default method
            self.conn.execute("SELECT incidents.resolve(%s::uuid, %s, p_notes => %s)",
                              (incident, args["actor"], args.get("notes")))
        else:
            self.conn.execute("SELECT incidents.resolve(%s::uuid, %s, %s, %s)",
                              (incident, args["actor"], args["method"], args.get("notes")))

    def _create_rule(self, s: Scenario, step: PlannedStep, args: dict) -> None:
        self.conn.execute("SELECT policies.create_rule(%s, %s, %s, %s, %s)",
                          (args["name"], args["rule_type"], Jsonb(_jsonable(args["conditions"])),
                           args["enforcement"], args.get("agent_id")))

    # -- assertions --

    def _rows(self, s: Scenario, table: str, conditions: list[sql.Composable], params: list[Any],
              shown: list[str]) -> list[dict]:
        where = sql.SQL(" AND ").join([sql.SQL("tenant_id = %s"), *conditions])
        query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY created_at, {}").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in shown), _table(table), where, sql.Identifier(shown[0]))
        with self.conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            return cur.execute(query, [s.tenant, *params]).fetchall()

    def _check(self, s: Scenario, a: PlannedAssertion, env: dict[str, str]) -> None:
        description = _describe_assertion(s, a)
        table = a.kind.table
        try:
            filters = _substitute(a.filters, env)
        except _Unbound as exc:
            self.tap.result(False, description, [f"${{{exc.name}}} is unbound: the assertion that binds it failed"])
            return
        columns = self.catalog.tables[table]
        conditions: list[sql.Composable] = []
        params: list[Any] = []
        for name, value in filters.items():
            column = columns[name]
            if value is None:
                conditions.append(sql.SQL("{} IS NULL").format(sql.Identifier(name)))
            elif column.kind == "jsonb":
                conditions.append(sql.SQL("{} @> %s::jsonb").format(sql.Identifier(name)))
                params.append(Jsonb(_jsonable(value)))
            else:
                conditions.append(sql.SQL("{} = %s::{}").format(sql.Identifier(name), sql.SQL(column.sql_type)))
                params.append(value)
        shown = list(dict.fromkeys([a.key_column, *filters, *SHOWN_COLUMNS[table]]))
        flag = [sql.SQL("policy_violation")] if a.kind.mode == "flag" else []
        try:
            with self.conn.transaction():  # a savepoint: a failed read fails this line, not the scenario
                matched = self._rows(s, table, conditions + flag, params, shown)
                everything = None
                if not matched or a.kind.mode == "flag":
                    everything = self._rows(s, table, conditions if a.kind.mode == "flag" else [],
                                            params if a.kind.mode == "flag" else [], shown)
        except psycopg.Error as exc:
            self.tap.result(False, description, [f"the query failed: {error_line(exc)}"])
            return

        diagnostics: list[str] = []
        if a.kind.mode == "count":
            ok = len(matched) == a.equals
            if not ok:
                diagnostics = [f"expected {a.equals} row(s) of {table}, found {len(matched)}"
                               + (":" if matched else "")] + _list(matched)
        elif a.negated:
            ok = not matched
            if not ok:
                what = "run flagged policy_violation" if a.kind.mode == "flag" else f"matching row of {table}"
                diagnostics = [f"expected no {what}, found {len(matched)}:"] + _list(matched)
        else:
            ok = bool(matched)
            if not ok:
                diagnostics = _not_found(a, table, s.tenant, everything or [])
            elif a.bind and len(matched) > 1:
                ok = False
                diagnostics = [f"bind {a.bind} needs exactly one row, {len(matched)} match: add a filter",
                               *_list(matched)]
        if ok and a.bind:
            env[a.bind] = str(matched[0][a.key_column])
        self.tap.result(ok, description, diagnostics)

    def _check_marks(self, s: Scenario) -> None:
        """Every row this transaction wrote in the domain tables is synthetic, with a scenario id.

        Normally that id is this scenario's. Marks travel from cause to effect, so a step
        acting on rows an earlier, kept scenario left (resolving its incident) writes rows with that
        scenario's id; the line names them. A row without marks means an engine lost them, or the
        scenario touched real data."""
        tables = sorted(t for t, cols in self.catalog.tables.items()
                        if t.split(".")[0] in ("activity", "incidents", "policies")
                        and {"tenant_id", "is_synthetic", "synthetic_scenario_id"} <= cols.keys())
        parts = [
            sql.SQL("SELECT {} AS t, is_synthetic AND synthetic_scenario_id IS NOT NULL, synthetic_scenario_id, "
                    "count(*) FROM {} WHERE tenant_id = %(tenant)s "
                    # Rows this transaction inserted or updated: the scenario writes no subtransactions.
                    "AND xmin::text::bigint = pg_current_xact_id()::text::bigint %% 4294967296 "
                    "GROUP BY 2, 3").format(sql.Literal(t), _table(t))
            for t in tables
        ]
        rows = self.conn.execute(sql.SQL(" UNION ALL ").join(parts), {"tenant": s.tenant}).fetchall()
        written = sum(n for *_, n in rows)
        unmarked: dict[str, list[int]] = {}
        for table, marked, _, n in rows:
            counts = unmarked.setdefault(table, [0, 0])
            counts[0] += 0 if marked else n
            counts[1] += n
        bad = {t: c for t, c in unmarked.items() if c[0]}
        if bad:
            self.tap.result(False,
                            f"{s.scenario_id} synthetic marks: every row written is synthetic, with a scenario id",
                            [f"{t}: {u} of {n} rows written lack is_synthetic or synthetic_scenario_id"
                             for t, (u, n) in sorted(bad.items())])
            return
        by_id: dict[str, int] = {}
        for _, _, scenario_id, n in rows:
            by_id[scenario_id] = by_id.get(scenario_id, 0) + n
        others = {k: n for k, n in by_id.items() if k != s.scenario_id}
        text = f"{s.scenario_id} synthetic marks: {written} rows written, all marked {s.scenario_id}"
        if others:
            own_first = sorted(by_id.items(), key=lambda kv: kv[0] != s.scenario_id)
            text = (f"{s.scenario_id} synthetic marks: {written} rows written, all synthetic: "
                    + ", ".join(f"{n} marked {k}" for k, n in own_first)
                    + " (effects of the earlier scenario's rows)")
        self.tap.result(True, text)


def _list(rows: list[dict]) -> list[str]:
    lines = ["  " + ", ".join(f"{k}={show(v)}" for k, v in row.items()) for row in rows[:MAX_SHOWN_ROWS]]
    if len(rows) > MAX_SHOWN_ROWS:
        lines.append(f"  ... and {len(rows) - MAX_SHOWN_ROWS} more")
    return lines


def _not_found(a: PlannedAssertion, table: str, tenant: str, rows: list[dict]) -> list[str]:
    if a.kind.mode == "flag":
        head = (f"no run of tenant {tenant} matching the filters has policy_violation = true; "
                f"{len(rows)} run(s) match the filters" + (":" if rows else ""))
    elif a.filters:
        head = f"no row of {table} matches; tenant {tenant} has {len(rows)}" + (":" if rows else "")
    else:
        head = f"tenant {tenant} has no row in {table}"
    return [head] + _list(rows)


# ---- entry point ---------------------------------------------------------------------------------


def run_paths(dsn: str, paths: list[str], keep: bool, emit: Callable[[str], None],
              _check_effect_writes: bool = True) -> int:
    """Run the scenarios of PATH... (files, or directories of *.yaml) and print TAP through emit.

    Returns the exit status: 0 when every line is ok, 1 when one is not. Raises AosdbError
    (exit 2) when a file is malformed or the database cannot run scenarios: nothing ran then."""
    scenarios = [load_scenario(f) for f in scenario_files(paths)]
    owners: dict[str, str] = {}
    for s in scenarios:
        if s.scenario_id in owners:
            raise ScenarioError(s.path, "scenario_id", f"{s.scenario_id!r} is also the id of {owners[s.scenario_id]}")
        owners[s.scenario_id] = s.path
    try:
        with connect(dsn, autocommit=True) as conn:
            catalog = prerequisites(conn)
            for s in scenarios:
                check_against_catalog(s, catalog)
            tap = Tap(emit)
            emit(f"1..{sum(len(s.assertions) + 2 for s in scenarios)}")
            runner = _Runner(conn, catalog, tap, keep)
            runner.check_effect_writes = _check_effect_writes
            for s in scenarios:
                runner.run(s)
    except AosdbError as exc:
        if exc.exit_code == 2:
            raise
        raise AosdbError(str(exc), exit_code=2) from None
    if keep:
        failed = f"; rolled back after a failed inject: {', '.join(runner.rolled_back)}" if runner.rolled_back else ""
        tap.note(f"committed (--keep): {', '.join(runner.committed) or 'none'}{failed}")
    else:
        tap.note(f"rolled back: every scenario ({len(runner.rolled_back)}); --keep commits them")
    summary = f"{tap.passed} passed, {tap.failed} failed"
    if tap.skipped:
        summary += f", {tap.skipped} skipped"
    tap.note(summary)
    return 1 if tap.failed else 0
