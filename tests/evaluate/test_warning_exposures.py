"""Warnings that name the exposures they concern (``for_exposures``), as actions do.

A warning about "an exposure" says which: the decision lists them under the warning, the explanation
prints them under its message, batch's exposure table gives each exposure the warnings naming it, and
policy tests pin them (``warning_exposures``). The row and vector paths agree on all of it (drawn debtors:
test_action_exposures.py, which draws them for warnings and actions alike).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.explain import explain
from policy_engine.policy.compiler import check_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.policy.registry import load_policy
from policy_engine.review.tester import check_expectations

from ..conftest import DATA
from ..vector.test_scoped_agreement import POLICIES, _agree

POLICY = POLICIES["policy-aggregations"]
LATE = [{"due_date": "2025-01-31", "paid_date": "2025-02-20"}]


def _debtor_of(*exposures: dict[str, Any]) -> dict[str, Any]:
    return {"client_id": "A", "as_of": "2025-09-30", "industry": "manufacturing", "exposures": list(exposures)}


def _warning(record: dict[str, Any], wid: str) -> dict[str, Any] | None:
    return next((w for w in record["warnings"] if w["id"] == wid), None)


def test_a_warning_names_the_exposures_its_condition_holds_for(tmp_path: Path) -> None:
    debtor = _debtor_of({"exposure_id": "E0", "balance": 100, "days_past_due": 0, "secured": False,
                         "schedule": LATE * 2},
                        {"exposure_id": "E1", "balance": 100, "days_past_due": 0, "secured": True, "schedule": LATE},
                        {"exposure_id": "E2", "balance": 100, "days_past_due": 0, "secured": False, "schedule": LATE},
                        {"exposure_id": "E3", "balance": 100, "days_past_due": 0, "secured": False})
    record = Decider(POLICY).decide(debtor)
    warning = _warning(record, "late_unsecured")
    assert warning is not None and warning["exposures"] == ["E0", "E2"]
    debtors_own = _warning(record, "many_late")
    assert debtors_own is not None and "exposures" not in debtors_own  # a warning of the whole debtor names none
    en, zh = ({x["exposure_id"]: x["label"][lang] for x in record["exposures"]} for lang in ("en", "zh"))
    assert f"late and unsecured\n     Exposures: E0 ({en['E0']}), E2 ({en['E2']})" in explain(record, POLICY, "en")
    assert f"逾期且无担保\n     涉及债项：E0（{zh['E0']}）、E2（{zh['E2']}）" in explain(record, POLICY, "zh")
    assert check_expectations({"warning_exposures": {"late_unsecured": ["E2", "E0"]}}, record) == []
    assert check_expectations({"warning_exposures": {"late_unsecured": ["E0"]}}, record) == [
        "warning_exposures.late_unsecured: expected ['E0'], got ['E0', 'E2']"]
    assert check_expectations({"warning_exposures": {"many_late": ["E0"]}}, record) == [
        "warning_exposures.many_late: the warning names no exposures (it has no for_exposures)"]
    _agree(POLICY, [debtor], tmp_path)


def test_a_warning_that_concerns_no_exposure_does_not_fire_and_a_null_leaves_it_undetermined() -> None:
    secured = Decider(POLICY).decide(_debtor_of(
        {"exposure_id": "E0", "balance": 100, "days_past_due": 0, "secured": True, "schedule": LATE}))
    assert _warning(secured, "late_unsecured") is None  # late, but on no unsecured exposure
    assert "late_unsecured" not in [u["rule"] for u in secured["undetermined"]]
    assert check_expectations({"warning_exposures": {"late_unsecured": ["E0"]}}, secured) == [
        "warning_exposures.late_unsecured: warning did not fire"]
    unknown = Decider(POLICY).decide(_debtor_of(
        {"exposure_id": "E0", "balance": 100, "days_past_due": 0, "schedule": LATE}))
    assert _warning(unknown, "late_unsecured") is None
    [entry] = [u for u in unknown["undetermined"] if u["rule"] == "late_unsecured"]
    assert "exposure E0: secured" in entry["missing"]


def test_an_exposure_it_cannot_tell_about_is_said_beside_those_it_names(tmp_path: Path) -> None:
    """Fired for E0, not known for E1 (whether it is secured is missing): E1 is listed as not known, not left out."""
    debtor = _debtor_of({"exposure_id": "E0", "balance": 100, "days_past_due": 0, "secured": False, "schedule": LATE},
                        {"exposure_id": "E1", "balance": 100, "days_past_due": 0, "schedule": LATE},
                        {"exposure_id": "E2", "balance": 100, "days_past_due": 0, "secured": True, "schedule": LATE})
    record = Decider(POLICY).decide(debtor)
    warning = _warning(record, "late_unsecured")
    assert warning is not None and (warning["exposures"], warning["exposures_not_known"]) == (["E0"], ["E1"])
    assert "     Exposures: E0 (" in explain(record, POLICY, "en")
    assert "; not known (a fact missing): E1" in explain(record, POLICY, "en")
    assert "；因数据缺失无法判断是否涉及：E1" in explain(record, POLICY, "zh")
    enforce = next(a for a in Decider(POLICY).decide(_debtor_of(
        {"exposure_id": "E0", "balance": 100, "days_past_due": 95, "secured": True, "collateral_value": 50},
        {"exposure_id": "E1", "balance": 100, "days_past_due": 95, "secured": True}))["actions"]
        if a["id"] == "enforce")  # an action's exposures alike: E1's collateral value is missing
    assert (enforce["exposures"], enforce["exposures_not_known"]) == (["E0"], ["E1"])
    _agree(POLICY, [debtor], tmp_path)


# A warning naming the exposures whose collateral covers less than half the balance (cover = collateral / balance).
LOW_COVER = (DATA / "scopes" / "policy-aggregations.yaml").read_text(encoding="utf-8").replace(
    "  - id: late_unsecured\n", "  - id: low_cover\n    when: \"any_of(exposure, cover < 0.5)\"\n"
    "    for_exposures: cover < 0.5\n    severity: medium\n    category: collateral\n"
    "    message: {zh: 押品覆盖不足, en: low cover}\n  - id: late_unsecured\n", 1)


def test_an_exposure_metric_without_a_value_says_why_and_explain_does_not_call_a_zero_base_a_missing_fact(
        tmp_path: Path) -> None:
    """E1's balance is 0: its cover has no value though no fact is missing. The exposure's entry said nothing of why
    (undefined_metrics was the debtor's alone) and the explanation called it 'a fact missing'."""
    diags, policy = check_document(load_yaml_text(LOW_COVER, "policy-1.0.0.yaml"))
    assert policy is not None, diags
    debtor = _debtor_of({"exposure_id": "E0", "balance": 100, "collateral_value": 10, "days_past_due": 0},
                        {"exposure_id": "E1", "balance": 0, "collateral_value": 10, "days_past_due": 0},
                        {"exposure_id": "E2", "balance": 100, "days_past_due": 0})
    record = Decider(policy).decide(debtor)
    warning = _warning(record, "low_cover")
    assert warning is not None and (warning["exposures"], warning["exposures_not_known"]) == (["E0"], ["E1", "E2"])
    why = {x["exposure_id"]: x.get("undefined_metrics", {}).get("cover") for x in record["exposures"]}
    assert why == {"E0": None, "E1": "undefined for the figures read (collateral=10, balance=0): zero or "
                                      "non-positive base, or too few periods",
                   "E2": "no value: missing input exposures[2].collateral_value"}
    assert "; not known: E1 (cover: undefined for the figures read (collateral=10, balance=0): zero or non-positive " \
           "base), E2 (cover: no value: missing input exposures[2].collateral_value)" in explain(record, policy, "en")
    assert "；无法判断是否涉及：E1（cover：按所读数值无法计算（collateral=10, balance=0）：分母为零或非正）" in \
        explain(record, policy, "zh")
    _agree(policy, [debtor], tmp_path)  # the records batch writes say the same


@pytest.mark.parametrize(("base", "code", "fragment"), [
    ("mini-policy.yaml", "bad-scope", "a warning concerns: the policy needs a graded scope"),
    ("scopes/policy-aggregations.yaml", "scope-name", "payment"),  # a payment's name, not an exposure's
])
def test_a_warnings_for_exposures_mistake_is_located(base: str, code: str, fragment: str) -> None:
    text = (DATA / base).read_text(encoding="utf-8")
    condition = "dpd > 90" if base == "mini-policy.yaml" else "paid_date > due_date"
    head, tail = text.split("warnings:\n  - id: ", 1)
    first, rest = tail.split("\n", 1)
    text = f"{head}warnings:\n  - id: {first}\n    for_exposures: \"{condition}\"\n{rest}"
    diags, policy = check_document(load_yaml_text(text, "p.yaml"))
    assert policy is None
    errors = [d for d in diags if d.severity == "error"]
    assert errors and all(d.code == code and d.path.endswith("for_exposures") for d in errors), errors
    assert fragment in errors[0].message + (errors[0].hint or ""), errors[0].render()


def test_the_trace_shows_the_condition_as_written_and_the_exposures_beside_it() -> None:
    record = Decider(POLICY).decide(_debtor_of(
        {"exposure_id": "E0", "balance": 100, "days_past_due": 0, "secured": False, "schedule": LATE},
        {"exposure_id": "E1", "balance": 100, "days_past_due": 0, "secured": True, "schedule": LATE}), trace=True)
    step, *each = [s for s in record["trace"] if s["rule"] == "late_unsecured"]
    assert (step["expr"], step["for_exposures"], step["result"]) == (
        "any_of(exposure, late >= 1)", "late >= 1 and not secured", True)
    # then the condition for each exposure, with what it read: why it names E0 and not E1
    assert [(s["exposure"], s["reads"], s["result"]) for s in each] == [
        ("E0", {"late": 1, "secured": False}, True), ("E1", {"late": 1, "secured": True}, False)]
    text = explain(record, POLICY, "en")
    assert "warning late_unsecured = true <- any_of(exposure, late >= 1)  for_exposures: late >= 1 and not secured" \
        in text
    assert "warning late_unsecured @E1 = false <- late >= 1 and not secured  [late=1, secured=true]" in text


def test_an_exposure_every_rule_could_tell_about_carries_no_reasons_for_its_null_metrics() -> None:
    """A debtor never restructured has a dozen null dates per exposure: no rule was left without an answer for
    them, so no words are worked out (it cost a 2.0.0 decision 4%) and the record stays as it was."""
    from ..conftest import REFERENCE

    policy = load_policy(REFERENCE / "policy-2.0.0.yaml")
    debtors = sorted((REFERENCE / "samples" / "debtors").glob("*.json"))
    quiet = 0
    for path in debtors:
        record = Decider(policy).decide(json.loads(path.read_text(encoding="utf-8")))
        untold = {eid for item in (*record["warnings"], *record["actions"], *record["classification"]["floors"])
                  for eid in item.get("exposures_not_known", ())}
        for x in record["exposures"]:
            assert "undefined_metrics" not in x or x["exposure_id"] in untold, (path.name, x["exposure_id"])
            quiet += None in x["metrics"].values() and "undefined_metrics" not in x
    assert quiet > 20
