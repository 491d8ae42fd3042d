-- A worker's clock window, for the worker API and for a worker's plain SQL alike. A CHECK cannot
-- call now(), so the tables' CHECKs only bound timestamps to 2000..2199; within that, a timestamp a
-- worker writes must lie within aos.timestamp_window (default 1 day) of now: a clock far off is a
-- bug to report at once, not a run that can never finish.

-- The window the session asked for: aos.timestamp_window, or 1 day. 22023 when it is no interval.
CREATE OR REPLACE FUNCTION activity._timestamp_window() RETURNS interval
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_setting text := coalesce(nullif(current_setting('aos.timestamp_window', TRUE), ''), '1 day');
BEGIN
    RETURN v_setting::interval;
EXCEPTION WHEN data_exception THEN
    RAISE EXCEPTION 'aos.timestamp_window must be an interval, got %', aos._shown(v_setting)
        USING ERRCODE = '22023';
END
$fn$;
COMMENT ON FUNCTION activity._timestamp_window() IS
    'The setting aos.timestamp_window as an interval (default 1 day); raises 22023 when it is not an interval.';
GRANT EXECUTE ON FUNCTION activity._timestamp_window() TO aos_worker, aos_scenario;

-- True when p_at lies within p_window of now (and before 2200, the tables' bound).
CREATE OR REPLACE FUNCTION activity._within_window(p_at timestamptz, p_window interval) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
RETURN p_at >= greatest(now() - p_window, '2000-01-01 00:00:00+00')
   AND p_at <= least(now() + p_window, '2200-01-01 00:00:00+00')
   AND p_at < '2200-01-01 00:00:00+00';
COMMENT ON FUNCTION activity._within_window(timestamptz, interval) IS
    'True when the timestamp lies within the interval of now and from 2000 to 2199.';
GRANT EXECUTE ON FUNCTION activity._within_window(timestamptz, interval) TO aos_worker, aos_scenario;

-- Plain SQL from a worker: each timestamp it writes (on UPDATE, each one it changes) must lie in the
-- window, or the row is refused with 23514 naming <table>_<column>_window. The WHEN clause limits
-- the call to members of aos_worker that are not the owner (superusers and SECURITY DEFINER engines
-- are owners); the scenario runner writes fixed past times on purpose and is not a worker.
CREATE OR REPLACE FUNCTION activity.tg_worker_time_window() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_window interval := activity._timestamp_window();
    v_new jsonb := to_jsonb(NEW);
    v_old jsonb := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) END;
    v_column text;
    v_at timestamptz;
BEGIN
    FOREACH v_column IN ARRAY TG_ARGV LOOP
        v_at := (v_new ->> v_column)::timestamptz;
        CONTINUE WHEN v_at IS NULL OR (v_old IS NOT NULL AND v_old -> v_column = v_new -> v_column);
        IF NOT activity._within_window(v_at, v_window) THEN
            RAISE EXCEPTION '% must be within % of now (aos.timestamp_window), got %', v_column, v_window, v_at
                USING ERRCODE = '23514', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME, COLUMN = v_column,
                      CONSTRAINT = format('%s_%s_window', TG_TABLE_NAME, v_column),
                      HINT = 'A worker whose clock is off, or that reports late, widens the window for its '
                             'session: SET aos.timestamp_window = ''7 days''.';
        END IF;
    END LOOP;
    RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION activity.tg_worker_time_window() IS
    'Row trigger on the activity tables (before INSERT or UPDATE of their timestamps, only for a worker): raises '
    '23514 (<table>_<column>_window) when a timestamp the statement writes lies outside aos.timestamp_window of now.';

-- The WHEN clause calls the function only for a worker's row with a timestamp outside the default
-- window, or when the session set its own window: the common row costs no function call.
CREATE OR REPLACE TRIGGER _001_worker_time_window
BEFORE INSERT OR UPDATE OF created_at, started_at, completed_at ON activity.runs
FOR EACH ROW WHEN (pg_catalog.pg_has_role(CURRENT_USER, 'aos_worker', 'USAGE')
                   AND NOT pg_catalog.pg_has_role(CURRENT_USER, 'aos_owner', 'USAGE')
                   AND (coalesce(pg_catalog.current_setting('aos.timestamp_window', TRUE), '') <> ''
                        OR NEW.created_at NOT BETWEEN now() - interval '1 day' AND now() + interval '1 day'
                        OR NEW.started_at NOT BETWEEN now() - interval '1 day' AND now() + interval '1 day'
                        OR NEW.completed_at NOT BETWEEN now() - interval '1 day' AND now() + interval '1 day'))
EXECUTE FUNCTION activity.tg_worker_time_window('created_at', 'started_at', 'completed_at');
CREATE OR REPLACE TRIGGER _001_worker_time_window
BEFORE INSERT OR UPDATE OF started_at, completed_at ON activity.aos_traces
FOR EACH ROW WHEN (pg_catalog.pg_has_role(CURRENT_USER, 'aos_worker', 'USAGE')
                   AND NOT pg_catalog.pg_has_role(CURRENT_USER, 'aos_owner', 'USAGE')
                   AND (coalesce(pg_catalog.current_setting('aos.timestamp_window', TRUE), '') <> ''
                        OR NEW.started_at NOT BETWEEN now() - interval '1 day' AND now() + interval '1 day'
                        OR NEW.completed_at NOT BETWEEN now() - interval '1 day' AND now() + interval '1 day'))
EXECUTE FUNCTION activity.tg_worker_time_window('started_at', 'completed_at');
CREATE OR REPLACE TRIGGER _001_worker_time_window
BEFORE INSERT OR UPDATE OF occurred_at ON activity.aos_trace_steps
FOR EACH ROW WHEN (pg_catalog.pg_has_role(CURRENT_USER, 'aos_worker', 'USAGE')
                   AND NOT pg_catalog.pg_has_role(CURRENT_USER, 'aos_owner', 'USAGE')
                   AND (coalesce(pg_catalog.current_setting('aos.timestamp_window', TRUE), '') <> ''
                        OR NEW.occurred_at NOT BETWEEN now() - interval '1 day' AND now() + interval '1 day'))
EXECUTE FUNCTION activity.tg_worker_time_window('occurred_at');
