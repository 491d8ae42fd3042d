-- api.activity_runs (/rpc/activity_runs): the list envelope
-- {"items", "total", "has_more", "pagination": {"limit", "offset",
-- "next_offset"}}, items that are the rows of activity.v_runs_o2, newest
-- first with ties broken by run_id; every filter (named, typed arguments);
-- bad values and pages 22023, values not of an argument's type 22P02/22007/22008;
-- pagination edges and pages that concatenate to the whole list; the list is
-- as fresh as the last refresh; tenant isolation, the JWT tenant claim, and
-- 28000 with no tenant set.
BEGIN;

SELECT aos.register_tenant(t) FROM (VALUES ('t1'), ('t2')) AS v (t);

-- Twelve runs of t1, an hour apart, two pairs sharing a created_at (09:00 and
-- 08:00) so the tie-break shows. Engines fire: r02 and r10 fail (incidents),
-- r08 exceeds dg-002 (16000 tokens) and gets policy_violation.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, input_tokens, created_at, is_synthetic,
                           synthetic_scenario_id)
VALUES
    ('t1', 'r01', 'agent-a', 'succeeded', NULL, 10, '2024-03-01 00:00:00+00', FALSE, NULL),
    ('t1', 'r02', 'agent-a', 'failed', 'EXECUTION_TIMEOUT', 10, '2024-03-01 01:00:00+00', FALSE, NULL),
    ('t1', 'r03', 'agent-b', 'running', NULL, 10, '2024-03-01 02:00:00+00', FALSE, NULL),
    ('t1', 'r04', 'agent-b', 'queued', NULL, 0, '2024-03-01 03:00:00+00', FALSE, NULL),
    ('t1', 'r05', 'agent-a', 'retry', NULL, 10, '2024-03-01 04:00:00+00', FALSE, NULL),
    ('t1', 'r06', 'agent-a', 'halted', NULL, 10, '2024-03-01 05:00:00+00', FALSE, NULL),
    ('t1', 'r07', 'agent-b', 'aborted', NULL, 10, '2024-03-01 06:00:00+00', FALSE, NULL),
    ('t1', 'r08', 'agent-b', 'succeeded', NULL, 20000, '2024-03-01 07:00:00+00', FALSE, NULL),
    ('t1', 'r09', 'agent-a', 'succeeded', NULL, 10, '2024-03-01 08:00:00+00', TRUE, 'sc-40'),
    ('t1', 'r10', 'agent-a', 'failed', 'AGENT_CRASH', 10, '2024-03-01 08:00:00+00', TRUE, 'sc-40'),
    ('t1', 'r11', 'agent-c', 'succeeded', NULL, 10, '2024-03-01 09:00:00+00', FALSE, NULL),
    ('t1', 'r12', 'agent-b', 'running', NULL, 10, '2024-03-01 09:00:00+00', FALSE, NULL),
    -- t2: one run newer than every t1 run, one reusing a t1 run_id, one failure.
    ('t2', 'r01', 'agent-z', 'succeeded', NULL, 10, '2024-03-01 10:00:00+00', FALSE, NULL),
    ('t2', 'x01', 'agent-a', 'failed', 'EXECUTION_TIMEOUT', 10, '2024-03-01 00:30:00+00', FALSE, NULL);

REFRESH MATERIALIZED VIEW activity.v_runs_o2;
REFRESH MATERIALIZED VIEW incidents.v_incidents_o2;

-- What the facade returned, by name, captured as aos_api and compared as the owner.
CREATE TEMP TABLE got (k text PRIMARY KEY, v jsonb NOT NULL) ON COMMIT DROP;
GRANT ALL ON got TO PUBLIC;

