"""Scopes in the compiler: each located error of a broken multi-exposure policy, and what 1.x keeps.

The case file ``tests/data/scope_errors.yaml`` holds the broken variants; each must be refused
with its code at its place (file, line, column), never compiled into a decision.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy_engine.policy.compiler import check_document
from policy_engine.policy.loader import load_yaml_text

from ..conftest import DATA

POLICY = DATA / "scopes" / "policy-multi-exposure.yaml"
CASES = yaml.safe_load((DATA / "scope_errors.yaml").read_text("utf-8"))["cases"]


def _variant(changes: dict[str, Any]) -> str:
    doc = yaml.safe_load(POLICY.read_text("utf-8"))
    for dotted, value in changes.items():
        *head, last = dotted.split(".")
        cur: Any = doc
        for part in head:
            cur = cur[int(part)] if isinstance(cur, list) else cur[part]
        key: Any = int(last) if isinstance(cur, list) else last
        if value is None:
            del cur[key]
        else:
            cur[key] = copy.deepcopy(value)
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def test_the_case_file_is_well_formed() -> None:
    assert CASES
    for case in CASES:
        assert set(case) == {"name", "set", "code", "at", "says"}, case["name"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_a_broken_scoped_policy_is_refused_at_the_place(case: dict[str, Any]) -> None:
    diags, policy = check_document(load_yaml_text(_variant(case["set"]), "scoped.yaml"))
    assert policy is None
    hits = [d for d in diags if d.code == case["code"] and d.path == case["at"]]
    assert hits, [d.render() for d in diags]
    d = hits[0]
    assert d.file == "scoped.yaml" and d.line is not None and d.column is not None
    assert case["says"] in d.render(), d.render()


def test_the_multi_exposure_policy_compiles_with_its_scopes() -> None:
    diags, policy = check_document(load_yaml_text(POLICY.read_text("utf-8"), str(POLICY)))
    assert policy is not None, [d.render() for d in diags]
    part = policy.scoped
    assert part is not None and part.graded == "exposure"
    assert [s.name for s in part.scopes] == ["exposure", "payment", "event"]
    assert [s.parent for s in part.scopes] == [None, "exposure", None]
    assert [r.id for r in part.floors] == ["overdue_60", "overdue_90", "missed_three"]
    assert [r.id for r in policy.floors] == ["contagion_10pct", "bankruptcy"]  # the debtor's, applied to every exposure
    assert [m.name for m in part.metrics] == ["late_payments", "first_late_due", "expected_loss"]
    assert [i.name for i in policy.inputs] == ["industry"]  # the debtor's own inputs


def test_aggregations_need_scopes() -> None:
    text = (DATA / "mini-policy.yaml").read_text("utf-8").replace(
        "ratio_al: {expr: \"ratio(assets, liabilities)\"}", "ratio_al: {expr: \"count_where(loans, dpd > 0)\"}")
    diags, policy = check_document(load_yaml_text(text, "mini.yaml"))
    assert policy is None
    assert [d.code for d in diags if d.severity == "error"] == ["unknown-scope"]


def test_a_policy_without_scopes_compiles_as_before(policy: Any) -> None:
    assert policy.scoped is None
    assert "sc" not in policy.row_source.split("\n", 1)[0]  # decide_row(inp, prm, b_as_of): no scope argument


def test_every_scope_error_code_is_documented() -> None:
    codes = {c["code"] for c in CASES}
    text = (Path(__file__).resolve().parents[2] / "docs" / "scopes.md").read_text("utf-8")
    assert all(code in text for code in codes), sorted(c for c in codes if c not in text)


@pytest.mark.parametrize("changes", [{"scopes.payment.from": None}, {"scopes.event.max": 0},
                                     {"scopes.exposure": "exposures[*]"}],
                         ids=["a scope without its path", "a max of 0", "a scope that is not a mapping"])
def test_a_schema_invalid_scope_is_one_error_not_a_cascade_or_a_crash(changes: dict[str, Any]) -> None:
    diags, policy = check_document(load_yaml_text(_variant(changes), "scoped.yaml"))
    assert policy is None
    errors = [d for d in diags if d.severity == "error"]
    assert errors and all(d.path is not None and d.path.startswith("scopes.") for d in errors), \
        [d.render() for d in errors]


def test_an_exposure_name_in_a_debtor_message_is_one_error_not_two() -> None:
    """The scope is the fix: no template-may-be-null beside it, whose hints led to an evidence list that showed '—'."""
    diags, _ = check_document(load_yaml_text(_variant({"warnings.0.message.en": "{late_payments:.0f} late"}), "s.yaml"))
    assert [d.code for d in diags if d.path == "warnings[0].message.en"] == ["scope-name"]


@pytest.mark.parametrize(("expr", "whole"), [
    ("count_where(exposure, late_payments >= 2)", True),  # a count is a whole number: {n:d} prints it
    ("coalesce(count_where(exposure, late_payments >= 2), 0)", True),
    ("max_of(exposure, late_payments)", True),  # the largest of counts
    ("sum_of(exposure, late_payments)", True),
    ("sum_of(exposure, balance)", False),  # amounts may have a fraction
    ("share_where(exposure, balance, late_payments >= 2)", False),
])
def test_a_d_format_takes_an_aggregation_of_whole_numbers(expr: str, whole: bool) -> None:
    """{n:d} refused a count ('may have a fraction') though the language reference offers it for one (found by a
    policy author's review; the reference policy wrote .0f everywhere)."""
    variant = _variant({"metrics.n": {"expr": expr, "label": {"zh": "数", "en": "n"}},
                        "warnings.0.when": "n >= 1", "warnings.0.message.en": "{n:d} exposures"})
    diags, policy = check_document(load_yaml_text(variant, "s.yaml"))
    refused = [d for d in diags if d.code == "bad-template"]
    assert (policy is not None and not refused) if whole else (policy is None and "may have a fraction" in
                                                                refused[0].message), [d.render() for d in diags]


@pytest.mark.parametrize("key", ["label", "labels", "format", "unit"])
def test_words_of_a_metric_of_each_element_are_never_shown_and_say_so(key: str) -> None:
    """A decision holds no value per payment: a label or a format on such a metric was accepted and ignored."""
    words = {"label": {"zh": "逾期", "en": "late"}, "labels": {"x": {"zh": "x", "en": "x"}}, "format": "percent",
             "unit": "days"}[key]
    diags, policy = check_document(load_yaml_text(_variant({
        "metrics.paid_late": {"scope": "payment", "expr": "paid_date > due_date", key: words},
        "metrics.late_payments.expr": "count_where(payment, paid_late)"}), "scoped.yaml"))
    assert policy is not None  # a warning: the policy compiles
    assert [(d.code, d.path, d.severity) for d in diags] == [("never-shown", f"metrics.paid_late.{key}", "warning")]


@pytest.mark.parametrize("changes", [
    {"metrics.paid_late": {"scope": "payment", "expr": "not on_time"},
     "metrics.on_time": {"scope": "payment", "expr": "not paid_late"},
     "metrics.late_payments.expr": "count_where(payment, paid_late)"},
    {"metrics.paid_late": {"scope": "payment", "expr": "paid_late"},
     "metrics.on_time": {"scope": "payment", "expr": "not paid_late"},
     "metrics.late_payments.expr": "count_where(payment, not on_time)"},
])
def test_a_cycle_of_element_metrics_is_one_error_however_often_it_is_read(changes: dict[str, Any]) -> None:
    diags, policy = check_document(load_yaml_text(_variant(changes), "scoped.yaml"))
    assert policy is None
    assert [d.code for d in diags if d.severity == "error"] == ["metric-cycle"], [d.render() for d in diags]


@pytest.mark.parametrize(("least", "nullable"), [(None, True), (0, True), (1, False)])
def test_an_aggregation_over_a_scope_that_is_never_empty_is_not_null_for_emptiness(least: int | None,
                                                                                   nullable: bool) -> None:
    """With the exposures' min: 1 a debtor without one is refused, so the worst grade and the largest balance
    always have a value: coverage then asks no case to show them null (one could not be written)."""
    text = _variant({"metrics.largest": {"expr": "max_of(exposure, balance)", "informational": True},
                     **({"scopes.exposure.min": least} if least is not None else {})})
    diags, policy = check_document(load_yaml_text(text, "<variant>"))
    assert policy is not None, diags
    metrics = {m.name: m for m in policy.metrics}
    assert metrics["worst_own"].expr.nullable is nullable
    assert metrics["largest"].expr.nullable is nullable  # balance is required: only emptiness could make it null
    assert metrics["total_balance"].expr.nullable is False  # 0 over no element, with or without min


def test_a_floor_in_a_scope_no_floor_takes_is_one_error() -> None:
    """'scope: event' on a floor is refused (bad-scope); its condition, meant for each event, is not then also told
    it reads event names at the debtor (which would offer 'scope: event', the very thing refused)."""
    text = _variant({"classification.rules.4.scope": "event",
                     "classification.rules.4.when": "event_kind == 'bankruptcy_filing'"})
    diags, policy = check_document(load_yaml_text(text, "scoped.yaml"))
    assert policy is None
    assert [(d.code, d.path) for d in diags if d.severity == "error"] == [
        ("bad-scope", "classification.rules[4].scope")], [d.render() for d in diags]
