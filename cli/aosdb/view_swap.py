"""Repeatable view files: the materialized view is rebuilt beside the live one, then swapped in.

A file in sql/views defines one materialized view, its indexes, comments and
grants, and the plain views the project builds on it. Applying a changed file:

1. build: the materialized view and its indexes are created WITH DATA in the
   schema aosdb_staging. Only ACCESS SHARE locks on the tables it reads: readers
   and writers go on.
2. swap, in one short transaction under lock_timeout: the live view and the
   project's views on it are dropped (never CASCADE), the new one is moved into
   place (SET SCHEMA keeps its indexes), the file's comments, grants and plain
   views are applied, and the checksum is recorded.

What a DBA built on these views is never dropped silently. Before anything
changes, and again under the swap's lock, the runner looks for objects that
depend on the views and for grants the file does not make. When there are any,
`migrate` stops and names them, unless --recreate-dependents was given: then
dependent views and materialized views (with their owners, grants, comments and
indexes) and the extra grants are recreated in the swap transaction. Objects it
cannot recreate (functions with SQL-standard bodies, statistics objects, ...)
always stop the migration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import psycopg
import pglast
from pglast import ast
from pglast.enums import ObjectType
from psycopg import sql

from aosdb.errors import AosdbError
from aosdb.migration_files import split_statements

STAGING_SCHEMA = "aosdb_staging"
_NAME_AT = re.compile(r'(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)(?:\s*\.\s*(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*))?')


def _qualified(schema: str, name: str) -> str:
    return f"{schema}.{name}"


@dataclass
class ViewFile:
    rel: str
    schema: str
    name: str
    build: list[str]  # CREATE MATERIALIZED VIEW and its indexes, aimed at the staging schema
    finish: list[str]  # the rest of the file, unchanged
    index_names: set[str]
    own_views: list[tuple[str, str]]  # plain views the file creates, in file order
    own_grants: set[tuple[str, str, str]] = field(default_factory=set)  # (relation, grantee, PRIVILEGE)

    @property
    def qualified(self) -> str:
        return _qualified(self.schema, self.name)

    def roots(self) -> list[str]:
        return [self.qualified] + [_qualified(s, n) for s, n in self.own_views]


def _retarget(statement: str, location: int) -> str:
    """The statement with the relation name written at `location` moved into the staging schema."""
    match = _NAME_AT.match(statement, location)
    if not match:
        raise AosdbError(f"cannot find the relation name in: {statement[:80]}")
    name = pglast.parse_sql(f"SELECT * FROM {match.group(0)}")[0].stmt.fromClause[0].relname
    return statement[:location] + f"{STAGING_SCHEMA}.{_ident(name)}" + statement[match.end():]


def _ident(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def parse_view_file(rel: str, text: str) -> ViewFile | None:
    """The file's parts; None for a file of plain views only (CREATE OR REPLACE VIEW needs no swap)."""
    statements = [(s, pglast.parse_sql(s)[0].stmt) for s in split_statements(text)]
    if any(isinstance(n, ast.DropStmt) for _, n in statements):
        raise AosdbError(f"{rel}: a view file never drops anything; aosdb migrate replaces the views itself")
    matviews = [n for _, n in statements
                if isinstance(n, ast.CreateTableAsStmt) and n.objtype == ObjectType.OBJECT_MATVIEW]
    if not matviews:
        return None
    if len(matviews) > 1:
        raise AosdbError(f"{rel}: a view file defines at most one materialized view (found {len(matviews)})")
    target = matviews[0].into.rel
    if not target.schemaname:
        raise AosdbError(f"{rel}: name the materialized view with its schema")
    view = ViewFile(rel, target.schemaname, target.relname, [], [], set(), [])
    for text_, node in statements:
        if node is matviews[0]:
            if node.into.skipData:
                raise AosdbError(f"{rel}: the materialized view is built WITH DATA")
            view.build.append(_retarget(text_, target.location))
        elif isinstance(node, ast.IndexStmt) and (node.relation.schemaname, node.relation.relname) == (
                view.schema, view.name):
            if not node.idxname:
                raise AosdbError(f"{rel}: name every index of {view.qualified}")
            view.index_names.add(node.idxname)
            view.build.append(_retarget(text_, node.relation.location))
        else:
            if isinstance(node, ast.ViewStmt):
                view.own_views.append((node.view.schemaname or "public", node.view.relname))
            if isinstance(node, ast.GrantStmt) and node.is_grant and node.objtype == ObjectType.OBJECT_TABLE:
                privileges = [p.priv_name.upper() for p in node.privileges or ()] or ["SELECT"]
                for obj in node.objects:
                    for grantee in node.grantees:
                        for privilege in privileges:
                            view.own_grants.add((_qualified(obj.schemaname or "public", obj.relname),
                                                 grantee.rolename or "PUBLIC", privilege))
            view.finish.append(text_)
    return view


