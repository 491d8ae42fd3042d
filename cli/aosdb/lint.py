"""`aosdb lint`: sqlfluff and squawk on the migrations, plpgsql_check on every PL/pgSQL function.

squawk judges the migrations for the target server's version. plpgsql_check is a C extension
built per server: where the server lacks it, that linter is skipped (with the install hint), not failed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from aosdb import migrations
from aosdb.config import project_root, sql_dir
from aosdb.db import connect, throwaway_database
from aosdb.errors import AosdbError
from aosdb.inventory import DOMAIN_SCHEMAS
from aosdb.migration_files import is_transactional

# Small counters (attempts, step_index, priority, version) are integers on purpose.
SQUAWK_EXCLUDED = ["prefer-bigint-over-int"]
# A rollback exists to drop what its migration created.
SQUAWK_ROLLBACK_EXCLUDED = SQUAWK_EXCLUDED + ["ban-drop-table", "ban-drop-schema", "ban-drop-function"]

# Every PL/pgSQL function of ours; for a trigger function, the table and the
# transition tables of one of its triggers (the one with the most of them).
_FUNCTIONS_SQL = """
SELECT p.oid, format('%%I.%%I(%%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
       t.tgrelid, p.prorettype = 'trigger'::regtype, t.tgoldtable, t.tgnewtable
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_language l ON l.oid = p.prolang
LEFT JOIN LATERAL (
    SELECT tg.tgrelid, tg.tgoldtable, tg.tgnewtable FROM pg_trigger tg WHERE tg.tgfoid = p.oid
    ORDER BY (tg.tgoldtable IS NOT NULL)::int + (tg.tgnewtable IS NOT NULL)::int DESC, tg.tgname LIMIT 1
) t ON true
WHERE l.lanname = 'plpgsql' AND n.nspname = ANY(%s)
ORDER BY 2
"""


def _tool(name: str) -> str:
    """A console script of this virtualenv, else one on PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise AosdbError(f"{name} not found: run `make setup`")
    return found


def _sqlfluff(files: list[Path]) -> bool:
    cmd = [_tool("sqlfluff"), "lint", "--config", str(project_root() / ".sqlfluff"), *map(str, files)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(proc.stdout + proc.stderr, end="")
    print(f"sqlfluff: {'clean' if proc.returncode == 0 else 'violations found'} ({len(files)} files)")
    return proc.returncode == 0


def _squawk(files: list[Path], excluded: list[str], label: str, server_major: int) -> bool:
    ok = True
    # Lint each file as migrate runs it: inside a transaction or not.
    for in_transaction in (True, False):
        group = [f for f in files if is_transactional(f) == in_transaction]
        if not group:
            continue
        cmd = [_tool("squawk"), f"--pg-version={server_major}.0", "--reporter", "gcc", "--exclude", ",".join(excluded),
               *(["--assume-in-transaction"] if in_transaction else []), *map(str, group)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(proc.stdout + proc.stderr, end="")
            ok = False
    print(f"squawk: {'clean' if ok else 'violations found'} ({len(files)} {label})")
    return ok


def _server_facts(dsn: str) -> tuple[int, bool]:
    """(major version, whether plpgsql_check is installable) of the target server."""
    with connect(dsn, autocommit=True) as conn:
        major = conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()[0]
        available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'plpgsql_check'").fetchone()
    return major, available is not None


def _plpgsql_check(dsn: str) -> bool:
    problems: list[str] = []
    with throwaway_database(dsn, "aosdb_lint") as lint_dsn:
        migrations.migrate(lint_dsn)
        with connect(lint_dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS plpgsql_check")
            # The planner may evaluate aos.current_tenant() while the checker prepares queries.
            conn.execute("SET aos.tenant_id = 'lint'")
            functions = conn.execute(_FUNCTIONS_SQL, (list(DOMAIN_SCHEMAS),)).fetchall()
            for oid, signature, relid, is_trigger, old_table, new_table in functions:
                if is_trigger and relid is None:
                    problems.append(f"{signature}: trigger function attached to no table, cannot be checked")
                    continue
                rows = conn.execute(
                    """SELECT level, message, lineno, detail FROM plpgsql_check_function_tb(
                           %s, coalesce(%s, 0)::regclass, fatal_errors => false, other_warnings => true,
                           extra_warnings => true, security_warnings => true,
                           oldtable => %s, newtable => %s)""",
                    (oid, relid, old_table, new_table),
                ).fetchall()
                for level, message, lineno, detail in rows:
                    where = f" line {lineno}" if lineno else ""
                    extra = f" ({detail})" if detail else ""
                    problems.append(f"{signature}{where}: {level}: {message}{extra}")
    for problem in problems:
        print(problem)
    print(f"plpgsql_check: {'clean' if not problems else f'{len(problems)} problems'} ({len(functions)} functions)")
    return not problems


def run_lint(dsn: str) -> int:
    root = sql_dir()
    forward = sorted(p for p in (root / "migrations").glob("*.sql") if not p.name.endswith(".rollback.sql"))
    rollbacks = sorted((root / "migrations").glob("*.rollback.sql"))
    server_major, has_plpgsql_check = _server_facts(dsn)
    results = [
        _sqlfluff(forward + rollbacks),
        _squawk(forward, SQUAWK_EXCLUDED, "migrations", server_major),
        _squawk(rollbacks, SQUAWK_ROLLBACK_EXCLUDED, "rollbacks", server_major),
    ]
    skipped = 0
    if has_plpgsql_check:
        results.append(_plpgsql_check(dsn))
    else:
        skipped += 1
        print(f"plpgsql_check: skipped, not available in this PostgreSQL {server_major} server "
              f"(Debian: apt-get install postgresql-{server_major}-plpgsql-check)")
    failed = results.count(False)
    summary = f"lint: {len(results) - failed} passed, {failed} failed"
    print(summary + (f", {skipped} skipped" if skipped else ""))
    return 0 if failed == 0 else 1
