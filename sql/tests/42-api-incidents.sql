-- api.incidents (/rpc/incidents): the list envelope, items that
-- are the rows of incidents.v_incidents_o2, newest first (first_seen_at) with
-- ties broken by incident_id; every filter (severity, lifecycle_state, topic,
-- category, error_code, cause_type, is_synthetic, first_seen_after/before);
-- bad filters and pages 22023; pagination edges; as fresh as the last
-- refresh; tenant isolation and 28000 with no tenant set.
BEGIN;

SELECT aos.register_tenant(t) FROM (VALUES ('t1'), ('t2')) AS v (t);

-- Failures the IncidentEngine turns into incidents (t2 reuses r-timeout).
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, created_at, is_synthetic,
                           synthetic_scenario_id)
VALUES
    ('t1', 'r-timeout', 'agent-a', 'failed', 'EXECUTION_TIMEOUT', '2024-06-01 01:00:00+00', FALSE, NULL),
    ('t1', 'r-crash', 'agent-a', 'failed', 'AGENT_CRASH', '2024-06-01 02:00:00+00', FALSE, NULL),
    ('t1', 'r-budget', 'agent-b', 'failed', 'BUDGET_EXCEEDED', '2024-06-01 03:00:00+00', FALSE, NULL),
    ('t1', 'r-cancel', 'agent-b', 'failed', 'CANCELLED', '2024-06-01 04:00:00+00', TRUE, 'sc-42'),
    ('t2', 'r-timeout', 'agent-z', 'failed', 'EXECUTION_TIMEOUT', '2024-06-01 01:00:00+00', FALSE, NULL);

-- Incidents by name. The engine's get known detection times (they were all
-- detected now(), in this transaction); the rest are inserted with their own
-- id and time: system and human causes, which the IncidentEngine does not make.
CREATE TEMP TABLE names (name text PRIMARY KEY, tenant_id text, id uuid) ON COMMIT DROP;
GRANT SELECT ON names TO PUBLIC;
INSERT INTO names SELECT substr(source_run_id, 3), tenant_id, id FROM incidents.incidents WHERE tenant_id = 't1';
INSERT INTO names SELECT 't2 timeout', tenant_id, id FROM incidents.incidents WHERE tenant_id = 't2';
UPDATE incidents.incidents AS i SET created_at = v.t
FROM names AS n, (VALUES ('timeout', '2024-06-05 00:00:00+00'::timestamptz), ('crash', '2024-06-04 00:00:00+00'),
                         ('budget', '2024-06-03 00:00:00+00'), ('cancel', '2024-06-02 00:00:00+00'),
                         ('t2 timeout', '2024-06-05 00:00:00+00')) AS v (name, t)
WHERE n.name = v.name AND i.tenant_id = n.tenant_id AND i.id = n.id;

INSERT INTO names VALUES
    ('rate', 't1', '00000000-0000-0000-0000-00000000000a'),
    ('tie-1', 't1', '00000000-0000-0000-0000-000000000001'),
    ('tie-2', 't1', '00000000-0000-0000-0000-000000000002'),
    ('old', 't1', '00000000-0000-0000-0000-000000000003'),
    ('t2 system', 't2', '00000000-0000-0000-0000-0000000000f2');
INSERT INTO incidents.incidents (tenant_id, id, title, severity, lifecycle_state, category, error_code, cause_type,
                                 created_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by,
                                 resolution_method)
VALUES
    ('t1', '00000000-0000-0000-0000-00000000000a', 'provider throttled us', 'medium', 'acked', 'rate_limit',
     'RATE_LIMIT_EXCEEDED', 'system', '2024-06-01 00:00:00+00', '2024-06-01 01:00:00+00', 'bob', NULL, NULL, NULL),
    ('t1', '00000000-0000-0000-0000-000000000001', 'disk full', 'medium', 'active', 'resource_exhaustion',
     'RESOURCE_EXHAUSTION', 'system', '2024-05-20 00:00:00+00', NULL, NULL, NULL, NULL, NULL),
    ('t1', '00000000-0000-0000-0000-000000000002', 'stopped by hand', 'low', 'resolved', 'manual', 'MANUAL_STOP',
     'human', '2024-05-20 00:00:00+00', NULL, NULL, '2024-05-20 00:10:00+00', 'bob', 'manual'),
    ('t1', '00000000-0000-0000-0000-000000000003', 'batch cancelled', 'low', 'active', 'manual', 'CANCELLED',
     'system', '2024-05-01 00:00:00+00', NULL, NULL, NULL, NULL, NULL),
    ('t2', '00000000-0000-0000-0000-0000000000f2', 'other tenant', 'low', 'active', 'manual', 'CANCELLED',
     'system', '2024-06-10 00:00:00+00', NULL, NULL, NULL, NULL, NULL);

