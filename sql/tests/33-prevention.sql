-- Prevention (README.md, The propagation chain): approving a proposal creates its rule, and the
-- same failure again is then prevented: a prevention record (outcome
-- prevented) pointing at the rule, policy_violation set, and no incident.
-- Rejecting creates nothing, so the failure recurs as an incident. A rule
-- scoped to an agent prevents only that agent's failures; a retired rule
-- prevents nothing. Each story runs in a tenant of its own.
BEGIN;

SELECT aos.register_tenant(t)
FROM (VALUES ('approve'), ('reject'), ('scoped'), ('retired'), ('classic')) AS v (t);

-- The failure that starts every story: EXECUTION_TIMEOUT, a high incident and
-- a pending proposal (warn) in each tenant.
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
SELECT t, 'r1', 'agent-a', 'failed', 'EXECUTION_TIMEOUT' FROM (VALUES ('approve'), ('reject')) AS v (t);
-- The classic scenario, SDSR-E2E-001 style: the code only in the message.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_message)
VALUES ('classic', 'r1', 'agent-a', 'failed', 'EXECUTION_TIMEOUT: step 3 exceeded 300s');
RESET ROLE;

SELECT set_config('test.' || tenant_id, id::text, TRUE)
FROM policies.policy_proposals WHERE tenant_id IN ('approve', 'reject', 'classic');

-- ------------------------------------------------------------ the verdicts
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 'approve', TRUE);
SELECT set_config('test.approve_rule', policies.approve_proposal(current_setting('test.approve')::uuid, 'alice')::text, TRUE);
SELECT set_config('aos.tenant_id', 'reject', TRUE);
SELECT policies.reject_proposal(current_setting('test.reject')::uuid, 'alice', 'flaky, not a pattern');
SELECT set_config('aos.tenant_id', 'classic', TRUE);
SELECT policies.approve_proposal(current_setting('test.classic')::uuid, 'alice');
SELECT set_config('aos.tenant_id', 'scoped', TRUE);
SELECT set_config('test.scoped_rule', policies.create_rule('crashes of agent-a', 'error_code',
    '{"error_codes": ["AGENT_CRASH"]}', 'block', 'agent-a')::text, TRUE);
SELECT set_config('aos.tenant_id', 'retired', TRUE);
SELECT set_config('test.retired_rule', policies.create_rule('crashes', 'error_code',
    '{"error_codes": ["AGENT_CRASH"]}', 'block')::text, TRUE);
SELECT policies.retire_rule(current_setting('test.retired_rule')::uuid, 'alice');
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

-- ----------------------------------------------------- the failures again
SET LOCAL ROLE aos_worker;
-- approve: the same code by INSERT, through the API, by message only, by a
-- multi-row INSERT; another code; a success.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
VALUES ('approve', 'r2', 'agent-b', 'failed', 'EXECUTION_TIMEOUT');
SELECT activity.start_run('approve', 'r3', 'agent-a', NULL);
SELECT activity.finish_run('approve', 'r3', 'failed', '{"error_code": "EXECUTION_TIMEOUT"}');
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_message)
VALUES ('approve', 'r4', 'agent-a', 'failed', 'execution_timeout after 300s');
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code) VALUES
    ('approve', 'r5', 'agent-a', 'failed', 'EXECUTION_TIMEOUT'),
    ('approve', 'r6', 'agent-a', 'failed', 'AGENT_CRASH'),
    ('approve', 'r7', 'agent-a', 'succeeded', 'EXECUTION_TIMEOUT');
-- reject: the same failure again.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
VALUES ('reject', 'r2', 'agent-a', 'failed', 'EXECUTION_TIMEOUT');
-- scoped: agent-a's crash and agent-b's crash.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code) VALUES
    ('scoped', 'a1', 'agent-a', 'failed', 'AGENT_CRASH'),
    ('scoped', 'b1', 'agent-b', 'failed', 'AGENT_CRASH');
-- retired: a crash after the rule was retired.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
VALUES ('retired', 'r1', 'agent-a', 'failed', 'AGENT_CRASH');
-- classic: the same failure again.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_message)
VALUES ('classic', 'r2', 'agent-a', 'failed', 'EXECUTION_TIMEOUT: step 3 exceeded 300s');
RESET ROLE;

