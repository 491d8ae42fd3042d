"""Replays the migrations' writes to the aos.contract_* tables without a server.

Source mode must know the contract without PostgreSQL, so the INSERT, UPDATE and DELETE
statements on aos.contract_* are evaluated over their pglast trees, in migration order. The
evaluator knows exactly the shapes the migrations use and fails loudly on any other:

- INSERT ... VALUES (...), (...)
- INSERT ... SELECT over FROM items that are (VALUES ...) AS v (cols), unnest(array, ...) AS u (cols),
  [CROSS | INNER | LEFT] JOIN [LATERAL] of those, or another aos.contract_* table;
  WHERE / ON conditions of =, <>, AND, OR, NOT, IS [NOT] NULL
- expressions: constants, casts (text, boolean, integers, text[] literals such as '{a,b}'),
  ARRAY[...], column references, ||, split_part(), coalesce(), lower(), upper(), btrim()
- UPDATE ... SET col = expr [WHERE ...] and DELETE ... [WHERE ...] on one contract table.

Each row remembers the line it came from (its VALUES row when there is one), so a finding about
a contract row points at that row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pglast import ast, enums

from aosdb.check.findings import Where
from aosdb.errors import AosdbError

Env = dict[str, dict[str, object]]  # alias -> column -> value


class ContractShapeError(AosdbError):
    def __init__(self, where: Where, message: str):
        super().__init__(f"{where}: cannot read this aos.contract_* statement: {message}", exit_code=2)


@dataclass
class Row:
    values: dict[str, object]
    where: Where


def is_contract_table(rel: ast.RangeVar | None) -> bool:
    return rel is not None and rel.schemaname == "aos" and rel.relname.startswith("contract_")


class ContractEvaluator:
    def __init__(self) -> None:
        self.columns: dict[str, list[str]] = {}
        self.arrays: dict[str, set[str]] = {}
        self.rows: dict[str, list[Row]] = {}

    # ---- statements ----

    def create_table(self, node: ast.CreateStmt) -> None:
        name = node.relation.relname
        defs = [e for e in node.tableElts or () if isinstance(e, ast.ColumnDef)]
        self.columns[name] = [d.colname for d in defs]
        self.arrays[name] = {d.colname for d in defs if d.typeName.arrayBounds}
        self.rows[name] = []

    def _typed(self, name: str, column: str, value: object) -> object:
        """An untyped '{a,b}' stored into a text[] column is an array, as in PostgreSQL."""
        if column in self.arrays[name] and isinstance(value, str):
            return parse_array_literal(value)
        return value

    def drop_table(self, name: str) -> None:
        self.columns.pop(name, None)
        self.rows.pop(name, None)

    def execute(self, node: ast.Node, where_of: Callable[[int | None], Where], text: str = "",
                offset: int = 0) -> None:  # fmt: skip
        """Runs one statement; text is its source (starting at file offset `offset`), used to
        point each VALUES row at its own line."""
        ev = _Eval(self, where_of)
        ev.value_rows = _value_rows(node, text, offset)
        name = node.relation.relname
        if name not in self.columns:
            raise ContractShapeError(ev.at(node.relation), f"aos.{name} is not created by an earlier migration")
        if node.withClause is not None or getattr(node, "returningClause", None) is not None:
            raise ContractShapeError(ev.at(node.relation), "WITH and RETURNING are not supported")
        if isinstance(node, ast.InsertStmt):
            self._insert(ev, name, node)
        elif isinstance(node, ast.UpdateStmt):
            self._update(ev, name, node)
        elif isinstance(node, ast.DeleteStmt):
            self._delete(ev, name, node)
        else:
            raise ContractShapeError(ev.at(node.relation), f"{type(node).__name__} is not supported")

    def _insert(self, ev: _Eval, name: str, node: ast.InsertStmt) -> None:
        if node.onConflictClause is not None:
            raise ContractShapeError(ev.at(node.relation), "ON CONFLICT is not supported")
        cols = [t.name for t in node.cols] if node.cols else self.columns[name]
        unknown = [c for c in cols if c not in self.columns[name]]
        if unknown:
            raise ContractShapeError(ev.at(node.relation), f"aos.{name} has no column {unknown[0]}")
        for values, where in ev.select(node.selectStmt, {}):
            if len(values) != len(cols):
                raise ContractShapeError(where, f"{len(values)} values for {len(cols)} columns")
            row = dict.fromkeys(self.columns[name])
            row.update((c, self._typed(name, c, v)) for c, v in zip(cols, values))
            self.rows[name].append(Row(row, where))

    def _update(self, ev: _Eval, name: str, node: ast.UpdateStmt) -> None:
        if node.fromClause:
            raise ContractShapeError(ev.at(node.relation), "UPDATE ... FROM is not supported")
        alias = node.relation.alias.aliasname if node.relation.alias else name
        for row in self.rows[name]:
            env = {alias: row.values}
            if node.whereClause is None or ev.expr(node.whereClause, env) is True:
                new = {}  # every SET expression sees the old row, as in PostgreSQL
                for target in node.targetList:
                    if target.indirection or target.name not in self.columns[name]:
                        raise ContractShapeError(ev.at(target), f"cannot SET {target.name}")
                    new[target.name] = self._typed(name, target.name, ev.expr(target.val, env))
                row.values.update(new)

    def _delete(self, ev: _Eval, name: str, node: ast.DeleteStmt) -> None:
        if node.usingClause:
            raise ContractShapeError(ev.at(node.relation), "DELETE ... USING is not supported")
        alias = node.relation.alias.aliasname if node.relation.alias else name
        self.rows[name] = [
            row for row in self.rows[name]
            if not (node.whereClause is None or ev.expr(node.whereClause, {alias: row.values}) is True)
        ]  # fmt: skip


class _Eval:
    def __init__(self, state: ContractEvaluator, where_of: Callable[[int | None], Where]):
        self.state = state
        self.where_of = where_of
        self.value_rows: dict[int, list[int]] = {}  # id(SelectStmt with VALUES) -> file offset of each row

    def at(self, node) -> Where:
        return self.where_of(getattr(node, "location", None))

    def fail(self, node, message: str):
        raise ContractShapeError(self.at(node), message)

    # ---- queries: lists of (values, where) ----

    def select(self, node, outer: Env) -> list[tuple[list[object], Where]]:
        if not isinstance(node, ast.SelectStmt):
            self.fail(node, f"{type(node).__name__} is not supported as a row source")
        if node.op != enums.SetOperation.SETOP_NONE:
            if node.op == enums.SetOperation.SETOP_UNION and node.all:
                return self.select(node.larg, outer) + self.select(node.rarg, outer)
            self.fail(node, "only UNION ALL is supported")
        for slot in ("distinctClause", "groupClause", "havingClause", "limitCount", "limitOffset",
                     "windowClause", "withClause", "intoClause", "lockingClause"):  # fmt: skip
            if getattr(node, slot, None):
                self.fail(node, f"{slot} is not supported")
        if node.valuesLists:
            starts = self.value_rows.get(id(node), [])
            rows = [([self.expr(e, outer) for e in row], self.where_of(starts[i] if i < len(starts) else None))
                    for i, row in enumerate(node.valuesLists)]  # fmt: skip
            # Like PostgreSQL, a VALUES column takes one type for all rows: a column some row casts
            # to an array reads the other rows' untyped literals ('{a,b}') as arrays too.
            for i in range(len(node.valuesLists[0])):
                if any(_is_array_cast(row[i]) for row in node.valuesLists if i < len(row)):
                    for values, _where in rows:
                        if isinstance(values[i], str):
                            values[i] = parse_array_literal(values[i])
            return rows
        results = []
        for env, where in self.from_items(node.fromClause or (), outer, self.at(node)):
            if node.whereClause is not None and self.expr(node.whereClause, env) is not True:
                continue
            values: list[object] = []
            for target in node.targetList:
                if isinstance(target.val, ast.ColumnRef) and isinstance(target.val.fields[-1], ast.A_Star):
                    values.extend(v for alias, cols in env.items() if alias not in outer for v in cols.values())
                else:
                    values.append(self.expr(target.val, env))
            results.append((values, where))
        return results

    def from_items(self, items, outer: Env, where: Where) -> list[tuple[Env, Where]]:
        envs = [(dict(outer), where)]
        for item in items:
            envs = [(dict(env, **bound), w2 if w2 is not None else w1)
                    for env, w1 in envs for bound, w2 in self.from_item(item, env)]  # fmt: skip
        return envs

    def from_item(self, item, env: Env) -> list[tuple[Env, Where | None]]:
        if isinstance(item, ast.RangeSubselect):
            alias, colnames = self.alias(item, item.alias)
            out = []
            for values, where in self.select(item.subquery, env):
                names = colnames or [f"column{i + 1}" for i in range(len(values))]
                out.append(({alias: dict(zip(names, values))}, where))
            return out
        if isinstance(item, ast.RangeFunction):
            return self.range_function(item, env)
        if isinstance(item, ast.RangeVar):
            if not is_contract_table(item) or item.relname not in self.state.rows:
                self.fail(item, f"reading {item.schemaname}.{item.relname} is not supported")
            alias = item.alias.aliasname if item.alias else item.relname
            # Derived rows point at the statement deriving them, not at the rows they were derived from.
            return [({alias: dict(row.values)}, None) for row in self.state.rows[item.relname]]
        if isinstance(item, ast.JoinExpr):
            return self.join(item, env)
        self.fail(item, f"{type(item).__name__} is not supported in FROM")
        return []

    def alias(self, item, alias: ast.Alias | None) -> tuple[str, list[str] | None]:
        if alias is None:
            self.fail(item, "a FROM item needs an alias")
        return alias.aliasname, [c.sval for c in alias.colnames] if alias.colnames else None

    def range_function(self, item: ast.RangeFunction, env: Env) -> list[tuple[Env, Where | None]]:
        if item.ordinality or item.is_rowsfrom or len(item.functions) != 1:
            self.fail(item, "only a plain unnest(...) is supported")
        call = item.functions[0][0]
        if not isinstance(call, ast.FuncCall) or [n.sval for n in call.funcname][-1] != "unnest":
            self.fail(item, "only unnest(...) is supported in FROM")
        arrays = [self.expr(a, env) for a in call.args]
        for array in arrays:
            if not isinstance(array, list):
                self.fail(call, "unnest() of something that is not an array")
        alias, colnames = self.alias(item, item.alias)
        width = max((len(a) for a in arrays), default=0)
        names = colnames or ([alias] if len(arrays) == 1 else [f"unnest{i}" for i in range(len(arrays))])
        rows = []
        for i in range(width):
            values = [a[i] if i < len(a) else None for a in arrays]
            rows.append(({alias: dict(zip(names, values))}, None))
        return rows

    def join(self, item: ast.JoinExpr, env: Env) -> list[tuple[Env, Where | None]]:
        if item.usingClause or item.isNatural:
            self.fail(item, "JOIN ... USING and NATURAL JOIN are not supported")
        if item.jointype not in (enums.JoinType.JOIN_INNER, enums.JoinType.JOIN_LEFT):
            self.fail(item, "only [CROSS | INNER | LEFT] JOIN is supported")
        out = []
        for left, lw in self.from_item(item.larg, env):
            matched = False
            for right, rw in self.from_item(item.rarg, {**env, **left}):
                bound = {**left, **right}
                if item.quals is None or self.expr(item.quals, {**env, **bound}) is True:
                    matched = True
                    out.append((bound, lw if lw is not None else rw))
            if not matched and item.jointype == enums.JoinType.JOIN_LEFT:
                out.append((left, lw))
        return out

    # ---- expressions ----

    def expr(self, node, env: Env) -> object:
        if isinstance(node, ast.A_Const):
            if node.isnull:
                return None
            val = node.val
            for attr in ("sval", "ival", "boolval"):
                if hasattr(val, attr):
                    return getattr(val, attr)
            if hasattr(val, "fval"):
                return float(val.fval)
            self.fail(node, "unsupported constant")
        if isinstance(node, ast.TypeCast):
            return self.cast(node, self.expr(node.arg, env))
        if isinstance(node, ast.A_ArrayExpr):
            return [self.expr(e, env) for e in node.elements or ()]
        if isinstance(node, ast.ColumnRef):
            return self.column(node, env)
        if isinstance(node, ast.A_Expr) and node.kind == enums.A_Expr_Kind.AEXPR_OP:
            op = [n.sval for n in node.name][-1]
            left, right = self.expr(node.lexpr, env), self.expr(node.rexpr, env)
            if op == "||":
                if isinstance(left, list) or isinstance(right, list):  # array || element, array || array
                    return _as_list(left) + _as_list(right)
                return None if left is None or right is None else f"{left}{right}"
            if op in ("=", "<>", "!="):
                if left is None or right is None:
                    return None
                return (left == right) if op == "=" else (left != right)
            self.fail(node, f"operator {op} is not supported")
        if isinstance(node, ast.BoolExpr):
            args = [self.expr(a, env) for a in node.args]
            if node.boolop == enums.BoolExprType.AND_EXPR:
                return False if False in args else (None if None in args else True)
            if node.boolop == enums.BoolExprType.OR_EXPR:
                return True if True in args else (None if None in args else False)
            return None if args[0] is None else not args[0]
        if isinstance(node, ast.NullTest):
            value = self.expr(node.arg, env)
            return (value is None) == (node.nulltesttype == enums.NullTestType.IS_NULL)
        if isinstance(node, ast.CoalesceExpr):
            return next((v for v in (self.expr(a, env) for a in node.args) if v is not None), None)
        if isinstance(node, ast.FuncCall):
            return self.call(node, env)
        self.fail(node, f"{type(node).__name__} is not supported in a contract value")
        return None

    def column(self, node: ast.ColumnRef, env: Env) -> object:
        fields = [f.sval for f in node.fields if isinstance(f, ast.String)]
        if len(fields) == 2:
            alias, col = fields
            if alias in env and col in env[alias]:
                return env[alias][col]
        elif len(fields) == 1:
            hits = [cols[fields[0]] for cols in env.values() if fields[0] in cols]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                self.fail(node, f"column {fields[0]} is ambiguous")
        self.fail(node, f"unknown column {'.'.join(fields)}")
        return None

    def call(self, node: ast.FuncCall, env: Env) -> object:
        name = [n.sval for n in node.funcname][-1]
        args = [self.expr(a, env) for a in node.args or ()]
        if None in args and name != "concat":
            return None
        if name == "split_part" and len(args) == 3:
            parts = str(args[0]).split(str(args[1]))
            n = int(args[2])
            return parts[n - 1] if 1 <= n <= len(parts) else ""
        if name in ("lower", "upper", "btrim") and len(args) == 1:
            return {"lower": str.lower, "upper": str.upper, "btrim": str.strip}[name](str(args[0]))
        if name == "concat":
            return "".join("" if a is None else str(a) for a in args)
        self.fail(node, f"function {name}() is not supported")
        return None

    def cast(self, node: ast.TypeCast, value: object) -> object:
        type_name = [n.sval for n in node.typeName.names][-1]
        if node.typeName.arrayBounds:
            if isinstance(value, str):
                return parse_array_literal(value)
            if value is None or isinstance(value, list):
                return value
            self.fail(node, "cannot cast to an array")
        if value is None:
            return None
        if type_name in ("text", "varchar", "name", "bpchar"):
            return str(value)
        if type_name == "bool":
            return value if isinstance(value, bool) else str(value).strip().lower() in ("t", "true", "yes", "on", "1")
        if type_name in ("int2", "int4", "int8"):
            return int(value)
        return value


def parse_array_literal(text: str) -> list[str | None]:
    """A one-dimensional PostgreSQL array literal: '{a,"b c",NULL}'."""
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError(f"not an array literal: {text!r}")
    body, items, i = text[1:-1], [], 0
    if not body.strip():
        return []
    while i <= len(body):
        while i < len(body) and body[i].isspace():
            i += 1
        if i < len(body) and body[i] == '"':
            i += 1
            chars = []
            while i < len(body) and body[i] != '"':
                if body[i] == "\\":
                    i += 1
                chars.append(body[i])
                i += 1
            items.append("".join(chars))
            i += 1
            while i < len(body) and body[i] != ",":
                i += 1
        else:
            j = body.find(",", i)
            j = len(body) if j < 0 else j
            raw = body[i:j].strip()
            items.append(None if raw.upper() == "NULL" else raw)
            i = j
        i += 1
    return items


def _is_array_cast(node) -> bool:
    return isinstance(node, ast.TypeCast) and bool(node.typeName.arrayBounds)


def _value_rows(node: ast.Node, text: str, offset: int) -> dict[int, list[int]]:
    """The file offset of each row of each VALUES list of the statement. pglast keeps no location
    for constants, so the rows are found with PostgreSQL's scanner: the k-th VALUES keyword of
    the text is the k-th VALUES list of the tree (both in source order)."""
    from aosdb.check.bodies import tokens

    lists: list[ast.SelectStmt] = []

    def collect(n) -> None:
        if isinstance(n, (list, tuple)):
            for item in n:
                collect(item)
        elif isinstance(n, ast.Node):
            if isinstance(n, ast.SelectStmt) and n.valuesLists:
                lists.append(n)
            for slot in type(n).__slots__:
                collect(getattr(n, slot, None))

    collect(node)
    toks = tokens(text)
    found: list[list[int]] = []
    for i, tok in enumerate(toks):
        if tok.name != "VALUES":
            continue
        rows, depth, expect_row = [], 0, True
        for t in toks[i + 1 :]:
            if t.name == "ASCII_40":
                if depth == 0 and expect_row:
                    rows.append(offset + t.start)
                    expect_row = False
                depth += 1
            elif t.name == "ASCII_41":
                depth -= 1
                if depth < 0:
                    break
            elif depth == 0:
                if t.name != "ASCII_44":
                    break
                expect_row = True
        found.append(rows)
    return {id(sel): rows for sel, rows in zip(lists, found)}


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]
