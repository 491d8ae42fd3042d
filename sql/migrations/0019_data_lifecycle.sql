-- depends: 0018_operations
-- Data lifecycle a DBA can run (README, "Data lifecycle"):
--   * aos.prune_runs(older_than, batch_size): retention of completed runs with their traces and
--     steps, in batches that each commit; a run that any governance record still links to stays;
--   * aos.offboard_tenant(tenant_id): every row of one tenant, in every domain, in one transaction.
-- Both run as the caller and are executable by aos_owner (and its members, superusers) alone: they
-- delete as the owner of the tables, which neither row-level security nor the append-only grants
-- (sql/tests/14-append-only.sql) hold back, so those guards stay whole for every other role.
-- Creates functions only: nothing is locked beyond the catalog rows.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '5min';
SET LOCAL ROLE aos_owner;

-- ------------------------------------------------------------------------------------ run retention

-- One batch of one tenant: the next p_batch_size runs (by created_at, id) after the key
-- (p_after_created, p_after_id) that were created before p_cutoff are looked at; those completed
-- before p_cutoff that nothing links to are deleted with their traces and steps. The caller goes on
-- from (last_created, last_id) while scanned = p_batch_size. Every batch reads and deletes at most
-- p_batch_size runs, however many linked runs the retention keeps.
CREATE FUNCTION activity._prune_runs_batch(
    p_tenant_id text, p_cutoff timestamptz, p_batch_size integer,
    p_after_created timestamptz DEFAULT '-infinity',
    p_after_id uuid DEFAULT '00000000-0000-0000-0000-000000000000'
)
RETURNS TABLE (
    scanned integer, runs_deleted integer, traces_deleted integer, steps_deleted integer,
    last_created timestamptz, last_id uuid
)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_runs text[];
    v_runs_deleted integer;
    v_traces_deleted integer;
    v_steps_deleted integer;
BEGIN
    IF p_tenant_id IS NULL OR p_cutoff IS NULL OR p_after_created IS NULL OR p_after_id IS NULL THEN
        RAISE EXCEPTION 'tenant_id, cutoff and the position must not be null' USING ERRCODE = '22023';
    END IF;
    IF p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = '22023';
    END IF;

    -- The page: runs_tenant_created_at_idx serves it.
    SELECT count(*)::integer, (array_agg(p.created_at ORDER BY p.created_at DESC, p.id DESC))[1],
           (array_agg(p.id ORDER BY p.created_at DESC, p.id DESC))[1]
    INTO scanned, last_created, last_id
    FROM (
        SELECT r.created_at, r.id FROM activity.runs AS r
        WHERE r.tenant_id = p_tenant_id AND r.created_at < p_cutoff AND r.created_at >= p_after_created
          AND (r.created_at, r.id) > (p_after_created, p_after_id)
        ORDER BY r.created_at, r.id
        LIMIT p_batch_size
    ) AS p;
    IF scanned = 0 THEN
        runs_deleted := 0;
        traces_deleted := 0;
        steps_deleted := 0;
        RETURN NEXT;
        RETURN;
    END IF;

    -- The eligible runs of the page, locked: completed before the cutoff, and no foreign key of a
    -- governance record points at them (sql/tests/57-data-lifecycle.sql holds this list to the
    -- catalog). A run a worker holds locked right now is left for the next prune.
    SELECT coalesce(array_agg(e.run_id), '{}') INTO v_runs
    FROM (
        SELECT r.run_id FROM activity.runs AS r
        WHERE r.tenant_id = p_tenant_id
          AND r.created_at >= p_after_created AND r.created_at <= last_created
          AND (r.created_at, r.id) > (p_after_created, p_after_id)
          AND (r.created_at, r.id) <= (last_created, last_id)
          AND r.state = 'completed'
          AND coalesce(r.completed_at, r.created_at) < p_cutoff
          AND NOT EXISTS (SELECT FROM incidents.incidents AS i
                          WHERE i.tenant_id = r.tenant_id AND i.source_run_id = r.run_id)
          AND NOT EXISTS (SELECT FROM incidents.incidents AS i
                          WHERE i.tenant_id = r.tenant_id AND i.llm_run_id = r.id)
          AND NOT EXISTS (SELECT FROM incidents.incident_evidence AS v
                          WHERE v.tenant_id = r.tenant_id AND v.run_id = r.run_id)
          AND NOT EXISTS (SELECT FROM policies.policy_proposals AS pp
                          WHERE pp.tenant_id = r.tenant_id AND pp.triggering_run_id = r.run_id)
          AND NOT EXISTS (SELECT FROM policies.prevention_records AS pr
                          WHERE pr.tenant_id = r.tenant_id AND pr.run_id = r.run_id)
        FOR UPDATE OF r SKIP LOCKED
    ) AS e;

    DELETE FROM activity.aos_trace_steps AS s
    USING activity.aos_traces AS t
    WHERE t.tenant_id = p_tenant_id AND t.run_id = ANY (v_runs)
      AND s.tenant_id = t.tenant_id AND s.trace_id = t.trace_id;
    GET DIAGNOSTICS v_steps_deleted = ROW_COUNT;
    DELETE FROM activity.aos_traces AS t
    WHERE t.tenant_id = p_tenant_id AND t.run_id = ANY (v_runs);
    GET DIAGNOSTICS v_traces_deleted = ROW_COUNT;
    DELETE FROM activity.runs AS r
    WHERE r.tenant_id = p_tenant_id AND r.run_id = ANY (v_runs);
    GET DIAGNOSTICS v_runs_deleted = ROW_COUNT;

    runs_deleted := v_runs_deleted;
    traces_deleted := v_traces_deleted;
    steps_deleted := v_steps_deleted;
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION activity._prune_runs_batch(text, timestamptz, integer, timestamptz, uuid) IS
    'One batch of aos.prune_runs for one tenant: looks at the next p_batch_size runs created before p_cutoff after the '
    'key (p_after_created, p_after_id) and deletes those completed before p_cutoff that no incident, evidence, proposal '
    'or prevention record links to, with their traces and steps. Returns how many runs it looked at, what it deleted '
    'and the key to go on from. Executable by aos_owner only. Errors: 22023 a null argument or batch size below 1.';
