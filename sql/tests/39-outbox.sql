-- The outbox's readers (migration 0010): aos.tick_events closes a batch when
-- something new is there to close; aos.events_after returns the events after
-- a position (tick, seq) in delivery order, batch by batch, every committed
-- event exactly once, even when transactions commit out of seq order;
-- aos.event_position finds a reader's position again from a seq;
-- aos.prune_events deletes old events and the ticks nobody needs any more;
-- and the indexes they read through. The wake-up is a statement trigger on
-- aos.events that claims the single row of aos.event_wakeup; only the owner
-- may call the outbox functions or write that row. (tick_events at REPEATABLE
-- READ: 39-outbox-isolation.sql; real concurrent commits and the NOTIFY:
-- tests/test_events.py.)
--
-- Everything here runs in one transaction, which never commits: no real
-- snapshot can show its events as committed. So the batches are built from
-- transactions the snapshots describe: events carry the ids (tx_id) of
-- transactions 999 to 1005 and the ticks record snapshots that saw them
-- complete in a chosen order. A batch is a function of the ticks' snapshots
-- and the events' transaction ids only.
BEGIN;

SELECT plan(65);

SELECT aos.register_tenant(t) FROM (VALUES ('t1'), ('t2')) AS v (t);

-- The outbox starts empty (the rollback at the end restores it).
DELETE FROM aos.events;
DELETE FROM aos.event_ticks;

-- ------------------------------------------------------------------- ticks

SELECT set_config('test.first_tick', aos.tick_events()::text, TRUE);
SELECT results_eq(
    'SELECT tick_id FROM aos.event_ticks',
    format('VALUES (%s::bigint)', current_setting('test.first_tick')),
    'tick_events records the first tick and returns its id'
);
SELECT is(aos.tick_events(), current_setting('test.first_tick')::bigint,
    'tick_events with nothing new returns the newest tick and records none');

-- An event of a transaction that had completed before the tick's snapshot
-- (below its xmin) is in that tick's batch already: nothing new.
INSERT INTO aos.events (event, tenant_id, subject_id, tx_id)
SELECT 'run_failed', 't1', 'seen', (pg_snapshot_xmin(t.snapshot)::text::bigint - 1)::text::xid8
FROM aos.event_ticks AS t WHERE t.tick_id = current_setting('test.first_tick')::bigint;
SELECT is(aos.tick_events(), current_setting('test.first_tick')::bigint,
    'an event of a transaction the newest tick saw completed makes no new tick');
SELECT is((SELECT count(*)::int FROM aos.event_ticks), 1, 'still one tick');

-- One of a transaction the snapshot had not seen start (at or above its xmax): new.
INSERT INTO aos.events (event, tenant_id, subject_id, tx_id)
SELECT 'run_failed', 't1', 'unseen', pg_snapshot_xmax(t.snapshot)
FROM aos.event_ticks AS t WHERE t.tick_id = current_setting('test.first_tick')::bigint;
SELECT set_config('test.second_tick', aos.tick_events()::text, TRUE);
SELECT ok(current_setting('test.second_tick')::bigint > current_setting('test.first_tick')::bigint,
    'an event of a transaction the newest tick had not seen makes a new tick, with a higher id');
SELECT is(current_setting('test.second_tick')::bigint, (SELECT max(tick_id) FROM aos.event_ticks),
    'tick_events returns the id of the tick it recorded, the newest');

-- One of a transaction that was in progress at the newest tick: new too.
DELETE FROM aos.events;
INSERT INTO aos.event_ticks (snapshot) VALUES ('1000:1005:1002');
SELECT set_config('test.crafted_tick', (SELECT max(tick_id)::text FROM aos.event_ticks), TRUE);
INSERT INTO aos.events (event, tenant_id, subject_id, tx_id) VALUES ('run_failed', 't1', 'done', '1001');
SELECT is(aos.tick_events(), current_setting('test.crafted_tick')::bigint,
    'with a snapshot 1000:1005:1002 as newest tick, an event of transaction 1001 (completed then) makes no tick');
INSERT INTO aos.events (event, tenant_id, subject_id, tx_id) VALUES ('run_failed', 't1', 'running', '1002');
SELECT ok(aos.tick_events() > current_setting('test.crafted_tick')::bigint,
    'an event of transaction 1002 (in progress at that tick) makes a new tick');

