"""TAP output: one plan for the whole run, a line per check, `#` diagnostics under a failed line.

`prove`, `pg_prove` and CI read it; the last line is ``# N passed, M failed[, K skipped]``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any


class Tap:
    def __init__(self, emit: Callable[[str], None]):
        self.emit = emit
        self.number = 0
        self.passed = 0
        self.failed = 0
        self.skipped = 0

    def result(self, ok: bool, description: str, diagnostics: list[str] = (), skip: str | None = None) -> None:
        self.number += 1
        text = " ".join(description.split()).replace("#", "\\#")
        if skip is not None:
            self.skipped += 1
            self.emit(f"ok {self.number} - {text} # SKIP {skip}")
            return
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        self.emit(f"{'ok' if ok else 'not ok'} {self.number} - {text}")
        for line in diagnostics:
            self.comment(line)

    def comment(self, text: str) -> None:
        for line in str(text).splitlines() or [""]:
            self.emit(f"#   {line}".rstrip())

    def note(self, text: str) -> None:
        self.emit(f"# {text}")


def show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    text = str(value)
    return json.dumps(text) if (not text or any(ch.isspace() for ch in text) or "=" in text) else text
