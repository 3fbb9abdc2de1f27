"""Action parameters in an explanation read as a banker writes them, in zh and en, for every policy.

Each parameter of the engine's catalogue carries its words (a template per language, labels for its
allowed values): '下调50个基点', 'cut the rate by 50 bp', '依法诉讼、资产保全', never ``rate_change_bp=-50.0``
or ids. JSON decisions keep the ids and numbers. A policy's own type without words is ``name=value``.
Cases: tests/data/action_params/render_cases.yaml.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.explain import explain
from policy_engine.policy.catalogue import CATALOGUE
from policy_engine.policy.registry import load_policy

from ..conftest import DATA, REFERENCE

CASES: list[list[Any]] = yaml.safe_load((DATA / "action_params" / "render_cases.yaml").read_text(encoding="utf-8"))
AS_OF = dt.date(2026, 9, 30)
POLICY_2 = load_policy(REFERENCE / "policy-2.0.0.yaml")
DEBTORS = sorted((REFERENCE / "samples" / "debtors").glob("*.json"))
CLIENTS = sorted((REFERENCE / "samples" / "clients").glob("*.json"))


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}.{c[1]}-{c[3]}" for c in CASES])
def test_a_parameter_in_words(case: list[Any]) -> None:
    action, name, value, lang, expected = case
    assert CATALOGUE[action].params[name].show(name, value, lang, AS_OF) == expected


def test_every_parameter_of_the_catalogue_has_words_and_every_allowed_value_a_label() -> None:
    for kind in CATALOGUE.values():
        for name, spec in kind.params.items():
            assert spec.shown or spec.labels, f"{kind.name}.{name} has no words"
            for value in spec.enum or ():
                assert spec.labels and set(spec.labels[value]) == {"zh", "en"}, f"{kind.name}.{name}: {value}"
            if spec.shown:
                assert set(spec.shown) == {"zh", "en"}


def _action_heads(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r"^  \d+\. ", line)]


@pytest.mark.parametrize("path", [*DEBTORS, *CLIENTS], ids=lambda p: p.stem)
def test_no_sample_explanation_shows_a_parameter_as_name_equals_value(path: Path) -> None:
    policy = POLICY_2 if path.parent.name == "debtors" else load_policy(REFERENCE / "policy-1.1.0.yaml")
    record = Decider(policy).decide(json.loads(path.read_text(encoding="utf-8")))
    for lang in ("zh", "en"):
        heads = _action_heads(explain(record, policy, lang))
        assert len(heads) == len(record["actions"])
        assert not [h for h in heads if "=" in h or "_" in h.split("]", 1)[-1]], heads  # no ids, no name=value
    for action in record["actions"]:  # the JSON decision keeps ids and numbers
        for value in action["params"].values():
            assert isinstance(value, int | float | str | list)


def test_recovery_reads_as_a_committee_paper_in_chinese() -> None:
    record = Decider(POLICY_2).decide(json.loads((REFERENCE / "samples" / "debtors" /
                                                  "07-overdue-280-days.json").read_text(encoding="utf-8")))
    text = explain(record, POLICY_2, "zh")
    assert "  1. 处置押品 [enforce_collateral]：方式：司法拍卖 — 审批：总行贷审会" in text
    assert "     涉及债项：E1（可疑）" in text
    assert "依法清收 [legal_recovery]：提起诉讼、申请财产保全、申请强制执行" in text
    assert "贷后检视会议 [review_monthly]：按月召开，首次于2026-10-14前召开（14天内），由风险经理牵头" in text
    assert "分类为可疑：按月召开贷后检视会议" in text
    assert record["actions"][0]["params"] == {"method": "auction"}  # ids in the JSON decision


@pytest.mark.parametrize(("lang", "head"), [("zh", "  2. 存款抵销 [set_off_deposit]："),
                                             ("en", "  2. Set off deposits [set_off_deposit]: ")])
def test_an_action_is_headed_by_its_own_label_before_its_type_name(lang: str, head: str) -> None:
    """2.1.0 labels set_off_deposit 存款抵销; its head read 处置押品 (the type's name), the label only in lists."""
    policy = load_policy(REFERENCE / "policy-2.1.0.yaml")
    record = Decider(policy).decide(json.loads((REFERENCE / "samples" / "debtors" /
                                                "25-case-trader-crisis.json").read_text(encoding="utf-8")))
    text = explain(record, policy, lang)
    assert head in text
    assert ("处置押品 [set_off_deposit]" if lang == "zh" else "Enforce the collateral [set_off_deposit]") not in text


def test_the_emergency_plan_names_the_event_that_happened_and_its_date() -> None:
    record = Decider(POLICY_2).decide(json.loads((REFERENCE / "samples" / "debtors" /
                                                  "20-crisis-group-stale.json").read_text(encoding="utf-8")))
    [plan] = [a for a in record["actions"] if a["id"] == "emergency_plan"]
    assert plan["reason"]["en"].startswith("Assets seized or frozen on 2026-07-18: start the emergency plan")
    assert plan["reason"]["zh"].startswith("资产于2026-07-18被查封、冻结：启动应急预案")
    assert "key manager" not in plan["reason"]["en"] and "bankruptcy" not in plan["reason"]["en"]
    assert plan["because"]["warnings"] == ["assets_seized"]
    [request] = [a for a in record["actions"] if a["id"] == "request_statements"]
    assert request["reason"]["en"] == "The latest statements are 273 days old, more than 135: request the latest " \
        "statements"


def test_the_grade_is_a_trigger_only_when_it_reaches_a_grade_the_condition_names() -> None:
    client = json.loads((REFERENCE / "samples" / "debtors" / "01-pass-single-loan.json").read_text(encoding="utf-8"))
    client["events"] = [{"kind": "key_person_missing", "date": "2026-06-03"}]
    record = Decider(POLICY_2).decide(client)
    [plan] = record["actions"]
    assert plan["reason"]["zh"].startswith("实际控制人或关键管理人员自2026-06-03起失联：启动应急预案")
    assert "分类" not in plan["reason"]["zh"] and "graded" not in plan["reason"]["en"].lower()