-- ---------------------------------------------------------------- batches
DELETE FROM aos.events;
DELETE FROM aos.event_ticks;

-- Ticks by name; events by name (subject_id), in the order they were inserted.
CREATE TEMP TABLE tk (name text PRIMARY KEY, tick_id bigint) ON COMMIT DROP;
CREATE TEMP TABLE ev (name text PRIMARY KEY, seq bigint) ON COMMIT DROP;

-- Transactions, and what each tick saw of them:
--   999        completed before k0
--   1000, 1002 completed before k1
--   1001       began before k1 and completed after it (in progress at k1)
--   1003       began after k1, completed before k2
--   1004       in progress at k2, completed before k3
--   1005       began after k3 (no tick has seen it complete yet)
-- 1001 wrote the first event after 999's (its seq is low) but completed late.
CREATE FUNCTION pg_temp.event(p_name text, p_tenant text, p_tx text) RETURNS void
LANGUAGE sql AS $fn$
    WITH e AS (
        INSERT INTO aos.events (event, tenant_id, subject_id, tx_id)
        VALUES ('run_failed', p_tenant, p_name, p_tx::xid8) RETURNING seq
    )
    INSERT INTO ev SELECT p_name, e.seq FROM e;
$fn$;
SELECT pg_temp.event('ancient', 't1', '999');
SELECT pg_temp.event('late-a', 't2', '1001');
SELECT pg_temp.event('a1', 't1', '1000');
SELECT pg_temp.event('b1', 't2', '1002');
-- A seq drawn and never written, as a rolled-back insert leaves it.
INSERT INTO ev VALUES ('gap', nextval(pg_get_serial_sequence('aos.events', 'seq')));
SELECT pg_temp.event('a2', 't1', '1000');
SELECT pg_temp.event('late-b', 't1', '1004');
SELECT pg_temp.event('c1', 't2', '1003');
SELECT pg_temp.event('future', 't1', '1005');

CREATE FUNCTION pg_temp.tick(p_name text, p_snapshot text) RETURNS void
LANGUAGE sql AS $fn$
    WITH t AS (INSERT INTO aos.event_ticks (snapshot) VALUES (p_snapshot::pg_snapshot) RETURNING tick_id)
    INSERT INTO tk SELECT p_name, t.tick_id FROM t;
$fn$;
SELECT pg_temp.tick('k0', '1000:1000:');
SELECT pg_temp.tick('k1', '1001:1003:1001');
SELECT pg_temp.tick('k2', '1004:1005:1004');
SELECT pg_temp.tick('k3', '1005:1005:');

-- What aos.events_after delivers, as "tick:event" in delivery order.
CREATE FUNCTION pg_temp.delivered(p_tick bigint, p_seq bigint, p_tenant text DEFAULT NULL, p_limit int DEFAULT 1000)
RETURNS text
LANGUAGE sql AS $fn$
    SELECT coalesce(string_agg(coalesce(k.name, d.tick_id::text) || ':' || d.subject_id, ' ' ORDER BY d.ord), '')
    FROM aos.events_after(p_tick, p_seq, p_tenant, p_limit)
        WITH ORDINALITY AS d (tick_id, seq, created_at, event, tenant_id, subject_id, payload, ord)
    LEFT JOIN tk AS k ON k.tick_id = d.tick_id;
$fn$;
CREATE FUNCTION pg_temp.tick_of(p_name text) RETURNS bigint LANGUAGE sql AS 'SELECT tick_id FROM tk WHERE name = p_name';
CREATE FUNCTION pg_temp.seq_of(p_name text) RETURNS bigint LANGUAGE sql AS 'SELECT seq FROM ev WHERE name = p_name';

SELECT ok(pg_temp.seq_of('late-a') < pg_temp.seq_of('a1') AND pg_temp.seq_of('late-b') < pg_temp.seq_of('c1'),
    'the fixture: late-a and late-b have lower seqs than events of transactions that completed before theirs');

SELECT is(pg_temp.delivered(0, 0), 'k0:ancient k1:a1 k1:b1 k1:a2 k2:late-a k2:c1 k3:late-b',
    'events_after (0, 0): every event of a completed transaction once, batch by batch, by seq within a batch; '
    || 'a transaction that completed late is in a later batch');
