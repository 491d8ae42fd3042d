-- depends: 0002_schemas_and_tenancy
-- Activity domain: runs, traces and trace steps, written by the WorkerRunner.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;

CREATE TABLE activity.runs (
    tenant_id text NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    run_id text NOT NULL,
    agent_id text NOT NULL,
    goal text,
    status text NOT NULL,
    state text NOT NULL GENERATED ALWAYS AS (
        CASE WHEN status IN ('succeeded', 'failed', 'halted', 'aborted') THEN 'completed' ELSE 'live' END
    ) STORED,
    error_code text,
    error_message text,
    attempts integer NOT NULL DEFAULT 1,
    input_tokens bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    estimated_cost_usd numeric(12, 6) NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    completed_at timestamptz,
    duration_ms bigint,
    policy_violation boolean NOT NULL DEFAULT FALSE,
    is_synthetic boolean NOT NULL DEFAULT FALSE,
    synthetic_scenario_id text,
    CONSTRAINT runs_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT runs_run_id_unique UNIQUE (tenant_id, run_id),
    CONSTRAINT runs_tenant_fk FOREIGN KEY (tenant_id) REFERENCES aos.tenants (tenant_id),
    CONSTRAINT runs_status_valid CHECK (
        status IN ('queued', 'running', 'succeeded', 'failed', 'retry', 'halted', 'aborted')
    ),
    CONSTRAINT runs_run_id_not_blank CHECK (btrim(run_id) <> ''),
    CONSTRAINT runs_agent_id_not_blank CHECK (btrim(agent_id) <> ''),
    CONSTRAINT runs_attempts_non_negative CHECK (attempts >= 0),
    CONSTRAINT runs_tokens_non_negative CHECK (input_tokens >= 0 AND output_tokens >= 0),
    CONSTRAINT runs_cost_non_negative CHECK (estimated_cost_usd >= 0),
    CONSTRAINT runs_duration_non_negative CHECK (duration_ms >= 0),
    CONSTRAINT runs_completed_after_started CHECK (completed_at >= started_at),
    CONSTRAINT runs_scenario_implies_synthetic CHECK (synthetic_scenario_id IS NULL OR is_synthetic)
);
COMMENT ON TABLE activity.runs IS
    'One row per agent run, as reported by the WorkerRunner. Holds no copy of another domain''s facts: '
    'incidents and prevention records point here.';
COMMENT ON COLUMN activity.runs.tenant_id IS 'Owning tenant; first column of every key.';
COMMENT ON COLUMN activity.runs.id IS 'Generated uuid of the run (target of incidents.llm_run_id).';
COMMENT ON COLUMN activity.runs.run_id IS
    'The worker''s own run identifier, unique per tenant (target of source_run_id, triggering_run_id and '
    'prevention_records.run_id).';
COMMENT ON COLUMN activity.runs.agent_id IS 'Agent that executed the run.';
COMMENT ON COLUMN activity.runs.goal IS
    'The goal or prompt the run was given; checked by pattern_block rules and guardrail dg-005.';
COMMENT ON COLUMN activity.runs.status IS 'queued, running, succeeded, failed, retry, halted or aborted.';
COMMENT ON COLUMN activity.runs.state IS
    'Generated: completed when status is succeeded, failed, halted or aborted, else live.';
COMMENT ON COLUMN activity.runs.error_code IS
    'Failure code reported by the worker (e.g. EXECUTION_TIMEOUT); null lets the engine derive it from error_message.';
COMMENT ON COLUMN activity.runs.error_message IS 'Failure message reported by the worker.';
COMMENT ON COLUMN activity.runs.attempts IS 'How many times the run was attempted (non-negative).';
COMMENT ON COLUMN activity.runs.input_tokens IS 'LLM input tokens consumed (non-negative).';
COMMENT ON COLUMN activity.runs.output_tokens IS 'LLM output tokens produced (non-negative).';
COMMENT ON COLUMN activity.runs.estimated_cost_usd IS 'Estimated cost in US dollars, 6 decimal places (non-negative).';
COMMENT ON COLUMN activity.runs.created_at IS 'When the row was recorded.';
COMMENT ON COLUMN activity.runs.started_at IS 'When the run started.';
COMMENT ON COLUMN activity.runs.completed_at IS 'When the run reached a terminal status; not before started_at.';
COMMENT ON COLUMN activity.runs.duration_ms IS 'Wall-clock duration in milliseconds (non-negative).';
COMMENT ON COLUMN activity.runs.policy_violation IS
    'Set by the PolicyEngine when a rule or guardrail was violated; the only column it may update.';