# ---- what a DBA built on the views ----------------------------------------------------------

_DEPENDENTS = """
WITH RECURSIVE roots AS (
    SELECT c.oid FROM pg_catalog.pg_class AS c
    WHERE c.oid = ANY (SELECT to_regclass(r) FROM unnest(%(roots)s::text[]) AS r)
), deps(oid, depth) AS (
    SELECT rw.ev_class, 1
    FROM roots JOIN pg_catalog.pg_depend AS d
        ON d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = roots.oid AND d.deptype = 'n'
        AND d.classid = 'pg_catalog.pg_rewrite'::regclass
    JOIN pg_catalog.pg_rewrite AS rw ON rw.oid = d.objid
    WHERE rw.ev_class NOT IN (SELECT oid FROM roots)
    UNION
    SELECT rw.ev_class, deps.depth + 1
    FROM deps JOIN pg_catalog.pg_depend AS d
        ON d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = deps.oid AND d.deptype = 'n'
        AND d.classid = 'pg_catalog.pg_rewrite'::regclass
    JOIN pg_catalog.pg_rewrite AS rw ON rw.oid = d.objid
    WHERE rw.ev_class <> deps.oid AND deps.depth < 50
)
SELECT aosdb_qualified.name, c.relkind::text, max(deps.depth)
FROM deps JOIN pg_catalog.pg_class AS c ON c.oid = deps.oid
CROSS JOIN LATERAL (SELECT pg_catalog.format('%%I.%%I', n.nspname, c.relname) FROM pg_catalog.pg_namespace AS n
                    WHERE n.oid = c.relnamespace) AS aosdb_qualified(name)
GROUP BY aosdb_qualified.name, c.relkind
ORDER BY max(deps.depth), 1"""

# Dependents that are not views (functions with SQL-standard bodies, statistics, ...) and
# indexes the file does not define: on the roots and on the dependent views found above.
_OTHER_DEPENDENTS = """
SELECT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid),
       CASE WHEN d.classid = 'pg_catalog.pg_class'::regclass
            AND (SELECT relkind FROM pg_catalog.pg_class WHERE oid = d.objid) = 'i'
            THEN (SELECT relname FROM pg_catalog.pg_class WHERE oid = d.objid) END,
       (SELECT pg_catalog.format('%%I.%%I', n.nspname, c.relname) FROM pg_catalog.pg_class AS c
        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace WHERE c.oid = d.refobjid)
FROM pg_catalog.pg_depend AS d
WHERE d.refclassid = 'pg_catalog.pg_class'::regclass
  AND d.refobjid = ANY (SELECT to_regclass(r) FROM unnest(%(rels)s::text[]) AS r)
  AND d.classid <> 'pg_catalog.pg_rewrite'::regclass
  AND d.classid <> 'pg_catalog.pg_type'::regclass
  AND d.deptype IN ('n', 'a')
ORDER BY 1"""

_GRANTS = """
SELECT pg_catalog.format('%%I.%%I', n.nspname, c.relname), coalesce(r.rolname, 'PUBLIC'), a.privilege_type,
       a.is_grantable, c.relowner::regrole::text
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) AS a
LEFT JOIN pg_catalog.pg_roles AS r ON r.oid = a.grantee
WHERE c.oid = ANY (SELECT to_regclass(x) FROM unnest(%(rels)s::text[]) AS x)
  AND a.grantee <> c.relowner
ORDER BY 1, 2, 3"""

_COLUMN_GRANTS = """
SELECT pg_catalog.format('%%I.%%I', n.nspname, c.relname), at.attname::text, coalesce(r.rolname, 'PUBLIC'),
       a.privilege_type
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute AS at ON at.attrelid = c.oid AND at.attacl IS NOT NULL
CROSS JOIN LATERAL pg_catalog.aclexplode(at.attacl) AS a
LEFT JOIN pg_catalog.pg_roles AS r ON r.oid = a.grantee
WHERE c.oid = ANY (SELECT to_regclass(x) FROM unnest(%(rels)s::text[]) AS x)
ORDER BY 1, 2, 3"""