SELECT is(
    (SELECT array_agg(d.seq ORDER BY d.ord) FROM aos.events_after(0, 0)
         WITH ORDINALITY AS d (tick_id, seq, created_at, event, tenant_id, subject_id, payload, ord))
        = (SELECT array_agg(d.seq ORDER BY d.seq) FROM aos.events_after(0, 0) AS d),
    FALSE,
    'so the seqs in delivery order are not ascending'
);
SELECT is(pg_temp.delivered(pg_temp.tick_of('k1'), pg_temp.seq_of('a1')), 'k1:b1 k1:a2 k2:late-a k2:c1 k3:late-b',
    'from (k1, a1): the rest of batch k1, then the later batches');
SELECT is(pg_temp.delivered(pg_temp.tick_of('k1'), pg_temp.seq_of('a2')), 'k2:late-a k2:c1 k3:late-b',
    'from (k1, a2), the end of batch k1: the later batches, late-a included although its seq is lower');
SELECT is(pg_temp.delivered(pg_temp.tick_of('k2'), pg_temp.seq_of('late-a')), 'k2:c1 k3:late-b',
    'from (k2, late-a): only what follows it in its batch');
SELECT is(pg_temp.delivered(pg_temp.tick_of('k3'), pg_temp.seq_of('late-b')), '',
    'from the last event of the newest batch: nothing');
SELECT is(pg_temp.delivered(0, 0, 't2'), 'k1:b1 k2:late-a k2:c1',
    'p_tenant: the events of that tenant only, in the same order');
SELECT is(pg_temp.delivered(0, 0, NULL, 2), 'k0:ancient k1:a1', 'p_limit: at most that many events');
SELECT is(pg_temp.delivered(pg_temp.tick_of('k1'), pg_temp.seq_of('a1'), NULL, 3), 'k1:b1 k1:a2 k2:late-a',
    'p_limit counts across batches; a reader resumes from the last row it took');
SELECT is(pg_temp.delivered(pg_temp.tick_of('k2'), pg_temp.seq_of('late-a'), 't1'), 'k3:late-b',
    'p_tenant and a position together');

-- A transaction no tick has seen complete is delivered with the tick that does.
SELECT is(pg_temp.delivered(0, 0) LIKE '%future%', FALSE,
    'an event of a transaction the newest tick has not seen complete is not delivered yet');
-- Its position before any tick saw it names the tick to come; a ticker that rolled back leaves a
-- gap in the tick ids, and the position must still name the batch that comes next.
SELECT set_config('test.future_position',
    (SELECT p.tick_id || ',' || p.seq FROM aos.event_position(pg_temp.seq_of('future')) AS p), TRUE);
SELECT is(current_setting('test.future_position'), (pg_temp.tick_of('k3') + 1) || ',' || pg_temp.seq_of('future'),
    'event_position of an event no tick has seen yet: the next tick id and its seq');
SELECT nextval(pg_get_serial_sequence('aos.event_ticks', 'tick_id'));
SELECT pg_temp.tick('k4', '1006:1006:');
SELECT is(pg_temp.delivered(pg_temp.tick_of('k3'), pg_temp.seq_of('late-b')), 'k4:future',
    'after the next tick, it is the next batch');
SELECT is(pg_temp.delivered(split_part(current_setting('test.future_position'), ',', 1)::bigint,
                            split_part(current_setting('test.future_position'), ',', 2)::bigint), '',
    'resuming from that position after the next tick took a later id does not deliver the event again');

SELECT throws_ok('SELECT * FROM aos.events_after(NULL, 0)', '22023', NULL, 'events_after without a tick: 22023');
SELECT throws_ok('SELECT * FROM aos.events_after(0, NULL)', '22023', NULL, 'events_after without a seq: 22023');
SELECT throws_ok('SELECT * FROM aos.events_after(0, 0, NULL, 0)', '22023', NULL, 'events_after with limit 0: 22023');
SELECT throws_ok('SELECT * FROM aos.events_after(0, 0, NULL, NULL)', '22023', NULL,
    'events_after with a null limit: 22023');

