"""The segment whose parameters applied is named under the title (an industry's liquidity floors differ): in the
policy's words for the segment and its value where it gives them, else as the record holds it."""

from __future__ import annotations

import json

import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.explain import explain
from policy_engine.policy.compiler import compile_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.policy.registry import load_policy

from ..conftest import DATA, REFERENCE

TRADER = REFERENCE / "samples" / "debtors" / "24-case-trader-funding-chain-broken.json"
MINI_CLIENT = {"client_id": "X", "as_of": "2025-06-30", "industry": "trade", "loan": {"days_past_due": 0}}


@pytest.mark.parametrize(("version", "lang", "line"), [
    ("2.1.0", "en", "Industry: Trade (the parameters of this industry apply)"),
    ("2.1.0", "zh", "行业：商贸（适用该行业的参数）"),
    ("2.0.0", "en", "Segment: trade (the parameters of this segment apply)"),  # no labels in 2.0.0
    ("2.0.0", "zh", "分组：trade（适用该分组的参数）"),
])
def test_the_segment_is_named_under_the_title(version: str, lang: str, line: str) -> None:
    policy = load_policy(REFERENCE / f"policy-{version}.yaml")
    record = Decider(policy).decide(json.loads(TRADER.read_text(encoding="utf-8")))
    lines = explain(record, policy, lang).splitlines()
    assert record["segment"] == "trade" and line in lines[1:3]


def test_a_policy_without_segments_says_nothing_of_one() -> None:
    text = (DATA / "mini-policy.yaml").read_text(encoding="utf-8").replace(
        "segments:\n  by: industry\n  values: [manufacturing, trade]\n", "").replace(
        "floor: {by_segment: {default: 1.0, trade: 1.2}}", "floor: {value: 1.0}")
    policy = compile_document(load_yaml_text(text, "mini.yaml"))
    record = Decider(policy).decide(MINI_CLIENT)
    assert record["segment"] is None
    assert explain(record, policy, "en").splitlines()[1] == ""
    labelled = compile_document(load_yaml_text((DATA / "mini-policy.yaml").read_text(encoding="utf-8"), "mini.yaml"))
    assert explain(Decider(labelled).decide(MINI_CLIENT), labelled, "en").splitlines()[1] == \
        "Segment: trade (the parameters of this segment apply)"
