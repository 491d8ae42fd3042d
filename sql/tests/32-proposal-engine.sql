-- PolicyProposalEngine (README.md, The propagation chain): an incident of severity high or critical
-- is linked to exactly one pending proposal, whose type comes from the
-- failure class and whose proposed rule would catch the same error code next
-- time (warn for high, block for critical). One pending proposal per tenant
-- and rule: the first incident of a rule opens it (and is its triggering
-- incident), later ones join it and are counted. Medium and low incidents get
-- none. The synthetic marks travel with it.
BEGIN;

SELECT aos.register_tenant('t1');

-- One failed run per failure class (incidents.failure_classes), by explicit code or by message.
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
-- Re-delivery must not add a proposal or a link either.
UPDATE activity.runs SET status = 'failed' WHERE tenant_id = 't1' AND run_id IN ('r-timeout', 'r-crash');
SELECT activity.finish_run('t1', 'r-msg-timeout', 'failed');
RESET ROLE;
-- A synthetic critical failure, in a tenant of its own: it opens its own proposal.
SELECT aos.register_tenant('t2');
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, is_synthetic, synthetic_scenario_id)
VALUES ('t2', 'r-synthetic', 'agent-s', 'failed', 'AGENT_CRASH', TRUE, 'SDSR-T-032');
RESET ROLE;

-- The proposals of t1 as they must be: one per rule, triggered by the first
-- incident of the rule (r-timeout and r-crash came in the first statement,
-- r-msg-timeout and r-msg-crash joined them later), counting every incident.
CREATE TEMP TABLE want_proposals (code text, enforcement text, incidents int, triggering_run_id text)
    ON COMMIT DROP;
INSERT INTO want_proposals VALUES
    ('EXECUTION_TIMEOUT', 'warn', 2, 'r-timeout'),
    ('AGENT_CRASH', 'block', 2, 'r-crash'),
    ('STEP_FAILURE', 'warn', 1, 'r-step'),
    ('SKILL_ERROR', 'warn', 1, 'r-skill');

SELECT plan(
    (SELECT count(*)::int FROM cases WHERE want_code IS NOT NULL) * 2
    + (SELECT count(*)::int FROM cases WHERE want_code IS NULL)
    + 1     -- name and rationale
    + 5     -- one pending proposal per rule, counts, links, last_seen_at, events
    + 2     -- synthetic marks
);

SELECT results_eq(
    format($$SELECT count(*)::int, min(p.status), min(p.proposal_type), min(i.severity),
                    bool_and(p.reviewed_at IS NULL AND p.reviewed_by IS NULL)
             FROM incidents.incidents AS i
             JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id
             JOIN policies.policy_proposals AS p ON p.tenant_id = l.tenant_id AND p.id = l.proposal_id
             WHERE i.tenant_id = 't1' AND i.source_run_id = %L$$, c.run_id),
    format($$VALUES (1, 'pending', %L, %L, TRUE)$$, c.want_type,
           CASE c.want_enforcement WHEN 'block' THEN 'critical' ELSE 'high' END),
    format('a %s incident (%s) is linked to exactly one pending, unreviewed %s proposal',
           CASE c.want_enforcement WHEN 'block' THEN 'critical' ELSE 'high' END, c.run_id, c.want_type)
)
FROM cases AS c WHERE c.want_code IS NOT NULL ORDER BY c.run_id;

SELECT is(
    (SELECT p.proposed_rule FROM incidents.incidents AS i
     JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id
     JOIN policies.policy_proposals AS p ON p.tenant_id = l.tenant_id AND p.id = l.proposal_id
     WHERE i.tenant_id = 't1' AND i.source_run_id = c.run_id),
    jsonb_build_object('rule_type', 'error_code', 'conditions', jsonb_build_object('error_codes',
                       jsonb_build_array(c.want_code)), 'enforcement', c.want_enforcement),
    format('the proposal of %s proposes exactly {"rule_type": "error_code", "conditions": {"error_codes": ["%s"]}, '
           '"enforcement": "%s"}', c.run_id, c.want_code, c.want_enforcement)
)
FROM cases AS c WHERE c.want_code IS NOT NULL ORDER BY c.run_id;

