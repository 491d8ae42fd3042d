-- depends: 0009_facade_indexes
-- Engines that hold under load and incident storms:
--   * the outbox is read in batches bounded by transaction snapshots (aos.event_ticks), so
--     writers never coordinate at commit: no advisory lock, no renumbering, and the NOTIFY
--     wake-up is coalesced through aos.event_wakeup;
--   * one pending proposal per (tenant, proposed rule): later high or critical incidents are
--     linked to it (policies.proposal_incidents) and counted on it;
--   * tenant foreign keys only where they add something: a child that references its run,
--     trace or incident by a tenant-first key already inherits that parent's tenant.
-- The functions that use all this are repeatable (sql/functions/aos_events.sql, proposal_engine.sql).
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;

-- ---------------------------------------------------------------------------------------------
-- The outbox without a commit-time publisher.

-- The publisher of 0007 (created by the repeatable aos_events.sql): an advisory lock held to
-- the end of every commit that wrote an event, renumbering, and one NOTIFY per transaction.
-- Only its own triggers called these functions.
DROP TRIGGER IF EXISTS _910_publish ON aos.events;
DROP TRIGGER IF EXISTS _900_track ON aos.events;
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS aos.tg_events__publish();
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS aos.first_event_of_transaction();
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS aos.tg_events__track();

-- Every event copies its tenant from a row that references aos.tenants already; the foreign key
-- only made every event lock the tenant's row.
-- squawk-ignore ban-drop-constraint
ALTER TABLE aos.events DROP CONSTRAINT events_tenant_fk;

COMMENT ON TABLE aos.events IS
    'Outbox: one row per engine effect or operator action, appended inside the causing transaction. Readers take it '
    'in batches bounded by transaction snapshots (aos.event_ticks, aos.events_after), so seq is unique and grows '
    'with insert order but a reader never relies on commit order. NOTIFY aos_events is a coalesced wake-up.';
COMMENT ON COLUMN aos.events.seq IS
    'Unique id of the event, drawn at insert (insert order, not commit order). A reader''s position is the batch (tick) '
    'and the seq within it; aos.event_position(seq) finds it again.';
COMMENT ON COLUMN aos.events.tx_id IS
    'Top-level transaction that wrote the event: a batch holds the events of the transactions that completed between '
    'two ticks'' snapshots.';

