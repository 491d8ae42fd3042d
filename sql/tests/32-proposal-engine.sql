-- PolicyProposalEngine (SPEC 5.3): an incident of severity high or critical
-- gets exactly one pending proposal that points at the incident and its run,
-- whose type comes from the failure class and whose proposed rule would catch
-- the same error code next time (warn for high, block for critical). Medium
-- and low incidents get none. The synthetic marks travel with it.
BEGIN;

SELECT aos.register_tenant('t1');

-- One failed run per failure class (SPEC 3.3), by explicit code or by message.
CREATE TEMP TABLE cases (
    run_id text, error_code text, error_message text, want_code text, want_type text, want_enforcement text
) ON COMMIT DROP;
GRANT SELECT ON cases TO PUBLIC;
INSERT INTO cases VALUES
    ('r-timeout', 'EXECUTION_TIMEOUT', NULL, 'EXECUTION_TIMEOUT', 'timeout_policy', 'warn'),
    ('r-crash', 'AGENT_CRASH', NULL, 'AGENT_CRASH', 'crash_recovery_policy', 'block'),
    ('r-step', 'STEP_FAILURE', NULL, 'STEP_FAILURE', 'retry_policy', 'warn'),
    ('r-skill', 'SKILL_ERROR', NULL, 'SKILL_ERROR', 'failure_pattern_policy', 'warn'),
    ('r-msg-timeout', NULL, 'EXECUTION_TIMEOUT: step 3 exceeded 300s', 'EXECUTION_TIMEOUT', 'timeout_policy', 'warn'),
    ('r-msg-crash', NULL, 'agent_crash (oom)', 'AGENT_CRASH', 'crash_recovery_policy', 'block'),
    ('r-budget', 'BUDGET_EXCEEDED', NULL, NULL, NULL, NULL),
    ('r-rate', 'RATE_LIMIT_EXCEEDED', NULL, NULL, NULL, NULL),
    ('r-resource', 'RESOURCE_EXHAUSTION', NULL, NULL, NULL, NULL),
    ('r-retry', 'RETRY_EXHAUSTED', NULL, NULL, NULL, NULL),
    ('r-unknown', NULL, 'no idea', NULL, NULL, NULL),
    ('r-unknown-code', 'QUOTA_MELTDOWN', NULL, NULL, NULL, NULL),
    ('r-cancel', 'CANCELLED', NULL, NULL, NULL, NULL),
    ('r-stop', 'MANUAL_STOP', NULL, NULL, NULL, NULL);

SET LOCAL ROLE aos_worker;
-- Half in one multi-row INSERT, half through the worker API.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, error_message)
SELECT 't1', run_id, 'agent-a', 'failed', error_code, error_message FROM cases WHERE run_id NOT LIKE 'r-msg-%';
SELECT activity.start_run('t1', run_id, 'agent-a', NULL) FROM cases WHERE run_id LIKE 'r-msg-%';
SELECT activity.finish_run('t1', run_id, 'failed', jsonb_build_object('error_message', error_message))
FROM cases WHERE run_id LIKE 'r-msg-%';
-- Re-delivery must not add a proposal either.
UPDATE activity.runs SET status = 'failed' WHERE tenant_id = 't1' AND run_id IN ('r-timeout', 'r-crash');
SELECT activity.finish_run('t1', 'r-msg-timeout', 'failed');
-- A synthetic critical failure.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, is_synthetic, synthetic_scenario_id)
VALUES ('t1', 'r-synthetic', 'agent-s', 'failed', 'AGENT_CRASH', TRUE, 'SDSR-T-032');
RESET ROLE;

SELECT plan(
    (SELECT count(*)::int FROM cases WHERE want_code IS NOT NULL) * 2
    + (SELECT count(*)::int FROM cases WHERE want_code IS NULL)
    + 1     -- name and rationale
    + 2     -- one per incident, as many as high and critical incidents
    + 2     -- synthetic marks
);