COMMENT ON COLUMN activity.runs.is_synthetic IS 'True for rows injected by an SDSR scenario.';
COMMENT ON COLUMN activity.runs.synthetic_scenario_id IS 'Scenario that injected the row; implies is_synthetic.';

CREATE INDEX runs_tenant_created_at_idx ON activity.runs (tenant_id, created_at DESC);

GRANT SELECT, INSERT, UPDATE ON activity.runs TO aos_worker, aos_scenario;
GRANT SELECT ON activity.runs TO aos_policy_engine;
GRANT UPDATE (policy_violation) ON activity.runs TO aos_policy_engine;
ALTER TABLE activity.runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY runs_tenant_isolation ON activity.runs
    USING (tenant_id = (SELECT aos.current_tenant()))
    WITH CHECK (tenant_id = (SELECT aos.current_tenant()));
CREATE POLICY runs_trusted_all ON activity.runs TO aos_worker, aos_policy_engine
    USING (TRUE) WITH CHECK (TRUE);

CREATE TABLE activity.aos_traces (
    tenant_id text NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    trace_id text NOT NULL,
    run_id text NOT NULL,
    status text NOT NULL DEFAULT 'running',
    started_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    metadata jsonb NOT NULL DEFAULT '{}',
    is_synthetic boolean NOT NULL DEFAULT FALSE,
    synthetic_scenario_id text,
    CONSTRAINT aos_traces_pkey PRIMARY KEY (tenant_id, id),
    CONSTRAINT aos_traces_trace_id_unique UNIQUE (tenant_id, trace_id),
    CONSTRAINT aos_traces_tenant_fk FOREIGN KEY (tenant_id) REFERENCES aos.tenants (tenant_id),
    CONSTRAINT aos_traces_run_fk FOREIGN KEY (tenant_id, run_id) REFERENCES activity.runs (tenant_id, run_id),
    CONSTRAINT aos_traces_status_valid CHECK (status IN ('running', 'completed', 'failed', 'aborted')),
    CONSTRAINT aos_traces_trace_id_not_blank CHECK (btrim(trace_id) <> ''),
    CONSTRAINT aos_traces_completed_after_started CHECK (completed_at >= started_at),
    CONSTRAINT aos_traces_metadata_is_object CHECK (jsonb_typeof(metadata) = 'object'),
    CONSTRAINT aos_traces_scenario_implies_synthetic CHECK (synthetic_scenario_id IS NULL OR is_synthetic)
);
COMMENT ON TABLE activity.aos_traces IS
    'Execution traces of runs: a run has zero or more traces, each an ordered list of steps.';
COMMENT ON COLUMN activity.aos_traces.tenant_id IS 'Owning tenant; first column of every key.';
COMMENT ON COLUMN activity.aos_traces.id IS 'Generated uuid of the trace.';
COMMENT ON COLUMN activity.aos_traces.trace_id IS 'The worker''s trace identifier, unique per tenant.';
COMMENT ON COLUMN activity.aos_traces.run_id IS 'Run the trace belongs to (activity.runs.run_id).';
COMMENT ON COLUMN activity.aos_traces.status IS 'running, completed, failed or aborted.';
COMMENT ON COLUMN activity.aos_traces.started_at IS 'When the trace started.';
COMMENT ON COLUMN activity.aos_traces.completed_at IS 'When the trace ended; not before started_at.';
COMMENT ON COLUMN activity.aos_traces.metadata IS 'Free-form worker metadata (a JSON object).';
COMMENT ON COLUMN activity.aos_traces.is_synthetic IS 'True for rows injected by an SDSR scenario.';
COMMENT ON COLUMN activity.aos_traces.synthetic_scenario_id IS 'Scenario that injected the row; implies is_synthetic.';

CREATE INDEX aos_traces_run_idx ON activity.aos_traces (tenant_id, run_id);

GRANT SELECT, INSERT, UPDATE ON activity.aos_traces TO aos_worker, aos_scenario;
GRANT SELECT ON activity.aos_traces TO aos_policy_engine;
ALTER TABLE activity.aos_traces ENABLE ROW LEVEL SECURITY;
CREATE POLICY aos_traces_tenant_isolation ON activity.aos_traces
    USING (tenant_id = (SELECT aos.current_tenant()))
    WITH CHECK (tenant_id = (SELECT aos.current_tenant()));
CREATE POLICY aos_traces_trusted_all ON activity.aos_traces TO aos_worker, aos_policy_engine
    USING (TRUE) WITH CHECK (TRUE);

