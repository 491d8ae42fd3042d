"""pgspot over the SQL that migrate applies: sql/migrations/*.sql (not the rollbacks),
sql/functions/*.sql and sql/views/*.sql.

pgspot needs pglast<8 and the project pglast>=8, so it lives in a virtualenv of its own,
.venv-pgspot/ in the repository root (git-ignored), made here on first use. Every finding must be
in sql/pgspot-allowlist.txt with a one-line reason, and every entry there must still occur, so the
list never hides a new finding nor outlives a fixed one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

PGSPOT_VERSION = "0.9.4"  # pinned: another version words its findings differently
VENV = REPO_ROOT / ".venv-pgspot"
ALLOWLIST = REPO_ROOT / "sql" / "pgspot-allowlist.txt"
RUNNER = Path(__file__).parent / "pgspot" / "findings.py"


def sql_files() -> list[str]:
    sql = REPO_ROOT / "sql"
    files = [p for p in sorted((sql / "migrations").glob("*.sql")) if not p.name.endswith(".rollback.sql")]
    files += sorted((sql / "functions").glob("*.sql")) + sorted((sql / "views").glob("*.sql"))
    return [str(p.relative_to(REPO_ROOT)) for p in files]


def pgspot_python() -> Path:
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", f"import importlib.metadata as m; assert m.version('pgspot') == '{PGSPOT_VERSION}'"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    made = subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot create {VENV.name}: {made.stderr.strip().splitlines()[-1:]}")
    try:
        pip = subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "--timeout", "30",
             "--retries", "2", f"pgspot=={PGSPOT_VERSION}"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip did not install pgspot=={PGSPOT_VERSION} within 300 s (no package index?)")
    if pip.returncode != 0:
        lines = [line for line in pip.stderr.splitlines() if line.strip() and not line.startswith("WARNING")]
        pytest.skip(f"pip cannot install pgspot=={PGSPOT_VERSION} (no package index?): {lines[-1:] or pip.returncode}")
    return python


def allowlist() -> dict[tuple[str, str, str], str]:
    """code, file, object -> reason; one tab-separated line each, # starts a comment line."""
    entries: dict[tuple[str, str, str], str] = {}
    for number, line in enumerate(ALLOWLIST.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        assert len(fields) == 4 and fields[3].strip(), f"{ALLOWLIST.name}:{number}: want code, file, object, reason"
        key = (fields[0], fields[1], fields[2])
        assert key not in entries, f"{ALLOWLIST.name}:{number}: listed twice"
        entries[key] = fields[3]
    return entries


def test_every_pgspot_finding_is_fixed_or_allowlisted() -> None:
    python = pgspot_python()
    proc = subprocess.run([str(python), str(RUNNER), *sql_files()], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    found = {(f["code"], f["file"], f["object"]): f for f in map(json.loads, proc.stdout.splitlines())}
    allowed = allowlist()
    new = [f"{f['code']}\t{f['file']}\t{f['object']}\t<why it is safe> (line {f['line']}, {f['statement']})"
           for key, f in sorted(found.items()) if key not in allowed]  # fmt: skip
    stale = ["\t".join(key) for key in sorted(allowed) if key not in found]
    assert not new, "pgspot findings not in the allowlist (fix them or list them with a reason):\n" + "\n".join(new)
    assert not stale, "allowlist entries that no longer occur (remove them):\n" + "\n".join(stale)


def test_the_allowlist_reasons_hold(migrated_dsn: str) -> None:
    """What the allowlist rests on: every function pins its search_path or has a SQL-standard body
    (bound at CREATE, and inlinable only without a SET), no role but aos_owner may create in the five
    schemas, and PUBLIC may not create in public. The one kind of exception: a procedure that commits
    (PostgreSQL refuses COMMIT in a procedure with a SET clause) runs as its caller and only its owner
    may call it, so a search_path can only ever mislead the owner's own session."""
    from conftest import query

    unpinned = query(migrated_dsn, """
        SELECT p.oid::regprocedure::text FROM pg_proc AS p
        WHERE p.pronamespace::regnamespace::text IN ('aos', 'activity', 'incidents', 'policies', 'api', 'api_private')
          AND NOT EXISTS (SELECT FROM unnest(p.proconfig) AS c WHERE c LIKE 'search_path=%')
          AND p.prosqlbody IS NULL
          AND NOT (p.prokind = 'p' AND NOT p.prosecdef AND p.proowner = 'aos_owner'::regrole
                   AND NOT EXISTS (SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
                                   WHERE a.grantee <> p.proowner))""")
    assert unpinned == [], "functions without SET search_path nor a SQL-standard body"
    creators = query(migrated_dsn, """
        SELECT n.nspname::text, r.rolname::text FROM pg_namespace AS n CROSS JOIN pg_roles AS r
        WHERE n.nspname IN ('aos', 'activity', 'incidents', 'policies', 'api', 'api_private') AND NOT r.rolsuper
          AND r.rolname <> 'aos_owner' AND has_schema_privilege(r.oid, n.oid, 'CREATE')""")
    assert creators == [], "roles besides aos_owner that may create in the schemas"
    assert query(migrated_dsn, "SELECT has_schema_privilege('public', 'public', 'CREATE')") == [(False,)]
