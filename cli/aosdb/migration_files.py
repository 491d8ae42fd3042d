"""The migration files on disk: versioned (sql/migrations) and repeatable (sql/functions, sql/views).

A versioned file is NNNN_name.sql with NNNN_name.rollback.sql beside it. Its
header comments may say `-- depends: <id> ...` and `-- transactional: false`
(the format yoyo reads, so the files stay usable with yoyo's own CLI). A
non-transactional file runs statement by statement outside a transaction: it
exists for CREATE/DROP INDEX CONCURRENTLY, and must be safe to run again
(IF NOT EXISTS / IF EXISTS), because a crash can stop it half-way.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pglast
from pglast import ast
from pglast.enums import ObjectType

from aosdb.config import sql_dir
from aosdb.errors import AosdbError

REPEATABLE_DIRS = ("functions", "views")
_HEADER = re.compile(r"^--\s*(depends|transactional)\s*:\s*(.*?)\s*$", re.IGNORECASE)
_ID = re.compile(r"^\d{4}_[a-z0-9_]+$")


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_statements(text: str) -> list[str]:
    """The statements of a SQL file, split by PostgreSQL's own parser (pglast)."""
    try:
        return [text[part].strip() for part in pglast.split(text, with_parser=True, only_slices=True)]
    except pglast.parser.ParseError as exc:
        raise AosdbError(f"cannot parse SQL: {exc}") from None


@dataclass
class ConcurrentIndex:
    """An index a non-transactional migration builds or drops CONCURRENTLY."""

    schema: str
    name: str
    creates: bool


@dataclass
class Versioned:
    id: str
    path: Path
    depends: list[str] = field(default_factory=list)
    transactional: bool = True

    @property
    def rollback_path(self) -> Path:
        return self.path.with_name(f"{self.id}.rollback.sql")

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def rollback_text(self) -> str:
        if not self.rollback_path.exists():
            raise AosdbError(f"migration {self.id} has no {self.rollback_path.name}; it cannot be rolled back")
        return self.rollback_path.read_text(encoding="utf-8")

    def concurrent_indexes(self, text: str | None = None) -> list[ConcurrentIndex]:
        """What a non-transactional file does CONCURRENTLY, refusing a statement that could not run twice."""
        found = []
        for statement in split_statements(text if text is not None else self.text()):
            node = pglast.parse_sql(statement)[0].stmt
            if isinstance(node, ast.IndexStmt) and node.concurrent:
                if not node.if_not_exists or not node.idxname:
                    raise AosdbError(f"migration {self.id}: CREATE INDEX CONCURRENTLY needs a name and IF NOT EXISTS, "
                                     "so that a re-run after a crash can finish it")
                found.append(ConcurrentIndex(node.relation.schemaname or "public", node.idxname, True))
            elif isinstance(node, ast.DropStmt) and node.concurrent:
                if not node.missing_ok:
                    raise AosdbError(f"migration {self.id}: DROP INDEX CONCURRENTLY needs IF EXISTS, "
                                     "so that a re-run after a crash can finish it")
                for names in node.objects:
                    parts = [n.sval for n in names]
                    found.append(ConcurrentIndex(parts[0] if len(parts) > 1 else "public", parts[-1], False))
        return found

    def dropped_matviews(self, text: str | None = None) -> list[str]:
        """The materialized views (schema.name) this migration drops, e.g. to change a column they read."""
        found = []
        for statement in split_statements(text if text is not None else self.text()):
            node = pglast.parse_sql(statement)[0].stmt
            if isinstance(node, ast.DropStmt) and node.removeType == ObjectType.OBJECT_MATVIEW:
                for names in node.objects:
                    parts = [n.sval for n in names]
                    found.append(f"{parts[0] if len(parts) > 1 else 'public'}.{parts[-1]}")
        return found


def _read_header(path: Path) -> tuple[list[str], bool]:
    depends: list[str] = []
    transactional = True
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("--"):
            break
        match = _HEADER.match(line)
        if not match:
            continue
        if match.group(1).lower() == "depends":
            depends += match.group(2).split()
        else:
            transactional = match.group(2).lower() not in ("false", "no", "off", "0")
    return depends, transactional


def is_transactional(path: Path) -> bool:
    """A migration runs in a transaction unless its header says `-- transactional: false`."""
    return _read_header(path)[1]


def versioned_migrations() -> list[Versioned]:
    """Every versioned migration, in id order (NNNN_ prefixes), with its dependencies checked."""
    found = []
    for path in sorted((sql_dir() / "migrations").glob("*.sql")):
        if path.name.endswith(".rollback.sql"):
            continue
        if not _ID.match(path.stem):
            raise AosdbError(f"{path.name}: a versioned migration is named NNNN_lowercase_name.sql")
        depends, transactional = _read_header(path)
        found.append(Versioned(path.stem, path, depends, transactional))
    seen: set[str] = set()
    for migration in found:
        missing = [d for d in migration.depends if d not in seen]
        if missing:
            raise AosdbError(f"migration {migration.id} depends on {', '.join(missing)}, which does not come before it")
        seen.add(migration.id)
    return found


@dataclass
class RepeatableFile:
    rel: str  # relative to sql/, e.g. functions/incident_engine.sql
    path: Path

    @property
    def is_view(self) -> bool:
        return self.rel.startswith("views/")

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


def repeatable_files() -> list[RepeatableFile]:
    root = sql_dir()
    return [RepeatableFile(str(p.relative_to(root)), p)
            for d in REPEATABLE_DIRS for p in sorted((root / d).glob("*.sql"))]