-- The operator acknowledges the timeout and resolves the crash.
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT incidents.acknowledge((SELECT id FROM names WHERE name = 'timeout'), 'alice');
SELECT incidents.resolve((SELECT id FROM names WHERE name = 'crash'), 'alice', 'rollback', 'rolled back');
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

REFRESH MATERIALIZED VIEW activity.v_runs_o2;
REFRESH MATERIALIZED VIEW incidents.v_incidents_o2;

CREATE TEMP TABLE got (k text PRIMARY KEY, v jsonb NOT NULL) ON COMMIT DROP;
GRANT ALL ON got TO PUBLIC;

-- The names of a page's incidents, in page order.
CREATE FUNCTION pg_temp.names(p_page jsonb) RETURNS text[]
LANGUAGE sql STABLE AS $fn$
    SELECT coalesce(array_agg(coalesce(n.name, e.item ->> 'incident_id') ORDER BY e.i), '{}')
    FROM jsonb_array_elements(p_page -> 'items') WITH ORDINALITY AS e (item, i)
    LEFT JOIN names AS n ON n.id = (e.item ->> 'incident_id')::uuid
$fn$;

-- The facade called with its arguments as one JSON object, the way a gateway passes a POST
-- body: jsonb_to_record types each value, and each becomes the named argument of its key.
CREATE FUNCTION pg_temp.incidents(p_args jsonb, p_page_size integer DEFAULT 50, p_page_offset integer DEFAULT 0)
RETURNS jsonb
LANGUAGE sql STABLE AS $fn$
    SELECT api.incidents(
        severity => a.severity, lifecycle_state => a.lifecycle_state, topic => a.topic, category => a.category,
        error_code => a.error_code, cause_type => a.cause_type, is_synthetic => a.is_synthetic,
        first_seen_after => a.first_seen_after, first_seen_before => a.first_seen_before,
        page_size => p_page_size, page_offset => p_page_offset)
    FROM jsonb_to_record(p_args) AS a (
        severity text, lifecycle_state text, topic text, category text, error_code text, cause_type text,
        is_synthetic boolean, first_seen_after timestamptz, first_seen_before timestamptz)
$fn$;

CREATE TEMP TABLE t1_order (names text[]) ON COMMIT DROP;
GRANT SELECT ON t1_order TO PUBLIC;
INSERT INTO t1_order VALUES ('{timeout,crash,budget,cancel,rate,tie-2,tie-1,old}');

