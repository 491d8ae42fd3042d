"""The source tree: every .sql file under ROOT/sql parsed with pglast, its statements, and the
functions and views it defines (with their facts, see bodies.py).

Files are read in `aosdb migrate` order: versioned migrations by name (rollbacks apart), then
sql/functions/, then sql/views/. sql/tests/ (pgTAP fixtures, run as a superuser) is not product SQL.
"""

from __future__ import annotations

import bisect
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pglast
from pglast import ast, enums
from pglast.parser import ParseError

from aosdb.check.bodies import BodyError, Facts, node_facts, plpgsql_facts, sql_facts
from aosdb.check.findings import Where
from aosdb.errors import AosdbError

_DOLLAR_QUOTE = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")
_VOLATILITY = {"volatile": "v", "stable": "s", "immutable": "i"}


def display_path(path: Path) -> str:
    """The path as a user would type it: relative to the working directory when below it."""
    path = path.resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass
class Stmt:
    node: ast.Node
    start: int  # offset of its first token in the file
    text: str  # its source, from the first token to before the `;`
    where: Where


@dataclass
class SqlFile:
    path: Path
    display: str
    kind: str  # migration, rollback, function, view
    text: str
    stmts: list[Stmt] = field(default_factory=list)
    _newlines: list[int] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path, kind: str) -> SqlFile:
        text = path.read_text(encoding="utf-8")
        file = cls(path, display_path(path), kind, text)
        file._newlines = [i for i, ch in enumerate(text) if ch == "\n"]
        try:
            raws = pglast.parse_sql(text)
        except ParseError as exc:
            loc = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
            raise AosdbError(f"{file.where(loc)}: cannot parse: {exc.args[0]}", exit_code=2) from None
        for raw in raws:
            start = _skip_blank(text, raw.stmt_location or 0)
            end = raw.stmt_location + raw.stmt_len if raw.stmt_len else len(text)
            file.stmts.append(Stmt(raw.stmt, start, text[start:end], file.where(start)))
        return file

    def line_of(self, offset: int) -> int:
        return bisect.bisect_left(self._newlines, offset) + 1

    def where(self, offset: int) -> Where:
        return Where(self.display, self.line_of(offset))


def _skip_blank(text: str, i: int) -> int:
    """The offset of the first token at or after i (skips blanks and comments)."""
    while i < len(text):
        if text[i].isspace():
            i += 1
        elif text.startswith("--", i):
            j = text.find("\n", i)
            i = len(text) if j < 0 else j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = len(text) if j < 0 else j + 2
        else:
            break
    return i


@dataclass
class FunctionDef:
    """A CREATE FUNCTION / PROCEDURE, from a file of the tree or from the live catalog."""

    schema: str
    name: str
    language: str
    volatility: str  # v, s, i
    search_path: tuple[str, ...] | None
    where: Where
    facts: Facts
    error: BodyError | None = None  # the body could not be parsed

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass
class ViewDef:
    schema: str
    name: str
    materialized: bool
    where: Where
    facts: Facts


@dataclass
class SourceTree:
    root: Path
    files: list[SqlFile]  # forward migrations, functions, views: in migrate order
    rollbacks: list[SqlFile]
    functions: list[FunctionDef] = field(default_factory=list)
    views: list[ViewDef] = field(default_factory=list)
    # Statements embedded in DO blocks of the migrations (grants live there too): their file, the
    # offset of their DO statement, the statement, its line.
    do_statements: list[tuple[SqlFile, int, ast.Node, Where]] = field(default_factory=list)

    @classmethod
    def load(cls, root: Path) -> SourceTree:
        sql = root / "sql"
        migrations = sorted((sql / "migrations").glob("*.sql"))
        forward = [SqlFile.load(p, "migration") for p in migrations if not p.name.endswith(".rollback.sql")]
        rollbacks = [SqlFile.load(p, "rollback") for p in migrations if p.name.endswith(".rollback.sql")]
        repeatables = [SqlFile.load(p, kind) for sub, kind in (("functions", "function"), ("views", "view"))
                       for p in sorted((sql / sub).glob("*.sql"))]  # fmt: skip
        tree = cls(root, forward + repeatables, rollbacks)
        for file in tree.files + tree.rollbacks:
            for stmt in file.stmts:
                tree._collect(file, stmt)
        return tree

    @property
    def forward_statements(self) -> list[tuple[SqlFile, Stmt]]:
        return [(f, s) for f in self.files for s in f.stmts]

    def statements_in_order(self) -> list[tuple[ast.Node, Where]]:
        """Every statement `aosdb migrate` runs, those of DO blocks included, in the order it runs them."""
        order = {id(f): i for i, f in enumerate(self.files)}
        out = [(order[id(f)], s.start, 0, s.node, s.where) for f, s in self.forward_statements]
        out += [(order[id(f)], start, w.line, node, w) for f, start, node, w in self.do_statements]
        return [(node, where) for *_key, node, where in sorted(out, key=lambda t: t[:3])]

    def relations(self) -> set[tuple[str, str]]:
        """The tables, views and materialized views the migrations and repeatables create."""
        out = set()
        for _file, stmt in self.forward_statements:
            node, rel = stmt.node, None
            if isinstance(node, ast.CreateStmt):
                rel = node.relation
            elif isinstance(node, ast.ViewStmt):
                rel = node.view
            elif isinstance(node, ast.CreateTableAsStmt):
                rel = node.into.rel
            if rel is not None:
                out.add((rel.schemaname or "public", rel.relname))
        return out

    def _collect(self, file: SqlFile, stmt: Stmt) -> None:
        node = stmt.node
        if isinstance(node, ast.CreateFunctionStmt):
            self.functions.append(function_from_source(node, file.text, stmt, file.display, file.line_of))
        elif isinstance(node, ast.ViewStmt):
            self.views.append(_view(node.view, False, file, stmt, node.query))
        elif isinstance(node, ast.CreateTableAsStmt) and node.objtype == enums.ObjectType.OBJECT_MATVIEW:
            self.views.append(_view(node.into.rel, True, file, stmt, node.query))
        elif isinstance(node, ast.DoStmt) and file.kind == "migration":
            facts = do_block_facts(node, file)
            for inner, where in facts.statements:
                self.do_statements.append((file, stmt.start, inner, where))


