"""A field read under another spelling is named with the spelling meant (tests/data/misspelt_fields.yaml)."""

from __future__ import annotations

import csv
from typing import Any

import pytest
import yaml

from policy_engine.decide.inputs import misspelt_fields

from ..conftest import DATA, REFERENCE

CASES = yaml.safe_load((DATA / "misspelt_fields.yaml").read_text(encoding="utf-8"))
with (REFERENCE / "samples" / "portfolio.csv").open(encoding="utf-8") as f:
    HEADER = next(csv.reader(f))


def _columns(case: dict[str, Any]) -> list[str]:
    columns = [case.get("replace", {}).get(c, c) for c in HEADER]
    if "replace_period" in case:
        old, new = (f"financials[{case['replace_period'][k]}]." for k in ("from", "to"))
        columns = [new + c[len(old):] if c.startswith(old) else c for c in columns]
    if "replace_container" in case:
        old, new = (case["replace_container"][k] + "." for k in ("from", "to"))
        columns = [new + c[len(old):] if c.startswith(old) else c for c in columns]
    return columns + case.get("add", [])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_misspelt_fields(policy: Any, case: dict[str, Any]) -> None:
    assert misspelt_fields(policy, _columns(case)) == [tuple(pair) for pair in case["expect"]]