SELECT results_eq(
    format($$SELECT count(*)::int, min(p.status), bool_and(p.triggering_incident_id = i.id),
                    min(p.triggering_run_id), min(p.proposal_type), min(i.severity),
                    bool_and(p.reviewed_at IS NULL AND p.reviewed_by IS NULL)
             FROM incidents.incidents AS i
             JOIN policies.policy_proposals AS p ON p.tenant_id = i.tenant_id AND p.triggering_incident_id = i.id
             WHERE i.tenant_id = 't1' AND i.source_run_id = %L$$, c.run_id),
    format($$VALUES (1, 'pending', TRUE, %L, %L, %L, TRUE)$$, c.run_id, c.want_type,
           CASE c.want_enforcement WHEN 'block' THEN 'critical' ELSE 'high' END),
    format('a %s incident (%s) gets exactly one pending, unreviewed %s proposal pointing at it and its run',
           CASE c.want_enforcement WHEN 'block' THEN 'critical' ELSE 'high' END, c.run_id, c.want_type)
)
FROM cases AS c WHERE c.want_code IS NOT NULL ORDER BY c.run_id;

SELECT is(
    (SELECT p.proposed_rule FROM policies.policy_proposals AS p
     WHERE p.tenant_id = 't1' AND p.triggering_run_id = c.run_id),
    jsonb_build_object('rule_type', 'error_code', 'conditions', jsonb_build_object('error_codes',
                       jsonb_build_array(c.want_code)), 'enforcement', c.want_enforcement),
    format('the proposal of %s proposes exactly {"rule_type": "error_code", "conditions": {"error_codes": ["%s"]}, '
           '"enforcement": "%s"}', c.run_id, c.want_code, c.want_enforcement)
)
FROM cases AS c WHERE c.want_code IS NOT NULL ORDER BY c.run_id;

SELECT is_empty(
    format($$SELECT FROM policies.policy_proposals WHERE tenant_id = 't1' AND triggering_run_id = %L$$, c.run_id),
    format('a %s incident (%s, %s) gets no proposal',
           (SELECT i.severity FROM incidents.incidents AS i WHERE i.tenant_id = 't1' AND i.source_run_id = c.run_id),
           c.run_id, coalesce(c.error_code, 'code from the message')))
FROM cases AS c WHERE c.want_code IS NULL ORDER BY c.run_id;

SELECT results_eq(
    $$SELECT proposal_name <> '' AND rationale LIKE '%EXECUTION_TIMEOUT%' FROM policies.policy_proposals
      WHERE tenant_id = 't1' AND triggering_run_id = 'r-timeout'$$,
    $$VALUES (TRUE)$$,
    'the proposal has a name and a rationale naming the error code'
);

SELECT is_empty(
    $$SELECT triggering_incident_id FROM policies.policy_proposals WHERE tenant_id = 't1'
      GROUP BY triggering_incident_id HAVING count(*) > 1$$,
    'no incident has more than one proposal, re-delivered failures included'
);
SELECT results_eq(
    $$SELECT count(*)::int FROM policies.policy_proposals WHERE tenant_id = 't1'$$,
    $$SELECT count(*)::int FROM incidents.incidents WHERE tenant_id = 't1' AND severity IN ('high', 'critical')$$,
    'as many proposals as high and critical incidents'
);

SELECT results_eq(
    $$SELECT p.is_synthetic, p.synthetic_scenario_id, p.proposed_rule ->> 'enforcement'
      FROM policies.policy_proposals AS p WHERE p.tenant_id = 't1' AND p.triggering_run_id = 'r-synthetic'$$,
    $$VALUES (TRUE, 'SDSR-T-032', 'block')$$,
    'the proposal of a synthetic critical incident carries its synthetic marks'
);
SELECT results_eq(
    $$SELECT i.is_synthetic, i.synthetic_scenario_id FROM incidents.incidents AS i
      JOIN policies.policy_proposals AS p ON p.tenant_id = i.tenant_id AND p.triggering_incident_id = i.id
      WHERE i.tenant_id = 't1' AND i.source_run_id = 'r-synthetic'$$,
    $$VALUES (TRUE, 'SDSR-T-032')$$,
    'and its triggering incident carries the same marks'
);

SELECT * FROM finish();
ROLLBACK;
