-- Engine security posture (README.md, Roles): engine trigger functions and
-- operator actions are SECURITY DEFINER, owned by their engine role, with
-- search_path pinned to pg_catalog, pg_temp, and executable only by the roles
-- meant to call them; their internal helpers belong to the same engine role
-- and nobody else may call them; the worker API runs with the caller's
-- rights. Every one of them turns JIT off: its queries are short, and a JIT
-- compilation would cost more than it saves. The engine triggers exist, fire
-- per statement with transition tables, and in the order their names say; the
-- row triggers (the key guard, the transition guard, the approval) carry their
-- rule in a WHEN clause, so the rows that break or meet no rule cost no
-- function call.
BEGIN;

-- By name: every overload is checked, so a signature change keeps the checks.
CREATE TEMP TABLE fns (
    schema_name name, function_name name, owner name, definer boolean, executors text[], what text
) ON COMMIT DROP;
INSERT INTO fns VALUES
    -- IncidentEngine
    ('incidents', 'tg_runs__open_incidents', 'aos_incident_engine', TRUE, '{}', 'IncidentEngine trigger function'),
    ('incidents', 'acknowledge', 'aos_incident_engine', TRUE, '{aos_operator,aos_scenario}', 'operator action'),
    ('incidents', 'resolve', 'aos_incident_engine', TRUE, '{aos_operator,aos_scenario}', 'operator action'),
    ('incidents', 'add_evidence', 'aos_incident_engine', TRUE, '{aos_operator,aos_scenario}', 'operator action'),
    ('incidents', '_lock_incident', 'aos_incident_engine', FALSE, '{}', 'action helper'),
    ('incidents', '_require_actor', 'aos_incident_engine', FALSE, '{}', 'action helper'),
    ('incidents', '_record_action', 'aos_incident_engine', FALSE, '{}', 'action helper'),
    -- PolicyProposalEngine
    ('policies', 'tg_incidents__propose', 'aos_proposal_engine', TRUE, '{}', 'PolicyProposalEngine trigger function'),
    ('policies', 'approve_proposal', 'aos_proposal_engine', TRUE, '{aos_operator,aos_scenario}', 'operator action'),
    ('policies', 'reject_proposal', 'aos_proposal_engine', TRUE, '{aos_operator,aos_scenario}', 'operator action'),
    ('policies', '_lock_proposal', 'aos_proposal_engine', FALSE, '{}', 'action helper'),
    ('policies', '_review_proposal', 'aos_proposal_engine', FALSE, '{}', 'action helper'),
    -- PolicyEngine
    ('policies', 'tg_runs__enforce', 'aos_policy_engine', TRUE, '{}', 'PolicyEngine trigger function'),
    ('policies', 'tg_policy_proposals__create_rule', 'aos_policy_engine', TRUE, '{}', 'PolicyEngine trigger function'),
    ('policies', 'create_rule', 'aos_policy_engine', TRUE, '{aos_operator,aos_scenario}', 'operator action'),
    ('policies', 'retire_rule', 'aos_policy_engine', TRUE, '{aos_operator,aos_scenario}', 'operator action'),
    -- the worker API: the caller's own rights
    ('activity', 'start_run', 'aos_owner', FALSE, '{aos_scenario,aos_worker}', 'worker API'),
    ('activity', 'record_step', 'aos_owner', FALSE, '{aos_scenario,aos_worker}', 'worker API'),
    ('activity', 'finish_run', 'aos_owner', FALSE, '{aos_scenario,aos_worker}', 'worker API'),
    -- the transition guard
    ('activity', 'tg_runs__check_transition', 'aos_owner', FALSE, '{}', 'run transition guard'),
    ('activity', 'tg_worker_time_window', 'aos_owner', FALSE, '{}', 'worker clock window guard'),
    -- the key guard (0013): the engines pair old and new rows on keys that never change
    ('aos', 'tg_immutable_keys', 'aos_owner', FALSE, '{}', 'key guard'),
    -- the outbox wake-up: fires for whoever writes an event and updates the wake-up
    -- row, which only its owner may write (a trigger function needs no EXECUTE grant to fire)
    ('aos', 'tg_events__wake', 'aos_owner', TRUE, '{}', 'outbox wake-up'),
    -- the outbox's readers and retention: the caller's rights, for the owner alone
    ('aos', 'tick_events', 'aos_owner', FALSE, '{}', 'outbox ticker'),
    ('aos', 'events_after', 'aos_owner', FALSE, '{}', 'outbox reader'),
    ('aos', 'event_position', 'aos_owner', FALSE, '{}', 'outbox reader'),
    ('aos', 'prune_events', 'aos_owner', FALSE, '{}', 'outbox retention');

