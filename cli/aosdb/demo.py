"""`aosdb demo`: the guided tour `make run` ends with, on one screen (at most 60 lines).

1. Runs the shipped scenarios with --keep (one line per scenario; --verbose prints the TAP).
2. Shows the propagation chain they left behind, the runs with effects first: frozen, throttled,
   prevented or blocked, then those that raised an incident (run -> incident -> proposal -> rule ->
   prevention record; the proposal is the one the incident is linked to).
3. Refreshes the analytics views.
4. As an operator, acknowledges one incident and attaches evidence; then shows what a UI reads
   for it through the api facade, as aos_api.
5. Says what to try next.

Re-runnable: it first removes what an earlier demo left in the scenarios' tenants. It commits
synthetic tenants, so on a database other than the embedded cluster's it needs --yes.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import yaml

from aosdb.config import project_root
from aosdb.db import connect
from aosdb.refresh import refresh_once

# Children before parents, so foreign keys never stand in the way.
_DEMO_TABLES = (
    "policies.prevention_records", "policies.policy_rules", "policies.proposal_incidents", "policies.policy_proposals",
    "incidents.incident_evidence", "incidents.incident_events", "incidents.incidents",
    "activity.aos_trace_steps", "activity.aos_traces", "activity.runs", "aos.events",
)
CHAIN_ROWS = 12
# How many runs of each rank the chain shows (frozen, throttled, prevented, blocked, warned or
# audited, raised an incident), one per tenant before a second: every kind of effect shows.
_SHOWN_PER_RANK = {0: 2, 1: 2, 2: 2, 3: 2, 4: 1, 5: 3}
_NO_EFFECT = 6
DEMO_ACTOR = "demo-operator"

# Every run of the scenarios' tenants with its effects, and a rank: the runs a guardrail or rule acted
# on first (frozen, throttled, prevented, blocked, then warned or audited), then those that raised
# an incident, then the rest.
_CHAIN = """
SELECT c.tenant_id, c.run_id, c.status, c.incident, c.proposal, c.rule, c.prevention, c.rank,
       row_number() OVER (PARTITION BY c.tenant_id, c.rank ORDER BY c.created_at, c.run_id) AS nth