CREATE TEMP TABLE filter_cases (n serial, filters jsonb, names text[], description text) ON COMMIT DROP;
GRANT SELECT ON filter_cases TO PUBLIC;
INSERT INTO filter_cases (filters, names, description) VALUES
    ('{"severity": "critical"}', '{crash}', 'severity critical'),
    ('{"severity": "high"}', '{timeout}', 'severity high'),
    ('{"severity": "medium"}', '{budget,rate,tie-1}', 'severity medium'),
    ('{"severity": "low"}', '{cancel,tie-2,old}', 'severity low'),
    ('{"lifecycle_state": "active"}', '{budget,cancel,tie-1,old}', 'lifecycle_state active'),
    ('{"lifecycle_state": "acked"}', '{timeout,rate}', 'lifecycle_state acked (the operator''s acknowledgement shows)'),
    ('{"lifecycle_state": "resolved"}', '{crash,tie-2}', 'lifecycle_state resolved'),
    ('{"topic": "active"}', '{timeout,budget,cancel,rate,tie-1,old}', 'topic active: active and acked'),
    ('{"topic": "resolved"}', '{crash,tie-2}', 'topic resolved'),
    ('{"category": "execution_failure"}', '{timeout,crash}', 'category execution_failure'),
    ('{"category": "manual"}', '{cancel,tie-2,old}', 'category manual'),
    ('{"category": "no_such_category"}', '{}', 'a category nobody has: empty list'),
    ('{"error_code": "RATE_LIMIT_EXCEEDED"}', '{rate}', 'error_code RATE_LIMIT_EXCEEDED'),
    ('{"error_code": "EXECUTION_TIMEOUT"}', '{timeout}', 'error_code EXECUTION_TIMEOUT (t1''s only)'),
    ('{"cause_type": "llm_run"}', '{timeout,crash,budget,cancel}', 'cause_type llm_run'),
    ('{"cause_type": "system"}', '{rate,tie-1,old}', 'cause_type system'),
    ('{"cause_type": "human"}', '{tie-2}', 'cause_type human'),
    ('{"is_synthetic": true}', '{cancel}', 'is_synthetic true (the mark travelled from the run)'),
    ('{"is_synthetic": false}', '{timeout,crash,budget,rate,tie-2,tie-1,old}', 'is_synthetic false'),
    ('{"first_seen_after": "2024-06-01T00:00:00Z"}', '{timeout,crash,budget,cancel,rate}',
     'first_seen_after includes its instant'),
    ('{"first_seen_before": "2024-05-20T00:00:00Z"}', '{old}', 'first_seen_before excludes its instant'),
    ('{"first_seen_after": "2024-05-20T00:00:00Z", "first_seen_before": "2024-06-02T00:00:00Z"}',
     '{rate,tie-2,tie-1}', 'first_seen_after and first_seen_before: a half-open window'),
    ('{"topic": "active", "severity": "medium", "cause_type": "system"}', '{rate,tie-1}', 'three filters together (AND)');

CREATE TEMP TABLE rejected (n serial, tenant text, sql text, errcode text, description text) ON COMMIT DROP;
GRANT SELECT ON rejected TO PUBLIC;
INSERT INTO rejected (tenant, sql, errcode, description) VALUES
    ('t1', $$SELECT api.incidents(state => 'active')$$, '42883', 'an unknown argument (state): no such function (42883)'),
    ('t1', $$SELECT api.incidents(tenant_id => 't2')$$, '42883', 'tenant_id is not an argument: 42883'),
    ('t1', $$SELECT api.incidents(severity => 'urgent')$$, '22023', 'severity outside its set raises 22023'),
    ('t1', $$SELECT api.incidents(lifecycle_state => 'open')$$, '22023',
     'lifecycle_state outside active/acked/resolved raises 22023'),
    ('t1', $$SELECT api.incidents(topic => 'acked')$$, '22023', 'topic is active or resolved only: acked raises 22023'),
    ('t1', $$SELECT api.incidents(cause_type => 'llm')$$, '22023', 'cause_type outside its set raises 22023'),
    ('t1', $$SELECT api.incidents(is_synthetic => 'nope')$$, '22P02', 'is_synthetic that is no boolean raises 22P02'),
    ('t1', $$SELECT api.incidents(first_seen_after => 'last tuesday')$$, '22007',
     'first_seen_after that is not a timestamp raises 22007'),
    ('t1', $$SELECT api.incidents(page_size => 0)$$, '22023', 'page_size 0 raises 22023'),
    ('t1', $$SELECT api.incidents(page_size => 201)$$, '22023', 'page_size 201 raises 22023'),
    ('t1', $$SELECT api.incidents(page_size => 10, page_offset => -5)$$, '22023', 'a negative page_offset raises 22023'),
    (NULL, $$SELECT api.incidents()$$, '28000', 'no tenant set raises 28000');

SELECT plan(
    6                                       -- shape and order
    + 7                                     -- pages
    + 4                                     -- pages concatenate
    + (SELECT count(*)::int FROM filter_cases)
    + 2                                     -- tenants
    + 2                                     -- freshness
    + (SELECT count(*)::int FROM rejected)
);

