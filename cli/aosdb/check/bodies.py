"""What a piece of SQL does, read with PostgreSQL's own parser (pglast): the tables it writes and
reads, the functions it calls, and dynamic SQL it cannot see through.

SQL is walked as pglast nodes. A PL/pgSQL body is parsed with pglast.parse_plpgsql and every SQL
statement and expression embedded in it (execsql, PERFORM, RETURN QUERY, FOR ... IN query, IF
conditions, assignments, DECLARE defaults) is parsed again as SQL. Dynamic SQL (EXECUTE, RETURN
QUERY EXECUTE, FOR ... IN EXECUTE, OPEN ... FOR EXECUTE) is followed when its text is a constant,
a concatenation of constants, or format() of a constant (placeholders become a marker name);
anything else is recorded as opaque.

Every fact carries a Where: the file line of the statement (PL/pgSQL line + line within the
embedded statement), so findings point at the offending line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pglast
from pglast import ast, enums
from pglast.parser import ParseError

from aosdb.check.findings import Where

# The name dynamic SQL's placeholders (format's %I, %s, %L) stand for.
DYNAMIC_MARKER = "__dynamic__"
# PL/pgSQL statement slots whose expression is SQL text to EXECUTE, not SQL.
_DYNAMIC_SLOTS = {
    ("PLpgSQL_stmt_dynexecute", "query"),
    ("PLpgSQL_stmt_dynfors", "query"),
    ("PLpgSQL_stmt_return_query", "dynquery"),
    ("PLpgSQL_stmt_open", "dynquery"),
}
# PLpgSQL_expr.parseMode: 0 a whole statement, 2 an expression, 3-5 an assignment "target := expr".
_MODE_EXPR = 2
_MODE_ASSIGN = (3, 4, 5)


class BodyError(Exception):
    """A body the parser rejects: reported as a finding on the function, never a crash."""

    def __init__(self, where: Where, message: str):
        super().__init__(message)
        self.where = where


@dataclass(frozen=True)
class RelRef:
    schema: str | None
    name: str
    where: Where

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


_WRITE_VERBS = {"INSERT": "INSERT INTO", "DELETE": "DELETE FROM", "MERGE": "MERGE INTO", "COPY": "COPY",
                "SELECT INTO": "SELECT INTO", "CREATE TABLE AS": "CREATE TABLE", "UPDATE": "UPDATE",
                "TRUNCATE": "TRUNCATE"}  # fmt: skip


@dataclass(frozen=True)
class Write:
    kind: str  # INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY, SELECT INTO, CREATE TABLE AS
    rel: RelRef
    columns: tuple[str, ...] | None = None  # UPDATE: the SET columns

    def describe(self, target: str | None = None) -> str:
        """The write as SQL says it: `UPDATE activity.runs SET status`."""
        text = f"{_WRITE_VERBS.get(self.kind, self.kind)} {target or self.rel.qualified}"
        if self.kind == "UPDATE" and self.columns:
            text += f" SET {', '.join(self.columns)}"
        return text


@dataclass(frozen=True)
class Call:
    schema: str | None
    name: str
    where: Where


@dataclass
class Facts:
    writes: list[Write] = field(default_factory=list)
    reads: list[RelRef] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    opaque: list[tuple[Where, str]] = field(default_factory=list)  # dynamic SQL that cannot be followed
    ctes: set[str] = field(default_factory=set)

    def extend(self, other: Facts) -> None:
        self.writes += other.writes
        self.reads += other.reads
        self.calls += other.calls
        self.opaque += other.opaque
        self.ctes |= other.ctes


def _names(nodes) -> list[str]:
    return [n.sval for n in nodes or () if isinstance(n, ast.String)]


def _rel(node: ast.RangeVar, where: Where) -> RelRef:
    return RelRef(node.schemaname, node.relname, where)


class _Walker:
    """Collects writes, reads and calls of pglast nodes; where_of maps a node location to a Where."""

    def __init__(self, facts: Facts, where_of: Callable[[int | None], Where]):
        self.facts = facts
        self.where_of = where_of

    def at(self, node) -> Where:
        return self.where_of(getattr(node, "location", None))

    def write(self, kind: str, rel: ast.RangeVar | None, columns: tuple[str, ...] | None = None) -> None:
        if rel is not None:
            self.facts.writes.append(Write(kind, _rel(rel, self.at(rel)), columns))

    def walk(self, node, skip: tuple[str, ...] = ()) -> None:
        if isinstance(node, (list, tuple)):
            for item in node:
                self.walk(item)
            return
        if not isinstance(node, ast.Node):
            return
        handler = getattr(self, f"_on_{type(node).__name__}", None)
        if handler is not None and not skip:
            handler(node)
            return
        for slot in type(node).__slots__:
            if slot not in skip:
                self.walk(getattr(node, slot, None))

    def _on_InsertStmt(self, node: ast.InsertStmt) -> None:
        self.write("INSERT", node.relation)
        conflict = node.onConflictClause
        if conflict is not None and conflict.action == enums.OnConflictAction.ONCONFLICT_UPDATE:
            self.write("UPDATE", node.relation, tuple(t.name for t in conflict.targetList or ()))
        self.walk(node, skip=("relation",))

    def _on_UpdateStmt(self, node: ast.UpdateStmt) -> None:
        self.write("UPDATE", node.relation, tuple(t.name for t in node.targetList or ()))
        self.walk(node, skip=("relation",))

    def _on_DeleteStmt(self, node: ast.DeleteStmt) -> None:
        self.write("DELETE", node.relation)
        self.walk(node, skip=("relation",))

    def _on_MergeStmt(self, node: ast.MergeStmt) -> None:
        self.write("MERGE", node.relation)
        self.walk(node, skip=("relation",))

    def _on_TruncateStmt(self, node: ast.TruncateStmt) -> None:
        for rel in node.relations or ():
            self.write("TRUNCATE", rel)

    def _on_CopyStmt(self, node: ast.CopyStmt) -> None:
        if node.is_from:
            self.write("COPY", node.relation)
        elif node.relation is not None:
            self._on_RangeVar(node.relation)
        self.walk(node, skip=("relation",))

    def _on_SelectStmt(self, node: ast.SelectStmt) -> None:
        into = node.intoClause
        if into is not None and into.rel is not None:
            self.write("SELECT INTO", into.rel)
        self.walk(node, skip=("intoClause",))

    def _on_CreateTableAsStmt(self, node: ast.CreateTableAsStmt) -> None:
        if node.objtype == enums.ObjectType.OBJECT_TABLE and node.into is not None:
            self.write("CREATE TABLE AS", node.into.rel)
        self.walk(node.query)

    def _on_RangeVar(self, node: ast.RangeVar) -> None:
        self.facts.reads.append(_rel(node, self.at(node)))

    def _on_CommonTableExpr(self, node: ast.CommonTableExpr) -> None:
        self.facts.ctes.add(node.ctename)
        self.walk(node.ctequery)

    def _on_FuncCall(self, node: ast.FuncCall) -> None:
        names = _names(node.funcname)
        if names:
            schema = names[-2] if len(names) > 1 else None
            self.facts.calls.append(Call(schema, names[-1], self.at(node)))
        self.walk(node, skip=("funcname",))


def sql_facts(sql: str, where_of: Callable[[int | None], Where], fallback: Where) -> Facts:
    """Facts of SQL text (one or more statements); where_of maps offsets in sql to Wheres."""
    try:
        stmts = pglast.parse_sql(sql)
    except ParseError as exc:
        raise BodyError(fallback, f"cannot parse SQL: {exc.args[0]}") from None
    facts = Facts()
    walker = _Walker(facts, lambda loc: fallback if loc is None or loc < 0 else where_of(loc))
    for raw in stmts:
        walker.walk(raw.stmt)
    return facts


def node_facts(node, where_of: Callable[[int | None], Where], fallback: Where) -> Facts:
    """Facts of already parsed nodes (a SQL-standard function body, a view's query)."""
    facts = Facts()
    _Walker(facts, lambda loc: fallback if loc is None or loc < 0 else where_of(loc)).walk(node)
    return facts


# ---- PL/pgSQL --------------------------------------------------------------------------------


def plpgsql_facts(function_sql: str, body_start: int, body_len: int,
                  line_of_body_line: Callable[[int], Where]) -> Facts:  # fmt: skip
    """Facts of a PL/pgSQL function: function_sql is one CREATE FUNCTION statement whose body is
    function_sql[body_start:body_start + body_len]; line_of_body_line maps a PL/pgSQL line
    number (1 = the line the body starts on) to a Where."""
    try:
        tree = pglast.parse_plpgsql(function_sql)
    except ParseError:
        # libpg_query's PL/pgSQL compiler resolves declared types only in pg_catalog and public,
        # and knows no table's columns: `v activity.runs%ROWTYPE` becomes `v runs`, which
        # declares the same composite for parsing and keeps every line where it was.
        try:
            tree = pglast.parse_plpgsql(_unqualify_declared_types(function_sql, body_start, body_len))
        except ParseError as exc:
            raise BodyError(line_of_body_line(1), f"cannot parse the PL/pgSQL body: {exc.args[0]}") from None
    facts = Facts()
    _PlpgsqlWalker(facts, line_of_body_line).walk(tree, 1, None, False)
    return facts


class _PlpgsqlWalker:
    def __init__(self, facts: Facts, line_of_body_line: Callable[[int], Where]):
        self.facts = facts
        self.line = line_of_body_line

    def walk(self, obj, lineno: int, stmt_kind: str | None, dynamic: bool) -> None:
        if isinstance(obj, list):
            for item in obj:
                self.walk(item, lineno, stmt_kind, dynamic)
            return
        if not isinstance(obj, dict):
            return
        lineno = obj.get("lineno", lineno) or lineno
        for key, value in obj.items():
            if key == "PLpgSQL_expr":
                self.expr(value, value.get("lineno", lineno) if isinstance(value, dict) else lineno, dynamic)
            elif key.startswith("PLpgSQL_stmt_"):
                self.walk(value, lineno, key, False)
            else:
                self.walk(value, lineno, stmt_kind, (stmt_kind, key) in _DYNAMIC_SLOTS or dynamic)

    def expr(self, expr: dict, lineno: int, dynamic: bool) -> None:
        query = expr.get("query", "")
        mode = expr.get("parseMode", 0)
        shift = 0
        if mode == _MODE_EXPR or dynamic:
            sql, shift = "SELECT " + query, -7
        elif mode in _MODE_ASSIGN:
            rhs = _assignment_rhs(query)
            sql, shift = "SELECT " + query[rhs:], rhs - 7
        else:
            sql = query

        def where_of(loc: int | None) -> Where:
            pos = max(0, min(len(query), (loc or 0) + shift))
            return self.line(lineno + query.count("\n", 0, pos))

        here = self.line(lineno)
        found = sql_facts(sql, where_of, here)
        if not dynamic:
            self.facts.extend(found)
            return
        # The expression computing the SQL text may itself call functions or read tables.
        self.facts.extend(found)
        text = _constant_sql(_select_expr(sql))
        if text is None:
            self.facts.opaque.append((here, f"EXECUTE of a computed string ({query.strip()[:60]})"))
            return
        try:
            dynamic_facts = sql_facts(text, lambda _loc: here, here)
        except BodyError:
            self.facts.opaque.append((here, f"EXECUTE of text that does not parse ({text.strip()[:60]})"))
            return
        self.facts.extend(dynamic_facts)


def _select_expr(select_sql: str):
    """The expression of `SELECT expr`."""
    stmt = pglast.parse_sql(select_sql)[0].stmt
    return stmt.targetList[0].val if stmt.targetList else None


def _assignment_rhs(query: str) -> int:
    """Offset in "target := expr" (or "target = expr") where expr starts."""
    return next((tok.end for tok in tokens(query) if tok.name in ("COLON_EQUALS", "ASCII_61")), 0)


def _constant_sql(node) -> str | None:
    """The SQL text of a constant string, a || of constants, or format() of a constant."""
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
        return node.val.sval
    if isinstance(node, ast.TypeCast):
        return _constant_sql(node.arg)
    if isinstance(node, ast.A_Expr) and _names(node.name) == ["||"]:
        left, right = _constant_sql(node.lexpr), _constant_sql(node.rexpr)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.FuncCall) and _names(node.funcname)[-1:] == ["format"] and node.args:
        template = _constant_sql(node.args[0])
        return None if template is None else _fill_format(template)
    return None