def _view(rel: ast.RangeVar, materialized: bool, file: SqlFile, stmt: Stmt, query) -> ViewDef:
    facts = node_facts(query, file.where, stmt.where)
    return ViewDef(rel.schemaname or "public", rel.relname, materialized, stmt.where, facts)


def _option(node, name: str):
    for opt in node.options or ():
        if isinstance(opt, ast.DefElem) and opt.defname == name:
            return opt
    return None


def _body_start(text: str, arg_location: int | None) -> int | None:
    """Offset where a function body's text starts, after its opening quote."""
    if arg_location is None or arg_location < 0 or arg_location >= len(text):
        return None
    match = _DOLLAR_QUOTE.match(text, arg_location)
    if match:
        return match.end()
    if text.startswith("'", arg_location):
        return arg_location + 1
    if text[arg_location : arg_location + 2].upper() == "E'":
        return arg_location + 2
    return None


def function_from_source(node: ast.CreateFunctionStmt, text: str, stmt: Stmt, label: str,
                         line_of) -> FunctionDef:  # fmt: skip
    """A FunctionDef of a CREATE FUNCTION parsed from text (a file, or a pg_get_functiondef)."""
    names = [n.sval for n in node.funcname]
    schema, name = (names[-2] if len(names) > 1 else "public"), names[-1]
    language_opt = _option(node, "language")
    language = language_opt.arg.sval.lower() if language_opt is not None else "sql"
    volatility_opt = _option(node, "volatility")
    volatility = _VOLATILITY.get(volatility_opt.arg.sval.lower(), "v") if volatility_opt is not None else "v"
    search_path = None
    for opt in node.options or ():
        if isinstance(opt, ast.DefElem) and opt.defname == "set" and isinstance(opt.arg, ast.VariableSetStmt):
            if opt.arg.name == "search_path" and opt.arg.args:
                search_path = tuple(_const_text(a) for a in opt.arg.args)

    def where_at(offset: int) -> Where:
        return Where(label, line_of(offset))

    fn = FunctionDef(schema, name, language, volatility, search_path, stmt.where, Facts())
    body_opt = _option(node, "as")
    try:
        if node.sql_body is not None:
            fn.facts = node_facts(node.sql_body, where_at, stmt.where)
        elif body_opt is not None and language in ("sql", "plpgsql"):
            body = body_opt.arg[0].sval if isinstance(body_opt.arg, (list, tuple)) else body_opt.arg.sval
            start = _body_start(text, body_opt.arg_location)
            if start is None:
                start = stmt.start
            if language == "sql":
                fn.facts = sql_facts(body, lambda loc: where_at(start + loc), where_at(start))
            else:
                first = line_of(start)
                fn.facts = plpgsql_facts(stmt.text, start - stmt.start, len(body),
                                         lambda n: Where(label, first + n - 1))
    except BodyError as exc:
        fn.error = exc
    return fn


def _const_text(node) -> str:
    if isinstance(node, ast.A_Const) and node.val is not None:
        return str(getattr(node.val, "sval", None) or getattr(node.val, "ival", ""))
    return str(node)


def do_block_facts(node: ast.DoStmt, file: SqlFile) -> Facts:
    """Facts (and embedded statements) of a DO block of LANGUAGE plpgsql."""
    language_opt = next((a for a in node.args if a.defname == "language"), None)
    if language_opt is not None and language_opt.arg.sval.lower() != "plpgsql":
        return Facts()
    body_opt = next(a for a in node.args if a.defname == "as")
    body = body_opt.arg.sval
    start = _body_start(file.text, body_opt.arg_location)
    first = file.line_of(start if start is not None else 0)
    tag = "$do_block$"
    while tag in body:
        tag = tag[:-1] + "x$"
    prefix = f"CREATE FUNCTION pg_temp.do_block() RETURNS void LANGUAGE plpgsql AS {tag}"
    try:
        return plpgsql_facts(prefix + body + tag, len(prefix), len(body), lambda n: Where(file.display, first + n - 1))
    except BodyError:
        return Facts()


def tree_root(root: str | None) -> Path:
    from aosdb.config import project_root

    path = Path(root).expanduser() if root else project_root()
    if not (path / "sql").is_dir():
        shown = os.fspath(path)
        raise AosdbError(f"{shown} has no sql/ directory: not an aosdb tree (ROOT holds sql/ and scenarios/)",
                         exit_code=2)  # fmt: skip
    return path.resolve()
