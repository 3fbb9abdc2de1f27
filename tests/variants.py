"""The reference policy rewritten with the two rule forms of issue 18 item 3, for the tests of every stage.

``graded_text``: metrics declared ``after: classification`` (a provision rate by grade, the expected loss
it gives, a weight from ``grade_rank`` and ``grade_at_least``), a warning and a key figure reading them.
``one_rule_text``: the floor ``overdue_any`` carries the message of the warning ``overdue``, which is
removed: the same condition, written once. Both are edits of the shipped 1.1.0 text, each checked to
apply exactly once, so a change of the reference policy fails here and not silently.
``unique_scopes_text``: the test policy with scopes, its payments unique by due date and its events by
kind and date. ``dated_scopes_text``: the same with the exposures' dates ``opened`` and ``matures`` (not
before ``opened``), and each payment's ``paid_date`` not before its exposure's ``opened``.
"""

from __future__ import annotations

from .conftest import CURRENT, DATA

PROVISION = {"pass": 0.01, "special_mention": 0.02, "substandard": 0.25, "doubtful": 0.5, "loss": 1.0}

_GRADED_METRICS = """\
  provision_rate:
    expr: >-
      0.01 if grade == 'pass' else 0.02 if grade == 'special_mention' else 0.25 if grade == 'substandard'
      else 0.5 if grade == 'doubtful' else 1.0
    after: classification
    format: percent
    label: {zh: 拨备率, en: Provision rate}
  expected_loss:
    expr: loan_balance * provision_rate
    after: classification
    format: amount
    label: {zh: 预期损失, en: Expected loss}
  impaired_weight:
    expr: "grade_rank(grade) / 4 if grade_at_least('substandard') else 0"
    after: classification
    informational: true
"""

_GRADED_WARNING = """\
  - id: provision_heavy
    when: expected_loss > 0.2 * loan_balance and days_past_due > 0
    severity: high
    category: repayment
    message:
      zh: 预期损失{expected_loss:,.0f}元（拨备率{provision_rate:pct}）
      en: Expected loss {expected_loss:,.0f} (provision rate {provision_rate:pct})
"""

_OVERDUE_WARNING = """\
  - id: overdue
    when: overdue
    severity: high
    category: repayment
    message:
      zh: 本金或利息已逾期{days_past_due}天
      en: Principal or interest overdue for {days_past_due} days
"""

_OVERDUE_FLOOR = ("      description: {zh: 本金或利息逾期，至少关注类, en: Principal or interest overdue -> "
                  "at least special mention}\n")
_OVERDUE_RULE_WARNING = """\
      severity: high
      category: repayment
      message:
        zh: 本金或利息已逾期{days_past_due}天
        en: Principal or interest overdue for {days_past_due} days
"""


def _edit(text: str, edits: list[tuple[str, str]]) -> str:
    for old, new in edits:
        assert text.count(old) == 1, f"the reference policy changed: {old[:60]!r}"
        text = text.replace(old, new)
    return text


def reference_text() -> str:
    return CURRENT.read_text(encoding="utf-8")


def graded_text() -> str:
    """1.1.0 with metrics after classification, a warning that reads them and a key figure."""
    return _edit(reference_text(), [
        ("\nkey_figures: [", "\n" + _GRADED_METRICS + "key_figures: [expected_loss, "),
        ("\nwarnings:\n", "\nwarnings:\n" + _GRADED_WARNING),
    ])


def one_rule_text() -> str:
    """1.1.0 with the overdue condition written once: the floor warns, the warning is gone."""
    return _edit(reference_text(), [
        (_OVERDUE_FLOOR, _OVERDUE_FLOOR + _OVERDUE_RULE_WARNING),
        (_OVERDUE_WARNING, ""),
    ])


_PAYMENTS = '  payment: {from: "exposures[*].schedule[*]", parent: exposure, order_by: due_date, max: 24}\n'
_EVENTS = '  event: {from: "events[*]", order_by: date, max: 10}\n'


def unique_scopes_text() -> str:
    """tests/data/scopes/policy-multi-exposure.yaml with ``unique: [due_date]`` payments, ``[kind, date]`` events."""
    return _edit((DATA / "scopes" / "policy-multi-exposure.yaml").read_text("utf-8"), [
        (_PAYMENTS, _PAYMENTS.replace("max: 24", "unique: [due_date], max: 24")),
        (_EVENTS, _EVENTS.replace("max: 10", "unique: [kind, date], max: 10")),
    ])


_PAID = "  paid_date: {scope: payment, from: paid_date, type: date}\n"


def dated_scopes_text() -> str:
    """``unique_scopes_text`` with dates that may not precede another (``not_before``)."""
    return _edit(unique_scopes_text(), [
        (_PAID, "  paid_date: {scope: payment, from: paid_date, type: date, not_before: opened}\n"
                "  opened: {scope: exposure, from: opened, type: date}\n"
                "  matures: {scope: exposure, from: maturity, type: date, not_before: opened}\n"),
    ])
