"""A debtor rule or metric null because of an aggregation names what is missing: the scope, the element's key
and the name (``exposure E2: dpd``), with the field's place in the record; an exposure metric without a value
names what it lacked in turn (a payment's date)."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.missing import MAX_NAMED
from policy_engine.policy.compiler import compile_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.policy.registry import load_policy

from ..conftest import DATA, ROOT

POLICY = DATA / "scopes" / "policy-aggregation-nulls.yaml"
DECISION_SCHEMA = json.loads((ROOT / "schemas" / "decision.schema.json").read_text("utf-8"))
CLIENT: dict[str, Any] = {
    "client_id": "X", "as_of": "2025-06-30",
    "exposures": [
        {"exposure_id": "E1", "balance": 10, "days_past_due": 0,
         "schedule": [{"due_date": "2025-01-01", "paid_date": "2025-01-01"}]},
        {"exposure_id": "E2", "balance": 5,
         "schedule": [{"due_date": "2025-02-01", "paid_date": "2025-03-01"}, {"due_date": "2025-01-01"}]},
    ],
}


@pytest.fixture(scope="module")
def decision() -> dict[str, Any]:
    record = Decider(load_policy(POLICY)).decide(copy.deepcopy(CLIENT))
    jsonschema.validate(record, DECISION_SCHEMA)
    return record


def _entry(decision: dict[str, Any], rule: str) -> dict[str, Any]:
    return next(u for u in decision["undetermined"] if u["rule"] == rule)


# (rule, missing, reasons): a floor reading an aggregation, one reading a debtor metric, one an exposure metric.
EXPECTED = [
    ("any_overdue", ["exposure E2: dpd"], {"exposure E2: dpd": "missing input at exposures[1].days_past_due"}),
    ("share_rule", ["overdue_share"],
     {"overdue_share": "no value for exposure E2: dpd (missing input at exposures[1].days_past_due)"}),
    # payments are read in due-date order: the payment due first (the record's second) is payment 1
    ("late_rule", ["exposure E2: late"],
     {"exposure E2: late": "no value: payment 1: paid_date (missing input at exposures[1].schedule[1].paid_date)"}),
]


@pytest.mark.parametrize(("rule", "missing", "reasons"), EXPECTED)
def test_an_undetermined_debtor_rule_names_the_element_and_value(decision: dict[str, Any], rule: str,
                                                                  missing: list[str], reasons: dict[str, str]) -> None:
    entry = _entry(decision, rule)
    assert entry["missing"] == missing and entry["reasons"] == reasons
    assert "exposure" not in entry  # a debtor rule: no exposure of its own


# An exposure floor: its payments read by an aggregation, or an exposure metric without a value.
EXPOSURE_EXPECTED = [
    ("own_late", ["late"],
     {"late": "no value: payment 1: paid_date (missing input at exposures[1].schedule[1].paid_date)"}),
    ("own_unpaid", ["payment 1: paid_date"],
     {"payment 1: paid_date": "missing input at exposures[1].schedule[1].paid_date"}),
]


@pytest.mark.parametrize(("rule", "missing", "reasons"), EXPOSURE_EXPECTED)
def test_an_undetermined_exposure_floor_names_the_payment(decision: dict[str, Any], rule: str,
                                                           missing: list[str], reasons: dict[str, str]) -> None:
    entries = [u for u in decision["undetermined"] if u["rule"] == rule]
    assert [u["exposure"] for u in entries] == ["E2"]
    assert entries[0]["missing"] == missing and entries[0]["reasons"] == reasons


def test_a_null_debtor_metric_says_which_exposure_lacked_what(decision: dict[str, Any]) -> None:
    assert decision["undefined_metrics"] == {
        "overdue_share": "no value for exposure E2: dpd (missing input at exposures[1].days_past_due)"}


def test_with_every_value_present_nothing_is_undetermined() -> None:
    client = copy.deepcopy(CLIENT)
    client["exposures"][1]["days_past_due"] = 0
    client["exposures"][1]["schedule"][1]["paid_date"] = "2025-01-01"
    record = Decider(load_policy(POLICY)).decide(client)
    assert record["undetermined"] == [] and record["undefined_metrics"] == {}


def test_many_missing_values_are_named_up_to_a_bound_then_counted() -> None:
    client = copy.deepcopy(CLIENT)
    policy_text = POLICY.read_text(encoding="utf-8").replace("max: 5}", "max: 40}")
    decider = Decider(compile_document(load_yaml_text(policy_text, "p.yaml")))
    client["exposures"] = [{"exposure_id": f"E{i}", "balance": 1} for i in range(MAX_NAMED + 3)]
    entry = _entry(decider.decide(client), "any_overdue")
    assert entry["missing"][:2] == ["exposure E0: dpd", "exposure E1: dpd"]
    assert len(entry["missing"]) == MAX_NAMED + 1 and entry["missing"][-1] == "3 more"


REFERENCE = ROOT / "policies" / "loss-client-management"


@pytest.mark.parametrize("drop", ["empty list", "no key"])
def test_a_debtor_without_exposures_says_no_element_was_there_on_both_paths(tmp_path: Any, drop: str) -> None:
    """worst_grade(exposure) reads no name, only the elements: with none, its reason is that there were none,
    never "undefined for the figures read ()" (in the record, on the row and the vector path alike)."""
    import orjson

    from policy_engine.decide.evaluate import NO_MATCH
    from policy_engine.portfolio.scoped_batch import run_scoped_batch

    policy = load_policy(REFERENCE / "policy-2.0.0.yaml")
    record = json.loads((REFERENCE / "samples" / "debtors" / "23-case-manufacturer-raw-material-squeeze.json")
                        .read_text(encoding="utf-8"))
    if drop == "no key":
        del record["exposures"]
    else:
        record["exposures"] = []
    row = Decider(policy).decide(copy.deepcopy(record))
    path = tmp_path / "debtors.jsonl"
    path.write_bytes(orjson.dumps(record) + b"\n")
    result = run_scoped_batch(policy, path)
    assert result.rejected == 0
    (vector,) = list(result.records())
    for decided in (row, vector):
        assert decided["exposures"] == []
        assert decided["undefined_metrics"]["worst_own_grade"] == NO_MATCH
        entry = _entry(decided, "nonperforming_any_bank")
        assert entry["reasons"] == {"worst_own_grade": NO_MATCH}
        reasons = [*decided["undefined_metrics"].values(),
                   *(why for u in decided["undetermined"] for why in u["reasons"].values())]
        assert not [why for why in reasons if "()" in why]
        jsonschema.validate(decided, DECISION_SCHEMA)
    assert {k: v for k, v in row.items() if k not in ("decision_id", "evaluated_at")} == \
        {k: v for k, v in vector.items() if k not in ("decision_id", "evaluated_at")}
