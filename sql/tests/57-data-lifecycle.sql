-- Data lifecycle (0019): run retention keeps every run a governance record links to, and
-- offboarding leaves nothing of a tenant in any table while the other tenants' rows stay exactly
-- as they were. Only aos_owner may do either. aos.prune_runs commits between batches, which a
-- test in one transaction cannot CALL: its batches are tested here through activity._prune_runs_batch,
-- the procedure itself in tests/test_lifecycle.py.
BEGIN;

SELECT plan(44);

-- Every table of the domain schemas with a tenant_id column, found in the catalog.
CREATE FUNCTION pg_temp.tenant_tables() RETURNS SETOF regclass
LANGUAGE sql AS $fn$
    SELECT c.oid::regclass FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
    WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies') AND c.relkind IN ('r', 'p')
$fn$;

-- The rows of one tenant in each of those tables, and a digest of their content.
CREATE FUNCTION pg_temp.tenant_rows(p_tenant text)
RETURNS TABLE (table_name text, row_count bigint, digest text)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_table regclass;
BEGIN
    FOR v_table IN SELECT t FROM pg_temp.tenant_tables() AS t ORDER BY t::text LOOP
        table_name := v_table::text;
        EXECUTE format('SELECT count(*), md5(coalesce(string_agg(to_jsonb(x)::text, '';'' ORDER BY to_jsonb(x)::text), ''''))
                        FROM %s AS x WHERE tenant_id = $1', v_table)
            INTO row_count, digest USING p_tenant;
        RETURN NEXT;
    END LOOP;
END
$fn$;

INSERT INTO aos.tenants (tenant_id, name) VALUES ('t1', 'Tenant one'), ('t2', 'Tenant two');

-- ------------------------------------------------------------------------------------ prune_runs

-- What the retention must keep is exactly what points at a run: the list of foreign keys on the
-- activity tables from outside them. A new one fails here until activity._prune_runs_batch checks it.
SELECT set_eq(
    $$
    SELECT conrelid::regclass::text, conname::text FROM pg_constraint
    WHERE contype = 'f'
      AND confrelid IN ('activity.runs'::regclass, 'activity.aos_traces'::regclass, 'activity.aos_trace_steps'::regclass)
      AND conname NOT IN ('aos_traces_run_fk', 'aos_trace_steps_trace_fk')
    $$,
    $$ VALUES ('incidents.incidents', 'incidents_source_run_fk'), ('incidents.incidents', 'incidents_llm_run_fk'),
              ('incidents.incident_evidence', 'incident_evidence_run_fk'),
              ('policies.policy_proposals', 'policy_proposals_triggering_run_fk'),
              ('policies.prevention_records', 'prevention_records_run_fk') $$,
    'the foreign keys that point at runs, traces or steps are exactly those activity._prune_runs_batch keeps runs for'
);

-- t1: three old successes with traces and steps (to go), and old runs each kept for one reason.
INSERT INTO activity.runs (tenant_id, id, run_id, agent_id, status, error_code, created_at, started_at, completed_at)
SELECT 't1', v.id::uuid, v.run_id, 'agent', v.status, v.error_code,
       now() - interval '200 days', now() - interval '200 days',
       CASE WHEN v.status IN ('running', 'queued') THEN NULL ELSE now() - interval '200 days' END
FROM (VALUES
    ('00000000-0000-0000-0000-000000000001', 'old-1', 'succeeded', NULL),
    ('00000000-0000-0000-0000-000000000002', 'old-2', 'aborted', NULL),
    ('00000000-0000-0000-0000-000000000003', 'old-3', 'succeeded', NULL),
    ('00000000-0000-0000-0000-000000000004', 'failed', 'failed', 'EXECUTION_TIMEOUT'),
    ('00000000-0000-0000-0000-000000000005', 'proposal', 'succeeded', NULL),
    ('00000000-0000-0000-0000-000000000006', 'prevented', 'succeeded', NULL),
    ('00000000-0000-0000-0000-000000000007', 'evidence', 'succeeded', NULL),
    ('00000000-0000-0000-0000-000000000008', 'llm', 'succeeded', NULL),
    ('00000000-0000-0000-0000-000000000009', 'running', 'running', NULL),
    ('00000000-0000-0000-0000-00000000000a', 'queued', 'queued', NULL)
) AS v (id, run_id, status, error_code);
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, created_at, started_at, completed_at)
VALUES ('t1', 'recent', 'agent', 'succeeded', now() - interval '1 day', now() - interval '1 day', now() - interval '1 day'),
       ('t2', 'old-t2', 'agent', 'succeeded', now() - interval '200 days', now() - interval '200 days',
        now() - interval '200 days');
INSERT INTO activity.aos_traces (tenant_id, trace_id, run_id, status, started_at)
SELECT tenant_id, 'tr-' || run_id, run_id, 'completed', created_at FROM activity.runs;
INSERT INTO activity.aos_trace_steps (tenant_id, trace_id, step_index, skill_name, status, occurred_at)
SELECT t.tenant_id, t.trace_id, s, 'search', 'success', t.started_at
FROM activity.aos_traces AS t CROSS JOIN generate_series(0, 1) AS s;
-- The failed run got its incident (and, high, a proposal) from the engines; the others are linked
-- by hand: a proposal, a prevention record, a piece of evidence, an incident by the run's uuid.
INSERT INTO policies.policy_proposals (tenant_id, proposal_name, proposal_type, proposed_rule, triggering_run_id)
VALUES ('t1', 'by hand', 'cost_cap_policy',
        '{"rule_type": "max_value", "conditions": {"metric": "estimated_cost_usd", "max": 1}, "enforcement": "warn"}',
        'proposal');
INSERT INTO policies.prevention_records (tenant_id, run_id, guardrail_id, outcome)
VALUES ('t1', 'prevented', 'dg-001', 'blocked');
INSERT INTO incidents.incident_evidence (tenant_id, incident_id, evidence_type, run_id)
SELECT tenant_id, id, 'log', 'evidence' FROM incidents.incidents WHERE tenant_id = 't1' AND source_run_id = 'failed';
INSERT INTO incidents.incidents (tenant_id, llm_run_id, title, severity, category, cause_type)
VALUES ('t1', '00000000-0000-0000-0000-000000000008', 'by uuid', 'low', 'manual', 'system');

SELECT results_eq(
    $$ SELECT (SELECT count(*) FROM incidents.incidents WHERE tenant_id = 't1' AND source_run_id = 'failed')::int,
              (SELECT count(*) FROM policies.policy_proposals WHERE tenant_id = 't1' AND triggering_run_id = 'failed')::int $$,
    $$ VALUES (1, 1) $$,
    'the failed run has its incident and its proposal from the engines'
);

-- Batches of 3 over t1's ten old runs: four batches, each a page of at most 3 runs.
CREATE TEMP TABLE batches ON COMMIT DROP AS
SELECT 0 AS n, b.* FROM activity._prune_runs_batch('t1', now() - interval '90 days', 3) AS b;
DO $do$
DECLARE
    v_last record;
BEGIN
    LOOP
        SELECT * INTO v_last FROM batches ORDER BY n DESC LIMIT 1;
        EXIT WHEN v_last.scanned < 3 OR v_last.n > 10;
        INSERT INTO batches
        SELECT v_last.n + 1, b.*
        FROM activity._prune_runs_batch('t1', now() - interval '90 days', 3, v_last.last_created, v_last.last_id) AS b;
    END LOOP;
END
$do$;

SELECT results_eq(
    'SELECT array_agg(scanned ORDER BY n), sum(runs_deleted)::int, sum(traces_deleted)::int, sum(steps_deleted)::int,
            max(runs_deleted) <= 3 FROM batches',
    $$ VALUES (ARRAY[3, 3, 3, 1], 3, 3, 6, TRUE) $$,
    'the batches page through the ten old runs once each, at most 3 at a time, and delete three runs, traces, steps'
);
SELECT set_eq(
    $$ SELECT run_id FROM activity.runs WHERE tenant_id = 't1' $$,
    $$ VALUES ('failed'), ('proposal'), ('prevented'), ('evidence'), ('llm'), ('running'), ('queued'), ('recent') $$,
    't1 keeps the linked runs (incident, proposal, prevention record, evidence, incident by uuid), the live ones '
    || 'and the recent one'
);
SELECT is_empty(
    $$ SELECT run_id FROM activity.aos_traces WHERE tenant_id = 't1' AND run_id LIKE 'old-%'
       UNION ALL
       SELECT trace_id FROM activity.aos_trace_steps WHERE tenant_id = 't1' AND trace_id LIKE 'tr-old-%' $$,
    'the deleted runs'' traces and steps are gone'
);
SELECT results_eq(
    $$ SELECT (SELECT count(*) FROM activity.aos_traces WHERE tenant_id = 't1')::int,
              (SELECT count(*) FROM activity.aos_trace_steps WHERE tenant_id = 't1')::int $$,
    $$ VALUES (8, 16) $$,
    'the kept runs keep their traces and steps'
);
SELECT results_eq(
    $$ SELECT (SELECT count(*) FROM incidents.incidents WHERE tenant_id = 't1')::int,
              (SELECT count(*) FROM policies.policy_proposals WHERE tenant_id = 't1')::int,
              (SELECT count(*) FROM policies.prevention_records WHERE tenant_id = 't1')::int,
              (SELECT count(*) FROM incidents.incident_evidence WHERE tenant_id = 't1')::int $$,
    $$ VALUES (2, 2, 1, 1) $$,
    'no governance record was deleted'
);
SELECT results_eq(
    $$ SELECT run_id FROM activity.runs WHERE tenant_id = 't2' $$,
    $$ VALUES ('old-t2') $$,
    'a batch of t1 leaves t2''s old run alone'
);
SELECT results_eq(
    $$ SELECT scanned, runs_deleted FROM activity._prune_runs_batch('t1', now() - interval '90 days', 100) $$,
    $$ VALUES (7, 0) $$,
    'a second pass over t1 finds nothing left to delete'
);
SELECT results_eq(
    $$ SELECT scanned, runs_deleted, traces_deleted, steps_deleted
       FROM activity._prune_runs_batch('t1', now() - interval '0', 100) $$,
    $$ VALUES (8, 1, 1, 2) $$,
    'with a zero retention the recent completed run goes too, and still nothing linked or live'
);
SELECT throws_ok(
    $$ SELECT * FROM activity._prune_runs_batch('t1', now(), 0) $$, '22023', 'batch_size must be at least 1',
    'a batch of 0 runs is refused (22023)'
);

-- The procedure checks its input before it deletes or commits anything.
SELECT throws_ok($$ CALL aos.prune_runs('-1 day') $$, '22023',
    'older_than must be an interval of zero or more, not -1 days', 'a negative retention is refused (22023)');
SELECT throws_ok($$ CALL aos.prune_runs(NULL) $$, '22023',
    'older_than must be an interval of zero or more, not null', 'a null retention is refused (22023)');
SELECT throws_ok($$ CALL aos.prune_runs('90 days', 0) $$, '22023',
    'batch_size must be between 1 and 100000, not 0', 'a batch size of 0 is refused (22023)');
SELECT throws_ok($$ CALL aos.prune_runs('90 days', 100001) $$, '22023',
    'batch_size must be between 1 and 100000, not 100001', 'a batch size over 100000 is refused (22023)');
-- It commits each batch, so a transaction block cannot hold it.
SELECT throws_ok($$ CALL aos.prune_runs('90 days', 10) $$, '2D000', NULL,
    'CALLed inside a transaction block it stops at its first COMMIT (2D000), deleting nothing');
SELECT results_eq(
    $$ SELECT run_id FROM activity.runs WHERE tenant_id = 't2' $$,
    $$ VALUES ('old-t2') $$,
    'the refused CALL deleted nothing'
);

-- ------------------------------------------------------------------------------------ who may

CREATE TEMP TABLE callers (role_name name) ON COMMIT DROP;
INSERT INTO callers VALUES ('aos_operator'), ('aos_worker'), ('aos_api'), ('aos_scenario'), ('aos_bi');

SELECT throws_ok(format('SELECT aosdb_test.as_role(%L, %L)', role_name, $$SELECT * FROM aos.offboard_tenant('t1')$$),
                 '42501', NULL, format('%s may not offboard a tenant (42501)', role_name))
FROM callers ORDER BY role_name;
SELECT throws_ok(format('SELECT aosdb_test.as_role(%L, %L)', role_name, $$CALL aos.prune_runs()$$),
                 '42501', NULL, format('%s may not prune runs (42501)', role_name))
FROM callers ORDER BY role_name;
SELECT is_empty(
    $$
    SELECT p.oid::regprocedure::text, a.grantee::regrole::text
    FROM pg_proc AS p CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
    WHERE p.oid IN ('aos.offboard_tenant(text)'::regprocedure, 'activity._offboard_tenant(text)'::regprocedure,
                    'incidents._offboard_tenant(text)'::regprocedure, 'policies._offboard_tenant(text)'::regprocedure,
                    'aos.prune_runs(interval,integer,bigint,bigint,bigint,integer)'::regprocedure,
                    'activity._prune_runs_batch(text,timestamptz,integer,timestamptz,uuid)'::regprocedure)
      AND (a.grantee <> 'aos_owner'::regrole OR p.proowner <> 'aos_owner'::regrole OR p.prosecdef)
    $$,
    'the lifecycle routines belong to aos_owner, run as the caller, and nobody else may execute them'
);

-- ------------------------------------------------------------------------------------ offboard_tenant

-- Fill both tenants in every domain: a rule from an approved proposal, a prevention record of it,
-- a login binding, the outbox events the engines wrote.
CREATE ROLE aos_t57_login;
INSERT INTO aos.bi_logins (login, tenant_id) VALUES ('aos_t57_login', 't1');
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
VALUES ('t2', 'failed', 'agent', 'failed', 'AGENT_CRASH');
UPDATE policies.policy_proposals SET status = 'approved', reviewed_at = now(), reviewed_by = 'alice'
WHERE triggering_run_id = 'failed';
INSERT INTO activity.runs (tenant_id, run_id, agent_id, status, error_code)
VALUES ('t1', 'again', 'agent', 'failed', 'EXECUTION_TIMEOUT'), ('t2', 'again', 'agent', 'failed', 'AGENT_CRASH');

CREATE TEMP TABLE t2_before ON COMMIT DROP AS SELECT * FROM pg_temp.tenant_rows('t2');
SELECT ok(
    (SELECT count(*) FROM pg_temp.tenant_rows('t1') WHERE row_count > 0) >= 13
    AND (SELECT count(*) FROM t2_before WHERE row_count > 0) >= 10,
    'before: t1 has rows in every table with a tenant_id column (13 of them), t2 in most'
);
SELECT ok(
    EXISTS (SELECT FROM policies.prevention_records WHERE tenant_id = 't1' AND policy_rule_id IS NOT NULL)
    AND EXISTS (SELECT FROM aos.events WHERE tenant_id = 't1'),
    'before: t1 has a prevention record of its own rule and outbox events'
);

SELECT throws_ok($$ SELECT * FROM aos.offboard_tenant('nope') $$, 'P0002', 'tenant nope does not exist',
    'an unknown tenant is refused (P0002) by name');
SELECT throws_ok($$ SELECT * FROM aos.offboard_tenant(NULL) $$, '22023', 'tenant_id is required',
    'a null tenant is refused (22023)');
SELECT throws_ok($$ SELECT * FROM aos.offboard_tenant(' ') $$, '22023', 'tenant_id is required',
    'a blank tenant is refused (22023)');
SELECT throws_ok($$ SELECT * FROM aos.offboard_tenant('Not A Tenant') $$, '22023',
    'tenant_id ''Not A Tenant'' is not a tenant id (^[a-z0-9][a-z0-9._-]{0,63}$)',
    'a malformed tenant id is refused (22023)');

-- It warns that aos_t57_login is unbound now (tests/test_lifecycle.py reads the warning).
SET LOCAL client_min_messages = error;
CREATE TEMP TABLE offboarded ON COMMIT DROP AS SELECT * FROM aos.offboard_tenant('t1');
RESET client_min_messages;

SELECT is_empty(
    $$ SELECT table_name, row_count FROM pg_temp.tenant_rows('t1') WHERE row_count > 0 $$,
    'after: no table of aos, activity, incidents or policies has a row of t1'
);
SELECT set_eq(
    $$ SELECT table_name FROM offboarded $$,
    $$ SELECT t::text FROM pg_temp.tenant_tables() AS t $$,
    'offboard_tenant reports every table with a tenant_id column'
);
SELECT results_eq(
    $$ SELECT rows_deleted FROM offboarded WHERE table_name IN ('aos.tenants', 'aos.bi_logins') ORDER BY table_name $$,
    $$ VALUES (1::bigint), (1::bigint) $$,
    'the tenant row and its login binding are among what it deleted'
);
SELECT set_eq(
    'SELECT table_name, row_count, digest FROM pg_temp.tenant_rows(''t2'')',
    'SELECT table_name, row_count, digest FROM t2_before',
    'after: every row of t2 is still there, unchanged (same count and digest per table)'
);
SELECT ok(
    (SELECT count(*) FROM aos.tenants WHERE tenant_id = 't2') = 1
    AND (SELECT count(*) FROM policies.default_guardrails) = 5
    AND (SELECT count(*) FROM incidents.failure_classes) = 11,
    'the other tenant and the shared reference data stay'
);

-- The guards stay for everyone else: the owner's offboarding opened nothing.
SELECT throws_ok(
    $$SELECT aosdb_test.as_role('aos_worker', 'DELETE FROM activity.runs')$$, '42501', NULL,
    'aos_worker still cannot delete a run (42501)'
);
SELECT throws_ok(
    $$SELECT aosdb_test.as_role('aos_incident_engine', 'DELETE FROM incidents.incident_events')$$, '42501', NULL,
    'aos_incident_engine still cannot delete an incident event (42501)'
);

SELECT throws_ok($$ SELECT * FROM aos.offboard_tenant('t1') $$, 'P0002', 'tenant t1 does not exist',
    'a tenant offboarded already is unknown (P0002)');

-- A tenant table offboarding does not know (no foreign key stops it) is refused, not left behind.
CREATE TABLE activity.lifecycle_probe (tenant_id text NOT NULL);
INSERT INTO activity.lifecycle_probe VALUES ('t2');
SELECT throws_ok($$ SELECT * FROM aos.offboard_tenant('t2') $$, '55000',
    'offboard_tenant does not know activity.lifecycle_probe, which still has rows of tenant t2',
    'a table with a tenant_id column that offboarding does not know stops it (55000)');
SELECT results_eq(
    $$ SELECT (SELECT count(*) FROM aos.tenants WHERE tenant_id = 't2')::int,
              (SELECT count(*) FROM activity.runs WHERE tenant_id = 't2')::int > 0 $$,
    $$ VALUES (1, TRUE) $$,
    'and nothing of t2 was deleted'
);
DROP TABLE activity.lifecycle_probe;

SELECT * FROM finish();
ROLLBACK;
