-- Operator actions on proposals and rules (README.md, How an operator acts): approve_proposal
-- (pending -> approved, exactly one rule, returns its id), reject_proposal
-- (pending -> rejected, no rule), create_rule for every rule type,
-- retire_rule; approved and rejected are final (55000); invalid input 22023;
-- another tenant's ids P0002; no tenant 28000; roles without the verbs 42501;
-- every rejected call writes nothing; the outbox events in causal order.
BEGIN;

SELECT aos.register_tenant(t) FROM (VALUES ('t1'), ('t2')) AS v (t);

-- One proposal per story. A tenant has one pending proposal per rule, so
-- each story fails with a code of its own: high failures (proposal warn) and
-- a critical one (AGENT_CRASH, proposal block).
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
SELECT t, r, 'agent-a', 'failed', c
FROM (VALUES ('t1', 'r-approve', 'EXECUTION_TIMEOUT'),
             ('t1', 'r-approved', 'AGENT_CRASH'), ('t1', 'r-rejected', 'STEP_FAILURE'),
             ('t1', 'r-pending', 'SKILL_ERROR'), ('t2', 'r-other', 'EXECUTION_TIMEOUT')) AS v (t, r, c);
-- The failure classes hold four high or critical codes; the fifth story is a
-- high incident the platform reports itself (cause system) about a run.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status) VALUES ('t1', 'r-reject', 'agent-a', 'succeeded');
INSERT INTO incidents.incidents (tenant_id, source_run_id, title, severity, category, error_code, cause_type)
VALUES ('t1', 'r-reject', 'disk full on the agent host', 'high', 'execution_failure', 'DISK_FULL', 'system');

-- Proposals by name, readable by every role the test plays.
CREATE TEMP TABLE prop (name text PRIMARY KEY, id uuid) ON COMMIT DROP;
GRANT SELECT ON prop TO PUBLIC;
INSERT INTO prop SELECT substr(triggering_run_id, 3), id FROM policies.policy_proposals;

CREATE TEMP TABLE rejected (
    n serial, who name NOT NULL, tenant text, sql text NOT NULL, errcode text NOT NULL, description text NOT NULL
);
GRANT SELECT ON rejected TO PUBLIC;

