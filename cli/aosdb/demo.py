"""`aosdb demo`: the guided tour `make run` ends with.

Runs the shipped scenarios with --keep, shows the propagation chain they left
behind (run -> incident -> proposal -> rule -> prevention record; the proposal
is the one the incident is linked to, so a storm's runs show its one proposal
and its count), refreshes the analytics views and prints one incident's
evidence through the api facade.
Re-runnable: it first removes what an earlier demo left in the scenarios' tenants.
"""

from __future__ import annotations

import json
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
_ROWS_PER_TENANT = 4

_CHAIN = """
SELECT r.tenant_id, r.run_id, r.status,
       coalesce(i.severity || ' ' || i.lifecycle_state, '-') AS incident,
       coalesce(p.status || ' ' || p.proposal_type
                || CASE WHEN p.incident_count > 1 THEN format(' (%%s incidents)', p.incident_count) ELSE '' END,
                '-') AS proposal,
       coalesce(ru.rule_type || ' ' || ru.enforcement, '-') AS rule,
       coalesce((SELECT string_agg(pr.outcome || ' (' || coalesce(pr.guardrail_id, 'rule') || ')', ', '
                                   ORDER BY pr.outcome, pr.guardrail_id)
                 FROM policies.prevention_records AS pr
                 WHERE pr.tenant_id = r.tenant_id AND pr.run_id = r.run_id), '-') AS prevention,
       row_number() OVER (PARTITION BY r.tenant_id ORDER BY r.created_at, r.run_id) AS n,
       count(*) OVER (PARTITION BY r.tenant_id) AS of_n
FROM activity.runs AS r
LEFT JOIN incidents.incidents AS i ON i.tenant_id = r.tenant_id AND i.source_run_id = r.run_id
-- The proposal the run's incident is linked to: a storm's incidents share one.
LEFT JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id
LEFT JOIN policies.policy_proposals AS p ON p.tenant_id = l.tenant_id AND p.id = l.proposal_id
LEFT JOIN policies.policy_rules AS ru ON ru.tenant_id = p.tenant_id AND ru.source_proposal_id = p.id
WHERE r.tenant_id = ANY(%s)
ORDER BY r.tenant_id, r.created_at, r.run_id
"""


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
    return [fmt.format(*headers), fmt.format(*("-" * w for w in widths))] + [fmt.format(*map(str, r)) for r in rows]


def run_demo(dsn: str, emit: Callable[[str], None]) -> int:
    from aosdb.scenarios import run_paths

    directory = project_root() / "scenarios"
    tenants = scenario_tenants(directory)
    _reset(dsn, tenants)

    emit("== 1. SDSR scenarios inject causes; the engines create the effects (kept, not rolled back)")
    status = run_paths(dsn, [str(directory)], keep=True, emit=emit)

    emit("")
    emit("== 2. The propagation chain: run -> incident -> proposal -> rule -> prevention record")
    with connect(dsn, autocommit=True) as conn:
        rows = conn.execute(_CHAIN, (tenants,)).fetchall()
        shown = [r[:7] for r in rows if r[7] <= _ROWS_PER_TENANT]
        for line in _table(shown, ("tenant", "run", "status", "incident", "proposal", "rule", "prevention")):
            emit(line)
        hidden = sum(1 for r in rows if r[7] > _ROWS_PER_TENANT)
        if hidden:
            emit(f"({hidden} more runs not shown: at most {_ROWS_PER_TENANT} per tenant)")

        emit("")
        emit("== 3. The analytics views, refreshed CONCURRENTLY (aos.view_refreshes)")
        refreshed = refresh_once(conn)
        if refreshed.skipped:
            emit(f"refresh skipped: {refreshed.skipped}")
        for view, elapsed_ms, count in refreshed:
            emit(f"refreshed {view:<26} {count:>6} rows in {elapsed_ms:7.1f} ms")

        emit("")
        emit("== 4. One incident's evidence, as a UI reads it: api.incident_evidence() as aos_api")
        picked = conn.execute(
            """SELECT i.tenant_id, i.id FROM incidents.incidents AS i
               JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id
               WHERE i.tenant_id = ANY(%s)
               ORDER BY i.error_code = 'EXECUTION_TIMEOUT' DESC, i.tenant_id, i.created_at LIMIT 1""",
            (tenants,),
        ).fetchone()
        if picked is None:
            emit("(no incident with a proposal: did the scenarios run?)")
            return status or 1
        tenant, incident_id = picked
        with conn.transaction():
            conn.execute("SET LOCAL ROLE aos_api")
            conn.execute("SELECT set_config('aos.tenant_id', %s, true)", (tenant,))
            evidence = conn.execute("SELECT api.incident_evidence(incident_id => %s)", (incident_id,)).fetchone()[0]
        emit(json.dumps(evidence, indent=2, sort_keys=True, default=str))
    return status