-- The run_ids of a page, in page order.
CREATE FUNCTION pg_temp.ids(p_page jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT coalesce(array_agg(e.item ->> 'run_id' ORDER BY e.n), '{}')
    FROM jsonb_array_elements(p_page -> 'items') WITH ORDINALITY AS e (item, n)
$fn$;

-- The facade called with its arguments as one JSON object, the way a gateway passes a POST
-- body: jsonb_to_record types each value, and each becomes the named argument of its key.
CREATE FUNCTION pg_temp.runs(p_args jsonb, p_page_size integer DEFAULT 50, p_page_offset integer DEFAULT 0)
RETURNS jsonb
LANGUAGE sql STABLE AS $fn$
    SELECT api.activity_runs(
        status => a.status, state => a.state, agent_id => a.agent_id, is_synthetic => a.is_synthetic,
        policy_violation => a.policy_violation, created_after => a.created_after, created_before => a.created_before,
        page_size => p_page_size, page_offset => p_page_offset)
    FROM jsonb_to_record(p_args) AS a (
        status text, state text, agent_id text, is_synthetic boolean, policy_violation boolean,
        created_after timestamptz, created_before timestamptz)
$fn$;

-- The whole list of t1, newest first, ties by run_id descending.
CREATE TEMP TABLE t1_order (ids text[]) ON COMMIT DROP;
GRANT SELECT ON t1_order TO PUBLIC;
INSERT INTO t1_order VALUES
    ('{r12,r11,r10,r09,r08,r07,r06,r05,r04,r03,r02,r01}');

-- Filters and what they keep, in list order.
CREATE TEMP TABLE filter_cases (n serial, filters jsonb, ids text[], description text) ON COMMIT DROP;
GRANT SELECT ON filter_cases TO PUBLIC;
INSERT INTO filter_cases (filters, ids, description) VALUES
    ('{"status": "failed"}', '{r10,r02}', 'status failed'),
    ('{"status": "running"}', '{r12,r03}', 'status running'),
    ('{"status": "queued"}', '{r04}', 'status queued'),
    ('{"status": "retry"}', '{r05}', 'status retry'),
    ('{"status": "halted"}', '{r06}', 'status halted'),
    ('{"status": "aborted"}', '{r07}', 'status aborted'),
    ('{"status": "succeeded"}', '{r11,r09,r08,r01}', 'status succeeded'),
    ('{"state": "live"}', '{r12,r05,r04,r03}', 'state live (queued, running, retry)'),
    ('{"state": "completed"}', '{r11,r10,r09,r08,r07,r06,r02,r01}', 'state completed'),
    ('{"agent_id": "agent-b"}', '{r12,r08,r07,r04,r03}', 'agent_id agent-b'),
    ('{"agent_id": "agent-z"}', '{}', 'agent_id of another tenant''s agent: nothing'),
    ('{"is_synthetic": true}', '{r10,r09}', 'is_synthetic true'),
    ('{"is_synthetic": false}', '{r12,r11,r08,r07,r06,r05,r04,r03,r02,r01}', 'is_synthetic false'),
    ('{"policy_violation": true}', '{r08}', 'policy_violation true (dg-002 flagged r08)'),
    ('{"policy_violation": false}', '{r12,r11,r10,r09,r07,r06,r05,r04,r03,r02,r01}', 'policy_violation false'),
    ('{"created_after": "2024-03-01T08:00:00Z"}', '{r12,r11,r10,r09}', 'created_after includes its instant'),
    ('{"created_before": "2024-03-01T02:00:00Z"}', '{r02,r01}', 'created_before excludes its instant'),
    ('{"created_after": "2024-03-01T02:00:00Z", "created_before": "2024-03-01T05:00:00Z"}', '{r05,r04,r03}',
     'created_after and created_before: a half-open window'),
    ('{"created_after": "2024-03-01T03:00:00+01:00"}', '{r12,r11,r10,r09,r08,r07,r06,r05,r04,r03}',
     'created_after honours the offset of the timestamp'),
    ('{"agent_id": "agent-a", "state": "completed", "is_synthetic": false}', '{r06,r02,r01}',
     'agent_id, state and is_synthetic together (AND)'),
    ('{"status": "failed", "policy_violation": true}', '{}', 'filters that match nothing: empty list');

-- Calls that must fail, with the tenant they are made in (NULL: none).
CREATE TEMP TABLE rejected (n serial, tenant text, sql text, errcode text, description text) ON COMMIT DROP;
GRANT SELECT ON rejected TO PUBLIC;
INSERT INTO rejected (tenant, sql, errcode, description) VALUES
    ('t1', $$SELECT api.activity_runs(colour => 'red')$$, '42883', 'an unknown argument: no such function (42883)'),
    ('t1', $$SELECT api.activity_runs(tenant_id => 't2')$$, '42883',
     'tenant_id is not an argument: asking for another tenant finds no function (42883)'),
    ('t1', $$SELECT api.activity_runs(status => 'done')$$, '22023', 'status outside its set raises 22023'),
    ('t1', $$SELECT api.activity_runs(status => 'FAILED')$$, '22023', 'status values are lowercase: 22023'),
    ('t1', $$SELECT api.activity_runs(status => '')$$, '22023', 'an empty status raises 22023'),
    ('t1', $$SELECT api.activity_runs(state => 'finished')$$, '22023', 'state outside live/completed raises 22023'),
    ('t1', $$SELECT api.activity_runs(is_synthetic => 'maybe')$$, '22P02',
     'is_synthetic that is no boolean raises 22P02 before the call'),
    ('t1', $$SELECT api.activity_runs(created_after => 'not a date')$$, '22007',
     'created_after that is not a timestamp raises 22007 before the call'),
    ('t1', $$SELECT api.activity_runs(created_after => '2024-02-30')$$, '22008',
     'created_after that is no real date raises 22008 before the call'),
    ('t1', $$SELECT api.activity_runs(page_size => 0)$$, '22023', 'page_size 0 raises 22023'),
    ('t1', $$SELECT api.activity_runs(page_size => 201)$$, '22023', 'page_size 201 raises 22023'),
    ('t1', $$SELECT api.activity_runs(page_size => -1)$$, '22023', 'a negative page_size raises 22023'),
    ('t1', $$SELECT api.activity_runs(page_size => NULL)$$, '22023', 'a null page_size raises 22023'),
    ('t1', $$SELECT api.activity_runs(page_size => 10, page_offset => -1)$$, '22023',
     'a negative page_offset raises 22023'),
    ('t1', $$SELECT api.activity_runs(page_offset => NULL)$$, '22023', 'a null page_offset raises 22023'),
    ('t1', $$SELECT api.activity_runs(page_size => 'ten')$$, '22P02', 'a page_size that is no integer raises 22P02'),
    (NULL, $$SELECT api.activity_runs()$$, '28000', 'no tenant set raises 28000'),
    (NULL, $$SELECT api.activity_runs(status => 'failed', page_size => 1)$$, '28000',
     'no tenant set raises 28000, whatever the filters');

SELECT plan(
    6                                               -- shape of the envelope and of the items
    + 7                                             -- pages
    + 5                                             -- pages concatenate
    + (SELECT count(*)::int FROM filter_cases)
    + 4                                             -- tenant isolation, the JWT claim, null filters
    + 2                                             -- freshness
    + (SELECT count(*)::int FROM rejected)
);

-- ------------------------------------------------------------ capture as aos_api
SET LOCAL ROLE aos_api;
SELECT set_config('aos.tenant_id', 't1', TRUE);
INSERT INTO got VALUES
    ('all', pg_temp.runs('{}', 200, 0)),
    ('default', api.activity_runs()),
    ('first', pg_temp.runs('{}', 1, 0)),
    ('middle', pg_temp.runs('{}', 5, 5)),
    ('last', pg_temp.runs('{}', 5, 10)),
    ('end', pg_temp.runs('{}', 5, 12)),
    ('past', pg_temp.runs('{}', 5, 100)),
    ('null filter values', pg_temp.runs('{"status": null, "agent_id": null}', 200, 0));
INSERT INTO got SELECT 'filter ' || n, pg_temp.runs(filters, 200, 0) FROM filter_cases;
INSERT INTO got SELECT 'walk ' || l, to_jsonb(aosdb_test.walk('pg_temp.runs', 'pg_temp.ids', '{}', l)) FROM unnest(ARRAY[1, 5, 7, 12]) AS l;
INSERT INTO got SELECT 'walk completed', to_jsonb(aosdb_test.walk('pg_temp.runs', 'pg_temp.ids', '{"state": "completed"}', 3));
SELECT set_config('aos.tenant_id', 't2', TRUE);
INSERT INTO got VALUES ('t2', pg_temp.runs('{}', 200, 0));
-- PostgREST: no aos.tenant_id, the tenant comes from the JWT claim.
SELECT set_config('aos.tenant_id', '', TRUE);
SELECT set_config('request.jwt.claims', '{"tenant_id": "t2", "role": "aos_api"}', TRUE);
INSERT INTO got VALUES ('jwt', pg_temp.runs('{}', 200, 0));
SELECT set_config('request.jwt.claims', '', TRUE);
RESET ROLE;

-- ------------------------------------------------------------ shape
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
SELECT results_eq(
    $$SELECT jsonb_typeof(v -> 'items'), jsonb_typeof(v -> 'total'), jsonb_typeof(v -> 'has_more'),
             jsonb_typeof(v -> 'pagination' -> 'limit'), jsonb_typeof(v -> 'pagination' -> 'offset')
      FROM got WHERE k = 'all'$$,
    $$VALUES ('array', 'number', 'boolean', 'number', 'number')$$,
    'items is an array, total and the pagination figures numbers, has_more a boolean'
);
SELECT is(
    (SELECT v -> 'items' FROM got WHERE k = 'all'),
    (SELECT jsonb_agg(to_jsonb(w) - 'tenant_id' ORDER BY w.created_at DESC, w.run_id DESC)
     FROM activity.v_runs_o2 AS w WHERE w.tenant_id = 't1'),
    'each item is the run''s row of activity.v_runs_o2 (without tenant_id)'
);
SELECT is_empty(
    $$SELECT c FROM unnest(ARRAY['run_id', 'agent_id', 'status', 'state', 'started_at', 'completed_at', 'duration_ms',
                                 'input_tokens', 'output_tokens', 'total_tokens', 'estimated_cost_usd', 'step_count',
                                 'error_step_count', 'retry_count', 'policy_violation', 'is_synthetic',
                                 'synthetic_scenario_id']) AS c
      WHERE NOT EXISTS (SELECT FROM got, jsonb_array_elements(v -> 'items') AS i WHERE k = 'all' AND i ? c)$$,
    'the items carry every documented column of v_runs_o2'
);
SELECT is(
    (SELECT pg_temp.ids(v) FROM got WHERE k = 'all'),
    (SELECT ids FROM t1_order),
    'newest first; runs created at the same instant ordered by run_id descending (r12 before r11, r10 before r09)'
);

-- ------------------------------------------------------------ pages
SELECT is(
    (SELECT jsonb_build_object('ids', pg_temp.ids(v), 'meta', v - 'items') FROM got WHERE got.k = c.k),
    c.expected,
    c.description
)
FROM (VALUES
    (1, 'all', jsonb_build_object('ids', (SELECT ids FROM t1_order),
               'meta', '{"total": 12, "has_more": false, "pagination": {"limit": 200, "offset": 0, "next_offset": null}}'::jsonb),
     'limit 200 (the maximum) is accepted: every run, has_more false, next_offset null'),
    (2, 'default', jsonb_build_object('ids', (SELECT ids FROM t1_order),
                   'meta', '{"total": 12, "has_more": false, "pagination": {"limit": 50, "offset": 0, "next_offset": null}}'::jsonb),
     'the defaults are limit 50, offset 0'),
    (3, 'first', '{"ids": ["r12"], "meta": {"total": 12, "has_more": true,
                   "pagination": {"limit": 1, "offset": 0, "next_offset": 1}}}'::jsonb,
     'limit 1 (the minimum) is accepted: the newest run, has_more true, next_offset 1'),
    (4, 'middle', '{"ids": ["r07", "r06", "r05", "r04", "r03"], "meta": {"total": 12, "has_more": true,
                    "pagination": {"limit": 5, "offset": 5, "next_offset": 10}}}'::jsonb,
     'a middle page: runs 6 to 10, has_more true, next_offset = offset + limit'),
    (5, 'last', '{"ids": ["r02", "r01"], "meta": {"total": 12, "has_more": false,
                  "pagination": {"limit": 5, "offset": 10, "next_offset": null}}}'::jsonb,
     'the last, partial page: has_more false, next_offset null'),
    (6, 'end', '{"ids": [], "meta": {"total": 12, "has_more": false,
                 "pagination": {"limit": 5, "offset": 12, "next_offset": null}}}'::jsonb,
     'offset equal to the total: no items, has_more false, next_offset null, total still 12'),
    (7, 'past', '{"ids": [], "meta": {"total": 12, "has_more": false,
                  "pagination": {"limit": 5, "offset": 100, "next_offset": null}}}'::jsonb,
     'offset past the end: no items (an empty array), has_more false, next_offset null')
) AS c (n, k, expected, description)
ORDER BY c.n;