INSERT INTO rejected (who, tenant, sql, errcode, description) VALUES
    -- approved and rejected are final
    ('aos_operator', 't1', $$SELECT policies.approve_proposal((SELECT id FROM prop WHERE name = 'approved'), 'bob')$$,
     '55000', 'approving an approved proposal again raises 55000 (and creates no second rule)'),
    ('aos_operator', 't1', $$SELECT policies.reject_proposal((SELECT id FROM prop WHERE name = 'approved'), 'bob')$$,
     '55000', 'rejecting an approved proposal raises 55000'),
    ('aos_operator', 't1', $$SELECT policies.approve_proposal((SELECT id FROM prop WHERE name = 'rejected'), 'bob')$$,
     '55000', 'approving a rejected proposal raises 55000'),
    ('aos_operator', 't1', $$SELECT policies.reject_proposal((SELECT id FROM prop WHERE name = 'rejected'), 'bob')$$,
     '55000', 'rejecting a rejected proposal again raises 55000'),
    -- reviewer required
    ('aos_operator', 't1', $$SELECT policies.approve_proposal((SELECT id FROM prop WHERE name = 'pending'), '')$$,
     '22023', 'approve with an empty reviewer raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.approve_proposal((SELECT id FROM prop WHERE name = 'pending'), ' ')$$,
     '22023', 'approve with a blank reviewer raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.approve_proposal((SELECT id FROM prop WHERE name = 'pending'), NULL)$$,
     '22023', 'approve with a null reviewer raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.reject_proposal((SELECT id FROM prop WHERE name = 'pending'), '  ')$$,
     '22023', 'reject with a blank reviewer raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.reject_proposal((SELECT id FROM prop WHERE name = 'pending'), NULL)$$,
     '22023', 'reject with a null reviewer raises 22023'),
    -- not found
    ('aos_operator', 't1', $$SELECT policies.approve_proposal((SELECT id FROM prop WHERE name = 'other'), 'bob')$$,
     'P0002', 'approving another tenant''s proposal: not found (P0002)'),
    ('aos_operator', 't1', $$SELECT policies.reject_proposal((SELECT id FROM prop WHERE name = 'other'), 'bob')$$,
     'P0002', 'rejecting another tenant''s proposal: not found (P0002)'),
    ('aos_operator', 't1', $$SELECT policies.approve_proposal('00000000-0000-0000-0000-000000000000', 'bob')$$,
     'P0002', 'approving an id that does not exist: not found (P0002)'),
    ('aos_operator', 't1', $$SELECT policies.retire_rule(NULL, 'bob')$$,
     'P0002', 'retiring a null rule id: not found (P0002)'),
    -- no tenant
    ('aos_operator', NULL, $$SELECT policies.approve_proposal((SELECT id FROM prop WHERE name = 'pending'), 'bob')$$,
     '28000', 'approve with no tenant set raises 28000'),
    ('aos_operator', NULL, $$SELECT policies.reject_proposal((SELECT id FROM prop WHERE name = 'pending'), 'bob')$$,
     '28000', 'reject with no tenant set raises 28000'),
    ('aos_operator', NULL, $$SELECT policies.create_rule('r', 'error_code', '{"error_codes": ["X"]}', 'warn')$$,
     '28000', 'create_rule with no tenant set raises 28000'),
    -- create_rule input
    ('aos_operator', 't1', $$SELECT policies.create_rule('r', 'regex', '{"patterns": ["x"]}', 'block')$$,
     '22023', 'create_rule with an unknown rule type raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('r', NULL, '{"patterns": ["x"]}', 'block')$$,
     '22023', 'create_rule with a null rule type raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('r', 'pattern_block', '{"patterns": ["x"]}', 'deny')$$,
     '22023', 'create_rule with an unknown enforcement raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('r', 'pattern_block', '{"patterns": ["x"]}', NULL)$$,
     '22023', 'create_rule with a null enforcement raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.create_rule(' ', 'pattern_block', '{"patterns": ["x"]}', 'block')$$,
     '22023', 'create_rule with a blank name raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('r', 'error_code', '{"codes": ["AGENT_CRASH"]}', 'block')$$,
     '22023', 'create_rule error_code with the wrong key raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('r', 'error_code', '{"error_codes": ["agent_crash"]}', 'block')$$,
     '22023', 'create_rule error_code with a code not in upper case raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('r', 'error_code', '{"error_codes": []}', 'block')$$,
     '22023', 'create_rule error_code with no codes raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('r', 'max_value', '{"metric": "cost", "max": 1}', 'block')$$,
     '22023', 'create_rule max_value with an unknown metric raises 22023'),
    ('aos_operator', 't1',
     $$SELECT policies.create_rule('r', 'max_value', '{"metric": "input_tokens", "max": "1000"}', 'block')$$,
     '22023', 'create_rule max_value with a max that is not a number raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('r', 'max_value', '{"metric": "input_tokens", "max": -1}', 'block')$$,
     '22023', 'create_rule max_value with a negative max raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('r', 'max_value', '{"metric": "input_tokens"}', 'block')$$,
     '22023', 'create_rule max_value without max raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('r', 'pattern_block', '{"patterns": "rm -rf"}', 'block')$$,
     '22023', 'create_rule pattern_block with patterns that are not a list raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('r', 'pattern_block', '{"patterns": [""]}', 'block')$$,
     '22023', 'create_rule pattern_block with an empty pattern raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('r', 'blocked_skill', '{"skills": [1]}', 'block')$$,
     '22023', 'create_rule blocked_skill with a skill that is not a string raises 22023'),
    ('aos_operator', 't1',
     $$SELECT policies.create_rule('r', 'blocked_skill', '{"skills": ["sudo"], "extra": 1}', 'block')$$,
     '22023', 'create_rule with an extra conditions key raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('r', 'blocked_skill', '["sudo"]', 'block')$$,
     '22023', 'create_rule with conditions that are not an object raises 22023'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('r', 'blocked_skill', NULL, 'block')$$,
     '22023', 'create_rule with null conditions raises 22023'),
    -- retire_rule
    ('aos_operator', 't1', $$SELECT policies.retire_rule(current_setting('test.manual_rule')::uuid, 'bob')$$,
     '55000', 'retiring a retired rule raises 55000'),
    ('aos_operator', 't1', $$SELECT policies.retire_rule(current_setting('test.approved_rule')::uuid, '')$$,
     '22023', 'retire_rule with an empty actor raises 22023'),
    ('aos_operator', 't2', $$SELECT policies.retire_rule(current_setting('test.approved_rule')::uuid, 'bob')$$,
     'P0002', 'retiring another tenant''s rule: not found (P0002)'),
    ('aos_operator', NULL, $$SELECT policies.retire_rule(current_setting('test.approved_rule')::uuid, 'bob')$$,
     '28000', 'retire_rule with no tenant set raises 28000'),
    -- roles without the verbs
    ('aos_worker', 't1', $$SELECT policies.approve_proposal((SELECT id FROM prop WHERE name = 'pending'), 'bob')$$,
     '42501', 'aos_worker cannot approve (42501)'),
    ('aos_worker', 't1', $$SELECT policies.create_rule('r', 'blocked_skill', '{"skills": ["sudo"]}', 'block')$$,
     '42501', 'aos_worker cannot create a rule (42501)'),
    ('aos_api', 't1', $$SELECT policies.reject_proposal((SELECT id FROM prop WHERE name = 'pending'), 'bob')$$,
     '42501', 'aos_api cannot reject (42501)'),
    ('aos_api', 't1', $$SELECT policies.retire_rule(current_setting('test.approved_rule')::uuid, 'bob')$$,
     '42501', 'aos_api cannot retire a rule (42501)'),
    ('aos_operator', 't1',
     $$SELECT policies._review_proposal((SELECT id FROM prop WHERE name = 'pending'), 'approved', 'bob', NULL)$$,
     '42501', 'aos_operator cannot call the internal helper policies._review_proposal (42501)'),
    ('aos_operator', 't1',
     $$UPDATE policies.policy_proposals SET status = 'approved', reviewed_at = now(), reviewed_by = 'bob'$$,
     '42501', 'aos_operator cannot bypass the verbs with a direct UPDATE (42501)');

