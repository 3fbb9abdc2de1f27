"""A warning's declared evidence beside its message: what the policy names there (a date another exposure's
clock may leave unknown, the ratios that could not be computed) is shown by its label, '—' without a value;
a figure the message already quotes is not repeated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.explain import explain
from policy_engine.policy.registry import load_policy

REFERENCE = Path("policies/loss-client-management")

CASES = [
    ("2.0.0", "debtors/13-observation-restarted.json", "en",
     "  [HIGH] A payment in the restructuring observation period was missed; the observation period restarts from "
     "the due date of the missed payment (Observation period restarted from: 2026-03-20)"),
    ("2.0.0", "debtors/13-observation-restarted.json", "zh",
     "  [高] 重组观察期内出现未按时足额还款，观察期自该次未履约的还款日重新起算（观察期重新起算日：2026-03-20）"),
    ("1.1.0", "clients/19-missing-financials.json", "zh",
     "  [中] 关键财务指标无法计算（数据缺失或分母为零），评分按缺失处理"
     "（净利率：—；流动比率：—；资产负债率：—；偿债覆盖率：—）"),
    ("1.1.0", "clients/19-missing-financials.json", "en",
     "  [MEDIUM] Key financial ratios cannot be computed (missing data or zero base); scored as missing "
     "(Net margin: —; Current ratio: —; Debt ratio: —; Debt service coverage ratio: —)"),
    # evidence: [group_id], an input: quoted by its own label where the policy gives one (2.1.0), else by its name
    ("2.1.0", "debtors/20-crisis-group-stale.json", "zh",
     "  [中] 所属集团有成员出现不良，应及时启动对本债务人的评估程序（第七条；所属集团编号：G-777）"),
    ("2.1.0", "debtors/20-crisis-group-stale.json", "en",
     "  [MEDIUM] A member of the debtor's group is non-performing; start the assessment of this debtor (Art. 7; "
     "Group: G-777)"),
    ("2.0.2", "debtors/20-crisis-group-stale.json", "zh",
     "  [中] 所属集团有成员出现不良，应及时启动对本债务人的评估程序（group_id：G-777）"),
    # evidence: [net_margin], which the message quotes: nothing beside it
    ("1.1.0", "clients/02-case-manufacturer-raw-material-squeeze.json", "en",
     "  [HIGH] Net loss for 3 consecutive quarters; trailing net margin -2.0%"),
]


@pytest.mark.parametrize(("version", "sample", "lang", "line"), CASES)
def test_declared_evidence_is_shown_beside_the_message(version: str, sample: str, lang: str, line: str) -> None:
    policy = load_policy(REFERENCE / f"policy-{version}.yaml")
    record = Decider(policy).decide(json.loads((REFERENCE / "samples" / sample).read_text(encoding="utf-8")))
    assert line in explain(record, policy, lang).splitlines()


def test_the_evidence_of_a_warning_that_did_not_fire_is_not_listed_as_none_in_the_record() -> None:
    """The line 'none in the record' named every warning's evidence of a debtor none of them concerned (a concession
    date, the exposure given it, the restructuring before it): 21 names a committee read as facts (a Chinese-speaking
    officer's review). A metric no warning shows as evidence is still named."""
    policy = load_policy(REFERENCE / "policy-2.1.0.yaml")
    record = Decider(policy).decide(json.loads((REFERENCE / "samples" / "debtors" / "01-pass-single-loan.json")
                                               .read_text(encoding="utf-8")))
    assert record["metrics"]["concession_in_difficulty_on"] is None
    [line] = [x for x in explain(record, policy, "en").splitlines() if x.startswith("None in the record")]
    assert "concession_in_difficulty_on" not in line and "plain_modification_date" not in line
    assert "(debtor_first_restructuring)" in line