-- Gone: the engines inline their cores, and the outbox has no commit-time publisher.
CREATE TEMP TABLE gone (schema_name name, function_name name, what text) ON COMMIT DROP;
INSERT INTO gone VALUES
    ('incidents', '_open_incidents', 'IncidentEngine core, inlined into its trigger function'),
    ('policies', '_enforce', 'PolicyEngine core, inlined into its trigger function'),
    ('aos', 'tg_events__track', 'outbox seq tracker'),
    ('aos', 'first_event_of_transaction', 'outbox publisher WHEN condition'),
    ('aos', 'tg_events__publish', 'outbox publisher');

-- Every overload of every listed function, with its name parts as pgTAP's
-- function assertions take them.
CREATE TEMP VIEW fn_parts AS
SELECT f.*, p.oid::regprocedure AS fn,
       ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) AS t)::name[] AS args,
       (SELECT c FROM unnest(p.proconfig) AS c WHERE c LIKE 'search_path=%') AS search_path_setting,
       (SELECT c FROM unnest(p.proconfig) AS c WHERE c LIKE 'jit=%') AS jit_setting
FROM fns AS f
JOIN pg_catalog.pg_namespace AS n ON n.nspname = f.schema_name
JOIN pg_catalog.pg_proc AS p ON p.pronamespace = n.oid AND p.proname = f.function_name;

CREATE TEMP TABLE trg (
    schema_name name, table_name name, trigger_name name, func_schema name, func_name name,
    on_insert boolean, on_update boolean, old_table boolean, new_table boolean, per_row boolean, before boolean
) ON COMMIT DROP;
INSERT INTO trg VALUES
    -- Before anything else: a key change is refused (0013).
    ('activity', 'runs', '_000_immutable_keys', 'aos', 'tg_immutable_keys', FALSE, TRUE, FALSE, FALSE, TRUE, TRUE),
    ('incidents', 'incidents', '_000_immutable_keys', 'aos', 'tg_immutable_keys',
     FALSE, TRUE, FALSE, FALSE, TRUE, TRUE),
    ('policies', 'policy_proposals', '_000_immutable_keys', 'aos', 'tg_immutable_keys',
     FALSE, TRUE, FALSE, FALSE, TRUE, TRUE),
    -- Before the write: a worker's timestamp outside its clock window is refused (23514).
    ('activity', 'runs', '_001_worker_time_window', 'activity', 'tg_worker_time_window',
     TRUE, TRUE, FALSE, FALSE, TRUE, TRUE),
    ('activity', 'aos_traces', '_001_worker_time_window', 'activity', 'tg_worker_time_window',
     TRUE, TRUE, FALSE, FALSE, TRUE, TRUE),
    ('activity', 'aos_trace_steps', '_001_worker_time_window', 'activity', 'tg_worker_time_window',
     TRUE, TRUE, FALSE, FALSE, TRUE, TRUE),
    -- Before the update: a forbidden change of status is refused before it is written.
    ('activity', 'runs', '_010_check_transition', 'activity', 'tg_runs__check_transition',
     FALSE, TRUE, FALSE, FALSE, TRUE, TRUE),
    ('activity', 'runs', '_100_policy_engine_insert', 'policies', 'tg_runs__enforce',
     TRUE, FALSE, FALSE, TRUE, FALSE, FALSE),
    ('activity', 'runs', '_100_policy_engine_update', 'policies', 'tg_runs__enforce',
     FALSE, TRUE, TRUE, TRUE, FALSE, FALSE),
    ('activity', 'runs', '_200_incident_engine_insert', 'incidents', 'tg_runs__open_incidents',
     TRUE, FALSE, FALSE, TRUE, FALSE, FALSE),
    ('activity', 'runs', '_200_incident_engine_update', 'incidents', 'tg_runs__open_incidents',
     FALSE, TRUE, TRUE, TRUE, FALSE, FALSE),
    ('incidents', 'incidents', '_100_proposal_engine', 'policies', 'tg_incidents__propose',
     TRUE, FALSE, FALSE, TRUE, FALSE, FALSE),
    -- Per row, without transition tables: its WHEN clause (row_trg) keeps the
    -- PolicyProposalEngine's count updates from firing it at all.
    ('policies', 'policy_proposals', '_100_policy_engine_rule_from_approval', 'policies',
     'tg_policy_proposals__create_rule', FALSE, TRUE, FALSE, FALSE, TRUE, FALSE),
    ('aos', 'events', '_900_wake', 'aos', 'tg_events__wake', TRUE, FALSE, FALSE, FALSE, FALSE, FALSE);

