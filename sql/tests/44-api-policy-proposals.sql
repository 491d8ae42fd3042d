-- api.policy_proposals and api.policy_proposal (/rpc/policy_proposals
-- and /rpc/policy_proposal): the list envelope, items that are the
-- proposals with the rule each approval created, newest first with ties broken
-- by id; every filter (status, proposal_type, is_synthetic, created_after/
-- before); bad filters and pages 22023; pagination edges; the review queue is
-- current (base table, no refresh); the detail is the proposal plus rule,
-- triggering_incident, triggering_run and the incidents linked to it (newest
-- first, at most 50, incidents_total counting them all); a storm is one
-- pending proposal; tenant isolation, PT404, 28000.
BEGIN;

SELECT aos.register_tenant(t) FROM (VALUES ('t1'), ('t2')) AS v (t);

-- High and critical failures get a pending proposal each; the medium one none.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, created_at, is_synthetic,
                           synthetic_scenario_id)
VALUES
    ('t1', 'r-timeout', 'agent-a', 'failed', 'EXECUTION_TIMEOUT', '2024-08-01 01:00:00+00', FALSE, NULL),
    ('t1', 'r-crash', 'agent-a', 'failed', 'AGENT_CRASH', '2024-08-01 02:00:00+00', FALSE, NULL),
    ('t1', 'r-step', 'agent-b', 'failed', 'STEP_FAILURE', '2024-08-01 03:00:00+00', FALSE, NULL),
    ('t1', 'r-skill', 'agent-b', 'failed', 'SKILL_ERROR', '2024-08-01 04:00:00+00', TRUE, 'sc-44'),
    ('t1', 'r-budget', 'agent-b', 'failed', 'BUDGET_EXCEEDED', '2024-08-01 05:00:00+00', FALSE, NULL),
    ('t2', 'r-timeout', 'agent-z', 'failed', 'EXECUTION_TIMEOUT', '2024-08-01 01:00:00+00', FALSE, NULL);

-- Proposals by name. The engine's were all made now(); give them known
-- times. Two more are inserted with their own id and time, without a trigger
-- (the engine never proposes cost caps or rate limits: those classes are medium).
CREATE TEMP TABLE names (name text PRIMARY KEY, tenant_id text, id uuid) ON COMMIT DROP;
GRANT SELECT ON names TO PUBLIC;
INSERT INTO names SELECT CASE tenant_id WHEN 't1' THEN '' ELSE 't2 ' END || substr(triggering_run_id, 3), tenant_id, id
FROM policies.policy_proposals;
UPDATE policies.policy_proposals AS p SET created_at = v.t
FROM names AS n, (VALUES ('timeout', '2024-08-05 00:00:00+00'::timestamptz), ('crash', '2024-08-04 00:00:00+00'),
                         ('step', '2024-08-03 00:00:00+00'), ('skill', '2024-08-02 00:00:00+00'),
                         ('t2 timeout', '2024-08-09 00:00:00+00')) AS v (name, t)
WHERE n.name = v.name AND p.tenant_id = n.tenant_id AND p.id = n.id;

INSERT INTO names VALUES
    ('cost', 't1', '00000000-0000-0000-0000-00000000000c'),
    ('rate', 't1', '00000000-0000-0000-0000-00000000000d'),
    ('t2 cost', 't2', '00000000-0000-0000-0000-0000000000f2');
INSERT INTO policies.policy_proposals (tenant_id, id, proposal_name, proposal_type, rationale, proposed_rule, created_at)
SELECT n.tenant_id, n.id, v.name, v.type, 'proposed by hand', v.proposed_rule::jsonb, v.t
FROM (VALUES
    ('cost', 'cost_cap_policy', '{"rule_type": "max_value", "conditions": {"metric": "estimated_cost_usd", "max": 1},
                                  "enforcement": "block"}', '2024-08-01 00:00:00+00'::timestamptz),
    ('rate', 'rate_limit_policy', '{"rule_type": "error_code", "conditions": {"error_codes": ["RATE_LIMIT_EXCEEDED"]},
                                    "enforcement": "warn"}', '2024-08-01 00:00:00+00'),
    ('t2 cost', 'cost_cap_policy', '{"rule_type": "max_value", "conditions": {"metric": "input_tokens", "max": 1},
                                     "enforcement": "audit"}', '2024-08-01 00:00:00+00')
) AS v (name, type, proposed_rule, t)
JOIN names AS n ON n.name = v.name;