-- Ticks: snapshots taken one after another. The events of a batch (tick N) are those of the
-- transactions visible in tick N's snapshot and not in tick N-1's (PgQ's consumer model): every
-- committed transaction falls in exactly one batch, whatever order writers commit in.
CREATE TABLE aos.event_ticks (
    tick_id bigint GENERATED ALWAYS AS IDENTITY,
    snapshot pg_snapshot NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT event_ticks_pkey PRIMARY KEY (tick_id)
);
COMMENT ON TABLE aos.event_ticks IS
    'Outbox ticks: the snapshot each batch of events ends at (aos.tick_events). Batch N is every event of a '
    'transaction visible in tick N''s snapshot and not in tick N-1''s.';
COMMENT ON COLUMN aos.event_ticks.tick_id IS 'Batch number, in the order the ticks were taken.';
COMMENT ON COLUMN aos.event_ticks.snapshot IS 'pg_current_snapshot() when the tick was taken.';
COMMENT ON COLUMN aos.event_ticks.taken_at IS 'Clock time just after the snapshot was taken.';
-- Finding the batch of a transaction starts at the first tick whose snapshot's xmax is above it.
CREATE INDEX event_ticks_xmax_idx ON aos.event_ticks (pg_snapshot_xmax(snapshot));

-- The coalesced wake-up: the first transaction that writes events after min_interval claims
-- this row (SKIP LOCKED: nobody waits for it) and sends NOTIFY aos_events at its commit.
CREATE TABLE aos.event_wakeup (
    channel text NOT NULL,
    notified_at timestamptz NOT NULL DEFAULT '-infinity',
    min_interval interval NOT NULL DEFAULT '100 milliseconds',
    CONSTRAINT event_wakeup_pkey PRIMARY KEY (channel),
    CONSTRAINT event_wakeup_channel_valid CHECK (channel = 'aos_events'),
    CONSTRAINT event_wakeup_min_interval_non_negative CHECK (min_interval >= interval '0')
);
COMMENT ON TABLE aos.event_wakeup IS
    'When NOTIFY aos_events was last sent. At most one notifying transaction per min_interval, so notifying '
    'never serialises commits.';
COMMENT ON COLUMN aos.event_wakeup.channel IS 'The NOTIFY channel (aos_events).';
COMMENT ON COLUMN aos.event_wakeup.notified_at IS 'Clock time at which the last notifying transaction claimed the row.';
COMMENT ON COLUMN aos.event_wakeup.min_interval IS
    'Least time between two notifications; a DBA may tune it (listeners also poll).';
INSERT INTO aos.event_wakeup (channel) VALUES ('aos_events');

-- ---------------------------------------------------------------------------------------------
-- One pending proposal per storm.

-- Both defaults are constants for the existing rows (no table rewrite); merging below sets them.
ALTER TABLE policies.policy_proposals
ADD COLUMN incident_count integer NOT NULL DEFAULT 1
CONSTRAINT policy_proposals_incident_count_positive CHECK (incident_count >= 1),
ADD COLUMN last_seen_at timestamptz NOT NULL DEFAULT now();
UPDATE policies.policy_proposals SET last_seen_at = created_at;
COMMENT ON COLUMN policies.policy_proposals.incident_count IS
    'How many incidents are linked to the proposal (policies.proposal_incidents), the triggering one included.';
COMMENT ON COLUMN policies.policy_proposals.last_seen_at IS 'When the latest linked incident was detected.';
COMMENT ON TABLE policies.policy_proposals IS
    'Proposed rules awaiting an operator''s review, created by the PolicyProposalEngine: one pending proposal per '
    'tenant and proposed rule; every later high or critical incident of that rule is linked to it '
    '(policies.proposal_incidents) until it is approved or rejected.';

CREATE TABLE policies.proposal_incidents (
    tenant_id text NOT NULL,
    incident_id uuid NOT NULL,
    proposal_id uuid NOT NULL,
    linked_at timestamptz NOT NULL DEFAULT now(),
    is_synthetic boolean NOT NULL DEFAULT FALSE,
    synthetic_scenario_id text,
    -- One row per incident: an incident is linked to exactly one proposal.
    CONSTRAINT proposal_incidents_pkey PRIMARY KEY (tenant_id, incident_id),
    CONSTRAINT proposal_incidents_proposal_fk FOREIGN KEY (tenant_id, proposal_id)
        REFERENCES policies.policy_proposals (tenant_id, id),
    CONSTRAINT proposal_incidents_incident_fk FOREIGN KEY (tenant_id, incident_id)
        REFERENCES incidents.incidents (tenant_id, id),
    CONSTRAINT proposal_incidents_scenario_implies_synthetic CHECK (synthetic_scenario_id IS NULL OR is_synthetic)
);
COMMENT ON TABLE policies.proposal_incidents IS
    'Which proposal each high or critical incident is linked to: the one it triggered, or the pending proposal of the '
    'same rule it joined. Written by the PolicyProposalEngine.';
COMMENT ON COLUMN policies.proposal_incidents.tenant_id IS 'Owning tenant; first column of every key.';
COMMENT ON COLUMN policies.proposal_incidents.incident_id IS 'The incident (incidents.incidents.id); linked once.';
COMMENT ON COLUMN policies.proposal_incidents.proposal_id IS 'The proposal it is linked to.';
COMMENT ON COLUMN policies.proposal_incidents.linked_at IS 'When the link was made.';
COMMENT ON COLUMN policies.proposal_incidents.is_synthetic IS 'True for effects of an SDSR scenario.';
COMMENT ON COLUMN policies.proposal_incidents.synthetic_scenario_id IS
    'Scenario the link stems from; implies is_synthetic.';

-- A proposal's links newest first (the detail facade reads the newest few, backwards) and their count.
CREATE INDEX proposal_incidents_proposal_idx ON policies.proposal_incidents (tenant_id, proposal_id, linked_at, incident_id);

GRANT SELECT, INSERT ON policies.proposal_incidents TO aos_proposal_engine;
GRANT SELECT ON policies.proposal_incidents TO aos_api;
ALTER TABLE policies.proposal_incidents ENABLE ROW LEVEL SECURITY;
CREATE POLICY proposal_incidents_tenant_isolation ON policies.proposal_incidents
USING (tenant_id = (SELECT aos.current_tenant()))
WITH CHECK (tenant_id = (SELECT aos.current_tenant()));
CREATE POLICY proposal_incidents_trusted_all ON policies.proposal_incidents TO aos_proposal_engine
USING (TRUE) WITH CHECK (TRUE);

-- Every proposal so far is linked to the incident that triggered it.
INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id, linked_at, is_synthetic,
                                         synthetic_scenario_id)
