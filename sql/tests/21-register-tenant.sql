-- aos.register_tenant: the worker and the scenario runner add tenants through
-- this verb, not through INSERT on the registry (XD-004).
BEGIN;
SELECT plan(8);

SET LOCAL ROLE aos_worker;
SELECT is(aos.register_tenant('acme', 'Acme Corp'), 'acme', 'the worker registers a tenant and gets its id back');
SELECT is(aos.register_tenant('acme', 'Another name'), 'acme', 'registering an existing tenant is harmless');
SELECT is((SELECT name FROM aos.tenants WHERE tenant_id = 'acme'), 'Acme Corp',
          'registering again does not rename the tenant');
SELECT is(aos.register_tenant('beta'), 'beta', 'the name is optional');
SELECT is((SELECT name FROM aos.tenants WHERE tenant_id = 'beta'), 'beta', 'the name defaults to the id');
SELECT throws_ok($$SELECT aos.register_tenant('Not Valid!')$$, '23514', NULL,
                 'an id outside ^[a-z0-9][a-z0-9._-]{0,63}$ is rejected by tenants_id_format (23514)');
SELECT throws_ok($$INSERT INTO aos.tenants (tenant_id, name) VALUES ('gamma', 'G')$$, '42501', NULL,
                 'the worker cannot INSERT into the registry directly (42501)');
RESET ROLE;

SET LOCAL ROLE aos_operator;
SELECT throws_ok($$SELECT aos.register_tenant('delta')$$, '42501', NULL,
                 'the operator may not register tenants (42501)');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
