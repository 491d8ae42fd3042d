-- aos.current_tenant() for an unbound login: the tenant_id claim of
-- request.jwt.claims (PostgREST), else the setting aos.tenant_id, else
-- SQLSTATE 28000 (bound logins: 54-trusted-tenants). Every role may call
-- it, because every tenant isolation policy does.
BEGIN;

-- p_setting and p_claims as they would be set (null: not set), then the result
-- of aos.current_tenant() or the SQLSTATE it raised.
CREATE FUNCTION pg_temp.tenant_with(p_setting text, p_claims text) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    v_state text;
BEGIN
    PERFORM set_config('aos.tenant_id', coalesce(p_setting, ''), TRUE);
    PERFORM set_config('request.jwt.claims', coalesce(p_claims, ''), TRUE);
    RETURN aos.current_tenant();
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE;
    RETURN 'SQLSTATE ' || v_state;
END
$fn$;

CREATE TEMP TABLE cases (setting text, claims text, expected text, what text) ON COMMIT DROP;
INSERT INTO cases VALUES
    ('t1', NULL, 't1', 'returns the setting aos.tenant_id'),
    ('t1', '{"tenant_id": "t2"}', 't2', 'prefers the JWT claim to the setting (unbound login)'),
    (NULL, '{"tenant_id": "t2"}', 't2', 'falls back to the tenant_id claim of request.jwt.claims'),
    ('', '{"tenant_id": "t2", "role": "aos_api"}', 't2', 'treats an empty setting as unset'),
    (NULL, NULL, 'SQLSTATE 28000', 'raises 28000 when neither is set'),
    (NULL, '{"role": "aos_api"}', 'SQLSTATE 28000', 'raises 28000 when the claims hold no tenant_id'),
    (NULL, '{"tenant_id": ""}', 'SQLSTATE 28000', 'raises 28000 when the tenant_id claim is empty'),
    (NULL, '{"tenant_id": null}', 'SQLSTATE 28000', 'raises 28000 when the tenant_id claim is null');

CREATE TEMP TABLE group_roles (role_name name) ON COMMIT DROP;
INSERT INTO group_roles VALUES
    ('aos_owner'), ('aos_worker'), ('aos_incident_engine'), ('aos_proposal_engine'), ('aos_policy_engine'),
    ('aos_operator'), ('aos_api'), ('aos_bi'), ('aos_bi_tenant'), ('aos_scenario');

SELECT plan((SELECT count(*)::int FROM cases) + 3 + (SELECT count(*)::int FROM group_roles));

SELECT is(pg_temp.tenant_with(setting, claims), expected, 'aos.current_tenant() ' || what)
FROM cases ORDER BY what;

SELECT set_config('aos.tenant_id', '', TRUE);
SELECT set_config('request.jwt.claims', '', TRUE);
SELECT throws_ok('SELECT aos.current_tenant()', '28000', NULL,
    'aos.current_tenant() raises SQLSTATE 28000 (invalid_authorization_specification) with no tenant');

SELECT set_config('aos.tenant_id', 't-session', FALSE);
SELECT is(aos.current_tenant(), 't-session', 'aos.current_tenant() reads a session-level setting too');
SELECT set_config('aos.tenant_id', 't-local', TRUE);
SELECT is(aos.current_tenant(), 't-local', 'a transaction-local setting overrides the session one');
SELECT set_config('aos.tenant_id', 't1', TRUE);

-- Callable by each role (as that role), through its EXECUTE for PUBLIC.
CREATE FUNCTION pg_temp.tenant_as(p_role name) RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    v_tenant text;
    v_state text;
BEGIN
    PERFORM set_config('role', p_role, TRUE);
    v_tenant := aos.current_tenant();
    PERFORM set_config('role', 'none', TRUE);
    RETURN v_tenant;
EXCEPTION WHEN OTHERS THEN
    -- The role switch is undone with the failed block.
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE;
    RETURN 'SQLSTATE ' || v_state;
END
$fn$;

SELECT is(pg_temp.tenant_as(role_name), 't1', format('%s can call aos.current_tenant()', role_name))
FROM group_roles ORDER BY role_name;

SELECT * FROM finish();
ROLLBACK;