FROM (
    SELECT r.tenant_id, r.run_id, r.status, r.created_at,
           coalesce(i.severity || ' ' || i.lifecycle_state, '-') AS incident,
           coalesce(p.status || ' ' || p.proposal_type
                    || CASE WHEN p.incident_count > 1 THEN format(' (%%s incidents)', p.incident_count) ELSE '' END,
                    '-') AS proposal,
           coalesce(ru.rule_type || ' ' || ru.enforcement, '-') AS rule,
           coalesce(pr.shown, '-') AS prevention,
           CASE WHEN pr.outcomes && ARRAY['frozen'] THEN 0
                WHEN pr.outcomes && ARRAY['throttled'] THEN 1
                WHEN pr.outcomes && ARRAY['prevented'] THEN 2
                WHEN pr.outcomes && ARRAY['blocked'] THEN 3
                WHEN pr.outcomes IS NOT NULL THEN 4
                WHEN i.id IS NOT NULL THEN 5
                ELSE 6 END AS rank
    FROM activity.runs AS r
    LEFT JOIN incidents.incidents AS i ON i.tenant_id = r.tenant_id AND i.source_run_id = r.run_id
    -- The proposal the run's incident is linked to: a storm's incidents share one.
    LEFT JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id
    LEFT JOIN policies.policy_proposals AS p ON p.tenant_id = l.tenant_id AND p.id = l.proposal_id
    LEFT JOIN policies.policy_rules AS ru ON ru.tenant_id = p.tenant_id AND ru.source_proposal_id = p.id
    LEFT JOIN LATERAL (
        SELECT string_agg(x.outcome || ' (' || coalesce(x.guardrail_id, 'rule') || ')', ', '
                          ORDER BY x.outcome, x.guardrail_id) AS shown,
               array_agg(x.outcome::text) AS outcomes
        FROM policies.prevention_records AS x
        WHERE x.tenant_id = r.tenant_id AND x.run_id = r.run_id
    ) AS pr ON TRUE
    WHERE r.tenant_id = ANY(%s)
) AS c
ORDER BY c.rank, nth, c.rank = 5 AND c.proposal = '-', c.tenant_id, c.created_at, c.run_id
"""

_TAP_LINE = re.compile(r"^(ok|not ok) \d+ - (\S+) ")
_SCENARIO_HEADER = re.compile(r"^# (\S+): (.*) \((.*), tenant (\S+)\)$")


def scenario_tenants(directory: Path) -> list[str]:
    tenants = []
    for path in sorted(directory.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(doc, dict) and isinstance(doc.get("tenant"), str):
            tenants.append(doc["tenant"])
    return tenants


def _reset(dsn: str, tenants: list[str]) -> None:
    """Remove the synthetic rows an earlier demo committed in these tenants (as the owner)."""
    with connect(dsn) as conn:
        for table in _DEMO_TABLES:
            synthetic = "" if table == "aos.events" else " AND is_synthetic"
            conn.execute(f"DELETE FROM {table} WHERE tenant_id = ANY(%s){synthetic}", (tenants,))
        conn.commit()


def _table(rows: list[tuple], headers: tuple[str, ...]) -> list[str]:
    widths = [max(len(str(v)) for v in col) for col in zip(headers, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*headers).rstrip(), fmt.format(*("-" * w for w in widths)).rstrip()] \
        + [fmt.format(*map(str, r)).rstrip() for r in rows]


class _ScenarioSummary:
    """Collects the TAP of the scenario runner: per scenario, its name and its ok / not ok counts."""

    def __init__(self) -> None:
        self.scenarios: OrderedDict[str, dict] = OrderedDict()
        self.failures: list[str] = []
        self.notes: list[str] = []

    def __call__(self, line: str) -> None:
        header = _SCENARIO_HEADER.match(line)
        if header:
            self.scenarios[header.group(1)] = {"name": header.group(2), "ok": 0, "failed": 0}
            return
        tap = _TAP_LINE.match(line)
        if tap:
            entry = self.scenarios.setdefault(tap.group(2), {"name": "", "ok": 0, "failed": 0})
            entry["ok" if tap.group(1) == "ok" else "failed"] += 1
            if tap.group(1) == "not ok":
                self.failures.append(line)
        elif line.startswith("# ") and not line.startswith("#   "):
            self.notes.append(line[2:])

    def lines(self) -> list[str]:
        width = max((len(s) for s in self.scenarios), default=0)
        out = []
        for scenario_id, s in self.scenarios.items():
            total = s["ok"] + s["failed"]
            verdict = "ok    " if not s["failed"] else "FAILED"
            failed = f", {s['failed']} failed" if s["failed"] else ""
            out.append(f"{verdict} {scenario_id:<{width}}  {total:>3} checks{failed}  {s['name']}")
        return out + self.failures


def _pick(rows: list[tuple]) -> list[tuple]:
    """At most _SHOWN_PER_RANK runs of each rank with effects, in rank order (rows come ordered by
    rank, then first-of-their-tenant first); the runs without effects only to fill CHAIN_ROWS."""
    shown: list[tuple] = []
    for rank, cap in _SHOWN_PER_RANK.items():
        shown += [r for r in rows if r[7] == rank][:cap]
    return (shown + [r for r in rows if r[7] == _NO_EFFECT])[:CHAIN_ROWS]


def _evidence_summary(evidence: dict) -> list[str]:
    incident = evidence.get("incident") or {}
    run = evidence.get("source_run") or {}
    lines = [f"incident   {incident.get('severity')} {incident.get('error_code')} "
             f"\"{incident.get('title')}\" ({incident.get('lifecycle_state')})",
             f"source run {run.get('run_id')} ({run.get('status')}, {run.get('agent_id')})"]
    for item in evidence.get("evidence") or []:
        lines.append(f"evidence   {item.get('evidence_type')}: {json.dumps(item.get('payload'), sort_keys=True)}")
    timeline = [e.get("event_type") for e in evidence.get("timeline") or []]
    lines.append(f"timeline   {' -> '.join(str(t) for t in timeline) or '-'}")
    proposal = evidence.get("proposal") or {}
    if proposal:
        lines.append(f"proposal   {proposal.get('status')} {proposal.get('proposal_type')} "
                     f"({proposal.get('incident_count')} incident(s) linked)")
    return lines


def run_demo(dsn: str, emit: Callable[[str], None], verbose: bool = False) -> int:
    from aosdb.scenarios import run_paths

    directory = project_root() / "scenarios"
    tenants = scenario_tenants(directory)
    _reset(dsn, tenants)

    emit("== 1. SDSR scenarios inject causes; the engines create the effects (kept in sdsr-* tenants)")
    summary = _ScenarioSummary()
    status = run_paths(dsn, [str(directory)], keep=True, emit=emit if verbose else summary)
    if not verbose:
        for line in summary.lines():
            emit(line)
        emit(summary.notes[-1] if summary.notes else "")

    with connect(dsn, autocommit=True) as conn:
        rows = conn.execute(_CHAIN, (tenants,)).fetchall()
        with_effects = [r for r in rows if r[7] < _NO_EFFECT]
        emit("")
        emit(f"== 2. The propagation chain: {len(rows)} runs, {len(with_effects)} with effects "
             "(those a guardrail or rule acted on first, then those that raised an incident)")
        shown = _pick(rows)
        for line in _table([r[:7] for r in shown], ("tenant", "run", "status", "incident", "proposal", "rule",
                                                    "prevention")):
            emit(line)
        if len(rows) > len(shown):
            more = len(with_effects) - sum(1 for r in shown if r[7] < _NO_EFFECT)
            emit(f"({len(rows) - len(shown)} more runs, {more} of them with effects: "
                 "SELECT * FROM activity.v_runs_o2 WHERE tenant_id LIKE 'sdsr-%')")

        emit("")
        emit("== 3. The analytics views, refreshed CONCURRENTLY by CALL aos.refresh_analytics()")
        done = refresh_once(conn)
        if done.skipped:
            emit(f"refresh skipped: {done.skipped}")
        for view, elapsed_ms, count in done:
            emit(f"refreshed {view:<26} {count:>6} rows in {elapsed_ms:7.1f} ms")

        emit("")
        picked = conn.execute(
            """SELECT i.tenant_id, i.id, i.source_run_id FROM incidents.incidents AS i
               JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id
               WHERE i.tenant_id = ANY(%s) AND i.lifecycle_state = 'active'
               ORDER BY i.error_code = 'EXECUTION_TIMEOUT' DESC, i.tenant_id, i.created_at LIMIT 1""",
            (tenants,),
        ).fetchone()
        if picked is None:
            emit("(no active incident with a proposal: did the scenarios run?)")
            return status or 1
        tenant, incident_id, run_id = picked
        emit(f"== 4. An operator acknowledges incident {incident_id} and attaches a log; a UI reads it "
             f"with api.incident_evidence() as aos_api (tenant {tenant})")
        with conn.transaction():
            conn.execute("SET LOCAL ROLE aos_operator")
            conn.execute("SELECT set_config('aos.tenant_id', %s, true)", (tenant,))
            conn.execute("SELECT incidents.acknowledge(%s, %s)", (incident_id, DEMO_ACTOR))
            conn.execute("SELECT incidents.add_evidence(%s, 'log', %s::jsonb)",
                         (incident_id, json.dumps({"line": f"run {run_id}: step 3 exceeded 300s", "by": DEMO_ACTOR})))
        with conn.transaction():
            conn.execute("SET LOCAL ROLE aos_api")
            conn.execute("SELECT set_config('aos.tenant_id', %s, true)", (tenant,))
            evidence = conn.execute("SELECT api.incident_evidence(%s)", (incident_id,)).fetchone()[0]
        if verbose:
            emit(json.dumps(evidence, indent=2, sort_keys=True, default=str))
        else:
            for line in _evidence_summary(evidence):
                emit(line)

    emit("")
    emit("== What next")
    emit('psql "$(.venv/bin/aosdb db url)"               # look around: \\dn, \\d+ activity.runs')
    emit("  SELECT * FROM incidents.v_incidents_o2;       # the BI views (README: Analytics views for BI tools)")
    emit("  SELECT api.incident_evidence('<id>');         # after SET aos.tenant_id = '<tenant>' (README: Facades)")
    emit("a BI login: CREATE ROLE metabase LOGIN PASSWORD '...' IN ROLE aos_bi;   (README: How to connect)")
    emit(".venv/bin/aosdb watch                           # follow the events as they commit")
    emit("make test                                        # every suite;  .venv/bin/aosdb db stop  # when done")
    return status
