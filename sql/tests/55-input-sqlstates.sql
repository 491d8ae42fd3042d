-- Bad inputs to the worker API, the operator actions and the facades: each
-- raises 22023 (or the documented P0002 / PT404 / 28000) with a one-line message
-- naming the field, a short context, and writes nothing. Per function and
-- parameter: null required, wrong JSON type, text that no cast accepts,
-- out of range, huge strings, deep and oversized JSON. A value that cannot
-- even be bound to the parameter's type (a NUL byte, 'abc' for a uuid, a
-- jsonb literal 10,000 levels deep) is refused by PostgreSQL before the
-- function runs, with its own code; those are not listed. The operator
-- actions also take their ids as text, so that 'abc' is 22023 too.
BEGIN;

SELECT aos.register_tenant(t) FROM (VALUES ('t1'), ('t2')) AS v (t);
SELECT activity.start_run('t1', 'r-live', 'agent-a', 'goal');
SELECT activity.start_run('t1', 'r-failed', 'agent-a', 'goal');
SELECT activity.finish_run('t1', 'r-failed', 'failed', '{"error_code": "EXECUTION_TIMEOUT"}');

CREATE TEMP TABLE ids (name text PRIMARY KEY, id uuid NOT NULL);
INSERT INTO ids
SELECT 'incident', id FROM incidents.incidents WHERE tenant_id = 't1' AND source_run_id = 'r-failed'
UNION ALL SELECT 'proposal', id FROM policies.policy_proposals WHERE tenant_id = 't1';
SELECT set_config('aos.tenant_id', 't1', TRUE);
INSERT INTO ids SELECT 'rule', policies.create_rule('no shell', 'blocked_skill', '{"skills": ["shell"]}', 'block');
SELECT set_config('aos.tenant_id', '', TRUE);
GRANT SELECT ON ids TO PUBLIC;

-- Calls that must be rejected: who calls, with which tenant, the SQLSTATE,
-- and the field its message must name.
CREATE TEMP TABLE rejected (
    n serial, who name NOT NULL, tenant text, sql text NOT NULL, errcode text NOT NULL, field text NOT NULL,
    description text NOT NULL
);
GRANT SELECT ON rejected TO PUBLIC;

-- Runs each call as its role and checks the SQLSTATE; the message (one line,
-- at most 200 characters, naming the field); the context (at most 12 lines,
-- two of them this harness's: the function's own RAISE, not a statement's
-- text over dozens of lines); and that every table holds what it held before.
CREATE FUNCTION pg_temp.rejections() RETURNS SETOF text
LANGUAGE plpgsql AS $fn$
DECLARE
    c record;
    v_before text;
    v_state text;
    v_message text;
    v_context text;
BEGIN
    FOR c IN SELECT * FROM rejected ORDER BY n LOOP
        v_before := aosdb_test.state();
        v_state := NULL;
        EXECUTE format('SET LOCAL ROLE %I', c.who);
        PERFORM set_config('aos.tenant_id', coalesce(c.tenant, ''), TRUE);
        BEGIN
            EXECUTE c.sql;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT,
                                    v_context = PG_EXCEPTION_CONTEXT;
        END;
        RESET ROLE;
        PERFORM set_config('aos.tenant_id', '', TRUE);
        RETURN NEXT is(v_state, c.errcode, c.description || ': ' || c.errcode);
        RETURN NEXT ok(
            v_message ILIKE '%' || c.field || '%' AND strpos(v_message, E'\n') = 0 AND length(v_message) <= 200
            AND cardinality(string_to_array(v_context, E'\n')) <= 12,
            c.description || ': a short message naming ' || c.field
        ) || CASE WHEN v_state IS NOT NULL AND NOT (v_message ILIKE '%' || c.field || '%'
                       AND strpos(v_message, E'\n') = 0 AND length(v_message) <= 200
                       AND cardinality(string_to_array(v_context, E'\n')) <= 12)
                  THEN E'\n' || diag('message: ' || left(v_message, 300), E'\ncontext: ' || v_context) ELSE '' END;
        RETURN NEXT is(aosdb_test.state(), v_before, c.description || ': nothing written');
    END LOOP;
