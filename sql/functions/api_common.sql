-- Shared pieces of the api facades, in api_private (a schema no HTTP gateway exposes; aos_api
-- has USAGE on it because the facades run as their caller): argument checks (22023 naming the
-- argument) and the list envelope {"items", "total", "has_more", "pagination": {"limit",
-- "offset", "next_offset"}}, page_size 1-200.
--
-- Errors of every facade, for SQL callers and over HTTP (PostgREST's status for each code):
--   PT404 the object is not in the caller's tenant (404); 22023 a bad argument value (400);
--   22P02/22007/22008 an argument that is not of its type, raised before the call (400);
--   28000 no tenant, or a tenant other than the login's binding (403).

-- The value of argument p_name, or 22023 when it is not one of p_allowed (null passes).
CREATE OR REPLACE FUNCTION api_private.one_of(p_name text, p_value text, p_allowed text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF p_value IS NOT NULL AND p_value <> ALL (p_allowed) THEN
        RAISE EXCEPTION '% must be one of %, got %', p_name, array_to_string(p_allowed, ', '), aos._shown(p_value)
            USING ERRCODE = '22023';
    END IF;
    RETURN p_value;
END
$fn$;
COMMENT ON FUNCTION api_private.one_of(text, text, text[]) IS
    'Returns p_value (null included); raises 22023 naming argument p_name when it is not one of p_allowed.';

CREATE OR REPLACE FUNCTION api_private.check_page(p_page_size integer, p_page_offset integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF p_page_size IS NULL OR p_page_size < 1 OR p_page_size > 200 THEN
        RAISE EXCEPTION 'page_size must be between 1 and 200, got %', coalesce(p_page_size::text, 'null')
            USING ERRCODE = '22023';
    END IF;
    IF p_page_offset IS NULL OR p_page_offset < 0 THEN
        RAISE EXCEPTION 'page_offset must be 0 or more, got %', coalesce(p_page_offset::text, 'null')
            USING ERRCODE = '22023';
    END IF;
END
$fn$;
COMMENT ON FUNCTION api_private.check_page(integer, integer) IS
    'Raises 22023 unless 1 <= page_size <= 200 and page_offset >= 0.';

CREATE OR REPLACE FUNCTION api_private.envelope(
    p_items jsonb, p_total bigint, p_page_size integer, p_page_offset integer
) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
RETURN jsonb_build_object(
    'items', coalesce(p_items, '[]'),
    'total', p_total,
    -- bigint: an offset near 2^31 plus the page would overflow an integer (22003).
    'has_more', p_page_offset::bigint + jsonb_array_length(coalesce(p_items, '[]')) < p_total,
    'pagination', jsonb_build_object(
        'limit', p_page_size,
        'offset', p_page_offset,
        'next_offset', CASE
            WHEN p_page_offset::bigint + jsonb_array_length(coalesce(p_items, '[]')) < p_total
                THEN p_page_offset::bigint + p_page_size
        END
    )
);
COMMENT ON FUNCTION api_private.envelope(jsonb, bigint, integer, integer) IS
    'The list envelope: {"items", "total", "has_more", "pagination": {"limit" (the page_size), "offset" (the '
    'page_offset), "next_offset" (the page_offset of the next page, null on the last)}}.';

GRANT EXECUTE ON FUNCTION api_private.one_of(text, text, text[]), api_private.check_page(integer, integer),
    api_private.envelope(jsonb, bigint, integer, integer)
TO aos_api;
-- The facades took a jsonb of filters until 0017 and checked its keys with this; no longer.
REVOKE EXECUTE ON FUNCTION activity._require_keys(text, jsonb, text[]) FROM aos_api;