-- The operator approves the timeout proposal (a rule) and rejects the crash one.
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT set_config('test.rule_id',
    policies.approve_proposal((SELECT id FROM names WHERE name = 'timeout'), 'alice', 'recurring')::text, TRUE);
SELECT policies.reject_proposal((SELECT id FROM names WHERE name = 'crash'), 'alice', 'one-off');
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

CREATE TEMP TABLE got (k text PRIMARY KEY, v jsonb) ON COMMIT DROP;
GRANT ALL ON got TO PUBLIC;

CREATE FUNCTION pg_temp.names(p_page jsonb) RETURNS text[]
LANGUAGE sql STABLE AS $fn$
    SELECT coalesce(array_agg(coalesce(n.name, e.item ->> 'id') ORDER BY e.i), '{}')
    FROM jsonb_array_elements(p_page -> 'items') WITH ORDINALITY AS e (item, i)
    LEFT JOIN names AS n ON n.id = (e.item ->> 'id')::uuid
$fn$;
-- The facade called with its arguments as one JSON object, the way a gateway passes a POST
-- body: jsonb_to_record types each value, and each becomes the named argument of its key.
CREATE FUNCTION pg_temp.proposals(p_args jsonb, p_page_size integer DEFAULT 50, p_page_offset integer DEFAULT 0)
RETURNS jsonb
LANGUAGE sql STABLE AS $fn$
    SELECT api.policy_proposals(
        status => a.status, proposal_type => a.proposal_type, is_synthetic => a.is_synthetic,
        created_after => a.created_after, created_before => a.created_before,
        page_size => p_page_size, page_offset => p_page_offset)
    FROM jsonb_to_record(p_args) AS a (
        status text, proposal_type text, is_synthetic boolean, created_after timestamptz, created_before timestamptz)
$fn$;

CREATE FUNCTION pg_temp.proposal_json(p_name text) RETURNS jsonb
LANGUAGE sql STABLE AS $fn$
    SELECT to_jsonb(p) FROM policies.policy_proposals AS p JOIN names AS n ON n.tenant_id = p.tenant_id AND n.id = p.id
    WHERE n.name = p_name
$fn$;

CREATE TEMP TABLE t1_order (names text[]) ON COMMIT DROP;
GRANT SELECT ON t1_order TO PUBLIC;
INSERT INTO t1_order VALUES ('{timeout,crash,step,skill,rate,cost}');

CREATE TEMP TABLE filter_cases (n serial, filters jsonb, names text[], description text) ON COMMIT DROP;
GRANT SELECT ON filter_cases TO PUBLIC;
INSERT INTO filter_cases (filters, names, description) VALUES
    ('{"status": "pending"}', '{step,skill,rate,cost}', 'status pending'),
    ('{"status": "approved"}', '{timeout}', 'status approved'),
    ('{"status": "rejected"}', '{crash}', 'status rejected'),
    ('{"proposal_type": "timeout_policy"}', '{timeout}', 'proposal_type timeout_policy'),
    ('{"proposal_type": "crash_recovery_policy"}', '{crash}', 'proposal_type crash_recovery_policy'),
    ('{"proposal_type": "retry_policy"}', '{step}', 'proposal_type retry_policy'),
    ('{"proposal_type": "failure_pattern_policy"}', '{skill}', 'proposal_type failure_pattern_policy'),
    ('{"proposal_type": "cost_cap_policy"}', '{cost}', 'proposal_type cost_cap_policy (t1''s only)'),
    ('{"proposal_type": "rate_limit_policy"}', '{rate}', 'proposal_type rate_limit_policy'),
    ('{"is_synthetic": true}', '{skill}', 'is_synthetic true (the mark travelled from the run)'),
    ('{"is_synthetic": false}', '{timeout,crash,step,rate,cost}', 'is_synthetic false'),
    ('{"created_after": "2024-08-03T00:00:00Z"}', '{timeout,crash,step}', 'created_after includes its instant'),
    ('{"created_before": "2024-08-02T00:00:00Z"}', '{rate,cost}', 'created_before excludes its instant'),
    ('{"created_after": "2024-08-02T00:00:00Z", "created_before": "2024-08-04T00:00:00Z"}', '{step,skill}',
     'created_after and created_before: a half-open window'),
    ('{"status": "pending", "is_synthetic": false}', '{step,rate,cost}', 'status and is_synthetic together (AND)'),
    ('{"status": "approved", "proposal_type": "retry_policy"}', '{}', 'filters that match nothing: empty list');

