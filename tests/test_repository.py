"""The repository stands on its own: no tracked file cites a section of a document that is not in it
("SPEC 6.2", "SPEC section 4") or a path to the files beside the checkout (../shared). Comments, test
descriptions and messages say the thing itself, or cite a file of the repository (README.md, docs/)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
THIS_FILE = Path(__file__).resolve().relative_to(REPO_ROOT).as_posix()

# "SPEC" then a section number, optionally after the word "section": SPEC 3, SPEC 6.2, SPEC section 9.
OUTSIDE_DOCUMENT = re.compile(r"\bSPEC\s+(?:section\s+)?\d+(?:\.\d+)*")
OUTSIDE_PATH = re.compile(re.escape("../shared"))


def tracked_files() -> list[str]:
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    result = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"not a git checkout: {result.stderr.decode(errors='replace').strip()}")
    return [name for name in result.stdout.decode().split("\0") if name]


def test_no_tracked_file_cites_a_document_or_path_outside_the_repository() -> None:
    files = tracked_files()
    assert "README.md" in files and "sql/tests/01-roles.sql" in files, "git ls-files listed the wrong tree"
    found = []
    for name in files:
        if name == THIS_FILE:
            continue
        path = REPO_ROOT / name
        if not path.is_file():  # deleted in the working tree, not yet in the index
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        for number, line in enumerate(text.splitlines(), start=1):
            for pattern in (OUTSIDE_DOCUMENT, OUTSIDE_PATH):
                match = pattern.search(line)
                if match:
                    found.append(f"{name}:{number}: {match.group(0)!r} in {line.strip()[:120]!r}")
    assert not found, "references outside the repository:\n" + "\n".join(found)


@pytest.mark.parametrize(("line", "cites"), [
    ("-- The WorkerRunner API (SPEC 8): activity.start_run", True),
    ("-- the tables of SPEC 6.2 (and the views)", True),
    ("-- Group roles of the contract (SPEC section 4).", True),
    ("see ../shared/spec.md", True),
    ("-- The WorkerRunner API (README.md, How a worker reports runs)", False),
    ("spec_columns, mv)", False),
])
def test_the_patterns_catch_what_they_must_and_only_that(line: str, cites: bool) -> None:
    assert bool(OUTSIDE_DOCUMENT.search(line) or OUTSIDE_PATH.search(line)) == cites
