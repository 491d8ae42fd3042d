-- One pending proposal per storm (0010): policies.proposal_incidents links
-- every high or critical incident to exactly one proposal, the pending
-- proposal of its tenant and proposed rule, which the PolicyProposalEngine
-- opens for the first such incident and counts (incident_count, last_seen_at)
-- for every later one. A storm of N failures is one proposal with N links and
-- one proposal_created event; after the proposal is approved the failure is
-- prevented, after it is rejected the next one opens a new proposal. The
-- partial unique index policy_proposals_one_pending_per_rule holds it.
BEGIN;

SELECT plan(47);

-- --------------------------------------------------------------- the table
SELECT columns_are('policies', 'proposal_incidents',
    ARRAY['tenant_id', 'incident_id', 'proposal_id', 'linked_at', 'is_synthetic', 'synthetic_scenario_id'],
    'policies.proposal_incidents has exactly its six columns');
SELECT col_is_pk('policies', 'proposal_incidents', ARRAY['tenant_id', 'incident_id'],
    'one row per incident: primary key (tenant_id, incident_id)');
SELECT fk_ok('policies', 'proposal_incidents', ARRAY['tenant_id', 'proposal_id'],
             'policies', 'policy_proposals', ARRAY['tenant_id', 'id'],
    'proposal_incidents_proposal_fk: (tenant_id, proposal_id) references policies.policy_proposals (tenant_id, id)');
SELECT fk_ok('policies', 'proposal_incidents', ARRAY['tenant_id', 'incident_id'],
             'incidents', 'incidents', ARRAY['tenant_id', 'id'],
    'proposal_incidents_incident_fk: (tenant_id, incident_id) references incidents.incidents (tenant_id, id)');
SELECT set_eq(
    $$SELECT conname::text, pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint
      WHERE conrelid = 'policies.proposal_incidents'::regclass
        AND contype <> 'n'  -- from 18 on, NOT NULL is a pg_constraint row too$$,
    $$VALUES ('proposal_incidents_pkey', 'PRIMARY KEY (tenant_id, incident_id)'),
             ('proposal_incidents_proposal_fk',
              'FOREIGN KEY (tenant_id, proposal_id) REFERENCES policies.policy_proposals(tenant_id, id)'),
             ('proposal_incidents_incident_fk',
              'FOREIGN KEY (tenant_id, incident_id) REFERENCES incidents.incidents(tenant_id, id)'),
             ('proposal_incidents_scenario_implies_synthetic',
              'CHECK (((synthetic_scenario_id IS NULL) OR is_synthetic))')$$,
    'its constraints, by name: the key, both links, and a scenario id only on synthetic links'
);
SELECT has_index('policies', 'proposal_incidents', 'proposal_incidents_proposal_idx',
    ARRAY['tenant_id', 'proposal_id', 'linked_at', 'incident_id'],
    'proposal_incidents_proposal_idx serves the links of one proposal, in the order they were made (ties by incident)');
SELECT ok((SELECT relrowsecurity FROM pg_catalog.pg_class WHERE oid = 'policies.proposal_incidents'::regclass),
    'row-level security is enabled on policies.proposal_incidents');
SELECT set_eq(
    $$SELECT policyname::text, roles::text[], cmd, qual, with_check FROM pg_catalog.pg_policies
      WHERE schemaname = 'policies' AND tablename = 'proposal_incidents'$$,
    $$VALUES ('proposal_incidents_tenant_isolation', '{public}'::text[], 'ALL',
              '(tenant_id = ( SELECT aos.current_tenant() AS current_tenant))',
              '(tenant_id = ( SELECT aos.current_tenant() AS current_tenant))'),
             ('proposal_incidents_trusted_all', '{aos_proposal_engine}', 'ALL', 'true', 'true')$$,
    'its policies: tenant isolation for everyone, every tenant for the PolicyProposalEngine'
);
SELECT table_privs_are('policies', 'proposal_incidents', 'aos_proposal_engine', ARRAY['SELECT', 'INSERT'],
    'aos_proposal_engine may read and add links, never change or delete one');
SELECT table_privs_are('policies', 'proposal_incidents', 'aos_api', ARRAY['SELECT'],
    'aos_api may read the links (through row-level security)');