SELECT plan(
    7       -- approve
    + 4     -- reject
    + 2     -- approve and reject of the critical and other proposals
    + 8     -- create_rule
    + 4     -- retire_rule
    + 1     -- the outbox order
    + (SELECT count(*)::int * 2 FROM rejected)
);

-- ---------------------------------------------------------------- approve
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT set_config('test.approve_rule',
    policies.approve_proposal((SELECT id FROM prop WHERE name = 'approve'), 'alice', 'recurring timeouts')::text, TRUE);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

SELECT results_eq(
    $$SELECT status, reviewed_at = now(), reviewed_by, review_notes FROM policies.policy_proposals
      WHERE id = (SELECT id FROM prop WHERE name = 'approve')$$,
    $$VALUES ('approved', TRUE, 'alice', 'recurring timeouts')$$,
    'approve_proposal: pending -> approved with reviewed_at, reviewed_by and the notes'
);
SELECT results_eq(
    $$SELECT count(*)::int FROM policies.policy_rules WHERE source_proposal_id = (SELECT id FROM prop WHERE name = 'approve')$$,
    $$VALUES (1)$$,
    'approving creates exactly one rule for the proposal'
);
SELECT results_eq(
    $$SELECT id::text FROM policies.policy_rules WHERE source_proposal_id = (SELECT id FROM prop WHERE name = 'approve')$$,
    format('VALUES (%L)', current_setting('test.approve_rule')),
    'approve_proposal returns the id of that rule'
);
SELECT results_eq(
    $$SELECT r.tenant_id, r.name = p.proposal_name, r.rule_type, r.conditions, r.enforcement, r.status, r.source,
             r.agent_id, r.retired_at
      FROM policies.policy_rules AS r JOIN policies.policy_proposals AS p
          ON p.tenant_id = r.tenant_id AND p.id = r.source_proposal_id
      WHERE p.id = (SELECT id FROM prop WHERE name = 'approve')$$,
    $$VALUES ('t1', TRUE, 'error_code', '{"error_codes": ["EXECUTION_TIMEOUT"]}'::jsonb, 'warn', 'active', 'proposal',
              NULL::text, NULL::timestamptz)$$,
    'the rule is the proposed rule: active, source proposal, named after the proposal, for every agent'
);
SELECT results_eq(
    $$SELECT status, count(*)::int FROM policies.policy_proposals WHERE tenant_id = 't1' GROUP BY status ORDER BY status$$,
    $$VALUES ('approved', 1), ('pending', 4)$$,
    'approving one proposal leaves the others pending'
);
SELECT results_eq(
    $$SELECT status FROM policies.policy_proposals WHERE tenant_id = 't2'$$,
    $$VALUES ('pending')$$,
    'the other tenant''s proposal is untouched'
);
SELECT is_empty(
    $$SELECT FROM policies.policy_rules WHERE tenant_id = 't2'$$,
    'the other tenant has no rule'
);

