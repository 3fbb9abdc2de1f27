"""Where the JSON Schemas live: one source of truth for editors and the engine.

In a checkout they are the top-level ``schemas/`` folder; in an installed wheel
the same files are packaged as ``policy_engine/_schemas``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_NAMES = ("policy", "module", "client", "decision", "policy-tests", "scenario")
# What the commands write for machines: a CI pipeline's contract, kept by tests that check every output.
REPORT_SCHEMAS = ("validate-report", "test-report", "diff-report", "impact-report", "batch-summary", "errors",
                  "stream-line")


def schema_dir() -> Path:
    package = Path(__file__).resolve().parent.parent  # this module is policy_engine/policy/schemas.py
    for candidate in (package / "_schemas", package.parent / "schemas"):
        if (candidate / "policy.schema.json").is_file():
            return candidate
    raise FileNotFoundError("policy_engine schemas not found; reinstall the package")


def schema_path(name: str) -> Path:
    return schema_dir() / f"{name}.schema.json"


@cache
def load_schema(name: str) -> dict[str, Any]:
    if name not in SCHEMA_NAMES and name not in REPORT_SCHEMAS:
        raise KeyError(name)
    with schema_path(name).open(encoding="utf-8") as fh:
        return json.load(fh)


@cache
def validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name))
