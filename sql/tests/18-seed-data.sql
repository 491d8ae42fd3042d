-- The seeded reference data: the eleven failure classes an incident is
-- classified into and the five default guardrails a run is evaluated against.
BEGIN;

SELECT plan(8);

SELECT results_eq(
    'SELECT error_code, severity, category, proposal_type FROM incidents.failure_classes ORDER BY error_code',
    $$
    SELECT * FROM (VALUES
        ('EXECUTION_TIMEOUT', 'high', 'execution_failure', 'timeout_policy'),
        ('AGENT_CRASH', 'critical', 'execution_failure', 'crash_recovery_policy'),
        ('STEP_FAILURE', 'high', 'execution_failure', 'retry_policy'),
        ('SKILL_ERROR', 'high', 'execution_failure', 'failure_pattern_policy'),
        ('BUDGET_EXCEEDED', 'medium', 'budget_exceeded', 'cost_cap_policy'),
        ('RATE_LIMIT_EXCEEDED', 'medium', 'rate_limit', 'rate_limit_policy'),
        ('RESOURCE_EXHAUSTION', 'medium', 'resource_exhaustion', NULL),
        ('RETRY_EXHAUSTED', 'medium', 'execution_failure', NULL),
        ('CANCELLED', 'low', 'manual', NULL),
        ('MANUAL_STOP', 'low', 'manual', NULL),
        ('UNKNOWN', 'medium', 'execution_failure', 'failure_pattern_policy')
    ) AS v (error_code, severity, category, proposal_type)
    ORDER BY error_code
    $$,
    'incidents.failure_classes holds exactly the eleven failure classes'
);

-- Codes are searched in a message in a fixed priority order; UNKNOWN is the
-- fallback, never found in a message.
SELECT results_eq(
    'SELECT error_code FROM incidents.failure_classes WHERE match_priority IS NULL',
    $$ VALUES ('UNKNOWN'::text) $$,
    'every failure class but UNKNOWN has a match priority'
);

SELECT is_empty(
    $$ SELECT error_code FROM incidents.failure_classes WHERE btrim(description) = '' $$,
    'every failure class is described'
);

SELECT results_eq(
    'SELECT id, name, action FROM policies.default_guardrails ORDER BY id',
    $$
    VALUES ('dg-001'::text, 'max_cost_per_request'::text, 'block'::text),
           ('dg-002', 'max_tokens_per_request', 'block'),
           ('dg-003', 'rate_limit_rpm', 'throttle'),
           ('dg-004', 'failure_spike_freeze', 'freeze'),
           ('dg-005', 'prompt_injection_block', 'block')
    $$,
    'policies.default_guardrails holds dg-001..dg-005 with their names and actions'
);

SELECT results_eq(
    'SELECT id, rule_type, config FROM policies.default_guardrails ORDER BY id',
    $$
    VALUES ('dg-001'::text, 'max_value'::text, '{"metric": "estimated_cost_cents", "max": 100}'::jsonb),
           ('dg-002', 'max_value', '{"metric": "total_tokens", "max": 16000}'),
           ('dg-003', 'rate_limit', '{"max_runs": 100, "window_seconds": 60}'),
           ('dg-004', 'failure_spike', '{"max_failure_rate": 0.5, "window_seconds": 60, "min_runs": 10}'),
           ('dg-005', 'pattern_block', jsonb_build_object(
               'patterns', jsonb_build_array('ignore previous instructions', 'disregard above', 'system prompt:',
                                             E'\n\nHuman:', E'\n\nAssistant:'),
               'case_insensitive', TRUE))
    $$,
    'each guardrail encodes its rule (100 cents, 16000 tokens, 100 runs in 60 s, '
    || '0.5 failure rate over 60 s and at least 10 runs, the five injection phrases)'
);

SELECT results_eq(
    'SELECT id FROM policies.default_guardrails WHERE is_enabled ORDER BY priority',
    $$ VALUES ('dg-001'::text), ('dg-002'), ('dg-003'), ('dg-004'), ('dg-005') $$,
    'every guardrail is enabled, evaluated in id order'
);

SELECT is_empty(
    $$ SELECT id FROM policies.default_guardrails WHERE version <> 1 OR btrim(description) = '' $$,
    'every guardrail is at version 1 and described'
);

SELECT results_eq(
    'SELECT id, category FROM policies.default_guardrails ORDER BY id',
    $$ VALUES ('dg-001'::text, 'cost'::text), ('dg-002', 'tokens'), ('dg-003', 'rate'), ('dg-004', 'reliability'),
              ('dg-005', 'safety') $$,
    'each guardrail has its category'
);

SELECT * FROM finish();
ROLLBACK;
