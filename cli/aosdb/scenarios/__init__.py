"""SDSR scenarios: inject causes as aos_scenario, assert the effects the engines made.

A tool of its own beside the database, in four parts:

- ``model``: the scenario file's schema (pydantic models), YAML reading, offline validation, and
  the JSON Schema editors use (``aosdb scenario schema``);
- ``catalog``: what the migrated database offers (tables, columns, the enumerations of its CHECK
  constraints, the role scenarios run as), and the check of each scenario against it;
- ``runner``: executing the inject steps and the assertions, one transaction per scenario;
- ``tap``: the TAP output.

The file format is documented in scenarios/README.md.
"""

from aosdb.scenarios.catalog import SCENARIO_ROLE, Catalog, check_against_catalog, prerequisites
from aosdb.scenarios.model import (
    ASSERTIONS,
    Scenario,
    ScenarioError,
    ScenarioFile,
    load_scenario,
    scenario_files,
    scenario_schema,
    scenario_schema_text,
)
from aosdb.scenarios.runner import run_paths

__all__ = [
    "ASSERTIONS",
    "SCENARIO_ROLE",
    "Catalog",
    "Scenario",
    "ScenarioError",
    "ScenarioFile",
    "check_against_catalog",
    "load_scenario",
    "prerequisites",
    "run_paths",
    "scenario_files",
    "scenario_schema",
    "scenario_schema_text",
]
