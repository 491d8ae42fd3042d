-- Shared pieces of the api facades: input validation (22023) and the list
-- envelope. SPEC 6.2: lists return {"items", "total", "has_more",
-- "pagination": {"limit", "offset", "next_offset"}}, p_limit 1-200. Unknown
-- filter keys are rejected by activity._require_keys, the WorkerRunner's check.

-- A text filter, null when absent; raises 22023 when not one of p_values (null p_values: any string).
CREATE OR REPLACE FUNCTION api._text_filter(p_filters jsonb, p_key text, p_values text[] DEFAULT NULL) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_value jsonb := p_filters -> p_key;
BEGIN
    IF v_value IS NULL OR v_value = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v_value) <> 'string' OR (p_values IS NOT NULL AND v_value #>> '{}' <> ALL (p_values)) THEN
        RAISE EXCEPTION 'filter % must be %, got %', p_key,
            coalesce('one of ' || array_to_string(p_values, ', '), 'a string'), aos._shown(v_value::text)
            USING ERRCODE = '22023';
    END IF;
    RETURN v_value #>> '{}';
END
$fn$;
COMMENT ON FUNCTION api._text_filter(jsonb, text, text[]) IS
    'The string filter p_key (null when absent); raises 22023 when it is not a string or not one of p_values.';

CREATE OR REPLACE FUNCTION api._bool_filter(p_filters jsonb, p_key text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_value jsonb := p_filters -> p_key;
BEGIN
    IF v_value IS NULL OR v_value = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v_value) <> 'boolean' THEN
        RAISE EXCEPTION 'filter % must be true or false, got %', p_key, aos._shown(v_value::text)
            USING ERRCODE = '22023';
    END IF;
    RETURN v_value::boolean;
END
$fn$;
COMMENT ON FUNCTION api._bool_filter(jsonb, text) IS
    'The boolean filter p_key (null when absent); raises 22023 when it is not a JSON boolean.';

CREATE OR REPLACE FUNCTION api._time_filter(p_filters jsonb, p_key text) RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_value jsonb := p_filters -> p_key;
BEGIN
    IF v_value IS NULL OR v_value = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(v_value) <> 'string' THEN
        RAISE EXCEPTION 'filter % must be an ISO 8601 timestamp string, got %', p_key, aos._shown(v_value::text)
            USING ERRCODE = '22023';
    END IF;
    RETURN (v_value #>> '{}')::timestamptz;
EXCEPTION
    -- Any data_exception of the cast: 22007, 22008, and 22023 for an unknown time zone.
    WHEN data_exception THEN
        RAISE EXCEPTION 'filter % must be an ISO 8601 timestamp, got %', p_key, aos._shown(v_value::text)
            USING ERRCODE = '22023';
END
$fn$;
COMMENT ON FUNCTION api._time_filter(jsonb, text) IS
    'The timestamp filter p_key (null when absent); raises 22023 when it is not an ISO 8601 timestamp string.';

CREATE OR REPLACE FUNCTION api._check_page(p_limit integer, p_offset integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF p_limit IS NULL OR p_limit < 1 OR p_limit > 200 THEN
        RAISE EXCEPTION 'limit must be between 1 and 200, got %', p_limit USING ERRCODE = '22023';
    END IF;
    IF p_offset IS NULL OR p_offset < 0 THEN
        RAISE EXCEPTION 'offset must be 0 or more, got %', p_offset USING ERRCODE = '22023';
    END IF;
END
$fn$;
COMMENT ON FUNCTION api._check_page(integer, integer) IS 'Raises 22023 unless 1 <= p_limit <= 200 and p_offset >= 0.';

CREATE OR REPLACE FUNCTION api._envelope(p_items jsonb, p_total bigint, p_limit integer, p_offset integer) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
RETURN jsonb_build_object(
    'items', coalesce(p_items, '[]'),
    'total', p_total,
    -- bigint: an offset near 2^31 plus the page would overflow an integer (22003).
    'has_more', p_offset::bigint + jsonb_array_length(coalesce(p_items, '[]')) < p_total,
    'pagination', jsonb_build_object(
        'limit', p_limit,
        'offset', p_offset,
        'next_offset', CASE
            WHEN p_offset::bigint + jsonb_array_length(coalesce(p_items, '[]')) < p_total THEN p_offset::bigint + p_limit
        END
    )
);
COMMENT ON FUNCTION api._envelope(jsonb, bigint, integer, integer) IS
    'The list envelope: {"items", "total", "has_more", "pagination": {"limit", "offset", "next_offset"}}.';

GRANT EXECUTE ON FUNCTION api._text_filter(jsonb, text, text[]),
    api._bool_filter(jsonb, text), api._time_filter(jsonb, text), api._check_page(integer, integer),
    api._envelope(jsonb, bigint, integer, integer)
TO aos_api;