@dataclass
class Dependents:
    views: list[tuple[str, str, int]]  # (name, relkind, depth): recreatable
    indexes: list[tuple[str, str]]  # (index, on relation): DBA indexes, recreatable
    others: list[str]  # described objects that cannot be recreated
    grants: list[tuple[str, str, str, bool]]  # (relation, grantee, privilege, grantable) the file does not make
    column_grants: list[tuple[str, str, str, str]]

    def empty(self) -> bool:
        return not (self.views or self.indexes or self.others or self.grants or self.column_grants)

    def describe(self) -> str:
        items = [f"{'materialized view' if kind == 'm' else 'view'} {name}" for name, kind, _ in self.views]
        items += [f"index {index} on {rel}" for index, rel in self.indexes]
        items += self.others
        items += [f"GRANT {priv} ON {rel} TO {grantee}" for rel, grantee, priv, _ in self.grants]
        items += [f"GRANT {priv} ({col}) ON {rel} TO {grantee}" for rel, col, grantee, priv in self.column_grants]
        return "; ".join(items)


def find_dependents(conn: psycopg.Connection, view: ViewFile) -> Dependents:
    roots = view.roots()
    views = [(name, kind, depth) for name, kind, depth in conn.execute(_DEPENDENTS, {"roots": roots}).fetchall()]
    dependent_names = [name for name, _, _ in views]
    indexes, others = [], []
    # Index names carry no schema prefix; the file's own indexes live on the materialized view.
    for described, index_name, on in conn.execute(_OTHER_DEPENDENTS, {"rels": roots + dependent_names}).fetchall():
        if index_name is not None:
            if on in dependent_names:
                continue  # a dependent materialized view's index: recreated with it
            if not (on == view.qualified and index_name in view.index_names):
                indexes.append((index_name, on))
        else:
            others.append(described)
    grants = []
    own = view.own_grants
    for rel, grantee, priv, grantable, _owner in conn.execute(_GRANTS, {"rels": roots}).fetchall():
        if (rel, grantee, priv) not in own:
            grants.append((rel, grantee, priv, grantable))
    column_grants = [tuple(r) for r in conn.execute(_COLUMN_GRANTS, {"rels": roots}).fetchall()]
    return Dependents(views, indexes, others, grants, column_grants)


# ---- recreating them -------------------------------------------------------------------------

_VIEW_DDL = """
SELECT pg_catalog.format('%%I.%%I', n.nspname, c.relname), c.relkind::text,
       (SELECT rolname::text FROM pg_catalog.pg_roles WHERE oid = c.relowner), c.reloptions,
       pg_catalog.pg_get_viewdef(c.oid, true), c.relispopulated,
       pg_catalog.obj_description(c.oid, 'pg_class'),
       ARRAY(SELECT pg_catalog.pg_get_indexdef(i.indexrelid) FROM pg_catalog.pg_index AS i
             WHERE i.indrelid = c.oid ORDER BY i.indexrelid),
       ARRAY(SELECT format('COMMENT ON COLUMN %%I.%%I.%%I IS %%L', n.nspname, c.relname, a.attname, d.description)
             FROM pg_catalog.pg_description AS d
             JOIN pg_catalog.pg_attribute AS a ON a.attrelid = d.objoid AND a.attnum = d.objsubid
             WHERE d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid > 0)
FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass(%s)"""


def _recreation_script(conn: psycopg.Connection, deps: Dependents) -> tuple[list[str], list[str]]:
    """(drops, creates): the statements that drop the recreatable dependents and build them again."""
    drops: list[str] = []
    creates: list[str] = []
    for name, _, _ in deps.views:
        rel, kind, owner, options, definition, populated, comment, indexdefs, column_comments = conn.execute(
            _VIEW_DDL, (name,)).fetchone()
        with_options = f" WITH ({', '.join(options)})" if options else ""
        definition = definition.rstrip().rstrip(";")
        if kind == "m":
            drops.insert(0, f"DROP MATERIALIZED VIEW {rel}")
            data = "WITH DATA" if populated else "WITH NO DATA"
            creates.append(f"CREATE MATERIALIZED VIEW {rel}{with_options} AS {definition} {data}")
            creates += indexdefs
            keyword = "MATERIALIZED VIEW"
        else:
            drops.insert(0, f"DROP VIEW {rel}")
            creates.append(f"CREATE VIEW {rel}{with_options} AS {definition}")
            keyword = "VIEW"
        creates.append(f"ALTER {keyword} {rel} OWNER TO {_ident(owner)}")
        if comment is not None:
            creates.append(f"COMMENT ON {keyword} {rel} IS {sql.Literal(comment).as_string(conn)}")
        creates += column_comments
        for grant_rel, grantee, priv, grantable, _owner in conn.execute(_GRANTS, {"rels": [rel]}).fetchall():
            creates.append(_grant(grant_rel, grantee, priv, grantable))
    for index, rel in deps.indexes:
        definition = conn.execute(
            "SELECT pg_catalog.pg_get_indexdef(i.indexrelid) FROM pg_catalog.pg_index AS i "
            "JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = to_regclass(%s) AND c.relname = %s", (rel, index)).fetchone()[0]
        creates.append(definition)
    for rel, grantee, priv, grantable in deps.grants:
        creates.append(_grant(rel, grantee, priv, grantable))
    for rel, column, grantee, priv in deps.column_grants:
        creates.append(f"GRANT {priv} ({_ident(column)}) ON {rel} TO {_grantee(grantee)}")
    return drops, creates


