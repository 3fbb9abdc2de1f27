"""``decide --trace`` on a policy with scopes: each exposure's own floors, with the facts they read."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.policy.registry import load_policy

REFERENCE = Path("policies/loss-client-management")
SAMPLES = REFERENCE / "samples" / "debtors"


@pytest.fixture(scope="module")
def decider() -> Decider:
    return Decider(load_policy(REFERENCE / "policy-2.0.0.yaml"))


def _decide(decider: Decider, name: str, trace: bool = True) -> dict:
    return decider.decide(json.loads((SAMPLES / name).read_text(encoding="utf-8")), trace=trace)


def test_an_exposure_floor_shows_the_days_past_due_it_compared(decider: Decider) -> None:
    record = _decide(decider, "07-overdue-280-days.json")
    steps = {(s["rule"], s.get("exposure")): s for s in record["trace"] if s["stage"] == "classification"}
    step = steps[("overdue_over_90", "E1")]
    assert step["reads"] == {"days_past_due": 280} and step["result"] is True and step["floor"] == "substandard"
    assert steps[("overdue_over_270", "E1")]["result"] is True
    assert steps[("overdue_over_360", "E1")]["result"] is False
    schema = json.loads(Path("schemas/decision.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(record, schema)


def test_every_exposure_floor_of_every_exposure_in_rule_order_before_the_debtor_rules(decider: Decider) -> None:
    policy = decider.policy
    assert policy.scoped is not None
    record = _decide(decider, "05-contagion-three-exposures.json")
    classification = [s for s in record["trace"] if s["stage"] == "classification"]
    own = [(s["exposure"], s["rule"]) for s in classification if "exposure" in s]
    ids = [x["exposure_id"] for x in record["exposures"]]
    assert own == [(eid, f.id) for eid in ids for f in policy.scoped.floors]
    debtor = [s["rule"] for s in classification if "exposure" not in s]
    assert classification[:len(own)] == [s for s in classification if "exposure" in s]  # exposures first
    assert debtor == [f.id for f in policy.floors]
    # the results are the decision's own: a fired exposure floor is listed under its exposure
    for x in record["exposures"]:
        fired = {s["rule"] for s in classification if s.get("exposure") == x["exposure_id"] and s["result"] is True}
        assert fired == {f["id"] for f in x["floors"] if f.get("scope") == "exposure"}


def test_each_exposure_s_metrics_are_traced_before_its_floors_with_the_values_of_the_decision(
        decider: Decider) -> None:
    """A policy author could not audit a count of late payments: the trace had no step for an exposure's metric.
    Each metric computed before classification is a step of its exposure, its result the one the decision shows."""
    policy = decider.policy
    assert policy.scoped is not None
    record = _decide(decider, "13-observation-restarted.json")
    early = [m.name for m in policy.scoped.metrics if m.after is None]
    for x in record["exposures"]:
        steps = [s for s in record["trace"] if s.get("exposure") == x["exposure_id"]]
        metrics = [s for s in steps if s["stage"] == "metric"]
        assert [s["rule"] for s in metrics] == early
        assert steps[:len(metrics)] == metrics  # before its floors
        for s in metrics:
            if s["rule"] in x["metrics"]:  # what the record shows of it, the trace gives alike
                assert s["result"] == x["metrics"][s["rule"]], s["rule"]
    jsonschema.validate(record, json.loads(Path("schemas/decision.schema.json").read_text(encoding="utf-8")))


def test_without_trace_the_record_is_unchanged(decider: Decider) -> None:
    record = _decide(decider, "07-overdue-280-days.json", trace=False)
    assert "trace" not in record
