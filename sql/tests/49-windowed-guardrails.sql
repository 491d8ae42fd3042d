-- The windowed guardrails, exactly (dg-003 and dg-004; the PolicyEngine of 0010):
--   dg-003 (rate_limit): a run whose tenant recorded more than 100 runs in
--     (created_at - 60 s, created_at] is throttled. Within one INSERT the runs
--     arrive in statement order: a run does not count the runs the statement
--     recorded after it with the same created_at.
--   dg-004 (failure_spike): judged at every terminal run, success or failure:
--     at least 10 terminal runs of the tenant in its window, more than half of
--     them failed, freezes the run at which the window first met the rule, with
--     the counts it saw; one freeze per tenant and window.
-- So one INSERT of many runs decides what as many single-row INSERTs would.
BEGIN;

SELECT plan(18);

SELECT aos.register_tenant(t) FROM (VALUES
    ('rate150'), ('rate-apart'), ('rate-edge'), ('rate-near'),
    ('f6s4'), ('s4f6'), ('s5f6'), ('storm'), ('windows'),
    ('bulk-x'), ('bulk-y'), ('single-x'), ('single-y')
) AS v (t);

-- A fixed past instant: explicit created_at of the runs below (a freeze is
-- recorded after the runs it judges, never before).
SELECT set_config('test.t0', '2024-01-01 00:00:00+00', TRUE);
-- The worker writes them, so its clock window must reach that far back.
SELECT set_config('aos.timestamp_window', '10 years', TRUE);

-- The runs of a tenant a guardrail recorded, by run_id.
CREATE FUNCTION pg_temp.hit(p_tenant text, p_guardrail text) RETURNS text[]
LANGUAGE sql AS $fn$
    SELECT ARRAY(SELECT p.run_id FROM policies.prevention_records AS p
                 WHERE p.tenant_id = p_tenant AND p.guardrail_id = p_guardrail ORDER BY p.run_id)
$fn$;

-- ------------------------------------------------------- dg-003 rate limit
SET LOCAL ROLE aos_worker;
-- 150 runs of a fresh tenant in one INSERT, all recorded at the same instant.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status)
SELECT 'rate150', 'r' || lpad(i::text, 3, '0'), 'agent-r', 'succeeded' FROM generate_series(1, 150) AS i ORDER BY i;
-- 150 runs in one INSERT, alternately at t0 and 61 s later: two windows of 75.
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, created_at)
SELECT 'rate-apart', 'r' || lpad(i::text, 3, '0'), 'agent-r', 'succeeded',
       current_setting('test.t0')::timestamptz + CASE WHEN i % 2 = 0 THEN interval '61 seconds' ELSE interval '0' END
FROM generate_series(1, 150) AS i ORDER BY i;
-- 100 runs at t0, then one exactly 60 s later (t0 is not in its window) ...
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, created_at)
SELECT 'rate-edge', 'r' || lpad(i::text, 3, '0'), 'agent-r', 'succeeded',
       current_setting('test.t0')::timestamptz + CASE WHEN i = 101 THEN interval '60 seconds' ELSE interval '0' END
FROM generate_series(1, 101) AS i ORDER BY i;
-- ... and one a millisecond less than 60 s later (t0 is).
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, created_at)
SELECT 'rate-near', 'r' || lpad(i::text, 3, '0'), 'agent-r', 'succeeded',
       current_setting('test.t0')::timestamptz + CASE WHEN i = 101 THEN interval '59.999 seconds' ELSE interval '0' END
FROM generate_series(1, 101) AS i ORDER BY i;
RESET ROLE;

SELECT is(pg_temp.hit('rate150', 'dg-003'),
    ARRAY(SELECT 'r' || lpad(i::text, 3, '0') FROM generate_series(101, 150) AS i ORDER BY i),
    'dg-003: one INSERT of 150 runs of a fresh tenant throttles exactly runs 101 to 150');
SELECT results_eq(
    $$SELECT count(*)::int, bool_and(r.policy_violation) FROM activity.runs AS r
      WHERE r.tenant_id = 'rate150' AND r.run_id > 'r100'$$,
    $$VALUES (50, TRUE)$$,
    'dg-003: and flags those 50 runs'
);
SELECT is(pg_temp.hit('rate-apart', 'dg-003'), '{}'::text[],
    'dg-003: runs 61 s apart do not count each other (two windows of 75 runs)');
SELECT is(pg_temp.hit('rate-edge', 'dg-003'), '{}'::text[],
    'dg-003: a run exactly 60 s after 100 others does not count them (the window is open at its start)');
SELECT is(pg_temp.hit('rate-near', 'dg-003'), ARRAY['r101'],
    'dg-003: a run 59.999 s after 100 others counts them and is throttled, they are not');