SELECT p.tenant_id, p.triggering_incident_id, p.id, p.created_at, p.is_synthetic, p.synthetic_scenario_id
FROM policies.policy_proposals AS p
WHERE p.triggering_incident_id IS NOT NULL;

-- Storms before this migration left one pending proposal per incident. The oldest pending proposal
-- of each (tenant, proposed rule) keeps every incident; the others, never reviewable, are closed as
-- rejected with a note naming the proposal they were merged into.
CREATE TEMPORARY TABLE merged_proposals ON COMMIT DROP AS
SELECT d.tenant_id, d.id, d.keeper
FROM (
    SELECT p.tenant_id, p.id,
           first_value(p.id) OVER (PARTITION BY p.tenant_id, p.proposed_rule ORDER BY p.created_at, p.id) AS keeper
    FROM policies.policy_proposals AS p
    WHERE p.status = 'pending'
) AS d
WHERE d.id <> d.keeper;

UPDATE policies.proposal_incidents AS l SET proposal_id = m.keeper
FROM merged_proposals AS m
WHERE l.tenant_id = m.tenant_id AND l.proposal_id = m.id;

UPDATE policies.policy_proposals AS p
SET status = 'rejected', reviewed_at = now(), reviewed_by = 'aosdb migration 0010',
    review_notes = format('merged into proposal %s: one pending proposal per rule', m.keeper)
FROM merged_proposals AS m
WHERE p.tenant_id = m.tenant_id AND p.id = m.id;

UPDATE policies.policy_proposals AS p SET incident_count = c.n, last_seen_at = greatest(p.last_seen_at, c.last_seen)
FROM (
    SELECT l.tenant_id, l.proposal_id, count(*) AS n, max(i.created_at) AS last_seen
    FROM policies.proposal_incidents AS l
    INNER JOIN incidents.incidents AS i ON l.tenant_id = i.tenant_id AND l.incident_id = i.id
    GROUP BY l.tenant_id, l.proposal_id
) AS c
WHERE p.tenant_id = c.tenant_id AND p.id = c.proposal_id;

-- The key the PolicyProposalEngine links on: at most one pending proposal per tenant and rule, also
-- under concurrent storms. Approved and rejected proposals are not in it, so a rejected rule can
-- come back as a new proposal.
-- Built in this transaction, right after the merge: a CONCURRENTLY build later could meet new
-- duplicates. Pending proposals are few, so the build is short.
-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX policy_proposals_one_pending_per_rule ON policies.policy_proposals (tenant_id, proposed_rule)
WHERE status = 'pending';