SELECT is(
    (SELECT v FROM got WHERE k = 'walk ' || l),
    to_jsonb((SELECT ids FROM t1_order)),
    format('pages of %s, followed by next_offset, concatenate to the whole ordered list: no duplicate, no gap', l)
)
FROM unnest(ARRAY[1, 5, 7, 12]) AS l;
SELECT is(
    (SELECT v FROM got WHERE k = 'walk completed'),
    '["r11", "r10", "r09", "r08", "r07", "r06", "r02", "r01"]'::jsonb,
    'filtered pages (state completed, pages of 3) concatenate to the whole filtered list'
);

-- ------------------------------------------------------------ filters
SELECT is(
    (SELECT jsonb_build_object('ids', pg_temp.ids(v), 'total', v -> 'total') FROM got WHERE k = 'filter ' || f.n),
    jsonb_build_object('ids', f.ids, 'total', cardinality(f.ids)),
    format('filter %s: %s', f.filters, f.description)
)
FROM filter_cases AS f ORDER BY f.n;

-- ------------------------------------------------------------ tenants
SELECT is_empty(
    $$SELECT FROM got, jsonb_array_elements(v -> 'items') AS i
      JOIN activity.runs AS r ON r.id = (i ->> 'run_uuid')::uuid
      WHERE got.k = 'all' AND r.tenant_id <> 't1'$$,
    'the t1 list holds no run of t2 (not even t2''s r01, the newest run of all)'
);
SELECT is(
    (SELECT jsonb_build_object('ids', pg_temp.ids(v), 'agents', jsonb_path_query_array(v, '$.items[*].agent_id'),
                               'total', v -> 'total') FROM got WHERE k = 't2'),
    '{"ids": ["r01", "x01"], "agents": ["agent-z", "agent-a"], "total": 2}'::jsonb,
    't2 sees its own two runs only (its r01 is agent-z''s, not t1''s)'
);
SELECT is(
    (SELECT pg_temp.ids(v) FROM got WHERE k = 'jwt'),
    ARRAY['r01', 'x01'],
    'with no aos.tenant_id, the tenant_id claim of request.jwt.claims scopes the list (PostgREST)'
);
SELECT is(
    (SELECT v FROM got WHERE k = 'null filter values'),
    (SELECT v FROM got WHERE k = 'all'),
    'a filter whose value is JSON null is no filter'
);

