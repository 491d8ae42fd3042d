-- The facades refuse a filter value outside its set with 22023, naming the values allowed. Those
-- sets are the CHECK constraints' of the columns filtered: this test reads each column's CHECK
-- from the catalog and holds the facade's list to it, so that a value added to a CHECK (a new
-- run status, a new proposal type) cannot be missed by the facade that filters on it.
BEGIN;

SELECT aos.register_tenant('t1');

-- The values a single-column CHECK (col IN (...)) of table.column allows, sorted.
CREATE FUNCTION pg_temp.check_values(p_table regclass, p_column name) RETURNS text[]
LANGUAGE sql AS $fn$
    SELECT array_agg(m[1] ORDER BY m[1])
    FROM pg_catalog.pg_constraint AS c
    JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
    CROSS JOIN LATERAL regexp_matches(pg_catalog.pg_get_constraintdef(c.oid), '''([^'']*)''', 'g') AS m
    WHERE c.conrelid = p_table AND c.contype = 'c' AND cardinality(c.conkey) = 1 AND a.attname = p_column
$fn$;

-- The values the facade's 22023 message says are allowed, sorted ('... must be one of a, b, got ...').
CREATE FUNCTION pg_temp.allowed_by(p_sql text) RETURNS text[]
LANGUAGE sql AS $fn$
    SELECT array_agg(v ORDER BY v)
    FROM regexp_split_to_table(
        substring(aosdb_test.outcome_message(p_sql) FROM '^22023 -: \S+ must be one of (.*), got '), ', ') AS v
$fn$;

CREATE TEMP TABLE enumerated (facade_call text, table_name regclass, column_name name) ON COMMIT DROP;
INSERT INTO enumerated VALUES
    ($$SELECT api.activity_runs(status => 'zzz')$$, 'activity.runs', 'status'),
    ($$SELECT api.incidents(severity => 'zzz')$$, 'incidents.incidents', 'severity'),
    ($$SELECT api.incidents(lifecycle_state => 'zzz')$$, 'incidents.incidents', 'lifecycle_state'),
    ($$SELECT api.incidents(cause_type => 'zzz')$$, 'incidents.incidents', 'cause_type'),
    ($$SELECT api.policy_proposals(status => 'zzz')$$, 'policies.policy_proposals', 'status'),
    ($$SELECT api.policy_proposals(proposal_type => 'zzz')$$, 'policies.policy_proposals', 'proposal_type');

GRANT SELECT ON enumerated TO PUBLIC;

SELECT plan((SELECT count(*)::int * 2 FROM enumerated));

SELECT isnt(pg_temp.check_values(e.table_name, e.column_name), NULL,
            format('%s.%s has a CHECK that enumerates its values', e.table_name, e.column_name))
FROM enumerated AS e ORDER BY e.facade_call;

SET LOCAL ROLE aos_api;
SELECT set_config('aos.tenant_id', 't1', TRUE);
SELECT is(pg_temp.allowed_by(e.facade_call), pg_temp.check_values(e.table_name, e.column_name),
          format('%s allows exactly the values of the CHECK on %s.%s', e.facade_call, e.table_name, e.column_name))
FROM enumerated AS e ORDER BY e.facade_call;
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