-- ----------------------------------------------------------------- reject
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT lives_ok(
    $$SELECT policies.reject_proposal((SELECT id FROM prop WHERE name = 'reject'), 'alice', 'one-off')$$,
    'aos_operator rejects a pending proposal of its tenant'
);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;
SELECT results_eq(
    $$SELECT status, reviewed_at = now(), reviewed_by, review_notes FROM policies.policy_proposals
      WHERE id = (SELECT id FROM prop WHERE name = 'reject')$$,
    $$VALUES ('rejected', TRUE, 'alice', 'one-off')$$,
    'reject_proposal: pending -> rejected with reviewed_at, reviewed_by and the notes'
);
SELECT is_empty(
    $$SELECT FROM policies.policy_rules WHERE source_proposal_id = (SELECT id FROM prop WHERE name = 'reject')$$,
    'rejecting creates no rule'
);
SELECT results_eq(
    $$SELECT event FROM aos.events WHERE subject_id = (SELECT id FROM prop WHERE name = 'reject')::text ORDER BY seq$$,
    $$VALUES ('proposal_created'), ('proposal_rejected')$$,
    'rejecting publishes proposal_rejected and nothing else about the proposal'
);

-- The proposals the rejections need: one approved (critical: a block rule), one rejected.
SET LOCAL ROLE aos_scenario;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT set_config('test.approved_rule',
    policies.approve_proposal((SELECT id FROM prop WHERE name = 'approved'), 'sdsr')::text, TRUE);
SELECT policies.reject_proposal((SELECT id FROM prop WHERE name = 'rejected'), 'sdsr');
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;
SELECT results_eq(
    $$SELECT rule_type, conditions, enforcement FROM policies.policy_rules WHERE id::text = current_setting('test.approved_rule')$$,
    $$VALUES ('error_code', '{"error_codes": ["AGENT_CRASH"]}'::jsonb, 'block')$$,
    'approving the proposal of a critical incident (as aos_scenario) creates a block rule'
);
SELECT results_eq(
    $$SELECT status, reviewed_by FROM policies.policy_proposals WHERE id = (SELECT id FROM prop WHERE name = 'rejected')$$,
    $$VALUES ('rejected', 'sdsr')$$,
    'aos_scenario may reject a proposal of its tenant'
);