-- ------------------------------------------------------------ freshness
-- The list reads the analytics view: a run recorded after the refresh shows
-- only once the view is refreshed.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, created_at)
VALUES ('t1', 'r13', 'agent-a', 'running', '2024-03-01 11:00:00+00');

SET LOCAL ROLE aos_api;
SELECT set_config('aos.tenant_id', 't1', TRUE);
INSERT INTO got VALUES ('stale', pg_temp.runs('{}', 1, 0));
RESET ROLE;
REFRESH MATERIALIZED VIEW activity.v_runs_o2;
SET LOCAL ROLE aos_api;
INSERT INTO got VALUES ('fresh', pg_temp.runs('{}', 1, 0));
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

SELECT is(
    (SELECT jsonb_build_object('ids', pg_temp.ids(v), 'total', v -> 'total') FROM got WHERE k = 'stale'),
    '{"ids": ["r12"], "total": 12}'::jsonb,
    'a run recorded after the last refresh is not listed yet (the list is as fresh as activity.v_runs_o2)'
);
SELECT is(
    (SELECT jsonb_build_object('ids', pg_temp.ids(v), 'total', v -> 'total') FROM got WHERE k = 'fresh'),
    '{"ids": ["r13"], "total": 13}'::jsonb,
    'after the refresh it is listed first'
);

-- ------------------------------------------------------------ rejected calls
SELECT * FROM aosdb_test.api_rejections();

SELECT * FROM finish();
ROLLBACK;
