"""The expectation kinds of policy tests are one table: each key the schema allows has its entry."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policy_engine.policy.compiler import compile_document
from policy_engine.policy.loader import load_yaml_file
from policy_engine.review.tester import EXPECT_KEYS, EXPECTATIONS, asserted_outcomes, check_expectations

from ..conftest import CURRENT, ROOT

KINDS = {"warning", "action", "floor", "debtor floor", "rule", "metric", "grade", "decider"}


def test_every_expectation_key_of_the_schema_has_an_entry_and_no_other() -> None:
    schema = json.loads((ROOT / "schemas" / "policy-tests.schema.json").read_text(encoding="utf-8"))
    expect = schema["properties"]["cases"]["items"]["properties"]["expect"]
    assert sorted(EXPECT_KEYS) == sorted(expect["properties"])
    assert len(set(EXPECT_KEYS)) == len(EXPECT_KEYS)
    assert {kind.names for kind in EXPECTATIONS.values()} - {None} <= KINDS


def test_expectations_that_pin_a_rule_both_ways_pin_it_neither_way() -> None:
    # An exact actions list without a suppressed action says 'not fired'; suppressed_include says 'fired'.
    policy = compile_document(load_yaml_file(CURRENT))
    aid = policy.actions[0].id
    outcomes = {("action", aid): True}
    assert asserted_outcomes(policy, {"suppressed_include": [aid]}, outcomes) == {("action", aid): True}
    assert asserted_outcomes(policy, {"suppressed_include": [aid], "actions": []}, outcomes) == {}
    assert asserted_outcomes(policy, {"actions": []}, {("action", aid): False}) == {("action", aid): False}


def test_an_empty_exact_floors_list_pins_every_floor_not_firing() -> None:
    policy = compile_document(load_yaml_file(CURRENT))
    floors = [r.id for r in policy.floors]
    outcomes = {("floor", f): False for f in floors}
    pinned = asserted_outcomes(policy, {"floors": []}, outcomes)
    assert pinned == outcomes and len(pinned) == len(floors) > 0


RECORD = {"warnings": [{"id": "late", "exposures": ["E1"]}, {"id": "thin"}],
          "actions": [{"id": "grace", "restructuring": {"is_restructuring": True}, "exposures": ["E1", "E2"]},
                      {"id": "meet"}, {"id": "empty", "exposures": [], "exposures_not_known": ["E2"]},
                      {"id": "maybe", "restructuring": {"is_restructuring": None}}],
          "classification": {"floors": [{"id": "held", "exposures": ["E2"], "exposures_not_known": ["E3"]},
                                        {"id": "contagion"}]},
          "undetermined": [  # one entry per exposure a rule could not tell about; its missing facts said once
              {"kind": "warning", "rule": "unsure", "missing": ["debtor.events"]},
              {"kind": "warning", "rule": "unsure", "missing": ["debtor.events", "exposures.E2.stage"]},
              {"kind": "action", "rule": "unsure", "missing": ["exposures.E1.balance"]},
              {"kind": "classification", "rule": "unsure", "exposure": "E1", "missing": ["exposures.E1.stage"]}]}


@pytest.mark.parametrize(("expect", "says"), [
    ({"restructuring": {"grace": True}}, []),
    ({"restructuring": {"grace": False}}, ["restructuring.grace: expected False, got True"]),
    ({"restructuring": {"meet": True}}, ["restructuring.meet: action has no restructuring consequence"]),
    ({"restructuring": {"visit": True}}, ["restructuring.visit: action not recommended"]),
    ({"action_exposures": {"grace": ["E2", "E1"]}}, []),
    ({"action_exposures": {"grace": ["E1"]}}, ["action_exposures.grace: expected ['E1'], got ['E1', 'E2']"]),
    ({"action_exposures": {"meet": ["E1"]}},
     ["action_exposures.meet: the action names no exposures (it has no for_exposures)"]),
    ({"warning_exposures": {"late": ["E1"], "thin": ["E1"], "gone": ["E1"]}},
     ["warning_exposures.thin: the warning names no exposures (it has no for_exposures)",
      "warning_exposures.gone: warning did not fire"]),
    ({"warning_exposures": {"gone": []}}, []),  # an empty list: it names none, so it does not fire
    ({"warning_exposures": {"late": []}},
     ["warning_exposures.late: expected it not to fire (naming none), it fired naming ['E1']"]),
    ({"warning_exposures": {"unsure": []}},
     ["warning_exposures.unsure: undetermined (a fact it reads is missing: debtor.events, exposures.E2.stage)"]),
    ({"action_exposures": {"unsure": ["E1"]}},
     ["action_exposures.unsure: undetermined (a fact it reads is missing: exposures.E1.balance)"]),
    ({"restructuring": {"unsure": True}},
     ["restructuring.unsure: undetermined (a fact it reads is missing: exposures.E1.balance)"]),
    ({"floor_exposures": {"held": ["E2"]}}, []),
    ({"floor_exposures": {"held": ["E1"], "contagion": ["E1"], "gone": ["E1"]}},
     ["floor_exposures.held: expected ['E1'], got ['E2'] (not known whether it concerns ['E3']: its condition has "
      "no value there)",
      "floor_exposures.contagion: the floor names no exposures (it has no for_exposures)",
      "floor_exposures.gone: floor did not fire"]),
    ({"floor_exposures": {"held": ["E2", "E3"]}},
     ["floor_exposures.held: expected ['E2', 'E3'], got ['E2'] (not known whether it concerns ['E3']: its "
      "condition has no value there)"]),
    ({"floor_exposures": {"unsure": ["E1"], "gone": []}},
     ["floor_exposures.unsure: undetermined (a fact it reads is missing: exposures.E1.stage)"]),
    ({"action_exposures": {"empty": []}},  # fired naming none, one not known: [] expects it not to fire
     ["action_exposures.empty: expected it not to fire (naming none), it fired naming [] (not known whether it "
      "concerns ['E2']: its condition has no value there)"]),
    ({"restructuring": {"maybe": True}}, ["restructuring.maybe: undetermined (a fact it reads is missing)"]),
])
def test_an_expectation_keyed_by_warning_or_action_says_what_differs(expect: dict[str, Any], says: list[str]) -> None:
    assert check_expectations(expect, RECORD) == says


@pytest.mark.parametrize("key", ["action_exposures", "warning_exposures", "floor_exposures"])
def test_named_exposures_pin_firing_and_an_empty_list_pins_not_firing(key: str) -> None:
    policy = compile_document(load_yaml_file(CURRENT))
    kind = {"action_exposures": "action", "warning_exposures": "warning", "floor_exposures": "floor"}[key]
    outcomes = {(kind, "named"): True, (kind, "none"): False}
    assert asserted_outcomes(policy, {key: {"named": ["E1"], "none": []}}, outcomes) == outcomes
