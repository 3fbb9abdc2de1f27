"""A null in a message template never makes a broken sentence.

In a policy with scopes, a placeholder that may have no value when its warning, rule or action fires
is the located error ``template-may-be-null``: the condition must prove the value (a comparison or
arithmetic that reads it, ``not is_null(x)``; ``and`` proves what either side does, ``or`` what both
do), or the value is always there (a parameter, a required input, a metric never null). A 1.x policy
keeps rendering '无数据' / 'n/a' in its place, so its stored decisions replay word for word. An
action's ``{triggers}`` must never be empty: its condition is made of grade_at_least() and fired()
(``triggers-may-be-empty`` otherwise, in every policy). Cases: tests/data/null_templates/cases.yaml.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from policy_engine.decide.evaluate import compile_message
from policy_engine.policy.compiler import check_document
from policy_engine.policy.loader import load_yaml_text

from ..conftest import DATA

CASES: list[dict[str, Any]] = yaml.safe_load((DATA / "null_templates" / "cases.yaml").read_text(encoding="utf-8"))
BASE = (DATA / "scopes" / "policy-multi-exposure.yaml").read_text(encoding="utf-8")
MINI = (DATA / "mini-policy.yaml").read_text(encoding="utf-8")


def _with(case: dict[str, Any]) -> str:
    message = case["message"].replace('"', '\\"')
    if case.get("action"):
        return BASE + (f"  - id: case\n    action: monitor\n    when: \"{case['when']}\"\n"
                       f"    params: {{frequency: weekly}}\n    priority: 2\n"
                       f"    reason: {{zh: \"{message}\", en: \"{message}\"}}\n")
    head, _, tail = BASE.partition("actions:\n")
    return head + (f"  - id: case\n    when: \"{case['when']}\"\n    severity: low\n    category: data\n"
                   f"    message: {{zh: \"{message}\", en: \"{message}\"}}\n") + "actions:\n" + tail


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_null_placeholder_case(case: dict[str, Any]) -> None:
    assert sum(k in case for k in ("ok", "error", "triggers_error")) == 1, "a case says ok or what is in error"
    diags, policy = check_document(load_yaml_text(_with(case), "nulls.yaml"))
    if "triggers_error" in case:  # {triggers} that may be empty is an error in every policy
        assert policy is None
        assert {(d.code, d.path.rsplit(".", 1)[-1]) for d in diags if d.severity == "error"} == {
            ("triggers-may-be-empty", "zh"), ("triggers-may-be-empty", "en")}
        return
    found = [d for d in diags if d.code == "template-may-be-null"]
    if "ok" in case:
        assert policy is not None and found == [], [d.message for d in diags]
        return
    assert policy is None
    assert {d.path.rsplit(".", 1)[-1] for d in found} == {"zh", "en"}  # both languages, each located
    assert all(f"'{{{case['error']}}}'" in d.message and d.line is not None for d in found)
    assert len(found) == 2, [d.message for d in found]


def test_a_policy_without_scopes_keeps_its_placeholder_and_says_so_in_words() -> None:
    # The 1.x behaviour, unchanged: no error, and the null reads as 'n/a' / '无数据', never 'None'.
    text = MINI.replace("when: ratio_al < floor\n", "when: ratio_al < floor or dpd > 90\n", 1)
    diags, policy = check_document(load_yaml_text(text, "mini.yaml"))
    assert policy is not None and not [d for d in diags if d.code == "template-may-be-null"]
    render = compile_message({"zh": "比率{x:.2f}", "en": "ratio {x:.2f}"})
    assert render(lambda _: None) == {"zh": "比率无数据", "en": "ratio n/a"}


def test_the_reference_policy_2_has_no_placeholder_that_may_be_null() -> None:
    from policy_engine.policy.registry import check_paths

    from ..conftest import REFERENCE

    [result] = check_paths([REFERENCE / "policy-2.0.0.yaml"])  # with the modules it imports
    assert result.policy is not None and result.policy.scoped is not None
    assert [d.code for d in result.diagnostics] == []


@pytest.mark.parametrize("metric", ["n_all: {expr: \"count_where(exposure, True)\", informational: true}",
                                    "n_late: {expr: \"count_where(exposure, dpd > 90)\", informational: true}"])
def test_the_template_check_and_coverage_read_one_nullability(metric: str) -> None:
    """A metric quoted under a condition that proves nothing of it is refused exactly when coverage asks a test
    for its null case (``MetricSpec.expr.nullable``): a sum of a required input and a count never are."""
    name = metric.split(":")[0]
    base = BASE.replace("metrics:\n", f"metrics:\n  {metric}\n", 1)
    _, policy = check_document(load_yaml_text(base, "nulls.yaml"))
    assert policy is not None
    for m in policy.metrics:
        if m.expr.type in ("bool", "unknown") or m.after is not None:
            continue
        head, _, tail = base.partition("actions:\n")
        text = head + (f"  - id: case\n    when: \"bankrupt\"\n    severity: low\n    category: data\n"
                       f"    message: {{zh: \"{{{m.name}}}\", en: \"{{{m.name}}}\"}}\n") + "actions:\n" + tail
        diags, _ = check_document(load_yaml_text(text, "nulls.yaml"))
        refused = any(d.code == "template-may-be-null" for d in diags)
        assert refused is m.expr.nullable, (m.name, [d.message for d in diags])
    assert not next(m for m in policy.metrics if m.name == name).expr.nullable
