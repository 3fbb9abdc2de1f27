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
                  "stream-line", "audit-report")


# A schema that refers to others by file name holds their text (under its $defs, each with its $id, where such a
# reference resolves): whole on its own, as `schema NAME` prints it. tools/embed_schemas.py writes the copies.
EMBEDS: dict[str, tuple[str, ...]] = {"stream-line": ("decision", "errors")}


def with_embedded(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` holding the current text of each schema it embeds (what its file must hold)."""
    if name not in EMBEDS:
        return schema
    defs = dict(schema.get("$defs", {}))
    for other in EMBEDS[name]:
        defs[other] = {k: v for k, v in load_schema(other).items() if k != "$schema"}
    return {**schema, "$defs": defs}


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