def _grantee(grantee: str) -> str:
    return "PUBLIC" if grantee == "PUBLIC" else _ident(grantee)


def _grant(rel: str, grantee: str, priv: str, grantable: bool) -> str:
    option = " WITH GRANT OPTION" if grantable else ""
    return f"GRANT {priv} ON {rel} TO {_grantee(grantee)}{option}"


def refuse(view: ViewFile, deps: Dependents) -> AosdbError:
    return AosdbError(
        f"{view.rel}: {view.qualified} must be rebuilt, and objects outside aosdb depend on it or grants "
        f"aosdb does not make exist on it: {deps.describe()}. Nothing was changed. Re-run with "
        f"`aosdb migrate --recreate-dependents` to drop and recreate them around the swap, or drop them "
        f"yourself, migrate, and create them again")


# ---- the two steps ---------------------------------------------------------------------------


def build(conn: psycopg.Connection, view: ViewFile) -> None:
    """Step 1: the new materialized view beside the live one, in the staging schema, committed."""
    with conn.transaction():
        _quiet(conn, True)  # the runner's own IF [NOT] EXISTS notices are noise; the file's are not
        # The migrating user's schema, like aosdb_migrations: aos_owner may lack CREATE on a database
        # cloned or restored from another (database privileges are not copied).
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(STAGING_SCHEMA)))
        conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO aos_owner").format(sql.Identifier(STAGING_SCHEMA)))
        conn.execute("SET LOCAL ROLE aos_owner")
        conn.execute(sql.SQL("DROP MATERIALIZED VIEW IF EXISTS {}.{}").format(
            sql.Identifier(STAGING_SCHEMA), sql.Identifier(view.name)))
        _quiet(conn, False)
        for statement in view.build:
            conn.execute(statement)


def swap(conn: psycopg.Connection, view: ViewFile, recreate_dependents: bool, record) -> None:
    """Step 2, inside the caller's transaction: the live view replaced by the staged one."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (view.qualified,)).fetchone()[0]
    drops: list[str] = []
    creates: list[str] = []
    if exists:
        # ACCESS EXCLUSIVE before looking (LOCK TABLE refuses materialized views; a no-op ALTER ... OWNER
        # takes the same lock): no dependent can appear between the look and the drop.
        conn.execute(sql.SQL("ALTER MATERIALIZED VIEW {}.{} OWNER TO aos_owner").format(
            sql.Identifier(view.schema), sql.Identifier(view.name)))
        deps = find_dependents(conn, view)
        if not deps.empty():
            if not recreate_dependents or deps.others:
                raise refuse(view, deps)
            drops, creates = _recreation_script(conn, deps)
    for statement in drops:
        conn.execute(statement)
    conn.execute("SET LOCAL ROLE aos_owner")
    _quiet(conn, True)
    for schema, name in reversed(view.own_views):
        conn.execute(sql.SQL("DROP VIEW IF EXISTS {}.{}").format(sql.Identifier(schema), sql.Identifier(name)))
    conn.execute(sql.SQL("DROP MATERIALIZED VIEW IF EXISTS {}.{}").format(
        sql.Identifier(view.schema), sql.Identifier(view.name)))
    conn.execute(sql.SQL("ALTER MATERIALIZED VIEW {}.{} SET SCHEMA {}").format(
        sql.Identifier(STAGING_SCHEMA), sql.Identifier(view.name), sql.Identifier(view.schema)))
    _quiet(conn, False)
    for statement in view.finish:
        conn.execute(statement)
    conn.execute("RESET ROLE")
    for statement in creates:
        conn.execute(statement)
    record()


def _quiet(conn: psycopg.Connection, quiet: bool) -> None:
    conn.execute("SELECT set_config('client_min_messages', %s, true)", ("warning" if quiet else "notice",))


def drop_staging_schema(conn: psycopg.Connection) -> None:
    """The staging schema goes once empty; RESTRICT keeps anything a crash or a DBA left in it."""
    with conn.transaction():
        try:
            with conn.transaction():
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {}").format(sql.Identifier(STAGING_SCHEMA)))
        except psycopg.errors.DependentObjectsStillExist:
            pass