END
$fn$;

INSERT INTO rejected (who, tenant, sql, errcode, field, description) VALUES
    ('aos_worker', NULL, $$SELECT activity.start_run(NULL, 'r-new', 'agent-a', NULL)$$, '22023', 'tenant_id',
     'start_run: null tenant_id (was 23502)'),
    ('aos_worker', NULL, $$SELECT activity.start_run(repeat('x', 100000), 'r-new', 'agent-a', NULL)$$, '22023', 'tenant_id',
     'start_run: huge tenant_id'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', NULL, 'agent-a', NULL)$$, '22023', 'run_id',
     'start_run: null run_id'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', ' ', 'agent-a', NULL)$$, '22023', 'run_id',
     'start_run: blank run_id'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', repeat('r', 10000), 'agent-a', NULL)$$, '22023', 'run_id',
     'start_run: run_id over 200 characters (was accepted; 54000 once over the index row size)'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', NULL, NULL)$$, '22023', 'agent_id',
     'start_run: null agent_id'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', repeat('x', 100000), NULL)$$, '22023', 'agent_id',
     'start_run: huge agent_id'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', repeat('g', 70000))$$, '22023', 'goal',
     'start_run: goal over 65536 characters'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, NULL)$$, '22023', 'start_run option',
     'start_run: null options'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '[]')$$, '22023', 'start_run option',
     'start_run: options not an object'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"colour": 1}')$$, '22023', 'start_run option',
     'start_run: unknown option key'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, ('{"status": ' || repeat('[', 40) || '1' || repeat(']', 40) || '}')::jsonb)$$, '22023', 'start_run option',
     'start_run: options nested 41 levels'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, jsonb_build_object('trace_id', repeat('x', 1100000)))$$, '22023', 'start_run option',
     'start_run: options over 1 MiB'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"status": 1}')$$, '22023', 'status',
     'start_run: status a number'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"status": "failed"}')$$, '22023', 'status',
     'start_run: status terminal'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, jsonb_build_object('status', repeat('x', 100000)))$$, '22023', 'status',
     'start_run: status huge'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"started_at": "not a time"}')$$, '22023', 'started_at',
     'start_run: started_at not a timestamp'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"started_at": "294277-01-01"}')$$, '22023', 'started_at',
     'start_run: started_at beyond the timestamp range'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"started_at": "infinity"}')$$, '22023', 'started_at',
     'start_run: started_at infinite'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"started_at": 1700000000}')$$, '22023', 'started_at',
     'start_run: started_at a number'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"attempts": "three"}')$$, '22023', 'attempts',
     'start_run: attempts a string'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"attempts": 1e19}')$$, '22023', 'attempts',
     'start_run: attempts beyond bigint'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"attempts": -1}')$$, '22023', 'attempts',
     'start_run: attempts negative'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"attempts": 1.5}')$$, '22023', 'attempts',
     'start_run: attempts fractional'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"trace_id": ""}')$$, '22023', 'trace_id',
     'start_run: trace_id empty (was 23514)'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"trace_id": 7}')$$, '22023', 'trace_id',
     'start_run: trace_id a number'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, jsonb_build_object('trace_id', repeat('x', 100000)))$$, '22023', 'trace_id',
     'start_run: trace_id huge'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"is_synthetic": "maybe"}')$$, '22023', 'is_synthetic',
     'start_run: is_synthetic not a boolean (was 22P02)'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"is_synthetic": 1}')$$, '22023', 'is_synthetic',
     'start_run: is_synthetic a number'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"synthetic_scenario_id": 5}')$$, '22023', 'synthetic_scenario_id',
     'start_run: synthetic_scenario_id a number'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, '{"is_synthetic": false, "synthetic_scenario_id": "S-1"}')$$, '22023', 'synthetic_scenario_id',
     'start_run: synthetic_scenario_id on a run said not synthetic (was 23514)'),
    ('aos_worker', NULL, $$SELECT activity.start_run('t1', 'r-new', 'agent-a', NULL, jsonb_build_object('synthetic_scenario_id', repeat('x', 100000)))$$, '22023', 'synthetic_scenario_id',
     'start_run: synthetic_scenario_id huge'),
    ('aos_worker', NULL, $$SELECT activity.record_step(NULL, 'r-live', '{"skill_name": "s", "status": "success"}')$$, '22023', 'tenant_id',
     'record_step: null tenant_id'),
    ('aos_worker', NULL, $$SELECT activity.record_step(repeat('x', 100000), 'r-live', '{"skill_name": "s", "status": "success"}')$$, '22023', 'tenant_id',
     'record_step: huge tenant_id'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', NULL, '{"skill_name": "s", "status": "success"}')$$, '22023', 'run_id',
     'record_step: null run_id'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', repeat('x', 100000), '{"skill_name": "s", "status": "success"}')$$, '22023', 'run_id',
     'record_step: huge run_id'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', NULL)$$, '22023', 'step',
     'record_step: null step'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '"x"')$$, '22023', 'step',
     'record_step: step a string'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "colour": 1}')$$, '22023', 'step',
     'record_step: unknown step key'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', ('{"skill_name": "s", "status": "success", "params": {"a": ' || repeat('[', 40) || '1' || repeat(']', 40) || '}}')::jsonb)$$, '22023', 'step',
     'record_step: params nested 42 levels'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', jsonb_build_object('skill_name', 's', 'status', 'success', 'params', jsonb_build_object('blob', repeat('x', 1100000))))$$, '22023', 'step',
     'record_step: step over 1 MiB'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"status": "success"}')$$, '22023', 'skill_name',
     'record_step: skill_name missing'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": 5, "status": "success"}')$$, '22023', 'skill_name',
     'record_step: skill_name a number'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', jsonb_build_object('skill_name', repeat('x', 100000), 'status', 'success'))$$, '22023', 'skill_name',
     'record_step: skill_name huge'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s"}')$$, '22023', 'status',
     'record_step: status missing'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "done"}')$$, '22023', 'status',
     'record_step: status unknown'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": true}')$$, '22023', 'status',
     'record_step: status a boolean'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "trace_id": " "}')$$, '22023', 'trace_id',
     'record_step: trace_id blank (was 23514)'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "trace_id": []}')$$, '22023', 'trace_id',
     'record_step: trace_id an array'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', jsonb_build_object('skill_name', 's', 'status', 'success', 'trace_id', repeat('x', 100000)))$$, '22023', 'trace_id',
     'record_step: trace_id huge (was accepted; 54000 once over the index row size)'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "outcome_code": 5}')$$, '22023', 'outcome_code',
     'record_step: outcome_code a number'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', jsonb_build_object('skill_name', 's', 'status', 'success', 'outcome_code', repeat('x', 100000)))$$, '22023', 'outcome_code',
     'record_step: outcome_code huge'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "params": [1]}')$$, '22023', 'params',
     'record_step: params an array'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "cost_usd": "cheap"}')$$, '22023', 'cost_usd',
     'record_step: cost_usd a string'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "cost_usd": 1e400}')$$, '22023', 'cost_usd',
     'record_step: cost_usd beyond numeric(12, 6)'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "cost_usd": -1}')$$, '22023', 'cost_usd',
     'record_step: cost_usd negative'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "cost_usd": 0.0000001}')$$, '22023', 'cost_usd',
     'record_step: cost_usd finer than 10^-6'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "duration_ms": 1e30}')$$, '22023', 'duration_ms',
     'record_step: duration_ms beyond bigint'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "duration_ms": "1s"}')$$, '22023', 'duration_ms',
     'record_step: duration_ms a string'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "retry_count": 1e10}')$$, '22023', 'retry_count',
     'record_step: retry_count beyond integer'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "retry_count": 2.5}')$$, '22023', 'retry_count',
     'record_step: retry_count fractional'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "occurred_at": "x"}')$$, '22023', 'occurred_at',
     'record_step: occurred_at not a timestamp'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "occurred_at": "99999-01-01"}')$$, '22023', 'occurred_at',
     'record_step: occurred_at beyond the range'),
    ('aos_worker', NULL, $$SELECT activity.record_step('t1', 'r-live', '{"skill_name": "s", "status": "success", "occurred_at": 5}')$$, '22023', 'occurred_at',
     'record_step: occurred_at a number'),
    ('aos_worker', NULL, $$SELECT activity.finish_run(NULL, 'r-live', 'failed', '{}')$$, '22023', 'tenant_id',
     'finish_run: null tenant_id'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', NULL, 'failed', '{}')$$, '22023', 'run_id',
     'finish_run: null run_id'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', repeat('x', 100000), 'failed', '{}')$$, '22023', 'run_id',
     'finish_run: huge run_id'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', NULL, '{}')$$, '22023', 'status',
     'finish_run: null status'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', repeat('x', 100000), '{}')$$, '22023', 'status',
     'finish_run: huge status'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'running', '{}')$$, '22023', 'status',
     'finish_run: status not final'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'failed', NULL)$$, '22023', 'finish_run outcome',
     'finish_run: null outcome'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'failed', '[]')$$, '22023', 'finish_run outcome',
     'finish_run: outcome an array'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'failed', '{"colour": 1}')$$, '22023', 'finish_run outcome',
     'finish_run: unknown outcome key'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'failed', ('{"error_code": ' || repeat('[', 40) || '1' || repeat(']', 40) || '}')::jsonb)$$, '22023', 'finish_run outcome',
     'finish_run: outcome nested 41 levels'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'failed', jsonb_build_object('error_message', repeat('x', 1100000)))$$, '22023', 'finish_run outcome',
     'finish_run: outcome over 1 MiB'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'failed', '{"error_code": 5}')$$, '22023', 'error_code',
     'finish_run: error_code a number'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'failed', jsonb_build_object('error_code', repeat('x', 100000)))$$, '22023', 'error_code',
     'finish_run: error_code huge'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'failed', '{"error_message": {}}')$$, '22023', 'error_message',
     'finish_run: error_message an object'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'failed', jsonb_build_object('error_message', repeat('m', 70000)))$$, '22023', 'error_message',
     'finish_run: error_message over 65536 characters'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'failed', '{"input_tokens": 1e13}')$$, '22023', 'input_tokens',
     'finish_run: input_tokens over 10^12'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'failed', '{"input_tokens": "many"}')$$, '22023', 'input_tokens',
     'finish_run: input_tokens a string'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'failed', '{"output_tokens": 1e400}')$$, '22023', 'output_tokens',
     'finish_run: output_tokens beyond bigint'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'failed', '{"estimated_cost_usd": 1e7}')$$, '22023', 'estimated_cost_usd',
     'finish_run: estimated_cost_usd beyond numeric(12, 6)'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'failed', '{"estimated_cost_usd": "x"}')$$, '22023', 'estimated_cost_usd',
     'finish_run: estimated_cost_usd a string'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'failed', '{"attempts": 1e7}')$$, '22023', 'attempts',
     'finish_run: attempts over 10^6'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'failed', '{"completed_at": "x"}')$$, '22023', 'completed_at',
     'finish_run: completed_at not a timestamp'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'failed', '{"completed_at": "294277-01-01"}')$$, '22023', 'completed_at',
     'finish_run: completed_at beyond the range'),
    ('aos_worker', NULL, $$SELECT activity.finish_run('t1', 'r-live', 'failed', '{"duration_ms": -1}')$$, '22023', 'duration_ms',
     'finish_run: duration_ms negative'),
    ('aos_operator', 't1', $$SELECT incidents.acknowledge((SELECT id FROM ids WHERE name = 'incident'), NULL)$$, '22023', 'actor',
     'acknowledge: null actor'),
    ('aos_operator', 't1', $$SELECT incidents.acknowledge((SELECT id FROM ids WHERE name = 'incident'), ' ')$$, '22023', 'actor',
     'acknowledge: blank actor'),
    ('aos_operator', 't1', $$SELECT incidents.acknowledge((SELECT id FROM ids WHERE name = 'incident'), repeat('x', 100000))$$, '22023', 'actor',
     'acknowledge: huge actor'),
    ('aos_operator', 't1', $$SELECT incidents.resolve((SELECT id FROM ids WHERE name = 'incident'), repeat('x', 100000))$$, '22023', 'actor',
     'resolve: huge actor'),
    ('aos_operator', 't1', $$SELECT incidents.resolve((SELECT id FROM ids WHERE name = 'incident'), 'bob', NULL)$$, '22023', 'method',
     'resolve: null method'),
    ('aos_operator', 't1', $$SELECT incidents.resolve((SELECT id FROM ids WHERE name = 'incident'), 'bob', repeat('x', 100000))$$, '22023', 'method',
     'resolve: huge method'),
    ('aos_operator', 't1', $$SELECT incidents.resolve((SELECT id FROM ids WHERE name = 'incident'), 'bob', 'manual', repeat('n', 70000))$$, '22023', 'notes',
     'resolve: notes over 65536 characters'),
    ('aos_operator', 't1', $$SELECT incidents.add_evidence((SELECT id FROM ids WHERE name = 'incident'), NULL, '{}')$$, '22023', 'type',
     'add_evidence: null type'),
    ('aos_operator', 't1', $$SELECT incidents.add_evidence((SELECT id FROM ids WHERE name = 'incident'), repeat('x', 100000), '{}')$$, '22023', 'type',
     'add_evidence: huge type'),
    ('aos_operator', 't1', $$SELECT incidents.add_evidence((SELECT id FROM ids WHERE name = 'incident'), 'log', NULL)$$, '22023', 'payload',
     'add_evidence: null payload'),
    ('aos_operator', 't1', $$SELECT incidents.add_evidence((SELECT id FROM ids WHERE name = 'incident'), 'log', '[1]')$$, '22023', 'payload',
     'add_evidence: payload an array'),
    ('aos_operator', 't1', $$SELECT incidents.add_evidence((SELECT id FROM ids WHERE name = 'incident'), 'log', ('{"a": ' || repeat('[', 40) || '1' || repeat(']', 40) || '}')::jsonb)$$, '22023', 'payload',
     'add_evidence: payload nested 41 levels'),
    ('aos_operator', 't1', $$SELECT incidents.add_evidence((SELECT id FROM ids WHERE name = 'incident'), 'log', jsonb_build_object('line', repeat('x', 1100000)))$$, '22023', 'payload',
     'add_evidence: payload over 1 MiB'),
    ('aos_operator', 't1', $$SELECT policies.approve_proposal((SELECT id FROM ids WHERE name = 'proposal'), NULL)$$, '22023', 'reviewer',
     'approve_proposal: null reviewer'),
    ('aos_operator', 't1', $$SELECT policies.approve_proposal((SELECT id FROM ids WHERE name = 'proposal'), repeat('x', 100000))$$, '22023', 'reviewed_by',
     'approve_proposal: huge reviewer'),
    ('aos_operator', 't1', $$SELECT policies.approve_proposal((SELECT id FROM ids WHERE name = 'proposal'), 'bob', repeat('n', 70000))$$, '22023', 'notes',
     'approve_proposal: notes over 65536 characters'),
    ('aos_operator', 't1', $$SELECT policies.reject_proposal((SELECT id FROM ids WHERE name = 'proposal'), ' ')$$, '22023', 'reviewer',
     'reject_proposal: blank reviewer'),
    ('aos_operator', 't1', $$SELECT policies.reject_proposal((SELECT id FROM ids WHERE name = 'proposal'), 'bob', repeat('n', 70000))$$, '22023', 'notes',
     'reject_proposal: notes over 65536 characters'),
    ('aos_operator', 't1', $$SELECT policies.create_rule(NULL, 'blocked_skill', '{"skills": ["shell"]}', 'block')$$, '22023', 'name',
     'create_rule: null name'),
    ('aos_operator', 't1', $$SELECT policies.create_rule(repeat('x', 100000), 'blocked_skill', '{"skills": ["shell"]}', 'block')$$, '22023', 'name',
     'create_rule: huge name'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('n', NULL, '{"skills": ["shell"]}', 'block')$$, '22023', 'rule type',
     'create_rule: null rule type'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('n', repeat('x', 100000), '{"skills": ["shell"]}', 'block')$$, '22023', 'rule type',
     'create_rule: huge rule type'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('n', 'blocked_skill', NULL, 'block')$$, '22023', 'conditions',
     'create_rule: null conditions'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('n', 'blocked_skill', ('{"skills": ' || repeat('[', 40) || '1' || repeat(']', 40) || '}')::jsonb, 'block')$$, '22023', 'conditions',
     'create_rule: conditions nested 41 levels'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('n', 'blocked_skill', jsonb_build_object('skills', jsonb_build_array(repeat('x', 1100000))), 'block')$$, '22023', 'conditions',
     'create_rule: conditions over 1 MiB'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('n', 'max_value', '{"metric": "input_tokens", "max": "ten"}', 'block')$$, '22023', 'conditions',
     'create_rule: conditions of the wrong shape'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('n', 'blocked_skill', '{"skills": ["shell"]}', NULL)$$, '22023', 'enforcement',
     'create_rule: null enforcement'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('n', 'blocked_skill', '{"skills": ["shell"]}', repeat('x', 100000))$$, '22023', 'enforcement',
     'create_rule: huge enforcement'),
    ('aos_operator', 't1', $$SELECT policies.create_rule('n', 'blocked_skill', '{"skills": ["shell"]}', 'block', repeat('x', 100000))$$, '22023', 'agent_id',
     'create_rule: huge agent_id'),
    ('aos_operator', 't1', $$SELECT policies.retire_rule((SELECT id FROM ids WHERE name = 'rule'), NULL)$$, '22023', 'actor',
     'retire_rule: null actor'),
    ('aos_operator', 't1', $$SELECT policies.retire_rule((SELECT id FROM ids WHERE name = 'rule'), repeat('x', 100000))$$, '22023', 'actor',
     'retire_rule: huge actor'),
    ('aos_operator', 't1', $$SELECT incidents.acknowledge('abc', 'bob')$$, '22023', 'incident_id',
     'acknowledge: an id that is not a uuid (was 22P02)'),
    ('aos_operator', 't1', $$SELECT incidents.resolve(repeat('x', 100000), 'bob')$$, '22023', 'incident_id',
     'resolve: a huge id that is not a uuid (was 22P02)'),
    ('aos_operator', 't1', $$SELECT incidents.add_evidence('1', 'log', '{}')$$, '22023', 'incident_id',
     'add_evidence: an id that is not a uuid (was 22P02)'),
    ('aos_operator', 't1', $$SELECT policies.approve_proposal('not-a-uuid', 'bob')$$, '22023', 'proposal_id',
     'approve_proposal: an id that is not a uuid (was 22P02)'),
    ('aos_operator', 't1', $$SELECT policies.reject_proposal('', 'bob')$$, '22023', 'proposal_id',
     'reject_proposal: an empty id (was 22P02)'),
    ('aos_operator', 't1', $$SELECT policies.retire_rule(E'x\ny', 'bob')$$, '22023', 'rule_id',
     'retire_rule: an id on two lines (was 22P02)'),
    ('aos_operator', 't1', $$SELECT incidents.acknowledge(NULL::text, 'bob')$$, 'P0002', 'incident',
     'acknowledge: a null text id is not found'),
    ('aos_api', 't1', $$SELECT api.activity_runs(status => 'nope')$$, '22023', 'status',
     'activity_runs: status not a known value'),
    ('aos_api', 't1', $$SELECT api.activity_runs(state => 'done')$$, '22023', 'state',
     'activity_runs: state not a known value'),
    ('aos_api', 't1', $$SELECT api.activity_runs(status => repeat('x', 100000))$$, '22023', 'status',
     'activity_runs: a huge status'),
    ('aos_api', 't1', $$SELECT api.activity_runs(page_size => 0)$$, '22023', 'page_size',
     'activity_runs: page_size 0'),
    ('aos_api', 't1', $$SELECT api.activity_runs(page_size => 201)$$, '22023', 'page_size',
     'activity_runs: page_size 201'),
    ('aos_api', 't1', $$SELECT api.activity_runs(page_size => NULL)$$, '22023', 'page_size',
     'activity_runs: a null page_size'),
    ('aos_api', 't1', $$SELECT api.activity_runs(page_offset => -1)$$, '22023', 'page_offset',
     'activity_runs: a negative page_offset'),
    ('aos_api', 't1', $$SELECT api.activity_runs(page_offset => NULL)$$, '22023', 'page_offset',
     'activity_runs: a null page_offset'),
    ('aos_api', 't1', $$SELECT api.incidents(severity => 'nope')$$, '22023', 'severity',
     'incidents: severity not a known value'),
    ('aos_api', 't1', $$SELECT api.incidents(lifecycle_state => 'open')$$, '22023', 'lifecycle_state',
     'incidents: lifecycle_state not a known value'),
    ('aos_api', 't1', $$SELECT api.incidents(topic => 'acked')$$, '22023', 'topic',
     'incidents: topic not a known value'),
    ('aos_api', 't1', $$SELECT api.incidents(cause_type => 'llm')$$, '22023', 'cause_type',
     'incidents: cause_type not a known value'),
    ('aos_api', 't1', $$SELECT api.incidents(page_size => 0)$$, '22023', 'page_size',
     'incidents: page_size 0'),
    ('aos_api', 't1', $$SELECT api.incidents(page_offset => -1)$$, '22023', 'page_offset',
     'incidents: a negative page_offset'),
    ('aos_api', 't1', $$SELECT api.policy_proposals(status => 'nope')$$, '22023', 'status',
     'policy_proposals: status not a known value'),
    ('aos_api', 't1', $$SELECT api.policy_proposals(proposal_type => 'speed_policy')$$, '22023', 'proposal_type',
     'policy_proposals: proposal_type not a known value'),
    ('aos_api', 't1', $$SELECT api.policy_proposals(page_size => 201)$$, '22023', 'page_size',
     'policy_proposals: page_size 201'),
    ('aos_api', 't1', $$SELECT api.policy_proposals(page_offset => NULL)$$, '22023', 'page_offset',
     'policy_proposals: a null page_offset'),
    ('aos_api', 't1', $$SELECT api.activity_run(repeat('x', 100000))$$, 'PT404', 'run',
     'activity_run: a huge run_id is not found (PT404)'),
    ('aos_api', 't1', $$SELECT api.activity_run_evidence(repeat('x', 100000))$$, 'PT404', 'run',
     'activity_run_evidence: a huge run_id is not found (PT404)'),
    ('aos_api', 't1', $$SELECT api.incident(NULL)$$, 'PT404', 'incident',
     'incident: a null id is not found (PT404)'),
    ('aos_api', 't1', $$SELECT api.incident_evidence(NULL)$$, 'PT404', 'incident',
     'incident_evidence: a null id is not found (PT404)'),
    ('aos_api', 't1', $$SELECT api.policy_proposal(NULL)$$, 'PT404', 'proposal',
     'policy_proposal: a null id is not found (PT404)'),
    ('aos_api', NULL, $$SELECT api.activity_runs()$$, '28000', 'tenant',
     'activity_runs: no tenant set'),
    ('aos_operator', 't1', $$SELECT incidents.resolve(NULL, 'bob')$$, 'P0002', 'incident',
     'resolve: a null id is not found');

SELECT plan(3 * (SELECT count(*)::int FROM rejected) + 2);

SELECT * FROM pg_temp.rejections();

-- The bounds are inclusive: the largest accepted values go through.
SET LOCAL ROLE aos_worker;
SELECT lives_ok(
    $$SELECT activity.start_run('t1', repeat('r', 200), repeat('a', 200), repeat('g', 65536),
        jsonb_build_object('trace_id', repeat('t', 200), 'attempts', 1000000,
                           'status', 'running') || ('{"synthetic_scenario_id": null, "is_synthetic": false}')::jsonb)$$,
    'start_run accepts ids of 200 characters, a goal of 65536 and attempts of 10^6'
);
RESET ROLE;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SET LOCAL ROLE aos_api;
SELECT lives_ok(
    $$SELECT api.activity_runs(page_size => 200, page_offset => 2147483647)$$,
    'an offset of 2^31 - 1 pages past the end instead of overflowing'
);
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
