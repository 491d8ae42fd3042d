"""A set of function definitions (the tree's, or the live catalog's) seen as one program: which
relation a name means in a function, which functions a call reaches, and what a function writes
and reads itself or through the functions it calls."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aosdb.check.bodies import DYNAMIC_MARKER, Call, RelRef
from aosdb.check.tree import FunctionDef

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_temp", "pg_toast")
# Built-in functions that change data (a sequence is a relation): a read-only function calls none.
WRITING_BUILTINS = {"nextval", "setval", "lo_create", "lo_import", "lo_unlink", "lo_put", "lo_from_bytea",
                    "dblink_exec", "pg_import_system_collations"}  # fmt: skip

Rel = tuple[str, str]


@dataclass(frozen=True)
class Reached:
    """A fact of a function or of a function it calls: `via` is the chain of callees, outermost first."""

    item: object  # Write or RelRef
    via: tuple[str, ...]

    @property
    def via_text(self) -> str:
        return f" (through {' -> '.join(self.via)})" if self.via else ""


class Program:
    def __init__(self, functions: Iterable[FunctionDef], relations: Iterable[Rel]):
        self.functions = list(functions)
        self.relations = set(relations)
        self._by_name: dict[tuple[str, str], list[FunctionDef]] = {}
        for fn in self.functions:
            self._by_name.setdefault((fn.schema, fn.name), []).append(fn)
        self._writes: dict[int, list[Reached]] = {}
        self._reads: dict[int, list[Reached]] = {}

    def named(self, schema: str, name: str) -> list[FunctionDef]:
        return self._by_name.get((schema, name), [])

    # ---- names ----

    def relation(self, fn: FunctionDef | None, ref: RelRef) -> Rel | None:
        """The (schema, table) a name means in fn; None for CTEs, transition tables, temporary
        tables and names only known at run time."""
        if DYNAMIC_MARKER in (ref.schema, ref.name):
            return None
        if ref.schema:
            return (ref.schema, ref.name)
        if fn is not None and ref.name in fn.facts.ctes:
            return None
        path = fn.search_path if fn is not None else None
        if path is not None:
            return next(((s, ref.name) for s in path if (s, ref.name) in self.relations), None)
        # No pinned search_path: the caller's decides; any relation of that name may be meant.
        found = sorted(r for r in self.relations if r[1] == ref.name)
        return found[0] if found else None

    def callees(self, fn: FunctionDef, call: Call) -> list[FunctionDef]:
        if call.schema:
            return self.named(call.schema, call.name)
        path = fn.search_path if fn.search_path is not None else (fn.schema, "public")
        for schema in path:
            if schema == "pg_catalog" and call.name in WRITING_BUILTINS:
                return []
            found = self.named(schema, call.name)
            if found:
                return found
        return []

    # ---- closures ----

    def writes(self, fn: FunctionDef) -> list[Reached]:
        """fn's writes and those of every function it calls, transitively."""
        return self._closure(fn, self._writes, lambda f: f.facts.writes, ())

    def reads(self, fn: FunctionDef) -> list[Reached]:
        return self._closure(fn, self._reads, lambda f: f.facts.reads, ())

    def _closure(self, fn: FunctionDef, memo: dict[int, list[Reached]], own,
                 stack: tuple[int, ...]) -> list[Reached]:  # fmt: skip
        key = id(fn)
        if key in memo:
            return memo[key]
        if key in stack:
            return []
        out = [Reached(item, ()) for item in own(fn)]
        for call in fn.facts.calls:
            for callee in self.callees(fn, call):
                if callee is fn:
                    continue
                for reached in self._closure(callee, memo, own, stack + (key,)):
                    out.append(Reached(reached.item, (callee.qualified, *reached.via)))
        if not stack:
            memo[key] = out
        return out
