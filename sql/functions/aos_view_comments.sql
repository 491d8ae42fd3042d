-- A derived view's column comments are its source's: the analytics views' per-tenant views
-- (*_tenant, *_api) select every column of their materialized view, so the view files write each
-- column's comment once, on the materialized view, and copy them here.
CREATE OR REPLACE FUNCTION aos.copy_column_comments(p_from regclass, p_to regclass) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_column record;
    v_copied integer := 0;
BEGIN
    FOR v_column IN
        SELECT a.attname, pg_catalog.col_description(p_from, a.attnum) AS description
        FROM pg_catalog.pg_attribute AS a
        JOIN pg_catalog.pg_attribute AS t ON t.attrelid = p_to AND t.attname = a.attname
                                         AND t.attnum > 0 AND NOT t.attisdropped
        WHERE a.attrelid = p_from AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
    LOOP
        EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', p_to, v_column.attname, v_column.description);
        v_copied := v_copied + 1;
    END LOOP;
    RETURN v_copied;
END
$fn$;
COMMENT ON FUNCTION aos.copy_column_comments(regclass, regclass) IS
    'Copies the column comments of p_from to the columns of the same name of p_to; returns how many. Used by the '
    'view files (sql/views) for the views derived from a materialized view. Executable by the owner only.';
REVOKE ALL ON FUNCTION aos.copy_column_comments(regclass, regclass) FROM PUBLIC;
