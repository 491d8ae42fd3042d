-- The outbox aos.events: how writers wake listeners, and how readers take events exactly once.
--
-- Writers only INSERT INTO aos.events, inside the causing transaction, and never wait for each
-- other: seq is drawn at insert, so commits can be out of seq order. Readers therefore never
-- read "seq > N". They read in batches bounded by transaction snapshots, as PgQ consumers do:
-- aos.tick_events() records pg_current_snapshot() as a tick, and batch N holds the events of
-- every transaction visible in tick N's snapshot but not in tick N-1's. A transaction that
-- commits late simply lands in a later batch; none is ever skipped or delivered twice. A
-- reader's position is (tick, seq); aos.event_position(seq) recovers it from the last event a
-- listener printed.

-- ---------------------------------------------------------------------------------- the wake-up

-- PostgreSQL's NOTIFY takes a cluster-wide lock from pre-commit to the end of the commit, so
-- notifying transactions commit one at a time. Only the first transaction to write events after
-- aos.event_wakeup.min_interval notifies: it claims the row with SKIP LOCKED (nobody waits for
-- it) and NOTIFY goes out when it commits. The payload is empty: a wake-up carries no tenant or
-- id (LISTEN needs no privilege); listeners read the outbox, under its row-level security.
-- SECURITY DEFINER (owned by aos_owner, who owns aos.event_wakeup): the engines hold no grant on it.
CREATE OR REPLACE FUNCTION aos.tg_events__wake() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    -- Under load most writers find the interval not over yet: a plain read, no lock, no write.
    IF NOT EXISTS (
        SELECT FROM aos.event_wakeup AS c
        WHERE c.channel = 'aos_events' AND c.notified_at <= clock_timestamp() - c.min_interval
    ) THEN
        RETURN NULL;
    END IF;
    UPDATE aos.event_wakeup AS w SET notified_at = clock_timestamp()
    WHERE w.channel = (
        SELECT c.channel FROM aos.event_wakeup AS c
        WHERE c.channel = 'aos_events' AND c.notified_at <= clock_timestamp() - c.min_interval
        FOR UPDATE SKIP LOCKED
    );
    IF FOUND THEN
        NOTIFY aos_events;
    END IF;
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION aos.tg_events__wake() IS
    'Statement trigger on aos.events: sends NOTIFY aos_events (empty payload, delivered at commit) when this is the '
    'first transaction to write events since aos.event_wakeup.min_interval; the others skip it without waiting.';

CREATE OR REPLACE TRIGGER _900_wake AFTER INSERT ON aos.events
FOR EACH STATEMENT EXECUTE FUNCTION aos.tg_events__wake();

-- --------------------------------------------------------------------------------------- ticks

CREATE OR REPLACE FUNCTION aos.tick_events() RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '10s'
SET jit = off
AS $fn$
DECLARE
    v_last aos.event_ticks;
    v_tick bigint;
BEGIN
    -- Under REPEATABLE READ the snapshot would be the transaction's first, maybe older than the last tick.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'aos.tick_events() must run at READ COMMITTED, not %', current_setting('transaction_isolation')
            USING ERRCODE = '25000';
    END IF;
    -- One ticker at a time (the lock conflicts with itself, not with readers), and the snapshot is
    -- taken after the lock: every tick sees at least what the one before it saw.
    LOCK TABLE aos.event_ticks IN SHARE ROW EXCLUSIVE MODE;
    SELECT t.* INTO v_last FROM aos.event_ticks AS t ORDER BY t.tick_id DESC LIMIT 1;
    IF FOUND AND NOT EXISTS (
        SELECT FROM aos.events AS e WHERE e.tx_id >= pg_snapshot_xmax(v_last.snapshot)
        UNION ALL
        SELECT FROM aos.events AS e WHERE e.tx_id = ANY (ARRAY(SELECT pg_snapshot_xip(v_last.snapshot)))
    ) THEN
        RETURN v_last.tick_id;  -- nothing committed since: the last tick still ends the newest batch
    END IF;
    INSERT INTO aos.event_ticks (snapshot) VALUES (pg_current_snapshot()) RETURNING tick_id INTO v_tick;
    RETURN v_tick;
