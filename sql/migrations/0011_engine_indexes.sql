-- depends: 0010_engines_at_scale
-- transactional: false
-- Indexes on tables that may already be large, built CONCURRENTLY so that failures keep
-- committing while they are built:
--   events_tx_id_idx                  the outbox batches: the events of the transactions between two ticks;
--   events_seq_brin                   a listener resuming from a seq. seq follows insert order, so a BRIN
--                                     index serves it and costs a writer next to nothing, unlike the btree
--                                     events_seq_idx it replaces (a storm writes three events per run);
--   prevention_records_guardrail_idx  dg-004: was the tenant frozen within the window already?
--   prevention_records_prevented_idx  the IncidentEngine: was this failure prevented?
--   prevention_records_rule_idx       the records of a rule.
-- The last three are partial: a storm throttles thousands of runs (dg-003), and those records
-- skip them.
SET lock_timeout = '5s';
SET statement_timeout = '30min';
SET ROLE aos_owner;

CREATE INDEX CONCURRENTLY IF NOT EXISTS events_tx_id_idx ON aos.events (tx_id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_seq_brin ON aos.events USING brin (seq)
WITH (pages_per_range = 16, autosummarize = on);
DROP INDEX CONCURRENTLY IF EXISTS aos.events_seq_idx;

CREATE INDEX CONCURRENTLY IF NOT EXISTS prevention_records_guardrail_idx
ON policies.prevention_records (tenant_id, guardrail_id, created_at)
WHERE guardrail_id IS NOT NULL AND outcome <> 'throttled';
CREATE INDEX CONCURRENTLY IF NOT EXISTS prevention_records_prevented_idx
ON policies.prevention_records (tenant_id, run_id)
WHERE outcome = 'prevented';
CREATE INDEX CONCURRENTLY IF NOT EXISTS prevention_records_rule_idx
ON policies.prevention_records (tenant_id, policy_rule_id)
WHERE policy_rule_id IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS policies.prevention_records_policy_rule_idx;

RESET ROLE;