-- What happened to each run: its incidents, its prevention records (outcome
-- and whether they point at the tenant's rule), and its policy_violation flag.
CREATE TEMP TABLE expected (tenant_id text, run_id text, incidents int, prevented text, violation boolean, why text)
ON COMMIT DROP;
INSERT INTO expected VALUES
    ('approve', 'r1', 1, '', FALSE, 'the first failure, before approval, is an incident'),
    ('approve', 'r2', 0, 'prevented:rule', TRUE,
     'after approval, the same code again (another agent) is prevented: no incident, one record, flagged'),
    ('approve', 'r3', 0, 'prevented:rule', TRUE, 'the same code reported by finish_run is prevented'),
    ('approve', 'r4', 0, 'prevented:rule', TRUE, 'the same code found in the message is prevented'),
    ('approve', 'r5', 0, 'prevented:rule', TRUE, 'the same code in a multi-row INSERT is prevented'),
    ('approve', 'r6', 1, '', FALSE, 'another code is not prevented: an incident'),
    ('approve', 'r7', 0, '', FALSE, 'a succeeded run with that code is not a failure to prevent'),
    ('reject', 'r1', 1, '', FALSE, 'the first failure is an incident'),
    ('reject', 'r2', 1, '', FALSE, 'after rejection, the same failure again is a second incident, nothing prevented'),
    ('scoped', 'a1', 0, 'prevented:rule', TRUE, 'a rule scoped to agent-a prevents agent-a''s failure'),
    ('scoped', 'b1', 1, '', FALSE, 'a rule scoped to agent-a does not prevent agent-b''s failure'),
    ('retired', 'r1', 1, '', FALSE, 'a retired rule prevents nothing');

SELECT plan(
    4                                       -- the approved rule, the rejected proposal
    + (SELECT count(*)::int FROM expected)
    + 2                                     -- events of a prevented failure
    + 2                                     -- the classic scenario
);

SELECT results_eq(
    $$SELECT r.id::text, r.rule_type, r.conditions, r.enforcement, r.status, r.source,
             r.source_proposal_id = p.id, r.agent_id
      FROM policies.policy_rules AS r JOIN policies.policy_proposals AS p
          ON p.tenant_id = r.tenant_id AND p.id = r.source_proposal_id
      WHERE r.tenant_id = 'approve'$$,
    format($$VALUES (%L, 'error_code', '{"error_codes": ["EXECUTION_TIMEOUT"]}'::jsonb, 'warn', 'active', 'proposal',
                     TRUE, NULL::text)$$, current_setting('test.approve_rule')),
    'approval creates exactly one active rule, source proposal, pointing at its proposal, as proposed'
);
SELECT results_eq(
    $$SELECT triggering_run_id, status, reviewed_by FROM policies.policy_proposals WHERE tenant_id = 'approve'
      ORDER BY triggering_run_id$$,
    $$VALUES ('r1', 'approved', 'alice'), ('r6', 'pending', NULL)$$,
    'the proposal is approved by its reviewer; only the unprevented crash raised another proposal'
);
SELECT is_empty(
    $$SELECT FROM policies.policy_rules WHERE tenant_id = 'reject'$$,
    'rejection creates no rule'
);
SELECT results_eq(
    $$SELECT status, count(*)::int FROM policies.policy_proposals WHERE tenant_id = 'reject' GROUP BY status ORDER BY status$$,
    $$VALUES ('pending', 1), ('rejected', 1)$$,
    'after rejection the recurring failure raises a new pending proposal'
);

SELECT results_eq(
    format($$SELECT (SELECT count(*)::int FROM incidents.incidents AS i
                     WHERE i.tenant_id = r.tenant_id AND i.source_run_id = r.run_id),
                    (SELECT coalesce(string_agg(p.outcome || ':' || CASE
                                WHEN p.policy_rule_id = ru.id AND p.guardrail_id IS NULL THEN 'rule' ELSE 'other' END,
                                ',' ORDER BY p.outcome), '')
                     FROM policies.prevention_records AS p
                     LEFT JOIN policies.policy_rules AS ru ON ru.tenant_id = p.tenant_id AND ru.id = p.policy_rule_id
                     WHERE p.tenant_id = r.tenant_id AND p.run_id = r.run_id),
                    r.policy_violation
             FROM activity.runs AS r WHERE r.tenant_id = %L AND r.run_id = %L$$, e.tenant_id, e.run_id),
    format('VALUES (%s, %L, %L::boolean)', e.incidents, e.prevented, e.violation),
    format('%s: %s', e.tenant_id, e.why)
)
FROM expected AS e ORDER BY e.tenant_id, e.run_id;

SELECT results_eq(
    $$SELECT event, payload ->> 'run_id', payload ->> 'outcome', payload ->> 'policy_rule_id'
      FROM aos.events WHERE tenant_id = 'scoped' AND payload ->> 'run_id' = 'a1' ORDER BY seq$$,
    format($$VALUES ('prevention_recorded', 'a1', 'prevented', %L), ('run_failed', 'a1', NULL, NULL)$$,
           current_setting('test.scoped_rule')),
    'a prevented failure publishes prevention_recorded for the rule, then run_failed, and no incident_created'
);
SELECT results_eq(
    $$SELECT payload -> 'prevented' FROM aos.events WHERE tenant_id = 'scoped' AND event = 'run_failed' ORDER BY subject_id$$,
    $$VALUES ('true'::jsonb), ('false')$$,
    'run_failed says whether the failure was prevented'
);

SELECT results_eq(
    $$SELECT (SELECT count(*)::int FROM activity.runs WHERE tenant_id = 'classic'),
             (SELECT count(*)::int FROM incidents.incidents WHERE tenant_id = 'classic'),
             (SELECT count(*)::int FROM policies.policy_proposals WHERE tenant_id = 'classic'),
             (SELECT count(*)::int FROM policies.policy_rules WHERE tenant_id = 'classic'),
             (SELECT count(*)::int FROM policies.prevention_records WHERE tenant_id = 'classic')$$,
    $$VALUES (2, 1, 1, 1, 1)$$,
    'the classic scenario (fail, approve, fail again): runs 2, incidents 1, proposals 1, rules 1, prevention records 1'
);
SELECT results_eq(
    $$SELECT p.run_id, p.outcome, p.policy_rule_id = ru.id, r.policy_violation
      FROM policies.prevention_records AS p
      JOIN policies.policy_rules AS ru ON ru.tenant_id = p.tenant_id AND ru.id = p.policy_rule_id
      JOIN activity.runs AS r ON r.tenant_id = p.tenant_id AND r.run_id = p.run_id
      WHERE p.tenant_id = 'classic'$$,
    $$VALUES ('r2', 'prevented', TRUE, TRUE)$$,
    'the classic scenario: the second run is prevented by the approved rule and flagged'
);

SELECT * FROM finish();
ROLLBACK;
