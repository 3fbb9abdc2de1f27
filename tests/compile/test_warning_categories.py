"""A policy's own warning categories (warning_categories:): the engine's categories plus its own.

A covenant monitor's warnings are about covenants, not one of the engine's ten categories; it
declares 'covenant' as it declares an action type, and a warning (or a classification rule that
warns) may then use it. A category neither the engine nor the policy has is a located error.
"""

from __future__ import annotations

from typing import Any

import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.policy.catalogue import WARNING_CATEGORIES
from policy_engine.policy.compiler import check_document
from policy_engine.policy.loader import load_yaml_text

BASE = """\
id: categories
version: 1.0.0
title: {zh: 预警类别, en: Warning categories}
status: active
owner: Tests
effective_from: 2024-01-01
changelog:
  - {version: 1.0.0, date: 2024-01-01, changes: [first]}
inputs:
  dscr: {from: dscr, type: number, required: true}
warning_categories:
  - {id: covenant, zh: 契约, en: Covenant}
classification:
  scale:
    - {id: compliant, zh: 合规, en: Compliant}
    - {id: lock_up, zh: 分配锁定, en: Lock-up}
  rules:
    - id: dscr_lock_up
      when: dscr < 1.2
      floor: lock_up
      source: facility agreement 22.1
      severity: medium
      category: covenant
      message: {zh: 偿债覆盖率低, en: DSCR low}
warnings:
  - id: dscr_thin
    when: dscr < 1.3
    severity: low
    category: liquidity
    message: {zh: 偿债覆盖率偏低, en: DSCR thin}
"""

# Each case: [old, new] replacements of BASE, then the error diagnostics' [code, line, column].
CASES: list[dict[str, Any]] = [
    {"name": "a category neither the engine nor the policy has",
     "replace": [["category: liquidity", "category: covenants"]], "error": [["unknown-warning-category", 29, 5]],
     "hint": "covenant"},
    {"name": "a rule's category the policy does not declare",
     "replace": [["  - {id: covenant, zh: 契约, en: Covenant}", "  - {id: reserve, zh: 储备, en: Reserve}"]],
     "error": [["unknown-warning-category", 23, 7]]},
    {"name": "a declared category with the id of a built-in one",
     "replace": [["{id: covenant, zh: 契约", "{id: legal, zh: 契约"], ["category: covenant", "category: legal"]],
     "error": [["warning-category-clash", 12, 6]]},
    {"name": "two declared categories with one id",
     "replace": [["  - {id: covenant, zh: 契约, en: Covenant}",
                  "  - {id: covenant, zh: 契约, en: Covenant}\n  - {id: covenant, zh: 约定, en: Covenant}"]],
     "error": [["duplicate-id", 13, 6]]},
    {"name": "a declaration the schema refuses names its category: no second error at the use",
     "replace": [["{id: covenant, zh: 契约, en: Covenant}", "{id: covenant, zh: 契约}"]],
     "error": [["missing-key", 12, 5]]},
]


def _text(case: dict[str, Any]) -> str:
    text = BASE
    for old, new in case["replace"]:
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_a_category_mistake_is_a_located_error(case: dict[str, Any]) -> None:
    diags, policy = check_document(load_yaml_text(_text(case), "categories.yaml"))
    errors = [d for d in diags if d.severity == "error"]
    assert policy is None
    assert [[d.code, d.line, d.column] for d in errors] == case["error"], [d.render() for d in errors]
    if "hint" in case:
        assert case["hint"] in (errors[0].hint or "")


def test_a_declared_category_is_used_like_a_built_in_one() -> None:
    diags, policy = check_document(load_yaml_text(BASE, "categories.yaml"))
    assert [d for d in diags if d.severity == "error"] == [] and policy is not None
    assert policy.warning_categories["covenant"] == {"zh": "契约", "en": "Covenant"}
    assert {k: policy.warning_categories[k] for k in WARNING_CATEGORIES} == WARNING_CATEGORIES
    record = Decider(policy).decide({"client_id": "c", "as_of": "2025-06-30", "dscr": 1.1})
    assert [(w["id"], w["category"]) for w in record["warnings"]] == [("dscr_lock_up", "covenant"),
                                                                      ("dscr_thin", "liquidity")]


def test_without_declarations_a_policy_sees_the_engines_categories() -> None:
    text = BASE.replace("warning_categories:\n  - {id: covenant, zh: 契约, en: Covenant}\n", "") \
        .replace("category: covenant", "category: solvency")
    diags, policy = check_document(load_yaml_text(text, "categories.yaml"))
    assert [d for d in diags if d.severity == "error"] == [] and policy is not None
    assert dict(policy.warning_categories) == WARNING_CATEGORIES
