-- policies.rule_conditions_valid(rule_type, conditions): true for exactly
-- the shape each rule type requires, false (never null, never an error) for
-- anything else: unknown keys, empty lists, non-strings, lowercase error
-- codes, unknown metrics, negative or non-numeric max, unknown rule types.
BEGIN;

CREATE TEMP TABLE cases (rule_type text, conditions jsonb, expected boolean, what text) ON COMMIT DROP;
INSERT INTO cases VALUES
    -- error_code
    ('error_code', '{"error_codes": ["EXECUTION_TIMEOUT"]}', TRUE, 'one error code'),
    ('error_code', '{"error_codes": ["AGENT_CRASH", "STEP_FAILURE", "E2"]}', TRUE, 'several error codes'),
    ('error_code', '{"error_codes": []}', FALSE, 'an empty list'),
    ('error_code', '{"error_codes": ["execution_timeout"]}', FALSE, 'a lowercase error code'),
    ('error_code', '{"error_codes": ["2FAST"]}', FALSE, 'an error code starting with a digit'),
    ('error_code', '{"error_codes": [""]}', FALSE, 'an empty error code'),
    ('error_code', '{"error_codes": [42]}', FALSE, 'a number instead of a string'),
    ('error_code', '{"error_codes": [null]}', FALSE, 'a null element'),
    ('error_code', '{"error_codes": "AGENT_CRASH"}', FALSE, 'a string instead of a list'),
    ('error_code', '{"error_codes": ["AGENT_CRASH"], "severity": "high"}', FALSE, 'an unknown extra key'),
    ('error_code', '{"patterns": ["AGENT_CRASH"]}', FALSE, 'the key of another rule type'),
    ('error_code', '{}', FALSE, 'an empty object'),
    ('error_code', '["AGENT_CRASH"]', FALSE, 'an array instead of an object'),
    ('error_code', NULL, FALSE, 'null conditions'),
    -- max_value
    ('max_value', '{"metric": "estimated_cost_usd", "max": 1.5}', TRUE, 'a cost limit'),
    ('max_value', '{"metric": "input_tokens", "max": 1000}', TRUE, 'an input token limit'),
    ('max_value', '{"metric": "output_tokens", "max": 1000}', TRUE, 'an output token limit'),
    ('max_value', '{"metric": "total_tokens", "max": 16000}', TRUE, 'a total token limit'),
    ('max_value', '{"metric": "duration_ms", "max": 0}', TRUE, 'a zero duration limit'),
    ('max_value', '{"metric": "attempts", "max": 3}', TRUE, 'an attempts limit'),
    ('max_value', '{"metric": "latency", "max": 3}', FALSE, 'an unknown metric'),
    ('max_value', '{"metric": "attempts", "max": -1}', FALSE, 'a negative max'),
    ('max_value', '{"metric": "attempts", "max": "3"}', FALSE, 'a string max'),
    ('max_value', '{"metric": "attempts", "max": "lots"}', FALSE, 'a non-numeric string max'),
    ('max_value', '{"metric": "attempts", "max": null}', FALSE, 'a null max'),
    ('max_value', '{"metric": "attempts"}', FALSE, 'a missing max'),
    ('max_value', '{"max": 3}', FALSE, 'a missing metric'),
    ('max_value', '{"metric": "attempts", "max": 3, "unit": "runs"}', FALSE, 'an unknown extra key'),
    -- pattern_block
    ('pattern_block', '{"patterns": ["ignore previous instructions"]}', TRUE, 'one pattern'),
    ('pattern_block', '{"patterns": []}', FALSE, 'an empty list'),
    ('pattern_block', '{"patterns": ["  "]}', FALSE, 'a blank pattern'),
    ('pattern_block', '{"patterns": [{"regex": "x"}]}', FALSE, 'an object instead of a string'),
    ('pattern_block', '{"patterns": ["x"], "case_insensitive": true}', FALSE, 'an unknown extra key'),
    -- blocked_skill
    ('blocked_skill', '{"skills": ["shell_exec", "delete_db"]}', TRUE, 'two skills'),
    ('blocked_skill', '{"skills": []}', FALSE, 'an empty list'),
    ('blocked_skill', '{"skills": [true]}', FALSE, 'a boolean instead of a string'),
    ('blocked_skill', '{"skill": ["shell_exec"]}', FALSE, 'a misspelt key'),
    -- the rule type itself
    ('regex', '{"patterns": ["x"]}', FALSE, 'an unknown rule type'),
    (NULL, '{"error_codes": ["X"]}', FALSE, 'a null rule type');

SELECT plan((SELECT count(*)::int FROM cases) + 3);

SELECT is(policies.rule_conditions_valid(rule_type, conditions), expected,
          format('%s conditions: %s is %s', coalesce(rule_type, 'null'), what,
                 CASE WHEN expected THEN 'valid' ELSE 'invalid' END))
FROM cases ORDER BY rule_type, expected DESC, what;

-- A JSON null metric once made the function return null, which a CHECK
-- constraint accepts: it must be false.
SELECT is(policies.rule_conditions_valid('max_value', '{"metric": null, "max": 3}'), FALSE,
          'max_value conditions: a null metric is invalid');

-- CHECK constraints run it as the inserting role: the PolicyEngine, which
-- owns no function, can store a rule, and a role with schema USAGE but no
-- table privilege can call it.
INSERT INTO aos.tenants (tenant_id, name) VALUES ('t1', 'Tenant one');
SET LOCAL ROLE aos_policy_engine;
SELECT lives_ok(
    $$INSERT INTO policies.policy_rules (tenant_id, name, rule_type, conditions, enforcement)
      VALUES ('t1', 'no skills', 'blocked_skill', '{"skills": ["shell_exec"]}', 'block')$$,
    'aos_policy_engine can store a rule (the CHECK calls rule_conditions_valid as that role)'
);
RESET ROLE;
SET LOCAL ROLE aos_operator;
SELECT is(policies.rule_conditions_valid('error_code', '{"error_codes": ["AGENT_CRASH"]}'), TRUE,
          'aos_operator, with no table privilege, can call rule_conditions_valid');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
