-- depends: 0003_activity
-- Incidents domain: the failure classes (reference data), incidents, their
-- append-only timeline and evidence.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;

-- Shared reference data: maps an error code to severity, category and the
-- proposal type its incidents trigger. Edited by the owner only.
CREATE TABLE incidents.failure_classes (
    error_code text NOT NULL,
    severity text NOT NULL,
    category text NOT NULL,
    proposal_type text,
    match_priority integer,
    description text NOT NULL,
    CONSTRAINT failure_classes_pkey PRIMARY KEY (error_code),
    CONSTRAINT failure_classes_match_priority_unique UNIQUE (match_priority),
    CONSTRAINT failure_classes_error_code_format CHECK (error_code ~ '^[A-Z][A-Z0-9_]*$'),
    CONSTRAINT failure_classes_severity_valid CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    CONSTRAINT failure_classes_proposal_type_valid CHECK (proposal_type IN (
        'timeout_policy', 'crash_recovery_policy', 'retry_policy', 'failure_pattern_policy',
        'cost_cap_policy', 'rate_limit_policy'
    )),
    CONSTRAINT failure_classes_match_priority_positive CHECK (match_priority > 0)
);
COMMENT ON TABLE incidents.failure_classes IS
    'Reference data: how a failure''s error code maps to incident severity, category and proposal type. '
    'Shared by all tenants; edited by the owner.';
COMMENT ON COLUMN incidents.failure_classes.error_code IS 'Upper-case error code, e.g. EXECUTION_TIMEOUT.';
COMMENT ON COLUMN incidents.failure_classes.severity IS
    'Severity of incidents of this class: low, medium, high or critical.';
COMMENT ON COLUMN incidents.failure_classes.category IS 'Incident category of this class.';
COMMENT ON COLUMN incidents.failure_classes.proposal_type IS
    'Proposal type a high or critical incident of this class triggers; null when none.';
COMMENT ON COLUMN incidents.failure_classes.match_priority IS
    'Order in which codes are searched for in an error message (lowest first); null: never matched in '
    'messages (UNKNOWN).';
COMMENT ON COLUMN incidents.failure_classes.description IS 'What the class means.';

INSERT INTO incidents.failure_classes (error_code, severity, category, proposal_type, match_priority, description) VALUES
    ('EXECUTION_TIMEOUT', 'high', 'execution_failure', 'timeout_policy', 10, 'The run or one of its steps exceeded its time limit.'),
    ('AGENT_CRASH', 'critical', 'execution_failure', 'crash_recovery_policy', 20, 'The agent process crashed.'),
    ('STEP_FAILURE', 'high', 'execution_failure', 'retry_policy', 30, 'A step failed and the run could not continue.'),
    ('SKILL_ERROR', 'high', 'execution_failure', 'failure_pattern_policy', 40, 'A skill returned an error.'),
    ('BUDGET_EXCEEDED', 'medium', 'budget_exceeded', 'cost_cap_policy', 50, 'The run exceeded its cost or token budget.'),
    ('RATE_LIMIT_EXCEEDED', 'medium', 'rate_limit', 'rate_limit_policy', 60, 'A provider or platform rate limit was hit.'),
    ('RESOURCE_EXHAUSTION', 'medium', 'resource_exhaustion', NULL, 70, 'Memory, disk or another resource ran out.'),
    ('RETRY_EXHAUSTED', 'medium', 'execution_failure', NULL, 80, 'Every retry of the run failed.'),
    ('CANCELLED', 'low', 'manual', NULL, 90, 'The run was cancelled.'),
    ('MANUAL_STOP', 'low', 'manual', NULL, 100, 'An operator stopped the run.'),
    ('UNKNOWN', 'medium', 'execution_failure', 'failure_pattern_policy', NULL, 'No known code could be identified.');

GRANT SELECT ON incidents.failure_classes TO aos_incident_engine, aos_proposal_engine, aos_policy_engine;

