-- transactional: false
SET lock_timeout = '5s';
SET statement_timeout = '30min';
SET ROLE aos_owner;
CREATE INDEX CONCURRENTLY IF NOT EXISTS prevention_records_policy_rule_idx
ON policies.prevention_records (tenant_id, policy_rule_id);
DROP INDEX CONCURRENTLY IF EXISTS policies.prevention_records_rule_idx;
DROP INDEX CONCURRENTLY IF EXISTS policies.prevention_records_prevented_idx;
DROP INDEX CONCURRENTLY IF EXISTS policies.prevention_records_guardrail_idx;
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_seq_idx ON aos.events (seq);
DROP INDEX CONCURRENTLY IF EXISTS aos.events_seq_brin;
DROP INDEX CONCURRENTLY IF EXISTS aos.events_tx_id_idx;
RESET ROLE;