-- The row triggers: the columns whose UPDATE fires them, and their WHEN clause.
CREATE TEMP TABLE row_trg (table_name regclass, trigger_name name, columns text[], condition text, what text)
    ON COMMIT DROP;
INSERT INTO row_trg VALUES
    -- Any UPDATE may name a key (SET id = id): the WHEN clause, not UPDATE OF, decides.
    ('activity.runs', '_000_immutable_keys', '{}',
     $$(((old.tenant_id IS DISTINCT FROM new.tenant_id) OR (old.id IS DISTINCT FROM new.id) $$
     || $$OR (old.run_id IS DISTINCT FROM new.run_id)))$$,
     'only when a key of a run changes'),
    ('incidents.incidents', '_000_immutable_keys', '{}',
     $$(((old.tenant_id IS DISTINCT FROM new.tenant_id) OR (old.id IS DISTINCT FROM new.id) $$
     || $$OR (old.source_run_id IS DISTINCT FROM new.source_run_id) $$
     || $$OR (old.llm_run_id IS DISTINCT FROM new.llm_run_id)))$$,
     'only when a key of an incident changes'),
    ('policies.policy_proposals', '_000_immutable_keys', '{}',
     $$(((old.tenant_id IS DISTINCT FROM new.tenant_id) OR (old.id IS DISTINCT FROM new.id) $$
     || $$OR (old.triggering_incident_id IS DISTINCT FROM new.triggering_incident_id) $$
     || $$OR (old.triggering_run_id IS DISTINCT FROM new.triggering_run_id)))$$,
     'only when a key of a proposal changes'),
    -- A worker's row within the default window, in a session that set no window, costs no call.
    ('activity.runs', '_001_worker_time_window', '{created_at,started_at,completed_at}',
     $$((pg_has_role(CURRENT_USER, 'aos_worker'::name, 'USAGE'::text) $$
     || $$AND (NOT pg_has_role(CURRENT_USER, 'aos_owner'::name, 'USAGE'::text)) $$
     || $$AND ((COALESCE(current_setting('aos.timestamp_window'::text, true), ''::text) <> ''::text) $$
     || $$OR ((new.created_at < (now() - '1 day'::interval)) OR (new.created_at > (now() + '1 day'::interval))) $$
     || $$OR ((new.started_at < (now() - '1 day'::interval)) OR (new.started_at > (now() + '1 day'::interval))) $$
     || $$OR ((new.completed_at < (now() - '1 day'::interval)) OR (new.completed_at > (now() + '1 day'::interval))))))$$,
     'only for a worker, and only when a timestamp is outside 1 day of now or the session set a window'),
    ('activity.runs', '_010_check_transition', '{status}',
     $$(((old.state = 'completed'::text) AND (new.status IS DISTINCT FROM old.status)))$$,
     'only when the status of a completed run changes'),
    -- A storm updates a pending proposal's count at every statement: that must cost no trigger call.
    ('policies.policy_proposals', '_100_policy_engine_rule_from_approval', '{status}',
     $$(((new.status = 'approved'::text) AND (old.status <> 'approved'::text)))$$,
     'only when a proposal becomes approved');