SELECT is_empty(
    $$SELECT r.role_name FROM aos.contract_roles AS r
      WHERE r.role_name NOT IN ('aos_owner', 'aos_proposal_engine', 'aos_api')
        AND has_table_privilege(r.role_name, 'policies.proposal_incidents', 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')$$,
    'no other role of the contract holds any privilege on policies.proposal_incidents'
);
SELECT is_empty(
    $$SELECT a.attname FROM pg_catalog.pg_attribute AS a
      WHERE a.attrelid = 'policies.proposal_incidents'::regclass AND a.attnum > 0 AND NOT a.attisdropped
        AND coalesce(btrim(col_description(a.attrelid, a.attnum)), '') = ''
      UNION ALL
      SELECT 'the table' WHERE coalesce(btrim(obj_description('policies.proposal_incidents'::regclass, 'pg_class')), '') = ''$$,
    'policies.proposal_incidents and every one of its columns have a comment'
);

-- ------------------------------------------------------------- one storm
SELECT aos.register_tenant(t) FROM (VALUES ('pa'), ('pb')) AS v (t);

-- The pending proposal of a tenant and code, its count, and what it links.
CREATE FUNCTION pg_temp.pending(p_tenant text, p_code text) RETURNS uuid
LANGUAGE sql AS $fn$
    SELECT p.id FROM policies.policy_proposals AS p
    WHERE p.tenant_id = p_tenant AND p.status = 'pending' AND p.proposed_rule -> 'conditions' -> 'error_codes' ? p_code
$fn$;
CREATE FUNCTION pg_temp.linked_runs(p_tenant text, p_proposal uuid) RETURNS text[]
LANGUAGE sql AS $fn$
    SELECT ARRAY(
        SELECT coalesce(i.source_run_id, i.title) FROM policies.proposal_incidents AS l
        JOIN incidents.incidents AS i ON i.tenant_id = l.tenant_id AND i.id = l.incident_id
        WHERE l.tenant_id = p_tenant AND l.proposal_id = p_proposal ORDER BY 1)
$fn$;
CREATE FUNCTION pg_temp.proposal_events(p_tenant text) RETURNS int
LANGUAGE sql AS $fn$
    SELECT count(*)::int FROM aos.events WHERE tenant_id = p_tenant AND event = 'proposal_created'
$fn$;

-- One multi-row INSERT: two tenants, two high or critical codes each, and a
-- medium failure (BUDGET_EXCEEDED) that gets an incident but no proposal.
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code) VALUES
    ('pa', 'r1', 'agent-a', 'failed', 'EXECUTION_TIMEOUT'),
    ('pa', 'r2', 'agent-a', 'failed', 'EXECUTION_TIMEOUT'),
    ('pa', 'r3', 'agent-a', 'failed', 'AGENT_CRASH'),
    ('pb', 'r1', 'agent-b', 'failed', 'EXECUTION_TIMEOUT'),
    ('pa', 'r4', 'agent-a', 'failed', 'BUDGET_EXCEEDED'),
    ('pa', 'r5', 'agent-a', 'failed', 'EXECUTION_TIMEOUT'),
    ('pb', 'r2', 'agent-b', 'failed', 'AGENT_CRASH'),
    ('pb', 'r3', 'agent-b', 'failed', 'AGENT_CRASH');
RESET ROLE;

SELECT set_eq(
    $$SELECT p.tenant_id, p.proposed_rule, p.incident_count, p.triggering_run_id, p.last_seen_at = now()
      FROM policies.policy_proposals AS p$$,
    $$SELECT t, jsonb_build_object('rule_type', 'error_code', 'conditions', jsonb_build_object('error_codes',
                  jsonb_build_array(c)), 'enforcement', e), n, r, TRUE
      FROM (VALUES ('pa', 'EXECUTION_TIMEOUT', 'warn', 3, 'r1'), ('pa', 'AGENT_CRASH', 'block', 1, 'r3'),
                   ('pb', 'EXECUTION_TIMEOUT', 'warn', 1, 'r1'), ('pb', 'AGENT_CRASH', 'block', 2, 'r2'))
          AS v (t, c, e, n, r)$$,
    'one multi-row INSERT: one pending proposal per tenant and rule, triggered by the group''s first run, counting '
    || 'its incidents, last seen when they were detected'
);
SELECT is(pg_temp.linked_runs('pa', pg_temp.pending('pa', 'EXECUTION_TIMEOUT')), ARRAY['r1', 'r2', 'r5'],
    'the EXECUTION_TIMEOUT proposal of pa links the incidents of r1, r2 and r5');