-- Steps are append-only telemetry keyed by their place in the trace: no
-- surrogate id, and nobody but the owner may update or delete them.
CREATE TABLE activity.aos_trace_steps (
    tenant_id text NOT NULL,
    trace_id text NOT NULL,
    step_index integer NOT NULL,
    skill_name text NOT NULL,
    status text NOT NULL,
    outcome_code text,
    params jsonb NOT NULL DEFAULT '{}',
    cost_usd numeric(12, 6) NOT NULL DEFAULT 0,
    duration_ms bigint,
    retry_count integer NOT NULL DEFAULT 0,
    level text NOT NULL GENERATED ALWAYS AS (
        CASE status WHEN 'failure' THEN 'error' WHEN 'retry' THEN 'warn' ELSE 'info' END
    ) STORED,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    is_synthetic boolean NOT NULL DEFAULT FALSE,
    synthetic_scenario_id text,
    CONSTRAINT aos_trace_steps_pkey PRIMARY KEY (tenant_id, trace_id, step_index),
    CONSTRAINT aos_trace_steps_tenant_fk FOREIGN KEY (tenant_id) REFERENCES aos.tenants (tenant_id),
    CONSTRAINT aos_trace_steps_trace_fk FOREIGN KEY (tenant_id, trace_id)
        REFERENCES activity.aos_traces (tenant_id, trace_id),
    CONSTRAINT aos_trace_steps_status_valid CHECK (status IN ('success', 'failure', 'retry', 'skipped')),
    CONSTRAINT aos_trace_steps_step_index_non_negative CHECK (step_index >= 0),
    CONSTRAINT aos_trace_steps_skill_name_not_blank CHECK (btrim(skill_name) <> ''),
    CONSTRAINT aos_trace_steps_cost_non_negative CHECK (cost_usd >= 0),
    CONSTRAINT aos_trace_steps_duration_non_negative CHECK (duration_ms >= 0),
    CONSTRAINT aos_trace_steps_retry_count_non_negative CHECK (retry_count >= 0),
    CONSTRAINT aos_trace_steps_params_is_object CHECK (jsonb_typeof(params) = 'object'),
    CONSTRAINT aos_trace_steps_scenario_implies_synthetic CHECK (synthetic_scenario_id IS NULL OR is_synthetic)
);
COMMENT ON TABLE activity.aos_trace_steps IS
    'Append-only step telemetry of a trace; only the owner may update or delete.';
COMMENT ON COLUMN activity.aos_trace_steps.tenant_id IS 'Owning tenant; first column of every key.';
COMMENT ON COLUMN activity.aos_trace_steps.trace_id IS 'Trace the step belongs to (activity.aos_traces.trace_id).';
COMMENT ON COLUMN activity.aos_trace_steps.step_index IS 'Position of the step in its trace, from 0; unique per trace.';
COMMENT ON COLUMN activity.aos_trace_steps.skill_name IS
    'Skill (tool) the step invoked; checked by blocked_skill rules.';
COMMENT ON COLUMN activity.aos_trace_steps.status IS 'success, failure, retry or skipped.';
COMMENT ON COLUMN activity.aos_trace_steps.outcome_code IS 'Outcome code the skill returned, if any.';
COMMENT ON COLUMN activity.aos_trace_steps.params IS 'Parameters the skill was called with (a JSON object).';
COMMENT ON COLUMN activity.aos_trace_steps.cost_usd IS 'Cost of the step in US dollars (non-negative).';
COMMENT ON COLUMN activity.aos_trace_steps.duration_ms IS 'Duration of the step in milliseconds (non-negative).';
COMMENT ON COLUMN activity.aos_trace_steps.retry_count IS 'Retries the step needed (non-negative).';
COMMENT ON COLUMN activity.aos_trace_steps.level IS 'Generated: error for failure, warn for retry, else info.';
COMMENT ON COLUMN activity.aos_trace_steps.occurred_at IS 'When the step happened.';
COMMENT ON COLUMN activity.aos_trace_steps.is_synthetic IS 'True for rows injected by an SDSR scenario.';
COMMENT ON COLUMN activity.aos_trace_steps.synthetic_scenario_id IS
    'Scenario that injected the row; implies is_synthetic.';

GRANT SELECT, INSERT ON activity.aos_trace_steps TO aos_worker, aos_scenario;
GRANT SELECT ON activity.aos_trace_steps TO aos_policy_engine;
ALTER TABLE activity.aos_trace_steps ENABLE ROW LEVEL SECURITY;
CREATE POLICY aos_trace_steps_tenant_isolation ON activity.aos_trace_steps
    USING (tenant_id = (SELECT aos.current_tenant()))
    WITH CHECK (tenant_id = (SELECT aos.current_tenant()));
CREATE POLICY aos_trace_steps_trusted_all ON activity.aos_trace_steps TO aos_worker, aos_policy_engine
    USING (TRUE) WITH CHECK (TRUE);

RESET ROLE;