REVOKE ALL ON FUNCTION activity._prune_runs_batch(text, timestamptz, integer, timestamptz, uuid) FROM PUBLIC;

-- The procedure commits after every batch, so it cannot pin settings (a procedure with SET
-- clauses may not COMMIT) nor run as its owner: every name in it is schema-qualified, and the
-- batches run in activity._prune_runs_batch, which pins search_path and jit. It must be CALLed outside
-- an explicit transaction block (pg_cron does).
CREATE PROCEDURE aos.prune_runs(
    older_than interval DEFAULT '90 days',
    batch_size integer DEFAULT 5000,
    INOUT runs_deleted bigint DEFAULT NULL,
    INOUT traces_deleted bigint DEFAULT NULL,
    INOUT steps_deleted bigint DEFAULT NULL,
    INOUT batches integer DEFAULT NULL
)
LANGUAGE plpgsql
AS $fn$
DECLARE
    v_cutoff timestamptz;
    v_tenants text[];
    v_tenant text;
    v_after_created timestamptz;
    v_after_id uuid;
    v_batch record;
BEGIN
    IF older_than IS NULL OR older_than OPERATOR(pg_catalog.<) pg_catalog.interval '0' THEN
        RAISE EXCEPTION 'older_than must be an interval of zero or more, not %', coalesce(older_than::pg_catalog.text, 'null')
            USING ERRCODE = '22023';
    END IF;
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 OR batch_size OPERATOR(pg_catalog.>) 100000 THEN
        RAISE EXCEPTION 'batch_size must be between 1 and 100000, not %', coalesce(batch_size::pg_catalog.text, 'null')
            USING ERRCODE = '22023';
    END IF;
    v_cutoff := pg_catalog.now() OPERATOR(pg_catalog.-) older_than;
    runs_deleted := 0;
    traces_deleted := 0;
    steps_deleted := 0;
    batches := 0;
    SELECT pg_catalog.array_agg(t.tenant_id ORDER BY t.tenant_id) INTO v_tenants FROM aos.tenants AS t;
    FOREACH v_tenant IN ARRAY coalesce(v_tenants, '{}') LOOP
        v_after_created := '-infinity';
        v_after_id := '00000000-0000-0000-0000-000000000000';
        LOOP
            SELECT b.* INTO v_batch
            FROM activity._prune_runs_batch(v_tenant, v_cutoff, batch_size, v_after_created, v_after_id) AS b;
            batches := batches OPERATOR(pg_catalog.+) 1;
            runs_deleted := runs_deleted OPERATOR(pg_catalog.+) v_batch.runs_deleted;
            traces_deleted := traces_deleted OPERATOR(pg_catalog.+) v_batch.traces_deleted;
            steps_deleted := steps_deleted OPERATOR(pg_catalog.+) v_batch.steps_deleted;
            IF v_batch.runs_deleted OPERATOR(pg_catalog.>) 0 THEN
                RAISE NOTICE 'prune_runs: tenant %: deleted % runs, % traces, % steps',
                    v_tenant, v_batch.runs_deleted, v_batch.traces_deleted, v_batch.steps_deleted;
            END IF;
            COMMIT;
            EXIT WHEN v_batch.scanned OPERATOR(pg_catalog.<) batch_size;
            v_after_created := v_batch.last_created;
            v_after_id := v_batch.last_id;
        END LOOP;
    END LOOP;
    RAISE NOTICE 'prune_runs: deleted % runs, % traces, % steps completed before % in % batches',
        runs_deleted, traces_deleted, steps_deleted, v_cutoff, batches;