END
$fn$;
COMMENT ON FUNCTION aos.tick_events() IS
    'Closes the current batch of the outbox: records pg_current_snapshot() as a new tick when events were committed '
    'since the last one, and returns the newest tick id. Run by readers (aosdb watch) or a schedule (pg_cron). '
    'Errors: 25000 outside READ COMMITTED, 55P03 another ticker held the lock for 10 s.';

-- ------------------------------------------------------------------------------------- reading

CREATE OR REPLACE FUNCTION aos.events_after(
    p_tick bigint, p_seq bigint, p_tenant text DEFAULT NULL, p_limit integer DEFAULT 1000
) RETURNS TABLE (
    tick_id bigint, seq bigint, created_at timestamptz, event text, tenant_id text, subject_id text, payload jsonb
)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_prev pg_snapshot;
    v_tick aos.event_ticks;
    v_batch bigint;
    v_left integer := p_limit;
    v_count integer;
BEGIN
    IF p_tick IS NULL OR p_seq IS NULL OR p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'a position (tick, seq) and a limit of at least 1 are required' USING ERRCODE = '22023';
    END IF;
    SELECT t.snapshot INTO v_prev FROM aos.event_ticks AS t WHERE t.tick_id < p_tick ORDER BY t.tick_id DESC LIMIT 1;
    -- The position's batch is the first tick at or after p_tick: a position may name a tick still to
    -- come, and a ticker that rolled back leaves a gap in the ids. With no tick before p_tick (the
    -- oldest were pruned) p_tick itself: the first tick kept is then delivered whole.
    IF v_prev IS NOT NULL THEN
        SELECT min(t.tick_id) INTO v_batch FROM aos.event_ticks AS t WHERE t.tick_id >= p_tick;
    END IF;
    v_batch := coalesce(v_batch, p_tick);
    FOR v_tick IN SELECT t.* FROM aos.event_ticks AS t WHERE t.tick_id >= p_tick ORDER BY t.tick_id LOOP
        IF v_prev IS NULL THEN
            -- The first tick kept: everything it sees is its batch.
            RETURN QUERY
            SELECT v_tick.tick_id, e.seq, e.created_at, e.event, e.tenant_id, e.subject_id, e.payload
            FROM aos.events AS e
            WHERE e.tx_id < pg_snapshot_xmax(v_tick.snapshot) AND pg_visible_in_snapshot(e.tx_id, v_tick.snapshot)
              AND (v_tick.tick_id > v_batch OR e.seq > p_seq)
              AND (p_tenant IS NULL OR e.tenant_id = p_tenant)
            ORDER BY e.seq
            LIMIT v_left;
        ELSE
            -- Not visible in the previous tick: started at or after its xmax, or in progress then.
            RETURN QUERY
            SELECT v_tick.tick_id, e.seq, e.created_at, e.event, e.tenant_id, e.subject_id, e.payload
            FROM (
                SELECT x.* FROM aos.events AS x
                WHERE x.tx_id >= pg_snapshot_xmax(v_prev) AND x.tx_id < pg_snapshot_xmax(v_tick.snapshot)
                UNION ALL
                SELECT x.* FROM aos.events AS x WHERE x.tx_id = ANY (ARRAY(SELECT pg_snapshot_xip(v_prev)))
            ) AS e
            WHERE pg_visible_in_snapshot(e.tx_id, v_tick.snapshot)
              AND (v_tick.tick_id > v_batch OR e.seq > p_seq)
              AND (p_tenant IS NULL OR e.tenant_id = p_tenant)
            ORDER BY e.seq
            LIMIT v_left;
        END IF;
        GET DIAGNOSTICS v_count = ROW_COUNT;
        v_left := v_left - v_count;
        EXIT WHEN v_left <= 0;
        v_prev := v_tick.snapshot;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION aos.events_after(bigint, bigint, text, integer) IS
    'The events after position (p_tick, p_seq), in delivery order (tick, then seq), up to the newest tick and at most '
    'p_limit of them; p_tenant filters. Every committed event has exactly one place in that order, so a reader that '
    'resumes from the (tick_id, seq) of the last row it took never skips or repeats one. Reads under the caller''s '
    'row-level security. Errors: 22023 no position or a limit below 1.';