-- --------------------------------------------------------------- positions
SELECT results_eq(
    format('SELECT * FROM aos.event_position(%s)', pg_temp.seq_of('c1')),
    format('VALUES (%s::bigint, %s::bigint)', pg_temp.tick_of('k2'), pg_temp.seq_of('c1')),
    'event_position of an event: its batch and its seq'
);
SELECT results_eq(
    format('SELECT * FROM aos.event_position(%s)', pg_temp.seq_of('late-a')),
    format('VALUES (%s::bigint, %s::bigint)', pg_temp.tick_of('k2'), pg_temp.seq_of('late-a')),
    'event_position of an event that completed late: the later batch it was delivered in'
);
SELECT is(
    pg_temp.delivered(pos.tick_id, pos.seq), 'k1:a2 k2:late-a k2:c1 k3:late-b k4:future',
    'resuming from event_position(b1) delivers exactly what followed b1'
)
FROM aos.event_position(pg_temp.seq_of('b1')) AS pos;
SELECT results_eq(
    format('SELECT * FROM aos.event_position(%s)', pg_temp.seq_of('gap')),
    format('VALUES (%s::bigint, %s::bigint)', pg_temp.tick_of('k1'), pg_temp.seq_of('gap')),
    'event_position of a seq that was never written: the batch of the newest event before it (b1)'
);
SELECT results_eq(
    format('SELECT * FROM aos.event_position(%s)', pg_temp.seq_of('future') + 5000),
    format('VALUES (%s::bigint, %s::bigint)', pg_temp.tick_of('k4'), pg_temp.seq_of('future') + 5000),
    'event_position of a seq far beyond the newest event: the position of the newest event'
);
SELECT results_eq(
    format('SELECT * FROM aos.event_position(%s)', pg_temp.seq_of('ancient') - 1),
    'VALUES (0::bigint, 0::bigint)',
    'event_position of a seq before every event of the outbox: (0, 0)'
);
SELECT results_eq('SELECT * FROM aos.event_position(0)', 'VALUES (0::bigint, 0::bigint)',
    'event_position(0): (0, 0)');
SELECT throws_ok('SELECT * FROM aos.event_position(-1)', '22023', NULL, 'event_position of a negative seq: 22023');
SELECT throws_ok('SELECT * FROM aos.event_position(NULL)', '22023', NULL, 'event_position of a null seq: 22023');

-- --------------------------------------------------------------- retention
SELECT throws_ok('SELECT * FROM aos.prune_events()', '22023', NULL, 'prune_events with neither argument: 22023');
SELECT throws_ok($$SELECT * FROM aos.prune_events(10, '1 day')$$, '22023', NULL,
    'prune_events with both arguments: 22023');
SELECT throws_ok('SELECT * FROM aos.prune_events(p_before_seq => -1)', '22023', NULL,
    'prune_events before a negative seq: 22023');
SELECT throws_ok($$SELECT * FROM aos.prune_events(p_older_than => '-1 day')$$, '22023', NULL,
    'prune_events with a negative age: 22023');

-- Before a2: ancient, late-a, a1 and b1 go. The oldest transaction kept is
-- 1000 (a2): k0 saw none of the kept events and bounds the first batch, so
-- every tick stays.
SELECT results_eq(
    format('SELECT * FROM aos.prune_events(p_before_seq => %s)', pg_temp.seq_of('a2')),
    'VALUES (4::bigint, 0::bigint)',
    'prune_events(p_before_seq => a2) deletes the 4 events before a2 and no tick'
);
SELECT is(pg_temp.delivered(0, 0), 'k1:a2 k2:c1 k3:late-b k4:future',
    'the kept events are delivered in the same batches as before');
SELECT results_eq(
    format('SELECT * FROM aos.event_position(%s)', pg_temp.seq_of('b1')),
    'VALUES (0::bigint, 0::bigint)',
    'event_position of a pruned seq with nothing kept before it: (0, 0), so a reader restarts at the oldest kept'
);