CREATE TEMP TABLE rejected (n serial, tenant text, sql text, errcode text, description text) ON COMMIT DROP;
GRANT SELECT ON rejected TO PUBLIC;
INSERT INTO rejected (tenant, sql, errcode, description) VALUES
    ('t1', $$SELECT api.policy_proposals(severity => 'high')$$, '42883', 'an unknown argument: no such function (42883)'),
    ('t1', $$SELECT api.policy_proposals(tenant_id => 't2')$$, '42883', 'tenant_id is not an argument: 42883'),
    ('t1', $$SELECT api.policy_proposals(status => 'open')$$, '22023', 'status outside its set raises 22023'),
    ('t1', $$SELECT api.policy_proposals(proposal_type => 'speed_policy')$$, '22023',
     'proposal_type outside its set raises 22023'),
    ('t1', $$SELECT api.policy_proposals(is_synthetic => 'perhaps')$$, '22P02',
     'is_synthetic that is no boolean raises 22P02'),
    ('t1', $$SELECT api.policy_proposals(created_after => 'soon')$$, '22007',
     'created_after that is not a timestamp raises 22007'),
    ('t1', $$SELECT api.policy_proposals(page_size => 0)$$, '22023', 'page_size 0 raises 22023'),
    ('t1', $$SELECT api.policy_proposals(page_size => 201)$$, '22023', 'page_size 201 raises 22023'),
    ('t1', $$SELECT api.policy_proposals(page_size => 10, page_offset => -1)$$, '22023',
     'a negative page_offset raises 22023'),
    (NULL, $$SELECT api.policy_proposals()$$, '28000', 'the list with no tenant set raises 28000'),
    ('t1', $$SELECT api.policy_proposal((SELECT id FROM names WHERE name = 't2 timeout'))$$, 'PT404',
     'detail of a proposal of another tenant: not found (PT404)'),
    ('t2', $$SELECT api.policy_proposal((SELECT id FROM names WHERE name = 'timeout'))$$, 'PT404',
     'and the other way round: t2 cannot see t1''s proposal (PT404)'),
    ('t1', $$SELECT api.policy_proposal('00000000-0000-0000-0000-0000000000ff')$$, 'PT404',
     'detail of an id that does not exist: PT404'),
    ('t1', $$SELECT api.policy_proposal(NULL)$$, 'PT404', 'detail of a null id: PT404'),
    (NULL, $$SELECT api.policy_proposal((SELECT id FROM names WHERE name = 'timeout'))$$, '28000',
     'detail with no tenant set raises 28000');

SELECT plan(
    6                                       -- list shape and order
    + 7                                     -- pages
    + 5                                     -- pages concatenate
    + (SELECT count(*)::int FROM filter_cases)
    + 2                                     -- tenants
    + 2                                     -- the queue is current
    + 11                                    -- detail
    + 7                                     -- a storm's linked incidents
    + (SELECT count(*)::int FROM rejected)
);

-- ------------------------------------------------------------ capture as aos_api
SET LOCAL ROLE aos_api;
SELECT set_config('aos.tenant_id', 't1', TRUE);
INSERT INTO got VALUES
    ('all', pg_temp.proposals('{}', 200, 0)),
    ('default', api.policy_proposals()),
    ('first', pg_temp.proposals('{}', 1, 0)),
    ('middle', pg_temp.proposals('{}', 2, 2)),
    ('last', pg_temp.proposals('{}', 4, 4)),
    ('end', pg_temp.proposals('{}', 4, 6)),
    ('past', pg_temp.proposals('{}', 4, 99));
