"""Why a debtor metric that is one aggregation has no value, on the row and the vector path alike.

The reason names the elements that made it null (a condition without a value, a value without one
where the condition held) read off each element's arguments as the decision computed them, never
an element whose value the condition passed over: ``max_where(exposure, restarted, dpd > 0)`` is
not null "for exposure E1: restarted" when E1 is not overdue. Cases: data/scopes/aggregation-reasons.yaml.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from policy_engine.decide.evaluate import NO_MATCH, Decider
from policy_engine.policy.registry import load_policy
from policy_engine.portfolio.scoped_batch import run_scoped_batch

from ..conftest import DATA

POLICY = load_policy(DATA / "scopes" / "policy-aggregation-reasons.yaml")
CASES = yaml.safe_load((DATA / "scopes" / "aggregation-reasons.yaml").read_text(encoding="utf-8"))


def _client(case: dict[str, Any]) -> dict[str, Any]:
    return {"client_id": "X", "as_of": "2025-06-30", **case.get("debtor", {}),
            "exposures": copy.deepcopy(case["exposures"])}


def _check(record: dict[str, Any], expect: dict[str, Any]) -> None:
    for metric, want in expect.items():
        if isinstance(want, dict):
            assert record["metrics"][metric] == want["value"], metric
            assert metric not in record["undefined_metrics"]
        else:
            assert record["metrics"][metric] is None, metric
            assert record["undefined_metrics"][metric] == (NO_MATCH if want == "none met" else want), metric


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_a_null_aggregation_names_only_the_elements_that_made_it_null(case: dict[str, Any]) -> None:
    _check(Decider(POLICY).decide(_client(case)), case["expect"])


def test_the_vector_path_gives_the_same_reasons(tmp_path: Path) -> None:
    path = tmp_path / "debtors.jsonl"
    path.write_bytes(b"".join(orjson.dumps({**_client(c), "client_id": f"C{i}"}) + b"\n"
                              for i, c in enumerate(CASES)))
    result = run_scoped_batch(POLICY, path)
    assert result.rejected == 0
    for i, (case, vector) in enumerate(zip(CASES, result.records(), strict=True)):
        _check(vector, case["expect"])
        row = Decider(POLICY).decide({**_client(case), "client_id": f"C{i}"})
        assert vector["undefined_metrics"] == row["undefined_metrics"]