-- Before late-b: a2 goes. The oldest transaction kept is 1003 (c1): k1 is the
-- newest tick that saw none of the kept events; k0 is needed no more.
SELECT results_eq(
    format('SELECT * FROM aos.prune_events(p_before_seq => %s)', pg_temp.seq_of('late-b')),
    'VALUES (1::bigint, 1::bigint)',
    'prune_events(p_before_seq => late-b) deletes a2 and the one tick before the boundary tick'
);
SELECT is(
    ARRAY(SELECT k.name FROM aos.event_ticks AS t JOIN tk AS k USING (tick_id) ORDER BY t.tick_id),
    ARRAY['k1', 'k2', 'k3', 'k4'],
    'the ticks kept: k1, the newest that saw none of the kept events, and all later ones'
);
SELECT is(pg_temp.delivered(0, 0), 'k2:c1 k3:late-b k4:future',
    'the kept events are still delivered in their batches');

-- By age: only c1 was written more than a day ago.
UPDATE aos.events SET created_at = now() - interval '2 days' WHERE subject_id = 'c1';
SELECT results_eq(
    $$SELECT * FROM aos.prune_events(p_older_than => '1 day')$$,
    'VALUES (1::bigint, 0::bigint)',
    'prune_events(p_older_than => 1 day) deletes the events written more than a day ago'
);
SELECT is(pg_temp.delivered(0, 0), 'k3:late-b k4:future', 'the younger events are kept');

-- Everything: only the newest tick stays, to bound the next batch.
SELECT results_eq(
    format('SELECT * FROM aos.prune_events(p_before_seq => %s)', pg_temp.seq_of('future') + 1),
    'VALUES (2::bigint, 3::bigint)',
    'pruning every event deletes every tick but the newest'
);
SELECT is(ARRAY(SELECT k.name FROM aos.event_ticks AS t JOIN tk AS k USING (tick_id)), ARRAY['k4'],
    'k4 is the one tick left');

-- ----------------------------------------------------------- transactions
-- The batch of an event is its top-level transaction's: an event written in
-- a subtransaction carries the top-level transaction id too.
SAVEPOINT sub;
INSERT INTO aos.events (event, tenant_id, subject_id) VALUES ('run_failed', 't1', 'in-savepoint');
RELEASE SAVEPOINT sub;
SELECT is((SELECT tx_id FROM aos.events WHERE subject_id = 'in-savepoint'), pg_current_xact_id(),
    'an event written in a subtransaction carries the top-level transaction id');

-- ---------------------------------------------------------------- wake-up
SELECT is((SELECT count(*)::int FROM aos.event_wakeup WHERE channel = 'aos_events'), 1,
    'aos.event_wakeup holds its one row, for channel aos_events');
SELECT is((SELECT count(*)::int FROM aos.event_wakeup), 1, 'and no other');

-- The engines write events without any right on the wake-up row: the trigger
-- claims it with its owner's rights.
UPDATE aos.event_wakeup SET notified_at = '-infinity', min_interval = interval '1 hour';
SET LOCAL ROLE aos_incident_engine;
INSERT INTO aos.events (event, tenant_id, subject_id) VALUES ('run_failed', 't1', 'wake-1');
RESET ROLE;
SELECT set_config('test.notified_at', (SELECT notified_at::text FROM aos.event_wakeup), TRUE);
SELECT ok(current_setting('test.notified_at')::timestamptz > '-infinity',
    'an event written by an engine claims the wake-up row (its NOTIFY goes out at commit)');
SET LOCAL ROLE aos_policy_engine;
INSERT INTO aos.events (event, tenant_id, subject_id) VALUES ('run_failed', 't1', 'wake-2');
RESET ROLE;
SELECT is((SELECT notified_at::text FROM aos.event_wakeup), current_setting('test.notified_at'),
    'an event written within min_interval of the last claim does not claim it again');

SELECT trigger_is('aos', 'events', '_900_wake', 'aos', 'tg_events__wake',
    'trigger _900_wake on aos.events calls aos.tg_events__wake()');
SELECT results_eq(
    $$SELECT tg.tgtype, tg.tgenabled, tg.tgnewtable IS NULL, p.prosecdef, p.proowner::regrole::text,
             p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp', 'jit=off']
      FROM pg_catalog.pg_trigger AS tg JOIN pg_catalog.pg_proc AS p ON p.oid = tg.tgfoid
      WHERE tg.tgrelid = 'aos.events'::regclass AND tg.tgname = '_900_wake'$$,
    $$VALUES (4::smallint, 'O'::"char", TRUE, TRUE, 'aos_owner', TRUE)$$,
    '_900_wake: AFTER INSERT FOR EACH STATEMENT, enabled; its function SECURITY DEFINER, owned by aos_owner, '
    || 'search_path pinned, jit off'
);
SELECT is(
    ARRAY(SELECT tgname::text FROM pg_catalog.pg_trigger WHERE tgrelid = 'aos.events'::regclass AND NOT tgisinternal),
    ARRAY['_900_wake'],
    'aos.events has no trigger but _900_wake'
);

