"""The README's first commands run as written, in a fresh clone: `make run`, then the commands of
"How to connect" (psql, db status, a BI login), then `aosdb db stop`.

`make test` is the one first command not run here: it is what runs this test. The clone gets its own
port (AOSDB_PORT), so that a developer's cluster or CI's on 55432 is never touched; everything else is
the README's text, read from the README itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from conftest import REPO_ROOT, SCRUBBED_ENV, free_port

SECTIONS = ("Run it, test it", "How to connect")


def _section(text: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def readme_commands() -> list[str]:
    """The shell commands of the first sections' ```sh blocks, comments stripped, in order."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for title in SECTIONS:
        for block in re.findall(r"```sh\n(.*?)```", _section(readme, title), re.DOTALL):
            for line in block.splitlines():
                command = re.sub(r"\s+#.*$", "", line).strip()
                if command and not command.startswith("#"):
                    commands.append(command)
    return commands


def test_the_first_sections_start_with_make_run_and_make_test() -> None:
    commands = readme_commands()
    assert commands[:2] == ["make run", "make test"], commands
    assert any(c.startswith('psql "$(.venv/bin/aosdb db url)"') for c in commands), commands
    assert any("IN ROLE aos_bi" in c for c in commands), commands


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_first_commands_run_as_written_in_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "aosdb"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV and k != "VIRTUAL_ENV"}
    env["AOSDB_PORT"] = str(free_port())
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    ran = []
    try:
        for command in readme_commands():
            if command == "make test":
                continue  # what runs this test
            proc = subprocess.run(["bash", "-c", command], cwd=clone, env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=900, check=False)
            ran.append(command)
            assert proc.returncode == 0, f"`{command}` exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            if command == "make run":
                assert "== What next" in proc.stdout, proc.stdout[-3000:]
        # The BI login the README creates reads the runs view, with the password it set.
        url = subprocess.run([str(clone / ".venv/bin/aosdb"), "db", "url"], cwd=clone, env=env,
                             capture_output=True, text=True, check=True).stdout.strip()
        port = re.search(r":(\d+)/", url).group(1)
        with psycopg.connect(host="127.0.0.1", port=port, dbname="aosdb", user="metabase",
                             password="change-me") as conn:
            assert conn.execute("SELECT count(*) FROM activity.v_runs_o2").fetchone()[0] > 0
        assert "make run" in ran and any(c.startswith("psql") for c in ran), ran
    finally:
        aosdb = clone / ".venv/bin/aosdb"
        if aosdb.exists():
            subprocess.run([str(aosdb), "db", "stop"], cwd=clone, env=env, capture_output=True, check=False)
            data = clone / ".aosdb" / "data"
            if data.is_symlink():  # as root under a private tmp dir, the data lives in /var/tmp
                shutil.rmtree(data.resolve().parent, ignore_errors=True)