-- ---------------------------------------------------------------------------------------------
-- Rule conditions, checked by one expression. The same answers as 0005's function, which ran four
-- queries per call: a proposal's count is updated at every linked incident, and each update
-- re-checks its proposed_rule. PL/pgSQL, not an inlinable SQL function: PL/pgSQL keeps the plan of
-- its expression for the session, while the inlined body (19 kB of parse tree) is read again by
-- every statement that checks the constraint (measured: ~30 us per checked UPDATE against ~100 us).
CREATE OR REPLACE FUNCTION policies.rule_conditions_valid(p_rule_type text, p_conditions jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RETURN coalesce(
        jsonb_typeof(p_conditions) = 'object'
        AND CASE p_rule_type
            WHEN 'max_value' THEN
                p_conditions - 'metric' - 'max' = '{}'::jsonb
                AND jsonb_typeof(p_conditions -> 'metric') = 'string'
                AND p_conditions ->> 'metric' IN (
                    'estimated_cost_usd', 'input_tokens', 'output_tokens', 'total_tokens', 'duration_ms', 'attempts')
                -- CASE, not AND: the cast must only see numbers.
                AND CASE WHEN jsonb_typeof(p_conditions -> 'max') = 'number'
                         THEN (p_conditions ->> 'max')::numeric >= 0 ELSE FALSE END
            WHEN 'error_code' THEN
                p_conditions - 'error_codes' = '{}'::jsonb
                AND jsonb_typeof(p_conditions -> 'error_codes') = 'array'
                AND jsonb_array_length(p_conditions -> 'error_codes') > 0
                AND NOT jsonb_path_exists(p_conditions -> 'error_codes',
                    'strict $[*] ? (@.type() != "string" || @ like_regex "^ *$" || !(@ like_regex "^[A-Z][A-Z0-9_]*$"))')
            WHEN 'pattern_block' THEN
                p_conditions - 'patterns' = '{}'::jsonb
                AND jsonb_typeof(p_conditions -> 'patterns') = 'array'
                AND jsonb_array_length(p_conditions -> 'patterns') > 0
                AND NOT jsonb_path_exists(p_conditions -> 'patterns', 'strict $[*] ? (@.type() != "string" || @ like_regex "^ *$")')
            WHEN 'blocked_skill' THEN
                p_conditions - 'skills' = '{}'::jsonb
                AND jsonb_typeof(p_conditions -> 'skills') = 'array'
                AND jsonb_array_length(p_conditions -> 'skills') > 0
                AND NOT jsonb_path_exists(p_conditions -> 'skills', 'strict $[*] ? (@.type() != "string" || @ like_regex "^ *$")')
            ELSE FALSE
        END,
        FALSE);
END
$fn$;
COMMENT ON FUNCTION policies.rule_conditions_valid(text, jsonb) IS
    'True when p_conditions has exactly the shape rule type p_rule_type requires (see migration 0005 for the '
        'shapes). Used by CHECK constraints; pure, so executable by everyone.';

-- ---------------------------------------------------------------------------------------------
-- Tenant foreign keys only where they add something. Each of these tables already references a
-- parent by a tenant-first key that is NOT NULL, and that parent references aos.tenants: the
-- tenant FK was a second check, and a second lock on the shared aos.tenants row, per row written.
-- squawk-ignore ban-drop-constraint
ALTER TABLE activity.aos_traces DROP CONSTRAINT aos_traces_tenant_fk;            -- aos_traces_run_fk
-- squawk-ignore ban-drop-constraint
ALTER TABLE activity.aos_trace_steps DROP CONSTRAINT aos_trace_steps_tenant_fk;  -- aos_trace_steps_trace_fk
-- squawk-ignore ban-drop-constraint
ALTER TABLE incidents.incident_events DROP CONSTRAINT incident_events_tenant_fk; -- incident_events_incident_fk
-- squawk-ignore ban-drop-constraint
ALTER TABLE incidents.incident_evidence DROP CONSTRAINT incident_evidence_tenant_fk;  -- ..._incident_fk
-- squawk-ignore ban-drop-constraint
ALTER TABLE policies.prevention_records DROP CONSTRAINT prevention_records_tenant_fk; -- prevention_records_run_fk

-- ---------------------------------------------------------------------------------------------
-- The contract learns the new tables, link, grants and effect.
INSERT INTO aos.contract_tables (schema_name, table_name, domain, kind, tenant_scoped) VALUES
('policies', 'proposal_incidents', 'policies', 'table', TRUE),
('aos', 'event_ticks', 'platform', 'table', FALSE),
('aos', 'event_wakeup', 'platform', 'table', FALSE);

INSERT INTO aos.contract_links (
    link_name, from_schema, from_table, from_columns, to_schema, to_table, to_columns, description
) VALUES
('proposal_incidents_incident_fk', 'policies', 'proposal_incidents', '{tenant_id,incident_id}',
 'incidents', 'incidents', '{tenant_id,id}', 'An incident linked to the pending proposal of its rule.');

INSERT INTO aos.contract_grants (role_name, schema_name, table_name, privilege, column_names) VALUES
('aos_proposal_engine', 'policies', 'proposal_incidents', 'SELECT', NULL),
('aos_proposal_engine', 'policies', 'proposal_incidents', 'INSERT', NULL),
('aos_api', 'policies', 'proposal_incidents', 'SELECT', NULL);

UPDATE aos.contract_roles
SET description = 'Owns the PolicyProposalEngine functions; writes only policy_proposals and proposal_incidents.'
WHERE role_name = 'aos_proposal_engine';

INSERT INTO aos.contract_effects (
    cause, effect, engine, engine_role, effect_schema, effect_table, effect_columns
) VALUES
('incident with severity high or critical', 'link to the pending proposal of its rule (+ count)',
 'PolicyProposalEngine', 'aos_proposal_engine', 'policies', 'proposal_incidents', NULL);

INSERT INTO aos.contract_facade_reads (function_name, schema_name, table_name) VALUES
('api.policy_proposal', 'policies', 'proposal_incidents'),
('api.incident_evidence', 'policies', 'proposal_incidents'),
('api.activity_run_evidence', 'policies', 'proposal_incidents');

RESET ROLE;
