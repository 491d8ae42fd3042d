-- incidents.v_incidents_o2: one row per incident with its timeline and
-- evidence aggregates and how often its kind recurred, for BI tools and the
-- incidents list. Materialized and refreshed like activity.v_runs_o2;
-- incidents.v_incidents_o2_tenant is the reader's tenant only.
CREATE MATERIALIZED VIEW incidents.v_incidents_o2 AS
SELECT
    i.id AS incident_id,
    i.tenant_id,
    i.severity,
    i.lifecycle_state,
    CASE WHEN i.lifecycle_state IN ('active', 'acked') THEN 'active' ELSE 'resolved' END AS topic,
    i.category,
    i.error_code,
    i.cause_type,
    i.title,
    i.source_run_id,
    i.created_at AS first_seen_at,
    greatest(i.created_at, ev.last_event_at) AS last_seen_at,
    coalesce(ev.event_count, 0) AS event_count,
    coalesce(evd.evidence_count, 0) AS evidence_count,
    coalesce(evd.recovery_attempted, FALSE) AS recovery_attempted,
    -- Earlier incidents of the same tenant and category in the 30 days before this one: the frame up
    -- to this one's created_at, minus its peers (those with the same created_at, itself included).
    -- Not EXCLUDE GROUP, which re-counts the frame for every row: a storm's incidents share one
    -- created_at, and the refresh would grow with the square of their number.
    count(*) OVER (
        PARTITION BY i.tenant_id, i.category ORDER BY i.created_at
        RANGE BETWEEN INTERVAL '30 days' PRECEDING AND CURRENT ROW
    ) - count(*) OVER (PARTITION BY i.tenant_id, i.category, i.created_at) AS recurrence_count,
    -- Null, not an error that stops every tenant's refresh, for an infinite timestamp.
    CASE WHEN isfinite(i.resolved_at) AND isfinite(i.created_at)
        THEN (extract(EPOCH FROM i.resolved_at - i.created_at) * 1000)::bigint
    END AS time_to_resolution_ms,
    i.acknowledged_at,
    i.resolved_at,
    i.resolved_by,
    i.resolution_method,
    i.is_synthetic,
    i.synthetic_scenario_id
FROM incidents.incidents AS i
LEFT JOIN (
    SELECT tenant_id, incident_id, count(*) AS event_count, max(created_at) AS last_event_at
    FROM incidents.incident_events
    GROUP BY tenant_id, incident_id
) AS ev ON ev.tenant_id = i.tenant_id AND ev.incident_id = i.id
LEFT JOIN (
    SELECT tenant_id, incident_id, count(*) AS evidence_count, bool_or(recovery_executed) AS recovery_attempted
    FROM incidents.incident_evidence
    GROUP BY tenant_id, incident_id
) AS evd ON evd.tenant_id = i.tenant_id AND evd.incident_id = i.id
WITH DATA;

CREATE UNIQUE INDEX v_incidents_o2_key ON incidents.v_incidents_o2 (tenant_id, incident_id);
CREATE INDEX v_incidents_o2_tenant_first_seen_idx
ON incidents.v_incidents_o2 (tenant_id, first_seen_at DESC, incident_id DESC);

COMMENT ON MATERIALIZED VIEW incidents.v_incidents_o2 IS
    'Analytics: one row per incident with timeline, evidence and recurrence figures. As fresh as its last refresh '
    '(aos.view_refreshes; aosdb refresh).';