SELECT is(pg_temp.linked_runs('pb', pg_temp.pending('pb', 'AGENT_CRASH')), ARRAY['r2', 'r3'],
    'the AGENT_CRASH proposal of pb links the incidents of r2 and r3');
SELECT results_eq(
    $$SELECT count(*)::int FROM policies.proposal_incidents$$,
    $$SELECT count(*)::int FROM incidents.incidents WHERE severity IN ('high', 'critical')$$,
    'one link per high or critical incident'
);
SELECT is_empty(
    $$SELECT FROM policies.proposal_incidents AS l
      JOIN incidents.incidents AS i ON i.tenant_id = l.tenant_id AND i.id = l.incident_id
      WHERE i.severity NOT IN ('high', 'critical')$$,
    'a medium incident (r4, BUDGET_EXCEEDED) gets no link'
);
SELECT is(
    (SELECT severity FROM incidents.incidents WHERE tenant_id = 'pa' AND source_run_id = 'r4'), 'medium',
    'and it has its incident'
);
SELECT is_empty(
    $$SELECT p.id FROM policies.policy_proposals AS p
      WHERE NOT EXISTS (SELECT FROM policies.proposal_incidents AS l
                        WHERE l.tenant_id = p.tenant_id AND l.proposal_id = p.id
                          AND l.incident_id = p.triggering_incident_id)$$,
    'each proposal''s triggering incident is one of its links'
);
SELECT is(pg_temp.proposal_events('pa') || '+' || pg_temp.proposal_events('pb'), '2+2',
    'one proposal_created event per proposal opened, not per incident');

-- ------------------------------------------------------ the storm goes on
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code) VALUES
    ('pa', 'r6', 'agent-a', 'failed', 'EXECUTION_TIMEOUT'),
    ('pa', 'r7', 'agent-a', 'failed', 'EXECUTION_TIMEOUT');
RESET ROLE;
SELECT results_eq(
    $$SELECT count(*)::int, min(incident_count), min(triggering_run_id) FROM policies.policy_proposals
      WHERE tenant_id = 'pa' AND proposed_rule -> 'conditions' -> 'error_codes' ? 'EXECUTION_TIMEOUT'$$,
    $$VALUES (1, 5, 'r1')$$,
    'a second statement joins the pending proposal: still one, incident_count 5, still triggered by r1'
);
SELECT is(pg_temp.linked_runs('pa', pg_temp.pending('pa', 'EXECUTION_TIMEOUT')), ARRAY['r1', 'r2', 'r5', 'r6', 'r7'],
    'and its incidents are linked to it');
SELECT is(pg_temp.proposal_events('pa'), 2, 'joining a proposal writes no proposal_created event');

-- An incident detected later raises last_seen_at; one dated earlier leaves it.
INSERT INTO incidents.incidents (tenant_id, title, severity, category, error_code, cause_type, created_at) VALUES
    ('pa', 'timeouts seen by the platform', 'high', 'execution_failure', 'EXECUTION_TIMEOUT', 'system',
     now() + interval '1 minute');
INSERT INTO incidents.incidents (tenant_id, title, severity, category, error_code, cause_type, created_at) VALUES
    ('pa', 'timeouts reported late', 'high', 'execution_failure', 'EXECUTION_TIMEOUT', 'human',
     now() - interval '1 hour');
SELECT results_eq(
    $$SELECT incident_count, last_seen_at - now() FROM policies.policy_proposals
      WHERE id = pg_temp.pending('pa', 'EXECUTION_TIMEOUT')$$,
    $$VALUES (7, interval '1 minute')$$,
    'incidents not caused by a run join too; last_seen_at is the latest detection, not the latest link'
);

-- A code a rule cannot list is proposed as UNKNOWN.
INSERT INTO incidents.incidents (tenant_id, title, severity, category, error_code, cause_type) VALUES
    ('pb', 'disk full', 'high', 'execution_failure', 'disk-full!', 'system');
SELECT results_eq(
    $$SELECT p.proposed_rule, p.proposal_type, p.incident_count FROM policies.policy_proposals AS p
      JOIN incidents.incidents AS i ON i.tenant_id = p.tenant_id AND i.id = p.triggering_incident_id
      WHERE i.tenant_id = 'pb' AND i.title = 'disk full'$$,
    $$VALUES ('{"rule_type": "error_code", "conditions": {"error_codes": ["UNKNOWN"]}, "enforcement": "warn"}'::jsonb,
              'failure_pattern_policy', 1)$$,
    'a high incident whose code is not a rule''s code (disk-full!) proposes a rule for UNKNOWN'
);