-- ---------------------------------------------------- dg-004 failure spike
-- Each in one INSERT, in statement order.
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status)
SELECT 'f6s4', 'r' || lpad(i::text, 2, '0'), 'agent-f', CASE WHEN i <= 6 THEN 'failed' ELSE 'succeeded' END
FROM generate_series(1, 10) AS i ORDER BY i;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status)
SELECT 's4f6', 'r' || lpad(i::text, 2, '0'), 'agent-f', CASE WHEN i <= 4 THEN 'succeeded' ELSE 'failed' END
FROM generate_series(1, 10) AS i ORDER BY i;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status)
SELECT 's5f6', 'r' || lpad(i::text, 2, '0'), 'agent-f', CASE WHEN i <= 5 THEN 'succeeded' ELSE 'failed' END
FROM generate_series(1, 11) AS i ORDER BY i;
RESET ROLE;

CREATE FUNCTION pg_temp.freezes(p_tenant text) RETURNS text
LANGUAGE sql AS $fn$
    SELECT coalesce(string_agg(format('%s %s/%s', p.run_id, p.details ->> 'failed', p.details ->> 'runs'), ', '
                               ORDER BY p.run_id), 'none')
    FROM policies.prevention_records AS p
    WHERE p.tenant_id = p_tenant AND p.guardrail_id = 'dg-004' AND p.outcome = 'frozen'
$fn$;

SELECT is(pg_temp.freezes('f6s4'), 'r10 6/10',
    'dg-004: 6 failures then 4 successes freeze the 4th success (6 failed of 10 runs)');
SELECT is(pg_temp.freezes('s4f6'), 'r10 6/10',
    'dg-004: 4 successes then 6 failures freeze the 6th failure (6 failed of 10 runs)');
SELECT is(pg_temp.freezes('s5f6'), 'r11 6/11',
    'dg-004: 5 successes then 6 failures freeze the 11th run (5 of 10 is not more than half; 6 of 11 is)');
SELECT results_eq(
    $$SELECT run_id, policy_violation FROM activity.runs WHERE tenant_id = 's5f6' AND policy_violation ORDER BY run_id$$,
    $$VALUES ('r11'::text, TRUE)$$,
    'dg-004: only the frozen run is flagged'
);
SELECT results_eq(
    $$SELECT details ->> 'guardrail', details ->> 'action', details -> 'config' ->> 'min_runs'
      FROM policies.prevention_records WHERE tenant_id = 's4f6' AND guardrail_id = 'dg-004'$$,
    $$VALUES ('dg-004', 'freeze', '10')$$,
    'dg-004: the freeze names the guardrail, its action and its configuration besides the counts'
);

-- A storm: one freeze per window, however many failures.
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
SELECT 'storm', 'r' || lpad(i::text, 3, '0'), 'agent-s', 'failed', 'BUDGET_EXCEEDED'
FROM generate_series(1, 200) AS i ORDER BY i;
RESET ROLE;
SELECT is(pg_temp.freezes('storm'), 'r010 10/10',
    'dg-004: a storm of 200 failures in one INSERT is frozen once, at its 10th run');
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
SELECT 'storm', 'r' || lpad(i::text, 3, '0'), 'agent-s', 'failed', 'BUDGET_EXCEEDED'
FROM generate_series(201, 250) AS i ORDER BY i;
SELECT activity.start_run('storm', 'r-api', 'agent-s', NULL);
SELECT activity.finish_run('storm', 'r-api', 'failed', '{"error_message": "BUDGET_EXCEEDED"}');
RESET ROLE;
SELECT is(pg_temp.freezes('storm'), 'r010 10/10',
    'dg-004: further failures in the same window, in later statements or through the worker API, freeze nothing more');

-- Windows by created_at: t0, t0 + 30 s (the same window as t0's freeze), t0 + 61 s (a new one).
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, created_at)
SELECT 'windows', format('w%s-%s', s, lpad(i::text, 2, '0')), 'agent-w', 'failed',
       current_setting('test.t0')::timestamptz + make_interval(secs => s)
FROM (VALUES (0), (30)) AS v (s), generate_series(1, 12) AS i ORDER BY s, i;
RESET ROLE;
SELECT is(pg_temp.freezes('windows'), 'w0-10 10/10',
    'dg-004: failures 30 s after a freeze are in its window: no second freeze');
SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, created_at)
SELECT 'windows', format('w61-%s', lpad(i::text, 2, '0')), 'agent-w', 'failed',
       current_setting('test.t0')::timestamptz + interval '61 seconds'
FROM generate_series(1, 3) AS i ORDER BY i;
RESET ROLE;
SELECT is(pg_temp.freezes('windows'), 'w0-10 10/10, w61-01 13/13',
    'dg-004: 61 s after the freeze it is out of the window: the next run that meets the rule is frozen');

