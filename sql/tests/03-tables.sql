-- Every table of the five domains (docs/contract.md, Tables; the contract
-- tables, the outbox, the read side's refresh log included): exactly these
-- tables, exactly these columns with these types and nullability,
-- tenant-first primary keys, the unique keys, and the documented defaults. The
-- analytics views (README.md, Analytics views for BI tools) and their
-- tenant-filtered views (the tenant BI logins' and the api facades') are not
-- tables: they are enumerated on their own, with exactly their columns and types.
BEGIN;

CREATE TEMP TABLE expected_columns (
    schema_name name, table_name name, column_name name, type_name text, not_null boolean
) ON COMMIT DROP;
INSERT INTO expected_columns VALUES
    ('aos', 'tenants', 'tenant_id', 'text', TRUE),
    ('aos', 'tenants', 'name', 'text', TRUE),
    ('aos', 'tenants', 'created_at', 'timestamp with time zone', TRUE),

    -- The outbox aos.events(seq bigint, created_at, event, tenant_id,
    -- subject_id, payload jsonb); tx_id (migration 0007) puts each event in
    -- its batch: the transactions completed between two ticks' snapshots.
    ('aos', 'events', 'seq', 'bigint', TRUE),
    ('aos', 'events', 'created_at', 'timestamp with time zone', TRUE),
    ('aos', 'events', 'event', 'text', TRUE),
    ('aos', 'events', 'tenant_id', 'text', TRUE),
    ('aos', 'events', 'subject_id', 'text', TRUE),
    ('aos', 'events', 'payload', 'jsonb', TRUE),
    ('aos', 'events', 'tx_id', 'xid8', TRUE),

    -- The outbox's batches (0010): the snapshot each batch ends at, and the
    -- single row that coalesces the NOTIFY wake-up.
    ('aos', 'event_ticks', 'tick_id', 'bigint', TRUE),
    ('aos', 'event_ticks', 'snapshot', 'pg_snapshot', TRUE),
    ('aos', 'event_ticks', 'taken_at', 'timestamp with time zone', TRUE),
    ('aos', 'event_wakeup', 'channel', 'text', TRUE),
    ('aos', 'event_wakeup', 'notified_at', 'timestamp with time zone', TRUE),
    ('aos', 'event_wakeup', 'min_interval', 'interval', TRUE),

    ('activity', 'runs', 'tenant_id', 'text', TRUE),
    ('activity', 'runs', 'id', 'uuid', TRUE),
    ('activity', 'runs', 'run_id', 'text', TRUE),
    ('activity', 'runs', 'agent_id', 'text', TRUE),
    ('activity', 'runs', 'goal', 'text', FALSE),
    ('activity', 'runs', 'status', 'text', TRUE),
    ('activity', 'runs', 'state', 'text', TRUE),
    ('activity', 'runs', 'error_code', 'text', FALSE),
    ('activity', 'runs', 'error_message', 'text', FALSE),
    ('activity', 'runs', 'attempts', 'integer', TRUE),
    ('activity', 'runs', 'input_tokens', 'bigint', TRUE),
    ('activity', 'runs', 'output_tokens', 'bigint', TRUE),
    ('activity', 'runs', 'estimated_cost_usd', 'numeric', TRUE),
    ('activity', 'runs', 'created_at', 'timestamp with time zone', TRUE),
    ('activity', 'runs', 'started_at', 'timestamp with time zone', FALSE),
    ('activity', 'runs', 'completed_at', 'timestamp with time zone', FALSE),
    ('activity', 'runs', 'duration_ms', 'bigint', FALSE),
    ('activity', 'runs', 'policy_violation', 'boolean', TRUE),
    ('activity', 'runs', 'is_synthetic', 'boolean', TRUE),
    ('activity', 'runs', 'synthetic_scenario_id', 'text', FALSE),

    ('activity', 'aos_traces', 'tenant_id', 'text', TRUE),
    ('activity', 'aos_traces', 'id', 'uuid', TRUE),
    ('activity', 'aos_traces', 'trace_id', 'text', TRUE),
    ('activity', 'aos_traces', 'run_id', 'text', TRUE),
    ('activity', 'aos_traces', 'status', 'text', TRUE),
    ('activity', 'aos_traces', 'started_at', 'timestamp with time zone', TRUE),
    ('activity', 'aos_traces', 'completed_at', 'timestamp with time zone', FALSE),
    ('activity', 'aos_traces', 'metadata', 'jsonb', TRUE),
    ('activity', 'aos_traces', 'is_synthetic', 'boolean', TRUE),
    ('activity', 'aos_traces', 'synthetic_scenario_id', 'text', FALSE),

    ('activity', 'aos_trace_steps', 'tenant_id', 'text', TRUE),
    ('activity', 'aos_trace_steps', 'trace_id', 'text', TRUE),
    ('activity', 'aos_trace_steps', 'step_index', 'integer', TRUE),
    ('activity', 'aos_trace_steps', 'skill_name', 'text', TRUE),
    ('activity', 'aos_trace_steps', 'status', 'text', TRUE),
    ('activity', 'aos_trace_steps', 'outcome_code', 'text', FALSE),
    ('activity', 'aos_trace_steps', 'params', 'jsonb', TRUE),
    ('activity', 'aos_trace_steps', 'cost_usd', 'numeric', TRUE),
    ('activity', 'aos_trace_steps', 'duration_ms', 'bigint', FALSE),
    ('activity', 'aos_trace_steps', 'retry_count', 'integer', TRUE),
    ('activity', 'aos_trace_steps', 'level', 'text', TRUE),
    ('activity', 'aos_trace_steps', 'occurred_at', 'timestamp with time zone', TRUE),
    ('activity', 'aos_trace_steps', 'is_synthetic', 'boolean', TRUE),
    ('activity', 'aos_trace_steps', 'synthetic_scenario_id', 'text', FALSE),

    ('incidents', 'failure_classes', 'error_code', 'text', TRUE),
    ('incidents', 'failure_classes', 'severity', 'text', TRUE),
    ('incidents', 'failure_classes', 'category', 'text', TRUE),
    ('incidents', 'failure_classes', 'proposal_type', 'text', FALSE),
    ('incidents', 'failure_classes', 'match_priority', 'integer', FALSE),
    ('incidents', 'failure_classes', 'description', 'text', TRUE),

    ('incidents', 'incidents', 'tenant_id', 'text', TRUE),
    ('incidents', 'incidents', 'id', 'uuid', TRUE),
    ('incidents', 'incidents', 'source_run_id', 'text', FALSE),
    ('incidents', 'incidents', 'llm_run_id', 'uuid', FALSE),
    ('incidents', 'incidents', 'title', 'text', TRUE),
    ('incidents', 'incidents', 'severity', 'text', TRUE),
    ('incidents', 'incidents', 'lifecycle_state', 'text', TRUE),
    ('incidents', 'incidents', 'category', 'text', TRUE),
    ('incidents', 'incidents', 'error_code', 'text', FALSE),
    ('incidents', 'incidents', 'error_message', 'text', FALSE),
    ('incidents', 'incidents', 'cause_type', 'text', TRUE),
    ('incidents', 'incidents', 'created_at', 'timestamp with time zone', TRUE),
    ('incidents', 'incidents', 'acknowledged_at', 'timestamp with time zone', FALSE),
    ('incidents', 'incidents', 'acknowledged_by', 'text', FALSE),
    ('incidents', 'incidents', 'resolved_at', 'timestamp with time zone', FALSE),
    ('incidents', 'incidents', 'resolved_by', 'text', FALSE),
    ('incidents', 'incidents', 'resolution_method', 'text', FALSE),
    ('incidents', 'incidents', 'resolution_notes', 'text', FALSE),
    ('incidents', 'incidents', 'is_synthetic', 'boolean', TRUE),
    ('incidents', 'incidents', 'synthetic_scenario_id', 'text', FALSE),

    ('incidents', 'incident_events', 'tenant_id', 'text', TRUE),
    ('incidents', 'incident_events', 'id', 'uuid', TRUE),
    ('incidents', 'incident_events', 'incident_id', 'uuid', TRUE),
    ('incidents', 'incident_events', 'event_type', 'text', TRUE),
    ('incidents', 'incident_events', 'actor', 'text', TRUE),
    ('incidents', 'incident_events', 'details', 'jsonb', TRUE),
    ('incidents', 'incident_events', 'created_at', 'timestamp with time zone', TRUE),
    ('incidents', 'incident_events', 'is_synthetic', 'boolean', TRUE),
    ('incidents', 'incident_events', 'synthetic_scenario_id', 'text', FALSE),

    ('incidents', 'incident_evidence', 'tenant_id', 'text', TRUE),
    ('incidents', 'incident_evidence', 'id', 'uuid', TRUE),
    ('incidents', 'incident_evidence', 'incident_id', 'uuid', TRUE),
    ('incidents', 'incident_evidence', 'evidence_type', 'text', TRUE),
    ('incidents', 'incident_evidence', 'run_id', 'text', FALSE),
    ('incidents', 'incident_evidence', 'recovery_executed', 'boolean', TRUE),
    ('incidents', 'incident_evidence', 'payload', 'jsonb', TRUE),
    ('incidents', 'incident_evidence', 'created_at', 'timestamp with time zone', TRUE),
    ('incidents', 'incident_evidence', 'is_synthetic', 'boolean', TRUE),
    ('incidents', 'incident_evidence', 'synthetic_scenario_id', 'text', FALSE),

    ('policies', 'default_guardrails', 'id', 'text', TRUE),
    ('policies', 'default_guardrails', 'name', 'text', TRUE),
    ('policies', 'default_guardrails', 'category', 'text', TRUE),
    ('policies', 'default_guardrails', 'rule_type', 'text', TRUE),
    ('policies', 'default_guardrails', 'config', 'jsonb', TRUE),
    ('policies', 'default_guardrails', 'action', 'text', TRUE),
    ('policies', 'default_guardrails', 'is_enabled', 'boolean', TRUE),
    ('policies', 'default_guardrails', 'priority', 'integer', TRUE),
    ('policies', 'default_guardrails', 'version', 'integer', TRUE),
    ('policies', 'default_guardrails', 'description', 'text', TRUE),

    ('policies', 'policy_proposals', 'tenant_id', 'text', TRUE),
    ('policies', 'policy_proposals', 'id', 'uuid', TRUE),
    ('policies', 'policy_proposals', 'triggering_incident_id', 'uuid', FALSE),
    ('policies', 'policy_proposals', 'triggering_run_id', 'text', FALSE),
    ('policies', 'policy_proposals', 'proposal_name', 'text', TRUE),
    ('policies', 'policy_proposals', 'proposal_type', 'text', TRUE),
    ('policies', 'policy_proposals', 'rationale', 'text', FALSE),
    ('policies', 'policy_proposals', 'proposed_rule', 'jsonb', TRUE),
    ('policies', 'policy_proposals', 'status', 'text', TRUE),
    ('policies', 'policy_proposals', 'created_at', 'timestamp with time zone', TRUE),
    ('policies', 'policy_proposals', 'reviewed_at', 'timestamp with time zone', FALSE),
    ('policies', 'policy_proposals', 'reviewed_by', 'text', FALSE),
    ('policies', 'policy_proposals', 'review_notes', 'text', FALSE),
    ('policies', 'policy_proposals', 'is_synthetic', 'boolean', TRUE),
    ('policies', 'policy_proposals', 'synthetic_scenario_id', 'text', FALSE),
    -- One pending proposal per rule (0010): how many incidents it gathers, and the latest.
    ('policies', 'policy_proposals', 'incident_count', 'integer', TRUE),
    ('policies', 'policy_proposals', 'last_seen_at', 'timestamp with time zone', TRUE),

    ('policies', 'proposal_incidents', 'tenant_id', 'text', TRUE),
    ('policies', 'proposal_incidents', 'incident_id', 'uuid', TRUE),
    ('policies', 'proposal_incidents', 'proposal_id', 'uuid', TRUE),
    ('policies', 'proposal_incidents', 'linked_at', 'timestamp with time zone', TRUE),
    ('policies', 'proposal_incidents', 'is_synthetic', 'boolean', TRUE),
    ('policies', 'proposal_incidents', 'synthetic_scenario_id', 'text', FALSE),

    ('policies', 'policy_rules', 'tenant_id', 'text', TRUE),
    ('policies', 'policy_rules', 'id', 'uuid', TRUE),
    ('policies', 'policy_rules', 'name', 'text', TRUE),
    ('policies', 'policy_rules', 'rule_type', 'text', TRUE),
    ('policies', 'policy_rules', 'conditions', 'jsonb', TRUE),
    ('policies', 'policy_rules', 'enforcement', 'text', TRUE),
    ('policies', 'policy_rules', 'status', 'text', TRUE),
    ('policies', 'policy_rules', 'source', 'text', TRUE),
    ('policies', 'policy_rules', 'source_proposal_id', 'uuid', FALSE),
    ('policies', 'policy_rules', 'agent_id', 'text', FALSE),
    ('policies', 'policy_rules', 'created_at', 'timestamp with time zone', TRUE),
    ('policies', 'policy_rules', 'retired_at', 'timestamp with time zone', FALSE),
    ('policies', 'policy_rules', 'retired_by', 'text', FALSE),
    ('policies', 'policy_rules', 'is_synthetic', 'boolean', TRUE),
    ('policies', 'policy_rules', 'synthetic_scenario_id', 'text', FALSE),

    ('policies', 'prevention_records', 'tenant_id', 'text', TRUE),
    ('policies', 'prevention_records', 'id', 'uuid', TRUE),
    ('policies', 'prevention_records', 'run_id', 'text', TRUE),
    ('policies', 'prevention_records', 'policy_rule_id', 'uuid', FALSE),
    ('policies', 'prevention_records', 'guardrail_id', 'text', FALSE),
    ('policies', 'prevention_records', 'outcome', 'text', TRUE),
    ('policies', 'prevention_records', 'details', 'jsonb', TRUE),
    ('policies', 'prevention_records', 'created_at', 'timestamp with time zone', TRUE),
    ('policies', 'prevention_records', 'is_synthetic', 'boolean', TRUE),
    ('policies', 'prevention_records', 'synthetic_scenario_id', 'text', FALSE),

    ('aos', 'contract_domains', 'domain', 'text', TRUE),
    ('aos', 'contract_domains', 'schema_name', 'text', TRUE),
    ('aos', 'contract_domains', 'question', 'text', TRUE),
    ('aos', 'contract_tables', 'schema_name', 'text', TRUE),
    ('aos', 'contract_tables', 'table_name', 'text', TRUE),
    ('aos', 'contract_tables', 'domain', 'text', TRUE),
    ('aos', 'contract_tables', 'kind', 'text', TRUE),
    ('aos', 'contract_tables', 'tenant_scoped', 'boolean', TRUE),
    ('aos', 'contract_links', 'link_name', 'text', TRUE),
    ('aos', 'contract_links', 'from_schema', 'text', TRUE),
    ('aos', 'contract_links', 'from_table', 'text', TRUE),
    ('aos', 'contract_links', 'from_columns', 'text[]', TRUE),
    ('aos', 'contract_links', 'to_schema', 'text', TRUE),
    ('aos', 'contract_links', 'to_table', 'text', TRUE),
    ('aos', 'contract_links', 'to_columns', 'text[]', TRUE),
    ('aos', 'contract_links', 'description', 'text', TRUE),
    ('aos', 'contract_roles', 'role_name', 'text', TRUE),
    ('aos', 'contract_roles', 'writes_domain', 'text', FALSE),
    ('aos', 'contract_roles', 'tenant_scoped', 'boolean', TRUE),
    ('aos', 'contract_roles', 'description', 'text', TRUE),
    ('aos', 'contract_grants', 'role_name', 'text', TRUE),
    ('aos', 'contract_grants', 'schema_name', 'text', TRUE),
    ('aos', 'contract_grants', 'table_name', 'text', TRUE),
    ('aos', 'contract_grants', 'privilege', 'text', TRUE),
    ('aos', 'contract_grants', 'column_names', 'text[]', FALSE),
    ('aos', 'contract_effects', 'cause', 'text', TRUE),
    ('aos', 'contract_effects', 'effect', 'text', TRUE),
    ('aos', 'contract_effects', 'engine', 'text', TRUE),
    ('aos', 'contract_effects', 'engine_role', 'text', TRUE),
    ('aos', 'contract_effects', 'effect_schema', 'text', TRUE),
    ('aos', 'contract_effects', 'effect_table', 'text', TRUE),
    ('aos', 'contract_effects', 'effect_columns', 'text[]', FALSE),
    ('aos', 'contract_facades', 'function_name', 'text', TRUE),
    ('aos', 'contract_facades', 'endpoint', 'text', TRUE),
    ('aos', 'contract_facades', 'domain', 'text', TRUE),
    ('aos', 'contract_facade_reads', 'function_name', 'text', TRUE),
    ('aos', 'contract_facade_reads', 'schema_name', 'text', TRUE),
    ('aos', 'contract_facade_reads', 'table_name', 'text', TRUE),

    -- aosdb refresh records when, how long and how many rows (0008).
    ('aos', 'view_refreshes', 'id', 'bigint', TRUE),
    ('aos', 'view_refreshes', 'view_name', 'text', TRUE),
    ('aos', 'view_refreshes', 'refreshed_at', 'timestamp with time zone', TRUE),
    ('aos', 'view_refreshes', 'duration_ms', 'numeric(12,3)', TRUE),
    ('aos', 'view_refreshes', 'row_count', 'bigint', TRUE),
    ('aos', 'view_refreshes', 'concurrent', 'boolean', TRUE),

    -- The tenant of each tenant-bound login (0008), keyed by role OID (0015).
    ('aos', 'bi_logins', 'login', 'name', TRUE),
    ('aos', 'bi_logins', 'tenant_id', 'text', TRUE),
    ('aos', 'bi_logins', 'created_at', 'timestamp with time zone', TRUE),
    ('aos', 'bi_logins', 'login_oid', 'oid', TRUE);

-- The analytics views (materialized) with the columns README.md (Analytics
-- views for BI tools) documents, and the tenant-filtered views (plain
-- views, 0008) that show exactly the same columns to tenant-scoped readers:
-- *_tenant (security barrier) for tenant BI logins, *_api for the api facades.
-- View columns carry no NOT NULL or defaults, so only names and types count.
CREATE TEMP TABLE expected_view_columns (
    schema_name name, view_name name, relkind "char", column_name name, type_name text
) ON COMMIT DROP;
INSERT INTO expected_view_columns
SELECT 'activity', v.view_name, v.relkind, c.column_name, c.type_name
FROM (VALUES ('v_runs_o2'::name, 'm'::"char"), ('v_runs_o2_tenant', 'v'), ('v_runs_o2_api', 'v'))
    AS v (view_name, relkind)
CROSS JOIN (VALUES
    ('run_id'::name, 'text'),
    ('tenant_id', 'text'),
    ('run_uuid', 'uuid'),
    ('agent_id', 'text'),
    ('status', 'text'),
    ('state', 'text'),
    ('error_code', 'text'),
    ('created_at', 'timestamp with time zone'),
    ('started_at', 'timestamp with time zone'),
    ('completed_at', 'timestamp with time zone'),
    ('duration_ms', 'bigint'),
    ('input_tokens', 'bigint'),
    ('output_tokens', 'bigint'),
    ('total_tokens', 'numeric'),
    ('estimated_cost_usd', 'numeric'),
    ('trace_count', 'bigint'),
    ('step_count', 'bigint'),
    ('error_step_count', 'bigint'),
    ('retry_count', 'bigint'),
    ('step_cost_usd', 'numeric'),
    ('policy_violation', 'boolean'),
    ('is_synthetic', 'boolean'),
    ('synthetic_scenario_id', 'text')
) AS c (column_name, type_name)
UNION ALL
SELECT 'incidents', v.view_name, v.relkind, c.column_name, c.type_name
FROM (VALUES ('v_incidents_o2'::name, 'm'::"char"), ('v_incidents_o2_tenant', 'v'), ('v_incidents_o2_api', 'v'))
    AS v (view_name, relkind)
CROSS JOIN (VALUES
    ('incident_id'::name, 'uuid'),
    ('tenant_id', 'text'),
    ('severity', 'text'),
    ('lifecycle_state', 'text'),
    ('topic', 'text'),
    ('category', 'text'),
    ('error_code', 'text'),
    ('cause_type', 'text'),
    ('title', 'text'),
    ('source_run_id', 'text'),
    ('first_seen_at', 'timestamp with time zone'),
    ('last_seen_at', 'timestamp with time zone'),
    ('event_count', 'bigint'),
    ('evidence_count', 'bigint'),
    ('recovery_attempted', 'boolean'),
    ('recurrence_count', 'bigint'),
    ('time_to_resolution_ms', 'bigint'),
    ('acknowledged_at', 'timestamp with time zone'),
    ('resolved_at', 'timestamp with time zone'),
    ('resolved_by', 'text'),
    ('resolution_method', 'text'),
    ('is_synthetic', 'boolean'),
    ('synthetic_scenario_id', 'text')
) AS c (column_name, type_name)
UNION ALL
-- 0017: what a gateway exposing schema api serves to aos_api.
SELECT 'aos', 'api_endpoints', 'v', c.column_name, c.type_name
FROM (VALUES
    ('function_name'::name, 'text'),
    ('arguments', 'text'),
    ('argument_names', 'text[]'),
    ('argument_types', 'text[]'),
    ('return_type', 'text'),
    ('volatility', 'text')
) AS c (column_name, type_name);

-- Primary keys: tenant first on every tenant table, so no link can cross tenants.
CREATE TEMP TABLE expected_pks (schema_name name, table_name name, columns name[]) ON COMMIT DROP;
INSERT INTO expected_pks VALUES
    ('aos', 'tenants', '{tenant_id}'),
    ('aos', 'events', '{tenant_id,seq}'),
    ('activity', 'runs', '{tenant_id,id}'),
    ('activity', 'aos_traces', '{tenant_id,id}'),
    ('activity', 'aos_trace_steps', '{tenant_id,trace_id,step_index}'),
    ('incidents', 'failure_classes', '{error_code}'),
    ('incidents', 'incidents', '{tenant_id,id}'),
    ('incidents', 'incident_events', '{tenant_id,id}'),
    ('incidents', 'incident_evidence', '{tenant_id,id}'),
    ('policies', 'default_guardrails', '{id}'),
    ('policies', 'policy_proposals', '{tenant_id,id}'),
    ('policies', 'policy_rules', '{tenant_id,id}'),
    ('policies', 'prevention_records', '{tenant_id,id}'),
    -- One row per incident: an incident is linked to exactly one proposal.
    ('policies', 'proposal_incidents', '{tenant_id,incident_id}'),
    ('aos', 'event_ticks', '{tick_id}'),
    ('aos', 'event_wakeup', '{channel}'),
    ('aos', 'contract_domains', '{domain}'),
    ('aos', 'contract_tables', '{schema_name,table_name}'),
    ('aos', 'contract_links', '{link_name}'),
    ('aos', 'contract_roles', '{role_name}'),
    ('aos', 'contract_grants', '{role_name,schema_name,table_name,privilege}'),
    ('aos', 'contract_effects', '{cause,effect}'),
    ('aos', 'contract_facades', '{function_name}'),
    ('aos', 'contract_facade_reads', '{function_name,schema_name,table_name}'),
    ('aos', 'view_refreshes', '{id}'),
    -- A login maps to one tenant: keyed by the login's role OID, not tenant-first (see below).
    ('aos', 'bi_logins', '{login_oid}');

-- Tables with a tenant_id column that are not keyed tenant-first, each with
-- its reason. aos.bi_logins is the platform's map from a BI login to its
-- tenant (like aos.tenants, reference data for the registry, not tenant
-- data): a login must map to exactly one tenant, so the login (its role OID) alone is the key.
CREATE TEMP TABLE keyed_otherwise (relation regclass) ON COMMIT DROP;
INSERT INTO keyed_otherwise VALUES ('aos.bi_logins');

CREATE TEMP TABLE expected_uniques (schema_name name, table_name name, columns name[], what text) ON COMMIT DROP;
INSERT INTO expected_uniques VALUES
    ('activity', 'runs', '{tenant_id,run_id}', 'run_id is unique per tenant'),
    ('activity', 'aos_traces', '{tenant_id,trace_id}', 'trace_id is unique per tenant'),
    ('incidents', 'failure_classes', '{match_priority}', 'match priorities are distinct'),
    ('policies', 'default_guardrails', '{name}', 'guardrail names are unique'),
    ('policies', 'policy_proposals', '{tenant_id,triggering_incident_id}', 'one proposal per incident'),
    ('policies', 'policy_rules', '{tenant_id,source_proposal_id}', 'one rule per proposal'),
    ('policies', 'prevention_records', '{tenant_id,run_id,policy_rule_id,guardrail_id}',
     'one prevention record per run and source'),
    ('aos', 'contract_domains', '{schema_name}', 'one domain per schema'),
    ('aos', 'contract_facades', '{endpoint}', 'one facade per endpoint');

CREATE TEMP TABLE expected_defaults (schema_name name, table_name name, column_name name, default_expr text)
    ON COMMIT DROP;
INSERT INTO expected_defaults
SELECT schema_name, table_name, 'is_synthetic', 'false' FROM expected_columns WHERE column_name = 'is_synthetic'
UNION ALL
SELECT schema_name, table_name, 'id', 'gen_random_uuid()'
FROM expected_columns WHERE column_name = 'id' AND type_name = 'uuid'
UNION ALL
VALUES
    ('activity', 'runs', 'policy_violation', 'false'),
    ('activity', 'runs', 'input_tokens', '0'),
    ('activity', 'runs', 'output_tokens', '0'),
    ('activity', 'runs', 'estimated_cost_usd', '0'),
    ('activity', 'runs', 'created_at', 'now()'),
    ('activity', 'aos_traces', 'status', 'running'),
    ('incidents', 'incidents', 'lifecycle_state', 'active'),
    ('incidents', 'incidents', 'cause_type', 'llm_run'),
    ('policies', 'policy_proposals', 'status', 'pending'),
    ('policies', 'policy_proposals', 'incident_count', '1'),
    ('policies', 'policy_proposals', 'last_seen_at', 'now()'),
    ('policies', 'proposal_incidents', 'linked_at', 'now()'),
    -- a tick is taken just after its snapshot; a fresh wake-up row notifies at once
    ('aos', 'event_ticks', 'taken_at', 'clock_timestamp()'),
    ('aos', 'event_wakeup', 'notified_at', '-infinity'),
    ('aos', 'event_wakeup', 'min_interval', '100 milliseconds'),
    ('policies', 'policy_rules', 'status', 'active'),
    ('policies', 'policy_rules', 'source', 'manual'),
    ('policies', 'default_guardrails', 'is_enabled', 'true'),
    ('aos', 'events', 'created_at', 'now()'),
    ('aos', 'events', 'payload', '{}'),
    ('aos', 'events', 'tx_id', 'pg_current_xact_id()'),
    ('aos', 'view_refreshes', 'refreshed_at', 'now()'),
    ('aos', 'bi_logins', 'created_at', 'now()'),
    -- append-only timelines take clock time, so rows of one transaction keep their order
    ('incidents', 'incident_events', 'created_at', 'clock_timestamp()'),
    ('incidents', 'incident_evidence', 'created_at', 'clock_timestamp()');

SELECT plan(
    5
    + (SELECT count(DISTINCT (schema_name, table_name))::int FROM expected_columns)
    + (SELECT count(*)::int * 2 FROM expected_columns)
    + (SELECT count(*)::int FROM expected_pks)
    + 1
    + (SELECT count(*)::int FROM expected_uniques)
    + (SELECT count(*)::int FROM expected_defaults)
    + 8
    + 5 * 2
    + (SELECT count(DISTINCT (schema_name, view_name))::int FROM expected_view_columns)
    + (SELECT count(*)::int FROM expected_view_columns)
);

-- Exactly these tables in each schema: an extra or a missing table fails.
SELECT tables_are(
    s.schema_name,
    coalesce((SELECT array_agg(DISTINCT c.table_name) FROM expected_columns AS c WHERE c.schema_name = s.schema_name),
             '{}'),
    format('schema %s has exactly the expected tables', s.schema_name)
)
FROM (VALUES ('aos'::name), ('activity'), ('incidents'), ('policies'), ('api')) AS s (schema_name)
ORDER BY s.schema_name;

-- Exactly these columns in each table: an extra or a missing column fails.
SELECT columns_are(
    schema_name, table_name, array_agg(column_name),
    format('%s.%s has exactly the expected columns', schema_name, table_name)
)
FROM expected_columns GROUP BY schema_name, table_name ORDER BY schema_name, table_name;

SELECT col_type_is(
    schema_name, table_name, column_name, type_name,
    format('%s.%s.%s is %s', schema_name, table_name, column_name, type_name)
)
FROM expected_columns ORDER BY schema_name, table_name, column_name;

SELECT CASE WHEN not_null
    THEN col_not_null(schema_name, table_name, column_name,
                      format('%s.%s.%s is NOT NULL', schema_name, table_name, column_name))
    ELSE col_is_null(schema_name, table_name, column_name,
                     format('%s.%s.%s is nullable', schema_name, table_name, column_name))
END
FROM expected_columns ORDER BY schema_name, table_name, column_name;

SELECT col_is_pk(
    schema_name, table_name, columns,
    format('%s.%s has primary key (%s)', schema_name, table_name, array_to_string(columns, ', '))
)
FROM expected_pks ORDER BY schema_name, table_name;

-- Catalog-wide: a tenant table added later must key on tenant_id first too.
SELECT is_empty(
    $$
    SELECT c.oid::regclass
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
    LEFT JOIN pg_catalog.pg_constraint AS pk ON pk.conrelid = c.oid AND pk.contype = 'p'
    WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api') AND c.relkind IN ('r', 'p')
      AND (pk.oid IS NULL OR pk.conkey[1] <> a.attnum)
      AND c.oid NOT IN (SELECT relation FROM keyed_otherwise)
    $$,
    'every table with a tenant_id column has a primary key that starts with tenant_id (but aos.bi_logins)'
);

SELECT col_is_unique(
    schema_name, table_name, columns,
    format('%s.%s: %s, unique (%s)', schema_name, table_name, what, array_to_string(columns, ', '))
)
FROM expected_uniques ORDER BY schema_name, table_name;

SELECT col_default_is(
    schema_name, table_name, column_name, default_expr,
    format('%s.%s.%s defaults to %s', schema_name, table_name, column_name, default_expr)
)
FROM expected_defaults ORDER BY schema_name, table_name, column_name;

-- The outbox: seq identifies every event. It is drawn at insert and never
-- renumbered (readers take batches by snapshot, not seq ranges); the column
-- stays GENERATED BY DEFAULT as 0007 created it.
SELECT is(
    (SELECT a.attidentity::text FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = 'aos.events'::regclass AND a.attname = 'seq'),
    'd',
    'aos.events.seq is GENERATED BY DEFAULT AS IDENTITY'
);

-- Ticks are numbered by the database only: batch order is tick order.
SELECT is(
    (SELECT a.attidentity::text FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = 'aos.event_ticks'::regclass AND a.attname = 'tick_id'),
    'a',
    'aos.event_ticks.tick_id is GENERATED ALWAYS AS IDENTITY'
);

-- The refresh log is numbered by the database only.
SELECT is(
    (SELECT a.attidentity::text FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = 'aos.view_refreshes'::regclass AND a.attname = 'id'),
    'a',
    'aos.view_refreshes.id is GENERATED ALWAYS AS IDENTITY'
);

-- Exactly these materialized views and views in each schema.
SELECT materialized_views_are(
    s.schema_name,
    coalesce((SELECT array_agg(DISTINCT v.view_name) FROM expected_view_columns AS v
              WHERE v.schema_name = s.schema_name AND v.relkind = 'm'), '{}'),
    format('schema %s has exactly the expected materialized views', s.schema_name)
)
FROM (VALUES ('aos'::name), ('activity'), ('incidents'), ('policies'), ('api')) AS s (schema_name)
ORDER BY s.schema_name;

SELECT views_are(
    s.schema_name,
    coalesce((SELECT array_agg(DISTINCT v.view_name) FROM expected_view_columns AS v
              WHERE v.schema_name = s.schema_name AND v.relkind = 'v'), '{}'),
    format('schema %s has exactly the expected views', s.schema_name)
)
FROM (VALUES ('aos'::name), ('activity'), ('incidents'), ('policies'), ('api')) AS s (schema_name)
ORDER BY s.schema_name;

SELECT columns_are(
    schema_name, view_name, array_agg(column_name),
    format('%s.%s has exactly the expected columns', schema_name, view_name)
)
FROM expected_view_columns GROUP BY schema_name, view_name ORDER BY schema_name, view_name;

SELECT col_type_is(
    schema_name, view_name, column_name, type_name,
    format('%s.%s.%s is %s', schema_name, view_name, column_name, type_name)
)
FROM expected_view_columns ORDER BY schema_name, view_name, column_name;

-- One incident per failed run: a partial unique index on llm_run incidents.
SELECT index_is_unique('incidents', 'incidents', 'incidents_one_per_failed_run',
    'incidents_one_per_failed_run is a unique index');
SELECT is(
    (SELECT ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k (attnum, ord)
                  JOIN pg_catalog.pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                  ORDER BY k.ord)::text[]
            || pg_get_expr(i.indpred, i.indrelid)
     FROM pg_catalog.pg_index AS i WHERE i.indexrelid = 'incidents.incidents_one_per_failed_run'::regclass),
    ARRAY['tenant_id', 'source_run_id', '(cause_type = ''llm_run''::text)'],
    'incidents_one_per_failed_run covers (tenant_id, source_run_id) WHERE cause_type = llm_run'
);

-- One pending proposal per tenant and proposed rule: a partial unique index,
-- so approved and rejected proposals of the same rule may repeat.
SELECT index_is_unique('policies', 'policy_proposals', 'policy_proposals_one_pending_per_rule',
    'policy_proposals_one_pending_per_rule is a unique index');
SELECT is(
    (SELECT ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k (attnum, ord)
                  JOIN pg_catalog.pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                  ORDER BY k.ord)::text[]
            || pg_get_expr(i.indpred, i.indrelid)
     FROM pg_catalog.pg_index AS i WHERE i.indexrelid = 'policies.policy_proposals_one_pending_per_rule'::regclass),
    ARRAY['tenant_id', 'proposed_rule', '(status = ''pending''::text)'],
    'policy_proposals_one_pending_per_rule covers (tenant_id, proposed_rule) WHERE status = pending'
);

-- A run needs only tenant_id, run_id, agent_id and status; everything else has a default.
INSERT INTO aos.tenants (tenant_id, name) VALUES ('t-tables', 'tables test');
SELECT lives_ok(
    $$INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t-tables', 'r1', 'agent', 'queued')$$,
    'a run can be inserted with just tenant_id, run_id, agent_id and status'
);

SELECT * FROM finish();
ROLLBACK;