-- ------------------------------------------------------------- approved
SELECT set_config('test.approved', pg_temp.pending('pa', 'EXECUTION_TIMEOUT')::text, TRUE);
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 'pa', TRUE);
SELECT set_config('test.rule', policies.approve_proposal(current_setting('test.approved')::uuid, 'alice')::text, TRUE);
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;
SELECT is(
    (SELECT count(*)::int FROM policies.policy_rules WHERE tenant_id = 'pa'), 1,
    'approving the storm''s proposal creates its one rule'
);
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code) VALUES
    ('pa', 'r8', 'agent-a', 'failed', 'EXECUTION_TIMEOUT');
RESET ROLE;
SELECT results_eq(
    $$SELECT outcome, policy_rule_id::text FROM policies.prevention_records WHERE tenant_id = 'pa' AND run_id = 'r8'$$,
    $$VALUES ('prevented', current_setting('test.rule'))$$,
    'after approval, the next failure of that code is prevented by the rule'
);
SELECT is_empty($$SELECT FROM incidents.incidents WHERE tenant_id = 'pa' AND source_run_id = 'r8'$$,
    'and gets no incident');
SELECT results_eq(
    $$SELECT status, incident_count FROM policies.policy_proposals
      WHERE tenant_id = 'pa' AND proposed_rule -> 'conditions' -> 'error_codes' ? 'EXECUTION_TIMEOUT'$$,
    $$VALUES ('approved', 7)$$,
    'no new proposal; the approved one keeps its count'
);

-- ------------------------------------------------------------- rejected
SELECT set_config('test.rejected', pg_temp.pending('pa', 'AGENT_CRASH')::text, TRUE);
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 'pa', TRUE);
SELECT policies.reject_proposal(current_setting('test.rejected')::uuid, 'alice', 'one-off');
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;
SELECT is(pg_temp.pending('pa', 'AGENT_CRASH'), NULL, 'after the rejection pa has no pending AGENT_CRASH proposal');
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code) VALUES
    ('pa', 'r9', 'agent-a', 'failed', 'AGENT_CRASH');
RESET ROLE;
SELECT results_eq(
    $$SELECT p.status, p.incident_count, p.triggering_run_id, p.id::text <> current_setting('test.rejected')
      FROM policies.policy_proposals AS p WHERE p.id = pg_temp.pending('pa', 'AGENT_CRASH')$$,
    $$VALUES ('pending', 1, 'r9', TRUE)$$,
    'after rejection, the next failure of that code opens a new pending proposal, triggered by it'
);
SELECT is(pg_temp.linked_runs('pa', pg_temp.pending('pa', 'AGENT_CRASH')), ARRAY['r9'],
    'the new proposal links only the new incident');
SELECT results_eq(
    $$SELECT status, incident_count FROM policies.policy_proposals WHERE id::text = current_setting('test.rejected')$$,
    $$VALUES ('rejected', 1)$$,
    'the rejected proposal keeps its one incident'
);
SELECT is(pg_temp.proposal_events('pa'), 3, 'the new proposal published its proposal_created event');
SELECT results_eq(
    $$SELECT proposed_rule -> 'conditions' -> 'error_codes' ->> 0, status, incident_count FROM policies.policy_proposals
      WHERE tenant_id = 'pb' AND proposed_rule -> 'conditions' -> 'error_codes' ?| ARRAY['EXECUTION_TIMEOUT', 'AGENT_CRASH']
      ORDER BY 1$$,
    $$VALUES ('AGENT_CRASH', 'pending', 2), ('EXECUTION_TIMEOUT', 'pending', 1)$$,
    'the other tenant''s proposals of the same rules are untouched by pa''s reviews'
);

-- ---------------------------------------------------------- the unique key
CREATE TEMP TABLE second_proposals (status text, sql text) ON COMMIT DROP;
INSERT INTO second_proposals
SELECT s.status, format(
    $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule, status,
          reviewed_at, reviewed_by)
      VALUES ('pb', 'again', 'crash_recovery_policy',
              '{"rule_type": "error_code", "conditions": {"error_codes": ["AGENT_CRASH"]}, "enforcement": "block"}',
              %L, %s, %s)$$,
    s.status, CASE s.status WHEN 'pending' THEN 'NULL' ELSE 'now()' END,
    CASE s.status WHEN 'pending' THEN 'NULL' ELSE quote_literal('ops') END)
FROM (VALUES ('pending'), ('approved'), ('rejected')) AS s (status);

