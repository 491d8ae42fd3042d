"""Where things are: the project tree and the database a command talks to."""

from __future__ import annotations

import os
import re
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from aosdb.errors import AosdbError


def project_root() -> Path:
    """The tree holding sql/ and scenarios/: AOSDB_ROOT, else the checkout this package lives in."""
    env = os.environ.get("AOSDB_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]


def sql_dir() -> Path:
    path = project_root() / "sql"
    if not (path / "migrations").is_dir():
        raise AosdbError(f"no sql/migrations under {project_root()}; set AOSDB_ROOT to the aosdb checkout")
    return path


def resolve_dsn(dsn: str | None) -> str:
    """--dsn, else AOSDB_DSN, else DATABASE_URL, else the embedded cluster (started on demand)."""
    for candidate in (dsn, os.environ.get("AOSDB_DSN"), os.environ.get("DATABASE_URL")):
        if candidate:
            return candidate
    from aosdb.cluster import EmbeddedCluster

    return EmbeddedCluster().ensure_running()


def with_dbname(dsn: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo(**params)


_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide passwords in DSNs and in messages that quote them."""
    text = _URL_PASSWORD.sub(r"\1***@", text)
    return _KV_PASSWORD.sub(r"\1***", text)


def describe_dsn(dsn: str) -> str:
    """host:port/dbname as user, for messages: never the password."""
    try:
        p = conninfo_to_dict(dsn)
    except Exception:  # an unparsable DSN is reported by the connection itself
        return redact(dsn)
    return f"{p.get('user', '?')}@{p.get('host', 'localhost')}:{p.get('port', '5432')}/{p.get('dbname', '?')}"