-- ------------------------------------------------------------ capture as aos_api
SET LOCAL ROLE aos_api;
SELECT set_config('aos.tenant_id', 't1', TRUE);
INSERT INTO got VALUES
    ('all', pg_temp.incidents('{}', 200, 0)),
    ('default', api.incidents()),
    ('first', pg_temp.incidents('{}', 1, 0)),
    ('middle', pg_temp.incidents('{}', 3, 3)),
    ('last', pg_temp.incidents('{}', 3, 6)),
    ('end', pg_temp.incidents('{}', 3, 8)),
    ('past', pg_temp.incidents('{}', 3, 50));
INSERT INTO got SELECT 'filter ' || n, pg_temp.incidents(filters, 200, 0) FROM filter_cases;
INSERT INTO got SELECT 'walk ' || l, to_jsonb(aosdb_test.walk('pg_temp.incidents', 'pg_temp.names', '{}', l)) FROM unnest(ARRAY[1, 3, 8]) AS l;
INSERT INTO got SELECT 'walk active', to_jsonb(aosdb_test.walk('pg_temp.incidents', 'pg_temp.names', '{"topic": "active"}', 4));
SELECT set_config('aos.tenant_id', 't2', TRUE);
INSERT INTO got VALUES ('t2', pg_temp.incidents('{}', 200, 0));
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

-- ------------------------------------------------------------ shape and order
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
    (SELECT jsonb_agg(to_jsonb(w) - 'tenant_id' ORDER BY w.first_seen_at DESC, w.incident_id DESC)
     FROM incidents.v_incidents_o2 AS w WHERE w.tenant_id = 't1'),
    'each item is the incident''s row of incidents.v_incidents_o2 (without tenant_id)'
);
SELECT is_empty(
    $$SELECT c FROM unnest(ARRAY['incident_id', 'severity', 'lifecycle_state', 'topic', 'category', 'error_code',
                                 'cause_type', 'title', 'source_run_id', 'first_seen_at', 'last_seen_at', 'event_count',
                                 'evidence_count', 'recovery_attempted', 'recurrence_count', 'time_to_resolution_ms',
                                 'resolved_at', 'resolved_by', 'resolution_method', 'is_synthetic',
                                 'synthetic_scenario_id']) AS c
      WHERE NOT EXISTS (SELECT FROM got, jsonb_array_elements(v -> 'items') AS i WHERE k = 'all' AND i ? c)$$,
    'the items carry every documented column of v_incidents_o2'
);
SELECT is(
    (SELECT pg_temp.names(v) FROM got WHERE k = 'all'),
    (SELECT names FROM t1_order),
    'newest first by first_seen_at; incidents first seen at the same instant by incident_id descending (tie-2, tie-1)'
);
SELECT is(
    (SELECT jsonb_path_query_array(v, '$.items[*] ? (@.incident_id == $id).lifecycle_state',
                                   jsonb_build_object('id', (SELECT id FROM names WHERE name = 'crash')))
            || jsonb_path_query_array(v, '$.items[*] ? (@.incident_id == $id).resolution_method',
                                      jsonb_build_object('id', (SELECT id FROM names WHERE name = 'crash')))
     FROM got WHERE k = 'all'),
    '["resolved", "rollback"]'::jsonb,
    'an item shows the operator''s resolution (state and method) once the view is refreshed'
);

