"""ROOT's SQL files as the checker uses them: to point a finding at the file and line that define
a function or a view of the catalog, and to read the rollbacks (which no migrated database holds).

The definitions themselves come from the migrated database (see catalog.py): a function is parsed
from pg_get_functiondef, and its findings are placed in the file whose CREATE FUNCTION holds its
body (prosrc) verbatim, the last such file in `aosdb migrate` order. A function no file holds (made
by hand, or built by dynamic SQL) is named `db:schema.function(args)`, lines counted from the
CREATE line of pg_get_functiondef.
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pglast
from pglast import ast
from pglast.parser import ParseError

from aosdb.check.bodies import BodyError, Facts, node_facts, plpgsql_facts, sql_facts
from aosdb.check.findings import Where
from aosdb.errors import AosdbError

_DOLLAR_QUOTE = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")
_VOLATILITY = {"volatile": "v", "stable": "s", "immutable": "i"}
_CREATE_FUNCTION = re.compile(r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE)\s+([\w.\"]+)", re.IGNORECASE)
_CREATE_VIEW = re.compile(r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:MATERIALIZED\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?"
                          r"([\w.\"]+)", re.IGNORECASE)  # fmt: skip


def display_path(path: Path) -> str:
    """The path as a user would type it: relative to the working directory when below it."""
    path = path.resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def tree_root(root: str | None) -> Path:
    from aosdb.config import project_root

    path = Path(root).expanduser() if root else project_root()
    if not (path / "sql" / "migrations").is_dir():
        shown = os.fspath(path)
        raise AosdbError(f"{shown} has no sql/ directory with migrations: not an aosdb tree (ROOT holds sql/ and "
                         "scenarios/)", exit_code=2)  # fmt: skip
    return path.resolve()


@dataclass
class Stmt:
    node: ast.Node
    start: int  # offset of its first token in the text
    text: str  # its source, from the first token to before the `;`
    where: Where


@dataclass
class SqlFile:
    path: Path
    display: str
    text: str
    _newlines: list[int] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> SqlFile:
        text = path.read_text(encoding="utf-8")
        return cls(path, display_path(path), text, [i for i, ch in enumerate(text) if ch == "\n"])

    def line_of(self, offset: int) -> int:
        return bisect.bisect_left(self._newlines, offset) + 1

    def where(self, offset: int) -> Where:
        return Where(self.display, self.line_of(offset))

    def statements(self) -> list[Stmt]:
        try:
            raws = pglast.parse_sql(self.text)
        except ParseError as exc:
            loc = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
            raise AosdbError(f"{self.where(loc)}: cannot parse: {exc.args[0]}", exit_code=2) from None
        out = []
        for raw in raws:
            start = _skip_blank(self.text, raw.stmt_location or 0)
            end = raw.stmt_location + raw.stmt_len if raw.stmt_len else len(self.text)
            out.append(Stmt(raw.stmt, start, self.text[start:end], self.where(start)))
        return out


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


def _same_name(written: str, schema: str, name: str) -> bool:
    parts = [p.strip('"') for p in written.split(".")]
    parts = [p if written.count('"') else p.lower() for p in parts]
    return parts == [schema, name] or (len(parts) == 1 and parts[0] == name)


class Sources:
    """The forward SQL of ROOT (migrations, then sql/functions, then sql/views: migrate order) and
    its rollbacks, read as text."""

    def __init__(self, root: Path):
        sql = root / "sql"
        migrations = sorted((sql / "migrations").glob("*.sql"))
        self.forward = [SqlFile.read(p) for p in migrations if not p.name.endswith(".rollback.sql")]
        self.forward += [SqlFile.read(p) for sub in ("functions", "views") for p in sorted((sql / sub).glob("*.sql"))]
        self.rollbacks = [SqlFile.read(p) for p in migrations if p.name.endswith(".rollback.sql")]

    def locate_function(self, schema: str, name: str, prosrc: str) -> tuple[SqlFile, int, int] | None:
        """(file, offset of the CREATE, offset of the body) of the last file whose CREATE FUNCTION of
        schema.name holds this body verbatim; with no body (SQL-standard), the last CREATE of that name."""
        for file in reversed(self.forward):
            if prosrc.strip():
                pos = file.text.rfind(prosrc)
                while pos >= 0:
                    create = _last_match(_CREATE_FUNCTION, file.text, pos)
                    if create is not None and _same_name(create.group(1), schema, name):
                        return file, create.start(), pos
                    pos = file.text.rfind(prosrc, 0, pos)
            else:
                found = [m for m in _CREATE_FUNCTION.finditer(file.text) if _same_name(m.group(1), schema, name)]
                if found:
                    return file, found[-1].start(), -1
        return None

    def locate_view(self, schema: str, name: str) -> Where | None:
        for file in reversed(self.forward):
            found = [m for m in _CREATE_VIEW.finditer(file.text) if _same_name(m.group(1), schema, name)]
            if found:
                return file.where(found[-1].start())
        return None

    def placement(self, schema: str, name: str, prosrc: str, definition: str,
                  signature: str) -> tuple[str, Callable[[int], int]]:  # fmt: skip
        """The label and the line numbering of a function's findings: offsets in its
        pg_get_functiondef mapped to lines of the file that defines it, else to lines of the
        definition under `db:signature`."""
        found = self.locate_function(schema, name, prosrc)
        body_at = definition.find(prosrc) if prosrc.strip() else -1
        if found is None or (found[2] >= 0 and body_at < 0):
            newlines = [i for i, ch in enumerate(definition) if ch == "\n"]
            return f"db:{signature}", lambda offset: bisect.bisect_left(newlines, offset) + 1
        file, create_at, file_body_at = found
        create_line = file.line_of(create_at)
        if file_body_at < 0:
            return file.display, lambda _offset: create_line
        return file.display, lambda offset: (file.line_of(file_body_at + offset - body_at) if offset >= body_at
                                             else create_line)  # fmt: skip


def _last_match(pattern: re.Pattern, text: str, before: int) -> re.Match | None:
    last = None
    for match in pattern.finditer(text, 0, before):
        last = match
    return last


# ---- function definitions -------------------------------------------------------------------


@dataclass
class FunctionDef:
    """A function or procedure of the catalog, parsed from its pg_get_functiondef."""

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
                         line_of: Callable[[int], int]) -> FunctionDef:  # fmt: skip
    """A FunctionDef of a CREATE FUNCTION parsed from text; line_of numbers offsets of text."""
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
