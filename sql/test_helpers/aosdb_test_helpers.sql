-- Helpers shared by the pgTAP tests in sql/tests. `aosdb test` runs this file once in its
-- throwaway database, after the migrations and CREATE EXTENSION pgtap, before pg_prove; it
-- is not a test itself, so it lives outside sql/tests (pg_prove --recurse never sees it).
-- The helpers live in the schema aosdb_test, not in pg_temp: pg_prove runs every test file
-- in a session of its own, and pg_temp dies with each.
--
-- Tests switch roles (SET LOCAL ROLE) and call some helpers as those roles, so every role may
-- use the schema and execute its functions (PUBLIC, the default for functions); nobody but
-- the installer may create anything in it. Only state() is SECURITY DEFINER: it reads every
-- row of every table, whatever role the test currently plays.
--
-- Helpers that work on a test's own rows read them from pg_temp tables the test creates
-- (pg_temp.rejected); they name pg_temp explicitly.

CREATE SCHEMA aosdb_test;
COMMENT ON SCHEMA aosdb_test IS 'Helpers of the pgTAP tests (sql/test_helpers): only in the throwaway test database';
GRANT USAGE ON SCHEMA aosdb_test TO PUBLIC;

-- Every row of the tables a call may write (the worker API, the engines it fires, the
-- incident and policy actions), as one comparable text: per table, the row count and a
-- digest of the contents. Equal before and after a rejected call: it wrote nothing.
CREATE FUNCTION aosdb_test.state() RETURNS text
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT string_agg(format('%s=%s:%s', t.name, t.n, t.digest), ' ' ORDER BY t.name)
    FROM (
        SELECT 'runs' AS name, count(*) AS n, md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS digest
        FROM activity.runs AS x
        UNION ALL SELECT 'traces', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))
        FROM activity.aos_traces AS x
        UNION ALL SELECT 'steps', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))
        FROM activity.aos_trace_steps AS x
        UNION ALL SELECT 'incidents', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))
        FROM incidents.incidents AS x
        UNION ALL SELECT 'incident_events', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))
        FROM incidents.incident_events AS x
        UNION ALL SELECT 'evidence', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))
        FROM incidents.incident_evidence AS x
        UNION ALL SELECT 'proposals', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))
        FROM policies.policy_proposals AS x
        UNION ALL SELECT 'rules', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))
        FROM policies.policy_rules AS x
        UNION ALL SELECT 'prevention', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))
        FROM policies.prevention_records AS x
        UNION ALL SELECT 'events', count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), ''))
        FROM aos.events AS x
    ) AS t
$fn$;
COMMENT ON FUNCTION aosdb_test.state() IS 'Row counts and content digests of every table a call may write';

-- What a statement ends with: 'no error', or its SQLSTATE and the constraint it names
-- ('-' when none), e.g. '23514 runs_status_check'. The statement's effects are undone.
CREATE FUNCTION aosdb_test.outcome(p_sql text) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    v_state text;
    v_constraint text;
BEGIN
    EXECUTE p_sql;
    RAISE EXCEPTION USING ERRCODE = 'ZX999';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_constraint = CONSTRAINT_NAME;
    RETURN CASE WHEN v_state = 'ZX999' THEN 'no error' ELSE v_state || ' ' || coalesce(nullif(v_constraint, ''), '-') END;
END
$fn$;

-- outcome() with the error's message: 'SQLSTATE constraint: message'.
CREATE FUNCTION aosdb_test.outcome_message(p_sql text) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    v_state text;
    v_constraint text;
    v_message text;
BEGIN
    EXECUTE p_sql;
    RAISE EXCEPTION USING ERRCODE = 'ZX999';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_constraint = CONSTRAINT_NAME, v_message = MESSAGE_TEXT;
    RETURN CASE WHEN v_state = 'ZX999' THEN 'no error'
                ELSE format('%s %s: %s', v_state, coalesce(nullif(v_constraint, ''), '-'), v_message) END;
END
$fn$;

-- p_sql run as p_role with aos.tenant_id = p_tenant; the role is reset afterwards. Meant
-- inside throws_ok/lives_ok: an error undoes the role switch and the tenant with it.
CREATE FUNCTION aosdb_test.as_role(p_role name, p_sql text, p_tenant text DEFAULT 't1') RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM set_config('role', p_role, TRUE);
    PERFORM set_config('aos.tenant_id', p_tenant, TRUE);
    EXECUTE p_sql;
    PERFORM set_config('role', 'none', TRUE);
END
$fn$;

-- The keys of a JSON object, sorted.
CREATE FUNCTION aosdb_test.keys(p_object jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(p_object) AS k
$fn$;

-- Every page of a paged facade, following next_offset from 0 until it is null, as one list:
-- p_page(p_filters, p_limit, offset) returns a page, p_items(page) its items as text[].
-- At most 100 pages, so a facade whose next_offset never ends cannot hang the suite.
CREATE FUNCTION aosdb_test.walk(p_page regproc, p_items regproc, p_filters jsonb, p_limit integer)
RETURNS text[]
LANGUAGE plpgsql AS $fn$
DECLARE
    v_offset integer := 0;
    v_page jsonb;
    v_items text[];
    v_all text[] := '{}';
BEGIN
    FOR v_guard IN 1..100 LOOP
        EXECUTE format('SELECT %s($1, $2, $3)', p_page) INTO v_page USING p_filters, p_limit, v_offset;
        EXECUTE format('SELECT %s($1)', p_items) INTO v_items USING v_page;
        v_all := v_all || v_items;
        v_offset := (v_page -> 'pagination' ->> 'next_offset')::integer;
        EXIT WHEN v_offset IS NULL;
    END LOOP;
    RETURN v_all;
END
$fn$;

-- Each row of the test's table pg_temp.rejected (n, who, tenant, sql, errcode, description),
-- in order of n: run as the role who with aos.tenant_id = tenant, it must fail with errcode,
-- and every table must hold exactly what it held before (state()). Two tests per row.
CREATE FUNCTION aosdb_test.rejections() RETURNS SETOF text
LANGUAGE plpgsql AS $fn$
DECLARE
    c record;
    v_before text;
BEGIN
    FOR c IN SELECT * FROM pg_temp.rejected ORDER BY n LOOP
        v_before := aosdb_test.state();
        EXECUTE format('SET LOCAL ROLE %I', c.who);
        PERFORM set_config('aos.tenant_id', coalesce(c.tenant, ''), TRUE);
        RETURN NEXT throws_ok(c.sql, c.errcode, NULL, c.description);
        RESET ROLE;
        PERFORM set_config('aos.tenant_id', '', TRUE);
        RETURN NEXT is(aosdb_test.state(), v_before, c.description || ': nothing written');
    END LOOP;
END
$fn$;

-- Each row of the test's table pg_temp.rejected (n, tenant, sql, errcode, description), in
-- order of n: run as aos_api with aos.tenant_id = tenant, it must fail with errcode. One test per row.
CREATE FUNCTION aosdb_test.api_rejections() RETURNS SETOF text
LANGUAGE plpgsql AS $fn$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT * FROM pg_temp.rejected ORDER BY n LOOP
        SET LOCAL ROLE aos_api;
        PERFORM set_config('aos.tenant_id', coalesce(c.tenant, ''), TRUE);
        RETURN NEXT throws_ok(c.sql, c.errcode, NULL, c.description);
        RESET ROLE;
        PERFORM set_config('aos.tenant_id', '', TRUE);
    END LOOP;
END
$fn$;