CREATE OR REPLACE FUNCTION aos.event_position(p_seq bigint) RETURNS TABLE (tick_id bigint, seq bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_tx xid8;
    v_width bigint;
    v_from bigint;
BEGIN
    IF p_seq IS NULL OR p_seq < 0 THEN
        RAISE EXCEPTION 'seq must be 0 or more, got %', p_seq USING ERRCODE = '22023';
    END IF;
    -- The event itself, else the newest one before it (seqs of rolled-back transactions are gaps,
    -- pruned ones are gone): searched in widening seq ranges, which the BRIN index on seq serves.
    SELECT e.tx_id INTO v_tx FROM aos.events AS e WHERE e.seq = p_seq;
    v_width := 1000;
    WHILE v_tx IS NULL LOOP
        SELECT e.tx_id INTO v_tx FROM aos.events AS e
        WHERE e.seq BETWEEN p_seq - v_width AND p_seq ORDER BY e.seq DESC LIMIT 1;
        EXIT WHEN v_width >= p_seq;
        v_width := v_width * 1000;
    END LOOP;
    IF v_tx IS NULL THEN
        RETURN QUERY SELECT 0::bigint, 0::bigint;  -- before everything the outbox holds
        RETURN;
    END IF;
    -- Its batch: the first tick whose snapshot sees its transaction (snapshots' xmax only grow).
    SELECT t.tick_id INTO v_from FROM aos.event_ticks AS t
    WHERE pg_snapshot_xmax(t.snapshot) > v_tx ORDER BY pg_snapshot_xmax(t.snapshot), t.tick_id LIMIT 1;
    RETURN QUERY
    SELECT coalesce(
        (SELECT t.tick_id FROM aos.event_ticks AS t
         WHERE t.tick_id >= v_from AND pg_visible_in_snapshot(v_tx, t.snapshot) ORDER BY t.tick_id LIMIT 1),
        (SELECT max(t.tick_id) + 1 FROM aos.event_ticks AS t),
        1), p_seq;
END
$fn$;
COMMENT ON FUNCTION aos.event_position(bigint) IS
    'The reader position right after event p_seq: (the tick whose batch holds it, p_seq). For a seq that is not in '
    'the outbox (a gap, or pruned) the position of the newest event before it; (0, 0) before everything. '
    'Errors: 22023 a negative seq.';

-- ------------------------------------------------------------------------------------ retention

CREATE OR REPLACE FUNCTION aos.prune_events(p_before_seq bigint DEFAULT NULL, p_older_than interval DEFAULT NULL)
RETURNS TABLE (events_deleted bigint, ticks_deleted bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_events bigint := 0;
    v_ticks bigint;
    v_oldest xid8;
BEGIN
    IF num_nonnulls(p_before_seq, p_older_than) <> 1 THEN
        RAISE EXCEPTION 'give exactly one of p_before_seq and p_older_than' USING ERRCODE = '22023';
    END IF;
    IF p_older_than < INTERVAL '0' OR p_before_seq < 0 THEN
        RAISE EXCEPTION 'a retention must not be negative' USING ERRCODE = '22023';
    END IF;
    IF p_before_seq IS NOT NULL THEN
        DELETE FROM aos.events AS e WHERE e.seq < p_before_seq;
        GET DIAGNOSTICS v_events = ROW_COUNT;
    ELSE
        DELETE FROM aos.events AS e WHERE e.created_at < now() - p_older_than;
        GET DIAGNOSTICS v_events = ROW_COUNT;
    END IF;
    -- Ticks: keep the newest one that sees none of the events kept (it bounds the first batch
    -- below) and every later one; nobody can need the older ones.
    SELECT min(e.tx_id) INTO v_oldest FROM aos.events AS e;
    DELETE FROM aos.event_ticks AS t
    WHERE t.tick_id < (
        SELECT max(k.tick_id) FROM aos.event_ticks AS k
        WHERE v_oldest IS NULL OR pg_snapshot_xmax(k.snapshot) <= v_oldest
    );
    GET DIAGNOSTICS v_ticks = ROW_COUNT;
    RETURN QUERY SELECT v_events, v_ticks;
END
$fn$;
COMMENT ON FUNCTION aos.prune_events(bigint, interval) IS
    'Outbox retention (aosdb prune-events, or a pg_cron job): deletes the events with seq below p_before_seq, or those '
    'written more than p_older_than ago (a scan of the outbox), and the ticks no kept event needs. A listener resuming from a '
    'pruned seq restarts at the oldest event kept. Errors: 22023 not exactly one of the two, or a negative one.';
