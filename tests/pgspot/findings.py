"""Runs pgspot over SQL files and prints one JSON line per finding. Run it with the python of the
pgspot virtualenv (.venv-pgspot), never the project's: pgspot needs pglast<8, the project pglast>=8.

Unlike the pgspot command, a statement pgspot cannot analyse (its 0.9 crashes on a function with
a SQL-standard body, BEGIN ATOMIC or RETURN) becomes a finding of its own, code PSX00, and the
rest of the file is still checked. Each line: code, file, object (pgspot's text without the line
number), line and the kind of the top-level statement.
"""

from __future__ import annotations

import json
import re
import sys
from argparse import Namespace

from pglast import ast, parse_sql
from pgspot.formatters import format_function
from pgspot.state import Counter, State
from pgspot.visitors import SQLVisitor

ARGS = Namespace(ignore=[], ignore_lang=[], plpgsql=True, summary_only=False, sql_fn=[], proc_without_search_path=[], append=False)


def findings(path: str) -> list[dict]:
    found: list[dict] = []
    sql = open(path, encoding="utf8").read()
    counter = Counter(ARGS)
    state = State(counter)
    counter.sql = sql
    kind = ""

    def record(code: str, context: str) -> None:
        found.append({"code": code, "file": path, "object": re.sub(r"\s+", " ", context).strip(),
                      "line": counter.line_number(), "statement": kind})

    counter.print_issue = record  # type: ignore[method-assign]
    visitor = SQLVisitor(state)
    for stmt in parse_sql(sql):
        counter.stmt_location = stmt.stmt_location
        kind = type(stmt.stmt).__name__
        try:
            visitor(stmt)
        except Exception as exc:  # noqa: BLE001 - one unreadable statement must not hide the rest
            name = format_function(stmt.stmt) if isinstance(stmt.stmt, ast.CreateFunctionStmt) else kind
            record("PSX00", f"pgspot cannot analyse {name} ({type(exc).__name__})")
    return found


if __name__ == "__main__":
    for file in sys.argv[1:]:
        for item in findings(file):
            print(json.dumps(item))