INSERT INTO got SELECT 'filter ' || n, pg_temp.proposals(filters, 200, 0) FROM filter_cases;
INSERT INTO got SELECT 'walk ' || l, to_jsonb(aosdb_test.walk('pg_temp.proposals', 'pg_temp.names', '{}', l)) FROM unnest(ARRAY[1, 2, 4, 6]) AS l;
INSERT INTO got SELECT 'walk pending', to_jsonb(aosdb_test.walk('pg_temp.proposals', 'pg_temp.names', '{"status": "pending"}', 3));
INSERT INTO got SELECT 'proposal ' || name, api.policy_proposal(id) FROM names WHERE tenant_id = 't1';
SELECT set_config('aos.tenant_id', 't2', TRUE);
INSERT INTO got VALUES ('t2', pg_temp.proposals('{}', 200, 0));
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

-- ------------------------------------------------------------ list shape and order
SELECT is(
    (SELECT array_agg(key ORDER BY key) FROM got, jsonb_object_keys(v) AS key WHERE got.k = 'all'),
    ARRAY['has_more', 'items', 'pagination', 'total'],
    'the list is the envelope {items, total, has_more, pagination} and nothing else'
);
SELECT is(
    (SELECT array_agg(key ORDER BY key) FROM got, jsonb_object_keys(v -> 'pagination') AS key WHERE got.k = 'all'),
    ARRAY['limit', 'next_offset', 'offset'],
    'pagination is {limit, offset, next_offset} and nothing else'
);
SELECT is(
    (SELECT v -> 'items' FROM got WHERE k = 'all'),
    (SELECT jsonb_agg(to_jsonb(p) - 'tenant_id' || jsonb_build_object('rule_id', r.id)
                      ORDER BY p.created_at DESC, p.id DESC)
     FROM policies.policy_proposals AS p
     LEFT JOIN policies.policy_rules AS r ON r.tenant_id = p.tenant_id AND r.source_proposal_id = p.id
     WHERE p.tenant_id = 't1'),
    'each item is the proposal row (without tenant_id) plus rule_id'
);
SELECT is(
    (SELECT pg_temp.names(v) FROM got WHERE k = 'all'),
    (SELECT names FROM t1_order),
    'newest first; proposals created at the same instant by id descending (rate before cost)'
);
SELECT is(
    (SELECT jsonb_agg(i -> 'rule_id' ORDER BY n) FROM got, jsonb_array_elements(v -> 'items') WITH ORDINALITY AS e (i, n)
     WHERE k = 'all'),
    jsonb_build_array(current_setting('test.rule_id'), NULL, NULL, NULL, NULL, NULL),
    'rule_id is the rule the approval created, null for every other proposal'
);
SELECT is(
    (SELECT jsonb_path_query_array(v, '$.items[*].status') FROM got WHERE k = 'all'),
    '["approved", "rejected", "pending", "pending", "pending", "pending"]'::jsonb,
    'the items show the reviews'
);

-- ------------------------------------------------------------ pages
SELECT is(
    (SELECT jsonb_build_object('names', pg_temp.names(v), 'meta', v - 'items') FROM got WHERE got.k = c.k),
    c.expected,
    c.description
)
FROM (VALUES
    (1, 'all', jsonb_build_object('names', (SELECT names FROM t1_order),
               'meta', '{"total": 6, "has_more": false, "pagination": {"limit": 200, "offset": 0, "next_offset": null}}'::jsonb),
     'limit 200 (the maximum): every proposal, has_more false, next_offset null'),
    (2, 'default', jsonb_build_object('names', (SELECT names FROM t1_order),
                   'meta', '{"total": 6, "has_more": false, "pagination": {"limit": 50, "offset": 0, "next_offset": null}}'::jsonb),
     'the defaults are limit 50, offset 0'),
    (3, 'first', '{"names": ["timeout"], "meta": {"total": 6, "has_more": true,
                   "pagination": {"limit": 1, "offset": 0, "next_offset": 1}}}'::jsonb,
     'limit 1 (the minimum): the newest proposal, has_more true, next_offset 1'),
    (4, 'middle', '{"names": ["step", "skill"], "meta": {"total": 6, "has_more": true,
                    "pagination": {"limit": 2, "offset": 2, "next_offset": 4}}}'::jsonb,
     'a middle page: has_more true, next_offset = offset + limit'),
    (5, 'last', '{"names": ["rate", "cost"], "meta": {"total": 6, "has_more": false,
                  "pagination": {"limit": 4, "offset": 4, "next_offset": null}}}'::jsonb,
     'the last, partial page: has_more false, next_offset null'),
    (6, 'end', '{"names": [], "meta": {"total": 6, "has_more": false,
                 "pagination": {"limit": 4, "offset": 6, "next_offset": null}}}'::jsonb,
     'offset equal to the total: no items, has_more false, next_offset null'),
    (7, 'past', '{"names": [], "meta": {"total": 6, "has_more": false,
                  "pagination": {"limit": 4, "offset": 99, "next_offset": null}}}'::jsonb,
     'offset past the end: no items, has_more false, next_offset null')
) AS c (n, k, expected, description)
ORDER BY c.n;