-- ------------------------------------------------------------ pages
SELECT is(
    (SELECT jsonb_build_object('names', pg_temp.names(v), 'meta', v - 'items') FROM got WHERE got.k = c.k),
    c.expected,
    c.description
)
FROM (VALUES
    (1, 'all', jsonb_build_object('names', (SELECT names FROM t1_order),
               'meta', '{"total": 8, "has_more": false, "pagination": {"limit": 200, "offset": 0, "next_offset": null}}'::jsonb),
     'limit 200 (the maximum): every incident, has_more false, next_offset null'),
    (2, 'default', jsonb_build_object('names', (SELECT names FROM t1_order),
                   'meta', '{"total": 8, "has_more": false, "pagination": {"limit": 50, "offset": 0, "next_offset": null}}'::jsonb),
     'the defaults are limit 50, offset 0'),
    (3, 'first', '{"names": ["timeout"], "meta": {"total": 8, "has_more": true,
                   "pagination": {"limit": 1, "offset": 0, "next_offset": 1}}}'::jsonb,
     'limit 1 (the minimum): the newest incident, has_more true, next_offset 1'),
    (4, 'middle', '{"names": ["cancel", "rate", "tie-2"], "meta": {"total": 8, "has_more": true,
                    "pagination": {"limit": 3, "offset": 3, "next_offset": 6}}}'::jsonb,
     'a middle page: has_more true, next_offset = offset + limit'),
    (5, 'last', '{"names": ["tie-1", "old"], "meta": {"total": 8, "has_more": false,
                  "pagination": {"limit": 3, "offset": 6, "next_offset": null}}}'::jsonb,
     'the last, partial page: has_more false, next_offset null'),
    (6, 'end', '{"names": [], "meta": {"total": 8, "has_more": false,
                 "pagination": {"limit": 3, "offset": 8, "next_offset": null}}}'::jsonb,
     'offset equal to the total: no items, has_more false, next_offset null'),
    (7, 'past', '{"names": [], "meta": {"total": 8, "has_more": false,
                  "pagination": {"limit": 3, "offset": 50, "next_offset": null}}}'::jsonb,
     'offset past the end: no items, has_more false, next_offset null')
) AS c (n, k, expected, description)
ORDER BY c.n;

SELECT is(
    (SELECT v FROM got WHERE k = 'walk ' || l),
    to_jsonb((SELECT names FROM t1_order)),
    format('pages of %s, followed by next_offset, concatenate to the whole ordered list: no duplicate, no gap', l)
)
FROM unnest(ARRAY[1, 3, 8]) AS l;
SELECT is(
    (SELECT v FROM got WHERE k = 'walk active'),
    '["timeout", "budget", "cancel", "rate", "tie-1", "old"]'::jsonb,
    'filtered pages (topic active, pages of 4) concatenate to the whole filtered list'
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
      JOIN incidents.incidents AS x ON x.id = (i ->> 'incident_id')::uuid
      WHERE got.k = 'all' AND x.tenant_id <> 't1'$$,
    'the t1 list holds no incident of t2 (not even t2''s newest one)'
);
SELECT is(
    (SELECT jsonb_build_object('names', pg_temp.names(v), 'total', v -> 'total') FROM got WHERE k = 't2'),
    '{"names": ["t2 system", "t2 timeout"], "total": 2}'::jsonb,
    't2 sees its own two incidents only'
);

-- ------------------------------------------------------------ freshness
-- The list reads the analytics view: an acknowledgement after the refresh
-- shows only once the view is refreshed.
SET LOCAL ROLE aos_operator;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT incidents.acknowledge((SELECT id FROM names WHERE name = 'budget'), 'alice');
RESET ROLE;
SET LOCAL ROLE aos_api;
INSERT INTO got VALUES ('stale', pg_temp.incidents('{"lifecycle_state": "acked"}'));
RESET ROLE;
REFRESH MATERIALIZED VIEW incidents.v_incidents_o2;
SET LOCAL ROLE aos_api;
INSERT INTO got VALUES ('fresh', pg_temp.incidents('{"lifecycle_state": "acked"}'));
SELECT set_config('aos.tenant_id', '', TRUE);
RESET ROLE;

SELECT is(
    (SELECT pg_temp.names(v) FROM got WHERE k = 'stale'),
    ARRAY['timeout', 'rate'],
    'an acknowledgement after the last refresh does not show in the list yet (as fresh as v_incidents_o2)'
);
SELECT is(
    (SELECT pg_temp.names(v) FROM got WHERE k = 'fresh'),
    ARRAY['timeout', 'budget', 'rate'],
    'after the refresh it does'
);

-- ------------------------------------------------------------ rejected calls
SELECT * FROM aosdb_test.api_rejections();

SELECT * FROM finish();
ROLLBACK;