CREATE TABLE incidents.incidents (
    tenant_id text NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    source_run_id text,
    llm_run_id uuid,
    title text NOT NULL,
    severity text NOT NULL,
    lifecycle_state text NOT NULL DEFAULT 'active',
    category text NOT NULL,
    error_code text,
    error_message text,
    cause_type text NOT NULL DEFAULT 'llm_run',
    created_at timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    acknowledged_by text,
    resolved_at timestamptz,
    resolved_by text,
    resolution_method text,
    resolution_notes text,
    is_synthetic boolean NOT NULL DEFAULT FALSE,
    synthetic_scenario_id text,
    CONSTRAINT incidents_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT incidents_tenant_fk FOREIGN KEY (tenant_id) REFERENCES aos.tenants (tenant_id),
    CONSTRAINT incidents_source_run_fk FOREIGN KEY (tenant_id, source_run_id)
        REFERENCES activity.runs (tenant_id, run_id),
    CONSTRAINT incidents_llm_run_fk FOREIGN KEY (tenant_id, llm_run_id)
        REFERENCES activity.runs (tenant_id, id),
    CONSTRAINT incidents_severity_valid CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    CONSTRAINT incidents_lifecycle_state_valid CHECK (lifecycle_state IN ('active', 'acked', 'resolved')),
    CONSTRAINT incidents_cause_type_valid CHECK (cause_type IN ('llm_run', 'system', 'human')),
    CONSTRAINT incidents_resolution_method_valid CHECK (resolution_method IN ('auto', 'manual', 'rollback')),
    CONSTRAINT incidents_title_not_blank CHECK (btrim(title) <> ''),
    CONSTRAINT incidents_llm_run_has_source CHECK (cause_type <> 'llm_run' OR source_run_id IS NOT NULL),
    CONSTRAINT incidents_acked_has_acknowledgement CHECK (
        lifecycle_state <> 'acked' OR (acknowledged_at IS NOT NULL AND acknowledged_by IS NOT NULL)
    ),
    CONSTRAINT incidents_resolved_has_resolution CHECK (
        lifecycle_state <> 'resolved'
        OR (resolved_at IS NOT NULL AND resolved_by IS NOT NULL AND resolution_method IS NOT NULL)
    ),
    CONSTRAINT incidents_scenario_implies_synthetic CHECK (synthetic_scenario_id IS NULL OR is_synthetic)
);
COMMENT ON TABLE incidents.incidents IS
    'What went wrong: one row per incident. A failed run gets exactly one, created by the IncidentEngine.';
COMMENT ON COLUMN incidents.incidents.tenant_id IS 'Owning tenant; first column of every key.';
COMMENT ON COLUMN incidents.incidents.id IS 'Generated uuid of the incident.';
COMMENT ON COLUMN incidents.incidents.source_run_id IS 'Run that caused the incident (activity.runs.run_id).';
COMMENT ON COLUMN incidents.incidents.llm_run_id IS 'The same run by its uuid (activity.runs.id).';
COMMENT ON COLUMN incidents.incidents.title IS 'Short human-readable summary.';
COMMENT ON COLUMN incidents.incidents.severity IS 'low, medium, high or critical (from the failure class).';
COMMENT ON COLUMN incidents.incidents.lifecycle_state IS 'active, acked or resolved.';
COMMENT ON COLUMN incidents.incidents.category IS 'Category from the failure class, e.g. execution_failure.';
COMMENT ON COLUMN incidents.incidents.error_code IS
    'Error code the incident was classified by (UNKNOWN when none was found).';
COMMENT ON COLUMN incidents.incidents.error_message IS 'Error message of the failure.';
COMMENT ON COLUMN incidents.incidents.cause_type IS 'llm_run (a failed run), system or human.';
COMMENT ON COLUMN incidents.incidents.created_at IS 'When the incident was detected.';
COMMENT ON COLUMN incidents.incidents.acknowledged_at IS 'When an operator acknowledged it.';
COMMENT ON COLUMN incidents.incidents.acknowledged_by IS 'Who acknowledged it.';
COMMENT ON COLUMN incidents.incidents.resolved_at IS 'When it was resolved.';
COMMENT ON COLUMN incidents.incidents.resolved_by IS 'Who resolved it.';
COMMENT ON COLUMN incidents.incidents.resolution_method IS 'auto, manual or rollback.';
COMMENT ON COLUMN incidents.incidents.resolution_notes IS 'Free-text notes on the resolution.';
COMMENT ON COLUMN incidents.incidents.is_synthetic IS 'True for effects of an SDSR scenario (copied from the run).';
COMMENT ON COLUMN incidents.incidents.synthetic_scenario_id IS
    'Scenario whose run caused the incident; implies is_synthetic.';

