"""What the checker reports: one finding per violation, printed as `file:line: XD-00N SEVERITY: message`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

ERROR = "ERROR"
WARNING = "WARNING"


@dataclass(frozen=True)
class Where:
    """A place to point at: a file of the tree (as displayed) and a line, or `db:<object>` and 0."""

    file: str
    line: int

    @classmethod
    def db(cls, obj: str) -> Where:
        return cls(f"db:{obj}", 0)

    @property
    def is_db(self) -> bool:
        return self.file.startswith("db:")

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    rule: str
    severity: str
    message: str

    @classmethod
    def at(cls, where: Where, rule: str, severity: str, message: str) -> Finding:
        return cls(where.file, where.line, rule, severity, message)

    def sort_key(self) -> tuple:
        return (self.file.startswith("db:"), self.file, self.line, self.rule, self.message)

    def text(self) -> str:
        return f"{self.file}:{self.line}: {self.rule} {self.severity}: {self.message}"


def unique_sorted(findings: list[Finding]) -> list[Finding]:
    return sorted(set(findings), key=Finding.sort_key)


def as_json(findings: list[Finding]) -> str:
    return json.dumps([asdict(f) for f in findings], indent=2)


def summary(findings: list[Finding]) -> tuple[int, int]:
    errors = sum(1 for f in findings if f.severity == ERROR)
    return errors, len(findings) - errors
