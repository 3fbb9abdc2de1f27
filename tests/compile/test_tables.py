"""Table parameters and lookup(): coverage proven at validate, located errors, the same cell on both paths."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import yaml

from policy_engine.decide.evaluate import Decider
from policy_engine.policy.compiler import CompiledPolicy, check_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.portfolio.vector import columns_from_records, dates_to_days, evaluate_columns

from ..conftest import DATA

CASES: list[dict[str, Any]] = yaml.safe_load((DATA / "table_cases.yaml").read_text("utf-8"))
BASE = (DATA / "mini-policy.yaml").read_text("utf-8")
INPUTS = """\
  rating: {from: rating, type: integer, min: 1, max: 4}
  band: {from: band, type: string, enum: [A, B, C]}
  prev: {from: prev, type: grade}
  flag: {from: flag, type: boolean}
  ltv: {from: ltv, type: number}
  name: {from: name, type: string}
  cnt: {from: cnt, type: integer}
  opened: {from: opened, type: date}
"""


def plant(case: dict[str, Any]) -> str:
    """mini-policy with the inputs above, the case's table as parameter ``t`` and its expression as ``tv``."""
    text = BASE.replace("inputs:\n", "inputs:\n" + INPUTS, 1)
    text = text.replace("parameters:\n", f"parameters:\n  t: {{table: {case['table']}}}\n", 1)
    metrics = '  ok_metric: {expr: "coalesce(flag, False)", informational: true}\n'
    if "expr" in case:
        metrics += f"  tv: {{expr: {json.dumps(case['expr'])}, informational: true}}\n"
    text = text.replace("metrics:\n", "metrics:\n" + metrics, 1)
    if "action_months" in case:  # the table as an action's computed parameter
        text += (f"  - id: extend\n    action: extend_term\n    when: dpd > 30\n"
                 f"    params: {{months: {{expr: {json.dumps(case['action_months'])}}}}}\n    priority: 2\n"
                 "    reason: {zh: 展期, en: Extend}\n"
                 "    restructuring: {when: dpd > 30, floor: bad, source: test, note: {zh: 重组, en: Restructured}}\n")
    return text


def _points_at(text: str, line: int | None, column: int | None, what: str) -> bool:
    assert line is not None and column is not None
    return text.splitlines()[line - 1][column - 1:].lstrip("'\"").startswith(what)


def _located(text: str, diags: list[Any], code: str, case: dict[str, Any]) -> None:
    found = [d for d in diags if d.code == code and d.path == case["at"]]
    assert found, [d.render() for d in diags]
    d = found[0]
    assert _points_at(text, d.line, d.column, case.get("points_at", case["at"].split(".")[-1])), d.render()
    if "says" in case:
        assert case["says"] in d.message, d.message


def _both_paths(policy: CompiledPolicy, record: dict[str, Any]) -> tuple[Any, Any]:
    """Metric ``tv`` of one client from the row function and from the vector evaluator."""
    decider = Decider(policy)
    _, day, inputs = decider.read(record)
    index = [m.name for m in policy.metrics].index("tv")
    segment = inputs[decider._segment_index]
    row = policy.row_function(inputs, policy.params_for(segment), day)[0][index]
    vector = evaluate_columns(policy, 1, columns_from_records(policy, [inputs]), np.array([segment], dtype=object),
                              dates_to_days([day])).row(0)[0][index]
    assert decider.decide(record)["metrics"]["tv"] == row
    return row, vector


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_table_case(case: dict[str, Any]) -> None:
    assert ("error" in case) != ("cells" in case), "a case expects an error or cells"
    text = plant(case)
    diags, policy = check_document(load_yaml_text(text, "policy.yaml"))
    if "error" in case:
        assert policy is None
        errors = [d for d in diags if d.severity == "error"]
        _located(text, errors, case["error"], case)
        if case.get("only"):
            assert len(errors) == 1, [d.render() for d in errors]
        return
    assert policy is not None, [d.render() for d in diags]
    warnings = [d for d in diags if d.severity == "warning"]
    if "warning" in case:
        _located(text, warnings, case["warning"], case)
    else:
        assert warnings == [], [d.render() for d in warnings]
    for patch, want in case["cells"]:
        record = {"client_id": "c", "as_of": "2025-06-30", "industry": "manufacturing",
                  "loan": {"days_past_due": 0}, "financials": [], **patch}
        row, vector = _both_paths(policy, record)
        assert row == vector, (patch, row, vector)
        assert row == (pytest.approx(want) if isinstance(want, float) else want), (patch, row)


def test_a_table_is_no_runtime_parameter() -> None:
    # Not per segment: the row function's parameter tuple and the vector columns hold no table.
    text = plant({"table": "{key: band, values: {A: 0.1, B: 0.2, C: 0.35}}", "expr": "lookup(t, band)"})
    _, policy = check_document(load_yaml_text(text, "policy.yaml"))
    assert policy is not None
    assert "t" not in policy.param_names and "t" not in policy.parameters
    assert set(policy.tables) == {"t"} and policy.tables["t"].cells == {"A": 0.1, "B": 0.2, "C": 0.35}
    assert "lookup(_table_t, i_" in policy.row_source


def test_the_unused_parameter_lint_sees_lookups() -> None:
    from policy_engine.policy.lint import lint

    def unused(case: dict[str, Any]) -> bool:
        doc = load_yaml_text(plant(case), "policy.yaml")
        _, policy = check_document(doc)
        assert policy is not None
        return ("parameter-unused", "t") in {(d.code, d.rule) for d in lint(policy, doc)}

    table = "{key: band, values: {A: 0.1, B: 0.2, C: 0.35}}"
    assert not unused({"table": table, "expr": "lookup(t, band)"})
    assert unused({"table": table})


@pytest.mark.parametrize(("edit", "code", "path"), [
    ('message: {zh: "比率{ratio_al:.2f}", en: "ratio {ratio_al:.2f}"}',
     'message: {zh: "比率{ratio_al:.2f}", en: "ratio {t}"}', "warnings[0].message.en"),
    ("category: liquidity\n", "category: liquidity\n    evidence: [t]\n", "warnings[0].evidence[0]"),
])
def test_a_table_is_no_placeholder_or_evidence(edit: str, code: str, path: str) -> None:
    text = plant({"table": "{key: band, values: {A: 0.1, B: 0.2, C: 0.35}}"}).replace(edit, code, 1)
    diags, policy = check_document(load_yaml_text(text, "policy.yaml"))
    assert policy is None
    assert [(d.code, d.path) for d in diags if d.severity == "error"] == [
        ("bad-template" if "message" in path else "type-mismatch", path)]