SELECT plan(
    (SELECT count(*)::int FROM fns)
    + (SELECT count(*)::int FROM gone)
    + (SELECT count(*)::int FROM fn_parts) * 5
    + 1     -- jit off, catalog-wide
    + (SELECT count(*)::int FROM trg) * 2
    + 3     -- firing order on activity.runs, the row triggers
    + (SELECT count(*)::int FROM row_trg) * 2
);

-- ------------------------------------------------------------- functions
SELECT has_function(f.schema_name, f.function_name, format('%s.%s (%s) exists', f.schema_name, f.function_name, f.what))
FROM fns AS f ORDER BY f.schema_name, f.function_name;

SELECT hasnt_function(g.schema_name, g.function_name,
                      format('%s.%s (%s) is gone', g.schema_name, g.function_name, g.what))
FROM gone AS g ORDER BY g.schema_name, g.function_name;

SELECT CASE WHEN f.definer
    THEN is_definer(f.schema_name, f.function_name, f.args,
                    format('%s (%s) is SECURITY DEFINER', f.fn, f.what))
    ELSE isnt_definer(f.schema_name, f.function_name, f.args,
                      format('%s (%s) is not SECURITY DEFINER: it runs with its caller''s rights', f.fn, f.what))
    END
FROM fn_parts AS f ORDER BY f.fn::text;

SELECT function_owner_is(f.schema_name, f.function_name, f.args, f.owner,
                         format('%s (%s) is owned by %s', f.fn, f.what, f.owner))
FROM fn_parts AS f ORDER BY f.fn::text;

SELECT is(f.search_path_setting, 'search_path=pg_catalog, pg_temp',
          format('%s (%s) pins search_path to pg_catalog, pg_temp', f.fn, f.what))
FROM fn_parts AS f ORDER BY f.fn::text;

SELECT is(f.jit_setting, 'jit=off', format('%s (%s) sets jit = off', f.fn, f.what))
FROM fn_parts AS f ORDER BY f.fn::text;

-- Catalog-wide, so an engine function added later is held to it too: every
-- function an engine role owns, every trigger function and every function of
-- the outbox.
SELECT is_empty(
    $$
    SELECT p.oid::regprocedure::text
    FROM pg_catalog.pg_proc AS p
    JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api')
      AND (p.proowner IN ('aos_incident_engine'::regrole, 'aos_proposal_engine'::regrole,
                          'aos_policy_engine'::regrole)
           OR p.prorettype = 'trigger'::regtype
           OR p.oid IN ('aos.tick_events()'::regprocedure, 'aos.events_after(bigint,bigint,text,integer)'::regprocedure,
                        'aos.event_position(bigint)'::regprocedure, 'aos.prune_events(bigint,interval)'::regprocedure))
      AND NOT coalesce('jit=off' = ANY (p.proconfig), FALSE)
    $$,
    'every function owned by an engine role, every trigger function and every outbox function sets jit = off'
);

-- Who besides the owner (and superusers) may execute it, PUBLIC included.
SELECT is(
    ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END
          FROM pg_catalog.pg_proc AS p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
          WHERE p.oid = f.fn AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner
          ORDER BY 1),
    f.executors,
    format('%s (%s) is executable by %s only, not by PUBLIC', f.fn, f.what,
           coalesce(nullif(array_to_string(f.executors, ', '), ''), 'its owner'))
)
FROM fn_parts AS f ORDER BY f.fn::text;

-- -------------------------------------------------------------- triggers
SELECT trigger_is(t.schema_name, t.table_name, t.trigger_name, t.func_schema, t.func_name,
                  format('trigger %s on %s.%s calls %s.%s()', t.trigger_name, t.schema_name, t.table_name,
                         t.func_schema, t.func_name))
FROM trg AS t ORDER BY t.schema_name, t.table_name, t.trigger_name;

