-- Publishing the outbox at commit. Engines only INSERT INTO aos.events; this
-- file makes seq follow commit order and sends NOTIFY aos_events.
--
-- seq is drawn at insert, so two writers can commit out of seq order and a
-- reader that saw seq N could later meet a smaller one. At commit, under one
-- advisory lock held until the commit is visible, a transaction whose seqs are
-- no longer the newest takes fresh ones; then it notifies. The bulk case (one
-- writer) renumbers nothing. Committed seqs therefore only grow, gaps aside.

-- Tracks the range of seqs this transaction drew (transaction-local settings,
-- undone by a rolled-back savepoint together with its rows).
CREATE OR REPLACE FUNCTION aos.tg_events__track() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_min bigint;
    v_max bigint;
BEGIN
    SELECT min(seq), max(seq) INTO v_min, v_max FROM new_events;
    PERFORM pg_catalog.set_config('aos.events_min_seq',
        least(v_min, nullif(pg_catalog.current_setting('aos.events_min_seq', true), '')::bigint)::text, true);
    PERFORM pg_catalog.set_config('aos.events_max_seq',
        greatest(v_max, nullif(pg_catalog.current_setting('aos.events_max_seq', true), '')::bigint)::text, true);
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION aos.tg_events__track() IS
    'Statement trigger on aos.events: records the lowest and highest seq the transaction wrote (aos.events_min_seq, '
    'aos.events_max_seq), so publishing at commit reads only that range.';

-- True for the first event of a transaction only: the deferred publisher is
-- queued once per transaction, not once per event.
CREATE OR REPLACE FUNCTION aos.first_event_of_transaction() RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF pg_catalog.current_setting('aos.events_publish_queued', true) = 'on' THEN
        RETURN FALSE;
    END IF;
    PERFORM pg_catalog.set_config('aos.events_publish_queued', 'on', true);
    RETURN TRUE;
END
$fn$;
COMMENT ON FUNCTION aos.first_event_of_transaction() IS
    'WHEN condition of the outbox publisher: true once per transaction (transaction-local setting).';
GRANT EXECUTE ON FUNCTION aos.first_event_of_transaction() TO aos_incident_engine, aos_proposal_engine, aos_policy_engine;

-- Runs at commit, as whoever commits: SECURITY DEFINER (owned by aos_owner,
-- who owns the outbox) so a worker's or operator's commit can renumber and
-- notify without any grant on aos.events.
CREATE OR REPLACE FUNCTION aos.tg_events__publish() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_me xid8 := pg_catalog.pg_current_xact_id();
    v_min bigint := nullif(pg_catalog.current_setting('aos.events_min_seq', true), '')::bigint;
    v_max bigint := nullif(pg_catalog.current_setting('aos.events_max_seq', true), '')::bigint;
    v_newest bigint;
BEGIN
    IF v_min IS NULL THEN
        RETURN NULL;  -- every event of this transaction was rolled back to a savepoint
    END IF;
    -- Commits that publish take turns; the lock is released once this commit is visible.
    PERFORM pg_catalog.pg_advisory_xact_lock(7401100);
    SELECT last_value INTO v_newest FROM aos.events_seq_seq;
    IF v_newest > v_max THEN
        -- Someone drew seqs after us: take new ones, keeping our own order.
        UPDATE aos.events AS e SET seq = fresh.seq
        FROM (
            SELECT mine.tenant_id, mine.seq AS old_seq, nextval('aos.events_seq_seq') AS seq
            FROM (
                SELECT tenant_id, seq FROM aos.events
                WHERE seq BETWEEN v_min AND v_max AND tx_id = v_me
                ORDER BY seq
            ) AS mine
        ) AS fresh
        WHERE e.tenant_id = fresh.tenant_id AND e.seq = fresh.old_seq;
        SELECT min(seq), max(seq) INTO v_min, v_max FROM aos.events WHERE seq > v_newest AND tx_id = v_me;
    END IF;
    PERFORM pg_catalog.pg_notify('aos_events', pg_catalog.json_build_object(
        'seq', e.seq, 'event', e.event, 'tenant_id', e.tenant_id, 'id', e.subject_id)::text)
    FROM (
        SELECT seq, event, tenant_id, subject_id FROM aos.events
        WHERE seq BETWEEN v_min AND v_max AND tx_id = v_me
        ORDER BY seq
    ) AS e;
    RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION aos.tg_events__publish() IS
    'Deferred trigger on aos.events, once per transaction at commit: makes the transaction''s seqs the newest (renumbering '
    'them when another transaction drew seqs meanwhile) and sends NOTIFY aos_events with {seq, event, tenant_id, id} '
    'per event, in seq order. Delivered after commit, never on rollback.';

CREATE OR REPLACE TRIGGER _900_track AFTER INSERT ON aos.events
REFERENCING NEW TABLE AS new_events
FOR EACH STATEMENT EXECUTE FUNCTION aos.tg_events__track();

DROP TRIGGER IF EXISTS _910_publish ON aos.events;
CREATE CONSTRAINT TRIGGER _910_publish AFTER INSERT ON aos.events
DEFERRABLE INITIALLY DEFERRED
FOR EACH ROW WHEN (aos.first_event_of_transaction())
EXECUTE FUNCTION aos.tg_events__publish();