-- ------------------------------------------------------------ create_rule
CREATE TEMP TABLE new_rules (rule_type text, conditions jsonb, enforcement text, agent_id text, id uuid)
ON COMMIT DROP;
GRANT SELECT, UPDATE ON new_rules TO PUBLIC;
INSERT INTO new_rules (rule_type, conditions, enforcement, agent_id) VALUES
    ('error_code', '{"error_codes": ["RATE_LIMIT_EXCEEDED", "BUDGET_EXCEEDED"]}', 'block', NULL),
    ('max_value', '{"metric": "total_tokens", "max": 8000}', 'warn', 'agent-a'),
    ('pattern_block', '{"patterns": ["rm -rf", "drop table"]}', 'audit', NULL),
    ('blocked_skill', '{"skills": ["shell_exec"]}', 'block', 'agent-b');

SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
UPDATE new_rules SET id = policies.create_rule('manual ' || rule_type, rule_type, conditions, enforcement, agent_id);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

SELECT results_eq(
    format($$SELECT tenant_id, name, rule_type, conditions, enforcement, status, source, source_proposal_id, agent_id
             FROM policies.policy_rules WHERE id = %L$$, n.id),
    format($$VALUES ('t1', %L, %L, %L::jsonb, %L, 'active', 'manual', NULL::uuid, %L::text)$$,
           'manual ' || n.rule_type, n.rule_type, n.conditions, n.enforcement, n.agent_id),
    format('create_rule creates an active manual %s rule (%s) and returns its id', n.rule_type,
           coalesce('for ' || n.agent_id, 'for every agent'))
)
FROM new_rules AS n ORDER BY n.rule_type;
SELECT results_eq(
    format($$SELECT event, tenant_id, payload ->> 'rule_type', payload ->> 'source' FROM aos.events
             WHERE subject_id = %L$$, n.id),
    format($$VALUES ('rule_created', 't1', %L, 'manual')$$, n.rule_type),
    format('create_rule publishes rule_created for the %s rule', n.rule_type)
)
FROM new_rules AS n ORDER BY n.rule_type;

-- ------------------------------------------------------------ retire_rule
SELECT set_config('test.manual_rule', (SELECT id::text FROM new_rules WHERE rule_type = 'max_value'), TRUE);
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT lives_ok(
    $$SELECT policies.retire_rule(current_setting('test.manual_rule')::uuid, 'alice')$$,
    'aos_operator retires an active rule of its tenant'
);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;
SELECT results_eq(
    $$SELECT status, retired_at = now(), retired_by FROM policies.policy_rules
      WHERE id::text = current_setting('test.manual_rule')$$,
    $$VALUES ('retired', TRUE, 'alice')$$,
    'retire_rule: active -> retired with retired_at and retired_by'
);
SELECT results_eq(
    $$SELECT event, payload ->> 'actor' FROM aos.events WHERE subject_id = current_setting('test.manual_rule')
      ORDER BY seq$$,
    $$VALUES ('rule_created', NULL), ('rule_retired', 'alice')$$,
    'retire_rule publishes rule_retired after rule_created'
);
SELECT results_eq(
    $$SELECT count(*)::int FROM policies.policy_rules WHERE tenant_id = 't1' AND status = 'active'$$,
    $$VALUES (5)$$,
    'the other rules stay active'
);

-- --------------------------------------------------------------- outbox
SELECT results_eq(
    $$SELECT event FROM aos.events
      WHERE subject_id IN ((SELECT id::text FROM prop WHERE name = 'approve'), current_setting('test.approve_rule'))
      ORDER BY seq$$,
    $$VALUES ('proposal_created'), ('proposal_approved'), ('rule_created')$$,
    'approval publishes proposal_approved, then the rule_created of its rule'
);

-- ---------------------------------------------- rejected calls, one by one
SELECT * FROM aosdb_test.rejections();

SELECT * FROM finish();
ROLLBACK;