-- tgtype bits: 1 row, 2 before, 4 insert, 8 delete, 16 update, 32 truncate, 64 instead.
SELECT results_eq(
    format($$SELECT tg.tgtype & 1 <> 0, tg.tgtype & 2 <> 0, tg.tgtype & 64 = 0, tg.tgtype & 4 <> 0,
                    tg.tgtype & 16 <> 0, tg.tgtype & (8 | 32) = 0, tg.tgoldtable IS NOT NULL, tg.tgnewtable IS NOT NULL,
                    tg.tgenabled
             FROM pg_catalog.pg_trigger AS tg
             WHERE tg.tgrelid = %L::regclass AND tg.tgname = %L$$,
           format('%I.%I', t.schema_name, t.table_name), t.trigger_name),
    format($$VALUES (%L::boolean, %L::boolean, TRUE, %L::boolean, %L::boolean, TRUE, %L::boolean, %L::boolean,
                     'O'::"char")$$,
           t.per_row, t.before, t.on_insert, t.on_update, t.old_table, t.new_table),
    format('trigger %s on %s.%s is enabled, %s %s, FOR EACH %s, with %s', t.trigger_name,
           t.schema_name, t.table_name, CASE WHEN t.before THEN 'BEFORE' ELSE 'AFTER' END,
           CASE WHEN t.on_insert THEN 'INSERT' ELSE 'UPDATE' END,
           CASE WHEN t.per_row THEN 'ROW' ELSE 'STATEMENT' END,
           CASE WHEN t.old_table THEN 'old and new transition tables'
                WHEN t.new_table THEN 'a new transition table' ELSE 'no transition table' END)
)
FROM trg AS t ORDER BY t.schema_name, t.table_name, t.trigger_name;

-- Triggers of one event fire in name order: the key guard, the transition guard, the
-- PolicyEngine (which records what it prevented) before the IncidentEngine
-- (which skips it).
SELECT is(
    ARRAY(SELECT tgname::text FROM pg_catalog.pg_trigger
          WHERE tgrelid = 'activity.runs'::regclass AND NOT tgisinternal AND tgtype & 16 <> 0 ORDER BY tgname),
    ARRAY['_000_immutable_keys', '_001_worker_time_window', '_010_check_transition', '_100_policy_engine_update',
          '_200_incident_engine_update'],
    'UPDATE on activity.runs fires the key guard, the worker clock window, the transition guard, the PolicyEngine, '
    || 'then the IncidentEngine'
);
SELECT is(
    ARRAY(SELECT tgname::text FROM pg_catalog.pg_trigger
          WHERE tgrelid = 'activity.runs'::regclass AND NOT tgisinternal AND tgtype & 4 <> 0 ORDER BY tgname),
    ARRAY['_001_worker_time_window', '_100_policy_engine_insert', '_200_incident_engine_insert'],
    'INSERT (and COPY) on activity.runs fires the worker clock window, the PolicyEngine, then the IncidentEngine'
);
SELECT set_eq(
    $$SELECT tgrelid::regclass::text, tgname::text FROM pg_catalog.pg_trigger
      WHERE tgrelid IN ('activity.runs'::regclass, 'incidents.incidents'::regclass,
                        'policies.policy_proposals'::regclass, 'aos.events'::regclass)
        AND NOT tgisinternal AND tgtype & 1 <> 0$$,
    'SELECT table_name::text, trigger_name::text FROM row_trg',
    'the only row triggers on the tables the engines watch are the guards and the approval: '
    || 'every engine fires once per statement'
);
SELECT is(
    (SELECT ARRAY(SELECT a.attname::text FROM unnest(tg.tgattr) AS k (attnum)
                  JOIN pg_catalog.pg_attribute AS a ON a.attrelid = tg.tgrelid AND a.attnum = k.attnum)
     FROM pg_catalog.pg_trigger AS tg WHERE tg.tgrelid = r.table_name AND tg.tgname = r.trigger_name),
    r.columns,
    format('row trigger %s on %s fires on UPDATE OF %s only', r.trigger_name, r.table_name,
           array_to_string(r.columns, ', '))
)
FROM row_trg AS r ORDER BY r.trigger_name, r.table_name::text;
SELECT is(
    (SELECT substring(pg_catalog.pg_get_triggerdef(tg.oid) FROM ' WHEN (.*) EXECUTE ')
     FROM pg_catalog.pg_trigger AS tg WHERE tg.tgrelid = r.table_name AND tg.tgname = r.trigger_name),
    r.condition,
    format('row trigger %s on %s calls its function %s (its WHEN clause)', r.trigger_name, r.table_name, r.what)
)
FROM row_trg AS r ORDER BY r.trigger_name, r.table_name::text;

SELECT * FROM finish();
ROLLBACK;
