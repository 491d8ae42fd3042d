-- aos.tick_events runs at READ COMMITTED only: under REPEATABLE READ (or
-- SERIALIZABLE) its snapshot would be the transaction's first, maybe older
-- than the newest tick, and a batch must never end before the one before it.
-- The readers need no such care. This file's transaction is REPEATABLE READ
-- from its first statement (the rest of the outbox: 39-outbox.sql).
BEGIN ISOLATION LEVEL REPEATABLE READ;

SELECT plan(3);

SELECT is(current_setting('transaction_isolation'), 'repeatable read', 'the transaction is REPEATABLE READ');

SELECT throws_ok('SELECT aos.tick_events()', '25000', NULL, 'tick_events at REPEATABLE READ: 25000');
SELECT lives_ok('SELECT * FROM aos.events_after(0, 0)', 'events_after reads at REPEATABLE READ');

SELECT * FROM finish();
ROLLBACK;
