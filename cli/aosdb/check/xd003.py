"""XD-003 (warning): every SDSR scenario states its expected propagation: a non-empty
expected_propagation list. Scenarios are the *.yaml / *.yml files under ROOT/scenarios, each
YAML document one scenario."""

from __future__ import annotations

from pathlib import Path

import yaml

from aosdb.check.findings import WARNING, Finding, Where
from aosdb.check.tree import display_path

RULE = "XD-003"


def scenario_files(root: Path) -> list[Path]:
    base = root / "scenarios"
    if not base.is_dir():
        return []
    return sorted(p for p in base.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def check_scenarios(files: list[Path]) -> tuple[list[Finding], int]:
    """The findings, and how many scenarios were read."""
    findings: list[Finding] = []
    count = 0
    for path in files:
        shown = display_path(path)
        try:
            documents = list(yaml.compose_all(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 1
            reason = str(getattr(exc, "problem", None) or exc).splitlines()[0]
            findings.append(_warning(Where(shown, line), f"not a readable scenario ({reason}): its expected "
                                                         "propagation is unknown"))  # fmt: skip
            continue
        for doc in documents:
            if doc is None:
                continue
            count += 1
            findings += _check_document(doc, shown)
    return findings, count


def _warning(where: Where, message: str) -> Finding:
    return Finding.at(where, RULE, WARNING, message)


def _check_document(doc: yaml.Node, shown: str) -> list[Finding]:
    start = Where(shown, doc.start_mark.line + 1)
    if not isinstance(doc, yaml.MappingNode):
        return [_warning(start, "a scenario is a mapping with expected_propagation; this is not")]
    fields = {k.value: v for k, v in doc.value if isinstance(k, yaml.ScalarNode)}
    keys = {k.value: k for k, _v in doc.value if isinstance(k, yaml.ScalarNode)}
    sid = fields.get("scenario_id")
    name = f"scenario {sid.value}" if isinstance(sid, yaml.ScalarNode) and sid.value else "scenario"
    if "expected_propagation" not in fields:
        return [_warning(start, f"{name} states no expected_propagation")]
    value = fields["expected_propagation"]
    where = Where(shown, keys["expected_propagation"].start_mark.line + 1)
    if isinstance(value, yaml.SequenceNode):
        return [] if value.value else [_warning(where, f"{name} has an empty expected_propagation")]
    if isinstance(value, yaml.ScalarNode) and value.tag.endswith(":null"):
        return [_warning(where, f"{name} has an empty expected_propagation")]
    return [_warning(where, f"{name}: expected_propagation is not a list of assertions")]