-- ---------------------------------------------------------------- indexes
-- A batch is found by transaction id; a resuming reader by seq, which follows
-- insert order, so a BRIN index serves it at next to no cost to writers.
SELECT set_eq(
    $$SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_catalog.pg_index
      WHERE indrelid IN ('aos.events'::regclass, 'aos.event_ticks'::regclass)$$,
    $$VALUES ('aos.events_pkey', 'CREATE UNIQUE INDEX events_pkey ON aos.events USING btree (tenant_id, seq)'),
             ('aos.events_tx_id_idx', 'CREATE INDEX events_tx_id_idx ON aos.events USING btree (tx_id)'),
             ('aos.events_seq_brin', 'CREATE INDEX events_seq_brin ON aos.events USING brin (seq) '
                                     'WITH (pages_per_range=''16'', autosummarize=''on'')'),
             ('aos.event_ticks_pkey', 'CREATE UNIQUE INDEX event_ticks_pkey ON aos.event_ticks USING btree (tick_id)'),
             ('aos.event_ticks_xmax_idx', 'CREATE INDEX event_ticks_xmax_idx ON aos.event_ticks '
                                          'USING btree (pg_snapshot_xmax(snapshot))')$$,
    'the outbox''s indexes: by transaction id, BRIN on seq (no btree on seq any more), ticks by their snapshot''s xmax'
);
-- 0011 builds its indexes CONCURRENTLY: a failed build would leave an invalid one behind.
SELECT is_empty(
    $$SELECT i.indexrelid::regclass FROM pg_catalog.pg_index AS i
      JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
      JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
      WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api') AND NOT (i.indisvalid AND i.indisready)$$,
    'every index of the five schemas is valid and ready'
);

-- ----------------------------------------------------------------- rights
-- The outbox functions run as their caller; only the owner (and superusers,
-- such as aosdb watch's connection) may call them.
SELECT is_empty(
    $$
    SELECT r.rolname, f.fn FROM pg_catalog.pg_roles AS r
    CROSS JOIN (VALUES ('aos.tick_events()'), ('aos.events_after(bigint,bigint,text,integer)'),
                       ('aos.event_position(bigint)'), ('aos.prune_events(bigint,interval)')) AS f (fn)
    WHERE r.rolname IN (SELECT role_name FROM aos.contract_roles WHERE role_name <> 'aos_owner')
      AND has_function_privilege(r.oid, f.fn::regprocedure, 'EXECUTE')
    $$,
    'no role of the contract but aos_owner may execute tick_events, events_after, event_position or prune_events'
);
SELECT is_empty(
    $$
    SELECT r.rolname, p.privilege FROM pg_catalog.pg_roles AS r
    CROSS JOIN (VALUES ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE')) AS p (privilege)
    WHERE r.rolname IN (SELECT role_name FROM aos.contract_roles WHERE role_name <> 'aos_owner')
      AND (has_table_privilege(r.oid, 'aos.event_wakeup', p.privilege)
           OR has_table_privilege(r.oid, 'aos.event_ticks', p.privilege))
    $$,
    'no role of the contract but aos_owner may write aos.event_wakeup or aos.event_ticks'
);
SET LOCAL ROLE aos_incident_engine;
SELECT throws_ok('SELECT aos.tick_events()', '42501', NULL, 'an engine cannot call tick_events (42501)');
SELECT throws_ok('UPDATE aos.event_wakeup SET notified_at = now()', '42501', NULL,
    'an engine cannot write the wake-up row itself (42501)');
RESET ROLE;
SET LOCAL ROLE aos_api;
SELECT throws_ok('SELECT * FROM aos.events_after(0, 0)', '42501', NULL, 'aos_api cannot call events_after (42501)');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