SELECT is(
    (SELECT v FROM got WHERE k = 'walk ' || l),
    to_jsonb((SELECT names FROM t1_order)),
    format('pages of %s, followed by next_offset, concatenate to the whole ordered list: no duplicate, no gap', l)
)
FROM unnest(ARRAY[1, 2, 4, 6]) AS l;
SELECT is(
    (SELECT v FROM got WHERE k = 'walk pending'),
    '["step", "skill", "rate", "cost"]'::jsonb,
    'filtered pages (status pending, pages of 3) concatenate to the whole filtered list'
);

-- ------------------------------------------------------------ filters
SELECT is(
    (SELECT jsonb_build_object('names', pg_temp.names(v), 'total', v -> 'total') FROM got WHERE k = 'filter ' || f.n),
    jsonb_build_object('names', f.names, 'total', cardinality(f.names)),
    format('filter %s: %s', f.filters, f.description)
)
FROM filter_cases AS f ORDER BY f.n;

-- ------------------------------------------------------------ tenants
SELECT is_empty(
    $$SELECT FROM got, jsonb_array_elements(v -> 'items') AS i
      JOIN policies.policy_proposals AS p ON p.id = (i ->> 'id')::uuid
      WHERE got.k = 'all' AND p.tenant_id <> 't1'$$,
    'the t1 list holds no proposal of t2 (not even t2''s newest one)'
);
SELECT is(
    (SELECT jsonb_build_object('names', pg_temp.names(v), 'total', v -> 'total') FROM got WHERE k = 't2'),
    '{"names": ["t2 timeout", "t2 cost"], "total": 2}'::jsonb,
    't2 sees its own two proposals only'
);

-- ------------------------------------------------------------ the queue is current
-- Proposals are read from the base table: what the engines just did shows at
-- once, no refresh. r-late crashes: the crash proposal was rejected, so it
-- opens a new pending one. r-late-skill fails like r-skill: it joins the
-- pending skill proposal (one pending proposal per rule), which counts it.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, created_at) VALUES
    ('t1', 'r-late', 'agent-a', 'failed', 'AGENT_CRASH', '2024-08-10 00:00:00+00'),
    ('t1', 'r-late-skill', 'agent-b', 'failed', 'SKILL_ERROR', '2024-08-10 01:00:00+00');