END
$fn$;
COMMENT ON PROCEDURE aos.prune_runs(interval, integer, bigint, bigint, bigint, integer) IS -- noqa: LT01
    'Run retention: deletes the runs completed more than older_than ago (default 90 days), with their traces and steps, '
    'tenant by tenant in batches of at most batch_size runs (default 5000), committing after each, so no batch holds its '
    'row locks for long. Keeps live runs and every run an incident, incident evidence, proposal or prevention record links '
    'to (those records have retentions of their own). Reports each batch that deleted runs (NOTICE) and returns the '
    'totals. CALL it outside a transaction block, as aos_owner (or a member, or a superuser): executable by no other '
    'role. The analytics views '
    'drop the deleted runs at their next refresh. Errors: 22023 a null or negative older_than, a batch_size outside '
    '1..100000; 2D000 CALLed inside a transaction block.';
REVOKE ALL ON PROCEDURE aos.prune_runs(interval, integer, bigint, bigint, bigint, integer) FROM PUBLIC;

-- ------------------------------------------------------------------------------------ offboarding

-- Each domain empties its own tables of one tenant (its code writes its own domain only), in the
-- order its foreign keys need, and reports the rows per table. aos.offboard_tenant calls them in
-- the order the cross-domain links need: policies, incidents, activity, then the platform.
CREATE FUNCTION policies._offboard_tenant(p_tenant_id text)
RETURNS TABLE (table_name text, rows_deleted bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    DELETE FROM policies.proposal_incidents AS l WHERE l.tenant_id = p_tenant_id;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    table_name := 'policies.proposal_incidents';
    RETURN NEXT;
    DELETE FROM policies.prevention_records AS r WHERE r.tenant_id = p_tenant_id;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    table_name := 'policies.prevention_records';
    RETURN NEXT;
    DELETE FROM policies.policy_rules AS r WHERE r.tenant_id = p_tenant_id;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    table_name := 'policies.policy_rules';
    RETURN NEXT;
    DELETE FROM policies.policy_proposals AS p WHERE p.tenant_id = p_tenant_id;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    table_name := 'policies.policy_proposals';
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION policies._offboard_tenant(text) IS
    'aos.offboard_tenant''s part in the policies domain: deletes the tenant''s proposal links, prevention records, rules '
    'and proposals, and returns the rows deleted per table. Executable by aos_owner only.';
REVOKE ALL ON FUNCTION policies._offboard_tenant(text) FROM PUBLIC;

CREATE FUNCTION incidents._offboard_tenant(p_tenant_id text)
RETURNS TABLE (table_name text, rows_deleted bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    DELETE FROM incidents.incident_events AS e WHERE e.tenant_id = p_tenant_id;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    table_name := 'incidents.incident_events';
    RETURN NEXT;
    DELETE FROM incidents.incident_evidence AS e WHERE e.tenant_id = p_tenant_id;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    table_name := 'incidents.incident_evidence';
    RETURN NEXT;
    DELETE FROM incidents.incidents AS i WHERE i.tenant_id = p_tenant_id;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    table_name := 'incidents.incidents';
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION incidents._offboard_tenant(text) IS
    'aos.offboard_tenant''s part in the incidents domain: deletes the tenant''s incident timelines, evidence and incidents '
    '(after policies._offboard_tenant: proposals point at incidents), and returns the rows deleted per table. '
    'Executable by aos_owner only.';
REVOKE ALL ON FUNCTION incidents._offboard_tenant(text) FROM PUBLIC;

CREATE FUNCTION activity._offboard_tenant(p_tenant_id text)
RETURNS TABLE (table_name text, rows_deleted bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
BEGIN
    DELETE FROM activity.aos_trace_steps AS s WHERE s.tenant_id = p_tenant_id;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    table_name := 'activity.aos_trace_steps';
    RETURN NEXT;
    DELETE FROM activity.aos_traces AS t WHERE t.tenant_id = p_tenant_id;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    table_name := 'activity.aos_traces';
    RETURN NEXT;
    DELETE FROM activity.runs AS r WHERE r.tenant_id = p_tenant_id;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    table_name := 'activity.runs';
    RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION activity._offboard_tenant(text) IS
    'aos.offboard_tenant''s part in the activity domain: deletes the tenant''s trace steps, traces and runs (after the '
    'incidents and policies parts: their records point at runs), and returns the rows deleted per table. Executable by '
    'aos_owner only.';
REVOKE ALL ON FUNCTION activity._offboard_tenant(text) FROM PUBLIC;

CREATE FUNCTION aos.offboard_tenant(p_tenant_id text)
RETURNS TABLE (table_name text, rows_deleted bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
    v_logins text;
    v_table regclass;
    v_left boolean;
BEGIN
    IF p_tenant_id IS NULL OR btrim(p_tenant_id) = '' THEN
        RAISE EXCEPTION 'tenant_id is required' USING ERRCODE = '22023';
    END IF;
    IF p_tenant_id !~ '^[a-z0-9][a-z0-9._-]{0,63}$' THEN
        RAISE EXCEPTION 'tenant_id % is not a tenant id (^[a-z0-9][a-z0-9._-]{0,63}$)', format('%L', left(p_tenant_id, 60))
            USING ERRCODE = '22023';
    END IF;
    -- The tenant's row, locked: no run (and so nothing below one) can be added meanwhile.
    PERFORM FROM aos.tenants AS t WHERE t.tenant_id = p_tenant_id FOR UPDATE;
    IF NOT found THEN
        RAISE EXCEPTION 'tenant % does not exist', p_tenant_id USING ERRCODE = 'P0002';
    END IF;
    -- A login bound to the tenant is unbound with it, and an unbound login may choose any tenant.
    SELECT string_agg(coalesce(r.rolname::text, b.login::text), ', ' ORDER BY b.login) INTO v_logins
    FROM aos.bi_logins AS b LEFT JOIN pg_catalog.pg_roles AS r ON b.login_oid = r.oid
    WHERE b.tenant_id = p_tenant_id;
    IF v_logins IS NOT NULL THEN
        RAISE WARNING 'offboard_tenant: logins % were bound to tenant % and are unbound now', v_logins, p_tenant_id
            USING HINT = 'DROP ROLE them, or bind them to another tenant: an unbound login may choose its tenant.';
    END IF;

    RETURN QUERY SELECT d.table_name, d.rows_deleted FROM policies._offboard_tenant(p_tenant_id) AS d;
    RETURN QUERY SELECT d.table_name, d.rows_deleted FROM incidents._offboard_tenant(p_tenant_id) AS d;
    RETURN QUERY SELECT d.table_name, d.rows_deleted FROM activity._offboard_tenant(p_tenant_id) AS d;
    DELETE FROM aos.events AS e WHERE e.tenant_id = p_tenant_id;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    table_name := 'aos.events';
    RETURN NEXT;
    DELETE FROM aos.bi_logins AS b WHERE b.tenant_id = p_tenant_id;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    table_name := 'aos.bi_logins';
    RETURN NEXT;
    DELETE FROM aos.tenants AS t WHERE t.tenant_id = p_tenant_id;
    GET DIAGNOSTICS rows_deleted = ROW_COUNT;
    table_name := 'aos.tenants';
    RETURN NEXT;

    -- A table with a tenant_id column that the parts above do not know (one a later migration
    -- adds without a foreign key) would keep the tenant's rows: refuse, and undo everything.
    FOR v_table IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class AS c
        INNER JOIN pg_catalog.pg_namespace AS n ON c.relnamespace = n.oid
        INNER JOIN pg_catalog.pg_attribute AS a ON c.oid = a.attrelid
        WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies')
          AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND a.attname = 'tenant_id' AND a.attnum > 0 AND NOT a.attisdropped
    LOOP
        EXECUTE format('SELECT EXISTS (SELECT FROM %s WHERE tenant_id = $1)', v_table) INTO v_left USING p_tenant_id;
        IF v_left THEN
            RAISE EXCEPTION 'offboard_tenant does not know %, which still has rows of tenant %', v_table, p_tenant_id
                USING ERRCODE = '55000',
                      HINT = 'Nothing was deleted. A migration that adds a tenant table must add it to offboarding.';
        END IF;
    END LOOP;
END
$fn$;
COMMENT ON FUNCTION aos.offboard_tenant(text) IS
    'Deletes every row of tenant p_tenant_id, in one transaction: its runs, traces, steps, incidents and their timeline '
    'and evidence, proposals and their links, rules, prevention records, outbox events, login bindings and the tenant '
    'itself (each domain''s part in its _offboard_tenant function, in the order the foreign keys need). Returns the rows '
    'deleted per table. The analytics views keep the tenant''s rows until their next refresh (aosdb refresh). Warns '
    'when logins were bound to the tenant: they are unbound now. Executable by aos_owner only (it deletes as the owner, '
    'past the append-only grants). Errors: 22023 a missing or malformed tenant id, P0002 no such tenant, 55000 a table '
    'with a tenant_id column that offboarding does not know still holds rows of the tenant (nothing is deleted).';
REVOKE ALL ON FUNCTION aos.offboard_tenant(text) FROM PUBLIC;

RESET ROLE;