SELECT throws_ok((SELECT sql FROM second_proposals WHERE status = 'pending'), '23505', NULL,
    'a second pending proposal of the same tenant and rule is refused (23505)');
SELECT is(aosdb_test.outcome((SELECT sql FROM second_proposals WHERE status = 'pending')),
    '23505 policy_proposals_one_pending_per_rule', 'by policy_proposals_one_pending_per_rule');
SELECT is(aosdb_test.outcome((SELECT sql FROM second_proposals WHERE status = 'approved')), 'no error',
    'an approved proposal of a rule that has a pending one is accepted');
SELECT is(aosdb_test.outcome((SELECT sql FROM second_proposals WHERE status = 'rejected')), 'no error',
    'so is a rejected one');
SELECT lives_ok(
    $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule)
      VALUES ('pb', 'warn, not block', 'crash_recovery_policy',
              '{"rule_type": "error_code", "conditions": {"error_codes": ["AGENT_CRASH"]}, "enforcement": "warn"}')$$,
    'a pending proposal of another rule (same code, other enforcement) is accepted'
);
SELECT lives_ok(
    $$INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule)
      VALUES ('pa', 'timeouts again', 'timeout_policy',
              '{"rule_type": "error_code", "conditions": {"error_codes": ["EXECUTION_TIMEOUT"]}, "enforcement": "warn"}')$$,
    'once the pending proposal of a rule is approved, a new pending one of that rule is accepted'
);

-- ------------------------------------------------------------------ links
SELECT throws_ok(
    $$INSERT INTO policies.proposal_incidents (tenant_id, incident_id, proposal_id)
      SELECT l.tenant_id, l.incident_id, current_setting('test.rejected')::uuid
      FROM policies.proposal_incidents AS l JOIN incidents.incidents AS i
          ON i.tenant_id = l.tenant_id AND i.id = l.incident_id
      WHERE i.tenant_id = 'pa' AND i.source_run_id = 'r9'$$,
    '23505', NULL,
    'an incident linked to a proposal cannot be linked to a second one (23505)'
);
SELECT results_eq(
    $$SELECT l.is_synthetic, l.synthetic_scenario_id, l.linked_at = now() FROM policies.proposal_incidents AS l
      JOIN incidents.incidents AS i ON i.tenant_id = l.tenant_id AND i.id = l.incident_id
      WHERE i.tenant_id = 'pa' AND i.source_run_id = 'r1'$$,
    $$VALUES (FALSE, NULL::text, TRUE)$$,
    'a link records when it was made, and no synthetic marks for a real incident'
);
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, is_synthetic, synthetic_scenario_id) VALUES
    ('pb', 'r-synthetic', 'agent-s', 'failed', 'AGENT_CRASH', TRUE, 'SDSR-T-048');
RESET ROLE;
SELECT results_eq(
    $$SELECT l.is_synthetic, l.synthetic_scenario_id, p.is_synthetic, p.incident_count
      FROM policies.proposal_incidents AS l
      JOIN incidents.incidents AS i ON i.tenant_id = l.tenant_id AND i.id = l.incident_id
      JOIN policies.policy_proposals AS p ON p.tenant_id = l.tenant_id AND p.id = l.proposal_id
      WHERE i.tenant_id = 'pb' AND i.source_run_id = 'r-synthetic'$$,
    $$VALUES (TRUE, 'SDSR-T-048', FALSE, 3)$$,
    'a synthetic incident joining a real pending proposal: the link carries its marks, the proposal keeps its own'
);

-- The readers see their tenant's links only.
SET LOCAL ROLE aos_api;
SELECT set_config('aos.tenant_id', 'pb', TRUE);
SELECT results_eq(
    'SELECT DISTINCT tenant_id FROM policies.proposal_incidents',
    $$VALUES ('pb'::text)$$,
    'aos_api with tenant pb sees only the links of pb'
);
SELECT set_config('aos.tenant_id', '', TRUE);
SELECT throws_ok('SELECT * FROM policies.proposal_incidents', '28000', NULL,
    'aos_api with no tenant set cannot read the links (28000)');
RESET ROLE;
SET LOCAL ROLE aos_proposal_engine;
SELECT results_eq(
    'SELECT DISTINCT tenant_id FROM policies.proposal_incidents ORDER BY 1',
    $$VALUES ('pa'::text), ('pb')$$,
    'aos_proposal_engine sees the links of every tenant'
);
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