def _fill_format(template: str) -> str:
    """format()'s template with every placeholder replaced by the marker name (%% stays %)."""
    out, i = [], 0
    while i < len(template):
        ch = template[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        j = i + 1
        while j < len(template) and (template[j].isdigit() or template[j] in "$-*"):
            j += 1
        kind = template[j] if j < len(template) else ""
        if kind == "%":
            out.append("%")
        elif kind == "L":
            out.append("NULL")
        else:
            out.append(DYNAMIC_MARKER)
        i = j + 1
    return "".join(out)


# ---- declared types the PL/pgSQL parser can resolve ------------------------------------------

_BUILTIN_SCHEMAS = ("pg_catalog", "public")
_DECLARATION_END = {"ASCII_59", "COLON_EQUALS", "ASCII_61", "DEFAULT", "NOT", "COLLATE"}


@dataclass(frozen=True)
class _Token:
    start: int  # character offsets, end exclusive
    end: int
    name: str
    text: str


def tokens(sql: str) -> list[_Token]:
    """pglast's scanner tokens of sql, with character (not byte) offsets."""
    try:
        scanned = pglast.parser.scan(sql)
    except ParseError:
        return []
    data = sql.encode()
    if len(data) == len(sql):
        char_at = None
    else:
        char_at, pos = [], 0
        for ch in sql:
            char_at.extend([pos] * len(ch.encode()))
            pos += 1
        char_at.append(pos)
    out = []
    for tok in scanned:
        start, end = (tok.start, tok.end + 1) if char_at is None else (char_at[tok.start], char_at[tok.end + 1])
        out.append(_Token(start, end, tok.name, sql[start:end]))
    return out


def _unqualify_declared_types(sql: str, body_start: int, body_len: int) -> str:
    """sql with the schema of every type named in the header and in DECLARE sections blanked
    (and %ROWTYPE dropped), offsets and lines unchanged. The body (a string constant of the
    CREATE FUNCTION) is scanned on its own."""
    chars = list(sql)
    body_tokens = [_Token(t.start + body_start, t.end + body_start, t.name, t.text)
                   for t in tokens(sql[body_start : body_start + body_len])]  # fmt: skip
    header_end = body_start
    if sql[:body_start].endswith("$"):  # up to the opening $tag$, which the scanner cannot end
        header_end = sql.rfind("$", 0, body_start - 1)
    elif sql[:body_start].endswith("'"):
        header_end = body_start - 1
    toks = tokens(sql[:header_end]) + body_tokens

    def blank(tok: _Token) -> None:
        chars[tok.start : tok.end] = " " * (tok.end - tok.start)

    def dotted(i: int) -> int:
        """How many identifiers a.b.c starting at token i names."""
        count = 1
        while i + 2 < len(toks) and toks[i + 1].name == "ASCII_46":
            count, i = count + 1, i + 2
        return count

    def unqualify(i: int, stop: int) -> None:
        names = dotted(i)
        column_type = any(t.text.upper() == "TYPE" for t in toks[i:stop]) and names == 3
        if (names == 2 or column_type) and toks[i].text.strip('"').lower() not in _BUILTIN_SCHEMAS:
            blank(toks[i])
            blank(toks[i + 1])
        for k in range(i, stop - 1):
            if toks[k].name == "ASCII_37" and toks[k + 1].text.upper() == "ROWTYPE":
                blank(toks[k])
                blank(toks[k + 1])

    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok.start < body_start:
            if tok.name == "IDENT" and dotted(i) == 2 and tok.text.strip('"').lower() not in _BUILTIN_SCHEMAS:
                blank(tok)
                blank(toks[i + 1])
            i += 1
            continue
        if tok.name != "DECLARE":
            i += 1
            continue
        i += 1
        while i < len(toks) and toks[i].name != "BEGIN_P":
            j = i + 1  # toks[i] is the variable's name
            if j < len(toks) and toks[j].text.upper() == "CONSTANT":
                j += 1
            kind = toks[j].text.upper() if j < len(toks) else ""
            if kind not in ("ALIAS", "CURSOR", "SCROLL", "NO"):
                stop = j
                while stop < len(toks) and toks[stop].name not in _DECLARATION_END:
                    stop += 1
                if stop > j and toks[j].name == "IDENT":
                    unqualify(j, stop)
            depth, k = 0, j
            while k < len(toks) and not (toks[k].name == "ASCII_59" and depth == 0):
                depth += {"ASCII_40": 1, "ASCII_41": -1}.get(toks[k].name, 0)
                k += 1
            i = k + 1
    return "".join(chars)