-- ---------------------------------------------------------------- indexes
-- Was the tenant frozen within the window? Was this failure prevented? The
-- records of a rule? Each a partial index: a storm's throttle records (dg-003
-- writes one per run) are in none but the last.
SELECT set_eq(
    $$SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_catalog.pg_index
      WHERE indrelid = 'policies.prevention_records'::regclass AND NOT indisunique$$,
    $$VALUES
        ('policies.prevention_records_guardrail_idx',
         'CREATE INDEX prevention_records_guardrail_idx ON policies.prevention_records USING btree '
         '(tenant_id, guardrail_id, created_at) WHERE ((guardrail_id IS NOT NULL) AND (outcome <> ''throttled''::text))'),
        ('policies.prevention_records_prevented_idx',
         'CREATE INDEX prevention_records_prevented_idx ON policies.prevention_records USING btree (tenant_id, run_id) '
         'WHERE (outcome = ''prevented''::text)'),
        ('policies.prevention_records_rule_idx',
         'CREATE INDEX prevention_records_rule_idx ON policies.prevention_records USING btree (tenant_id, policy_rule_id) '
         'WHERE (policy_rule_id IS NOT NULL)')$$,
    'the prevention records'' lookup indexes: guardrail (without throttles), prevented, rule; all partial'
);

-- ------------------------------------------ one INSERT, or one per run
-- The same runs for tenants x and y, in created_at order: 4 successes, then
-- failures, 130 runs within 13 s for x (throttled from its 101st, frozen at
-- its 10th); y fails 6 of its first 10 runs, succeeds, then fails 20 times
-- 80 s later (two freezes). Once in one INSERT, once run by run.
CREATE TEMP TABLE plan_runs (k int, who text, run_id text, status text, created_at timestamptz) ON COMMIT DROP;
GRANT SELECT ON plan_runs TO PUBLIC;
INSERT INTO plan_runs (who, run_id, status, created_at)
SELECT 'x', 'x-' || lpad(i::text, 3, '0'), CASE WHEN i <= 4 THEN 'succeeded' ELSE 'failed' END,
       current_setting('test.t0')::timestamptz + i * interval '100 milliseconds'
FROM generate_series(1, 130) AS i
UNION ALL
SELECT 'y', 'y-' || lpad(i::text, 3, '0'), CASE WHEN i <= 6 OR i > 40 THEN 'failed' ELSE 'succeeded' END,
       current_setting('test.t0')::timestamptz + i * interval '500 milliseconds'
           + CASE WHEN i > 40 THEN interval '80 seconds' ELSE interval '0' END
FROM generate_series(1, 60) AS i;
UPDATE plan_runs AS p SET k = o.k
FROM (SELECT run_id, row_number() OVER (ORDER BY created_at, run_id) AS k FROM plan_runs) AS o
WHERE o.run_id = p.run_id;

SET LOCAL ROLE aos_worker;
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, created_at)
SELECT 'bulk-' || who, run_id, 'agent-b', status, CASE status WHEN 'failed' THEN 'BUDGET_EXCEEDED' END, created_at
FROM plan_runs ORDER BY k;
DO $do$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM plan_runs ORDER BY k LOOP
        INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code, created_at)
        VALUES ('single-' || r.who, r.run_id, 'agent-b', r.status,
                CASE r.status WHEN 'failed' THEN 'BUDGET_EXCEEDED' END, r.created_at);
    END LOOP;
END
$do$;
RESET ROLE;

CREATE TEMP VIEW windowed AS
SELECT split_part(p.tenant_id, '-', 1) AS how, split_part(p.tenant_id, '-', 2) AS who, p.run_id, p.guardrail_id,
       p.outcome, p.details ->> 'runs' AS runs, p.details ->> 'failed' AS failed, r.policy_violation
FROM policies.prevention_records AS p
JOIN activity.runs AS r ON r.tenant_id = p.tenant_id AND r.run_id = p.run_id
WHERE p.tenant_id IN ('bulk-x', 'bulk-y', 'single-x', 'single-y');

SELECT is(
    (SELECT string_agg(format('%s %s %s', who, guardrail_id, n), ', ' ORDER BY who, guardrail_id)
     FROM (SELECT who, guardrail_id, count(*) AS n FROM windowed WHERE how = 'bulk' GROUP BY who, guardrail_id) AS c),
    'x dg-003 30, x dg-004 1, y dg-004 2',
    'the bulk INSERT: x throttled 30 times and frozen once, y frozen twice'
);
SELECT is(
    (SELECT string_agg(format('%s %s/%s', run_id, failed, runs), ', ' ORDER BY run_id)
     FROM windowed WHERE how = 'bulk' AND guardrail_id = 'dg-004'),
    'x-010 6/10, y-010 6/10, y-050 10/10',
    'the freezes of the bulk INSERT, with the counts of their windows'
);
SELECT set_eq(
    $$SELECT who, run_id, guardrail_id, outcome, runs, failed, policy_violation FROM windowed WHERE how = 'bulk'$$,
    $$SELECT who, run_id, guardrail_id, outcome, runs, failed, policy_violation FROM windowed WHERE how = 'single'$$,
    'one INSERT of the runs and one INSERT per run give the same prevention records and flags'
);

SELECT * FROM finish();
ROLLBACK;
