SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;
DROP TABLE policies.prevention_records CASCADE;
DROP TABLE policies.policy_rules CASCADE;
DROP TABLE policies.policy_proposals CASCADE;
DROP TABLE policies.default_guardrails CASCADE;
DROP FUNCTION policies.rule_conditions_valid(text, jsonb);
RESET ROLE;
