-- COMMENT ON everything: every schema,
-- table, view, column and function of the five schemas is described, so
-- psql \d+, pg_dump, BI tools and PostgREST show it.
BEGIN;

CREATE TEMP VIEW uncommented_relations AS
SELECT c.oid::regclass::text AS object
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api') AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND coalesce(btrim(obj_description(c.oid, 'pg_class')), '') = '';

CREATE TEMP VIEW uncommented_columns AS
SELECT format('%s.%I', c.oid::regclass, a.attname) AS object
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api') AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND coalesce(btrim(col_description(c.oid, a.attnum)), '') = '';

SELECT plan(6);

SELECT is_empty(
    $$
    SELECT n.nspname FROM pg_catalog.pg_namespace AS n
    WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api')
      AND coalesce(btrim(obj_description(n.oid, 'pg_namespace')), '') = ''
    $$,
    'every one of the five schemas has a comment'
);

SELECT is_empty('SELECT object FROM uncommented_relations',
    'every table and view of the five schemas has a comment');

SELECT is_empty('SELECT object FROM uncommented_columns',
    'every column of every table and view of the five schemas has a comment');

SELECT is_empty(
    $$
    SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc AS p
    JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api')
      AND coalesce(btrim(obj_description(p.oid, 'pg_proc')), '') = ''
    $$,
    'every function of the five schemas has a comment'
);

-- The checks are not vacuous: an uncommented table and column are noticed.
CREATE TABLE activity.pgtap_probe (tenant_id text);
SELECT set_eq('SELECT object FROM uncommented_relations', $$ VALUES ('activity.pgtap_probe') $$,
    'a table without comment is reported');
COMMENT ON TABLE activity.pgtap_probe IS 'probe';
SELECT set_eq('SELECT object FROM uncommented_columns', $$ VALUES ('activity.pgtap_probe.tenant_id') $$,
    'a column without comment is reported');
DROP TABLE activity.pgtap_probe;

SELECT * FROM finish();
ROLLBACK;
