"""Whole numbers in a decision record: a figure the compiler proves whole is written as an integer.

Every number is a float at run time, so a count of loss quarters left the engine as ``5.0``; a typed
reader (Go's ``int``, a JSON Schema ``"integer"``) refuses that for 5. What is whole is decided by
declaration or proof, never by the value: an integer input, a parameter written as an integer, a
metric the compiler proves whole (a count, days between dates, an integer input plus one). An amount
that happens to be whole (``20080000.0``) stays a number with a fraction part, and a whole figure
beyond 2**53 stays a float (it names a range of integers there, not one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from policy_engine.decide.evaluate import Decider
from policy_engine.policy.compiler import compile_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.policy.registry import load_policy

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
REFERENCE = ROOT / "policies" / "loss-client-management"


@pytest.fixture(scope="module")
def mini() -> Decider:
    doc = yaml.safe_load((DATA / "mini-policy.yaml").read_text(encoding="utf-8"))
    doc["metrics"].update({
        "days_late": {"expr": "dpd + 1"},                    # an integer input plus a whole literal: whole
        "half_days": {"expr": "dpd / 2"},                    # a division: not proven whole
        "scaled": {"expr": "dpd * 1000000000000"},           # whole, and beyond 2**53 for a large dpd
        "ratio_whole": {"expr": "ratio(assets, liabilities)"},  # 1.0 for equal figures: not proven whole
    })
    doc["warnings"].append({"id": "very_late", "when": "days_late > 30 and scaled > 0", "severity": "high",
                            "category": "liquidity", "evidence": ["half_days", "ratio_whole"],
                            "message": {"zh": "逾期{days_late:d}天", "en": "{days_late:d} days"}})
    for m in ("days_late", "half_days", "scaled", "ratio_whole"):
        doc["metrics"][m]["informational"] = True
    return Decider(compile_document(load_yaml_text(yaml.safe_dump(doc, allow_unicode=True), "mini.yaml")))


def _client(dpd: int) -> dict[str, Any]:
    return {"client_id": "W1", "as_of": "2025-06-30", "industry": "trade", "loan": {"days_past_due": dpd},
            "assets": 100.0, "liabilities": 100.0, "financials": [{"net_income": -1.0}, {"net_income": -2.0}]}


@pytest.mark.parametrize(("dpd", "field", "written"), [
    (95, "days_late", b'"days_late":96'),
    (95, "half_days", b'"half_days":47.5'),
    (94, "half_days", b'"half_days":47.0'),           # whole here, not proven so: a float
    (95, "ratio_whole", b'"ratio_whole":1.0'),
    (95, "losses", b'"losses":2'),                    # streak counts periods
    (95, "scaled", b'"scaled":95000000000000'),
    (10**6, "scaled", b'"scaled":1e+18'),             # beyond 2**53: stays a float
])
def test_metrics_are_written_as_proven(mini: Decider, dpd: int, field: str, written: bytes) -> None:
    record = mini.decide(_client(dpd))
    assert written in orjson.dumps(record["metrics"])


def test_evidence_and_trace_follow_the_metric(mini: Decider) -> None:
    record = mini.decide(_client(95), trace=True)
    warning = next(w for w in record["warnings"] if w["id"] == "very_late")
    assert warning["evidence"] == {"days_late": 96, "scaled": 95000000000000, "half_days": 47.5, "ratio_whole": 1.0}
    assert type(warning["evidence"]["days_late"]) is int and type(warning["evidence"]["ratio_whole"]) is float
    assert warning["message"]["en"] == "96 days"
    step = next(s for s in record["trace"] if s["rule"] == "days_late")
    assert (step["reads"], step["result"]) == ({"dpd": 95}, 96)
    assert type(step["reads"]["dpd"]) is int and type(step["result"]) is int


def test_a_reference_debtor_writes_counts_as_integers() -> None:
    decider = Decider(load_policy(REFERENCE / "policy-2.0.0.yaml"))
    debtor = json.loads((REFERENCE / "samples" / "debtors" / "07-overdue-280-days.json").read_text(encoding="utf-8"))
    record = decider.decide(debtor, trace=True)
    text = orjson.dumps(record)
    assert b'"consecutive_loss_quarters":5' in text and b'"restructuring_count":0,' in text
    assert b'"total_exposure":20080000.0' in text  # an amount: whole here, a float by its definition
    exposure = record["exposures"][0]["metrics"]
    assert type(exposure["missed_since_cleared"]) is int and type(exposure["exposure_amount"]) is float
    overdue = next(s for s in record["trace"] if s["rule"] == "overdue" and s.get("exposure") == "E1")
    assert overdue["reads"]["days_past_due"] == 280 and type(overdue["reads"]["days_past_due"]) is int
    assert type(overdue["reads"]["technical_overdue_max_days"]) is int  # a parameter written as 7


def test_an_integral_float_of_a_whole_metric_replays_identical() -> None:
    """A decision recorded before this change wrote 5.0 where it now writes 5: the same number, no difference."""
    from policy_engine.record.audit import _differences

    assert _differences({"metrics": {"n": 5.0}}, {"metrics": {"n": 5}}) == ([], [])
