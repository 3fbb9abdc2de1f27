"""The expectation kinds of policy tests are one table: each key the schema allows has its entry."""

from __future__ import annotations

import json

from policy_engine.policy.compiler import compile_document
from policy_engine.policy.loader import load_yaml_file
from policy_engine.review.tester import EXPECT_KEYS, EXPECTATIONS, asserted_outcomes

from ..conftest import CURRENT, ROOT

KINDS = {"warning", "action", "floor", "rule", "metric", "grade", "decider"}


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