-- A failed run has exactly one incident: the key the IncidentEngine upserts on.
CREATE UNIQUE INDEX incidents_one_per_failed_run ON incidents.incidents (tenant_id, source_run_id)
    WHERE cause_type = 'llm_run';
CREATE INDEX incidents_llm_run_idx ON incidents.incidents (tenant_id, llm_run_id);
CREATE INDEX incidents_tenant_created_at_idx ON incidents.incidents (tenant_id, created_at DESC);

GRANT SELECT, INSERT, UPDATE ON incidents.incidents TO aos_incident_engine;
GRANT SELECT ON incidents.incidents TO aos_proposal_engine;
ALTER TABLE incidents.incidents ENABLE ROW LEVEL SECURITY;
CREATE POLICY incidents_tenant_isolation ON incidents.incidents
    USING (tenant_id = (SELECT aos.current_tenant()))
    WITH CHECK (tenant_id = (SELECT aos.current_tenant()));
CREATE POLICY incidents_trusted_all ON incidents.incidents TO aos_incident_engine, aos_proposal_engine
    USING (TRUE) WITH CHECK (TRUE);

CREATE TABLE incidents.incident_events (
    tenant_id text NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    incident_id uuid NOT NULL,
    event_type text NOT NULL,
    actor text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    is_synthetic boolean NOT NULL DEFAULT FALSE,
    synthetic_scenario_id text,
    CONSTRAINT incident_events_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT incident_events_tenant_fk FOREIGN KEY (tenant_id) REFERENCES aos.tenants (tenant_id),
    CONSTRAINT incident_events_incident_fk FOREIGN KEY (tenant_id, incident_id)
        REFERENCES incidents.incidents (tenant_id, id),
    CONSTRAINT incident_events_event_type_valid CHECK (
        event_type IN ('detected', 'acknowledged', 'resolved', 'evidence_added')
    ),
    CONSTRAINT incident_events_actor_not_blank CHECK (btrim(actor) <> ''),
    CONSTRAINT incident_events_details_is_object CHECK (jsonb_typeof(details) = 'object'),
    CONSTRAINT incident_events_scenario_implies_synthetic CHECK (synthetic_scenario_id IS NULL OR is_synthetic)
);
COMMENT ON TABLE incidents.incident_events IS
    'Append-only timeline of an incident: detected, acknowledged, resolved, evidence_added.';
COMMENT ON COLUMN incidents.incident_events.tenant_id IS 'Owning tenant; first column of every key.';
COMMENT ON COLUMN incidents.incident_events.id IS 'Generated uuid of the event.';
COMMENT ON COLUMN incidents.incident_events.incident_id IS 'Incident the event belongs to.';
COMMENT ON COLUMN incidents.incident_events.event_type IS 'detected, acknowledged, resolved or evidence_added.';
COMMENT ON COLUMN incidents.incident_events.actor IS 'Who caused the event: an engine name or an operator.';
COMMENT ON COLUMN incidents.incident_events.details IS 'Event details (a JSON object).';
COMMENT ON COLUMN incidents.incident_events.created_at IS
    'When the event happened (clock time, so events of one transaction keep their order).';
COMMENT ON COLUMN incidents.incident_events.is_synthetic IS 'True for effects of an SDSR scenario.';
COMMENT ON COLUMN incidents.incident_events.synthetic_scenario_id IS
    'Scenario the event stems from; implies is_synthetic.';

CREATE INDEX incident_events_incident_idx ON incidents.incident_events (tenant_id, incident_id, created_at);

