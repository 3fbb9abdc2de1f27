"""The undetermined block of an explanation says what was lacking in the reader's words: a warning a rule
depends on as that warning (not ``fired('x')``), and an action whose computed parameter the catalogue refused
apart, as a refusal (no fact is missing there), with the catalogue's reason in Chinese under --lang zh."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.explain import _Page, _param_problem, _places, explain
from policy_engine.policy.compiler import compile_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.policy.registry import load_policy

from ..conftest import DATA, REFERENCE

CLIENT_02 = REFERENCE / "samples" / "clients" / "02-case-manufacturer-raw-material-squeeze.json"
DEBTOR_20 = REFERENCE / "samples" / "debtors" / "20-crisis-group-stale.json"
CASE_24 = REFERENCE / "samples" / "debtors" / "24-case-trader-funding-chain-broken.json"


@pytest.mark.parametrize(("reason", "zh"), [
    ("10.3077 is not a whole number (extend_term takes whole numbers in [1, 120])",
     "10.3077 不是整数（该措施取 [1, 120] 内的整数）"),
    ("981 is outside [1, 120] (extend_term takes whole numbers in [1, 120])",
     "981 超出 [1, 120]（该措施取 [1, 120] 内的整数）"),
    ("1.5 is outside [0, 1] (early_repayment takes numbers in [0, 1])", "1.5 超出 [0, 1]（该措施取 [0, 1] 内的数值）"),
    ("has no value (reprice takes numbers)", "无数值（该措施取数值）"),
    ("'weekly' is not one of monthly, quarterly (review_meeting takes one of monthly, quarterly)",
     "'weekly' 不在 monthly, quarterly 之中"),
    ("a form the catalogue does not have", "a form the catalogue does not have"),
])
def test_a_refused_parameters_reason_in_chinese(reason: str, zh: str) -> None:
    assert _param_problem(reason, "zh") == zh
    assert _param_problem(reason, "en") == reason


def _record(policy_text: str, client: Path) -> tuple[Any, dict[str, Any]]:
    policy = compile_document(load_yaml_text(policy_text, "refused.yaml"))
    return policy, Decider(policy).decide(json.loads(client.read_text(encoding="utf-8")))


def test_a_refused_parameter_is_a_refusal_not_missing_data() -> None:
    text = (REFERENCE / "policy-1.1.0.yaml").read_text(encoding="utf-8")
    refused = text.replace("months: {expr: extension_months}", 'months: {expr: "extension_months * dscr"}', 1)
    assert refused != text
    policy, record = _record(refused, CLIENT_02)
    assert any(u.get("code") == "action-param-refused" for u in record["undetermined"])
    zh = explain(record, policy, lang="zh").splitlines()
    en = explain(record, policy, lang="en").splitlines()
    at = zh.index("未建议的措施（计算出的参数不在措施允许的范围内）：")
    assert zh[at + 1].startswith("  - 措施 展期（extend_term）：参数 months 的值 ")
    assert zh[at + 1].endswith("不是整数（该措施取 [1, 120] 内的整数）")
    assert not any("缺少 params." in line for line in zh)
    at = en.index("Actions not recommended (a computed parameter the action does not allow):")
    assert en[at + 1].startswith("  - action Extend the term (extend_term): months ")
    assert "is not a whole number" in en[at + 1]


def test_a_warning_a_rule_depends_on_is_named_as_a_warning() -> None:
    policy = load_policy(REFERENCE / "policy-2.1.0.yaml")
    client = json.loads(DEBTOR_20.read_text(encoding="utf-8"))
    for statement in client["statements"]:  # without current assets: the liquidity warning is undetermined
        del statement["current_assets"]
    # statements of the last three quarters (the sample's are stale, and no extension rests on stale statements)
    for statement, end in zip(client["statements"], ("2026-03-31", "2026-06-30", "2026-09-30"), strict=True):
        statement["period_end"] = end
    record = Decider(policy).decide(client)
    zh, en = explain(record, policy, lang="zh"), explain(record, policy, lang="en")
    assert "  - 措施 展期（extend_term）：缺少 无法判断的预警 流动性低于下限（liquidity_below_floor）、" \
           "暂时性流动性缺口（temporary_liquidity_gap）" in zh
    assert "  - action Extend the term (extend_term): missing undetermined warning Liquidity below floor " \
           "(liquidity_below_floor), Temporary liquidity gap (temporary_liquidity_gap)" in en
    assert "fired(" not in zh and "fired(" not in en


def test_an_undetermined_exposure_rule_names_its_exposure() -> None:
    policy = load_policy(REFERENCE / "policy-2.1.0.yaml")
    client = json.loads(DEBTOR_20.read_text(encoding="utf-8"))
    del client["exposures"][0]["funds_misused"]  # E1's: a debtor of several exposures says which one lacks it
    record = Decider(policy).decide(client)
    assert [(u["rule"], u["exposure"]) for u in record["undetermined"] if u.get("exposure")] == [
        ("funds_misused", client["exposures"][0]["exposure_id"])]
    eid = client["exposures"][0]["exposure_id"]
    # the rule by its description and the fact by its label, each with its id (a raw id alone read as jargon)
    rule = "Funds used for another purpose without consent -> at least special mention (funds_misused)"
    assert f"  - floor {rule} (exposure {eid}): missing Funds used without consent (funds_misused)" in explain(
        record, policy, lang="en")
    assert f"  - 分类规则 擅自改变资金用途，至少关注类（funds_misused）（债项 {eid}）：缺少 擅自改变资金用途" \
           "（funds_misused）" in explain(record, policy, lang="zh")
    client = json.loads(CASE_24.read_text(encoding="utf-8"))  # a value an aggregation lacked, with its element
    policy = load_policy(REFERENCE / "policy-2.0.2.yaml")  # 2.1.0 reads no unsecured exposure's collateral change
    record = Decider(policy).decide(client)
    assert "缺少 债项 GT-1 的 押品价值变动（collateral_change）" in explain(record, policy, lang="zh")


def test_an_exposure_s_undetermined_floor_is_named_under_it_not_only_at_the_end() -> None:
    """'E1: Pass, no floor fired' read as settled while E1's floor funds_misused could not be decided: the exposure's
    lines now say so, beside the grade it may be too good for; a floor no worse than the grade (funds_misused,
    special mention, beside E1's special mention) is named apart, as one that cannot change it. A debtor rule left
    undetermined that would apply back to it is named there too (the 10% rule, reading E1's provisional grade)."""
    policy = load_policy(REFERENCE / "policy-2.1.0.yaml")
    client = json.loads(DEBTOR_20.read_text(encoding="utf-8"))
    del client["exposures"][0]["funds_misused"]
    del client["exposures"][0]["accounting"]
    record = Decider(policy).decide(client)
    eid = client["exposures"][0]["exposure_id"]
    said = {"en": ["      undetermined (a fact missing: not fired, so the grade may be too good): Credit-impaired "
                   "(flagged, or in stage 3) -> at least substandard (credit_impaired), Credit-impaired with ECL at "
                   "least 50% of the carrying amount -> at least doubtful (impaired_ecl_50pct), More than 10% of "
                   "claims at this bank non-performing -> all at least substandard (contagion_10pct) (debtor rule)",
                   "      undetermined (a fact missing; its floor is no worse than the grade, which it cannot change): "
                   "Funds used for another purpose without consent -> at least special mention (funds_misused), Debt "
                   "non-performing here or elsewhere -> all at least special mention (nonperforming_any_bank) (debtor "
                   "rule)"],
            "zh": ["      无法判断（数据缺失，未触发，等级可能偏乐观）：已发生信用减值（减值标识或第三阶段），"
                   "至少次级类（credit_impaired）、信用减值且预期信用损失不低于账面余额的50%，至少可疑类（impaired_ecl_50pct）、"
                   "本行债权超过10%为不良，全部至少次级类（contagion_10pct）（债务人规则）",
                   "      无法判断（数据缺失；其下限不高于现有等级，不影响分类）：擅自改变资金用途，至少关注类"
                   "（funds_misused）、本行或他行债务出现不良，全部至少关注类（nonperforming_any_bank）（债务人规则）"]}
    for lang, says in said.items():
        lines = explain(record, policy, lang=lang).splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith(f"  - {eid}"))
        assert lines[at + 2:at + 4] == says  # after the floors that fired
        others = [line for line in lines if line.startswith("  - ") and eid not in line]
        assert all(line not in lines[lines.index(o) + 1] for o in others for line in says)


def test_an_exposure_fact_not_given_is_the_reason_with_its_place() -> None:
    """Not "the condition has no value for the figures read (credit_impaired=None): a zero base ...": the fact
    was not sent, and the record says where it goes, for the exposure rule and for the metric that reads it."""
    policy = load_policy(REFERENCE / "policy-2.1.0.yaml")
    client = json.loads(DEBTOR_20.read_text(encoding="utf-8"))
    del client["exposures"][0]["accounting"]
    record = Decider(policy).decide(client)
    reasons = {u["rule"]: u["reasons"] for u in record["undetermined"] if u.get("exposure")}
    assert reasons["credit_impaired"] == {  # the floor reads the flag or stage 3 (impaired_by_accounting)
        "impaired_by_accounting": "no value: missing input exposures[0].accounting.credit_impaired, "
                                  "exposures[0].accounting.stage"}
    assert reasons["impaired_ecl_50pct"]["ecl_coverage"] == "no value: missing input exposures[0].accounting.ecl"
    assert not any("when" in r for r in reasons.values())


@pytest.mark.parametrize(("lang", "said"), [
    ("zh", "按所读数值无法计算（net_income_ttm=-16,000,000, equity_q=[4期]）"),
    ("en", "undefined for the figures read (net_income_ttm=-16,000,000, equity_q=[4 periods])"),
])
def test_the_figures_a_metric_without_a_value_read_are_shown_as_the_key_figures_show_them(lang: str,
                                                                                           said: str) -> None:
    """The record words them in six digits (net_income_ttm=-1.6e+07); the explanation showed that to a banker. A
    figure that is a metric of the record is shown in its format; the record's own words stay (replay)."""
    policy = load_policy(REFERENCE / "policy-1.1.0.yaml")
    client = json.loads((REFERENCE / "samples" / "clients" / "21-loss-by-scorecard.json").read_text("utf-8"))
    record = Decider(policy).decide(client)
    assert "net_income_ttm=-1.6e+07" in record["undefined_metrics"]["roe"]
    text = explain(record, policy, lang)
    assert said in text and "e+07" not in text


def test_the_figures_read_are_shown_formatted_inside_a_depends_on_reason_too() -> None:
    from policy_engine.decide.explain import _figures_shown, _Page

    policy = load_policy(REFERENCE / "policy-1.1.0.yaml")
    page = _Page.of({"metrics": {"net_income_ttm": -16_000_000.0}}, policy, "en")
    why = "depends on roe (undefined for the figures read (net_income_ttm=-1.6e+07, equity_q=[4 periods]): zero or " \
          "non-positive base, or too few periods)"
    assert _figures_shown(page, why) == why.replace("-1.6e+07", "-16,000,000")
    assert _figures_shown(page, "missing input: net_income_ttm=3") == "missing input: net_income_ttm=3"  # other forms


def _excluding_policy(cut_priority: int) -> Any:
    """The mini policy with an emergency plan (priority 2) excluding a closer watch that reads a fact often lacking."""
    text = (DATA / "mini-policy.yaml").read_text(encoding="utf-8") + f"""
  - id: plan
    action: emergency_plan
    when: dpd > 0
    params: {{measures: [legal_action]}}
    priority: 2
    excludes: [cut]
    reason: {{zh: 应急, en: Emergency}}
  - id: cut
    action: monitor
    when: ratio_al > 1
    params: {{frequency: weekly}}
    priority: {cut_priority}
    reason: {{zh: 盯紧, en: Watch}}
"""
    return compile_document(load_yaml_text(text, "mini.yaml"))


CLIENT_LACKING_ASSETS = {"client_id": "X", "as_of": "2025-06-30", "industry": "trade", "loan": {"days_past_due": 10},
                         "liabilities": 5.0}


@pytest.mark.parametrize(("cut_priority", "excluded_by"), [
    (3, "plan"),  # after the plan: the plan, recommended, excludes it whatever the missing facts say
    (1, None),  # before it: had its condition held, the cut would be kept and the plan excluded
])
def test_an_undetermined_action_an_earlier_recommended_one_excludes_says_so(cut_priority: int,
                                                                          excluded_by: str | None) -> None:
    policy = _excluding_policy(cut_priority)
    record = Decider(policy).decide(CLIENT_LACKING_ASSETS)
    assert "plan" in [a["id"] for a in record["actions"]]
    [entry] = [u for u in record["undetermined"] if u["rule"] == "cut"]
    assert entry.get("excluded_by") == excluded_by
    en, zh = explain(record, policy, lang="en"), explain(record, policy, lang="zh")
    said_en = "(not to be recommended in any case: Start the emergency plan (plan), recommended, excludes it)"
    said_zh = "（即使条件成立也不会建议：已建议的 启动应急预案（plan） 与之互斥）"
    assert (said_en in en, said_zh in zh) == (excluded_by is not None,) * 2


@pytest.mark.parametrize(("lang", "line"), [
    ("en", "  - Return on equity (roe): depends on Net income (trailing 4 quarters) (net_income_ttm) (too few periods: "
           "Net income (each quarter) (net_income_q) has 3, sum_last needs 4)"),
    ("zh", "  - 净资产收益率（roe）：依赖 近四季净利润（net_income_ttm）（期数不足：净利润（各季度）（net_income_q）"
           "仅有3期，需要4期（sum_last））"),
])
def test_a_metric_that_depends_on_one_lacking_periods_gives_that_reason(lang: str, line: str) -> None:
    """Not "depends on net_income_ttm (undefined for the figures read (net_income_q=[3 periods]): a zero or
    non-positive base, or too few periods)" when the record holds three quarters (found by a banker's review)."""
    policy = load_policy(REFERENCE / "policy-2.1.0.yaml")
    record = Decider(policy).decide(json.loads(DEBTOR_20.read_text(encoding="utf-8")))
    assert record["undefined_metrics"]["roe"].startswith("depends on net_income_ttm (undefined for the figures read")
    assert line in explain(record, policy, lang).splitlines()


def test_the_grade_headline_says_provisional_when_a_floor_is_undetermined() -> None:
    """'分类：正常' read as settled while a floor could not be decided for a missing fact (an officer's review): the
    headline now says the grade is provisional and how many floors wait; a decision with none says nothing more."""
    policy = load_policy(REFERENCE / "policy-2.1.0.yaml")
    client = json.loads(DEBTOR_20.read_text(encoding="utf-8"))
    settled = Decider(policy).decide(client)
    assert not [u for u in settled["undetermined"] if u["kind"] == "classification"]
    del client["exposures"][0]["funds_misused"]
    moot = Decider(policy).decide(client)  # its floor, special mention, is the grade already: nothing is provisional
    assert [u["rule"] for u in moot["undetermined"] if u["kind"] == "classification"] == ["funds_misused"]
    del client["exposures"][0]["accounting"]
    # its impairment floors, and the debtor rules reading its provisional grade (non-performing here: special mention,
    # no worse than the grade; the 10% rule: substandard)
    unsure = Decider(policy).decide(client)
    assert [u["rule"] for u in unsure["undetermined"] if u["kind"] == "classification"] == [
        "nonperforming_any_bank", "contagion_10pct", "funds_misused", "credit_impaired", "impaired_ecl_50pct"]
    for lang, plain, provisional in (
            ("zh", "分类：关注（special_mention）\n",
             "分类：关注（special_mention）（暂定：3条因数据缺失无法判断的分类规则可能使分类更差，见下文）\n"),
            ("en", "Grade: Special mention (special_mention)\n",
             "Grade: Special mention (special_mention) - provisional: 3 classification rule(s) undetermined for a "
             "missing fact could make it worse (below)\n")):
        assert plain in explain(settled, policy, lang=lang)
        assert plain in explain(moot, policy, lang=lang)
        assert provisional in explain(unsure, policy, lang=lang)


def test_an_undetermined_rule_names_the_fields_to_fill_in() -> None:
    """'missing An asset of the debtor at this bank credit-impaired (impaired_asset_at_bank)' named a figure the
    policy derives: the line now ends with the record's fields behind it, which the reader can fill in."""
    policy = load_policy(REFERENCE / "policy-2.1.0.yaml")
    client = json.loads((REFERENCE / "samples" / "debtors" / "17-npl-upgrade-earned.json").read_text("utf-8"))
    client["exposures"][1]["accounting"].update(credit_impaired=None, stage=None)
    record = Decider(policy).decide(client)
    places = "exposures[1].accounting.credit_impaired, exposures[1].accounting.stage"
    for lang, says in (("en", f" (to fill in: {places})"), ("zh", f"（需补充：{places}）")):
        lines = explain(record, policy, lang=lang).splitlines()
        block = lines[lines.index(next(x for x in lines if x.startswith(("Undetermined rules", "无法判断的规则")))):]
        rules = [x for x in block[1:] if x.startswith("  - ")]
        assert len(rules) == 5 and all(x.endswith(says) for x in rules), rules  # non-performing here waits too


@pytest.mark.parametrize(("reasons", "places"), [
    ({"a": ", ".join(f"statements[{i}].revenue" for i in range(20))}, "statements[0–19].revenue"),  # one run
    ({"a": ", ".join(f"exposures[0].schedule[{i}].paid_date" for i in range(12, 21))},
     "exposures[0].schedule[12–20].paid_date"),  # the last index runs
    ({"a": "no value for period financials.quarters[1].revenue"}, "financials.quarters[1].revenue"),  # a dotted head
    ({"a": ", ".join(f"exposures[{i}].stage" for i in range(0, 20, 2))},
     "exposures[0].stage, exposures[2].stage, exposures[4].stage, exposures[6].stage, exposures[8].stage, "
     "exposures[10].stage, exposures[12].stage, exposures[14].stage, +2"),  # at most eight, then how many more
    ({"a": "missing input"}, ""),  # not an input of the debtor
    ({"capacity_significantly_reduced": "missing input"}, "capacity_significantly_reduced"),  # read directly
    ({"external_rating_previous_notch": "missing input"}, "external_rating.previous_notch"),  # its field, not name
    ({"net_income_q": "missing input"}, "statements"),  # a series: its list
    ({"dscr": "depends on cfads (missing input: net_income_q, capacity_significantly_reduced)"},
     "statements, capacity_significantly_reduced"),  # a metric's, however deep
    ({"a": "missing input: exposures[0].accounting.stage", "b": "missing input: net_income_q"},
     "exposures[0].accounting.stage, statements"),  # an element's places first
])
def test_the_places_to_fill_in_are_the_record_fields_once_each(reasons: dict[str, str], places: str) -> None:
    page = _Page.of({}, load_policy(REFERENCE / "policy-2.1.0.yaml"), "en")
    assert _places(page, reasons) == places


def test_a_series_read_directly_and_left_empty_is_missing_with_its_list_to_fill_in() -> None:
    """A debtor without statements: 'Quarterly review' read the quarterly net income directly and said "missing ?",
    its list of what was missing empty beside "too few periods". It is missing input, as a metric reading the
    series says, and the line names the list to fill in."""
    policy = load_policy(REFERENCE / "policy-2.1.0.yaml")
    client = json.loads((REFERENCE / "samples" / "debtors" / "01-pass-single-loan.json").read_text("utf-8"))
    client["statements"] = []
    record = Decider(policy).decide(client)
    entry = next(u for u in record["undetermined"] if u["rule"] == "review_quarterly")
    assert entry["missing"] == ["net_income_q"] and entry["reasons"] == {"net_income_q": "missing input"}
    line = next(x for x in explain(record, policy).splitlines() if "(review_quarterly)" in x)
    assert line.endswith("missing Net income (each quarter) (net_income_q) (to fill in: statements)"), line