COMMENT ON COLUMN incidents.v_incidents_o2.incident_id IS 'Incident uuid (incidents.incidents.id).';
COMMENT ON COLUMN incidents.v_incidents_o2.tenant_id IS 'Owning tenant.';
COMMENT ON COLUMN incidents.v_incidents_o2.severity IS 'low, medium, high or critical.';
COMMENT ON COLUMN incidents.v_incidents_o2.lifecycle_state IS 'active, acked or resolved.';
COMMENT ON COLUMN incidents.v_incidents_o2.topic IS 'active for active or acked incidents, else resolved.';
COMMENT ON COLUMN incidents.v_incidents_o2.category IS 'Category from the failure class.';
COMMENT ON COLUMN incidents.v_incidents_o2.error_code IS 'Error code the incident was classified by.';
COMMENT ON COLUMN incidents.v_incidents_o2.cause_type IS 'llm_run, system or human.';
COMMENT ON COLUMN incidents.v_incidents_o2.title IS 'Short summary.';
COMMENT ON COLUMN incidents.v_incidents_o2.source_run_id IS 'Run that caused the incident.';
COMMENT ON COLUMN incidents.v_incidents_o2.first_seen_at IS 'When the incident was detected (created_at).';
COMMENT ON COLUMN incidents.v_incidents_o2.last_seen_at IS 'Latest timeline event (or detection when there is none).';
COMMENT ON COLUMN incidents.v_incidents_o2.event_count IS 'Timeline events (incident_events).';
COMMENT ON COLUMN incidents.v_incidents_o2.evidence_count IS 'Pieces of evidence (incident_evidence).';
COMMENT ON COLUMN incidents.v_incidents_o2.recovery_attempted IS 'True when some evidence records an executed recovery.';
COMMENT ON COLUMN incidents.v_incidents_o2.recurrence_count IS
    'Earlier incidents of the same tenant and category detected in the 30 days before this one.';
COMMENT ON COLUMN incidents.v_incidents_o2.time_to_resolution_ms IS 'resolved_at - first_seen_at in milliseconds; null while open.';
COMMENT ON COLUMN incidents.v_incidents_o2.acknowledged_at IS 'When it was acknowledged.';
COMMENT ON COLUMN incidents.v_incidents_o2.resolved_at IS 'When it was resolved.';
COMMENT ON COLUMN incidents.v_incidents_o2.resolved_by IS 'Who resolved it.';
COMMENT ON COLUMN incidents.v_incidents_o2.resolution_method IS 'auto, manual or rollback.';
COMMENT ON COLUMN incidents.v_incidents_o2.is_synthetic IS 'True for effects of an SDSR scenario.';
COMMENT ON COLUMN incidents.v_incidents_o2.synthetic_scenario_id IS 'Scenario the incident stems from.';

GRANT SELECT ON incidents.v_incidents_o2 TO aos_bi;

CREATE VIEW incidents.v_incidents_o2_tenant WITH (security_barrier) AS
SELECT v.* FROM incidents.v_incidents_o2 AS v
WHERE v.tenant_id = (SELECT aos.reader_tenant());
COMMENT ON VIEW incidents.v_incidents_o2_tenant IS
    'incidents.v_incidents_o2 restricted to the reader''s tenant: for tenant-facing BI logins (aos.bi_logins).';
SELECT aos.copy_column_comments('incidents.v_incidents_o2', 'incidents.v_incidents_o2_tenant');

GRANT SELECT ON incidents.v_incidents_o2_tenant TO aos_bi_tenant;

-- The api facades' view: the caller's tenant (aos.current_tenant()). A security
-- barrier, so aos_api's own (pg_temp) functions never see another tenant's rows;
-- its ORDER BY is the list index's, so a facade's first page still comes straight
-- off that index (the barrier keeps the outer ORDER BY out of the subquery).
CREATE VIEW incidents.v_incidents_o2_api WITH (security_barrier) AS
SELECT v.* FROM incidents.v_incidents_o2 AS v
WHERE v.tenant_id = (SELECT aos.current_tenant())
ORDER BY v.tenant_id, v.first_seen_at DESC, v.incident_id DESC;
COMMENT ON VIEW incidents.v_incidents_o2_api IS
    'incidents.v_incidents_o2 restricted to aos.current_tenant(): read by the api facades (aos_api only).';
SELECT aos.copy_column_comments('incidents.v_incidents_o2', 'incidents.v_incidents_o2_api');

GRANT SELECT ON incidents.v_incidents_o2_api TO aos_api;