SELECT is_empty(
    format($$SELECT FROM incidents.incidents AS i
             WHERE i.tenant_id = 't1' AND i.source_run_id = %L
               AND (EXISTS (SELECT FROM policies.proposal_incidents AS l
                            WHERE l.tenant_id = i.tenant_id AND l.incident_id = i.id)
                    OR EXISTS (SELECT FROM policies.policy_proposals AS p
                               WHERE p.tenant_id = i.tenant_id AND p.triggering_incident_id = i.id))$$, c.run_id),
    format('a %s incident (%s, %s) gets no proposal and no link',
           (SELECT i.severity FROM incidents.incidents AS i WHERE i.tenant_id = 't1' AND i.source_run_id = c.run_id),
           c.run_id, coalesce(c.error_code, 'code from the message')))
FROM cases AS c WHERE c.want_code IS NULL ORDER BY c.run_id;

SELECT results_eq(
    $$SELECT proposal_name <> '' AND rationale LIKE '%EXECUTION_TIMEOUT%' FROM policies.policy_proposals
      WHERE tenant_id = 't1' AND triggering_run_id = 'r-timeout'$$,
    $$VALUES (TRUE)$$,
    'the proposal has a name and a rationale naming the error code'
);

SELECT set_eq(
    $$SELECT p.proposed_rule -> 'conditions' -> 'error_codes' ->> 0 AS code, p.proposed_rule ->> 'enforcement' AS enforcement,
             p.incident_count, p.triggering_run_id
      FROM policies.policy_proposals AS p
      JOIN incidents.incidents AS i ON i.tenant_id = p.tenant_id AND i.id = p.triggering_incident_id
      WHERE p.tenant_id = 't1' AND p.status = 'pending' AND i.source_run_id = p.triggering_run_id$$,
    'SELECT code, enforcement, incidents, triggering_run_id FROM want_proposals',
    'one pending proposal per rule, triggered by the first incident of its rule and its run, counting all of them'
);
SELECT is_empty(
    $$SELECT p.id FROM policies.policy_proposals AS p
      WHERE p.tenant_id = 't1'
        AND p.incident_count <> (SELECT count(*) FROM policies.proposal_incidents AS l
                                 WHERE l.tenant_id = p.tenant_id AND l.proposal_id = p.id)$$,
    'each proposal''s incident_count is the number of incidents linked to it'
);
SELECT results_eq(
    $$SELECT count(*)::int FROM policies.proposal_incidents WHERE tenant_id = 't1'$$,
    $$SELECT count(*)::int FROM incidents.incidents WHERE tenant_id = 't1' AND severity IN ('high', 'critical')$$,
    'as many links as high and critical incidents, re-delivered failures included'
);
SELECT is_empty(
    $$SELECT p.id FROM policies.policy_proposals AS p
      WHERE p.tenant_id = 't1'
        AND p.last_seen_at IS DISTINCT FROM (
            SELECT max(i.created_at) FROM policies.proposal_incidents AS l
            JOIN incidents.incidents AS i ON i.tenant_id = l.tenant_id AND i.id = l.incident_id
            WHERE l.tenant_id = p.tenant_id AND l.proposal_id = p.id)$$,
    'each proposal''s last_seen_at is when its latest linked incident was detected'
);
SELECT results_eq(
    $$SELECT count(*)::int FROM aos.events WHERE tenant_id = 't1' AND event = 'proposal_created'$$,
    $$SELECT count(*)::int FROM want_proposals$$,
    'one proposal_created event per proposal, none for an incident that joined one'
);

SELECT results_eq(
    $$SELECT p.is_synthetic, p.synthetic_scenario_id, p.proposed_rule ->> 'enforcement', p.incident_count
      FROM policies.policy_proposals AS p WHERE p.tenant_id = 't2' AND p.triggering_run_id = 'r-synthetic'$$,
    $$VALUES (TRUE, 'SDSR-T-032', 'block', 1)$$,
    'the proposal of a synthetic critical incident carries its synthetic marks'
);
SELECT results_eq(
    $$SELECT i.is_synthetic, i.synthetic_scenario_id, l.is_synthetic, l.synthetic_scenario_id
      FROM incidents.incidents AS i
      JOIN policies.policy_proposals AS p ON p.tenant_id = i.tenant_id AND p.triggering_incident_id = i.id
      JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id
      WHERE i.tenant_id = 't2' AND i.source_run_id = 'r-synthetic'$$,
    $$VALUES (TRUE, 'SDSR-T-032', TRUE, 'SDSR-T-032')$$,
    'and its triggering incident and that incident''s link carry the same marks'
);

SELECT * FROM finish();
ROLLBACK;
