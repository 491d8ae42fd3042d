-- depends: 0017_api_postgrest
-- Operations that live in SQL, so that a DBA, cron or pg_cron keeps the read side fresh and the
-- outbox small without any Python process:
--   * aos_maintenance, a NOLOGIN group role for operations logins (and the pg_cron jobs they
--     schedule): it may call the two procedures below and read the refresh log, nothing else;
--   * aos.refresh_analytics(min_interval) refreshes both analytics views CONCURRENTLY and records
--     each refresh in aos.view_refreshes, one at a time (a second call skips at once) and never
--     back to back (it skips when the last refresh ended less than min_interval ago);
--   * aos.prune_outbox(older_than) deletes the events (through aos.prune_events) and the refresh
--     records older than that, keeping the newest refresh of each view.
-- Both are SECURITY DEFINER owned by aos_owner: only the owner of a materialized view may refresh
-- it. They touch nothing but the two views, aos.view_refreshes and the outbox.
-- Roles are cluster-wide: aos_maintenance is created only when missing and survives a rollback.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'aos_maintenance') THEN
        CREATE ROLE aos_maintenance NOLOGIN;
    END IF;
END
$roles$;

SET LOCAL ROLE aos_owner;

-- Operations read when each view was last refreshed (and aosdb refresh reports from it).
GRANT SELECT ON aos.view_refreshes TO aos_maintenance;

CREATE PROCEDURE aos.refresh_analytics(min_interval interval DEFAULT '0')
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_view text;
    v_last_end timestamptz;
    v_started timestamptz;
    v_ms numeric(12, 3);
    v_rows bigint;
BEGIN
    IF min_interval IS NULL OR min_interval < INTERVAL '0' THEN
        RAISE EXCEPTION 'min_interval must be an interval of 0 or more' USING ERRCODE = '22023';
    END IF;
    -- One refresh at a time: a second caller (a pg_cron run queued behind a slow one, aosdb
    -- refresh --follow, a DBA) returns at once. Held to the end of the transaction.
    IF NOT pg_try_advisory_xact_lock(hashtextextended('aos.refresh_analytics', 0)) THEN
        RAISE NOTICE 'aos.refresh_analytics: skipped: another refresh of the analytics views is running';
        RETURN;
    END IF;
    -- Never back to back: a run that waited for a slow refresh finds it ended a moment ago.
    SELECT max(r.refreshed_at + r.duration_ms * INTERVAL '1 millisecond') INTO v_last_end
    FROM aos.view_refreshes AS r;
    IF v_last_end > clock_timestamp() - min_interval THEN
        RAISE NOTICE 'aos.refresh_analytics: skipped: the last refresh ended at %, less than % ago',
            v_last_end, min_interval;
        RETURN;
    END IF;
    FOREACH v_view IN ARRAY ARRAY['activity.v_runs_o2', 'incidents.v_incidents_o2'] LOOP
        v_started := clock_timestamp();
        -- CONCURRENTLY: readers of the view are never blocked (each has a unique index).
        EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %s', v_view);
        v_ms := extract(EPOCH FROM clock_timestamp() - v_started) * 1000;
        EXECUTE format('SELECT count(*) FROM %s', v_view) INTO v_rows;
        INSERT INTO aos.view_refreshes (view_name, refreshed_at, duration_ms, row_count, concurrent)
        VALUES (v_view, v_started, v_ms, v_rows, TRUE);
        RAISE NOTICE 'aos.refresh_analytics: refreshed % (% rows) in % ms', v_view, v_rows, v_ms;
    END LOOP;
END
$fn$;
-- The linter reads a procedure's signature as a name and a bracket: LT01 does not apply.
COMMENT ON PROCEDURE aos.refresh_analytics(interval) IS -- noqa: LT01
    'Refreshes activity.v_runs_o2 and incidents.v_incidents_o2 CONCURRENTLY, in one transaction, and records each '
    'refresh in aos.view_refreshes. Skips (a NOTICE, nothing written) while another refresh runs, and when the last '
    'recorded refresh ended less than min_interval ago. 22023 for a negative or null min_interval. For pg_cron: '
    'CALL aos.refresh_analytics(min_interval => ''30 seconds'').';

CREATE PROCEDURE aos.prune_outbox(older_than interval DEFAULT '30 days')
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_events bigint;
    v_ticks bigint;
    v_refreshes bigint;
BEGIN
    IF older_than IS NULL OR older_than < INTERVAL '0' THEN
        RAISE EXCEPTION 'older_than must be an interval of 0 or more' USING ERRCODE = '22023';
    END IF;
    SELECT p.events_deleted, p.ticks_deleted INTO v_events, v_ticks
    FROM aos.prune_events(p_older_than => older_than) AS p;
    -- The newest refresh of each view stays: it says how fresh the view is.
    DELETE FROM aos.view_refreshes AS r
    WHERE r.refreshed_at < now() - older_than
      AND r.refreshed_at < (SELECT max(k.refreshed_at) FROM aos.view_refreshes AS k WHERE k.view_name = r.view_name);
    GET DIAGNOSTICS v_refreshes = ROW_COUNT;
    RAISE NOTICE 'aos.prune_outbox: pruned % events, % ticks and % view refreshes older than %',
        v_events, v_ticks, v_refreshes, older_than;
END
$fn$;
-- The linter reads a procedure's signature as a name and a bracket: LT01 does not apply.
COMMENT ON PROCEDURE aos.prune_outbox(interval) IS -- noqa: LT01
    'Retention: deletes the events written more than older_than ago (aos.prune_events, with the ticks no kept event '
    'needs) and the aos.view_refreshes rows older than that, keeping the newest refresh of each view. 22023 for a '
    'negative or null older_than. For pg_cron: CALL aos.prune_outbox(''30 days'').';

REVOKE ALL ON PROCEDURE aos.refresh_analytics(interval), aos.prune_outbox(interval) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE aos.refresh_analytics(interval), aos.prune_outbox(interval) TO aos_maintenance;

INSERT INTO aos.contract_roles (role_name, writes_domain, tenant_scoped, description) VALUES
('aos_maintenance', NULL, FALSE, 'Operations: refreshes the analytics views and prunes the outbox through '
 'aos.refresh_analytics and aos.prune_outbox (SECURITY DEFINER); reads aos.view_refreshes.');

INSERT INTO aos.contract_grants (role_name, schema_name, table_name, privilege, column_names) VALUES
('aos_maintenance', 'aos', 'view_refreshes', 'SELECT', NULL);

RESET ROLE;