SET LOCAL ROLE aos_api;
SELECT set_config('aos.tenant_id', 't1', TRUE);
INSERT INTO got VALUES ('current', pg_temp.proposals('{"status": "pending"}', 200, 0));
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;
SELECT is(
    (SELECT jsonb_build_object('total', v -> 'total', 'runs', jsonb_path_query_array(v, '$.items[*].triggering_run_id'))
     FROM got WHERE k = 'current'),
    '{"total": 5, "runs": ["r-late", "r-step", "r-skill", null, null]}'::jsonb,
    'a proposal the engines just made is in the review queue at once, newest first (no refresh needed); '
    'r-late-skill made none'
);
SELECT is(
    (SELECT jsonb_build_object(
                'counts', jsonb_path_query_array(v, '$.items[*].incident_count'),
                'skill_seen_now', (v #>> '{items,2,last_seen_at}')::timestamptz = now(),
                'step_seen', (v #>> '{items,1,last_seen_at}')::timestamptz = (v #>> '{items,1,created_at}')::timestamptz)
     FROM got WHERE k = 'current'),
    '{"counts": [1, 1, 2, 1, 1], "skill_seen_now": true, "step_seen": false}'::jsonb,
    'items carry incident_count and last_seen_at: the skill proposal counts r-skill and r-late-skill and was last '
    'seen now (when r-late-skill''s incident was detected)'
);

-- ------------------------------------------------------------ detail
SELECT is(
    (SELECT aosdb_test.keys(v) FROM got WHERE k = 'proposal timeout'),
    (SELECT array_agg(c ORDER BY c) FROM (
        SELECT attname::text FROM pg_attribute
        WHERE attrelid = 'policies.policy_proposals'::regclass AND attnum > 0 AND NOT attisdropped
        UNION ALL VALUES ('rule'), ('triggering_incident'), ('triggering_run'), ('incidents'),
                         ('incidents_total')) AS a (c)),
    'the detail is every column of the proposal (incident_count and last_seen_at among them) plus rule, '
    'triggering_incident, triggering_run, incidents and incidents_total'
);
SELECT is(
    (SELECT v - 'rule' - 'triggering_incident' - 'triggering_run' - 'incidents' - 'incidents_total'
     FROM got WHERE k = 'proposal timeout'),
    pg_temp.proposal_json('timeout'),
    'the detail holds the proposal row as it is in policies.policy_proposals'
);
SELECT is(
    (SELECT v -> 'rule' FROM got WHERE k = 'proposal timeout'),
    (SELECT to_jsonb(r) FROM policies.policy_rules AS r WHERE r.id::text = current_setting('test.rule_id')),
    'rule is the row of the rule the approval created'
);
SELECT is(
    (SELECT v -> 'triggering_incident' FROM got WHERE k = 'proposal timeout'),
    (SELECT to_jsonb(i) FROM incidents.incidents AS i
     WHERE i.id = (SELECT (v ->> 'triggering_incident_id')::uuid FROM got WHERE k = 'proposal timeout')),
    'triggering_incident is the row of the incident that triggered it'
);
SELECT is(
    (SELECT v -> 'triggering_run' FROM got WHERE k = 'proposal timeout'),
    (SELECT to_jsonb(r) FROM activity.runs AS r WHERE r.tenant_id = 't1' AND r.run_id = 'r-timeout'),
    'triggering_run is the row of t1''s run that triggered it'
);
SELECT is(
    (SELECT jsonb_build_object('agent', v #>> '{triggering_run,agent_id}', 'incident_tenant', v #>> '{triggering_incident,tenant_id}',
                               'incident_run', v #>> '{triggering_incident,source_run_id}')
     FROM got WHERE k = 'proposal timeout'),
    '{"agent": "agent-a", "incident_tenant": "t1", "incident_run": "r-timeout"}'::jsonb,
    'the triggers are t1''s (t2 has a run and an incident for r-timeout too)'
);
SELECT is(
    (SELECT aosdb_test.keys(v #> '{incidents,0}') FROM got WHERE k = 'proposal timeout'),
    ARRAY['created_at', 'error_code', 'incident_id', 'lifecycle_state', 'linked_at', 'severity', 'source_run_id'],
    'a linked incident is {incident_id, source_run_id, severity, lifecycle_state, error_code, created_at, linked_at}'
);
SELECT is(
    (SELECT jsonb_build_object('incidents', v -> 'incidents', 'total', v -> 'incidents_total',
                               'count', v -> 'incident_count')
     FROM got WHERE k = 'proposal timeout'),
    (SELECT jsonb_build_object(
                'incidents', jsonb_build_array(jsonb_build_object(
                    'incident_id', i.id, 'source_run_id', 'r-timeout', 'severity', 'high', 'lifecycle_state', 'active',
                    'error_code', 'EXECUTION_TIMEOUT', 'created_at', i.created_at, 'linked_at', l.linked_at)),
                'total', 1, 'count', 1)
     FROM incidents.incidents AS i
     JOIN policies.proposal_incidents AS l ON l.tenant_id = i.tenant_id AND l.incident_id = i.id
     WHERE i.tenant_id = 't1' AND i.source_run_id = 'r-timeout'),
    'incidents of a proposal made by one failure: its triggering incident, linked to it; incidents_total 1'
);
SELECT is(
    (SELECT jsonb_build_object('status', v -> 'status', 'reviewed_by', v -> 'reviewed_by', 'rule', v -> 'rule',
                               'run', v #>> '{triggering_run,run_id}')
     FROM got WHERE k = 'proposal crash'),
    '{"status": "rejected", "reviewed_by": "alice", "rule": null, "run": "r-crash"}'::jsonb,
    'a rejected proposal: its review, no rule, its triggering run'
);
SELECT is(
    (SELECT jsonb_build_object('rule', v -> 'rule', 'triggering_incident', v -> 'triggering_incident',
                               'triggering_run', v -> 'triggering_run', 'type', v -> 'proposal_type',
                               'incidents', v -> 'incidents', 'incidents_total', v -> 'incidents_total')
     FROM got WHERE k = 'proposal cost'),
    '{"rule": null, "triggering_incident": null, "triggering_run": null, "type": "cost_cap_policy", "incidents": [],
      "incidents_total": 0}'::jsonb,
    'a proposal with no trigger: triggering_incident and triggering_run null, no linked incident (an empty array)'
);

-- Current: approving the step proposal shows its rule in the detail at once.
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT set_config('test.step_rule_id',
    policies.approve_proposal((SELECT id FROM names WHERE name = 'step'), 'alice')::text, TRUE);
RESET ROLE;
SET LOCAL ROLE aos_api;
INSERT INTO got VALUES ('proposal step approved', api.policy_proposal((SELECT id FROM names WHERE name = 'step')));
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;
SELECT is(
    (SELECT jsonb_build_object('status', v -> 'status', 'rule', v #>> '{rule,id}', 'source', v #>> '{rule,source}')
     FROM got WHERE k = 'proposal step approved'),
    jsonb_build_object('status', 'approved', 'rule', current_setting('test.step_rule_id'), 'source', 'proposal'),
    'the detail is current: an approval shows with its rule at once'
);

-- ------------------------------------------------------------ a storm's linked incidents
-- 205 SKILL_ERROR failures of t1 in one statement join the pending skill
-- proposal (r-skill and r-late-skill already linked: 207 links). Their
-- incidents get known detection times, two by two (ties), and links made in
-- the reverse order, so the list's order can only come from the links.
-- t2 has its own storm of the same rule, three failures.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, created_at)
SELECT 't1', 'r-storm-' || i, 'agent-s', 'failed', 'SKILL_ERROR', '2024-08-20 00:00:00+00'::timestamptz + i * INTERVAL '1 minute'
FROM generate_series(1, 205) AS i
UNION ALL
SELECT 't2', 'r-storm-' || i, 'agent-z', 'failed', 'SKILL_ERROR', '2024-08-20 00:00:00+00'::timestamptz + i * INTERVAL '1 minute'
FROM generate_series(1, 3) AS i;
UPDATE incidents.incidents SET created_at = '2024-08-20 00:00:00+00'::timestamptz
                                            + ((substr(source_run_id, 9)::integer + 1) / 2) * INTERVAL '1 minute'
WHERE source_run_id LIKE 'r-storm-%';
UPDATE incidents.incidents SET created_at = '2024-08-01 04:00:00+00' WHERE tenant_id = 't1' AND source_run_id = 'r-skill';
UPDATE incidents.incidents SET created_at = '2024-08-10 01:00:00+00'
WHERE tenant_id = 't1' AND source_run_id = 'r-late-skill';
UPDATE policies.proposal_incidents AS l SET linked_at = '2024-09-01 00:00:00+00'::timestamptz - (i.created_at - '2024-08-01')
FROM incidents.incidents AS i
WHERE i.tenant_id = l.tenant_id AND i.id = l.incident_id;

SET LOCAL ROLE aos_api;
SELECT set_config('aos.tenant_id', 't1', TRUE);
INSERT INTO got VALUES
    ('storm', api.policy_proposal((SELECT id FROM names WHERE name = 'skill'))),
    ('storm queue', pg_temp.proposals('{"status": "pending"}', 200, 0));
SELECT set_config('aos.tenant_id', 't2', TRUE);
INSERT INTO got SELECT 't2 storm', api.policy_proposal(p.id) FROM policies.policy_proposals AS p
WHERE p.proposed_rule #>> '{conditions,error_codes,0}' = 'SKILL_ERROR';
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

SELECT is(
    (SELECT jsonb_build_object('listed', jsonb_array_length(v -> 'incidents'), 'total', v -> 'incidents_total',
                               'count', v -> 'incident_count')
     FROM got WHERE k = 'storm'),
    '{"listed": 50, "total": 207, "count": 207}'::jsonb,
    'a proposal with 207 linked incidents lists 50 (the cap); incidents_total and incident_count count all 207'
);
SELECT is(
    (SELECT v -> 'incidents' FROM got WHERE k = 'storm'),
    (SELECT jsonb_agg(jsonb_build_object(
                'incident_id', x.id, 'source_run_id', x.source_run_id, 'severity', x.severity,
                'lifecycle_state', x.lifecycle_state, 'error_code', x.error_code, 'created_at', x.created_at,
                'linked_at', x.linked_at) ORDER BY x.linked_at DESC, x.id DESC)
     FROM (SELECT i.*, l.linked_at FROM policies.proposal_incidents AS l
           JOIN incidents.incidents AS i ON i.tenant_id = l.tenant_id AND i.id = l.incident_id
           WHERE l.tenant_id = 't1' AND l.proposal_id = (SELECT id FROM names WHERE name = 'skill')
           ORDER BY l.linked_at DESC, i.id DESC LIMIT 50) AS x),
    'incidents are the incidents of the 50 newest links, newest link first, each with its row''s figures and its '
    'link''s time'
);
SELECT set_eq(
    $$SELECT e ->> 'source_run_id' FROM got, jsonb_array_elements(v -> 'incidents') AS e WHERE k = 'storm'$$,
    $$SELECT 'r-storm-' || i FROM generate_series(1, 48) AS i UNION ALL VALUES ('r-skill'), ('r-late-skill')$$,
    'the listed incidents are those of the newest links: r-skill, r-late-skill and r-storm-1 .. r-storm-48; the '
    '157 links made first (r-storm-49 .. r-storm-205) are counted but not listed'
);
SELECT is(
    (SELECT count(*)::int FROM got, jsonb_array_elements(v -> 'incidents') WITH ORDINALITY AS a (e, n)
     JOIN jsonb_array_elements(v -> 'incidents') WITH ORDINALITY AS b (e, n) ON b.n = a.n + 1
     WHERE k = 'storm'
       AND NOT ((a.e ->> 'linked_at')::timestamptz > (b.e ->> 'linked_at')::timestamptz
                OR ((a.e ->> 'linked_at')::timestamptz = (b.e ->> 'linked_at')::timestamptz
                    AND (a.e ->> 'incident_id')::uuid > (b.e ->> 'incident_id')::uuid))),
    0,
    'ordered by the link''s linked_at descending, ties by incident_id descending (not by the incident''s '
    'created_at, which runs the other way)'
);
SELECT is_empty(
    $$SELECT FROM got, jsonb_array_elements(v -> 'incidents') AS e
      JOIN incidents.incidents AS i ON i.id = (e ->> 'incident_id')::uuid
      WHERE k = 'storm' AND i.tenant_id <> 't1'$$,
    't1''s proposal lists no incident of t2, whose storm has the same rule and the same run_ids'
);
SELECT is(
    (SELECT jsonb_build_object(
                'tenant', v -> 'tenant_id', 'total', v -> 'incidents_total', 'count', v -> 'incident_count',
                'runs', (SELECT jsonb_agg(e ->> 'source_run_id' ORDER BY e ->> 'source_run_id')
                         FROM jsonb_array_elements(v -> 'incidents') AS e),
                'incident_tenants', (SELECT count(*) FROM jsonb_array_elements(v -> 'incidents') AS e
                                     JOIN incidents.incidents AS i ON i.id = (e ->> 'incident_id')::uuid
                                     WHERE i.tenant_id = 't2'))
     FROM got WHERE k = 't2 storm'),
    '{"tenant": "t2", "total": 3, "count": 3, "runs": ["r-storm-1", "r-storm-2", "r-storm-3"],
      "incident_tenants": 3}'::jsonb,
    't2 sees its own storm''s proposal with its three incidents only'
);
SELECT is(
    (SELECT jsonb_build_object('total', v -> 'total',
                               'skill', jsonb_path_query_array(v, '$.items[*] ? (@.proposal_type == "failure_pattern_policy").incident_count'))
     FROM got WHERE k = 'storm queue'),
    '{"total": 4, "skill": [207]}'::jsonb,
    'the storm added no proposal to the review queue (the four pending since the step approval): one pending skill '
    'proposal, counting 207 incidents'
);

-- ------------------------------------------------------------ rejected calls
SELECT * FROM aosdb_test.api_rejections();

SELECT * FROM finish();
ROLLBACK;