GRANT SELECT, INSERT ON incidents.incident_events TO aos_incident_engine;
ALTER TABLE incidents.incident_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY incident_events_tenant_isolation ON incidents.incident_events
    USING (tenant_id = (SELECT aos.current_tenant()))
    WITH CHECK (tenant_id = (SELECT aos.current_tenant()));
CREATE POLICY incident_events_trusted_all ON incidents.incident_events TO aos_incident_engine
    USING (TRUE) WITH CHECK (TRUE);

CREATE TABLE incidents.incident_evidence (
    tenant_id text NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    incident_id uuid NOT NULL,
    evidence_type text NOT NULL,
    run_id text,
    recovery_executed boolean NOT NULL DEFAULT FALSE,
    payload jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    is_synthetic boolean NOT NULL DEFAULT FALSE,
    synthetic_scenario_id text,
    CONSTRAINT incident_evidence_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT incident_evidence_tenant_fk FOREIGN KEY (tenant_id) REFERENCES aos.tenants (tenant_id),
    CONSTRAINT incident_evidence_incident_fk FOREIGN KEY (tenant_id, incident_id)
        REFERENCES incidents.incidents (tenant_id, id),
    CONSTRAINT incident_evidence_run_fk FOREIGN KEY (tenant_id, run_id)
        REFERENCES activity.runs (tenant_id, run_id),
    CONSTRAINT incident_evidence_evidence_type_valid CHECK (
        evidence_type IN ('log', 'trace', 'metric', 'action', 'postmortem')
    ),
    CONSTRAINT incident_evidence_payload_is_object CHECK (jsonb_typeof(payload) = 'object'),
    CONSTRAINT incident_evidence_scenario_implies_synthetic CHECK (synthetic_scenario_id IS NULL OR is_synthetic)
);
COMMENT ON TABLE incidents.incident_evidence IS
    'Append-only evidence attached to an incident: logs, traces, metrics, actions, postmortems.';
COMMENT ON COLUMN incidents.incident_evidence.tenant_id IS 'Owning tenant; first column of every key.';
COMMENT ON COLUMN incidents.incident_evidence.id IS 'Generated uuid of the evidence.';
COMMENT ON COLUMN incidents.incident_evidence.incident_id IS 'Incident the evidence supports.';
COMMENT ON COLUMN incidents.incident_evidence.evidence_type IS 'log, trace, metric, action or postmortem.';
COMMENT ON COLUMN incidents.incident_evidence.run_id IS
    'Run the evidence was taken from (activity.runs.run_id), if any.';
COMMENT ON COLUMN incidents.incident_evidence.recovery_executed IS
    'True when the evidence records a recovery action that was executed.';
COMMENT ON COLUMN incidents.incident_evidence.payload IS 'The evidence itself (a JSON object).';
COMMENT ON COLUMN incidents.incident_evidence.created_at IS
    'When the evidence was added (clock time, so evidence of one transaction keeps its order).';
COMMENT ON COLUMN incidents.incident_evidence.is_synthetic IS 'True for effects of an SDSR scenario.';
COMMENT ON COLUMN incidents.incident_evidence.synthetic_scenario_id IS
    'Scenario the evidence stems from; implies is_synthetic.';

CREATE INDEX incident_evidence_incident_idx ON incidents.incident_evidence (tenant_id, incident_id, created_at);
CREATE INDEX incident_evidence_run_idx ON incidents.incident_evidence (tenant_id, run_id);

GRANT SELECT, INSERT ON incidents.incident_evidence TO aos_incident_engine;
ALTER TABLE incidents.incident_evidence ENABLE ROW LEVEL SECURITY;
CREATE POLICY incident_evidence_tenant_isolation ON incidents.incident_evidence
    USING (tenant_id = (SELECT aos.current_tenant()))
    WITH CHECK (tenant_id = (SELECT aos.current_tenant()));
CREATE POLICY incident_evidence_trusted_all ON incidents.incident_evidence TO aos_incident_engine
    USING (TRUE) WITH CHECK (TRUE);

RESET ROLE;
